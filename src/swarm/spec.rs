//! The Swarm service specs deckhand creates: one per color and the proxy. Pure, so what a
//! deploy asks Swarm for is unit-tested without an engine.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, Mount, MountType, NetworkAttachmentConfig, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};

use super::names::{
    self, LABEL_COLOR, LABEL_DEPLOYED_AT, LABEL_DEPLOYED_BY, LABEL_ROLE, LABEL_SERVICE, LABEL_SHA,
};
use crate::config::Service;
use crate::state::Color;

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Everything a color's service needs besides the config.
#[derive(Debug, Clone)]
pub struct ColorRelease<'a> {
    pub color: Color,
    pub sha: &'a str,
    pub replicas: u32,
    pub deployed_at: &'a str,
    pub deployed_by: &'a str,
    /// `KEY=value`: the service's clear variables and the manager's env file.
    pub env: Vec<String>,
}

/// The labels of a color, on the service and on each task's container.
fn color_labels(service: &Service, r: &ColorRelease<'_>) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_SERVICE.to_string(), service.name.clone()),
        (LABEL_COLOR.to_string(), r.color.to_string()),
        (LABEL_SHA.to_string(), r.sha.to_string()),
        (LABEL_DEPLOYED_AT.to_string(), r.deployed_at.to_string()),
        (LABEL_DEPLOYED_BY.to_string(), r.deployed_by.to_string()),
    ])
}

fn replicated(n: u32) -> ServiceSpecMode {
    ServiceSpecMode {
        replicated: Some(ServiceSpecModeReplicated {
            replicas: Some(i64::from(n)),
        }),
        ..Default::default()
    }
}

fn on_network(service: &Service) -> Vec<NetworkAttachmentConfig> {
    vec![NetworkAttachmentConfig {
        target: Some(names::network(service)),
        ..Default::default()
    }]
}

/// DNS round robin, not a virtual IP: the proxy resolves `tasks.S-color` and balances over the
/// tasks itself (per-task in-flight counts for the drain), and the VIP needs IPVS in the
/// kernel, which not every host has (this sandbox does not: "No route to host" on the VIP).
fn dnsrr(ports: Option<Vec<EndpointPortConfig>>) -> EndpointSpec {
    EndpointSpec {
        mode: Some(EndpointSpecModeEnum::DNSRR),
        ports,
    }
}

/// A color's service: N replicas of `REPO:sha`, the image's own HEALTHCHECK (Swarm counts a
/// task as running only once it is healthy), restarted on failure, no published port (the
/// proxy reaches the tasks over the overlay network). Swarm's own update settings say
/// start-first with rollback, for changes made outside deckhand (`docker service update`).
pub fn color_spec(service: &Service, r: &ColorRelease<'_>) -> ServiceSpec {
    let labels = color_labels(service, r);
    let env = r.env.clone();
    ServiceSpec {
        name: Some(names::color_service(service, r.color)),
        labels: Some(labels.clone()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(format!("{}:{}", service.image, r.sha)),
                labels: Some(labels),
                env: Some(env),
                stop_grace_period: Some(nanos(service.stop_timeout)),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE),
                delay: Some(nanos(Duration::from_secs(2))),
                max_attempts: None,
                window: None,
            }),
            networks: Some(on_network(service)),
            ..Default::default()
        }),
        mode: Some(replicated(r.replicas)),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            ..Default::default()
        }),
        endpoint_spec: Some(dnsrr(None)),
        ..Default::default()
    }
}

