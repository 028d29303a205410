//! The parts of `doctor` that run on this machine: the config checks, and a plain `ssh`
//! command for the shell checks when the host's Docker cannot be reached (the usual cause: the
//! ssh user may not use the socket), so those checks still say something.

use std::path::Path;
use std::time::Duration;

use super::{Check, CheckId};
use crate::config::{Config, Environment, HostSpec, HostTarget};

/// What can be checked without a host: the file loaded (or we would not be here), and the
/// files it names on this machine exist.
pub fn config_checks(config: &Config, env: &Environment) -> Vec<Check> {
    let mut out = vec![Check::pass(
        CheckId::Config,
        format!(
            "{} loads: {} service(s), environment `{}` with {} host(s)",
            config.path.display(),
            config.services.len(),
            env.name,
            env.hosts.len()
        ),
    )];
    let mut seen = Vec::new();
    for h in &env.hosts {
        let HostTarget::Ssh {
            identity_file,
            known_hosts,
            ..
        } = &h.target
        else {
            continue;
        };
        for (what, path) in [
            ("identity_file", identity_file),
            ("known_hosts", known_hosts),
        ] {
            let Some(path) = path else { continue };
            if seen.contains(path) {
                continue;
            }
            seen.push(path.clone());
            if let Some(c) = file_check(&h.name, what, path) {
                out.push(c);
            }
        }
    }
    out
}

fn file_check(host: &str, what: &str, path: &Path) -> Option<Check> {
    match std::fs::File::open(path) {
        Ok(_) => None,
        Err(e) => Some(Check::fail(
            CheckId::Config,
            format!("{host}: {what} {}: {e}", path.display()),
            if what == "known_hosts" {
                format!(
                    "create it with the host's key, after checking the fingerprint: `ssh-keyscan HOST >> {}`",
                    path.display()
                )
            } else {
                format!(
                    "point {what} at a readable private key, or create one: `ssh-keygen -t ed25519 -f {}`",
                    path.display()
                )
            },
        )),
    }
}

/// Runs `sh ARGS...` on the host with the system ssh client, with the same destination,
/// user, port, key and known_hosts as deckhand's own connection (strict host key checking,
/// no prompts). Returns (success, stdout, stderr).
pub async fn exec_without_docker(
    spec: &HostSpec,
    args: &[&str],
) -> Result<(bool, String, String), String> {
    let mut cmd = match &spec.target {
        HostTarget::Local => {
            let mut c = tokio::process::Command::new("sh");
            c.args(args);
            c
        }
        HostTarget::Ssh {
            destination,
            user,
            port,
            identity_file,
            known_hosts,
        } => {
            let mut c = tokio::process::Command::new("ssh");
            c.args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]);
            c.arg("-o").arg(format!(
                "ConnectTimeout={}",
                spec.connect_timeout.as_secs().max(1)
            ));
            if let Some(u) = user {
                c.arg("-l").arg(u);
            }
            if let Some(p) = port {
                c.arg("-p").arg(p.to_string());
            }
            if let Some(k) = identity_file {
                c.arg("-i").arg(k);
            }
            if let Some(k) = known_hosts {
                c.arg("-o")
                    .arg(format!("UserKnownHostsFile={}", k.display()));
            }
            // ssh joins the words into one remote command line: each is quoted.
            c.arg("--").arg(destination).arg("sh");
            for a in args {
                c.arg(shell_quote(a));
            }
            c
        }
    };
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    let budget = spec.connect_timeout + Duration::from_secs(20);
    match tokio::time::timeout(budget, cmd.output()).await {
        Ok(Ok(o)) => Ok((
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).trim().to_string(),
        )),
        Ok(Err(e)) => Err(format!("cannot run ssh: {e}")),
        Err(_) => Err(format!("no answer within {}s", budget.as_secs())),
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
