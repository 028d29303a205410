//! Reading hosts back: containers, proxy route, images, health and host facts.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{DownloadFromContainerOptions, ListImagesOptions};
use futures_util::{StreamExt, future::join_all};

use super::contract::{
    LABEL_COLOR, LABEL_DEPLOYED_AT, LABEL_DEPLOYED_BY, LABEL_SERVICE, LABEL_SHA, NGINX_CONF_DIR,
    NGINX_CONF_FILE, PROXY_CONF_DIR, PROXY_CONF_FILE, app_container,
};
use super::facts::read_facts;
use super::{
    Color, ColorStatus, ContainerState, EnvStatus, HealthReport, HostStatus, ImageInfo, ProxyKind,
    ProxyStatus, ServiceStatus, ServiceTraffic, image_tag, is_protected_tag, probe_health,
    proxy_conf,
};
use crate::config::{Environment, HostSpec, Service};
use crate::transport::{Host, TripCount};

/// How long one `/health` probe may take during a status read.
const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Reads every host of an environment concurrently; a slow or dead host only delays its own row
/// (each connect is bounded by the host's connect timeout).
pub async fn read_env(env: &Environment, services: &[Service]) -> EnvStatus {
    read_env_timed(env, services).await.0
}

/// [`read_env`], with how long each host's connect took and its round trips (`None` for a
/// host that could not be reached), in the hosts' order.
pub async fn read_env_timed(
    env: &Environment,
    services: &[Service],
) -> (EnvStatus, Vec<Option<ReadTimings>>) {
    let (hosts, timings) = join_all(env.hosts.iter().map(|h| status_of_host_timed(h, services)))
        .await
        .into_iter()
        .unzip();
    (
        EnvStatus {
            env: env.name.clone(),
            hosts,
        },
        timings,
    )
}

/// What one host's status read cost: the connect (ssh handshake and forward) and the remote
/// operations of the whole read (see [`crate::transport::trips`]).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ReadTimings {
    pub connect_ms: u64,
    pub trips: TripCount,
}

/// Connects, reads and disconnects one host. Never fails: an unreachable host is a row too.
///
/// The reads go out as soon as the ssh link stands, beside the connect's `/version` request
/// ([`Host::connect_early`]); whether the engine answered decides if the host is reachable.
pub async fn status_of_host(spec: &HostSpec, services: &[Service]) -> HostStatus {
    status_of_host_timed(spec, services).await.0
}

