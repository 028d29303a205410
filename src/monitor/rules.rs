//! Alert rules and their states, like Prometheus: inactive, pending (condition true, waiting out
//! its `for` duration), firing, and resolved (kept visible for a while). Pure: the clock is a
//! parameter, so "for 5 minutes" is tested without waiting.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
    Resolved,
}

/// One alert's state, as kept on the host between evaluations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `cpu`, `memory`, `disk`, `health:<service>`, `deploy:<service>`.
    pub key: String,
    pub state: AlertState,
    /// What the rule says, e.g. "CPU > 80% for 5m".
    pub rule: String,
    /// The value at the last evaluation (percent, or failures for health).
    pub value: Option<f64>,
    /// When the condition became true (pending or firing since).
    pub active_since: Option<DateTime<Utc>>,
    /// When it started firing.
    pub firing_since: Option<DateTime<Utc>>,
    /// When it stopped firing.
    pub resolved_at: Option<DateTime<Utc>>,
    /// A sentence for tables and notifications.
    pub message: String,
}

impl Alert {
    pub fn new(key: &str, rule: &str) -> Self {
        Self {
            key: key.to_string(),
            state: AlertState::Inactive,
            rule: rule.to_string(),
            value: None,
            active_since: None,
            firing_since: None,
            resolved_at: None,
            message: String::new(),
        }
    }

    /// Time left before a pending alert fires.
    pub fn time_left(&self, for_: Duration, now: DateTime<Utc>) -> Option<Duration> {
        if self.state != AlertState::Pending {
            return None;
        }
        let since = self.active_since?;
        let elapsed = (now - since).to_std().unwrap_or(Duration::ZERO);
        Some(for_.saturating_sub(elapsed))
    }
}

/// A state change worth telling someone about.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    StartedFiring,
    Resolved,
}

/// Evaluates one rule. `condition` is `None` when the value could not be measured: the alert
/// then keeps its state rather than resolving on missing data.
pub fn evaluate(
    prev: &Alert,
    condition: Option<bool>,
    value: Option<f64>,
    for_: Duration,
    keep_resolved: Duration,
    now: DateTime<Utc>,
) -> (Alert, Option<Transition>) {
    let mut a = prev.clone();
    if value.is_some() {
        a.value = value;
    }
    let Some(cond) = condition else {
        return (a, None);
    };
    let elapsed = |t: Option<DateTime<Utc>>| {
        t.map_or(Duration::ZERO, |t| {
            (now - t).to_std().unwrap_or(Duration::ZERO)
        })
    };
    match (cond, prev.state) {
        (true, AlertState::Inactive | AlertState::Resolved) => {
            a.active_since = Some(now);
            a.resolved_at = None;
            if for_.is_zero() {
                a.state = AlertState::Firing;
                a.firing_since = Some(now);
                return (a, Some(Transition::StartedFiring));
            }
            a.state = AlertState::Pending;
            a.firing_since = None;
            (a, None)
        }
        (true, AlertState::Pending) => {
            if elapsed(prev.active_since) >= for_ {
                a.state = AlertState::Firing;
                a.firing_since = Some(now);
                (a, Some(Transition::StartedFiring))
            } else {
                (a, None)
            }
        }
        (true, AlertState::Firing) => (a, None),
        (false, AlertState::Pending) => {
            a.state = AlertState::Inactive;
            a.active_since = None;
            (a, None)
        }
        (false, AlertState::Firing) => {
            a.state = AlertState::Resolved;
            a.resolved_at = Some(now);
            (a, Some(Transition::Resolved))
        }
        (false, AlertState::Resolved) => {
            if elapsed(prev.resolved_at) > keep_resolved {
                a.state = AlertState::Inactive;
                a.active_since = None;
                a.firing_since = None;
                a.resolved_at = None;
            }
            (a, None)
        }
        (false, AlertState::Inactive) => (a, None),
    }
}

/// Evaluates a rule that counts consecutive failures: pending from the first failure, firing
/// at `n`, resolved at the first success.
pub fn evaluate_count(
    prev: &Alert,
    count: u32,
    n: u32,
    keep_resolved: Duration,
    now: DateTime<Utc>,
) -> (Alert, Option<Transition>) {
    let value = Some(f64::from(count));
    if count == 0 {
        return evaluate(prev, Some(false), value, Duration::ZERO, keep_resolved, now);
    }
    let mut a = prev.clone();
    a.value = value;
    if count >= n {
        if a.state == AlertState::Firing {
            return (a, None);
        }
        if a.active_since.is_none() || a.state == AlertState::Resolved {
            a.active_since = Some(now);
        }
        a.state = AlertState::Firing;
        a.firing_since = Some(now);
        a.resolved_at = None;
        return (a, Some(Transition::StartedFiring));
    }
    if matches!(a.state, AlertState::Inactive | AlertState::Resolved) {
        a.state = AlertState::Pending;
        a.active_since = Some(now);
        a.resolved_at = None;
    }
    (a, None)
}

