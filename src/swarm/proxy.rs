//! The Swarm proxy at run time: created and reachable, the new color's tasks healthy as seen
//! from it, the switch (memory and file in one exec), the drain.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::deploy::current_tasks;
use super::status::ServiceRead;
use super::{SwarmError, api, haproxy, names, spec};
use crate::config::Service;
use crate::state::Color;
use crate::state::contract::PROXY_HELPER;
use crate::state::proxy_api;
use crate::transport::Host;

/// The proxy task's container on the manager.
pub struct ProxyHandle {
    pub container: String,
}

fn perr(host: &Host, message: impl Into<String>) -> SwarmError {
    SwarmError::Proxy {
        host: host.name().to_string(),
        message: message.into(),
    }
}

/// Makes sure the proxy service exists with the configured image and its task answers on its
/// admin socket. A first proxy starts from a config with the live route (or none).
pub async fn ensure(
    host: &Host,
    service: &Service,
    replicas: u32,
    read: &ServiceRead,
    live: Option<&haproxy::Route>,
) -> Result<ProxyHandle, SwarmError> {
    let node = api::manager_node_id(host).await?;
    let dir = names::proxy_conf_dir(&host.spec.state_dir, service);
    let needs_spec = !read.status.proxy.exists || read.status.proxy.drift.is_some();
    if needs_spec {
        if api::read_conf(host, &dir).await?.is_none() || !read.status.proxy.exists {
            api::write_conf(host, &dir, &haproxy::render(service, replicas, live)).await?;
        }
        api::apply(host, spec::proxy_spec(service, &node, &dir)).await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let name = names::proxy_service(service);
    loop {
        if let Some(c) = api::proxy_container(host, &name).await?
            && let Ok((0, _)) = proxy_api::cli(host, &c, &haproxy::stat_command()).await
        {
            return Ok(ProxyHandle { container: c });
        }
        if tokio::time::Instant::now() > deadline {
            return Err(perr(
                host,
                format!(
                    "the proxy service {name} has no task answering on its admin socket on this manager after 60s (see `docker service ps {name}`)"
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn stats(host: &Host, proxy: &ProxyHandle) -> Result<String, SwarmError> {
    match proxy_api::cli(host, &proxy.container, &haproxy::stat_command()).await {
        Ok((0, out)) => Ok(out),
        Ok((code, out)) => Err(perr(
            host,
            format!("the proxy's admin socket answered {code}: {}", out.trim()),
        )),
        Err(e) => Err(SwarmError::docker(host.name(), "exec in the proxy", e)),
    }
}

/// Addresses Swarm's DNS gives for a color's tasks, as the proxy's container sees them.
pub(super) async fn task_addresses(
    host: &Host,
    proxy: &ProxyHandle,
    service: &Service,
    color: Color,
) -> Result<Vec<String>, SwarmError> {
    let name = format!("tasks.{}", names::color_service(service, color));
    // busybox's applets are not linked in the image: through its shell.
    let (_, out) = proxy_api::exec(
        host,
        &proxy.container,
        &[
            "sh",
            "-c",
            r#"nslookup "$1" 127.0.0.11"#,
            "deckhand-dns",
            &name,
        ],
    )
    .await
    .map_err(|e| SwarmError::docker(host.name(), "exec nslookup in the proxy", e))?;
    Ok(parse_nslookup(&out))
}

/// The answer's IPv4 addresses (the server's own `Address: 127.0.0.11:53` line is skipped).
pub fn parse_nslookup(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Address:"))
        .map(str::trim)
        .filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// What the health wait waits for.
pub struct Wanted<'a> {
    pub color: Color,
    pub sha: &'a str,
    pub replicas: u32,
    /// Task ids that existed before this run's service update.
    pub earlier_tasks: &'a std::collections::HashSet<String>,
}

/// Waits until `n` tasks of the color at `sha` run, Swarm's DNS lists them and each answers
/// `/health` healthy from the proxy's container. Fails early when tasks of that image keep
/// failing (a crash loop), with Swarm's error.
pub async fn wait_healthy(
    host: &Host,
    service: &Service,
    proxy: &ProxyHandle,
    wanted: &Wanted<'_>,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), SwarmError> {
    let (color, sha, n) = (wanted.color, wanted.sha, wanted.replicas);
    let image = format!("{}:{sha}", service.image);
    let deadline = tokio::time::Instant::now() + timeout;
    let n_usize = usize::try_from(n).unwrap_or(usize::MAX);
    loop {
        if cancel.is_cancelled() {
            return Err(tasks_err(host, "cancelled by the operator"));
        }
        let tasks = api::tasks(host, service).await?;
        let (running, failed) = current_tasks(&tasks, color, &image, wanted.earlier_tasks);
        if failed >= n_usize.max(2) {
            let why = tasks
                .iter()
                .filter_map(|t| t.status.as_ref()?.err.clone())
                .next_back()
                .unwrap_or_else(|| "tasks exit".into());
            return Err(tasks_err(
                host,
                format!(
                    "{failed} task(s) of {image} failed: {}",
                    crate::sanitize::host_text(&why)
                ),
            ));
        }
        let last;
        if running.len() >= n_usize {
            let addrs = task_addresses(host, proxy, service, color).await?;
            if addrs.len() >= n_usize {
                match probe_all(host, proxy, service, &addrs).await {
                    Ok(()) => return Ok(()),
                    Err(why) => last = why,
                }
            } else {
                last = format!("{} of {n} task(s) in Swarm's DNS", addrs.len());
            }
        } else {
            last = format!("{} of {n} task(s) of {image} running", running.len());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(tasks_err(
                host,
                format!("not healthy within {timeout:?}: {last}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn tasks_err(host: &Host, message: impl Into<String>) -> SwarmError {
    SwarmError::Tasks {
        host: host.name().to_string(),
        message: message.into(),
    }
}

pub(super) async fn probe_all(
    host: &Host,
    proxy: &ProxyHandle,
    service: &Service,
    addrs: &[String],
) -> Result<(), String> {
    for a in addrs {
        let target = format!("{a}:{}", service.app_port);
        // The image's busybox wget crashes (SIGSEGV) here; socat speaks HTTP/1.0 just as well.
        let (_, out) = proxy_api::exec(
            host,
            &proxy.container,
            &[
                "sh",
                "-c",
                r#"printf 'GET %s HTTP/1.0\r\nHost: deckhand\r\n\r\n' "$2" | socat -t 3 -T 3 - "TCP:$1,connect-timeout=3""#,
                "deckhand-probe",
                &target,
                &service.health_path,
            ],
        )
        .await
        .map_err(|e| format!("probe of {a}: {e}"))?;
        if let Err(why) = healthy_answer(&out) {
            return Err(format!("task {a}: {}", crate::sanitize::host_text(&why)));
        }
    }
    Ok(())
}

/// A raw HTTP answer is 200 with a JSON body whose `status` is `healthy`.
pub fn healthy_answer(raw: &str) -> Result<(), String> {
    let status_line = raw.lines().next().unwrap_or_default();
    let code = status_line.split_whitespace().nth(1).unwrap_or_default();
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let status = serde_json::from_str::<serde_json::Value>(body.trim())
        .ok()
        .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_string));
    match (code, status.as_deref()) {
        ("200", Some("healthy")) => Ok(()),
        ("", _) => Err("no HTTP answer".into()),
        (c, s) => Err(format!(
            "HTTP {c}, status {}",
            s.unwrap_or("not in the body")
        )),
    }
}

/// Puts `route`'s color in rotation (memory and file in one exec), once the proxy has
/// resolved its tasks; checks the same exec's stats and applies the previous state again if
/// the new color is not alone in rotation.
pub async fn switch(
    host: &Host,
    service: &Service,
    proxy: &ProxyHandle,
    replicas: u32,
    route: &haproxy::Route,
) -> Result<(), SwarmError> {
    // HAProxy resolves every server of a template, disabled ones too: wait until it knows the
    // tasks, else the switch would route to servers without an address.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let st = haproxy::parse_stat(&stats(host, proxy).await?);
        let resolved = st.get(&route.color).map_or(0, |c| c.resolved.len());
        if resolved >= 1 {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(perr(
                host,
                format!(
                    "the proxy has not resolved any task of {} after 10s",
                    names::color_service(service, route.color)
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let config = haproxy::render(service, replicas, Some(route));
    let commands = haproxy::switch_commands(route.color, replicas);
    let (code, out) = proxy_api::exec(
        host,
        &proxy.container,
        &[PROXY_HELPER, "apply", &config, &commands],
    )
    .await
    .map_err(|e| SwarmError::docker(host.name(), "exec the switch in the proxy", e))?;
    if code != 0 {
        return Err(perr(
            host,
            format!("deckhand-proxy apply exited {code}: {}", out.trim()),
        ));
    }
    let now = haproxy::serving(&haproxy::parse_stat(&out));
    if now != Some(route.color) {
        return Err(perr(
            host,
            format!(
                "after the switch the proxy routes to {}, not {}",
                now.map_or("no single color".into(), |c| c.to_string()),
                route.color
            ),
        ));
    }
    Ok(())
}

/// Waits until the old color has no request in flight, at most `limit`; returns what was left.
pub async fn drain(host: &Host, proxy: &ProxyHandle, old: Color, limit: Duration) -> u64 {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = match stats(host, proxy).await {
            Ok(out) => haproxy::parse_stat(&out)
                .get(&old)
                .map_or(0, |c| c.in_flight),
            Err(_) => return 0,
        };
        if left == 0 || tokio::time::Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nslookup_answers_are_the_task_addresses() {
        let out = "Server:\t\t127.0.0.11\nAddress:\t127.0.0.11:53\n\nNon-authoritative answer:\nName:\ttasks.x-blue\nAddress: 10.0.1.4\nName:\ttasks.x-blue\nAddress: 10.0.1.3\n";
        assert_eq!(parse_nslookup(out), vec!["10.0.1.3", "10.0.1.4"]);
    }

    #[test]
    fn only_a_healthy_200_passes_the_probe() {
        let ok =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"status\":\"healthy\"}";
        assert!(healthy_answer(ok).is_ok());
        let bad = "HTTP/1.1 503 Service Unavailable\r\n\r\n{\"status\":\"unhealthy\"}";
        assert_eq!(
            healthy_answer(bad).unwrap_err(),
            "HTTP 503, status unhealthy"
        );
        assert!(healthy_answer("").is_err());
        assert!(healthy_answer("HTTP/1.1 200 OK\r\n\r\nhello").is_err());
    }
}
