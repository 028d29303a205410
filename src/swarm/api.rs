//! The Docker calls of the Swarm backend, all through the manager's API (bollard over the
//! forwarded socket), plus the two files on the manager (the proxy's config directory).

use std::collections::HashMap;

use bollard::models::{
    ContainerSummary, NetworkCreateRequest, Node, Service as SwarmServiceObj, ServiceSpec, Task,
};
use bollard::query_parameters::{
    InspectServiceOptions, ListContainersOptions, ListNodesOptions, ListServicesOptions,
    ListTasksOptions, UpdateServiceOptions,
};

use super::SwarmError;
use super::names::{LABEL_SERVICE, LABEL_SWARM_SERVICE};
use crate::config::Service;
use crate::transport::Host;

fn docker_err(host: &Host, what: &str) -> impl FnOnce(bollard::errors::Error) -> SwarmError {
    let name = host.name().to_string();
    let what = what.to_string();
    move |e| SwarmError::docker(&name, what, e)
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// This engine's node id, when it is an active manager; else why not.
pub async fn manager_node_id(host: &Host) -> Result<String, SwarmError> {
    let info = host
        .docker
        .info()
        .await
        .map_err(docker_err(host, "read the engine's info"))?;
    let sw = info.swarm.unwrap_or_default();
    let state = sw.local_node_state.map_or_else(
        || "unknown".to_string(),
        |s| format!("{s:?}").to_lowercase(),
    );
    match (sw.control_available, sw.node_id) {
        (Some(true), Some(id)) if !id.is_empty() => Ok(id),
        _ => Err(SwarmError::NotManager {
            host: host.name().to_string(),
            state: format!("swarm state: {state}"),
        }),
    }
}

pub async fn nodes(host: &Host) -> Result<Vec<Node>, SwarmError> {
    host.docker
        .list_nodes(None::<ListNodesOptions>)
        .await
        .map_err(docker_err(host, "list the nodes"))
}

/// Swarm services labelled as the service's (colors and proxy).
pub async fn services(host: &Host, service: &Service) -> Result<Vec<SwarmServiceObj>, SwarmError> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_SERVICE}={}", service.name)],
    )]);
    host.docker
        .list_services(Some(ListServicesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(docker_err(host, "list the services"))
}

pub async fn inspect(host: &Host, name: &str) -> Result<Option<SwarmServiceObj>, SwarmError> {
    match host
        .docker
        .inspect_service(name, None::<InspectServiceOptions>)
        .await
    {
        Ok(s) => Ok(Some(s)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(SwarmError::docker(
            host.name(),
            format!("inspect {name}"),
            e,
        )),
    }
}

/// Tasks of the service's Swarm services (every state Swarm still remembers).
pub async fn tasks(host: &Host, service: &Service) -> Result<Vec<Task>, SwarmError> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_SERVICE}={}", service.name)],
    )]);
    host.docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(docker_err(host, "list the tasks"))
}

/// Creates the service, or updates it to `spec` (the spec Swarm stores is replaced whole).
pub async fn apply(host: &Host, spec: ServiceSpec) -> Result<(), SwarmError> {
    let name = spec.name.clone().unwrap_or_default();
    let image = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let (repo, _) = crate::release::pull::split_image(&image);
    let creds = crate::release::pull::credentials_for(crate::release::pull::registry_of(repo));
    tracing::debug!(host = host.name(), service = %name, %image, "swarm: apply service spec");
    match inspect(host, &name).await? {
        None => host
            .docker
            .create_service(spec, creds)
            .await
            .map(|_| ())
            .map_err(docker_err(host, &format!("create service {name}"))),
        Some(existing) => {
            let version = existing
                .version
                .and_then(|v| v.index)
                .and_then(|i| i32::try_from(i).ok())
                .unwrap_or(0);
            host.docker
                .update_service(
                    &name,
                    spec,
                    UpdateServiceOptions {
                        version,
                        ..Default::default()
                    },
                    creds,
                )
                .await
                .map(|_| ())
                .map_err(docker_err(host, &format!("update service {name}")))
        }
    }
}

/// The stored spec of a service, to scale it without touching the rest.
pub async fn spec_of(host: &Host, name: &str) -> Result<Option<ServiceSpec>, SwarmError> {
    Ok(inspect(host, name).await?.and_then(|s| s.spec))
}

pub async fn remove(host: &Host, name: &str) -> Result<(), SwarmError> {
    match host.docker.delete_service(name).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(SwarmError::docker(host.name(), format!("remove {name}"), e)),
    }
}

/// The attachable overlay network of the service, created when missing.
pub async fn ensure_network(host: &Host, name: &str) -> Result<(), SwarmError> {
    match host
        .docker
        .inspect_network(
            name,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    {
        Ok(_) => return Ok(()),
        Err(e) if is_not_found(&e) => {}
        Err(e) => {
            return Err(SwarmError::docker(
                host.name(),
                format!("inspect network {name}"),
                e,
            ));
        }
    }
    host.docker
        .create_network(NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(docker_err(host, &format!("create overlay network {name}")))
}

/// The running container of the proxy's task on the manager (where deckhand can exec).
pub async fn proxy_container(host: &Host, proxy: &str) -> Result<Option<String>, SwarmError> {
    let filters = HashMap::from([
        (
            "label".to_string(),
            vec![format!("{LABEL_SWARM_SERVICE}={proxy}")],
        ),
        ("status".to_string(), vec!["running".to_string()]),
    ]);
    let list: Vec<ContainerSummary> = host
        .docker
        .list_containers(Some(ListContainersOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .map_err(docker_err(host, "list the proxy's containers"))?;
    Ok(list.into_iter().find_map(|c| c.id))
}

/// Writes the proxy's config into its directory on the manager (before the first task starts,
/// and as the file a rescheduled task reads). The values are positional parameters.
pub async fn write_conf(host: &Host, dir: &str, text: &str) -> Result<(), SwarmError> {
    host.exec_ok(
        "sh",
        &[
            "-c",
            r#"umask 077 && mkdir -p "$1" && cat > "$1/haproxy.cfg.deckhand-new" && mv -f "$1/haproxy.cfg.deckhand-new" "$1/haproxy.cfg""#,
            "deckhand-swarm-conf",
            dir,
        ],
        Some(text.as_bytes()),
    )
    .await?;
    Ok(())
}

/// The config file the proxy reads, if there is one.
pub async fn read_conf(host: &Host, dir: &str) -> Result<Option<String>, SwarmError> {
    let out = host
        .exec(
            "sh",
            &[
                "-c",
                r#"if [ -f "$1/haproxy.cfg" ]; then cat "$1/haproxy.cfg"; else exit 3; fi"#,
                "deckhand-swarm-conf",
                dir,
            ],
            None,
        )
        .await?;
    Ok(out.success().then(|| out.stdout_text()))
}
