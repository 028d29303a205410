//! Names and labels of what deckhand creates on a Swarm, in one place.

use crate::config::Service;
use crate::state::Color;

pub use crate::state::contract::{
    LABEL_COLOR, LABEL_DEPLOYED_AT, LABEL_DEPLOYED_BY, LABEL_ROLE, LABEL_SERVICE, LABEL_SHA,
};

/// Swarm's own label on a task's container: the service it belongs to.
pub const LABEL_SWARM_SERVICE: &str = "com.docker.swarm.service.name";

/// `S-blue` / `S-green`: one Swarm service per color.
pub fn color_service(service: &Service, color: Color) -> String {
    format!("{}-{color}", service.name)
}

/// `S-proxy`: the HAProxy service.
pub fn proxy_service(service: &Service) -> String {
    format!("{}-proxy", service.name)
}

/// `deckhand-S`: the attachable overlay network of the proxy and both colors.
pub fn network(service: &Service) -> String {
    format!("deckhand-{}", service.name)
}

/// The directory on the manager bind-mounted as the proxy's `/etc/haproxy`, so a restarted
/// or rescheduled proxy task starts with the route deckhand last wrote.
pub fn proxy_conf_dir(state_dir: &str, service: &Service) -> String {
    format!(
        "{}/swarm/{}/haproxy",
        state_dir.trim_end_matches('/'),
        service.name
    )
}
