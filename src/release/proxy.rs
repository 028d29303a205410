//! The proxy on a host: network, HAProxy container (created, restarted, or replaced when the
//! config describes another image or port), the in-memory switch mirrored to disk, the drain
//! by in-flight requests, and confirmation through the public port.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, NetworkCreateRequest, PortBinding, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, RenameContainerOptions, StopContainerOptions,
    UploadToContainerOptions,
};

use super::{EventSink, ReleaseError};
use crate::config::Service;
use crate::state::Color;
use crate::state::contract::{
    COLOR_HEADER, LABEL_ROLE, LABEL_SERVICE, PROXY_CONF_DIR, PROXY_CONF_FILE, PROXY_HELPER,
    app_container,
};
use crate::state::proxy_api::{self, ServerStat};
use crate::state::proxy_conf::{self, ProxyRoute};
use crate::transport::Host;

pub(crate) fn docker_err(host: &Host, what: &str, e: bollard::errors::Error) -> ReleaseError {
    ReleaseError::Docker {
        host: host.name().to_string(),
        detail: format!("{what}: {}", crate::util::error_chain(&e)),
        source: Some(e),
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
        Err(e) => Err(docker_err(host, &format!("create network {name}"), e)),
    }
}

/// Runs a command inside a container; returns exit code and combined output.
pub async fn exec_in(
    host: &Host,
    container: &str,
    cmd: &[&str],
) -> Result<(i64, String), ReleaseError> {
    proxy_api::exec(host, container, cmd)
        .await
        .map(|(code, out)| (code, out.trim().to_string()))
        .map_err(|e| docker_err(host, &format!("exec in {container}"), e))
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
        .map_err(|e| docker_err(host, &format!("write the config of {container}"), e))
}

/// Makes sure the proxy container exists, runs, and is the one the config describes. When it is
/// created, restarted or replaced here it starts with `route`: a first deploy, a proxy someone
/// stopped or removed, or `change` (from the plan: another `proxy_image` or `public_port`, or
/// the earlier nginx proxy). Returns whether it was (re)started; it then already serves `route`.
pub async fn ensure_proxy(
    host: &Host,
    service: &Service,
    route: &ProxyRoute,
    change: Option<&str>,
    events: &EventSink,
) -> Result<bool, ReleaseError> {
    let seen = host
        .docker
        .inspect_container(&service.proxy_container(), None)
        .await;
    ensure_proxy_seen(host, service, route, change, events, seen).await
}

