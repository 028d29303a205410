//! The Prometheus text exposition (format 0.0.4, which node_exporter's textfile collector and
//! every scraper read) of what `status` and `alerts` know. Pure: a model in, text out.
//!
//! Conventions: `deckhand_` prefix, base units (seconds, bytes, ratios 0-1), `_total` only on
//! counters, `_info` for the metric whose labels carry the live color and SHA. Every sample
//! carries `env` and `host`. Label values come from hosts: they pass through the caller's
//! `clean` (visible escapes for control characters) and then the format's own escaping.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::monitor::{Alert, AlertState, HostMetrics};
use crate::release::audit::AuditRecord;
use crate::release::lock::LockState;
use crate::state::{Color, ContainerState, HostFacts, ServiceStatus};

/// What one host told us.
#[derive(Debug, Clone, Default)]
pub struct HostSample {
    pub host: String,
    pub reachable: bool,
    pub read_seconds: f64,
    pub facts: Option<HostFacts>,
    pub metrics: Option<HostMetrics>,
    pub services: Vec<ServiceSample>,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone)]
pub struct ServiceSample {
    pub status: ServiceStatus,
    pub lock: Option<LockState>,
    /// The last deploy or rollback that ended (not `started`), from the host's audit log.
    pub last_release: Option<AuditRecord>,
    /// Per-color traffic as the proxy reports it (empty when it does not: no proxy, or the
    /// earlier nginx one).
    pub traffic: Vec<ColorTraffic>,
}

/// One color's traffic through the proxy: counters since the proxy started, and the rate and
/// latency over the proxy's last minute.
#[derive(Debug, Clone, PartialEq)]
pub struct ColorTraffic {
    pub color: Color,
    pub requests_total: u64,
    /// Responses with a 5xx status.
    pub errors_total: u64,
    pub requests_per_second: f64,
    pub p50_seconds: Option<f64>,
    pub p99_seconds: Option<f64>,
}

impl ColorTraffic {
    /// The exposition's view of what `state::read_traffic` read from the proxy.
    pub fn from_state(traffic: Option<&crate::state::ServiceTraffic>) -> Vec<ColorTraffic> {
        let Some(t) = traffic else {
            return Vec::new();
        };
        t.colors
            .iter()
            .map(|(c, ct)| ColorTraffic {
                color: *c,
                requests_total: ct.total_requests,
                errors_total: ct.total_5xx,
                requests_per_second: ct.req_per_s,
                p50_seconds: ct.p50_ms.map(|ms| ms as f64 / 1000.0),
                p99_seconds: ct.p99_ms.map(|ms| ms as f64 / 1000.0),
            })
            .collect()
    }
}

/// One metric family: its samples are collected first, so each family is written once with
/// its HELP and TYPE, as the format requires.
struct Family {
    help: &'static str,
    kind: &'static str,
    samples: Vec<(String, String)>,
}

struct Exposition<'a> {
    families: BTreeMap<&'static str, Family>,
    clean: &'a dyn Fn(&str) -> String,
}