/// The proxy's service: deckhand's HAProxy image, one replica pinned to the manager deckhand
/// reaches (its container is exec'd through that manager's Docker API: Swarm has no exec on
/// other nodes), the public port published in host mode on that node (the routing mesh needs
/// IPVS too), its `/etc/haproxy` a directory on the manager so a restarted task serves the last
/// route written.
pub fn proxy_spec(service: &Service, manager_node_id: &str, conf_dir: &str) -> ServiceSpec {
    let labels = HashMap::from([
        (LABEL_SERVICE.to_string(), service.name.clone()),
        (LABEL_ROLE.to_string(), "proxy".to_string()),
    ]);
    ServiceSpec {
        name: Some(names::proxy_service(service)),
        labels: Some(labels.clone()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(service.proxy_image.clone()),
                labels: Some(labels),
                mounts: Some(vec![Mount {
                    target: Some(crate::state::contract::PROXY_CONF_DIR.to_string()),
                    source: Some(conf_dir.to_string()),
                    typ: Some(MountType::BIND),
                    ..Default::default()
                }]),
                stop_grace_period: Some(nanos(Duration::from_secs(5))),
                ..Default::default()
            }),
            placement: Some(TaskSpecPlacement {
                constraints: Some(vec![format!("node.id=={manager_node_id}")]),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(nanos(Duration::from_secs(1))),
                ..Default::default()
            }),
            networks: Some(on_network(service)),
            ..Default::default()
        }),
        mode: Some(replicated(1)),
        endpoint_spec: Some(dnsrr(Some(vec![EndpointPortConfig {
            protocol: Some(EndpointPortConfigProtocolEnum::TCP),
            target_port: Some(80),
            published_port: Some(i64::from(service.public_port)),
            publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
            ..Default::default()
        }]))),
        ..Default::default()
    }
}

/// A copy of `spec` with another replica count (scale up for a rollback, down after a drain).
pub fn with_replicas(mut spec: ServiceSpec, n: u32) -> ServiceSpec {
    spec.mode = Some(replicated(n));
    spec
}

/// The replica count a spec asks for (0 for a global or job service: deckhand makes neither).
pub fn replicas_of(spec: &ServiceSpec) -> u32 {
    spec.mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Service {
        crate::config::load_str(
            "[[service]]\nname = \"api\"\nimage = \"r.example/acme/api\"\npublic_port = 8080\n\n[env.dev]\nhosts = [\"local\"]\n",
            std::path::Path::new("/tmp/deckhand.toml"),
        )
        .expect("config")
        .services
        .remove(0)
    }

    #[test]
    fn a_color_is_a_replicated_service_of_the_sha_with_the_contract_labels() {
        let s = service();
        let spec = color_spec(
            &s,
            &ColorRelease {
                color: Color::Green,
                sha: "a000002",
                replicas: 3,
                deployed_at: "t",
                deployed_by: "me",
                env: vec!["A=1".into()],
            },
        );
        assert_eq!(spec.name.as_deref(), Some("api-green"));
        assert_eq!(replicas_of(&spec), 3);
        let c = spec
            .task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .expect("container spec");
        assert_eq!(c.image.as_deref(), Some("r.example/acme/api:a000002"));
        let labels = c.labels.as_ref().expect("labels");
        assert_eq!(labels.get(LABEL_SHA).map(String::as_str), Some("a000002"));
        assert_eq!(labels.get(LABEL_COLOR).map(String::as_str), Some("green"));
        assert!(
            c.env
                .as_ref()
                .is_some_and(|e| e.contains(&"A=1".to_string()))
        );
        assert_eq!(
            spec.endpoint_spec.as_ref().and_then(|e| e.mode),
            Some(EndpointSpecModeEnum::DNSRR)
        );
        assert_eq!(replicas_of(&with_replicas(spec.clone(), 0)), 0);
    }

    #[test]
    fn the_proxy_is_pinned_to_the_manager_and_publishes_in_host_mode() {
        let s = service();
        let spec = proxy_spec(&s, "node123", "/var/lib/deckhand/swarm/api/haproxy");
        let t = spec.task_template.as_ref().expect("task");
        assert_eq!(
            t.placement.as_ref().and_then(|p| p.constraints.clone()),
            Some(vec!["node.id==node123".to_string()])
        );
        let port = &spec
            .endpoint_spec
            .as_ref()
            .and_then(|e| e.ports.clone())
            .expect("ports")[0];
        assert_eq!(port.published_port, Some(8080));
        assert_eq!(
            port.publish_mode,
            Some(EndpointPortConfigPublishModeEnum::HOST)
        );
    }
}