/// [`ensure_proxy`] with the proxy's inspect already made (beside other requests).
pub async fn ensure_proxy_seen(
    host: &Host,
    service: &Service,
    route: &ProxyRoute,
    change: Option<&str>,
    events: &EventSink,
    seen: Result<bollard::models::ContainerInspectResponse, bollard::errors::Error>,
) -> Result<bool, ReleaseError> {
    let name = service.proxy_container();
    let running = match seen {
        Ok(ins) => Some(ins.state.and_then(|s| s.running).unwrap_or(false)),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => None,
        Err(e) => return Err(docker_err(host, "inspect the proxy", e)),
    };
    if running != Some(true) || change.is_some() {
        // Execs created in the container that is about to be replaced or started must not be
        // taken for reads of the new one.
        host.spare_execs.forget(&name);
    }
    match running {
        Some(_) if change.is_some() => {
            replace_proxy(host, service, route, change.unwrap_or_default(), events).await?;
            return Ok(true);
        }
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
        .map_err(|e| docker_err(host, "start the proxy", e))?;
    wait_ready(host, &name)
        .await
        .map_err(|detail| ReleaseError::Switch {
            host: host.name().to_string(),
            detail,
            live_note: "no traffic was switched".into(),
        })?;
    // The live server's address now, rather than at HAProxy's first DNS answer.
    apply(host, service, route)
        .await
        .map_err(|detail| ReleaseError::Switch {
            host: host.name().to_string(),
            detail,
            live_note: "the proxy was started but does not route yet".into(),
        })?;
    Ok(true)
}

/// Replaces the proxy container by one the config describes. The old one is renamed and
/// stopped (freeing the public port), not removed, until the new one answers; if the new one
/// fails, the old one is put back and started, so its routing (memory and disk) is what it was.
async fn replace_proxy(
    host: &Host,
    service: &Service,
    route: &ProxyRoute,
    why: &str,
    events: &EventSink,
) -> Result<(), ReleaseError> {
    let name = service.proxy_container();
    let old = format!("{name}-replaced");
    // Pulled before anything changes: an image that cannot be pulled leaves the old proxy alone.
    super::pull::ensure_image(host, &service.proxy_image, events).await?;
    remove_quietly(host, &old).await;
    rename(host, &name, &old).await?;
    let _ = host
        .docker
        .stop_container(
            &old,
            Some(StopContainerOptions {
                t: Some(5),
                ..Default::default()
            }),
        )
        .await;
    let attempt = async {
        create_proxy(host, service).await?;
        upload_conf(host, &name, &proxy_conf::render(service, route)).await?;
        host.docker
            .start_container(&name, None)
            .await
            .map_err(|e| docker_err(host, "start the new proxy", e))?;
        wait_ready(host, &name)
            .await
            .map_err(|detail| ReleaseError::Docker {
                host: host.name().to_string(),
                detail,
                source: None,
            })?;
        // The live server's address now, rather than at HAProxy's first DNS answer.
        apply(host, service, route)
            .await
            .map_err(|detail| ReleaseError::Docker {
                host: host.name().to_string(),
                detail,
                source: None,
            })
    };
    match attempt.await {
        Ok(()) => {
            remove_quietly(host, &old).await;
            Ok(())
        }
        Err(e) => {
            remove_quietly(host, &name).await;
            let restored = async {
                rename(host, &old, &name).await?;
                host.docker
                    .start_container(&name, None)
                    .await
                    .map_err(|e| docker_err(host, "restart the previous proxy", e))
            };
            let live_note = match restored.await {
                Ok(()) => format!(
                    "the previous proxy was put back and serves as before (its own config, port {} is unchanged)",
                    service.public_port
                ),
                Err(r) => format!(
                    "the previous proxy could not be put back ({r}): nothing serves through the proxy; fix the cause and deploy again"
                ),
            };
            Err(ReleaseError::Switch {
                host: host.name().to_string(),
                detail: format!("replacing the proxy ({why}) failed: {e}"),
                live_note,
            })
        }
    }
}

async fn rename(host: &Host, from: &str, to: &str) -> Result<(), ReleaseError> {
    host.docker
        .rename_container(
            from,
            RenameContainerOptions {
                name: to.to_string(),
            },
        )
        .await
        .map_err(|e| docker_err(host, &format!("rename {from} to {to}"), e))
}

async fn remove_quietly(host: &Host, name: &str) {
    let _ = host
        .docker
        .remove_container(
            name,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
}

/// Waits until the proxy's admin socket answers (HAProxy parsed its config and listens).
async fn wait_ready(host: &Host, name: &str) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let last = match proxy_api::cli(host, name, &proxy_api::stat_command()).await {
            Ok((0, out)) if !proxy_api::parse_show_stat(&out).is_empty() => return Ok(()),
            Ok((code, out)) => format!("exit {code}: {}", out.trim()),
            Err(e) => crate::util::error_chain(&e),
        };
        // `exit 127`: the shell that wraps the exec found no helper.
        if last.contains("executable file not found") || last.starts_with("exit 127:") {
            return Err(format!(
                "the proxy image has no {PROXY_HELPER}: proxy_image must be deckhand's HAProxy image (infrastructure/docker/haproxy): {last}"
            ));
        }
        if tokio::time::Instant::now() >= deadline {
            let logs = super::container::tail_logs(host, name).await;
            return Err(format!(
                "the proxy's admin socket did not answer within 10s: {last}\n{logs}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create_proxy(host: &Host, service: &Service) -> Result<(), ReleaseError> {
    let name = service.proxy_container();
    let mut labels = HashMap::new();
    labels.insert(LABEL_SERVICE.to_string(), service.name.clone());
    labels.insert(LABEL_ROLE.to_string(), "proxy".to_string());
    let (host_config, networking_config) = super::container::on_service_network(
        service,
        "80/tcp",
        PortBinding {
            host_ip: None,
            host_port: Some(service.public_port.to_string()),
        },
        RestartPolicyNameEnum::UNLESS_STOPPED,
    );
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
                host_config: Some(host_config),
                networking_config: Some(networking_config),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| docker_err(host, &format!("create the proxy {name}"), e))?;
    Ok(())
}

/// The address of a color's container on the service's network, if it has one now.
pub(crate) async fn container_addr(host: &Host, service: &Service, color: Color) -> Option<String> {
    let ins = host
        .docker
        .inspect_container(&app_container(service, color), None)
        .await
        .ok()?;
    ins.network_settings?
        .networks?
        .get(&service.network_name())?
        .ip_address
        .clone()
        .filter(|a| !a.is_empty())
}

/// Moves the live color to `route` in the running proxy's memory and mirrors it to its config
/// file, in one exec (`deckhand-proxy apply`): no reload, no client connection closed. The same
/// exec returns HAProxy's server states, which must show `route.color` alone in rotation. On
/// failure the previous route is applied again (memory and disk) and the error says what serves.
pub async fn switch(
    host: &Host,
    service: &Service,
    route: &ProxyRoute,
    previous: Option<&ProxyRoute>,
) -> Result<(), ReleaseError> {
    switch_at(host, service, route, previous, None, None).await
}

/// A switch's exec, created before the switch (beside the lock check after the health wait):
/// the switch is then one round trip. Nothing runs until [`switch_at`] starts it.
pub struct PreparedSwitch {
    exec: proxy_api::Prepared,
    cmd: Vec<String>,
}

/// The words of the exec that moves the live color to `route` (`deckhand-proxy apply`).
fn apply_cmd(service: &Service, route: &ProxyRoute, addr: Option<&str>) -> Vec<String> {
    let commands = proxy_api::switch_commands(route.color, addr, service.app_port);
    let conf = proxy_conf::render(service, route);
    vec![PROXY_HELPER.to_string(), "apply".into(), conf, commands]
}

/// Creates the exec of the switch to `route` at `addr` in the running proxy. `None` if it
/// cannot be created now: the switch then creates its own.
pub async fn prepare_switch(
    host: &Host,
    service: &Service,
    route: &ProxyRoute,
    addr: &str,
) -> Option<PreparedSwitch> {
    let cmd = apply_cmd(service, route, Some(addr));
    let words: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let exec = proxy_api::prepare(host, &service.proxy_container(), &words)
        .await
        .ok()?;
    Some(PreparedSwitch { exec, cmd })
}

/// [`switch`] with the new color's address already known (from its last inspect), which saves
/// the inspect before the exec.
pub async fn switch_at(
    host: &Host,
    service: &Service,
    route: &ProxyRoute,
    previous: Option<&ProxyRoute>,
    addr: Option<String>,
    prepared: Option<PreparedSwitch>,
) -> Result<(), ReleaseError> {
    let detail = match apply_at(host, service, route, addr, prepared).await {
        Ok(()) => return Ok(()),
        Err(d) => d,
    };
    let live_note = match previous {
        Some(prev) if prev.color != route.color => match apply(host, service, prev).await {
            Ok(()) => format!(
                "the previous route was restored in memory and on disk: {} ({}) serves",
                prev.sha, prev.color
            ),
            Err(d) => format!(
                "restoring the previous route failed too ({d}); {}",
                what_serves(host, service).await
            ),
        },
        _ => what_serves(host, service).await,
    };
    Err(ReleaseError::Switch {
        host: host.name().to_string(),
        detail,
        live_note,
    })
}

async fn apply(host: &Host, service: &Service, route: &ProxyRoute) -> Result<(), String> {
    apply_at(host, service, route, None, None).await
}

async fn apply_at(
    host: &Host,
    service: &Service,
    route: &ProxyRoute,
    addr: Option<String>,
    prepared: Option<PreparedSwitch>,
) -> Result<(), String> {
    let addr = match addr {
        Some(a) => Some(a),
        None => container_addr(host, service, route.color).await,
    };
    let cmd = apply_cmd(service, route, addr.as_deref());
    let words: Vec<&str> = cmd.iter().map(String::as_str).collect();
    let container = service.proxy_container();
    let ran = match prepared.filter(|p| p.cmd == cmd) {
        // `apply` sets the same state however often it runs, so a prepared exec that could
        // not be started (the proxy was restarted since) is simply made again.
        Some(p) => match proxy_api::start(host, p.exec).await {
            Ok(r) => Ok(r),
            Err(e) => {
                tracing::debug!(host = host.name(), error = %e, "the prepared switch could not be started");
                proxy_api::exec(host, &container, &words).await
            }
        },
        None => proxy_api::exec(host, &container, &words).await,
    };
    let (code, out) = ran.map_err(|e| crate::util::error_chain(&e))?;
    let stats = proxy_api::parse_show_stat(&out);
    match (code, proxy_api::serving_color(&stats)) {
        (0, Some(c)) if c == route.color => Ok(()),
        (0, _) => Err(format!(
            "after the switch HAProxy has {} in rotation ({})",
            describe(&stats),
            out.trim()
        )),
        (code, _) => Err(format!(
            "{PROXY_HELPER} apply exited {code}: {}",
            out.trim()
        )),
    }
}

fn describe(stats: &std::collections::BTreeMap<Color, ServerStat>) -> String {
    let live: Vec<&str> = stats
        .iter()
        .filter(|(_, s)| s.in_rotation())
        .map(|(c, _)| c.as_str())
        .collect();
    if live.is_empty() {
        "no color".into()
    } else {
        live.join(" and ")
    }
}

/// What the proxy serves right now, in words, for messages after a failure.
pub async fn what_serves(host: &Host, service: &Service) -> String {
    match proxy_api::cli(host, &service.proxy_container(), &proxy_api::stat_command()).await {
        Ok((0, out)) => {
            let stats = proxy_api::parse_show_stat(&out);
            match proxy_api::serving_color(&stats) {
                Some(c) => format!("the proxy serves {c}"),
                None => format!("the proxy has {} in rotation", describe(&stats)),
            }
        }
        Ok((code, out)) => format!(
            "the proxy's admin socket does not answer (exit {code}: {})",
            out.trim()
        ),
        Err(e) => format!(
            "the proxy cannot be asked what it serves: {}",
            crate::util::error_chain(&e)
        ),
    }
}

/// How a drain ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Drained {
    pub waited: Duration,
    /// Requests still in flight on the old color when the drain timeout ran out.
    pub left: u64,
    /// Whether the proxy could be asked at all (if not, the whole timeout was waited).
    pub measured: bool,
}

/// Waits until the proxy has no request in flight (served or queued) on `old`, or `timeout`.
pub async fn drain(host: &Host, service: &Service, old: Color, timeout: Duration) -> Drained {
    let started = tokio::time::Instant::now();
    let name = service.proxy_container();
    let mut measured = false;
    loop {
        let left = match proxy_api::cli(host, &name, &proxy_api::stat_command()).await {
            Ok((0, out)) => {
                let stats = proxy_api::parse_show_stat(&out);
                stats.get(&old).map(|s| {
                    measured = true;
                    s.in_flight()
                })
            }
            _ => None,
        };
        if left == Some(0) || started.elapsed() >= timeout {
            return Drained {
                waited: started.elapsed(),
                left: left.unwrap_or(0),
                measured,
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One request through the public port, answer ignored: it opens the kept-alive connection
/// that [`confirm`] then reuses (no new channel and connection after the switch).
pub async fn open_public(host: &Host, service: &Service) {
    if let Ok(endpoint) = host.http(service.public_port, CONFIRM_TIMEOUT).await {
        let trip = endpoint.trip();
        let _ = endpoint.get(&service.health_path).send().await;
        trip.end();
    }
}

const CONFIRM_TIMEOUT: Duration = Duration::from_secs(3);

/// Waits until requests through the public port are answered by `color` (reload hands over
/// to new workers asynchronously, so the first answers may still come from the old ones).
pub async fn confirm(
    host: &Host,
    service: &Service,
    color: Color,
    within: Duration,
) -> Result<(), String> {
    let endpoint = host
        .http(service.public_port, CONFIRM_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + within;
    let mut last;
    loop {
        let trip = endpoint.trip();
        let sent = endpoint.get(&service.health_path).send().await;
        trip.end();
        match sent {
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
