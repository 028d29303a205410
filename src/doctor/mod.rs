//! `deckhand doctor`: before a first deploy, everything a deploy needs, checked per host, each
//! failure with what to do. Read-only except a probe file created and removed in the state
//! directory (that is the writability check).
//!
//! A host whose SSH fails is unreachable (exit 4). A host whose SSH works but whose Docker
//! socket does not is reachable: the other checks still run, over a plain ssh command.

mod docker;
mod local;
mod probe;
mod swarm;

use std::time::Instant;

use futures_util::future::join_all;
use serde::Serialize;

use crate::config::{Config, Environment, HostSpec, HostTarget, Service};
use crate::transport::{Host, TransportError};

pub use local::config_checks;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// Not run, because an earlier check failed.
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    Config,
    Ssh,
    DockerApi,
    DockerSocket,
    StateDir,
    Disk,
    Clock,
    Registry,
    ProxyImage,
    EnvFile,
    SwarmManager,
    SwarmNodes,
    SwarmProxy,
    SwarmPull,
}

impl CheckId {
    pub fn label(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Ssh => "ssh and host key",
            Self::DockerApi => "docker api",
            Self::DockerSocket => "docker socket",
            Self::StateDir => "state directory",
            Self::Disk => "disk space",
            Self::Clock => "clock",
            Self::Registry => "registry",
            Self::ProxyImage => "proxy image",
            Self::EnvFile => "env file",
            Self::SwarmManager => "swarm manager",
            Self::SwarmNodes => "swarm nodes",
            Self::SwarmProxy => "swarm proxy task",
            Self::SwarmPull => "swarm image pulls",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: CheckId,
    pub status: Status,
    /// What was found (host text: sanitize before printing).
    pub detail: String,
    /// What to do about it, when it is not a pass.
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(check: CheckId, detail: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }
    pub fn warn(check: CheckId, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn fail(check: CheckId, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn skip(check: CheckId, why: &str) -> Self {
        Self {
            check,
            status: Status::Skip,
            detail: why.to_string(),
            fix: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    pub reachable: bool,
    pub checks: Vec<Check>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub env: String,
    pub config: Vec<Check>,
    pub hosts: Vec<HostReport>,
}

impl Report {
    /// 4 when a host is unreachable, 5 when a check failed, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.hosts.iter().any(|h| !h.reachable) {
            crate::exit::UNREACHABLE
        } else if self
            .config
            .iter()
            .chain(self.hosts.iter().flat_map(|h| &h.checks))
            .any(|c| c.status == Status::Fail)
        {
            crate::exit::UNHEALTHY
        } else {
            crate::exit::OK
        }
    }
}

/// Runs every check on every host of `hosts` (concurrently).
pub async fn run(
    config: &Config,
    env: &Environment,
    hosts: &[HostSpec],
    services: &[Service],
) -> Report {
    let reports = join_all(hosts.iter().map(|h| check_host(h, env, services))).await;
    Report {
        env: env.name.clone(),
        config: config_checks(config, env),
        hosts: reports,
    }
}

async fn check_host(spec: &HostSpec, env: &Environment, services: &[Service]) -> HostReport {
    let started = Instant::now();
    let mut checks = Vec::new();
    let (host, docker_error) = match Host::connect(spec).await {
        Ok(h) => (Some(h), None),
        Err(e @ (TransportError::Docker { .. } | TransportError::Forward { .. })) => {
            (None, Some(crate::util::error_chain(&e)))
        }
        Err(e) => {
            checks.push(ssh_failure(spec, &e));
            for id in [
                CheckId::DockerApi,
                CheckId::DockerSocket,
                CheckId::StateDir,
                CheckId::Disk,
                CheckId::Clock,
                CheckId::Registry,
                CheckId::ProxyImage,
                CheckId::EnvFile,
            ] {
                checks.push(Check::skip(id, "the host cannot be reached"));
            }
            return HostReport {
                host: spec.name.clone(),
                reachable: false,
                checks,
                elapsed_ms: elapsed_ms(started),
            };
        }
    };
    checks.push(match &spec.target {
        HostTarget::Local => Check::pass(CheckId::Ssh, "local engine: no ssh"),
        HostTarget::Ssh { destination, .. } => Check::pass(
            CheckId::Ssh,
            format!("{destination}: logged in, host key matches known_hosts"),
        ),
    });
    match &host {
        Some(h) => checks.push(docker::api_version(h).await),
        None => checks.push(Check::skip(CheckId::DockerApi, "Docker does not answer")),
    }
    let docker_root = match &host {
        Some(h) => docker::data_root(h).await,
        None => "/var/lib/docker".to_string(),
    };
    let env_files: Vec<&str> = services.iter().map(|s| s.env_file.as_str()).collect();
    let mut args = vec![
        "-c",
        probe::SCRIPT,
        "deckhand-doctor",
        spec.docker_socket.as_str(),
        spec.state_dir.as_str(),
        docker_root.as_str(),
    ];
    args.extend(env_files.iter().copied());
    let t0 = Instant::now();
    let wall0 = now_unix();
    let out = match &host {
        Some(h) => h
            .exec("sh", &args, None)
            .await
            .map(|o| (o.success(), o.stdout_text(), o.stderr_text()))
            .map_err(|e| e.to_string()),
        None => local::exec_without_docker(spec, &args).await,
    };
    let rtt = t0.elapsed().as_secs_f64();
    match out {
        Ok((_, stdout, _)) => {
            let p = probe::parse(&stdout);
            checks.push(probe::socket_check(
                &p,
                &spec.docker_socket,
                docker_error.as_deref(),
            ));
            checks.push(probe::state_check(&p, &spec.state_dir));
            checks.push(probe::disk_check(&p, env.alerts.disk_percent));
            checks.push(match p.time {
                Some(t) => probe::clock_check(t - (wall0 + rtt / 2.0), rtt / 2.0),
                None => Check::fail(
                    CheckId::Clock,
                    "the host did not tell its time",
                    "check `date +%s.%N` on the host",
                ),
            });
            for s in services {
                match &host {
                    Some(h) => {
                        checks.push(docker::registry(h, s).await);
                        checks.push(docker::proxy_image(h, s).await);
                    }
                    None => {
                        checks.push(Check::skip(CheckId::Registry, "Docker does not answer"));
                        checks.push(Check::skip(CheckId::ProxyImage, "Docker does not answer"));
                    }
                }
                checks.push(probe::env_file_check(&p, &s.name, &s.env_file));
            }
        }
        Err(e) => {
            checks.push(Check::fail(
                CheckId::DockerSocket,
                docker_error.unwrap_or_default(),
                "see the docker api check",
            ));
            checks.push(Check::fail(
                CheckId::StateDir,
                format!("the checks script did not run: {e}"),
                "the host needs a POSIX sh, id, stat, df and date",
            ));
        }
    }
    if let Some(h) = &host
        && crate::swarm::is_swarm(h)
    {
        checks.extend(swarm::checks(h, services).await);
    }
    if let Some(h) = host {
        h.close().await;
    }
    HostReport {
        host: spec.name.clone(),
        reachable: true,
        checks,
        elapsed_ms: elapsed_ms(started),
    }
}

fn ssh_failure(spec: &HostSpec, e: &TransportError) -> Check {
    let text = e.to_string();
    let fix = match e {
        // The error already carries the exact commands.
        TransportError::HostKey { .. } => {
            "see above: verify the fingerprint out of band, then trust it".to_string()
        }
        TransportError::Timeout { .. } => {
            "the host does not answer: is it up, is port 22 open in the firewall for this machine?"
                .to_string()
        }
        _ if text.contains("Permission denied") => {
            let user = match &spec.target {
                HostTarget::Ssh { user: Some(u), .. } => u.clone(),
                _ => "the ssh user".to_string(),
            };
            format!(
                "the host refused the key: add this machine's public key to ~{user}/.ssh/authorized_keys (`ssh-copy-id`), or set identity_file to the right key"
            )
        }
        _ if text.contains("Connection refused") => {
            "nothing listens for ssh there: check the address and port, and that sshd runs"
                .to_string()
        }
        _ => "try `ssh -v` with the same destination to see why".to_string(),
    };
    Check::fail(CheckId::Ssh, text, fix)
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
