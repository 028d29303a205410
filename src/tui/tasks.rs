//! Background work: one poller per host, planning, actions, logs, inspect. Each task owns its
//! I/O and *sends* results to the UI task; none touches the console's state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::{InspectContainerOptions, LogsOptions};
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::action::{PendingAction, PlanView};
use super::app::Msg;
use super::model::{HostUpdate, Snapshot};
use crate::config::{HostSpec, Service};
use crate::release::audit;
use crate::release::execute::plan_on_host;
use crate::release::plan::Action;
use crate::release::{
    ActionOptions, EventSink, Target, actor, deploy_on_host, lock, prune, rollback_on_host,
};
use crate::state::{read_host, read_service};
use crate::transport::Host;

/// How often a host is read.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// A read that takes longer than this counts as a failure.
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Retry delay after a failed connect.
const RETRY_EVERY: Duration = Duration::from_secs(5);

/// What background tasks send the runtime: messages for the state, and connected hosts, which
/// the runtime keeps (they are not state) so actions reuse the poller's connection.
pub enum Bg {
    Msg(Msg),
    Connected { epoch: u64, host: Arc<Host> },
}

fn host_msg(epoch: u64, name: &str, update: HostUpdate) -> Bg {
    Bg::Msg(Msg::Host {
        epoch,
        host: name.to_string(),
        update,
    })
}

/// Reads everything the console shows about one host.
pub async fn snapshot(host: &Host, services: &[Service]) -> Snapshot {
    let locks = async {
        let mut out = BTreeMap::new();
        for s in services {
            let l = lock::read(host, &s.name).await.map_err(|e| e.to_string());
            out.insert(s.name.clone(), l);
        }
        out
    };
    let (status, audit, locks) =
        tokio::join!(read_host(host, services), audit::read(host, 50), locks);
    Snapshot {
        status,
        audit: audit.map(|l| l.records).map_err(|e| e.to_string()),
        locks,
        monitor: None,
    }
}

/// One host's poller: connect (retrying), then read every `POLL_EVERY` (or at once when asked)
/// and send each snapshot. A dead host reports its error and keeps retrying on its own.
pub async fn poll_host(
    spec: HostSpec,
    services: Vec<Service>,
    thresholds: crate::config::AlertThresholds,
    epoch: u64,
    tx: mpsc::UnboundedSender<Bg>,
    cancel: CancellationToken,
    refresh: Arc<Notify>,
) {
    let name = spec.name.clone();
    loop {
        let _ = tx.send(host_msg(epoch, &name, HostUpdate::Connecting));
        let connected = tokio::select! {
            () = cancel.cancelled() => return,
            r = Host::connect(&spec) => r,
        };
        let host = match connected {
            Ok(h) => Arc::new(h),
            Err(e) => {
                let _ = tx.send(host_msg(epoch, &name, HostUpdate::Failed(e.to_string())));
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(RETRY_EVERY) => continue,
                }
            }
        };
        let _ = tx.send(Bg::Connected {
            epoch,
            host: host.clone(),
        });
        let _ = tx.send(host_msg(epoch, &name, HostUpdate::Connected));
        let mut failures = 0u32;
        // The monitor runs at the environment's alert interval, less often than the reads.
        let mut monitor = crate::monitor::HostMonitor::default();
        let notifier = crate::monitor::notify::Notifier::from_env();
        let mut last_cycle: Option<std::time::Instant> = None;
        let mut alerts_view: Option<crate::tui::model::MonitorSnapshot> = None;
        loop {
            let read = tokio::select! {
                () = cancel.cancelled() => return,
                r = tokio::time::timeout(READ_TIMEOUT, snapshot(&host, &services)) => r,
            };
            match read {
                Ok(mut snap) => {
                    if last_cycle.is_none_or(|t| t.elapsed() >= thresholds.interval) {
                        last_cycle = Some(std::time::Instant::now());
                        // The snapshot just read every service; the cycle reuses that read
                        // (unless one failed, in which case it reads for itself).
                        let known = snap
                            .status
                            .error
                            .is_none()
                            .then(|| snap.status.services.clone());
                        let cycle = crate::monitor::run_cycle_with(
                            &host,
                            &services,
                            known,
                            &thresholds,
                            &mut monitor,
                            &notifier,
                            chrono::Utc::now(),
                        );
                        if let Ok(m) = tokio::time::timeout(READ_TIMEOUT, cycle).await {
                            alerts_view = Some(monitor_view(&m, &thresholds, chrono::Utc::now()));
                        }
                    }
                    snap.monitor.clone_from(&alerts_view);
                    let broken = snap.status.error.is_some() && snap.status.services.is_empty();
                    failures = if broken { failures + 1 } else { 0 };
                    let _ = tx.send(host_msg(epoch, &name, HostUpdate::Snapshot(Box::new(snap))));
                }
                Err(_) => {
                    failures += 1;
                    let _ = tx.send(host_msg(
                        epoch,
                        &name,
                        HostUpdate::Failed(format!(
                            "{name}: reading the host took longer than {}s",
                            READ_TIMEOUT.as_secs()
                        )),
                    ));
                }
            }
            if failures >= 3 {
                // The connection is probably gone: start over with a new one.
                break;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(POLL_EVERY) => {}
                () = refresh.notified() => {}
            }
        }
    }
}