/// [`status_of_host`] with its timings (`None` when the host could not be reached).
pub async fn status_of_host_timed(
    spec: &HostSpec,
    services: &[Service],
) -> (HostStatus, Option<ReadTimings>) {
    let started = Instant::now();
    let unreachable = |e: crate::transport::TransportError, started: Instant| HostStatus {
        name: spec.name.clone(),
        reachable: false,
        error: Some(e.to_string()),
        facts: None,
        services: Vec::new(),
        read_ms: elapsed_ms(started),
        swarm: None,
    };
    let host = match Host::connect_early(spec).await {
        Ok(h) => h,
        Err(e) => return (unreachable(e, started), None),
    };
    let connected_ms = elapsed_ms(started);
    let (ready, status) = tokio::join!(host.ready(), read_host(&host, services));
    let trips = host.trips();
    host.close().await;
    let mut status = match ready {
        Ok(()) => status,
        Err(e) => return (unreachable(e, started), None),
    };
    status.read_ms = elapsed_ms(started);
    tracing::debug!(host = %spec.name, connect_ms = connected_ms, read_ms = status.read_ms, %trips, "status read");
    (
        status,
        Some(ReadTimings {
            connect_ms: connected_ms,
            trips,
        }),
    )
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Reads a connected host.
pub async fn read_host(host: &Host, services: &[Service]) -> HostStatus {
    if crate::swarm::is_swarm(host) {
        return crate::swarm::status::read_host(host, services).await;
    }
    let started = Instant::now();
    let (facts, svc_results) = tokio::join!(
        read_facts(host),
        join_all(services.iter().map(|s| read_service(host, s)))
    );
    let mut error = None;
    let mut out = Vec::new();
    for (svc, r) in services.iter().zip(svc_results) {
        match r {
            Ok(s) => out.push(s),
            Err(e) => {
                error = Some(format!(
                    "{}: reading service `{}` failed: {e}",
                    host.name(),
                    svc.name
                ));
            }
        }
    }
    HostStatus {
        name: host.name().to_string(),
        reachable: true,
        error,
        facts: Some(facts),
        services: out,
        read_ms: elapsed_ms(started),
        swarm: None,
    }
}

/// Reads one service on a connected host.
///
/// Everything that does not depend on another answer goes out at once, so over a slow link a
/// read costs about two round trips after the connect, not one per request: both colors are
/// inspected by their contract names (no list first), the proxy is inspected while its config
/// file and its traffic are read, and the image list comes alongside. Only the `/health` probes
/// wait, for the ports the inspects name.
pub async fn read_service(
    host: &Host,
    service: &Service,
) -> Result<ServiceStatus, bollard::errors::Error> {
    read_scoped(host, service, Scope::FULL).await
}

/// What a release plans from under its lock: [`read_service`] without the `/health` probes
/// (they wait for the inspects and open a connection: one round trip more than the rest of
/// the read). A plan needs a color's health only when that color serves the target already;
/// [`probe_color`] asks it then.
pub async fn read_for_plan(
    host: &Host,
    service: &Service,
) -> Result<ServiceStatus, bollard::errors::Error> {
    read_scoped(host, service, Scope::FOR_PLAN).await
}

/// Probes `/health` of `color` in `status` (read without probes) when it runs with a port.
pub async fn probe_color(host: &Host, service: &Service, status: &mut ServiceStatus, color: Color) {
    let Some(Some(s)) = status.colors.get_mut(&color) else {
        return;
    };
    if s.state != ContainerState::Running {
        return;
    }
    if let Some(port) = s.host_port {
        s.health = Some(probe_health(host, port, &service.health_path, HEALTH_PROBE_TIMEOUT).await);
    }
}

/// What a read asks besides the colors' and the proxy's inspects and the proxy's traffic.
#[derive(Clone, Copy)]
struct Scope {
    probes: bool,
    images: bool,
    problems: bool,
}

impl Scope {
    const FULL: Scope = Scope {
        probes: true,
        images: true,
        problems: true,
    };
    const FOR_PLAN: Scope = Scope {
        probes: false,
        ..Scope::FULL
    };
    const SERVING: Scope = Scope {
        probes: false,
        images: false,
        problems: false,
    };
}

/// What serves, read as [`read_service`] does but without the image list and the `/health`
/// probes (its `images` are empty, its colors carry no health, and it names no problems): the
/// read back after a release, beside its audit record. Those two are the reads that cost the
/// engine most and, for the probes, a round trip more.
pub async fn read_serving(
    host: &Host,
    service: &Service,
) -> Result<ServiceStatus, bollard::errors::Error> {
    read_scoped(host, service, Scope::SERVING).await
}

async fn read_scoped(
    host: &Host,
    service: &Service,
    scope: Scope,
) -> Result<ServiceStatus, bollard::errors::Error> {
    // A Swarm manager (issue 16): the colors are Swarm services, read by `crate::swarm`; so
    // the monitor, prune and "serves now" see the Swarm as the release engine does.
    if crate::swarm::is_swarm(host) {
        return crate::swarm::read_service(host, service)
            .await
            .map_err(crate::swarm::SwarmError::into_docker);
    }
    let colors_and_health = async {
        // A probe of the port a color was last seen on goes out beside the inspects; it
        // counts only if the inspect names that port for the running color (issue 14: the
        // probe no longer waits two round trips for the inspect).
        let guessed: Vec<(Color, u16)> = Color::BOTH
            .iter()
            .filter(|_| scope.probes)
            .filter_map(|c| host.ports.get(&app_container(service, *c)).map(|p| (*c, p)))
            .collect();
        let (inspected, early) = tokio::join!(
            join_all(Color::BOTH.iter().map(|c| inspect_color(host, service, *c))),
            join_all(guessed.iter().map(|(_, port)| {
                probe_health(host, *port, &service.health_path, HEALTH_PROBE_TIMEOUT)
            })),
        );
        let mut early: BTreeMap<Color, (u16, HealthReport)> = guessed
            .into_iter()
            .zip(early)
            .map(|((c, port), r)| (c, (port, r)))
            .collect();
        let mut colors: BTreeMap<Color, Option<ColorStatus>> = BTreeMap::new();
        for (c, ins) in Color::BOTH.iter().zip(inspected) {
            colors.insert(*c, ins?.map(|i| color_status(&i, service)));
        }
        let mut probes: Vec<(Color, u16)> = Vec::new();
        for (c, s) in &mut colors {
            let port = s
                .as_ref()
                .filter(|s| s.state == ContainerState::Running)
                .and_then(|s| s.host_port);
            host.ports.set(&app_container(service, *c), port);
            let (Some(port), Some(s), true) = (port, s.as_mut(), scope.probes) else {
                continue;
            };
            match early.remove(c) {
                Some((guess, report)) if guess == port => s.health = Some(report),
                _ => probes.push((*c, port)),
            }
        }
        let reports = join_all(probes.iter().map(|(_, port)| {
            probe_health(host, *port, &service.health_path, HEALTH_PROBE_TIMEOUT)
        }))
        .await;
        for ((color, _), report) in probes.into_iter().zip(reports) {
            if let Some(Some(s)) = colors.get_mut(&color) {
                s.health = Some(report);
            }
        }
        Ok::<_, bollard::errors::Error>(colors)
    };
    let images = async {
        if scope.images {
            list_images(host, service).await
        } else {
            Ok(Vec::new())
        }
    };
    let (colors, proxy, images) = tokio::join!(
        colors_and_health,
        read_proxy_and_served(host, service),
        images,
    );
    let (colors, (proxy, served, traffic)) = (colors?, proxy?);
    let images = images_of(service, images?, &colors);

    let route = match &proxy.upstream {
        Some(conf) => proxy_conf::parse(service, conf),
        None => None,
    };
    let file_color = route.as_ref().map(|(c, _)| *c);
    let canary = proxy
        .upstream
        .as_deref()
        .and_then(|conf| proxy_conf::parse_canary(service, conf));
    let live_color = served.or(file_color);
    let mut divergence = None;
    if let (Some(s), Some(f)) = (served, file_color)
        && s != f
    {
        divergence = Some(format!(
            "the proxy serves {s} but its config file names {f} (a switch was interrupted); the next deploy or rollback settles it"
        ));
    }
    let live_sha = live_color.and_then(|c| {
        colors
            .get(&c)
            .and_then(Option::as_ref)
            .and_then(|s| s.sha.clone())
            .or_else(|| route.as_ref().and_then(|(_, sha)| sha.clone()))
    });
    let proxy = ProxyStatus {
        upstream: live_color.map(|c| format!("{}-{c}:{}", service.name, service.app_port)),
        ..proxy
    };

    let mut status = ServiceStatus {
        name: service.name.clone(),
        live_color,
        live_sha,
        proxy,
        colors,
        images,
        problems: Vec::new(),
        traffic,
        canary,
        settling: None,
    };
    status.settling = status.compute_settling();
    if !scope.problems {
        return Ok(status);
    }
    status.problems = problems(&status);
    status.problems.extend(divergence);
    // HAProxy answered but routes to no single color (a switch left half-way by hand).
    if served.is_none()
        && let Some(t) = &status.traffic
    {
        let on: Vec<&str> = t
            .colors
            .iter()
            .filter(|(_, c)| c.in_rotation)
            .map(|(c, _)| c.as_str())
            .collect();
        // A canary (issue 13) has both colors in rotation on purpose.
        if status.canary.is_some() && on.len() == 2 {
            return Ok(status);
        }
        status.problems.push(if on.is_empty() {
            "the proxy has no color in rotation: it answers 503; the next deploy or rollback settles it".to_string()
        } else {
            format!(
                "the proxy has {} in rotation at once; the next deploy or rollback settles it",
                on.join(" and ")
            )
        });
    }
    Ok(status)
}

/// The proxy container, the color it serves right now, and its traffic. What the proxy serves
/// is the truth: HAProxy's memory (its servers in rotation), or for the earlier nginx proxy the
/// `X-Deckhand-Color` of an answer. The config file can differ when a switch was interrupted.
async fn read_proxy_and_served(
    host: &Host,
    service: &Service,
) -> Result<(ProxyStatus, Option<Color>, Option<ServiceTraffic>), bollard::errors::Error> {
    // The traffic is asked for at once, before the inspect says whether the proxy runs HAProxy;
    // its answer is used only when it does.
    let (proxy, traffic) = tokio::join!(
        read_proxy(host, service),
        super::read_traffic(host, service)
    );
    let proxy = proxy?;
    if !proxy.running {
        return Ok((proxy, None, None));
    }
    match proxy.kind {
        Some(ProxyKind::Haproxy) => match traffic {
            Ok(t) => {
                let serving: Vec<Color> = t
                    .colors
                    .iter()
                    .filter(|(_, c)| c.in_rotation)
                    .map(|(c, _)| *c)
                    .collect();
                let served = match serving.as_slice() {
                    [one] => Some(*one),
                    _ => None,
                };
                Ok((proxy, served, Some(t)))
            }
            Err(e) => {
                tracing::warn!(error = %e, service = %service.name, "reading the proxy's traffic failed");
                Ok((proxy, None, None))
            }
        },
        _ => {
            let served = match proxy.public_port {
                Some(p) => served_color(host, p, &service.health_path).await,
                None => None,
            };
            Ok((proxy, served, None))
        }
    }
}

/// A color's container by its contract name (`S-blue`), if it is one: it must carry the
/// service's and the color's labels (a stray container with that name is not a color).
async fn inspect_color(
    host: &Host,
    service: &Service,
    color: Color,
) -> Result<Option<ContainerInspectResponse>, bollard::errors::Error> {
    let ins = match host
        .docker
        .inspect_container(&app_container(service, color), None)
        .await
    {
        Ok(i) => i,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let labels = ins.config.as_ref().and_then(|c| c.labels.as_ref());
    let ours = labels.is_some_and(|l| {
        l.get(LABEL_SERVICE).map(String::as_str) == Some(service.name.as_str())
            && l.get(LABEL_COLOR).and_then(|c| Color::parse(c)) == Some(color)
    });
    Ok(ours.then_some(ins))
}

/// The color the proxy answers with right now (its `X-Deckhand-Color` header), if it answers.
async fn served_color(host: &Host, port: u16, path: &str) -> Option<Color> {
    let endpoint = host.http(port, HEALTH_PROBE_TIMEOUT).await.ok()?;
    let trip = endpoint.trip();
    let resp = endpoint.get(path).send().await.ok()?;
    trip.end();
    let header = resp
        .headers()
        .get(super::contract::COLOR_HEADER)?
        .to_str()
        .ok()?;
    Color::parse(header)
}

fn color_status(ins: &ContainerInspectResponse, service: &Service) -> ColorStatus {
    let labels = ins
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    let state = ins.state.as_ref();
    let host_port = ins
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref())
        .and_then(|p| p.get(&format!("{}/tcp", service.app_port)))
        .and_then(Option::as_ref)
        .and_then(|bindings| {
            bindings
                .iter()
                .find_map(|b| b.host_port.as_deref().and_then(|p| p.parse().ok()))
        });
    ColorStatus {
        state: state
            .and_then(|s| s.status)
            .map_or(ContainerState::Unknown, |s| {
                ContainerState::parse(s.as_ref())
            }),
        sha: labels.get(LABEL_SHA).cloned(),
        image: ins
            .config
            .as_ref()
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        container_id: ins.id.clone().unwrap_or_default(),
        deployed_at: labels.get(LABEL_DEPLOYED_AT).cloned(),
        deployed_by: labels.get(LABEL_DEPLOYED_BY).cloned(),
        started_at: state
            .and_then(|s| s.started_at.clone())
            .filter(|t| !t.starts_with("0001")),
        finished_at: state
            .and_then(|s| s.finished_at.clone())
            .filter(|t| !t.starts_with("0001")),
        exit_code: state.and_then(|s| s.exit_code),
        // Docker keeps the last verdict of a stopped container; it says nothing about now.
        docker_health: state
            .filter(|s| s.running == Some(true))
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status)
            .map(|s| s.to_string()),
        host_port,
        health: None,
    }
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

async fn read_proxy(host: &Host, service: &Service) -> Result<ProxyStatus, bollard::errors::Error> {
    let name = service.proxy_container();
    // The HAProxy config is read alongside the inspect (a missing container answers 404 to both).
    let (ins, haproxy_conf) = tokio::join!(
        host.docker.inspect_container(&name, None),
        read_file_from_container(host, &name, PROXY_CONF_DIR, PROXY_CONF_FILE)
    );
    let ins = match ins {
        Ok(i) => i,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            return Ok(ProxyStatus {
                exists: false,
                running: false,
                image: None,
                public_port: None,
                upstream: None,
                kind: None,
                drift: None,
            });
        }
        Err(e) => return Err(e),
    };
    let running = ins.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    let public_port = ins
        .host_config
        .as_ref()
        .and_then(|h| h.port_bindings.as_ref())
        .and_then(|p| p.get("80/tcp"))
        .and_then(Option::as_ref)
        .and_then(|b| b.iter().find_map(|b| b.host_port.as_deref()?.parse().ok()));
    // The config is read from the container's filesystem, which works whether or not the proxy
    // runs. No HAProxy config but an nginx one: a host set up with the earlier proxy.
    let (conf, kind) = match haproxy_conf {
        Some(c) => (Some(c), Some(ProxyKind::Haproxy)),
        None => {
            match read_file_from_container(host, &name, NGINX_CONF_DIR, NGINX_CONF_FILE).await {
                Some(c) if proxy_conf::is_nginx_conf(&c) => (Some(c), Some(ProxyKind::Nginx)),
                other => (other, None),
            }
        }
    };
    let image = ins.config.as_ref().and_then(|c| c.image.clone());
    let drift = proxy_drift(service, kind, image.as_deref(), public_port);
    Ok(ProxyStatus {
        exists: true,
        running,
        image,
        public_port,
        upstream: conf,
        kind,
        drift,
    })
}

