//! A read-only model of what a host runs, built from Docker, the proxy's live config and the
//! host's deckhand files. Nothing here changes a host.

pub mod contract;
pub(crate) mod facts;
pub mod health;
mod images;
mod model;
pub mod proxy_api;
pub mod proxy_conf;
pub(crate) mod read;
pub mod traffic;

pub use facts::{parse_df, parse_meminfo};
pub use health::{HealthBody, HealthReport, probe_health};
pub use images::{image_tag, is_protected_tag, normalize_repository};
pub use model::{
    Color, ColorStatus, ContainerState, DiskUse, EnvStatus, HostFacts, HostStatus, ImageInfo,
    ProxyKind, ProxyStatus, ServiceStatus,
};
pub use read::{
    ReadTimings, probe_color, read_env, read_env_timed,
    read_file_from_container as read_file_from_container_pub, read_for_plan, read_host,
    read_service, read_serving, status_of_host, status_of_host_timed,
};
pub use traffic::{ColorTraffic, ServiceTraffic, prepare_traffic_read, read_traffic};
