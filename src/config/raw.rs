//! The file as written, with source spans, before validation.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default)]
    pub service: Vec<Spanned<RawService>>,
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<RawEnv>>,
    /// `[ssh]`: how deckhand's CLI holds its ssh connections (every environment).
    pub ssh: Option<RawSsh>,
}

/// `[ssh]` or `[env.NAME.ssh]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    /// Keep each host's ssh master for this idle time after a CLI call (`"10m"`; `"off"`).
    pub persist: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub user: Option<Spanned<String>>,
    pub identity_file: Option<Spanned<String>>,
    pub known_hosts: Option<Spanned<String>>,
    pub docker_socket: Option<Spanned<String>>,
    pub state_dir: Option<Spanned<String>>,
    pub connect_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub name: Spanned<String>,
    pub image: Spanned<String>,
    pub app_port: Option<Spanned<i64>>,
    pub health_path: Option<Spanned<String>>,
    pub public_port: Option<Spanned<i64>>,
    pub proxy_image: Option<Spanned<String>>,
    pub keep_images: Option<Spanned<i64>>,
    pub health_timeout: Option<Spanned<String>>,
    pub drain: Option<Spanned<String>>,
    pub stop_timeout: Option<Spanned<String>>,
    pub protected_tags: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    pub env_file: Option<Spanned<String>>,
    pub auto_prune: Option<bool>,
    pub watch: Option<Spanned<String>>,
    pub watch_max_error_percent: Option<Spanned<f64>>,
    pub watch_min_requests: Option<Spanned<i64>>,
    pub watch_max_p99: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEnv {
    #[serde(default)]
    pub protected: bool,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub host: Vec<Spanned<RawHost>>,
    pub ansible_inventory: Option<Spanned<String>>,
    pub ansible_group: Option<Spanned<String>>,
    pub alerts: Option<Spanned<RawAlerts>>,
    /// A Docker Swarm reached through one manager (issue 16), instead of hosts.
    pub swarm: Option<Spanned<RawSwarm>>,
    /// Overrides `[ssh]` for this environment.
    pub ssh: Option<RawSsh>,
}

/// `swarm = { manager = "...", ... }`: the manager deckhand reaches over SSH, and how many
/// replicas each color runs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSwarm {
    pub manager: Spanned<String>,
    pub name: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub identity_file: Option<Spanned<String>>,
    pub known_hosts: Option<Spanned<String>>,
    pub docker_socket: Option<Spanned<String>>,
    pub state_dir: Option<Spanned<String>>,
    pub replicas: Option<Spanned<i64>>,
    pub node_docker_socket: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAlerts {
    pub cpu_percent: Option<Spanned<f64>>,
    pub cpu_for: Option<Spanned<String>>,
    pub memory_percent: Option<Spanned<f64>>,
    pub memory_for: Option<Spanned<String>>,
    pub disk_percent: Option<Spanned<f64>>,
    pub disk_for: Option<Spanned<String>>,
    pub health_failures: Option<Spanned<i64>>,
    pub error_percent: Option<Spanned<f64>>,
    pub error_for: Option<Spanned<String>>,
    pub error_min_requests: Option<Spanned<i64>>,
    pub keep_resolved: Option<Spanned<String>>,
    pub interval: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub name: Spanned<String>,
    pub ssh: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub identity_file: Option<Spanned<String>>,
    pub known_hosts: Option<Spanned<String>>,
    pub docker_socket: Option<Spanned<String>>,
    pub state_dir: Option<Spanned<String>>,
}
