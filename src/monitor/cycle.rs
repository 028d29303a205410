//! One monitoring cycle of one host: sample, probe, evaluate the rules, persist, notify.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bollard::query_parameters::StatsOptions;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::future::join_all;
use serde::Serialize;

use super::metrics::{self, ContainerStats, HostMetrics};
use super::notify::Notifier;
use super::rules::{Alert, AlertState, Transition, evaluate, evaluate_count, format_for};
use super::store::{self, AlertBook};
use crate::config::{AlertThresholds, Service};
use crate::release::audit;
use crate::state::{Color, ContainerState, HealthReport, ServiceStatus, read_service};
use crate::transport::Host;

/// Health probes kept per color, for the console's sparkline.
pub const HISTORY_LEN: usize = 60;

#[derive(Debug, Clone, Serialize)]
pub struct HealthPoint {
    pub at: DateTime<Utc>,
    pub healthy: bool,
    pub latency_ms: u64,
    pub summary: String,
}

/// What a monitor keeps between cycles in memory (the alert states themselves live on the host).
#[derive(Debug, Default)]
pub struct HostMonitor {
    pub history: BTreeMap<(String, Color), VecDeque<HealthPoint>>,
    /// Docker's data root, read once per connection.
    docker_root: Option<String>,
    /// Each container's last CPU counters (container total, system total, online CPUs), for
    /// the next delta: one-shot stats answer at once instead of sampling for a second.
    container_cpu: BTreeMap<String, (u64, u64, u64)>,
    /// The audit tail as last read, with the log's size then: an unchanged log is not sent
    /// again (a console runs a cycle every interval; the tail is most of its bytes).
    audit: Option<(String, Vec<audit::AuditRecord>)>,
    /// The alert book as it stands on the host (read or written last): an unchanged book is
    /// not sent again.
    book: Option<AlertBook>,
    /// This monitor's last CPU counters: the book's are written only now and then
    /// ([`store::REFRESH_EVERY`]), and the newer of the two makes the delta.
    cpu: Option<(metrics::CpuCounters, DateTime<Utc>)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MonitorSnapshot {
    pub host: String,
    pub at: DateTime<Utc>,
    pub metrics: HostMetrics,
    pub alerts: Vec<Alert>,
    pub services: Vec<ServiceStatus>,
    pub error: Option<String>,
}

impl MonitorSnapshot {
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| a.state == AlertState::Firing)
    }
}

/// The host's part of a cycle in one command. Only the two meminfo lines the rules use; the
/// alert book only when its generation differs from the one this monitor holds (`$5`; `= N`
/// otherwise), the audit tail only when the log's size differs from the one read last time
/// (`$4`): a console runs a cycle every interval, and those two were most of its bytes.
const READ: &str = r#"head -n 1 /proc/stat; grep -E '^(MemTotal|MemAvailable):' /proc/meminfo; cat /proc/loadavg; echo "--- df"; df -P -k / "$3"; echo "--- book"; g=$(sed -n '1s/^{"generation":\([0-9]*\).*/\1/p' "$1" 2>/dev/null); if [ -n "$g" ] && [ "$g" = "$5" ]; then echo "= $g"; else cat "$1" 2>/dev/null; echo; fi; s=$(stat -c %s "$2" 2>/dev/null || echo none); echo "--- audit $s"; [ "$s" = "$4" ] || tail -n 200 "$2" 2>/dev/null; true"#;

/// Runs one cycle. Reading the host's metrics, alert book and audit tail is one remote command;
/// persisting the book is a second; Docker and `/health` go through the existing tunnels.
pub async fn run_cycle(
    host: &Host,
    services: &[Service],
    thresholds: &AlertThresholds,
    monitor: &mut HostMonitor,
    notifier: &Notifier,
    now: DateTime<Utc>,
) -> MonitorSnapshot {
    run_cycle_with(host, services, None, thresholds, monitor, notifier, now).await
}