/// How a proxy differs from what the config describes, in words: the next deploy replaces it.
pub fn proxy_drift(
    service: &Service,
    kind: Option<ProxyKind>,
    image: Option<&str>,
    public_port: Option<u16>,
) -> Option<String> {
    let mut why = Vec::new();
    match kind {
        Some(ProxyKind::Nginx) => why.push(
            "it is the earlier nginx proxy (a switch reloads nginx, which drops keep-alive requests)"
                .to_string(),
        ),
        None => why.push("it has no deckhand HAProxy config".to_string()),
        Some(ProxyKind::Haproxy) => {}
    }
    if image.is_some_and(|i| i != service.proxy_image) && kind == Some(ProxyKind::Haproxy) {
        why.push(format!(
            "it runs {} but the config says proxy_image = \"{}\"",
            image.unwrap_or("?"),
            service.proxy_image
        ));
    }
    if public_port.is_some_and(|p| p != service.public_port) {
        why.push(format!(
            "it publishes port {} but the config says public_port = {} (point the load balancer at the new port)",
            public_port.unwrap_or(0),
            service.public_port
        ));
    }
    (!why.is_empty()).then(|| {
        format!(
            "proxy {}: {}; the next deploy replaces it (open connections are closed once)",
            service.proxy_container(),
            why.join("; ")
        )
    })
}