impl Exposition<'_> {
    fn add(
        &mut self,
        name: &'static str,
        kind: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let mut l = String::new();
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                l.push(',');
            }
            let _ = write!(l, "{k}=\"{}\"", escape_label(&(self.clean)(v)));
        }
        self.families
            .entry(name)
            .or_insert_with(|| Family {
                help,
                kind,
                samples: Vec::new(),
            })
            .samples
            .push((l, format_value(value)));
    }

    fn render(self) -> String {
        let mut out = String::new();
        for (name, f) in self.families {
            let _ = writeln!(out, "# HELP {name} {}", f.help);
            let _ = writeln!(out, "# TYPE {name} {}", f.kind);
            for (labels, value) in f.samples {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
        out
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn parse_time(t: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.timestamp_millis() as f64 / 1000.0)
}

const STATES: [(AlertState, &str); 4] = [
    (AlertState::Inactive, "inactive"),
    (AlertState::Pending, "pending"),
    (AlertState::Firing, "firing"),
    (AlertState::Resolved, "resolved"),
];

/// Renders the exposition of an environment. `clean` makes host text safe to show.
pub fn render(env: &str, hosts: &[HostSample], clean: &dyn Fn(&str) -> String) -> String {
    let mut x = Exposition {
        families: BTreeMap::new(),
        clean,
    };
    for h in hosts {
        let hl = [("env", env), ("host", h.host.as_str())];
        x.add(
            "deckhand_host_up",
            "gauge",
            "1 when deckhand could reach the host (SSH and Docker), else 0.",
            &hl,
            if h.reachable { 1.0 } else { 0.0 },
        );
        x.add(
            "deckhand_host_read_duration_seconds",
            "gauge",
            "How long reading the host took, connection included.",
            &hl,
            h.read_seconds,
        );
        if let Some(f) = &h.facts {
            host_facts(&mut x, &hl, f);
        }
        if let Some(m) = &h.metrics {
            if let Some(c) = m.cpu_percent {
                x.add(
                    "deckhand_host_cpu_usage_ratio",
                    "gauge",
                    "CPU busy share of the host (0-1), over the last sampling interval.",
                    &hl,
                    c / 100.0,
                );
            }
            if let Some(p) = m.mem_percent {
                x.add(
                    "deckhand_host_memory_usage_ratio",
                    "gauge",
                    "Memory in use on the host (0-1, MemAvailable counts as free).",
                    &hl,
                    p / 100.0,
                );
            }
        }
        for a in &h.alerts {
            for (state, name) in STATES {
                x.add(
                    "deckhand_alert_state",
                    "gauge",
                    "1 for the state each alert rule is in (inactive, pending, firing, resolved), else 0.",
                    &[
                        ("env", env),
                        ("host", &h.host),
                        ("alert", &a.key),
                        ("state", name),
                    ],
                    if a.state == state { 1.0 } else { 0.0 },
                );
            }
            if let Some(since) = a.firing_since.filter(|_| a.state == AlertState::Firing) {
                x.add(
                    "deckhand_alert_firing_since_timestamp_seconds",
                    "gauge",
                    "When a firing alert started firing (Unix time).",
                    &[("env", env), ("host", &h.host), ("alert", &a.key)],
                    since.timestamp_millis() as f64 / 1000.0,
                );
            }
        }
        for s in &h.services {
            service(&mut x, env, &h.host, s);
        }
    }
    x.render()
}

fn host_facts(x: &mut Exposition<'_>, hl: &[(&str, &str)], f: &HostFacts) {
    if let Some(t) = f.mem_total_bytes {
        x.add(
            "deckhand_host_memory_total_bytes",
            "gauge",
            "Memory of the host.",
            hl,
            t as f64,
        );
    }
    if let Some(a) = f.mem_available_bytes {
        x.add(
            "deckhand_host_memory_available_bytes",
            "gauge",
            "MemAvailable of the host.",
            hl,
            a as f64,
        );
    }
    for d in [&f.disk_root, &f.disk_docker].into_iter().flatten() {
        let labels = [hl[0], hl[1], ("mount", d.mount.as_str())];
        x.add(
            "deckhand_host_filesystem_size_bytes",
            "gauge",
            "Size of the file system of / and of Docker's data root.",
            &labels,
            d.total_bytes as f64,
        );
        x.add(
            "deckhand_host_filesystem_used_bytes",
            "gauge",
            "Used space of the file system of / and of Docker's data root.",
            &labels,
            d.used_bytes as f64,
        );
    }
    if let Some(l) = f.load_average {
        x.add(
            "deckhand_host_load1",
            "gauge",
            "One-minute load average of the host.",
            hl,
            l[0],
        );
    }
}

fn service(x: &mut Exposition<'_>, env: &str, host: &str, s: &ServiceSample) {
    let st = &s.status;
    let sl = [("env", env), ("host", host), ("service", st.name.as_str())];
    let live_color = st.live_color.map_or("", Color::as_str);
    let live_sha = st.live_sha.as_deref().unwrap_or("");
    x.add(
        "deckhand_service_info",
        "gauge",
        "Always 1; the labels say which color is live and which SHA it runs (empty: none).",
        &[
            sl[0],
            sl[1],
            sl[2],
            ("live_color", live_color),
            ("live_sha", live_sha),
        ],
        1.0,
    );
    x.add(
        "deckhand_service_healthy",
        "gauge",
        "1 when status finds no problem with the service (live color running and healthy, proxy up), else 0.",
        &sl,
        if st.problems.is_empty() { 1.0 } else { 0.0 },
    );
    x.add(
        "deckhand_service_retained_images",
        "gauge",
        "Images of the service's repository on the host.",
        &sl,
        st.images.len() as f64,
    );
    x.add(
        "deckhand_lock_held",
        "gauge",
        "1 while someone holds the service's deploy lock on the host, else 0.",
        &sl,
        if s.lock.is_some() { 1.0 } else { 0.0 },
    );
    if let Some(l) = &s.lock {
        x.add(
            "deckhand_lock_heartbeat_age_seconds",
            "gauge",
            "Seconds since the lock holder's last heartbeat (stale after 30).",
            &sl,
            l.heartbeat_age_secs as f64,
        );
    }
    for color in Color::BOTH {
        let cl = [sl[0], sl[1], sl[2], ("color", color.as_str())];
        let c = st.color(color);
        x.add(
            "deckhand_color_running",
            "gauge",
            "1 when the color's container is running, else 0 (stopped, absent).",
            &cl,
            if c.is_some_and(|c| c.state == ContainerState::Running) {
                1.0
            } else {
                0.0
            },
        );
        if let Some(h) = c.and_then(|c| c.health.as_ref()) {
            x.add(
                "deckhand_color_health_ok",
                "gauge",
                "1 when the color's /health answered 200 healthy at the last probe, else 0.",
                &cl,
                if h.is_healthy() { 1.0 } else { 0.0 },
            );
            x.add(
                "deckhand_color_health_latency_seconds",
                "gauge",
                "How long the color's last /health probe took.",
                &cl,
                h.latency_ms as f64 / 1000.0,
            );
        }
    }
    if let Some(r) = &s.last_release {
        let rl = [
            sl[0],
            sl[1],
            sl[2],
            ("action", r.action.as_str()),
            ("outcome", r.outcome.as_str()),
        ];
        if let Some(t) = parse_time(&r.time) {
            x.add(
                "deckhand_last_release_timestamp_seconds",
                "gauge",
                "When the last deploy or rollback of the service on the host ended (Unix time); labels: action and outcome.",
                &rl,
                t,
            );
        }
        x.add(
            "deckhand_last_release_success",
            "gauge",
            "1 when the last deploy or rollback succeeded (or had nothing to do), else 0.",
            &sl,
            if matches!(r.outcome.as_str(), "success" | "noop") {
                1.0
            } else {
                0.0
            },
        );
        if let Some(ms) = r.duration_ms {
            x.add(
                "deckhand_last_release_duration_seconds",
                "gauge",
                "How long the last deploy or rollback took.",
                &sl,
                ms as f64 / 1000.0,
            );
        }
    }
    for t in &s.traffic {
        let cl = [sl[0], sl[1], sl[2], ("color", t.color.as_str())];
        x.add(
            "deckhand_proxy_requests_total",
            "counter",
            "Requests the proxy sent to the color since the proxy started.",
            &cl,
            t.requests_total as f64,
        );
        x.add(
            "deckhand_proxy_errors_total",
            "counter",
            "5xx responses of the color through the proxy since the proxy started.",
            &cl,
            t.errors_total as f64,
        );
        x.add(
            "deckhand_proxy_requests_per_second",
            "gauge",
            "Requests per second the color answered through the proxy over the last minute.",
            &cl,
            t.requests_per_second,
        );
        // Separate gauges: a `quantile` label belongs to summaries, which these are not (the
        // proxy's window is a minute, not the process's life).
        for (name, help, v) in [
            (
                "deckhand_proxy_latency_p50_seconds",
                "Median latency of the color's requests through the proxy over the last minute.",
                t.p50_seconds,
            ),
            (
                "deckhand_proxy_latency_p99_seconds",
                "99th percentile latency of the color's requests through the proxy over the last minute.",
                t.p99_seconds,
            ),
        ] {
            if let Some(v) = v {
                x.add(name, "gauge", help, &cl, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> String {
        s.to_string()
    }

    #[test]
    fn families_are_written_once_with_help_and_type() {
        let hosts = vec![
            HostSample {
                host: "a".into(),
                reachable: true,
                ..Default::default()
            },
            HostSample {
                host: "b\"\\\n".into(),
                reachable: false,
                ..Default::default()
            },
        ];
        let text = render("staging", &hosts, &id);
        assert_eq!(text.matches("# TYPE deckhand_host_up gauge").count(), 1);
        assert!(text.contains("deckhand_host_up{env=\"staging\",host=\"a\"} 1\n"));
        assert!(
            text.contains(r#"deckhand_host_up{env="staging",host="b\"\\\n"} 0"#),
            "{text}"
        );
    }

    #[test]
    fn values_are_plain_numbers() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(1_795_082_400.5), "1795082400.5");
        assert_eq!(format_value(f64::NAN), "NaN");
    }
}
