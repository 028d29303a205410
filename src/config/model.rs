//! The checked configuration: every value here has passed validation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;

/// deckhand's proxy image (HAProxy + socat + the deckhand-proxy helper), as
/// scripts/build-test-images.sh builds and pushes it from infrastructure/docker/haproxy.
pub const DEFAULT_PROXY_IMAGE: &str = "127.0.0.1:5000/deckhand/haproxy:2.6";

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (for messages), or `<inline>`.
    pub path: PathBuf,
    pub defaults: Defaults,
    pub services: Vec<Service>,
    pub envs: BTreeMap<String, Environment>,
}

#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub user: Option<String>,
    pub identity_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    /// Image repository; tags are git SHAs.
    pub image: String,
    pub app_port: u16,
    pub health_path: String,
    pub public_port: u16,
    pub proxy_image: String,
    pub keep_images: usize,
    pub health_timeout: Duration,
    /// The longest wait for in-flight requests on the old color before it is stopped.
    pub drain: Duration,
    pub stop_timeout: Duration,
    /// Glob patterns (`*` only) of tags prune never removes.
    pub protected_tags: Vec<String>,
    /// Clear (non-secret) variables passed to the app.
    pub env: BTreeMap<String, String>,
    /// Path on the host of the secrets env file.
    pub env_file: String,
    pub auto_prune: bool,
    /// The watch after a switch (issue 13): window and thresholds.
    pub watch: WatchSettings,
}

/// How long and how strictly a new release is watched after the switch.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchSettings {
    /// Zero: no watch (the old color is stopped right after the switch).
    pub window: Duration,
    /// The new color's 5xx share above this (with at least `min_requests`) is a breach.
    pub max_error_percent: f64,
    pub min_requests: u64,
    /// The new color's p99 latency above this (with at least `min_requests`) is a breach.
    pub max_p99: Duration,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(30),
            max_error_percent: 5.0,
            min_requests: 20,
            max_p99: Duration::from_secs(2),
        }
    }
}

impl Service {
    pub fn network_name(&self) -> String {
        format!("deckhand-{}", self.name)
    }
    pub fn proxy_container(&self) -> String {
        format!("{}-proxy", self.name)
    }
}

#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    /// Destructive actions need typed confirmation in the console.
    pub protected: bool,
    /// Nothing that changes a host may run.
    pub read_only: bool,
    pub hosts: Vec<HostSpec>,
    pub alerts: AlertThresholds,
    /// `ssh.persist`: keep each host's ssh master this long idle after a CLI call, for the
    /// next call to ride (`None`: close it at exit). `--keep-connection` and
    /// `DECKHAND_KEEP_CONNECTION` override it.
    pub ssh_persist: Option<Duration>,
}

/// The spec's alert rules, configurable per environment (`[env.NAME.alerts]`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertThresholds {
    pub cpu_percent: f64,
    pub cpu_for: Duration,
    pub memory_percent: f64,
    pub memory_for: Duration,
    pub disk_percent: f64,
    pub disk_for: Duration,
    /// Consecutive failed `/health` probes of the live color before the alert fires.
    pub health_failures: u32,
    /// The live color's share of 5xx answers (through the proxy, last minute) above which the
    /// error alert is pending, and how long before it fires.
    pub error_percent: f64,
    pub error_for: Duration,
    /// Fewer requests than this in the window are too few to judge the share by.
    pub error_min_requests: u64,
    /// How long a resolved alert stays visible.
    pub keep_resolved: Duration,
    /// Monitoring interval (`alerts --watch`, the console).
    pub interval: Duration,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        Self {
            cpu_percent: 80.0,
            cpu_for: Duration::from_secs(300),
            memory_percent: 85.0,
            memory_for: Duration::from_secs(300),
            disk_percent: 90.0,
            disk_for: Duration::ZERO,
            health_failures: 3,
            error_percent: 5.0,
            error_for: Duration::from_secs(300),
            error_min_requests: 10,
            keep_resolved: Duration::from_secs(900),
            interval: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    /// How the operator refers to the host (`--host NAME`, tables).
    pub name: String,
    pub target: HostTarget,
    /// Path of the Docker socket on the host.
    pub docker_socket: String,
    /// Directory on the host for deckhand's audit log and locks.
    pub state_dir: String,
    pub connect_timeout: Duration,
    /// This host is the manager through which deckhand operates a Docker Swarm (issue 16):
    /// releases, status and prune go through `crate::swarm` instead of containers.
    pub swarm: Option<SwarmSpec>,
}

/// What a Swarm environment adds to its manager's host spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmSpec {
    /// Tasks each color's Swarm service runs.
    pub replicas: u32,
    /// The Docker socket on every node, as a task there sees it (`prune`'s job mounts it).
    pub node_docker_socket: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HostTarget {
    /// The Docker engine of this machine, no SSH.
    Local,
    Ssh {
        /// An ssh destination or `~/.ssh/config` alias, passed to ssh as is.
        destination: String,
        user: Option<String>,
        port: Option<u16>,
        identity_file: Option<PathBuf>,
        known_hosts: Option<PathBuf>,
    },
}

impl Config {
    pub fn env(&self, name: &str) -> Result<&Environment, ConfigError> {
        self.envs.get(name).ok_or_else(|| ConfigError::UnknownEnv {
            path: self.path.clone(),
            name: name.to_string(),
            known: self.envs.keys().cloned().collect(),
        })
    }

    pub fn service(&self, name: &str) -> Result<&Service, ConfigError> {
        self.services
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| ConfigError::UnknownService {
                path: self.path.clone(),
                name: name.to_string(),
                known: self.services.iter().map(|s| s.name.clone()).collect(),
            })
    }

    /// The environment used when none is named: `dev` if present, else the first one.
    pub fn default_env(&self) -> Option<&str> {
        if self.envs.contains_key("dev") {
            Some("dev")
        } else {
            self.envs.keys().next().map(String::as_str)
        }
    }
}
