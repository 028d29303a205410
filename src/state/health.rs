//! The `/health` answer of one color: fetched through the host's transport, parsed per the spec.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::transport::Host;

/// The spec's body: `{"status": "healthy", "uptime": 3600, "timestamp": "...",
/// "services": {"database": "connected", "redis": "connected"}}`. Extra fields are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthBody {
    pub status: String,
    #[serde(default)]
    pub uptime: Option<f64>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub services: BTreeMap<String, serde_json::Value>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One probe's outcome. `error` is set whenever the answer does not say healthy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    pub http_status: Option<u16>,
    pub status: Option<String>,
    pub latency_ms: u64,
    pub uptime: Option<f64>,
    pub services: BTreeMap<String, String>,
    pub error: Option<String>,
    /// The body when it could not be parsed or did not say healthy (truncated).
    pub body: Option<String>,
}

impl HealthReport {
    pub fn is_healthy(&self) -> bool {
        self.error.is_none()
    }

    fn failed(latency_ms: u64, error: String) -> Self {
        Self {
            http_status: None,
            status: None,
            latency_ms,
            uptime: None,
            services: BTreeMap::new(),
            error: Some(error),
            body: None,
        }
    }

    /// One line for tables and error messages.
    pub fn summary(&self) -> String {
        match (&self.error, self.http_status) {
            (None, Some(code)) => format!(
                "{} ({code}, {}ms)",
                self.status.as_deref().unwrap_or("healthy"),
                self.latency_ms
            ),
            (Some(e), _) => e.clone(),
            (None, None) => "unknown".into(),
        }
    }
}

const BODY_LIMIT: usize = 400;

/// The most of a `/health` body deckhand reads. A health answer is a few hundred bytes; a host
/// streaming more (a misrouted port, a hostile app) must not fill the console's memory.
pub const MAX_HEALTH_BODY: usize = 64 * 1024;

/// A host string in a report: secrets masked (by name and by value), controls shown visibly,
/// one line.
fn clean(s: &str) -> String {
    crate::sanitize::for_terminal_line(&crate::redact::redact_text(s)).into_owned()
}

/// Interprets an HTTP answer to a health request. Every string in the report is redacted and
/// sanitized here, before it reaches a table, JSON, an alert book or a webhook.
pub fn interpret(http_status: u16, body: &[u8], latency_ms: u64) -> HealthReport {
    let text = String::from_utf8_lossy(body);
    let short = || {
        let t = clean(text.trim());
        if t.len() > BODY_LIMIT {
            let mut end = BODY_LIMIT;
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &t[..end])
        } else {
            t
        }
    };
    let parsed: Result<HealthBody, _> = serde_json::from_slice(body);
    let mut report = HealthReport {
        http_status: Some(http_status),
        status: None,
        latency_ms,
        uptime: None,
        services: BTreeMap::new(),
        error: None,
        body: None,
    };
    match parsed {
        Ok(b) => {
            report.uptime = b.uptime;
            report.services = b
                .services
                .iter()
                .map(|(k, v)| {
                    let s = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    (clean(k), clean(&s))
                })
                .collect();
            report.status = Some(clean(&b.status));
            if http_status != 200 || b.status != "healthy" {
                let down: Vec<String> = report
                    .services
                    .iter()
                    .filter(|(_, v)| !matches!(v.as_str(), "connected" | "ok" | "healthy" | "up"))
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect();
                let mut e = format!(
                    "HTTP {http_status}, status \"{}\"",
                    report.status.as_deref().unwrap_or("")
                );
                if !down.is_empty() {
                    e.push_str(&format!(" ({})", down.join(", ")));
                }
                report.error = Some(e);
                report.body = Some(short());
            }
        }
        Err(parse) => {
            report.error = Some(if http_status == 200 {
                format!("HTTP 200 but the body is not the health JSON: {parse}")
            } else {
                format!("HTTP {http_status} with a body that is not the health JSON")
            });
            report.body = Some(short());
        }
    }
    report
}

