//! Alert state kept on the host (`<state_dir>/alerts.json`), so a cron job running
//! `deckhand alerts` every minute, the console and a second operator all see the same pending
//! and firing alerts: the droplet stays the source of truth.
//!
//! Several monitors share one book, so a change is committed only on top of the version it was
//! computed from: under `flock` on the host, the book's generation is compared and the new book
//! written only if nobody else wrote in between; otherwise the monitor gets the current book and
//! evaluates again on top of it. No update is lost, and a probe another monitor already counted
//! is not counted twice (see `health_counted_at`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::metrics::CpuCounters;
use super::rules::Alert;
use crate::transport::{Host, TransportError};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertBook {
    /// Bumped by every commit. First field on purpose: the commit script reads it with `sed`
    /// from the start of the file.
    #[serde(default)]
    pub generation: u64,
    #[serde(default)]
    pub alerts: BTreeMap<String, Alert>,
    /// The last CPU counters and when they were read, for the next delta.
    #[serde(default)]
    pub cpu: Option<(CpuCounters, DateTime<Utc>)>,
    /// Consecutive failed health checks of each service's live color.
    #[serde(default)]
    pub health_failures: BTreeMap<String, u32>,
    /// When each service's last failed check was counted: a failure seen by another monitor
    /// within the same interval is the same failure, not one more in a row.
    #[serde(default)]
    pub health_counted_at: BTreeMap<String, DateTime<Utc>>,
}

impl AlertBook {
    /// A book that does not parse is replaced, not fatal: alerts start over, which is safe.
    /// Anyone who can write the host's state directory writes this file: its strings are
    /// sanitized before anything shows them.
    pub fn parse(text: &str) -> AlertBook {
        serde_json::from_str::<AlertBook>(text)
            .map(crate::sanitize::strings_in)
            .unwrap_or_default()
    }
}

/// How long a book may keep the figures of an earlier evaluation (each alert's value and
/// message, the CPU counters) while nothing else in it changes. A console committed every
/// interval otherwise, and the book's read and commit were a third of its idle bytes; the CPU
/// counters stay young enough (under the 600 s a monitor accepts) for the next monitor's delta.
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// Whether `new`, evaluated on top of `base` at `now`, must be written: a state, a time, a
/// count or a rule changed, or `base`'s figures are older than [`REFRESH_EVERY`].
pub fn worth_committing(new: &AlertBook, base: &AlertBook, now: DateTime<Utc>) -> bool {
    let fresh = base.cpu.as_ref().is_some_and(|(_, at)| {
        chrono::Duration::from_std(REFRESH_EVERY).is_ok_and(|r| now - *at < r)
    });
    if !fresh {
        return true;
    }
    // The figures of one evaluation, set aside.
    let lasting = |b: &AlertBook| {
        let mut b = b.clone();
        b.generation = 0;
        b.cpu = None;
        for a in b.alerts.values_mut() {
            a.value = None;
            a.message.clear();
        }
        b
    };
    lasting(new) != lasting(base)
}

/// The book as [`commit`] writes it on top of generation `base` (and a monitor reads it back).
pub fn as_written(book: &AlertBook, base: u64) -> AlertBook {
    let mut next = book.clone();
    next.generation = base + 1;
    // Alert messages carry host strings (health errors, audit errors): masked before they are
    // stored where every monitor reads them.
    for a in next.alerts.values_mut() {
        a.message = crate::redact::redact_text(&a.message);
    }
    next
}

/// What committing a book found.
#[derive(Debug)]
pub enum Commit {
    /// Written, as generation `base + 1`.
    Written,
    /// Someone else committed since `base`: their book, to evaluate again on top of.
    Conflict(AlertBook),
}

/// Positional parameters: $1 state dir, $2 book path, $3 the generation the new book was
/// computed from. The new book arrives on stdin. Fixed text: nothing is spliced in.
const COMMIT: &str = r#"umask 022; mkdir -p "$1" || exit 1
exec 9>>"$2.lock" || exit 1
if ! flock -w 20 9; then cat >/dev/null; echo busy; exit 0; fi
cur=$(sed -n '1s/^{"generation":\([0-9]*\).*/\1/p' "$2" 2>/dev/null)
if [ "${cur:-0}" != "$3" ]; then cat >/dev/null; echo conflict; cat "$2"; exit 0; fi
cat > "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2" && echo written"#;

pub fn book_path(host: &Host) -> String {
    format!("{}/alerts.json", host.spec.state_dir)
}

/// Commits `book` (computed from generation `base`) under the host's lock: written atomically
/// (write, then rename) only if the book on the host is still at `base`.
pub async fn commit(host: &Host, book: &AlertBook, base: u64) -> Result<Commit, TransportError> {
    let other = |detail: String| TransportError::Other {
        host: host.name().to_string(),
        detail,
    };
    let next = as_written(book, base);
    let body = serde_json::to_vec(&next).map_err(|e| other(e.to_string()))?;
    let base_s = base.to_string();
    let out = host
        .exec_ok(
            "sh",
            &[
                "-c",
                COMMIT,
                "deckhand-alerts",
                &host.spec.state_dir,
                &book_path(host),
                &base_s,
            ],
            Some(&body),
        )
        .await?;
    let text = out.stdout_text();
    let (verdict, rest) = text.split_once('\n').unwrap_or((text.as_str(), ""));
    match verdict.trim() {
        "written" => Ok(Commit::Written),
        "conflict" => Ok(Commit::Conflict(AlertBook::parse(rest.trim()))),
        "busy" => Err(other(format!(
            "the alert book {} stayed locked for 20s (another monitor hung?)",
            book_path(host)
        ))),
        v => Err(other(format!(
            "unexpected answer committing the alert book: {}",
            crate::sanitize::for_terminal_line(v)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::rules::{Alert, AlertState};

    #[test]
    fn a_book_is_written_when_a_state_changes_or_its_figures_grow_old() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        let cpu = CpuCounters { total: 2, idle: 1 };
        let mut base = AlertBook {
            generation: 4,
            cpu: Some((cpu, now - chrono::Duration::seconds(30))),
            ..Default::default()
        };
        let mut a = Alert::new("cpu", "CPU > 80% for 5m");
        a.value = Some(3.0);
        a.message = "CPU at 3.0%".into();
        base.alerts.insert("cpu".into(), a);
        let mut new = base.clone();
        new.cpu = Some((CpuCounters { total: 14, idle: 9 }, now));
        let n = new.alerts.get_mut("cpu").expect("cpu");
        n.value = Some(4.5);
        n.message = "CPU at 4.5%".into();
        assert!(!worth_committing(&new, &base, now), "only figures changed");
        let mut pending = new.clone();
        pending.alerts.get_mut("cpu").expect("cpu").state = AlertState::Pending;
        assert!(worth_committing(&pending, &base, now), "a state changed");
        let mut counted = new.clone();
        counted.health_failures.insert("api".into(), 1);
        assert!(worth_committing(&counted, &base, now), "a count changed");
        let later = now + chrono::Duration::from_std(REFRESH_EVERY).expect("d");
        assert!(worth_committing(&new, &base, later), "figures grew old");
        base.cpu = None;
        assert!(
            worth_committing(&new, &base, now),
            "no CPU counters on record"
        );
    }
}
