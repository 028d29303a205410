//! The release ledger: what served on a host, when, and how it ended.
//!
//! "Previous", known-good and the rollback target come from here, never from whichever container
//! happens to sit in the idle slot (every deploy overwrites that). One JSON file per service,
//! `<state_dir>/ledger/<service>.json`, replaced atomically (write a temporary file, `mv`) by
//! the holder of the service's lock, right after a switch is confirmed. A deckhand killed
//! between the switch and the write leaves the file behind the proxy; the next run reconciles
//! it with what the proxy serves (and marks the entries it had to infer).

use serde::{Deserialize, Serialize};

use super::ReleaseError;
use crate::state::{Color, ContainerState, ServiceStatus};
use crate::transport::Host;

/// Entries kept per service; older ones go (the audit log keeps the full story).
pub const MAX_RELEASES: usize = 200;

/// How a release stopped serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// A deploy (or a reconciled switch) put another release live.
    Replaced,
    /// An operator rolled back away from it.
    RolledBack,
    /// deckhand switched back on its own: the new color did not answer through the proxy.
    RolledBackAutomatically,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Replaced => "replaced",
            Ending::RolledBack => "rolled back",
            Ending::RolledBackAutomatically => "rolled back automatically",
        }
    }

    /// A release someone (or deckhand) backed out of is not a rollback target.
    pub fn is_bad(self) -> bool {
        !matches!(self, Ending::Replaced)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub sha: String,
    pub color: Color,
    /// When it went live (RFC 3339, UTC).
    pub since: String,
    pub by: String,
    /// deploy | rollback | redeploy | found (seen serving with no record: reconciled)
    pub action: String,
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub ended: Option<Ending>,
    /// It passed the health gate and answered through the proxy when it went live.
    pub healthy: bool,
    /// Inferred from what the proxy serves after a deckhand died before writing the ledger.
    #[serde(default)]
    pub reconciled: bool,
}

impl Release {
    pub fn is_live(&self) -> bool {
        self.ended.is_none()
    }

    /// Served healthy and nobody backed out of it.
    pub fn is_good(&self) -> bool {
        self.healthy && !self.ended.is_some_and(Ending::is_bad)
    }

