//! The watch after a switch (issue 13): the old color stays warm while deckhand reads the new
//! color's answers from the proxy (5xx share, p99, a sample of failing paths) and its `/health`;
//! a breach is reported with its evidence so the engine switches back at once.
//!
//! A canary is watched the same way, compared with the stable color (`verdict`). The proxy's
//! weights for a canary are in `canary`.

pub mod canary;
mod engine;
pub mod verdict;

pub(super) use engine::{after_switch, canary_refusal};

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::steps::StepRecorder;
use super::{Event, container};
use crate::config::{Service, WatchSettings};
use crate::state::contract::{PROXY_TIMINGS_RING, app_container};
use crate::state::traffic::request_lines;
use crate::state::{Color, probe_health, proxy_api};
use verdict::{Counts, breach, counts};

/// How often the proxy is read: one docker exec (over SSH on a remote host).
const POLL: Duration = Duration::from_millis(250);
/// `/health` probes of the new color in a row that fail before it is a breach.
const HEALTH_FAILURES: u32 = 3;
/// The proxy unreadable this long ends the watch as interrupted (the link is likely gone).
const BLIND_FOR: Duration = Duration::from_secs(10);

/// What is watched.
pub struct WatchSpec<'a> {
    pub service: &'a Service,
    pub window: Duration,
    pub settings: &'a WatchSettings,
    /// The color that took traffic (all of it, or the canary's share).
    pub new: Color,
    /// For a canary: the stable color it is compared with.
    pub stable: Option<Color>,
}

/// Why the watch failed, with what an operator needs to believe it.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub why: String,
    pub color: Color,
    pub new: Counts,
    pub stable: Option<Counts>,
    /// Milliseconds from the start of the watch to the breach.
    pub after_ms: u64,
    pub last_health: Option<String>,
    pub logs: String,
}

impl Evidence {
    /// The evidence in lines, for the error message and the audit record.
    pub fn text(&self) -> String {
        let mut t = format!("  why: {}\n", self.why);
        let statuses: Vec<String> = self
            .new
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}×{n}"))
            .collect();
        t.push_str(&format!(
            "  {} answered {} request(s) in {:.1}s of watch: {} (5xx {}, p99 {})\n",
            self.color,
            self.new.requests,
            self.after_ms as f64 / 1000.0,
            if statuses.is_empty() {
                "-".into()
            } else {
                statuses.join(", ")
            },
            self.new
                .error_percent
                .map_or("-".into(), |p| format!("{p} %")),
            self.new.p99_ms.map_or("-".into(), |p| format!("{p} ms")),
        ));
        if let Some(s) = &self.stable {
            t.push_str(&format!(
                "  the stable color answered {} (5xx {}, p99 {})\n",
                s.requests,
                s.error_percent.map_or("-".into(), |p| format!("{p} %")),
                s.p99_ms.map_or("-".into(), |p| format!("{p} ms")),
            ));
        }
        if !self.new.failing_paths.is_empty() {
            let paths: Vec<String> = self
                .new
                .failing_paths
                .iter()
                .map(|(p, n)| format!("{p} ({n})"))
                .collect();
            t.push_str(&format!("  failing paths: {}\n", paths.join(", ")));
        }
        if let Some(h) = &self.last_health {
            t.push_str(&format!("  last /health: {h}\n"));
        }
        t.push_str(&format!("  last log lines:\n{}", self.logs));
        t.trim_end().to_string()
    }
}

/// How a watch ended.
#[derive(Debug)]
pub enum WatchEnd {
    Passed {
        new: Counts,
        stable: Option<Counts>,
    },
    Breached(Box<Evidence>),
    /// Ctrl-C, or the proxy could not be read for a while: nothing was changed.
    Interrupted(String),
}

/// What `/health` of the watched color said.
pub enum HealthSeen {
    Healthy(String),
    Unhealthy(String),
    /// Nothing of that color runs: a breach at once.
    Gone(String),
    /// It could not be asked (the manager did not answer): counts neither way.
    Unknown(String),
}

/// Where a watch reads (issue 16): the proxy's admin socket and the new color's `/health`. A
/// droplet's proxy container and published port ([`Droplet`]), or a Swarm proxy task and the
/// color's tasks as seen from it (`crate::swarm::watch`).
pub trait WatchTarget {
    /// Runs `commands` on the proxy's admin socket (through its helper): exit code and output.
    fn proxy_cli(
        &self,
        commands: &str,
    ) -> impl std::future::Future<Output = Result<(i64, String), String>> + Send;
    /// One `/health` probe of `color`.
    fn health(&self, color: Color) -> impl std::future::Future<Output = HealthSeen> + Send;
}