/// Probes `GET path` on the host's `127.0.0.1:port`.
pub async fn probe_health(host: &Host, port: u16, path: &str, timeout: Duration) -> HealthReport {
    let started = Instant::now();
    let ms = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let endpoint = match host.http(port, timeout).await {
        Ok(e) => e,
        Err(e) => return HealthReport::failed(ms(), e.to_string()),
    };
    let trip = endpoint.trip();
    let sent = endpoint.get(path).send().await;
    trip.end();
    let resp = match sent {
        Ok(r) => r,
        Err(e) => return HealthReport::failed(ms(), describe_request_error(&e, port, timeout)),
    };
    let code = resp.status().as_u16();
    match read_capped(resp, MAX_HEALTH_BODY).await {
        Ok((body, false)) => interpret(code, &body, ms()),
        Ok((body, true)) => {
            let mut r = interpret(code, &body, ms());
            r.error = Some(format!(
                "HTTP {code} with a body larger than {} KiB (truncated; a health answer is a few hundred bytes: is app_port the app's port?)",
                MAX_HEALTH_BODY / 1024
            ));
            r.body = r.body.map(|b| format!("{b} [truncated]"));
            r
        }
        Err(e) => HealthReport::failed(
            ms(),
            format!(
                "HTTP {code}, body unreadable: {}",
                crate::util::error_chain(&e)
            ),
        ),
    }
}

/// Reads at most `cap` bytes of a body; says whether there was more (the rest is never read:
/// dropping the response closes the connection).
pub async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

fn describe_request_error(e: &reqwest::Error, port: u16, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s on port {port}", timeout.as_secs_f32());
    }
    let chain = crate::util::error_chain(e);
    if e.is_connect() || chain.contains("refused") {
        return format!("connection refused on port {port} (is the app listening?)");
    }
    // Docker's port proxy accepts the connection even when nothing listens inside.
    if chain.contains("connection closed before message completed") || chain.contains("reset") {
        return format!(
            "port {port} accepts connections but the app does not answer (not listening yet, or on another port than app_port?)"
        );
    }
    format!("request failed: {chain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_answer_parses() {
        let body = br#"{"status":"healthy","uptime":3600,"timestamp":"2026-11-20T10:00:00Z","services":{"database":"connected","redis":"connected"},"version":"a1"}"#;
        let r = interpret(200, body, 3);
        assert!(r.is_healthy());
        assert_eq!(r.status.as_deref(), Some("healthy"));
        assert_eq!(r.uptime, Some(3600.0));
        assert_eq!(
            r.services.get("redis").map(String::as_str),
            Some("connected")
        );
        assert_eq!(r.summary(), "healthy (200, 3ms)");
    }

    #[test]
    fn unhealthy_answer_names_what_is_down() {
        let body =
            br#"{"status":"unhealthy","services":{"database":"disconnected","redis":"connected"}}"#;
        let r = interpret(503, body, 2);
        assert!(!r.is_healthy());
        assert_eq!(
            r.error.as_deref(),
            Some("HTTP 503, status \"unhealthy\" (database disconnected)")
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for body in [
            &b""[..],
            b"{",
            b"<html>oops</html>",
            b"null",
            b"[1,2]",
            b"{\"status\":3}",
        ] {
            let r = interpret(200, body, 1);
            assert!(!r.is_healthy(), "{body:?}");
        }
        let r = interpret(502, b"Bad Gateway", 1);
        assert_eq!(
            r.error.as_deref(),
            Some("HTTP 502 with a body that is not the health JSON")
        );
        assert_eq!(r.body.as_deref(), Some("Bad Gateway"));
    }

    #[test]
    fn host_strings_in_a_report_are_sanitized_and_redacted() {
        let body = r#"{"status":"down\u001b]0;owned\u0007","services":{"db\u001b[2J":"error: DB_PASS=hunter22 \u001b]52;c;eA==\u0007"}}"#;
        let r = interpret(503, body.as_bytes(), 1);
        let all = format!("{:?} {:?} {:?} {:?}", r.status, r.services, r.error, r.body);
        let json = serde_json::to_string(&r).expect("json");
        for s in [&all, &json] {
            assert!(!s.contains('\u{1b}') && !s.contains('\u{7}'), "{s}");
            assert!(!s.contains("hunter22"), "{s}");
        }
        assert_eq!(r.status.as_deref(), Some("down\\x1b]0;owned\\x07"));
    }

    #[test]
    fn a_200_that_says_degraded_is_not_healthy() {
        let r = interpret(200, br#"{"status":"degraded"}"#, 1);
        assert!(!r.is_healthy());
    }
}