/// [`run_cycle`] for a caller that has just read the services itself (the console's poller):
/// `known` is used instead of reading them a second time.
pub async fn run_cycle_with(
    host: &Host,
    services: &[Service],
    known: Option<Vec<ServiceStatus>>,
    thresholds: &AlertThresholds,
    monitor: &mut HostMonitor,
    notifier: &Notifier,
    now: DateTime<Utc>,
) -> MonitorSnapshot {
    if monitor.docker_root.is_none() {
        monitor.docker_root = host
            .docker
            .info()
            .await
            .ok()
            .and_then(|i| i.docker_root_dir);
    }
    let docker_root = monitor.docker_root.clone().unwrap_or_else(|| "/".into());
    let audit_path = format!("{}/audit.jsonl", host.spec.state_dir);
    let book_path = store::book_path(host);
    let known_audit = monitor
        .audit
        .as_ref()
        .map_or_else(|| "unread".to_string(), |(size, _)| size.clone());
    let known_book = monitor
        .book
        .as_ref()
        .map_or_else(|| "none".to_string(), |b| b.generation.to_string());
    let args = [
        "-c",
        READ,
        "deckhand-monitor",
        &book_path,
        &audit_path,
        &docker_root,
        &known_audit,
        &known_book,
    ];
    let read_services = async {
        match known {
            Some(k) => k.into_iter().map(Ok).collect(),
            None => join_all(services.iter().map(|s| read_service(host, s))).await,
        }
    };
    let (read, statuses): (_, Vec<Result<ServiceStatus, bollard::errors::Error>>) =
        tokio::join!(host.exec("sh", &args, None), read_services);
    let mut error = None;
    let read_ok = read.is_ok();
    let text = match read {
        Ok(o) => o.stdout_text(),
        Err(e) => {
            error = Some(e.to_string());
            String::new()
        }
    };
    let (sample_text, rest) = text.split_once("--- book\n").unwrap_or((&text, ""));
    let (book_text, audit_part) = rest.split_once("--- audit ").unwrap_or((rest, ""));
    let (audit_size, audit_text) = audit_part.split_once('\n').unwrap_or((audit_part, ""));
    let audit_size = audit_size.trim().to_string();
    let mut m = metrics::parse_sample(sample_text);
    let book = match monitor.book.take() {
        Some(known) if read_ok && book_text.trim() == format!("= {}", known.generation) => known,
        _ => AlertBook::parse(book_text.trim()),
    };

    // CPU is a delta: against the last sample on record (the book's or this monitor's, the
    // newer), or a fresh one a second later.
    let previous = [book.cpu, monitor.cpu]
        .into_iter()
        .flatten()
        .filter(|(_, at)| (now - *at).num_seconds().abs() < 600)
        .max_by_key(|(_, at)| *at);
    match (m.cpu, previous) {
        (Some(cur), Some((prev, _))) if cur.percent_since(&prev).is_some() => {
            m.cpu_percent = cur.percent_since(&prev);
        }
        (Some(cur), _) => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Ok(next) = metrics::sample(host, None).await
                && let Some(n) = next.cpu
            {
                m.cpu_percent = n.percent_since(&cur);
                m.cpu = Some(n);
            }
        }
        _ => {}
    }
    if let Some(c) = m.cpu {
        monitor.cpu = Some((c, now));
    }

    let mut statuses_ok = Vec::new();
    for (svc, st) in services.iter().zip(statuses) {
        match st {
            Ok(s) => statuses_ok.push(s),
            Err(e) => error = Some(format!("{}: reading {}: {e}", host.name(), svc.name)),
        }
    }
    m.containers = container_stats(host, &statuses_ok, &mut monitor.container_cpu).await;

    // Health history for the console.
    for s in &statuses_ok {
        for color in Color::BOTH {
            if let Some(h) = s.color(color).and_then(|c| c.health.as_ref()) {
                let q = monitor.history.entry((s.name.clone(), color)).or_default();
                q.push_back(HealthPoint {
                    at: now,
                    healthy: h.is_healthy(),
                    latency_ms: h.latency_ms,
                    summary: h.summary(),
                });
                while q.len() > HISTORY_LEN {
                    q.pop_front();
                }
            }
        }
    }

    let log = match monitor.audit.take() {
        Some((size, records)) if size == audit_size && read_ok => audit::AuditLog {
            records,
            malformed: Vec::new(),
        },
        _ => audit::parse(audit_text),
    };
    if read_ok {
        monitor.audit = Some((audit_size, log.records.clone()));
    }
    // Evaluated on the book as read, committed only on top of it; when another monitor
    // committed in between, evaluated again on theirs (so nothing is counted twice or lost).
    let mut base = book;
    let mut attempts = 0;
    let (book, transitions) = loop {
        attempts += 1;
        let (book, transitions) =
            evaluate_book(base.clone(), &m, &statuses_ok, &log, thresholds, now);
        if read_ok && !store::worth_committing(&book, &base, now) {
            // Only this evaluation's figures changed: the book on the host stands.
            monitor.book = Some(base);
            break (book, transitions);
        }
        match store::commit(host, &book, base.generation).await {
            Ok(store::Commit::Written) => {
                // As a full read would bring it back (parsed, so sanitized alike).
                let written = store::as_written(&book, base.generation);
                monitor.book = serde_json::to_string(&written)
                    .ok()
                    .map(|t| AlertBook::parse(&t));
                break (book, transitions);
            }
            Ok(store::Commit::Conflict(current)) if attempts < 5 => base = current,
            Ok(store::Commit::Conflict(_)) => {
                error.get_or_insert(format!(
                    "{}: the alert book kept changing under this monitor ({attempts} tries); not written this cycle",
                    host.name()
                ));
                break (book, Vec::new());
            }
            Err(e) => {
                error.get_or_insert(e.to_string());
                break (book, transitions);
            }
        }
    };
    if notifier.enabled() {
        for (a, t) in &transitions {
            let verb = match t {
                Transition::StartedFiring => "FIRING",
                Transition::Resolved => "resolved",
            };
            notifier
                .send(&format!(
                    "[deckhand] {} {verb}: {} ({})",
                    host.name(),
                    a.rule,
                    a.message
                ))
                .await;
        }
    }
    // Host rules first, then each service's, in a fixed order operators learn.
    let rank = |k: &str| match k {
        "cpu" => 0,
        "memory" => 1,
        "disk" => 2,
        k if k.starts_with("health:") || k.starts_with("errors:") => 3,
        _ => 4,
    };
    let mut alerts: Vec<Alert> = book.alerts.into_values().collect();
    alerts.sort_by(|a, b| {
        rank(&a.key)
            .cmp(&rank(&b.key))
            .then_with(|| a.key.cmp(&b.key))
    });
    MonitorSnapshot {
        host: host.name().to_string(),
        at: now,
        metrics: m,
        alerts,
        services: statuses_ok,
        error,
    }
}

