//! Docker's event stream, narrowed to the containers of deckhand's services: which service
//! changed, so a watcher re-reads that one instead of polling every host on a timer.
//!
//! The daemon filters (type, actions, container names), so an idle host sends nothing: no
//! health-check execs (the demo's HEALTHCHECK runs every 2 s), no other containers.

use std::collections::HashMap;

use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptions;
use futures_util::Stream;

use crate::config::Service;
use crate::state::{Color, contract::LABEL_SERVICE};
use crate::transport::Host;

/// The container actions that change what the console shows. Not `exec_*` (a HEALTHCHECK
/// runs one every few seconds, and so does deckhand's own traffic read in the proxy), not
/// `attach`, `top`, `resize`, `copy`/`archive-path` (deckhand reads the proxy config so).
/// `health_status` comes only when the verdict changes.
pub const ACTIONS: &[&str] = &[
    "create",
    "start",
    "restart",
    "die",
    "stop",
    "kill",
    "oom",
    "pause",
    "unpause",
    "rename",
    "update",
    "destroy",
    "health_status",
];

/// The names of a service's containers, as the contract spells them.
fn names(s: &Service) -> [String; 3] {
    [
        format!("{}-{}", s.name, Color::Blue),
        format!("{}-{}", s.name, Color::Green),
        s.proxy_container(),
    ]
}

/// The events request for these services. Docker matches `container=` as a name prefix, so
/// a proxy renamed aside during a replacement (`S-proxy-…`) is seen too; `since` (the daemon's
/// clock, unix seconds) replays what happened between that instant and the subscription.
pub fn options(services: &[Service], since: Option<i64>) -> EventsOptions {
    let mut filters = HashMap::new();
    filters.insert("type".to_string(), vec!["container".to_string()]);
    filters.insert(
        "event".to_string(),
        ACTIONS.iter().map(|a| (*a).to_string()).collect(),
    );
    filters.insert(
        "container".to_string(),
        services.iter().flat_map(names).collect(),
    );
    EventsOptions {
        since: since.map(|s| s.to_string()),
        until: None,
        filters: Some(filters),
    }
}

/// Which service an event is about, if any: a container of the contract's names (now or
/// before a rename), or one labelled with the service.
pub fn service_of<'a>(event: &EventMessage, services: &'a [Service]) -> Option<&'a str> {
    let attrs = event.actor.as_ref()?.attributes.as_ref()?;
    let named = |n: &str| {
        services.iter().find(|s| {
            names(s)
                .iter()
                .any(|x| n == x || (n.starts_with(x.as_str()) && x.ends_with("-proxy")))
        })
    };
    let by_label = attrs
        .get(LABEL_SERVICE)
        .and_then(|l| services.iter().find(|s| &s.name == l));
    by_label
        .or_else(|| attrs.get("name").and_then(|n| named(n)))
        .or_else(|| attrs.get("oldName").and_then(|n| named(n.trim_start_matches('/'))))
        .map(|s| s.name.as_str())
}

/// Subscribes to the services' container events on a connected host, from the daemon's
/// "now" (asked first), so nothing between this call and the subscription is missed.
pub async fn subscribe<'h>(
    host: &'h Host,
    services: &[Service],
) -> Result<
    impl Stream<Item = Result<EventMessage, bollard::errors::Error>> + use<'h>,
    bollard::errors::Error,
> {
    let info = host.docker.info().await?;
    let since = info
        .system_time
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp() - 1);
    Ok(host.docker.events(Some(options(services, since))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::EventActor;

    fn services() -> Vec<Service> {
        let text = r#"
[[service]]
name = "api"
image = "r/api"
app_port = 3000
public_port = 3001

[[service]]
name = "api2"
image = "r/api2"
app_port = 3000
public_port = 3002

[env.dev]
hosts = ["local"]
"#;
        crate::config::load_str(text, std::path::Path::new("/tmp/deckhand.toml"))
            .expect("config")
            .services
    }

    fn event(attrs: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            action: Some("die".into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                        .collect(),
                ),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn an_event_names_its_service_by_label_name_or_old_name() {
        let s = services();
        assert_eq!(
            service_of(&event(&[("name", "x"), ("deckhand.service", "api2")]), &s),
            Some("api2")
        );
        assert_eq!(service_of(&event(&[("name", "api-green")]), &s), Some("api"));
        assert_eq!(service_of(&event(&[("name", "api2-proxy")]), &s), Some("api2"));
        // A proxy renamed aside during a replacement still belongs to its service.
        assert_eq!(
            service_of(&event(&[("name", "api-proxy-replaced-1")]), &s),
            Some("api")
        );
        assert_eq!(
            service_of(&event(&[("name", "other"), ("oldName", "/api2-blue")]), &s),
            Some("api2")
        );
        // Docker's prefix match lets `api-blue2` through; it is not a color of `api`.
        assert_eq!(service_of(&event(&[("name", "api-blue2")]), &s), None);
        assert_eq!(service_of(&event(&[("name", "web-blue")]), &s), None);
        assert_eq!(service_of(&EventMessage::default(), &s), None);
    }

    #[test]
    fn the_daemon_filters_by_type_action_and_the_contract_names() {
        let o = options(&services(), Some(1_800_000_000));
        let f = o.filters.expect("filters");
        assert_eq!(f["type"], vec!["container"]);
        assert!(f["event"].iter().any(|a| a == "die"));
        assert!(!f["event"].iter().any(|a| a.starts_with("exec")));
        assert_eq!(
            f["container"],
            vec![
                "api-blue",
                "api-green",
                "api-proxy",
                "api2-blue",
                "api2-green",
                "api2-proxy"
            ]
        );
        assert_eq!(o.since.as_deref(), Some("1800000000"));
    }
}
