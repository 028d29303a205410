//! Names and labels of the on-droplet contract (`docs/architecture.md`), in one place.

use super::Color;
use crate::config::Service;

pub const LABEL_SERVICE: &str = "deckhand.service";
pub const LABEL_COLOR: &str = "deckhand.color";
pub const LABEL_SHA: &str = "deckhand.sha";
pub const LABEL_DEPLOYED_AT: &str = "deckhand.deployed-at";
pub const LABEL_DEPLOYED_BY: &str = "deckhand.deployed-by";
pub const LABEL_ROLE: &str = "deckhand.role";

/// Response header the proxy adds, naming the color that answered.
pub const COLOR_HEADER: &str = "X-Deckhand-Color";

pub fn app_container(service: &Service, color: Color) -> String {
    format!("{}-{}", service.name, color.as_str())
}

pub fn image_ref(service: &Service, tag: &str) -> String {
    format!("{}:{tag}", service.image)
}

/// Where the proxy's (HAProxy's) config lives inside the proxy container.
pub const PROXY_CONF_DIR: &str = "/etc/haproxy";
pub const PROXY_CONF_FILE: &str = "haproxy.cfg";
/// The earlier nginx proxy's config, read only to recognise a host set up with it.
pub const NGINX_CONF_DIR: &str = "/etc/nginx";
pub const NGINX_CONF_FILE: &str = "nginx.conf";
/// The helper in the proxy image that talks to HAProxy's admin socket (one exec per operation).
pub const PROXY_HELPER: &str = "deckhand-proxy";
/// HAProxy's backend holding both colors as servers named `blue` and `green`.
pub const PROXY_BACKEND: &str = "app";
/// HAProxy's in-memory ring of per-request timing lines (`%Ts %s %ST %Ta`).
pub const PROXY_TIMINGS_RING: &str = "timings";