/// The alert rules applied to one book: returns the new book and the transitions it made.
fn evaluate_book(
    mut book: AlertBook,
    m: &HostMetrics,
    statuses_ok: &[ServiceStatus],
    log: &audit::AuditLog,
    thresholds: &AlertThresholds,
    now: DateTime<Utc>,
) -> (AlertBook, Vec<(Alert, Transition)>) {
    if let Some(c) = m.cpu {
        book.cpu = Some((c, now));
    }
    let mut transitions = Vec::new();
    let keep = thresholds.keep_resolved;
    let eval = |book: &mut AlertBook,
                transitions: &mut Vec<(Alert, Transition)>,
                key: String,
                rule: String,
                cond: Option<bool>,
                value: Option<f64>,
                for_: Duration,
                message: String| {
        let prev = book
            .alerts
            .get(&key)
            .cloned()
            .unwrap_or_else(|| Alert::new(&key, &rule));
        let (mut a, tr) = evaluate(&prev, cond, value, for_, keep, now);
        a.rule = rule;
        if cond.is_some() {
            a.message = message;
        }
        if let Some(t) = tr {
            transitions.push((a.clone(), t));
        }
        book.alerts.insert(key, a);
    };
    let t = thresholds;
    // The host rules: (key, what, value, threshold, for).
    let host_rules = [
        ("cpu", "CPU", m.cpu_percent, t.cpu_percent, t.cpu_for),
        (
            "memory",
            "memory",
            m.mem_percent,
            t.memory_percent,
            t.memory_for,
        ),
        ("disk", "disk", m.disk_percent, t.disk_percent, t.disk_for),
    ];
    for (key, what, value, limit, for_) in host_rules {
        eval(
            &mut book,
            &mut transitions,
            key.into(),
            format!("{what} > {limit}%{}", format_for(for_)),
            value.map(|v| v > limit),
            value,
            for_,
            format!("{what} at {:.1}%", value.unwrap_or(0.0)),
        );
    }
    for s in statuses_ok {
        // Not deployed here: nothing to watch. Deployed: the live color must answer healthy.
        let deployed = s.proxy.exists || s.colors.values().any(Option::is_some);
        let failed_now = deployed && live_failure(s).is_some();
        // A failure counts once per interval, however many monitors (consoles, cron) saw it.
        let min_gap = chrono::Duration::from_std(t.interval * 4 / 5).unwrap_or_default();
        let due = book
            .health_counted_at
            .get(&s.name)
            .is_none_or(|at| now - *at >= min_gap);
        let count = book.health_failures.entry(s.name.clone()).or_insert(0);
        if !failed_now {
            *count = 0;
            book.health_counted_at.remove(&s.name);
        } else if due {
            *count += 1;
            book.health_counted_at.insert(s.name.clone(), now);
        }
        let n = *count;
        let key = format!("health:{}", s.name);
        let prev = book
            .alerts
            .get(&key)
            .cloned()
            .unwrap_or_else(|| Alert::new(&key, ""));
        let (mut a, tr) = evaluate_count(&prev, n, t.health_failures, t.keep_resolved, now);
        a.rule = format!("{} health fails {}x in a row", s.name, t.health_failures);
        a.message = match live_failure(s) {
            Some(why) if deployed => format!("{}: {why} ({n} in a row)", s.name),
            _ => format!("{} healthy", s.name),
        };
        if let Some(tr) = tr {
            transitions.push((a.clone(), tr));
        }
        book.alerts.insert(key, a);
        let (cond, value, message) = super::rules::live_error_share(
            &s.name,
            s.live_color,
            s.traffic.as_ref(),
            t.error_percent,
            t.error_min_requests,
        );
        eval(
            &mut book,
            &mut transitions,
            format!("errors:{}", s.name),
            format!(
                "{} live color 5xx > {}%{}",
                s.name,
                t.error_percent,
                format_for(t.error_for)
            ),
            cond,
            value,
            t.error_for,
            message,
        );
        let last = log.records.iter().rev().find(|r| {
            r.service == s.name
                && r.outcome != "started"
                && matches!(r.action.as_str(), "deploy" | "rollback" | "redeploy")
        });
        eval(
            &mut book,
            &mut transitions,
            format!("deploy:{}", s.name),
            format!("last {} deploy failed", s.name),
            // A release the watch rolled back (issue 13) failed as much as one that never
            // became healthy.
            Some(last.is_some_and(|r| matches!(r.outcome.as_str(), "failed" | "rolled_back"))),
            None,
            Duration::ZERO,
            last.map_or_else(
                || format!("{}: no deploy on record", s.name),
                |r| {
                    format!(
                        "{}: last {} of {} {} at {}{}",
                        s.name,
                        r.action,
                        r.to_sha.as_deref().unwrap_or("?"),
                        r.outcome,
                        r.time,
                        r.error
                            .as_deref()
                            .map(|e| format!(": {}", e.lines().next().unwrap_or("")))
                            .unwrap_or_default()
                    )
                },
            ),
        );
    }
    (book, transitions)
}

