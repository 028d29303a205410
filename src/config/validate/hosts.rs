//! Hosts of an environment: the short and long forms, the Ansible inventory, and the defaults
//! they inherit.

use std::path::PathBuf;

use toml::Spanned;

use super::{HOST_NAME, Validator};
use crate::config::ConfigError;
use crate::config::model::{Defaults, HostSpec, HostTarget};
use crate::config::raw::RawHost;

const DEFAULT_STATE_DIR: &str = "/var/lib/deckhand";
const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

impl Validator<'_> {
    fn check_destination(&self, env: &str, d: &Spanned<String>) -> Result<(), ConfigError> {
        let v = d.get_ref();
        if v.starts_with('-') || !HOST_NAME.is_match(v) {
            return Err(self.invalid(
                d,
                format!("env.{env}.hosts"),
                format!("`{v}` is not an ssh destination"),
                "write user@host, host, or an alias from ~/.ssh/config (no spaces, not starting with `-`)",
            ));
        }
        Ok(())
    }

    pub(super) fn short_host(
        &self,
        env: &str,
        h: &Spanned<String>,
        ctx: &HostDefaults<'_>,
    ) -> Result<HostSpec, ConfigError> {
        let v = h.get_ref();
        if v == "local" {
            return Ok(ctx.local());
        }
        self.check_destination(env, h)?;
        Ok(ctx.ssh(v.clone(), v.clone(), None, None, None, None, None, None))
    }

    pub(super) fn long_host(
        &self,
        env: &str,
        h: &Spanned<RawHost>,
        ctx: &HostDefaults<'_>,
    ) -> Result<HostSpec, ConfigError> {
        let r = h.get_ref();
        let name = r.name.get_ref().clone();
        if !HOST_NAME.is_match(&name) {
            return Err(self.invalid(
                &r.name,
                format!("env.{env}.host.name"),
                format!("`{name}` is not a usable host name"),
                "use letters, digits, `.`, `-` and `_`",
            ));
        }
        let destination = match &r.ssh {
            Some(d) if d.get_ref() == "local" => {
                let mut spec = ctx.local();
                spec.name = name;
                if let Some(s) = &r.docker_socket {
                    spec.docker_socket = s.get_ref().clone();
                }
                if let Some(s) = &r.state_dir {
                    spec.state_dir = s.get_ref().clone();
                }
                return Ok(spec);
            }
            Some(d) => {
                self.check_destination(env, d)?;
                d.get_ref().clone()
            }
            None => name.clone(),
        };
        let port = match &r.port {
            Some(p) => Some(self.port(p, &format!("env.{env}.host.{name}.port"))?),
            None => None,
        };
        Ok(ctx.ssh(
            name,
            destination,
            r.user.as_ref().map(|s| s.get_ref().clone()),
            port,
            r.identity_file.as_ref().map(|s| expand_home(s.get_ref())),
            r.known_hosts.as_ref().map(|s| expand_home(s.get_ref())),
            r.docker_socket.as_ref().map(|s| s.get_ref().clone()),
            r.state_dir.as_ref().map(|s| s.get_ref().clone()),
        ))
    }

    pub(super) fn inventory_hosts(
        &self,
        env: &str,
        inv: &Spanned<String>,
        group: Option<&Spanned<String>>,
        ctx: &HostDefaults<'_>,
    ) -> Result<Vec<HostSpec>, ConfigError> {
        let field = format!("env.{env}.ansible_inventory");
        // Relative to the config file, so the repository's inventory works from any directory.
        let path = self
            .path
            .parent()
            .map_or_else(|| PathBuf::from(inv.get_ref()), |d| d.join(inv.get_ref()));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.invalid(
                inv,
                &field,
                format!("cannot read {}: {e}", path.display()),
                "give the inventory's path relative to this config file",
            )
        })?;
        let hosts = crate::config::ansible_inventory::hosts_from_inventory(
            &text,
            group.map(|g| g.get_ref().as_str()),
        )
        .map_err(|e| {
            self.invalid(
                inv,
                &field,
                format!("{}: {e}", path.display()),
                "fix the inventory, or list the hosts with `hosts = [...]`",
            )
        })?;
        let mut out = Vec::new();
        for h in hosts {
            let destination = h.address.clone().unwrap_or_else(|| h.name.clone());
            if destination.starts_with('-') || !HOST_NAME.is_match(&destination) {
                return Err(self.invalid(
                    inv,
                    &field,
                    format!("host `{}` has the unusable address `{destination}`", h.name),
                    "set ansible_host to an IP or DNS name",
                ));
            }
            out.push(ctx.ssh(
                h.name,
                destination,
                h.user,
                h.port,
                h.identity_file.map(|p| expand_home(&p)),
                None,
                None,
                None,
            ));
        }
        Ok(out)
    }
}

pub(super) struct HostDefaults<'a> {
    pub(super) defaults: &'a Defaults,
    pub(super) docker_socket: Option<&'a str>,
    pub(super) state_dir: Option<&'a str>,
}

impl HostDefaults<'_> {
    pub(super) fn local(&self) -> HostSpec {
        HostSpec {
            name: "local".into(),
            target: HostTarget::Local,
            docker_socket: self
                .docker_socket
                .unwrap_or(DEFAULT_DOCKER_SOCKET)
                .to_string(),
            state_dir: self.state_dir.map_or_else(local_state_dir, str::to_string),
            connect_timeout: self.defaults.connect_timeout,
            swarm: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn ssh(
        &self,
        name: String,
        destination: String,
        user: Option<String>,
        port: Option<u16>,
        identity_file: Option<PathBuf>,
        known_hosts: Option<PathBuf>,
        docker_socket: Option<String>,
        state_dir: Option<String>,
    ) -> HostSpec {
        HostSpec {
            name,
            target: HostTarget::Ssh {
                destination,
                user: user.or_else(|| self.defaults.user.clone()),
                port,
                identity_file: identity_file.or_else(|| self.defaults.identity_file.clone()),
                known_hosts: known_hosts.or_else(|| self.defaults.known_hosts.clone()),
            },
            docker_socket: docker_socket
                .or_else(|| self.docker_socket.map(str::to_string))
                .unwrap_or_else(|| DEFAULT_DOCKER_SOCKET.to_string()),
            state_dir: state_dir
                .or_else(|| self.state_dir.map(str::to_string))
                .unwrap_or_else(|| DEFAULT_STATE_DIR.to_string()),
            connect_timeout: self.defaults.connect_timeout,
            swarm: None,
        }
    }
}

/// On the local machine root uses the droplet layout; anyone else keeps deckhand's host state
/// under their own state directory, since `/var/lib` is not theirs to write.
fn local_state_dir() -> String {
    use std::os::unix::fs::MetadataExt;
    let is_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if is_root {
        return DEFAULT_STATE_DIR.to_string();
    }
    let base = match std::env::var_os("XDG_STATE_HOME") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".local/state"))
            .unwrap_or_else(|| PathBuf::from("/tmp")),
    };
    base.join("deckhand/local-host").display().to_string()
}

pub(super) fn expand_home(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    PathBuf::from(p)
}
