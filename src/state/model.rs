//! What a host runs, as shown by `status` (table and JSON) and the console.

use std::collections::BTreeMap;

use serde::Serialize;

use super::HealthReport;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    pub const BOTH: [Color; 2] = [Color::Blue, Color::Green];

    pub fn as_str(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }

    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }

    pub fn parse(s: &str) -> Option<Color> {
        match s {
            "blue" => Some(Color::Blue),
            "green" => Some(Color::Green),
            _ => None,
        }
    }
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
    Unknown,
}

impl ContainerState {
    pub fn parse(s: &str) -> Self {
        match s {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "exited" => Self::Exited,
            "dead" => Self::Dead,
            _ => Self::Unknown,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Exited => "exited",
            Self::Dead => "dead",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EnvStatus {
    pub env: String,
    pub hosts: Vec<HostStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub name: String,
    pub reachable: bool,
    pub error: Option<String>,
    pub facts: Option<HostFacts>,
    pub services: Vec<ServiceStatus>,
    /// Milliseconds it took to read this host (connect included).
    pub read_ms: u64,
    /// A Swarm manager's nodes and per-color replicas (issue 16); absent for droplets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm: Option<crate::swarm::SwarmStatus>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostFacts {
    pub docker_version: Option<String>,
    pub docker_api_version: Option<String>,
    pub docker_root: Option<String>,
    pub mem_total_bytes: Option<u64>,
    pub mem_available_bytes: Option<u64>,
    pub disk_root: Option<DiskUse>,
    pub disk_docker: Option<DiskUse>,
    pub load_average: Option<[f64; 3]>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct DiskUse {
    pub mount: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub percent: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    pub live_color: Option<Color>,
    pub live_sha: Option<String>,
    pub proxy: ProxyStatus,
    pub colors: BTreeMap<Color, Option<ColorStatus>>,
    pub images: Vec<ImageInfo>,
    /// Problems that make this service unhealthy, in words (empty when all is well).
    pub problems: Vec<String>,
    /// Per-color traffic from the proxy (HAProxy only), when it could be read.
    pub traffic: Option<super::ServiceTraffic>,
    /// A canary in progress (issue 13): the color, SHA and share the proxy gives it.
    pub canary: Option<super::proxy_conf::Canary>,
    /// A release not settled yet, in words: "canary 25 %", or "watch interrupted" when both
    /// colors run with one in rotation (a watch cut short; the next action settles it).
    pub settling: Option<String>,
}

impl ServiceStatus {
    pub fn color(&self, c: Color) -> Option<&ColorStatus> {
        self.colors.get(&c).and_then(Option::as_ref)
    }

    /// What [`ServiceStatus::settling`] says, from the canary and the colors' states.
    pub fn compute_settling(&self) -> Option<String> {
        if let Some(k) = &self.canary {
            return Some(format!("canary {} % ({} {})", k.percent, k.color, k.sha));
        }
        let live = self.live_color?;
        let both = [live, live.other()].iter().all(|c| {
            self.color(*c)
                .is_some_and(|s| s.state == ContainerState::Running)
        });
        both.then(|| format!("watch interrupted ({} serves, {} warm)", live, live.other()))
    }

    /// The color that is not live, if it exists: the rollback target when stopped.
    pub fn idle(&self) -> Option<&ColorStatus> {
        self.live_color.and_then(|c| self.color(c.other()))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProxyStatus {
    pub exists: bool,
    pub running: bool,
    pub image: Option<String>,
    pub public_port: Option<u16>,
    /// The upstream the proxy's config names, if it could be read.
    pub upstream: Option<String>,
    /// Which proxy runs: deckhand's HAProxy, or the earlier nginx proxy.
    pub kind: Option<ProxyKind>,
    /// How the proxy differs from what the config describes (image, public port, nginx), and
    /// what the next deploy does about it.
    pub drift: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    Haproxy,
    /// The earlier proxy (nginx, switched by reload): replaced by the next deploy.
    Nginx,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColorStatus {
    pub state: ContainerState,
    pub sha: Option<String>,
    pub image: String,
    pub container_id: String,
    pub deployed_at: Option<String>,
    pub deployed_by: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub exit_code: Option<i64>,
    /// Docker's own HEALTHCHECK verdict, when the image has one.
    pub docker_health: Option<String>,
    /// Port on the host's 127.0.0.1 where the app listens.
    pub host_port: Option<u16>,
    pub health: Option<HealthReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    pub tag: String,
    pub id: String,
    pub created: String,
    pub created_unix: i64,
    pub size_bytes: u64,
    pub in_use_by: Option<Color>,
    pub protected: bool,
    /// Other tags of the same image in the repository.
    pub also_tagged: Vec<String>,
}