/// What the console shows of a monitoring cycle: the metrics as label/value pairs, and every
/// alert that is not quiet.
pub fn monitor_view(
    m: &crate::monitor::MonitorSnapshot,
    t: &crate::config::AlertThresholds,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::tui::model::MonitorSnapshot {
    use crate::monitor::AlertState as S;
    use crate::tui::model::{AlertRow, AlertState, MonitorSnapshot};
    use crate::util::{format_age, format_bytes};
    let x = &m.metrics;
    let mut metrics = Vec::new();
    if let Some(c) = x.cpu_percent {
        metrics.push(("CPU".to_string(), format!("{c:.1}%")));
    }
    // Sizes and load are in the host facts above; these are the values the rules watch.
    if let Some(p) = x.mem_percent {
        metrics.push(("memory".into(), format!("{p:.1}%")));
    }
    if let Some(d) = x.disk_percent {
        metrics.push((
            "disk".into(),
            format!("{d:.1}% (fuller of / and Docker's root)"),
        ));
    }
    for c in &x.containers {
        metrics.push((
            c.name.clone(),
            format!(
                "CPU {} mem {}",
                c.cpu_percent
                    .map_or_else(|| "?".into(), |v| format!("{v:.1}%")),
                c.mem_bytes.map_or_else(|| "?".into(), format_bytes)
            ),
        ));
    }
    let alerts = m
        .alerts
        .iter()
        .filter_map(|a| {
            let for_ = match a.key.as_str() {
                "cpu" => t.cpu_for,
                "memory" => t.memory_for,
                "disk" => t.disk_for,
                _ => Duration::ZERO,
            };
            let state = match a.state {
                S::Inactive => return None,
                S::Pending => AlertState::Pending {
                    left_secs: a.time_left(for_, now).map_or(0, |d| d.as_secs()),
                },
                S::Firing => AlertState::Firing {
                    since: a.firing_since.map_or_else(String::new, |f| {
                        format!(
                            "{} ({} ago)",
                            f.format("%H:%M:%S"),
                            format_age((now - f).num_seconds())
                        )
                    }),
                },
                S::Resolved => AlertState::Resolved {
                    ago_secs: a
                        .resolved_at
                        .map_or(0, |r| u64::try_from((now - r).num_seconds()).unwrap_or(0)),
                },
            };
            Some(AlertRow {
                name: a.rule.clone(),
                state,
                detail: a.message.clone(),
            })
        })
        .collect();
    MonitorSnapshot { metrics, alerts }
}

fn service_of<'a>(services: &'a [Service], name: &str) -> Result<&'a Service, String> {
    services
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("unknown service `{name}`"))
}

/// Plans an action on every host, without changing anything.
pub async fn plan(
    hosts: Vec<Arc<Host>>,
    service: Service,
    action: PendingAction,
) -> Result<PlanView, String> {
    match &action {
        PendingAction::Prune { keep, .. } => {
            let mut plans = Vec::new();
            for h in &hosts {
                let st = read_service(h, &service)
                    .await
                    .map_err(|e| format!("{}: {e}", h.name()))?;
                plans.push(prune::plan_prune(h.name(), &st, *keep));
            }
            Ok(PlanView::Prune(plans))
        }
        PendingAction::Deploy { sha, .. } | PendingAction::Promote { sha, .. } => {
            let mut plans = Vec::new();
            for h in &hosts {
                let (p, _) = plan_on_host(h, &service, &Target::Ref(sha.clone()), Action::Deploy)
                    .await
                    .map_err(|e| e.to_string())?;
                plans.push(p);
            }
            Ok(PlanView::Release(plans))
        }
        PendingAction::Rollback { target, .. } => {
            let t = target.clone().map_or(Target::Previous, Target::Ref);
            let mut plans = Vec::new();
            for h in &hosts {
                let (p, _) = plan_on_host(h, &service, &t, Action::Rollback)
                    .await
                    .map_err(|e| e.to_string())?;
                plans.push(p);
            }
            Ok(PlanView::Release(plans))
        }
    }
}