/// The live color's 5xx share from the proxy's traffic, as a rule input: `(condition, value,
/// message)`. No traffic figures (proxy unreadable, the earlier nginx proxy): `None`, the alert
/// keeps its state. Fewer requests than `min_requests` in the window: not breaching.
pub fn live_error_share(
    service: &str,
    live: Option<crate::state::Color>,
    traffic: Option<&crate::state::ServiceTraffic>,
    limit_percent: f64,
    min_requests: u64,
) -> (Option<bool>, Option<f64>, String) {
    let (Some(live), Some(t)) = (live, traffic) else {
        return (
            None,
            None,
            format!("{service}: no traffic figures from the proxy"),
        );
    };
    let c = t.color(live).cloned().unwrap_or_default();
    let share = c.error_5xx_percent.unwrap_or(0.0);
    let message = format!(
        "{service}: {live} answered {share:.1}% 5xx ({} of {}) in the last {}s",
        c.status_5xx, c.requests, t.window_s
    );
    if c.requests < min_requests.max(1) {
        return (Some(false), Some(share), message);
    }
    (Some(share > limit_percent), Some(share), message)
}

pub fn format_for(d: Duration) -> String {
    if d.is_zero() {
        String::new()
    } else if d.as_secs().is_multiple_of(60) {
        format!(" for {}m", d.as_secs() / 60)
    } else {
        format!(" for {}s", d.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("valid time")
    }

    const FIVE_MIN: Duration = Duration::from_secs(300);
    const KEEP: Duration = Duration::from_secs(900);

    #[test]
    fn pending_then_firing_after_five_minutes_then_resolved_then_gone() {
        let a = Alert::new("cpu", "CPU > 80% for 5m");
        let (a, tr) = evaluate(&a, Some(true), Some(91.0), FIVE_MIN, KEEP, t(0));
        assert_eq!((a.state, tr), (AlertState::Pending, None));
        assert_eq!(
            a.time_left(FIVE_MIN, t(120)),
            Some(Duration::from_secs(180))
        );
        let (a, tr) = evaluate(&a, Some(true), Some(92.0), FIVE_MIN, KEEP, t(299));
        assert_eq!((a.state, tr), (AlertState::Pending, None));
        let (a, tr) = evaluate(&a, Some(true), Some(93.0), FIVE_MIN, KEEP, t(300));
        assert_eq!(
            (a.state, tr),
            (AlertState::Firing, Some(Transition::StartedFiring))
        );
        assert_eq!(a.firing_since, Some(t(300)));
        assert_eq!(a.active_since, Some(t(0)));
        assert_eq!(a.value, Some(93.0));
        let (a, tr) = evaluate(&a, Some(true), Some(95.0), FIVE_MIN, KEEP, t(400));
        assert_eq!((a.state, tr), (AlertState::Firing, None));
        assert_eq!(a.firing_since, Some(t(300)), "firing since does not move");
        let (a, tr) = evaluate(&a, Some(false), Some(20.0), FIVE_MIN, KEEP, t(500));
        assert_eq!(
            (a.state, tr),
            (AlertState::Resolved, Some(Transition::Resolved))
        );
        let (a, _) = evaluate(&a, Some(false), Some(20.0), FIVE_MIN, KEEP, t(500 + 900));
        assert_eq!(a.state, AlertState::Resolved, "still visible at the limit");
        let (a, _) = evaluate(&a, Some(false), Some(20.0), FIVE_MIN, KEEP, t(500 + 901));
        assert_eq!(a.state, AlertState::Inactive);
    }

    #[test]
    fn a_dip_below_the_threshold_resets_pending() {
        let a = Alert::new("mem", "");
        let (a, _) = evaluate(&a, Some(true), Some(90.0), FIVE_MIN, KEEP, t(0));
        let (a, _) = evaluate(&a, Some(false), Some(80.0), FIVE_MIN, KEEP, t(200));
        assert_eq!(a.state, AlertState::Inactive);
        let (a, _) = evaluate(&a, Some(true), Some(90.0), FIVE_MIN, KEEP, t(250));
        let (a, tr) = evaluate(&a, Some(true), Some(90.0), FIVE_MIN, KEEP, t(400));
        assert_eq!(
            (a.state, tr),
            (AlertState::Pending, None),
            "the clock restarted at 250"
        );
    }

    #[test]
    fn rules_without_a_duration_fire_at_once() {
        let a = Alert::new("disk", "disk > 90%");
        let (a, tr) = evaluate(&a, Some(true), Some(95.0), Duration::ZERO, KEEP, t(0));
        assert_eq!(
            (a.state, tr),
            (AlertState::Firing, Some(Transition::StartedFiring))
        );
    }

    #[test]
    fn missing_data_keeps_the_state() {
        let a = Alert::new("cpu", "");
        let (a, _) = evaluate(&a, Some(true), Some(95.0), Duration::ZERO, KEEP, t(0));
        let (a, tr) = evaluate(&a, None, None, Duration::ZERO, KEEP, t(10));
        assert_eq!((a.state, tr), (AlertState::Firing, None));
        assert_eq!(a.value, Some(95.0));
    }

    #[test]
    fn health_failures_go_pending_then_firing_at_n_then_resolve() {
        let a = Alert::new("health:api", "api health fails 3x in a row");
        let (a, tr) = evaluate_count(&a, 1, 3, KEEP, t(0));
        assert_eq!((a.state, tr), (AlertState::Pending, None));
        let (a, tr) = evaluate_count(&a, 2, 3, KEEP, t(15));
        assert_eq!((a.state, tr), (AlertState::Pending, None));
        assert_eq!(a.active_since, Some(t(0)));
        let (a, tr) = evaluate_count(&a, 3, 3, KEEP, t(30));
        assert_eq!(
            (a.state, tr),
            (AlertState::Firing, Some(Transition::StartedFiring))
        );
        assert_eq!(a.active_since, Some(t(0)));
        let (a, tr) = evaluate_count(&a, 4, 3, KEEP, t(45));
        assert_eq!((a.state, tr), (AlertState::Firing, None));
        let (a, tr) = evaluate_count(&a, 0, 3, KEEP, t(60));
        assert_eq!(
            (a.state, tr),
            (AlertState::Resolved, Some(Transition::Resolved))
        );
    }

    #[test]
    fn the_live_colors_5xx_share_breaches_above_the_limit_with_enough_requests() {
        use crate::state::{Color, ColorTraffic, ServiceTraffic};
        let traffic = |requests, status_5xx| ServiceTraffic {
            window_s: 60,
            colors: [(
                Color::Green,
                ColorTraffic {
                    requests,
                    status_5xx,
                    error_5xx_percent: Some(status_5xx as f64 * 100.0 / requests as f64),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        };
        let busy = traffic(200, 20);
        let (cond, v, msg) = live_error_share("api", Some(Color::Green), Some(&busy), 5.0, 10);
        assert_eq!((cond, v), (Some(true), Some(10.0)));
        assert_eq!(
            msg,
            "api: green answered 10.0% 5xx (20 of 200) in the last 60s"
        );
        let (cond, _, _) = live_error_share("api", Some(Color::Green), Some(&busy), 10.0, 10);
        assert_eq!(cond, Some(false), "at the limit is not above it");
        let few = traffic(4, 4);
        let (cond, v, _) = live_error_share("api", Some(Color::Green), Some(&few), 5.0, 10);
        assert_eq!(
            (cond, v),
            (Some(false), Some(100.0)),
            "4 requests are too few"
        );
        // The idle color's errors do not count; no figures keep the state.
        let (cond, _, _) = live_error_share("api", Some(Color::Blue), Some(&busy), 5.0, 10);
        assert_eq!(cond, Some(false));
        assert_eq!(
            live_error_share("api", Some(Color::Blue), None, 5.0, 10).0,
            None
        );
        // Pending for N minutes, then firing.
        let a = Alert::new("errors:api", "");
        let (a, _) = evaluate(&a, Some(true), Some(10.0), FIVE_MIN, KEEP, t(0));
        assert_eq!(a.state, AlertState::Pending);
        let (a, tr) = evaluate(&a, Some(true), Some(10.0), FIVE_MIN, KEEP, t(300));
        assert_eq!(
            (a.state, tr),
            (AlertState::Firing, Some(Transition::StartedFiring))
        );
    }

    #[test]
    fn refiring_after_resolve_starts_a_new_episode() {
        let a = Alert::new("disk", "");
        let (a, _) = evaluate(&a, Some(true), Some(95.0), Duration::ZERO, KEEP, t(0));
        let (a, _) = evaluate(&a, Some(false), Some(50.0), Duration::ZERO, KEEP, t(10));
        let (a, tr) = evaluate(&a, Some(true), Some(96.0), Duration::ZERO, KEEP, t(20));
        assert_eq!(
            (a.state, tr),
            (AlertState::Firing, Some(Transition::StartedFiring))
        );
        assert_eq!(a.firing_since, Some(t(20)));
        assert_eq!(a.resolved_at, None);
    }
}
