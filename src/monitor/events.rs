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
use crate::state::{Color, ContainerState, contract::LABEL_SERVICE};
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
        .or_else(|| {
            attrs
                .get("oldName")
                .and_then(|n| named(n.trim_start_matches('/')))
        })
        .map(|s| s.name.as_str())
}

/// What an event says a container is now, before anyone reads it: shown at once, then
/// confirmed by the re-read of its service.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    State {
        state: ContainerState,
        exit_code: Option<i64>,
    },
    /// Docker's HEALTHCHECK verdict changed.
    Health(String),
    Gone,
}

/// The container an event is about (its name now) and what it says about it, for the actions
/// whose outcome is certain (`kill` is a signal, not a state; `create`/`rename` need a read).
pub fn change_of(event: &EventMessage) -> Option<(&str, Change)> {
    let attrs = event.actor.as_ref()?.attributes.as_ref()?;
    let name = attrs.get("name")?.as_str();
    let action = event.action.as_deref()?;
    let state = |s: &str| Change::State {
        state: ContainerState::parse(s),
        exit_code: None,
    };
    let change = match action {
        "start" | "unpause" | "restart" => state("running"),
        "pause" => state("paused"),
        "stop" => state("exited"),
        "die" | "oom" => Change::State {
            state: ContainerState::Exited,
            exit_code: attrs.get("exitCode").and_then(|c| c.parse().ok()),
        },
        "destroy" => Change::Gone,
        a => Change::Health(a.strip_prefix("health_status: ")?.to_string()),
    };
    Some((name, change))
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
        assert_eq!(
            service_of(&event(&[("name", "api-green")]), &s),
            Some("api")
        );
        assert_eq!(
            service_of(&event(&[("name", "api2-proxy")]), &s),
            Some("api2")
        );
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
    fn an_event_says_what_a_container_is_now() {
        let with = |action: &str, attrs: &[(&str, &str)]| EventMessage {
            action: Some(action.into()),
            ..event(attrs)
        };
        let die = with("die", &[("name", "api-blue"), ("exitCode", "137")]);
        let (name, c) = change_of(&die).expect("die");
        assert_eq!(name, "api-blue");
        assert_eq!(
            c,
            Change::State {
                state: ContainerState::Exited,
                exit_code: Some(137)
            }
        );
        assert_eq!(
            change_of(&with("start", &[("name", "api-blue")])).map(|x| x.1),
            Some(Change::State {
                state: ContainerState::Running,
                exit_code: None
            })
        );
        assert_eq!(
            change_of(&with("health_status: unhealthy", &[("name", "api-blue")])).map(|x| x.1),
            Some(Change::Health("unhealthy".into()))
        );
        assert_eq!(
            change_of(&with("destroy", &[("name", "api-blue")])).map(|x| x.1),
            Some(Change::Gone)
        );
        assert_eq!(change_of(&with("kill", &[("name", "api-blue")])), None);
        assert_eq!(change_of(&with("create", &[("name", "api-blue")])), None);
        assert_eq!(change_of(&with("start", &[])), None);
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