/// Reads one small file out of a container through the archive API (works for any image,
/// shell or not). `None` when it does not exist.
pub async fn read_file_from_container(
    host: &Host,
    container: &str,
    dir: &str,
    file: &str,
) -> Option<String> {
    let path = format!("{dir}/{file}");
    let mut stream = host
        .docker
        .download_from_container(container, Some(DownloadFromContainerOptions { path }));
    let mut tar_bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        tar_bytes.extend_from_slice(&chunk.ok()?);
        if tar_bytes.len() > 4 * 1024 * 1024 {
            return None;
        }
    }
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut entry = archive.entries().ok()?.next()?.ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).ok()?;
    Some(text)
}

/// The images of a service, and which color uses each (for readers that have the colors
/// already, such as a Swarm's).
pub(crate) async fn read_images(
    host: &Host,
    service: &Service,
    colors: &BTreeMap<Color, Option<ColorStatus>>,
) -> Result<Vec<ImageInfo>, bollard::errors::Error> {
    Ok(images_of(
        service,
        list_images(host, service).await?,
        colors,
    ))
}

async fn list_images(
    host: &Host,
    service: &Service,
) -> Result<Vec<bollard::models::ImageSummary>, bollard::errors::Error> {
    let mut filters = HashMap::new();
    // Docker matches references in its short form (`docker.io/acme/api` lists nothing).
    filters.insert(
        "reference".to_string(),
        vec![super::images::normalize_repository(&service.image).to_string()],
    );
    host.docker
        .list_images(Some(ListImagesOptions {
            all: false,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
}

/// The repository's images, newest first, with the color that uses each.
fn images_of(
    service: &Service,
    images: Vec<bollard::models::ImageSummary>,
    colors: &BTreeMap<Color, Option<ColorStatus>>,
) -> Vec<ImageInfo> {
    let mut out = Vec::new();
    for img in images {
        let tags: Vec<&str> = img
            .repo_tags
            .iter()
            .filter_map(|t| image_tag(&service.image, t))
            .collect();
        for tag in &tags {
            let in_use_by = colors.iter().find_map(|(c, s)| {
                s.as_ref()
                    .filter(|s| {
                        s.image == format!("{}:{tag}", service.image)
                            || s.sha.as_deref() == Some(tag)
                    })
                    .map(|_| *c)
            });
            out.push(ImageInfo {
                tag: (*tag).to_string(),
                id: img.id.clone(),
                created: unix_to_rfc3339(img.created),
                created_unix: img.created,
                size_bytes: u64::try_from(img.size).unwrap_or(0),
                in_use_by,
                protected: is_protected_tag(tag, &service.protected_tags),
                also_tagged: tags
                    .iter()
                    .filter(|t| *t != tag)
                    .map(|t| (*t).to_string())
                    .collect(),
            });
        }
    }
    // Newest first; ties (same image, several tags) by tag for a stable order.
    out.sort_by(|a, b| {
        b.created_unix
            .cmp(&a.created_unix)
            .then_with(|| a.tag.cmp(&b.tag))
    });
    out
}

pub(crate) fn unix_to_rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn problems(s: &ServiceStatus) -> Vec<String> {
    let mut p = Vec::new();
    if !s.proxy.exists {
        if s.colors.values().any(Option::is_some) {
            p.push(format!("proxy container {}-proxy is missing", s.name));
        } else {
            p.push("not deployed on this host".to_string());
        }
        return p;
    }
    if !s.proxy.running {
        p.push(format!("proxy container {}-proxy is not running", s.name));
    }
    let Some(live) = s.live_color else {
        p.push("the proxy config names no live color".to_string());
        return p;
    };
    match s.color(live) {
        None => p.push(format!("live color {live} has no container")),
        Some(c) if c.state != ContainerState::Running => {
            p.push(format!("live color {live} is {}", c.state.as_str()));
        }
        Some(c) => {
            if let Some(h) = &c.health
                && let Some(e) = &h.error
            {
                p.push(format!("live color {live} is unhealthy: {e}"));
            }
        }
    }
    p
}
