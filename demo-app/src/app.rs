//! What the service answers: routes, `/health` JSON, the runtime health switch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::http::{Request, Response, json_string};
use crate::log;
use crate::timefmt;

pub struct App {
    pub version: String,
    started: Instant,
    healthy: AtomicBool,
    /// Added before every response except `/health` (draining tests).
    pub response_delay: Duration,
    /// Pages answer 500 (`DEMO_PAGES_FAIL`); `/health` stays healthy.
    pub pages_fail: bool,
}

impl App {
    pub fn new(version: String, healthy: bool, response_delay: Duration) -> Self {
        App {
            version,
            started: Instant::now(),
            healthy: AtomicBool::new(healthy),
            response_delay,
            pages_fail: false,
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }

    /// Flips the health state; logs when it changes.
    pub fn set_healthy(&self, healthy: bool) {
        let was = self.healthy.swap(healthy, Ordering::SeqCst);
        if was != healthy {
            log(&format!(
                "health set to {} by /admin/{}",
                status_word(healthy),
                status_word(healthy)
            ));
        }
    }

    /// The `/health` body (`uptime` in whole seconds, `timestamp` now).
    pub fn health_json(&self, now_rfc3339: &str) -> String {
        let healthy = self.is_healthy();
        format!(
            "{{\"status\":\"{}\",\"uptime\":{},\"timestamp\":{},\"services\":{{\"database\":\"{}\",\"redis\":\"connected\"}},\"version\":{}}}",
            status_word(healthy),
            self.started.elapsed().as_secs(),
            json_string(now_rfc3339),
            if healthy { "connected" } else { "disconnected" },
            json_string(&self.version),
        )
    }

    /// Answers one request. Route + method, then the response; the caller writes it.
    pub fn handle(&self, req: &Request) -> Response {
        let get_or_head = ["GET", "HEAD"];
        if self.pages_fail && req.path != "/health" && !req.path.starts_with("/admin/") {
            log(&format!(
                "{} {} -> 500: page failed (DEMO_PAGES_FAIL)",
                req.method, req.path
            ));
            return Response::json(500, "{\"error\":\"page failed\"}")
                .with_header("X-Demo-Version", self.version.clone());
        }
        let resp = match req.path.as_str() {
            "/health" => match method_in(req, &get_or_head) {
                Ok(()) => {
                    let status = if self.is_healthy() { 200 } else { 503 };
                    Response::json(status, self.health_json(&timefmt::now_rfc3339()))
                }
                Err(r) => r,
            },
            "/" => method_in(req, &get_or_head)
                .map(|()| Response::text(200, format!("deckhand-demo {}\n", self.version)))
                .unwrap_or_else(|r| r),
            "/version" => method_in(req, &get_or_head)
                .map(|()| {
                    Response::json(
                        200,
                        format!("{{\"version\":{}}}", json_string(&self.version)),
                    )
                })
                .unwrap_or_else(|r| r),
            "/admin/healthy" | "/admin/unhealthy" => match method_in(req, &["POST"]) {
                Ok(()) => {
                    let healthy = req.path == "/admin/healthy";
                    self.set_healthy(healthy);
                    Response::json(200, format!("{{\"status\":\"{}\"}}", status_word(healthy)))
                }
                Err(r) => r,
            },
            _ => Response::json(404, "{\"error\":\"not found\"}"),
        };
        resp.with_header("X-Demo-Version", self.version.clone())
    }
}

fn status_word(healthy: bool) -> &'static str {
    if healthy { "healthy" } else { "unhealthy" }
}

fn method_in(req: &Request, allowed: &[&str]) -> Result<(), Response> {
    if allowed.contains(&req.method.as_str()) {
        Ok(())
    } else {
        Err(Response::json(405, "{\"error\":\"method not allowed\"}")
            .with_header("Allow", allowed.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_head;

    fn req(method: &str, path: &str) -> Request {
        let raw = format!("{method} {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        parse_head(raw.as_bytes()).unwrap().unwrap().0
    }

    fn app() -> App {
        App::new("a000001".into(), true, Duration::ZERO)
    }

    fn body(r: &Response) -> &str {
        std::str::from_utf8(&r.body).unwrap()
    }

    #[test]
    fn health_json_shape() {
        let a = app();
        assert_eq!(
            a.health_json("2026-01-02T03:04:05Z"),
            "{\"status\":\"healthy\",\"uptime\":0,\"timestamp\":\"2026-01-02T03:04:05Z\",\
             \"services\":{\"database\":\"connected\",\"redis\":\"connected\"},\"version\":\"a000001\"}"
        );
        a.set_healthy(false);
        assert_eq!(
            a.health_json("2026-01-02T03:04:05Z"),
            "{\"status\":\"unhealthy\",\"uptime\":0,\"timestamp\":\"2026-01-02T03:04:05Z\",\
             \"services\":{\"database\":\"disconnected\",\"redis\":\"connected\"},\"version\":\"a000001\"}"
        );
    }

    #[test]
    fn health_flips_at_runtime() {
        let a = app();
        let r = a.handle(&req("GET", "/health"));
        assert_eq!((r.status, r.content_type), (200, "application/json"));
        assert!(body(&r).starts_with("{\"status\":\"healthy\""));

        assert_eq!(a.handle(&req("POST", "/admin/unhealthy")).status, 200);
        let r = a.handle(&req("GET", "/health"));
        assert_eq!(r.status, 503);
        assert!(body(&r).contains("\"database\":\"disconnected\""));

        assert_eq!(a.handle(&req("POST", "/admin/healthy")).status, 200);
        assert_eq!(a.handle(&req("GET", "/health")).status, 200);
    }

    #[test]
    fn failing_pages_keep_health() {
        let mut a = app();
        a.pages_fail = true;
        assert_eq!(a.handle(&req("GET", "/health")).status, 200);
        assert_eq!(a.handle(&req("GET", "/")).status, 500);
        assert_eq!(a.handle(&req("GET", "/orders/42")).status, 500);
        assert_eq!(a.handle(&req("POST", "/admin/unhealthy")).status, 200);
    }

    #[test]
    fn starts_unhealthy_when_asked() {
        let a = App::new("bad0001".into(), false, Duration::ZERO);
        assert_eq!(a.handle(&req("GET", "/health")).status, 503);
    }

    #[test]
    fn other_routes() {
        let a = app();
        let r = a.handle(&req("GET", "/"));
        assert_eq!((r.status, body(&r)), (200, "deckhand-demo a000001\n"));
        let r = a.handle(&req("GET", "/version?x"));
        assert_eq!((r.status, body(&r)), (200, "{\"version\":\"a000001\"}"));
        assert_eq!(a.handle(&req("HEAD", "/health")).status, 200);
        assert_eq!(a.handle(&req("GET", "/nope")).status, 404);
        let r = a.handle(&req("GET", "/admin/unhealthy"));
        assert_eq!(r.status, 405);
        assert!(r.headers.contains(&("Allow", "POST".to_string())));
        assert!(a.is_healthy(), "a GET must not flip health");
        assert_eq!(a.handle(&req("DELETE", "/health")).status, 405);
        assert!(
            r.headers
                .contains(&("X-Demo-Version", "a000001".to_string()))
        );
    }
}
