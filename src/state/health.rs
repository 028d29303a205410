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

/// Interprets an HTTP answer to a health request.
pub fn interpret(http_status: u16, body: &[u8], latency_ms: u64) -> HealthReport {
    let text = String::from_utf8_lossy(body);
    let short = || {
        let t = crate::redact::redact_text(text.trim());
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
                    (k.clone(), s)
                })
                .collect();
            report.status = Some(b.status.clone());
            if http_status != 200 || b.status != "healthy" {
                let down: Vec<String> = report
                    .services
                    .iter()
                    .filter(|(_, v)| !matches!(v.as_str(), "connected" | "ok" | "healthy" | "up"))
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect();
                let mut e = format!("HTTP {http_status}, status \"{}\"", b.status);
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
    let resp = match endpoint.client.get(endpoint.url(path)).send().await {
        Ok(r) => r,
        Err(e) => return HealthReport::failed(ms(), describe_request_error(&e, port, timeout)),
    };
    let code = resp.status().as_u16();
    match resp.bytes().await {
        Ok(body) => interpret(code, &body, ms()),
        Err(e) => HealthReport::failed(ms(), format!("HTTP {code}, body unreadable: {e}")),
    }
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
    fn a_200_that_says_degraded_is_not_healthy() {
        let r = interpret(200, br#"{"status":"degraded"}"#, 1);
        assert!(!r.is_healthy());
    }
}
