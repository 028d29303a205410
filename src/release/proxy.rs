//! The proxy on a host: network, nginx container, config switch with validation and reload,
//! and confirmation through the public port.

use std::collections::HashMap;
use std::time::Duration;

use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, ExecConfig, HostConfig, NetworkCreateRequest,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{CreateContainerOptions, UploadToContainerOptions};
use futures_util::StreamExt;

use super::{EventSink, ReleaseError};
use crate::config::Service;
use crate::state::Color;
use crate::state::contract::{
    COLOR_HEADER, LABEL_ROLE, LABEL_SERVICE, PROXY_CONF_DIR, PROXY_CONF_FILE,
};
use crate::state::proxy_conf::{self, ProxyRoute};
use crate::transport::Host;

pub(crate) fn docker_err(host: &Host, what: &str, e: &bollard::errors::Error) -> ReleaseError {
    ReleaseError::Docker {
        host: host.name().to_string(),
        detail: format!("{what}: {}", crate::util::error_chain(e)),
    }
}

pub async fn ensure_network(host: &Host, service: &Service) -> Result<(), ReleaseError> {
    let name = service.network_name();
    if host.docker.inspect_network(&name, None).await.is_ok() {
        return Ok(());
    }
    let mut labels = HashMap::new();
    labels.insert(LABEL_SERVICE.to_string(), service.name.clone());
    match host
        .docker
        .create_network(NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            labels: Some(labels),
            ..Default::default()
        })
        .await
    {
        Ok(_) => Ok(()),
        // Another deckhand created it in between: fine.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(e) => Err(docker_err(host, &format!("create network {name}"), &e)),
    }
}

/// Runs a command inside a container; returns exit code and combined output.
pub async fn exec_in(
    host: &Host,
    container: &str,
    cmd: &[&str],
) -> Result<(i64, String), ReleaseError> {
    let exec = host
        .docker
        .create_exec(
            container,
            ExecConfig {
                cmd: Some(cmd.iter().map(|s| (*s).to_string()).collect()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| docker_err(host, &format!("exec in {container}"), &e))?;
    let mut text = String::new();
    if let StartExecResults::Attached { mut output, .. } = host
        .docker
        .start_exec(&exec.id, Some(StartExecOptions::default()))
        .await
        .map_err(|e| docker_err(host, &format!("exec in {container}"), &e))?
    {
        while let Some(Ok(chunk)) = output.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
    }
    let code = host
        .docker
        .inspect_exec(&exec.id)
        .await
        .map_err(|e| docker_err(host, "inspect exec", &e))?
        .exit_code
        .unwrap_or(-1);
    Ok((code, text.trim().to_string()))
}

pub(crate) async fn upload_conf(
    host: &Host,
    container: &str,
    conf: &str,
) -> Result<(), ReleaseError> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(conf.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0));
    header.set_cksum();
    builder
        .append_data(&mut header, PROXY_CONF_FILE, conf.as_bytes())
        .map_err(|e| ReleaseError::Refused(format!("building the config archive: {e}")))?;
    let bytes = builder
        .into_inner()
        .map_err(|e| ReleaseError::Refused(format!("building the config archive: {e}")))?;
    host.docker
        .upload_to_container(
            container,
            Some(UploadToContainerOptions {
                path: PROXY_CONF_DIR.to_string(),
                ..Default::default()
            }),
            bollard::body_full(bytes.into()),
        )
        .await
        .map_err(|e| docker_err(host, &format!("write the config of {container}"), &e))
}

