//! Notices when Docker stops running a container's HEALTHCHECK.
//!
//! Before Docker 23, a dockerd restart with `live-restore` (our droplets run with it) leaves every
//! restored container without health checks: its status freezes at whatever it was, "starting"
//! for a release that was still warming up (moby#41871). A deploy waiting for "healthy" would
//! then wait for nothing. Pausing and unpausing the container makes Docker start checking again;
//! that is only ever done to the new color, which serves no traffic yet.

use std::time::{Duration, Instant};

use bollard::models::{ContainerState, HealthConfig};

/// Docker's default interval and timeout when the image leaves them unset (0).
const DOCKER_DEFAULT: Duration = Duration::from_secs(30);
/// Room for a slow exec on a busy host.
const SLACK: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct CheckWatch {
    /// A check must have started within this long: one interval, plus a whole timeout for the
    /// one before it to finish, plus slack.
    patience: Duration,
    last: Option<String>,
    since: Instant,
}

impl CheckWatch {
    /// `None` when the container has no HEALTHCHECK, so there is nothing to watch.
    pub fn new(config: Option<&HealthConfig>, now: Instant) -> Option<CheckWatch> {
        let config = config?;
        if config
            .test
            .as_ref()
            .is_none_or(|t| t.first().is_none_or(|w| w == "NONE"))
        {
            return None;
        }
        let ns = |v: Option<i64>| match v {
            Some(n) if n > 0 => Duration::from_nanos(u64::try_from(n).unwrap_or(0)),
            _ => DOCKER_DEFAULT,
        };
        Some(CheckWatch {
            patience: ns(config.interval) + ns(config.timeout) + SLACK,
            last: None,
            since: now,
        })
    }

    /// Feeds one inspection; returns how long no check has run when that is longer than Docker
    /// would ever wait between two checks.
    pub fn stalled(&mut self, state: &ContainerState, now: Instant) -> Option<Duration> {
        let latest = state
            .health
            .as_ref()
            .and_then(|h| h.log.as_ref())
            .and_then(|l| l.last())
            .map(|r| format!("{:?}", r.start));
        if latest != self.last {
            self.last = latest;
            self.since = now;
            return None;
        }
        let quiet = now.saturating_duration_since(self.since);
        (quiet > self.patience).then_some(quiet)
    }

    /// Starts the wait over, after the checks were restarted.
    pub fn reset(&mut self, now: Instant) {
        self.since = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{Health, HealthcheckResult};

    fn config(interval_s: i64, timeout_s: i64) -> HealthConfig {
        HealthConfig {
            test: Some(vec!["CMD".into(), "/app".into(), "--healthcheck".into()]),
            interval: Some(interval_s * 1_000_000_000),
            timeout: Some(timeout_s * 1_000_000_000),
            ..Default::default()
        }
    }

    /// A state whose health log holds checks started at these seconds past the minute.
    fn state(starts: &[u32]) -> ContainerState {
        let log: Vec<HealthcheckResult> = starts
            .iter()
            .map(|s| {
                serde_json::from_value(serde_json::json!({
                    "Start": format!("2026-11-22T05:{:02}:{:02}Z", s / 60, s % 60)
                }))
                .expect("a health check result")
            })
            .collect();
        ContainerState {
            health: Some(Health {
                log: Some(log),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn no_healthcheck_means_nothing_to_watch() {
        let t = Instant::now();
        assert!(CheckWatch::new(None, t).is_none());
        let none = HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        };
        assert!(CheckWatch::new(Some(&none), t).is_none());
    }

    #[test]
    fn checks_that_keep_coming_never_stall() {
        let t = Instant::now();
        let mut w = CheckWatch::new(Some(&config(2, 2)), t).expect("watch");
        for i in 0..20u64 {
            let starts: Vec<u32> = (0..=u32::try_from(i).expect("small")).collect();
            assert_eq!(
                w.stalled(&state(&starts), t + Duration::from_secs(2 * i)),
                None
            );
        }
    }

    #[test]
    fn no_new_check_past_interval_plus_timeout_is_a_stall() {
        let t = Instant::now();
        let mut w = CheckWatch::new(Some(&config(2, 3)), t).expect("watch");
        let empty = state(&[]);
        assert_eq!(w.stalled(&empty, t), None);
        assert_eq!(w.stalled(&empty, t + Duration::from_secs(7)), None);
        assert_eq!(
            w.stalled(&empty, t + Duration::from_secs(8)),
            Some(Duration::from_secs(8))
        );
        w.reset(t + Duration::from_secs(8));
        assert_eq!(w.stalled(&empty, t + Duration::from_secs(10)), None);
        // A check arrives: the clock starts again from there.
        assert_eq!(w.stalled(&state(&[1]), t + Duration::from_secs(20)), None);
        assert_eq!(w.stalled(&state(&[1]), t + Duration::from_secs(27)), None);
    }

    #[test]
    fn unset_interval_and_timeout_are_dockers_defaults() {
        let t = Instant::now();
        let cfg = HealthConfig {
            test: Some(vec!["CMD-SHELL".into(), "true".into()]),
            ..Default::default()
        };
        let mut w = CheckWatch::new(Some(&cfg), t).expect("watch");
        let empty = state(&[]);
        assert_eq!(w.stalled(&empty, t + Duration::from_secs(62)), None);
        assert!(w.stalled(&empty, t + Duration::from_secs(63)).is_some());
    }
}