/// Why the live color counts as a failed health check, if it does.
fn live_failure(s: &ServiceStatus) -> Option<String> {
    let Some(live) = s.live_color else {
        return Some("no live color".into());
    };
    match s.color(live) {
        None => Some(format!("live color {live} has no container")),
        Some(c) if c.state != ContainerState::Running => {
            Some(format!("live color {live} is {}", c.state.as_str()))
        }
        Some(c) => c
            .health
            .as_ref()
            .and_then(|h: &HealthReport| h.error.clone()),
    }
}

async fn container_stats(
    host: &Host,
    statuses: &[ServiceStatus],
    previous: &mut BTreeMap<String, (u64, u64, u64)>,
) -> Vec<ContainerStats> {
    let names: Vec<String> = statuses
        .iter()
        .flat_map(|s| {
            Color::BOTH.iter().filter_map(move |c| {
                s.color(*c)
                    .filter(|x| x.state == ContainerState::Running)
                    .map(|_| format!("{}-{c}", s.name))
            })
        })
        .collect();
    let samples = join_all(names.iter().map(|name| async move {
        let mut stream = host.docker.stats(
            name,
            Some(StatsOptions {
                stream: false,
                one_shot: true,
            }),
        );
        stream.next().await.and_then(Result::ok)
    }))
    .await;
    let mut out = Vec::new();
    let mut seen = BTreeMap::new();
    for (name, stats) in names.into_iter().zip(samples) {
        let counters = stats.as_ref().and_then(|s| {
            let cur = s.cpu_stats.as_ref()?;
            Some((
                cur.cpu_usage.as_ref()?.total_usage?,
                cur.system_cpu_usage?,
                u64::from(cur.online_cpus.unwrap_or(1)),
            ))
        });
        let cpu = match (counters, previous.get(&name)) {
            (Some((total, system, cpus)), Some((p_total, p_system, _))) => {
                let d_total = total.checked_sub(*p_total);
                let d_sys = system.checked_sub(*p_system).filter(|d| *d > 0);
                d_total
                    .zip(d_sys)
                    .map(|(t, s)| ((t as f64 / s as f64) * cpus as f64 * 1000.0).round() / 10.0)
            }
            _ => None,
        };
        if let Some(c) = counters {
            seen.insert(name.clone(), c);
        }
        let mem = stats
            .as_ref()
            .and_then(|s| s.memory_stats.as_ref())
            .and_then(|m| m.usage);
        let limit = stats
            .as_ref()
            .and_then(|s| s.memory_stats.as_ref())
            .and_then(|m| m.limit);
        out.push(ContainerStats {
            name,
            cpu_percent: cpu,
            mem_bytes: mem,
            mem_limit_bytes: limit,
        });
    }
    // Containers that went away are forgotten.
    *previous = seen;
    out
}