/// A droplet: the proxy container and the color's container published on the host.
pub struct Droplet<'a> {
    pub host: &'a crate::transport::Host,
    pub service: &'a Service,
}

impl WatchTarget for Droplet<'_> {
    async fn proxy_cli(&self, commands: &str) -> Result<(i64, String), String> {
        proxy_api::cli(self.host, &self.service.proxy_container(), commands)
            .await
            .map_err(|e| crate::util::error_chain(&e))
    }

    async fn health(&self, color: Color) -> HealthSeen {
        let (running, port) = health_port(self.host, self.service, color).await;
        match port.filter(|_| running) {
            Some(p) => {
                let h = probe_health(
                    self.host,
                    p,
                    &self.service.health_path,
                    Duration::from_secs(2),
                )
                .await;
                if h.is_healthy() {
                    HealthSeen::Healthy(h.summary())
                } else {
                    HealthSeen::Unhealthy(h.summary())
                }
            }
            None => HealthSeen::Gone("the container is not running".into()),
        }
    }
}

/// One read of the proxy: the host's epoch second and the request lines, per color.
async fn read(
    target: &impl WatchTarget,
    since: Option<u64>,
    spec: &WatchSpec<'_>,
) -> Result<(u64, Counts, Option<Counts>), String> {
    let commands = format!(
        "{}; show events {PROXY_TIMINGS_RING}",
        proxy_api::stat_command()
    );
    let (code, out) = target.proxy_cli(&commands).await?;
    if code != 0 {
        return Err(format!("the proxy's admin socket answered exit {code}"));
    }
    let now = out
        .lines()
        .find_map(|l| l.strip_prefix("# deckhand-proxy now="))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or("the proxy did not say its time")?;
    let since = since.unwrap_or(now);
    let lines = request_lines(&out);
    let new = counts(&lines, spec.new, since);
    let stable = spec.stable.map(|s| counts(&lines, s, since));
    Ok((now, new, stable))
}

/// The host port of a color's `/health` (published on the host's 127.0.0.1), and whether it runs.
async fn health_port(
    host: &crate::transport::Host,
    service: &Service,
    color: Color,
) -> (bool, Option<u16>) {
    let Ok(ins) = host
        .docker
        .inspect_container(&app_container(service, color), None)
        .await
    else {
        return (false, None);
    };
    let running = ins.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    let port = ins
        .network_settings
        .as_ref()
        .and_then(|n| n.ports.as_ref())
        .and_then(|p| p.get(&format!("{}/tcp", service.app_port)))
        .and_then(Option::as_ref)
        .and_then(|b| {
            b.iter()
                .find_map(|b| b.host_port.as_deref()?.parse::<u16>().ok())
        });
    (running, port)
}

/// Watches for `spec.window`; returns at the first breach.
pub(super) async fn watch(
    r: &StepRecorder<'_>,
    spec: &WatchSpec<'_>,
    cancel: &CancellationToken,
) -> WatchEnd {
    let target = Droplet {
        host: r.host,
        service: spec.service,
    };
    watch_via(r, &target, spec, cancel).await
}

