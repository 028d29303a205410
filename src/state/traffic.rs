//! Per-color traffic, live, from the proxy: requests per second, status classes and latency
//! percentiles over the last minute, plus HAProxy's counters since it started.
//!
//! HAProxy 2.6's stats have counters and averages but no percentiles, so every request is
//! logged as `%Ts %s %ST %Ta` (epoch second, server, status, active time in ms) into an
//! in-memory ring of the proxy ([`super::proxy_conf::TIMINGS_RING_BYTES`]); one exec reads the
//! ring and `show stat` together, and the percentiles are computed here over the lines of the
//! last 60 s. When traffic is heavy enough to wrap the ring within a minute, `window_s` says how
//! many seconds the figures cover. [`read_traffic`] is the engine's one entry point (status,
//! console, monitor, and the watch window after a switch).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Color;
use super::contract::PROXY_TIMINGS_RING;
use super::proxy_api::{self, ServerStat};
use super::proxy_conf::TIMINGS_RING_BYTES;
use crate::config::Service;
use crate::transport::Host;

/// The window the figures are computed over.
pub const WINDOW_SECS: u64 = 60;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ColorTraffic {
    /// HAProxy sends new requests to it.
    pub in_rotation: bool,
    /// Requests being served or queued right now.
    pub in_flight: u64,
    /// Requests answered in the window.
    pub requests: u64,
    pub req_per_s: f64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// 5xx answers as a share of all answers in the window; `None` without requests.
    pub error_5xx_percent: Option<f64>,
    /// Latency (request received to response sent, HAProxy's `%Ta`) in the window.
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    /// HAProxy's counters since the proxy started.
    pub total_requests: u64,
    pub total_5xx: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceTraffic {
    /// The host's clock (epoch seconds) when read.
    pub at: u64,
    /// Seconds the window figures cover (60, or less when the ring wrapped sooner).
    pub window_s: u64,
    pub colors: BTreeMap<Color, ColorTraffic>,
    /// Requests the proxy answered itself in the window (no color in rotation: 503).
    pub unrouted: u64,
}

impl ServiceTraffic {
    pub fn color(&self, c: Color) -> Option<&ColorTraffic> {
        self.colors.get(&c)
    }
}

fn read_commands() -> String {
    format!(
        "{}; show events {PROXY_TIMINGS_RING}",
        proxy_api::stat_command()
    )
}

/// Creates the exec of the next [`read_traffic`] of `service` ahead of it (it runs nothing;
/// see `proxy_api::prepare_spare`).
pub async fn prepare_traffic_read(host: &Host, service: &Service) {
    proxy_api::prepare_cli(host, &service.proxy_container(), &read_commands()).await;
}

/// Reads the traffic of a service from its running proxy: one exec.
pub async fn read_traffic(host: &Host, service: &Service) -> Result<ServiceTraffic, String> {
    let commands = read_commands();
    let (code, out) = proxy_api::cli(host, &service.proxy_container(), &commands)
        .await
        .map_err(|e| crate::util::error_chain(&e))?;
    if code != 0 {
        return Err(format!(
            "the proxy's admin socket did not answer (exit {code}): {}",
            out.trim()
        ));
    }
    Ok(compute(&out))
}

/// The figures from the output of one read: `# deckhand-proxy now=EPOCH`, `show stat`, then
/// the ring's lines.
pub fn compute(out: &str) -> ServiceTraffic {
    let stats = proxy_api::parse_show_stat(out);
    let now = out
        .lines()
        .find_map(|l| l.strip_prefix("# deckhand-proxy now="))
        .and_then(|v| v.trim().parse::<u64>().ok());
    let lines: Vec<(u64, &str, u16, u64)> = out.lines().filter_map(parse_timing).collect();
    let now = now.or_else(|| lines.iter().map(|l| l.0).max()).unwrap_or(0);
    let since = now.saturating_sub(WINDOW_SECS - 1);
    let ring_bytes: usize = out
        .lines()
        .filter(|l| parse_timing(l).is_some())
        .map(|l| l.len() + 1)
        .sum();
    let oldest = lines.iter().map(|l| l.0).min();
    // A ring close to full has dropped older lines: the window is what it still holds.
    let window_s = match oldest {
        Some(o) if ring_bytes * 10 >= TIMINGS_RING_BYTES * 9 && o > since => {
            (now - o + 1).min(WINDOW_SECS)
        }
        _ => WINDOW_SECS,
    };
    let mut per: BTreeMap<Color, (ColorTraffic, Vec<u64>)> = BTreeMap::new();
    let mut unrouted = 0;
    for &(ts, server, status, ms) in &lines {
        if ts < since || ts > now {
            continue;
        }
        let Some(color) = Color::parse(server) else {
            unrouted += 1;
            continue;
        };
        let (t, lat) = per.entry(color).or_default();
        t.requests += 1;
        match status {
            200..=299 => t.status_2xx += 1,
            300..=399 => t.status_3xx += 1,
            400..=499 => t.status_4xx += 1,
            500..=599 => t.status_5xx += 1,
            _ => {}
        }
        lat.push(ms);
    }
    let mut colors = BTreeMap::new();
    for color in Color::BOTH {
        let (mut t, mut lat) = per.remove(&color).unwrap_or_default();
        let Some(s) = stats.get(&color) else {
            if t.requests > 0 {
                finish(&mut t, &mut lat, window_s);
                colors.insert(color, t);
            }
            continue;
        };
        apply_stat(&mut t, s);
        finish(&mut t, &mut lat, window_s);
        colors.insert(color, t);
    }
    ServiceTraffic {
        at: now,
        window_s,
        colors,
        unrouted,
    }
}

fn apply_stat(t: &mut ColorTraffic, s: &ServerStat) {
    t.in_rotation = s.in_rotation();
    t.in_flight = s.in_flight();
    t.total_requests = s.req_tot;
    t.total_5xx = s.hrsp_5xx;
}

fn finish(t: &mut ColorTraffic, lat: &mut [u64], window_s: u64) {
    lat.sort_unstable();
    t.p50_ms = percentile(lat, 50.0);
    t.p99_ms = percentile(lat, 99.0);
    t.req_per_s = round1(t.requests as f64 / window_s.max(1) as f64);
    t.error_5xx_percent =
        (t.requests > 0).then(|| round1(t.status_5xx as f64 * 100.0 / t.requests as f64));
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// One request as the proxy logged it (the watch window reads these).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestLine<'a> {
    pub ts: u64,
    pub server: &'a str,
    pub status: u16,
    pub ms: u64,
    /// Without the query string; empty in lines of a proxy started before paths were logged.
    pub path: &'a str,
}

/// The request lines of a read's output.
pub fn request_lines(out: &str) -> Vec<RequestLine<'_>> {
    out.lines()
        .filter_map(|l| {
            let (ts, server, status, ms) = parse_timing(l)?;
            let path = l.splitn(5, ' ').nth(4).unwrap_or("");
            Some(RequestLine {
                ts,
                server,
                status,
                ms,
                path,
            })
        })
        .collect()
}