/// Runs a confirmed action host by host, stopping at the first failure; events flow to the UI.
pub async fn execute(
    hosts: Vec<Arc<Host>>,
    services: Vec<Service>,
    action: PendingAction,
    cancel: CancellationToken,
    events: EventSink,
) -> Result<String, String> {
    let service = service_of(&services, action.service())?.clone();
    let opts = ActionOptions {
        env: action.env().to_string(),
        actor: actor::current(),
        lock_wait: Duration::ZERO,
        health_timeout: None,
        cancel: cancel.clone(),
        // The service's watch window (issue 13).
        watch: None,
        canary: None,
    };
    let mut done: Vec<String> = Vec::new();
    for (i, h) in hosts.iter().enumerate() {
        let result = match &action {
            PendingAction::Deploy { sha, .. } => {
                deploy_on_host(h.clone(), &service, sha, &opts, &events)
                    .await
                    .map(|o| format!("{} in {} ms", o.plan.summary(), o.duration_ms))
                    .map_err(|e| e.to_string())
            }
            PendingAction::Rollback { target, .. } => {
                let t = target.clone().map_or(Target::Previous, Target::Ref);
                rollback_on_host(h.clone(), &service, t, &opts, &events)
                    .await
                    .map(|o| format!("{} in {} ms", o.plan.summary(), o.duration_ms))
                    .map_err(|e| e.to_string())
            }
            PendingAction::Prune { keep, env, .. } => {
                prune_host(h, &service, *keep, env, &events).await
            }
            // A deploy of the canary's SHA is the promote; the canary was the watch.
            PendingAction::Promote { sha, .. } => {
                let mut o = opts.clone();
                o.watch = Some(Duration::ZERO);
                deploy_on_host(h.clone(), &service, sha, &o, &events)
                    .await
                    .map(|o| format!("{} in {} ms", o.plan.summary(), o.duration_ms))
                    .map_err(|e| e.to_string())
            }
        };
        match result {
            Ok(s) => done.push(s),
            Err(e) => {
                let rest: Vec<&str> = hosts[i + 1..].iter().map(|h| h.name()).collect();
                let mut msg = e;
                if !done.is_empty() {
                    msg.push_str(&format!("\ndone before the failure: {}", done.join("; ")));
                }
                if !rest.is_empty() {
                    msg.push_str(&format!("\nnot attempted (unchanged): {}", rest.join(", ")));
                }
                return Err(msg);
            }
        }
        if cancel.is_cancelled() {
            let rest: Vec<&str> = hosts[i + 1..].iter().map(|h| h.name()).collect();
            if !rest.is_empty() {
                return Err(format!(
                    "aborted by the operator after {}; not attempted: {}",
                    h.name(),
                    rest.join(", ")
                ));
            }
        }
    }
    Ok(done.join("\n"))
}

/// Prune on one host under its lock, re-planned under the lock, audited; the steps are
/// reported as events like a deploy's, so the console draws them the same way.
async fn prune_host(
    host: &Arc<Host>,
    service: &Service,
    keep: usize,
    env: &str,
    events: &EventSink,
) -> Result<String, String> {
    prune::run_on_host(
        host,
        service,
        keep,
        env,
        &actor::current(),
        Duration::ZERO,
        events,
    )
    .await
    .map(|(p, removed)| {
        format!(
            "{}: removed {} image(s) ({} reclaimed)",
            host.name(),
            removed.len(),
            crate::util::format_bytes(p.reclaim_bytes)
        )
    })
    .map_err(|e| e.to_string())
}