/// Makes sure the proxy container exists and runs. When it is created or restarted here, it
/// starts with `route` (used on a first deploy, or when someone removed or stopped the proxy).
pub async fn ensure_proxy(
    host: &Host,
    service: &Service,
    route: &ProxyRoute,
    events: &EventSink,
) -> Result<bool, ReleaseError> {
    let name = service.proxy_container();
    let exists = match host.docker.inspect_container(&name, None).await {
        Ok(ins) => Some(ins.state.and_then(|s| s.running).unwrap_or(false)),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => None,
        Err(e) => return Err(docker_err(host, "inspect the proxy", &e)),
    };
    match exists {
        Some(true) => return Ok(false),
        Some(false) => {
            upload_conf(host, &name, &proxy_conf::render(service, route)).await?;
        }
        None => {
            super::pull::ensure_image(host, &service.proxy_image, events).await?;
            create_proxy(host, service).await?;
            upload_conf(host, &name, &proxy_conf::render(service, route)).await?;
        }
    }
    host.docker
        .start_container(&name, None)
        .await
        .map_err(|e| docker_err(host, "start the proxy", &e))?;
    let (code, out) = exec_in(host, &name, &["nginx", "-t"]).await?;
    if code != 0 {
        return Err(ReleaseError::Switch {
            host: host.name().to_string(),
            detail: format!("the new proxy's config does not validate: {out}"),
            live_note: "no traffic was switched".into(),
        });
    }
    Ok(true)
}

async fn create_proxy(host: &Host, service: &Service) -> Result<(), ReleaseError> {
    let name = service.proxy_container();
    let mut labels = HashMap::new();
    labels.insert(LABEL_SERVICE.to_string(), service.name.clone());
    labels.insert(LABEL_ROLE.to_string(), "proxy".to_string());
    let mut ports = HashMap::new();
    ports.insert(
        "80/tcp".to_string(),
        Some(vec![PortBinding {
            host_ip: None,
            host_port: Some(service.public_port.to_string()),
        }]),
    );
    let mut endpoints = HashMap::new();
    endpoints.insert(service.network_name(), EndpointSettings::default());
    host.docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(service.proxy_image.clone()),
                labels: Some(labels),
                exposed_ports: Some(vec!["80/tcp".to_string()]),
                host_config: Some(HostConfig {
                    port_bindings: Some(ports),
                    network_mode: Some(service.network_name()),
                    restart_policy: Some(RestartPolicy {
                        name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                        maximum_retry_count: None,
                    }),
                    ..Default::default()
                }),
                networking_config: Some(NetworkingConfig {
                    endpoints_config: Some(endpoints),
                }),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| docker_err(host, &format!("create the proxy {name}"), &e))?;
    Ok(())
}

/// Points the running proxy at `route`: write, validate (`nginx -t`), graceful reload. A config
/// that does not validate is replaced by the previous one, so nginx never loads a broken file.
pub async fn switch(
    host: &Host,
    service: &Service,
    route: &ProxyRoute,
    previous: Option<&str>,
) -> Result<(), ReleaseError> {
    let name = service.proxy_container();
    upload_conf(host, &name, &proxy_conf::render(service, route)).await?;
    let (code, out) = exec_in(host, &name, &["nginx", "-t"]).await?;
    if code != 0 {
        if let Some(prev) = previous {
            upload_conf(host, &name, prev).await?;
        }
        return Err(ReleaseError::Switch {
            host: host.name().to_string(),
            detail: format!("nginx -t rejected the new config: {out}"),
            live_note: "the previous config was restored and still serves".into(),
        });
    }
    let (code, out) = exec_in(host, &name, &["nginx", "-s", "reload"]).await?;
    if code != 0 {
        return Err(ReleaseError::Switch {
            host: host.name().to_string(),
            detail: format!("nginx -s reload failed: {out}"),
            live_note: "nginx keeps serving its previous config".into(),
        });
    }
    Ok(())
}

/// Waits until requests through the public port are answered by `color` (reload hands over
/// to new workers asynchronously, so the first answers may still come from the old ones).
pub async fn confirm(
    host: &Host,
    service: &Service,
    color: Color,
    within: Duration,
) -> Result<(), String> {
    let endpoint = host
        .http(service.public_port, Duration::from_secs(3))
        .await
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + within;
    let mut last;
    loop {
        match endpoint
            .client
            .get(endpoint.url(&service.health_path))
            .send()
            .await
        {
            Ok(resp) => {
                let seen = resp
                    .headers()
                    .get(COLOR_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                if seen == color.as_str() {
                    return Ok(());
                }
                last = format!("HTTP {} answered by color `{seen}`", resp.status().as_u16());
            }
            Err(e) => last = crate::util::error_chain(&e),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "port {} did not answer from {color} within {}s: {last}",
                service.public_port,
                within.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