/// One ring line: `EPOCH SERVER STATUS MS [PATH]`. HAProxy writes `-1` for a time it could not
/// measure (an aborted request); such lines count with 0 ms.
fn parse_timing(line: &str) -> Option<(u64, &str, u16, u64)> {
    let mut it = line.splitn(5, ' ');
    let ts = it.next()?.parse::<u64>().ok()?;
    let server = it.next()?;
    let status = it.next()?.parse::<i32>().ok()?;
    let ms = it.next()?.parse::<i64>().ok()?;
    if it.next().is_some_and(|p| !p.starts_with('/') && p != "*") || ts < 1_000_000_000 {
        return None;
    }
    Some((
        ts,
        server,
        u16::try_from(status).unwrap_or(0),
        u64::try_from(ms).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(blue: (&str, u64, u64), green: (&str, u64, u64)) -> String {
        format!(
            "# pxname,svname,qcur,scur,status,req_tot,hrsp_5xx\napp,blue,0,{},{},{},{}\napp,green,0,{},{},{},{}\n\n",
            blue.1, blue.0, blue.2, 0, green.1, green.0, green.2, 0
        )
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn the_last_minute_per_color() {
        let mut out = String::from("# deckhand-proxy now=1800000100\n");
        out.push_str(&stat(("MAINT", 1, 40), ("no check", 0, 90)));
        // Older than the window: ignored.
        out.push_str("1800000000 blue 500 1\n");
        for i in 0..98 {
            out.push_str(&format!("18000000{} green 200 {}\n", 50 + i % 50, i + 1));
        }
        out.push_str("1800000090 green 503 900\n1800000099 green 404 1000\n");
        out.push_str("1800000095 blue 200 3000 /orders/1\n1800000096 <NOSRV> 503 0 /\n");
        let t = compute(&out);
        assert_eq!(t.at, 1_800_000_100);
        assert_eq!(t.window_s, 60);
        assert_eq!(t.unrouted, 1);
        let g = t.color(Color::Green).expect("green");
        assert_eq!(g.requests, 100);
        assert_eq!((g.status_2xx, g.status_4xx, g.status_5xx), (98, 1, 1));
        assert_eq!(g.error_5xx_percent, Some(1.0));
        assert_eq!(g.p50_ms, Some(50));
        assert_eq!(g.p99_ms, Some(900));
        assert_eq!(g.req_per_s, 1.7);
        assert!(g.in_rotation);
        assert_eq!(g.total_requests, 90);
        let b = t.color(Color::Blue).expect("blue");
        assert!(!b.in_rotation);
        assert_eq!(b.in_flight, 1);
        assert_eq!(b.requests, 1);
        assert_eq!(b.p99_ms, Some(3000));
        assert_eq!(b.total_requests, 40);
    }

    #[test]
    fn no_traffic_has_no_share_and_no_percentiles() {
        let t = compute(&format!(
            "# deckhand-proxy now=1800000100\n{}",
            stat(("no check", 0, 0), ("MAINT", 0, 0))
        ));
        let b = t.color(Color::Blue).expect("blue");
        assert_eq!(b.requests, 0);
        assert_eq!(b.error_5xx_percent, None);
        assert_eq!(b.p50_ms, None);
        assert!(compute("garbage\n1 2 3\n").colors.is_empty());
    }
}
