//! The watch's judgement of one read of the proxy: pure, so every threshold is unit-tested.
//!
//! Only requests since the watch began count (the proxy's ring lines carry the host's epoch
//! second). Without a stable color to compare with (a full switch), the new color breaches
//! when its 5xx share is above `max_error_percent` or its p99 above `max_p99`, once it has
//! answered `min_requests`. A canary is compared with the stable color: its 5xx share more
//! than `max_error_percent` points above the stable's, or its p99 above both `max_p99` and
//! twice the stable's p99 (a slow app is slow in both colors; only the canary's own slowness
//! is its fault).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::WatchSettings;
use crate::state::Color;
use crate::state::traffic::{RequestLine, percentile};

/// How many failing paths the evidence lists.
const SAMPLE_PATHS: usize = 5;

/// One color's requests since the watch began.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub requests: u64,
    pub status_5xx: u64,
    pub error_percent: Option<f64>,
    pub p99_ms: Option<u64>,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// The most frequent paths answered with 5xx, with their counts.
    pub failing_paths: Vec<(String, u64)>,
    /// The host's epoch second of the first 5xx answer.
    pub first_failure_at: Option<u64>,
}

/// Counts the requests of `color` logged at or after `since` (epoch second).
pub fn counts(lines: &[RequestLine<'_>], color: Color, since: u64) -> Counts {
    let mut c = Counts::default();
    let mut lat = Vec::new();
    let mut paths: BTreeMap<&str, u64> = BTreeMap::new();
    for l in lines
        .iter()
        .filter(|l| l.ts >= since && server_color(l.server) == Some(color))
    {
        c.requests += 1;
        *c.statuses.entry(l.status).or_default() += 1;
        lat.push(l.ms);
        if (500..=599).contains(&l.status) {
            c.status_5xx += 1;
            *paths
                .entry(if l.path.is_empty() { "?" } else { l.path })
                .or_default() += 1;
            c.first_failure_at = Some(c.first_failure_at.map_or(l.ts, |t| t.min(l.ts)));
        }
    }
    lat.sort_unstable();
    c.p99_ms = percentile(&lat, 99.0);
    c.error_percent =
        (c.requests > 0).then(|| (c.status_5xx as f64 * 1000.0 / c.requests as f64).round() / 10.0);
    let mut by_count: Vec<(String, u64)> = paths
        .into_iter()
        .map(|(p, n)| (printable(&crate::redact::redact_text(p)), n))
        .collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    by_count.truncate(SAMPLE_PATHS);
    c.failing_paths = by_count;
    c
}

/// A log line's server: `green` on a droplet, `green3` (a slot of the color's
/// `server-template`) on a Swarm.
fn server_color(server: &str) -> Option<Color> {
    Color::parse(server.trim_end_matches(|c: char| c.is_ascii_digit()))
}

/// A path as a client sent it is hostile input: no control characters reach a terminal.
fn printable(p: &str) -> String {
    p.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Why a watch failed, in one sentence, or `None` while the new color is within bounds.
pub fn breach(new: &Counts, stable: Option<&Counts>, settings: &WatchSettings) -> Option<String> {
    if new.requests < settings.min_requests.max(1) {
        return None;
    }
    let err = new.error_percent.unwrap_or(0.0);
    let max_p99 = u64::try_from(settings.max_p99.as_millis()).unwrap_or(u64::MAX);
    match stable.filter(|s| s.requests > 0) {
        None => {
            if err > settings.max_error_percent {
                return Some(format!(
                    "{err} % of its {} requests answered 5xx (limit {} %)",
                    new.requests, settings.max_error_percent
                ));
            }
            match new.p99_ms {
                Some(p) if p > max_p99 => Some(format!(
                    "p99 latency {p} ms over {} requests (limit {max_p99} ms)",
                    new.requests
                )),
                _ => None,
            }
        }
        Some(s) => {
            let stable_err = s.error_percent.unwrap_or(0.0);
            if err - stable_err > settings.max_error_percent {
                return Some(format!(
                    "{err} % of its {} requests answered 5xx against {stable_err} % of the stable color's {} (limit: {} points above)",
                    new.requests, s.requests, settings.max_error_percent
                ));
            }
            let stable_p99 = s.p99_ms.unwrap_or(0);
            match new.p99_ms {
                Some(p) if p > max_p99 && p > stable_p99.saturating_mul(2) => Some(format!(
                    "p99 latency {p} ms against the stable color's {stable_p99} ms (limit: above {max_p99} ms and twice the stable's)"
                )),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn line(
        ts: u64,
        server: &'static str,
        status: u16,
        ms: u64,
        path: &'static str,
    ) -> RequestLine<'static> {
        RequestLine {
            ts,
            server,
            status,
            ms,
            path,
        }
    }

    fn settings() -> WatchSettings {
        WatchSettings {
            window: Duration::from_secs(10),
            max_error_percent: 5.0,
            min_requests: 20,
            max_p99: Duration::from_millis(500),
        }
    }

    #[test]
    fn a_swarm_template_slot_counts_for_its_color() {
        let lines = [
            line(100, "green1", 500, 3, "/"),
            line(100, "green12", 200, 4, "/"),
            line(100, "blue2", 200, 1, "/"),
            line(100, "<NOSRV>", 503, 0, "/"),
        ];
        let green = counts(&lines, Color::Green, 100);
        assert_eq!((green.requests, green.status_5xx), (2, 1));
        assert_eq!(counts(&lines, Color::Blue, 100).requests, 1);
    }

    #[test]
    fn counts_only_the_color_since_the_watch_began() {
        let mut lines = vec![line(99, "green", 500, 1, "/old")];
        for i in 0..30 {
            lines.push(line(
                100 + i / 10,
                "green",
                if i % 3 == 0 { 500 } else { 200 },
                5,
                if i % 2 == 0 { "/a" } else { "/b?x" },
            ));
        }
        lines.push(line(101, "blue", 500, 1, "/blue"));
        let c = counts(&lines, Color::Green, 100);
        assert_eq!(c.requests, 30);
        assert_eq!(c.status_5xx, 10);
        assert_eq!(c.statuses.get(&200), Some(&20));
        assert_eq!(c.error_percent, Some(33.3));
        assert_eq!(c.first_failure_at, Some(100));
        assert_eq!(
            c.failing_paths,
            vec![("/a".to_string(), 5), ("/b?x".to_string(), 5)]
        );
    }

    #[test]
    fn a_full_switch_breaches_on_errors_or_latency_once_there_are_enough_requests() {
        let s = settings();
        let mut c = Counts {
            requests: 19,
            status_5xx: 19,
            error_percent: Some(100.0),
            ..Default::default()
        };
        assert_eq!(breach(&c, None, &s), None, "below min_requests");
        c.requests = 20;
        assert!(breach(&c, None, &s).expect("breach").contains("100 %"));
        c.error_percent = Some(5.0);
        assert_eq!(breach(&c, None, &s), None, "at the limit is within");
        c.p99_ms = Some(501);
        assert!(
            breach(&c, None, &s)
                .expect("slow")
                .contains("p99 latency 501 ms")
        );
    }

    #[test]
    fn a_canary_is_compared_with_the_stable_color() {
        let s = settings();
        let stable = Counts {
            requests: 300,
            error_percent: Some(10.0),
            p99_ms: Some(400),
            ..Default::default()
        };
        let mut canary = Counts {
            requests: 100,
            error_percent: Some(14.0),
            p99_ms: Some(700),
            ..Default::default()
        };
        assert_eq!(
            breach(&canary, Some(&stable), &s),
            None,
            "4 points above, p99 < 2x"
        );
        canary.error_percent = Some(15.1);
        assert!(
            breach(&canary, Some(&stable), &s)
                .expect("errors")
                .contains("against 10 %")
        );
        canary.error_percent = Some(0.0);
        canary.p99_ms = Some(801);
        assert!(
            breach(&canary, Some(&stable), &s)
                .expect("slow")
                .contains("801 ms")
        );
    }
}