/// [`watch`] through any [`WatchTarget`] (a Swarm's proxy too).
pub(crate) async fn watch_via(
    r: &StepRecorder<'_>,
    target: &impl WatchTarget,
    spec: &WatchSpec<'_>,
    cancel: &CancellationToken,
) -> WatchEnd {
    let host = r.host;
    let started = Instant::now();
    let mut since: Option<u64> = None;
    let mut last_ok = Instant::now();
    let mut last_event = Instant::now() - Duration::from_secs(1);
    let mut last_probe = Instant::now() - Duration::from_secs(1);
    let mut health_failures = 0u32;
    let mut last_health: Option<String> = None;
    let mut last = (Counts::default(), None::<Counts>);
    loop {
        if cancel.is_cancelled() {
            return WatchEnd::Interrupted("interrupted by the operator".into());
        }
        match read(target, since, spec).await {
            Ok((now, new, stable)) => {
                since.get_or_insert(now);
                last_ok = Instant::now();
                if let Some(why) = breach(&new, stable.as_ref(), spec.settings) {
                    return breached(spec, why, new, stable, started, last_health);
                }
                last = (new, stable);
            }
            Err(e) if last_ok.elapsed() >= BLIND_FOR => {
                return WatchEnd::Interrupted(format!(
                    "the proxy could not be read for {}s: {e}",
                    BLIND_FOR.as_secs()
                ));
            }
            Err(e) => tracing::warn!(error = %e, "watch: reading the proxy failed"),
        }
        if last_probe.elapsed() >= Duration::from_secs(1) {
            last_probe = Instant::now();
            let report = match target.health(spec.new).await {
                HealthSeen::Healthy(h) => {
                    last_health = Some(h);
                    Some(true)
                }
                HealthSeen::Unhealthy(h) => {
                    last_health = Some(h);
                    Some(false)
                }
                HealthSeen::Gone(h) => {
                    last_health = Some(h);
                    health_failures = HEALTH_FAILURES;
                    Some(false)
                }
                HealthSeen::Unknown(h) => {
                    tracing::warn!(error = %h, "watch: /health could not be probed");
                    None
                }
            };
            match report {
                Some(true) => health_failures = 0,
                Some(false) => health_failures += 1,
                None => {}
            }
            if health_failures >= HEALTH_FAILURES {
                let why = format!(
                    "/health failed {health_failures} times in a row ({})",
                    last_health.clone().unwrap_or_default()
                );
                let (new, stable) = last;
                return breached(spec, why, new, stable, started, last_health);
            }
        }
        if last_event.elapsed() >= Duration::from_secs(1) {
            last_event = Instant::now();
            r.events.emit(Event::Watch {
                host: host.name().to_string(),
                color: spec.new,
                elapsed_ms: ms(started.elapsed()),
                window_ms: ms(spec.window),
                requests: last.0.requests,
                status_5xx: last.0.status_5xx,
                p99_ms: last.0.p99_ms,
                stable_requests: last.1.as_ref().map(|s| s.requests),
                stable_5xx: last.1.as_ref().map(|s| s.status_5xx),
            });
        }
        if started.elapsed() >= spec.window {
            return WatchEnd::Passed {
                new: last.0,
                stable: last.1,
            };
        }
        tokio::time::sleep(POLL).await;
    }
}

fn breached(
    spec: &WatchSpec<'_>,
    why: String,
    new: Counts,
    stable: Option<Counts>,
    started: Instant,
    last_health: Option<String>,
) -> WatchEnd {
    let after_ms = ms(started.elapsed());
    // The logs are read after the switch back (`attach_logs`: traffic first); here only what
    // the proxy and the probe saw.
    WatchEnd::Breached(Box::new(Evidence {
        why,
        color: spec.new,
        new,
        stable,
        after_ms,
        last_health,
        logs: String::new(),
    }))
}

/// The new container's last log lines, for the evidence (read once traffic is back).
pub(super) async fn attach_logs(
    host: &crate::transport::Host,
    service: &Service,
    evidence: &mut Evidence,
) {
    evidence.logs = container::tail_logs(host, &app_container(service, evidence.color)).await;
}

/// One line for a `Watch` event (both faces print it).
/// The watch step's closing line after a window that passed (droplets and Swarm alike).
pub fn passed_note(new: &Counts, stable: Option<&Counts>) -> String {
    let stable = stable.map_or(String::new(), |s| {
        format!("; stable {} requests, {} 5xx", s.requests, s.status_5xx)
    });
    format!(
        "passed: {} requests, {} 5xx, p99 {}{stable}",
        new.requests,
        new.status_5xx,
        new.p99_ms.map_or("-".into(), |p| format!("{p} ms"))
    )
}

pub fn describe_event(e: &Event) -> String {
    let Event::Watch {
        host,
        color,
        elapsed_ms,
        window_ms,
        requests,
        status_5xx,
        p99_ms,
        stable_requests,
        stable_5xx,
    } = e
    else {
        return String::new();
    };
    let stable = match (stable_requests, stable_5xx) {
        (Some(r), Some(f)) => format!("; stable {f}/{r} 5xx"),
        _ => String::new(),
    };
    format!(
        "[{host}]   watch {}/{}s: {color} {status_5xx}/{requests} 5xx, p99 {}{stable}",
        elapsed_ms / 1000,
        window_ms / 1000,
        p99_ms.map_or("-".into(), |p| format!("{p} ms")),
    )
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The audit record of a release rolled back automatically (outcome `rolled_back`, the
/// evidence in `details`); the ledger's "ended: rolled back automatically" is written by
/// `execute` with the rest of the ledger.
pub fn mark_rolled_back_automatically(record: &mut super::audit::AuditRecord, evidence: &Evidence) {
    record.outcome = super::audit::AuditOutcome::RolledBack;
    record.details = Some(format!(
        "rolled back automatically by the watch: {}",
        evidence.text()
    ));
}