/// Follows a container's logs, in batches, into a bounded channel: a chatty container slows
/// its own stream down, never the UI.
pub async fn stream_logs(
    host: Arc<Host>,
    container: String,
    id: u64,
    tx: mpsc::Sender<Msg>,
    cancel: CancellationToken,
) {
    let opts = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: "500".into(),
        ..Default::default()
    };
    let mut stream = host.docker.logs(&container, Some(opts));
    let mut batch: Vec<String> = Vec::new();
    let mut flush_at = tokio::time::Instant::now() + Duration::from_millis(50);
    let reason = loop {
        let next = tokio::select! {
            () = cancel.cancelled() => return,
            r = tokio::time::timeout_at(flush_at, stream.next()) => r,
        };
        match next {
            Ok(Some(Ok(chunk))) => {
                for line in String::from_utf8_lossy(&chunk.into_bytes()).lines() {
                    batch.push(line.to_string());
                }
                if batch.len() < 500 {
                    continue;
                }
            }
            Ok(Some(Err(e))) => break crate::util::error_chain(&e),
            Ok(None) => break "the container stopped or the stream closed".to_string(),
            Err(_) => {}
        }
        if !batch.is_empty() {
            let lines = std::mem::take(&mut batch);
            tokio::select! {
                () = cancel.cancelled() => return,
                r = tx.send(Msg::Logs { id, lines }) => if r.is_err() { return },
            }
        }
        flush_at = tokio::time::Instant::now() + Duration::from_millis(50);
    };
    if !batch.is_empty() {
        let _ = tx.send(Msg::Logs { id, lines: batch }).await;
    }
    let _ = tx.send(Msg::LogsEnded { id, reason }).await;
}

/// `docker inspect` of a container with secrets redacted: env values whose names look secret,
/// secret-looking labels, and credentials in any text.
pub async fn inspect(host: Arc<Host>, container: String) -> Result<Vec<String>, String> {
    let info = host
        .docker
        .inspect_container(&container, None::<InspectContainerOptions>)
        .await
        .map_err(|e| {
            format!(
                "{}: inspect {container}: {}",
                host.name(),
                crate::util::error_chain(&e)
            )
        })?;
    let mut value = serde_json::to_value(&info).map_err(|e| e.to_string())?;
    redact_value(&mut value);
    let text = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
    Ok(text.lines().map(crate::redact::redact_text).collect())
}

/// Redacts `Env` entries and secret-named keys anywhere in an inspect document.
pub fn redact_value(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if k == "Env" {
                    if let Value::Array(items) = val {
                        for item in items.iter_mut() {
                            if let Value::String(s) = item {
                                *s = crate::redact::redact_env_entry(s);
                            }
                        }
                    }
                } else if crate::redact::is_secret_name(k) && val.is_string() {
                    *val = Value::String(crate::redact::MASK.to_string());
                } else {
                    redact_value(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::{Alert, AlertState as S, HostMetrics, MonitorSnapshot};
    use crate::tui::model::AlertState;

    #[test]
    fn the_console_shows_metrics_and_every_alert_that_is_not_quiet() {
        let now = chrono::DateTime::from_timestamp(1_800_000_600, 0).expect("time");
        let at = |s: i64| chrono::DateTime::from_timestamp(1_800_000_000 + s, 0);
        let mut cpu = Alert::new("cpu", "CPU > 80% for 5m");
        cpu.state = S::Pending;
        cpu.active_since = at(480);
        let mut disk = Alert::new("disk", "disk > 90%");
        disk.state = S::Firing;
        disk.firing_since = at(0);
        let mut health = Alert::new("health:api", "api health fails 3x in a row");
        health.state = S::Resolved;
        health.resolved_at = at(540);
        let quiet = Alert::new("memory", "memory > 85% for 5m");
        let m = MonitorSnapshot {
            host: "h".into(),
            at: now,
            metrics: HostMetrics {
                cpu_percent: Some(91.5),
                mem_percent: Some(40.0),
                mem_total_bytes: Some(1 << 30),
                ..Default::default()
            },
            alerts: vec![cpu, quiet, disk, health],
            services: vec![],
            error: None,
        };
        let v = monitor_view(&m, &crate::config::AlertThresholds::default(), now);
        assert_eq!(v.metrics[0], ("CPU".to_string(), "91.5%".to_string()));
        assert_eq!(v.alerts.len(), 3, "the quiet memory rule is not listed");
        assert_eq!(v.alerts[0].state, AlertState::Pending { left_secs: 180 });
        assert!(
            matches!(&v.alerts[1].state, AlertState::Firing { since } if since.contains("10m ago"))
        );
        assert_eq!(v.alerts[2].state, AlertState::Resolved { ago_secs: 60 });
    }
}