    /// How long it served, in seconds (up to `now` for the live one).
    pub fn served_secs(&self, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
        let since = chrono::DateTime::parse_from_rfc3339(&self.since).ok()?;
        let until = match &self.until {
            Some(u) => chrono::DateTime::parse_from_rfc3339(u)
                .ok()?
                .with_timezone(&chrono::Utc),
            None => now,
        };
        Some(
            (until - since.with_timezone(&chrono::Utc))
                .num_seconds()
                .max(0),
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Oldest first.
    pub releases: Vec<Release>,
}

/// Why a rollback has no target, in words an operator can act on.
pub type NoTarget = String;

impl Ledger {
    pub fn parse(text: &str) -> Result<Ledger, String> {
        if text.trim().is_empty() {
            return Ok(Ledger::default());
        }
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The release serving now, per the ledger.
    pub fn live(&self) -> Option<&Release> {
        self.releases.iter().rev().find(|r| r.is_live())
    }

    fn close_live(&mut self, how: Ending, at: &str) {
        for r in self.releases.iter_mut().filter(|r| r.is_live()) {
            r.ended = Some(how);
            r.until = Some(at.to_string());
        }
    }

    /// Records that `release` went live; the one it replaced ended as `how`.
    pub fn went_live(&mut self, release: Release, how: Ending) {
        let at = release.since.clone();
        self.close_live(how, &at);
        self.releases.push(release);
        let n = self.releases.len();
        if n > MAX_RELEASES {
            self.releases.drain(..n - MAX_RELEASES);
        }
    }

    /// Records a release that was live for a moment and was switched back at once (the new
    /// color did not answer through the proxy); the live one goes on serving.
    pub fn record_reverted(&mut self, mut release: Release, at: &str) {
        release.until = Some(at.to_string());
        release.ended = Some(Ending::RolledBackAutomatically);
        release.healthy = false;
        let live = self.releases.iter().rposition(Release::is_live);
        match live {
            // Keep the live entry last: it is still the one serving.
            Some(i) => self.releases.insert(i, release),
            None => self.releases.push(release),
        }
    }

    /// The watch after the switch saw a breach and switched back (issue 13): the live release
    /// ended "rolled back automatically" and the one it replaced serves again.
    pub fn switched_back_by_watch(&mut self, at: &str) {
        let Some(i) = self.releases.iter().rposition(Release::is_live) else {
            return;
        };
        let failed = self.releases.remove(i);
        if let Some(prev) = self.releases[..i]
            .iter_mut()
            .rev()
            .find(|r| r.until.as_deref() == Some(failed.since.as_str()))
        {
            prev.until = None;
            prev.ended = None;
        }
        self.record_reverted(failed, at);
    }

    /// Brings the ledger in line with what the proxy serves: a run killed after its switch
    /// (or a host deployed before the ledger existed) left it behind. Returns whether anything
    /// changed. `now` stamps what had to be inferred.
    pub fn reconcile(&mut self, status: &ServiceStatus, now: &str) -> bool {
        let Some(color) = status.live_color else {
            return false;
        };
        let Some(c) = status.color(color) else {
            return false;
        };
        if c.state != ContainerState::Running {
            // Nothing serves; the ledger keeps saying what was routed last.
            return false;
        }
        let Some(sha) = c.sha.clone().or_else(|| status.live_sha.clone()) else {
            return false;
        };
        if self
            .live()
            .is_some_and(|l| l.sha == sha && l.color == color)
        {
            return false;
        }
        // It went live after the entry it replaces: its container's deploy time when that is
        // later (a kept container restarted by a rollback has an old one), else now.
        let since = c
            .deployed_at
            .clone()
            .filter(|d| self.live().is_none_or(|l| d.as_str() > l.since.as_str()))
            .unwrap_or_else(|| now.to_string());
        let release = Release {
            sha,
            color,
            since,
            by: c.deployed_by.clone().unwrap_or_else(|| "unknown".into()),
            action: "found".into(),
            until: None,
            ended: None,
            healthy: c
                .health
                .as_ref()
                .is_none_or(crate::state::HealthReport::is_healthy),
            reconciled: true,
        };
        self.close_live(Ending::Replaced, now);
        self.releases.push(release);
        true
    }

    /// The release that served before the live one and is worth going back to: not the live
    /// SHA again (a forced redeploy is the same release), not one that was backed out of.
    pub fn rollback_target(&self) -> Result<&Release, NoTarget> {
        let live = self.live();
        let candidates = self
            .releases
            .iter()
            .rev()
            .filter(|r| !r.is_live())
            .filter(|r| live.is_none_or(|l| l.sha != r.sha));
        let mut skipped = Vec::new();
        for r in candidates {
            if r.is_good() {
                return Ok(r);
            }
            skipped.push(format!(
                "{} ({})",
                r.sha,
                r.ended.map_or("unhealthy", Ending::as_str)
            ));
        }
        Err(if skipped.is_empty() {
            "the host's release ledger has no release before the live one".to_string()
        } else {
            format!(
                "every earlier release in the host's ledger was backed out of: {}",
                skipped.join(", ")
            )
        })
    }

    /// SHAs that served healthy and were never backed out of (for the deploy picker).
    pub fn known_good(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.releases.iter().rev() {
            let bad_later = self
                .releases
                .iter()
                .any(|o| o.sha == r.sha && !o.is_good() && !o.is_live());
            if r.is_good() && !bad_later && !out.contains(&r.sha) {
                out.push(r.sha.clone());
            }
        }
        out
    }

    /// Whether the ledger knows `sha` served here at some point.
    pub fn has_served(&self, sha: &str) -> bool {
        self.releases.iter().any(|r| r.sha == sha)
    }
}

/// How a deploy/rollback picker should mark a SHA across an environment's hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PickerMark {
    /// It served healthy on some host and nobody backed out of it anywhere.
    pub known_good: bool,
    /// It was backed out of (rolled back from, automatically or not) on some host.
    pub backed_out: bool,
    /// Hosts that do not have its image (a rollback there pulls it, or is refused for a REF).
    pub missing_on: Vec<String>,
}

/// Marks for `sha` from each host's ledger and retained image tags: `(host, ledger, tags)`.
pub fn picker_mark(sha: &str, hosts: &[(String, &Ledger, Vec<String>)]) -> PickerMark {
    let backed_out = hosts.iter().any(|(_, l, _)| {
        l.releases
            .iter()
            .any(|r| r.sha == sha && r.ended.is_some_and(Ending::is_bad))
    });
    PickerMark {
        known_good: !backed_out
            && hosts
                .iter()
                .any(|(_, l, _)| l.known_good().iter().any(|s| s == sha)),
        backed_out,
        missing_on: hosts
            .iter()
            .filter(|(_, _, tags)| !tags.iter().any(|t| t == sha))
            .map(|(h, _, _)| h.clone())
            .collect(),
    }
}

/// One environment rollback goes to one SHA: when the hosts' ledgers disagree, the operator
/// names it. `targets` is (host, target SHA) per host.
pub fn agree_on_target(targets: &[(String, String)]) -> Result<String, String> {
    let Some((_, first)) = targets.first() else {
        return Err("no host to roll back".into());
    };
    if targets.iter().all(|(_, s)| s == first) {
        return Ok(first.clone());
    }
    let mut text = String::from(
        "the hosts disagree on the release before the live one; name the one to go to: deckhand rollback <SHA>\n",
    );
    for (h, s) in targets {
        text.push_str(&format!("  {h}: {s}\n"));
    }
    Err(text.trim_end().to_string())
}

fn ledger_path(host: &Host, service: &str) -> (String, String) {
    let dir = format!("{}/ledger", host.spec.state_dir);
    let path = format!("{dir}/{service}.json");
    (dir, path)
}

// Fixed scripts; values arrive as positional parameters. The write is all-or-nothing: a
// temporary file in the same directory, then `mv` (rename), so a reader or a killed writer
// never sees half a ledger. An unreadable ledger is kept aside, never overwritten silently.
const READ: &str = r#"[ -f "$1" ] && cat "$1" || true"#;
pub(super) const WRITE: &str = r#"umask 077; mkdir -p "$1" && t="$1/.tmp.$$" && if cat > "$t"; then mv -f "$t" "$2"; else rm -f "$t"; exit 1; fi"#;
const SET_ASIDE: &str = r#"[ -f "$1" ] && mv -f "$1" "$1.unreadable.$(date +%s)" || true"#;

/// Reads the service's ledger (empty when there is none yet). An unreadable file is an error
/// that names it.
pub async fn read(host: &Host, service: &str) -> Result<Ledger, ReleaseError> {
    let (_, path) = ledger_path(host, service);
    let out = host
        .exec_ok("sh", &["-c", READ, "deckhand-ledger", &path], None)
        .await?;
    Ledger::parse(&out.stdout_text()).map_err(|e| ReleaseError::Ledger {
        host: host.name().to_string(),
        detail: format!(
            "{path} is not a release ledger ({e}); move it aside or name a REF: deckhand rollback <SHA>"
        ),
    })
}

/// Reads the ledger for a writer: an unreadable file is set aside (renamed, kept for a person)
/// and the ledger starts again from what the proxy serves.
pub async fn read_for_update(
    host: &Host,
    service: &str,
) -> Result<(Ledger, Option<String>), ReleaseError> {
    match read(host, service).await {
        Ok(l) => Ok((l, None)),
        Err(ReleaseError::Ledger { detail, .. }) => {
            let (_, path) = ledger_path(host, service);
            host.exec_ok("sh", &["-c", SET_ASIDE, "deckhand-ledger", &path], None)
                .await?;
            Ok((Ledger::default(), Some(detail)))
        }
        Err(e) => Err(e),
    }
}

/// What [`write`] runs ([`WRITE`] with these arguments and this stdin), for `release::batch`.
pub(super) fn write_call(
    host: &Host,
    service: &str,
    ledger: &Ledger,
) -> Result<(String, String, Vec<u8>), ReleaseError> {
    let (dir, path) = ledger_path(host, service);
    let body =
        serde_json::to_vec_pretty(ledger).map_err(|e| ReleaseError::Refused(e.to_string()))?;
    Ok((dir, path, body))
}

/// Replaces the service's ledger atomically.
pub async fn write(host: &Host, service: &str, ledger: &Ledger) -> Result<(), ReleaseError> {
    let (dir, path, body) = write_call(host, service, ledger)?;
    host.exec_ok(
        "sh",
        &["-c", WRITE, "deckhand-ledger", &dir, &path],
        Some(&body),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(sha: &str, color: Color, since: &str) -> Release {
        Release {
            sha: sha.into(),
            color,
            since: since.into(),
            by: "ana@laptop".into(),
            action: "deploy".into(),
            until: None,
            ended: None,
            healthy: true,
            reconciled: false,
        }
    }

    fn history(steps: &[(&str, Color, Ending)]) -> Ledger {
        let mut l = Ledger::default();
        for (i, (sha, c, how)) in steps.iter().enumerate() {
            l.went_live(rel(sha, *c, &format!("2026-12-01T0{i}:00:00Z")), *how);
        }
        l
    }

    #[test]
    fn the_target_is_the_release_before_the_live_one() {
        let l = history(&[
            ("1111111", Color::Blue, Ending::Replaced),
            ("2222222", Color::Green, Ending::Replaced),
        ]);
        assert_eq!(l.live().map(|r| r.sha.as_str()), Some("2222222"));
        assert_eq!(l.rollback_target().map(|r| r.sha.as_str()), Ok("1111111"));
        assert_eq!(l.releases[0].ended, Some(Ending::Replaced));
        assert_eq!(l.releases[0].until.as_deref(), Some("2026-12-01T01:00:00Z"));
    }

    #[test]
    fn a_forced_redeploy_of_the_live_sha_is_not_a_target() {
        let l = history(&[
            ("1111111", Color::Blue, Ending::Replaced),
            ("2222222", Color::Green, Ending::Replaced),
            ("2222222", Color::Blue, Ending::Replaced),
        ]);
        assert_eq!(l.rollback_target().map(|r| r.sha.as_str()), Ok("1111111"));
    }

    #[test]
    fn rolling_back_twice_walks_back_past_what_was_backed_out_of() {
        let l = history(&[
            ("1111111", Color::Blue, Ending::Replaced),
            ("2222222", Color::Green, Ending::Replaced),
            ("3333333", Color::Blue, Ending::Replaced),
            ("2222222", Color::Green, Ending::RolledBack),
        ]);
        assert_eq!(l.releases[2].ended, Some(Ending::RolledBack));
        // Live is 2222222; 3333333 was backed out of: the next one back is 1111111.
        assert_eq!(l.rollback_target().map(|r| r.sha.as_str()), Ok("1111111"));
        assert_eq!(l.known_good(), ["2222222", "1111111"]);
    }

    #[test]
    fn no_target_says_why() {
        let l = history(&[("1111111", Color::Blue, Ending::Replaced)]);
        assert!(
            l.rollback_target()
                .unwrap_err()
                .contains("no release before")
        );
        let l = history(&[
            ("1111111", Color::Blue, Ending::Replaced),
            ("2222222", Color::Green, Ending::Replaced),
            ("1111111", Color::Blue, Ending::RolledBack),
        ]);
        let e = l.rollback_target().unwrap_err();
        assert!(e.contains("2222222 (rolled back)"), "{e}");
    }

    #[test]
    fn an_automatic_switch_back_is_recorded_behind_the_live_release() {
        let mut l = history(&[("1111111", Color::Blue, Ending::Replaced)]);
        l.record_reverted(
            rel("2222222", Color::Green, "2026-12-01T05:00:00Z"),
            "2026-12-01T05:00:10Z",
        );
        assert_eq!(l.live().map(|r| r.sha.as_str()), Some("1111111"));
        assert_eq!(l.releases.last().map(|r| r.sha.as_str()), Some("1111111"));
        assert_eq!(l.releases[0].ended, Some(Ending::RolledBackAutomatically));
        assert!(!l.known_good().contains(&"2222222".to_string()));
    }

    #[test]
    fn a_switch_back_by_the_watch_ends_the_new_release_and_the_old_serves_again() {
        let mut l = history(&[
            ("1111111", Color::Blue, Ending::Replaced),
            ("2222222", Color::Green, Ending::Replaced),
            ("3333333", Color::Blue, Ending::Replaced),
        ]);
        l.switched_back_by_watch("2026-12-01T03:00:30Z");
        assert_eq!(l.live().map(|r| r.sha.as_str()), Some("2222222"));
        assert_eq!(l.releases.last().map(|r| r.sha.as_str()), Some("2222222"));
        let failed = l
            .releases
            .iter()
            .find(|r| r.sha == "3333333")
            .expect("kept");
        assert_eq!(failed.ended, Some(Ending::RolledBackAutomatically));
        assert_eq!(failed.until.as_deref(), Some("2026-12-01T03:00:30Z"));
        // A rollback afterwards goes back past the live one, never to the failed release.
        assert_eq!(l.rollback_target().map(|r| r.sha.as_str()), Ok("1111111"));
        assert!(!l.known_good().contains(&"3333333".to_string()));
    }

    #[test]
    fn the_ledger_is_bounded() {
        let mut l = Ledger::default();
        for i in 0..(MAX_RELEASES + 10) {
            l.went_live(
                rel(&format!("{i:07}"), Color::Blue, "2026-12-01T00:00:00Z"),
                Ending::Replaced,
            );
        }
        assert_eq!(l.releases.len(), MAX_RELEASES);
        assert_eq!(
            l.live().map(|r| r.sha.clone()),
            Some(format!("{:07}", MAX_RELEASES + 9))
        );
    }

    #[test]
    fn served_time_runs_to_the_end_or_to_now() {
        let mut r = rel("1111111", Color::Blue, "2026-12-01T00:00:00Z");
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T01:00:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        assert_eq!(r.served_secs(now), Some(3600));
        r.until = Some("2026-12-01T00:10:00Z".into());
        assert_eq!(r.served_secs(now), Some(600));
    }

    #[test]
    fn the_picker_marks_known_good_backed_out_and_missing() {
        let a = history(&[
            ("1111111", Color::Blue, Ending::Replaced),
            ("2222222", Color::Green, Ending::Replaced),
            ("1111111", Color::Blue, Ending::RolledBack),
        ]);
        let b = Ledger::default();
        let hosts = [
            (
                "h1".to_string(),
                &a,
                vec!["1111111".to_string(), "2222222".into()],
            ),
            ("h2".to_string(), &b, vec!["1111111".to_string()]),
        ];
        let m = picker_mark("1111111", &hosts);
        assert!(m.known_good && !m.backed_out && m.missing_on.is_empty());
        let m = picker_mark("2222222", &hosts);
        assert!(!m.known_good && m.backed_out);
        assert_eq!(m.missing_on, ["h2"]);
    }

    #[test]
    fn reconciling_adopts_what_the_proxy_serves() {
        use crate::state::{ColorStatus, ProxyStatus};
        let running = |sha: &str| ColorStatus {
            state: ContainerState::Running,
            sha: Some(sha.into()),
            image: format!("r:{sha}"),
            container_id: "id".into(),
            deployed_at: Some("2026-12-01T09:00:00Z".into()),
            deployed_by: Some("bo@ci".into()),
            started_at: None,
            finished_at: None,
            exit_code: None,
            docker_health: None,
            host_port: None,
            health: None,
        };
        let mut colors = std::collections::BTreeMap::new();
        colors.insert(Color::Blue, Some(running("1111111")));
        colors.insert(Color::Green, Some(running("2222222")));
        let status = ServiceStatus {
            canary: None,
            settling: None,
            name: "api".into(),
            live_color: Some(Color::Green),
            live_sha: Some("2222222".into()),
            proxy: ProxyStatus {
                exists: true,
                running: true,
                image: None,
                public_port: None,
                upstream: None,
                kind: None,
                drift: None,
            },
            colors,
            images: vec![],
            problems: vec![],
            traffic: None,
        };
        let mut l = history(&[("1111111", Color::Blue, Ending::Replaced)]);
        assert!(l.reconcile(&status, "2026-12-01T10:00:00Z"));
        let live = l.live().expect("live");
        assert_eq!((live.sha.as_str(), live.color), ("2222222", Color::Green));
        assert!(live.reconciled && live.by == "bo@ci");
        assert_eq!(live.since, "2026-12-01T09:00:00Z");
        assert_eq!(l.releases[0].ended, Some(Ending::Replaced));
        assert!(!l.reconcile(&status, "2026-12-01T10:00:01Z"), "idempotent");
        assert_eq!(l.rollback_target().map(|r| r.sha.as_str()), Ok("1111111"));
    }

    #[test]
    fn hosts_that_disagree_are_shown() {
        let same = [
            ("a".to_string(), "1111111".to_string()),
            ("b".into(), "1111111".into()),
        ];
        assert_eq!(agree_on_target(&same), Ok("1111111".into()));
        let differ = [
            ("a".to_string(), "1111111".to_string()),
            ("b".into(), "2222222".into()),
        ];
        let e = agree_on_target(&differ).unwrap_err();
        assert!(
            e.contains("a: 1111111") && e.contains("b: 2222222") && e.contains("<SHA>"),
            "{e}"
        );
    }

    #[test]
    fn garbage_is_an_error_and_empty_is_empty() {
        assert!(Ledger::parse("").expect("empty").releases.is_empty());
        assert!(Ledger::parse("{not json").is_err());
    }
}
