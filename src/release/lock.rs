//! The per-service lock on a host, shared by every operator and CI job.
//!
//! A file `<state_dir>/locks/<service>.lock`, created atomically with `ln` (fails if it exists),
//! holding who, since when, doing what. The holder touches it every few seconds and re-checks
//! that it is still its own before every step that changes a container or the proxy. A lock
//! whose heartbeat stopped (the holder was killed or lost its connection) is stale: `deckhand
//! unlock` clears it, and an action with `--take-over-stale` takes it over (audited). The host's own clock judges age, so operators' clock skew
//! does not matter.

use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::ReleaseError;
use crate::transport::Host;

/// How often the holder refreshes the lock.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// A lock not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    pub token: String,
    pub actor: String,
    pub action: String,
    pub since: String,
    pub pid: u32,
    pub machine: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockState {
    pub info: Option<LockInfo>,
    /// Seconds since the last heartbeat, by the host's clock.
    pub heartbeat_age_secs: i64,
    pub stale: bool,
    /// The raw content when it could not be parsed.
    pub raw: Option<String>,
    /// The token the lock names (what `unlock` compares before removing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A regular file written by an older deckhand.
    #[serde(skip)]
    pub legacy: bool,
}

impl LockState {
    pub fn holder(&self) -> String {
        match &self.info {
            Some(i) => format!(
                "{} since {} doing {}{}",
                i.actor,
                i.since,
                i.action,
                match self.liveness() {
                    Liveness::Dead =>
                        format!(" (DEAD: its process {} on {} is gone)", i.pid, i.machine),
                    Liveness::Stale =>
                        format!(" (STALE: no heartbeat for {}s)", self.heartbeat_age_secs),
                    Liveness::Live => String::new(),
                }
            ),
            None if self.raw.as_deref().is_none_or(str::is_empty) => format!(
                "a holder whose details could not be written (disk full?), heartbeat {}s ago{}",
                self.heartbeat_age_secs,
                match (
                    self.liveness(),
                    self.token.as_deref().and_then(token_holder)
                ) {
                    (Liveness::Dead, Some((pid, _))) =>
                        format!(" (DEAD: its process {pid} on this machine is gone)"),
                    _ => String::new(),
                }
            ),
            None => "an unreadable lock file".into(),
        }
    }
}

fn lock_path(host: &Host, service: &str) -> (String, String) {
    let dir = format!("{}/locks", host.spec.state_dir);
    let path = format!("{dir}/{service}.lock");
    (dir, path)
}

/// Whether a lock's holder may still be working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// Heartbeat fresh, holder not known to be gone: removing it lets two deploys race.
    Live,
    /// No heartbeat for longer than [`STALE_AFTER`].
    Stale,
    /// Taken on this machine by a process that no longer runs.
    Dead,
}

impl LockState {
    /// Judges the lock from here: the host's clock for the heartbeat, and for a lock taken on
    /// this machine, whether its process still runs (a killed deploy's lock is dead at once,
    /// not 30 s later).
    pub fn liveness(&self) -> Liveness {
        let here = this_machine();
        if let Some(i) = &self.info
            && !i.machine.is_empty()
            && here == i.machine
            && !process_is_deckhand(i.pid)
        {
            return Liveness::Dead;
        }
        // Without its details (a full disk, or a holder killed while it was taking the lock),
        // the token still names the holder's process and machine.
        if self.info.is_none()
            && let Some((pid, machine)) = self.token.as_deref().and_then(token_holder)
            && machine == machine_tag(&here)
            && !process_is_deckhand(pid)
        {
            return Liveness::Dead;
        }
        if self.stale {
            Liveness::Stale
        } else {
            Liveness::Live
        }
    }
}

fn this_machine() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// A short, stable tag of a machine name for the token (FNV-1a: the same in every process, so
/// another deckhand on this machine recognises its own machine's locks).
fn machine_tag(machine: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in machine.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// The holder's pid and machine tag a token names (`RANDOM-PID-MACHINETAG`); older tokens name
/// none.
fn token_holder(token: &str) -> Option<(u32, &str)> {
    let mut parts = token.split('-');
    let (_, pid, tag) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && tag.len() == 8).then_some(())?;
    Some((pid.parse().ok()?, tag))
}

fn process_is_deckhand(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|c| c.trim_end().starts_with("deckhand"))
}

// Fixed scripts: values arrive as positional parameters, never spliced into the script text.
//
// The lock is a symbolic link `S.lock -> .h-TOKEN`, made with `ln -s` (fails if it exists):
// a short link lives in the inode, so taking the lock needs no free data block (prune works
// on a full disk). `.h-TOKEN` holds who/what/since as JSON, written best effort first; a
// reader that finds it empty still sees the lock. The heartbeat is `touch -h` on the link.
// Locks written by older deckhands (a regular file with the JSON) are still read and removed.
// Details that arrive empty although they could be written mean the client died before sending
// them (killed while taking the lock): no lock is taken for a holder that is already gone.
const ACQUIRE: &str = r#"umask 022; mkdir -p "$1" || exit 1; i="$1/.h-$3"; if cat > "$i" 2>/dev/null && [ ! -s "$i" ]; then rm -f "$i"; echo no-details; exit 0; fi; if ln -s ".h-$3" "$2" 2>/dev/null; then echo acquired; else rm -f "$i"; echo held; fi"#;
const READ: &str = r#"if [ -L "$1" ]; then date +%s; stat -c %Y "$1"; t=$(readlink "$1"); echo "$t"; cat "$(dirname "$1")/$t" 2>/dev/null; elif [ -f "$1" ]; then date +%s; stat -c %Y "$1"; echo legacy; cat "$1"; fi"#;
const RELEASE: &str = r#"d=$(dirname "$1"); if [ -L "$1" ] && [ "$(readlink "$1")" = ".h-$2" ]; then rm -f "$1" "$d/.h-$2"; echo released; elif [ -f "$1" ] && [ ! -L "$1" ] && grep -q -F "\"token\":\"$2\"" "$1"; then rm -f "$1"; echo released; else echo not-ours; fi"#;
const HEARTBEAT_SCRIPT: &str = r#"if [ -L "$1" ] && [ "$(readlink "$1")" = ".h-$2" ]; then touch -h "$1" && echo ok; else echo lost; fi"#;
// Removes exactly the legacy lock file an operator was shown (its whole content matches).
const REMOVE_LEGACY: &str = r#"if [ -f "$1" ] && [ ! -L "$1" ] && [ "$(cat "$1")" = "$2" ]; then rm -f "$1"; echo released; else echo changed; fi"#;

/// Reads the lock of a service, if any.
pub async fn read(host: &Host, service: &str) -> Result<Option<LockState>, ReleaseError> {
    let (_, path) = lock_path(host, service);
    let out = host
        .exec_ok("sh", &["-c", READ, "deckhand-lock", &path], None)
        .await?;
    Ok(parse_read(&out.stdout_text()))
}

fn parse_read(text: &str) -> Option<LockState> {
    let mut lines = text.splitn(4, '\n');
    let (Some(now), Some(mtime), Some(kind)) = (lines.next(), lines.next(), lines.next()) else {
        return None;
    };
    let body = lines.next().unwrap_or("").trim().to_string();
    let age = now.trim().parse::<i64>().unwrap_or(0) - mtime.trim().parse::<i64>().unwrap_or(0);
    let mut info: Option<LockInfo> = serde_json::from_str(&body)
        .ok()
        .map(crate::sanitize::strings_in);
    let token = kind.trim().strip_prefix(".h-").map(str::to_string);
    if let (Some(i), Some(t)) = (&info, &token)
        && &i.token != t
    {
        // A details file that is not this lock's: trust only the link.
        info = None;
    }
    let body = crate::sanitize::for_terminal(&body).into_owned();
    Some(LockState {
        raw: info.is_none().then_some(body),
        token: token.or_else(|| info.as_ref().map(|i| i.token.clone())),
        legacy: kind.trim() == "legacy",
        info,
        heartbeat_age_secs: age,
        stale: age > i64::try_from(STALE_AFTER.as_secs()).unwrap_or(30),
    })
}

/// What taking a lock needs to know.
pub struct LockRequest<'a> {
    pub service: &'a str,
    /// What the holder is doing, shown to whoever is refused.
    pub action: &'a str,
    pub actor: &'a str,
    pub env: &'a str,
    pub wait: Duration,
    /// Take over a stale or dead lock (audited with whose it was) instead of refusing.
    pub take_over_stale: bool,
}

/// A held lock. Release it with [`HeldLock::release`]; if the process dies instead, the
/// heartbeat stops and others see the lock as stale.
pub struct HeldLock {
    pub info: LockInfo,
    path: String,
    heartbeat: tokio::task::JoinHandle<()>,
    /// Set by the heartbeat when the lock is no longer ours (removed or taken over).
    lost: Arc<AtomicBool>,
    /// The stale lock this one replaced, if it took one over.
    pub took_over: Option<LockState>,
}

/// Takes the lock, waiting up to `wait` for another holder to finish.
pub async fn acquire(host: &Arc<Host>, req: &LockRequest<'_>) -> Result<HeldLock, ReleaseError> {
    let service = req.service;
    let (dir, path) = lock_path(host, service);
    let info = LockInfo {
        token: new_token(),
        actor: req.actor.to_string(),
        action: req.action.to_string(),
        since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        pid: std::process::id(),
        machine: this_machine(),
    };
    let body = serde_json::to_vec(&info).map_err(|e| ReleaseError::Refused(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + req.wait;
    let mut took_over = None;
    loop {
        let out = host
            .exec_ok(
                "sh",
                &["-c", ACQUIRE, "deckhand-lock", &dir, &path, &info.token],
                Some(&body),
            )
            .await?;
        match out.stdout_text().trim() {
            "acquired" => break,
            "no-details" => {
                return Err(ReleaseError::Refused(format!(
                    "{}: the lock's details never reached the host (the connection dropped while the lock was being taken); nothing was locked. Try again.",
                    host.name()
                )));
            }
            _ => {}
        }
        let state = read(host, service).await?;
        let liveness = state.as_ref().map(LockState::liveness);
        if req.take_over_stale
            && took_over.is_none()
            && let Some(s) = &state
            && matches!(liveness, Some(Liveness::Stale | Liveness::Dead))
        {
            // Safe because holders re-check their token before every change: a holder that
            // was only slow stops at its next step.
            if remove_shown(host, service, s).await? {
                took_over = Some(s.clone());
            }
            continue;
        }
        if tokio::time::Instant::now() >= deadline {
            let (holder, hint, takeover_possible) = match (&state, liveness) {
                (Some(s), Some(Liveness::Stale | Liveness::Dead)) => (
                    s.holder(),
                    format!(
                        "The holder stopped refreshing it{}. If nobody is deploying, take it over: add --take-over-stale (recorded in the audit log), or clear it: deckhand unlock --env {} --service {service} --host {}",
                        if liveness == Some(Liveness::Dead) {
                            " (its process is gone)"
                        } else {
                            ""
                        },
                        req.env,
                        host.name()
                    ),
                    true,
                ),
                (Some(s), _) => (
                    s.holder(),
                    "Wait for it to finish, or pass --lock-wait 5m to queue behind it.".to_string(),
                    false,
                ),
                (None, _) => (
                    "someone who just released it".into(),
                    "Try again.".into(),
                    false,
                ),
            };
            return Err(ReleaseError::Locked {
                host: host.name().to_string(),
                service: service.to_string(),
                holder,
                hint,
                takeover_possible,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let Some(old) = &took_over {
        let mut rec = super::audit::AuditRecord::now(
            req.actor,
            req.env,
            host.name(),
            service,
            "take_over_lock",
        );
        rec.outcome = super::audit::AuditOutcome::Success;
        rec.details = Some(format!(
            "took over the {} lock of {}",
            if old.liveness() == Liveness::Dead {
                "dead"
            } else {
                "stale"
            },
            old.holder()
        ));
        rec.extra.holder = old.info.clone();
        if let Err(e) = super::audit::append(host, &rec).await {
            tracing::warn!(error = %e, "the lock take-over could not be audited");
        }
    }
    let lost = Arc::new(AtomicBool::new(false));
    let hb_host = host.clone();
    let hb_path = path.clone();
    let token = info.token.clone();
    let hb_lost = lost.clone();
    let heartbeat = tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            // Bounded by the heartbeat period: a hung touch must not stop the next one.
            match hb_host
                .exec_within(
                    HEARTBEAT,
                    "sh",
                    &["-c", HEARTBEAT_SCRIPT, "deckhand-lock", &hb_path, &token],
                    None,
                )
                .await
            {
                Ok(o) if o.stdout_text().trim() == "lost" => {
                    tracing::warn!(host = hb_host.name(), "lock was removed while held");
                    hb_lost.store(true, Ordering::SeqCst);
                    return;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "lock heartbeat failed"),
            }
        }
    });
    Ok(HeldLock {
        info,
        path,
        heartbeat,
        lost,
        took_over,
    })
}

impl HeldLock {
    pub async fn release(self, host: &Host) -> Result<(), ReleaseError> {
        self.heartbeat.abort();
        host.exec_ok(
            "sh",
            &["-c", RELEASE, "deckhand-lock", &self.path, &self.info.token],
            None,
        )
        .await?;
        Ok(())
    }

    /// The heartbeat found the lock gone (cheap: no round trip; for waits).
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    /// Makes sure the lock is still ours, on the host, right now (before a step that changes a
    /// container or the proxy). `Err` says who holds it instead.
    pub async fn ensure_held(&self, host: &Host) -> Result<(), String> {
        let lost_now = match host
            .exec(
                "sh",
                &[
                    "-c",
                    HEARTBEAT_SCRIPT,
                    "deckhand-lock",
                    &self.path,
                    &self.info.token,
                ],
                None,
            )
            .await
        {
            Ok(o) => o.stdout_text().trim() == "lost",
            // Unreachable host: the step itself will fail and say so.
            Err(_) => false,
        };
        if !lost_now && !self.lost.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.lost.store(true, Ordering::SeqCst);
        let service = std::path::Path::new(&self.path)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("");
        Err(match read(host, service).await {
            Ok(Some(s)) => format!("now locked by {}", s.holder()),
            Ok(None) => "someone removed it; nobody holds it now".to_string(),
            Err(e) => format!("it is gone and the lock could not be read: {e}"),
        })
    }
}

// For `release::batch`, which runs a lock script beside an audit append in one remote command:
// the script and its arguments (the lock's path and token).
impl HeldLock {
    pub(super) fn heartbeat_call(&self) -> (&'static str, &str, &str) {
        (HEARTBEAT_SCRIPT, &self.path, &self.info.token)
    }

    pub(super) fn release_call(&self) -> (&'static str, &str, &str) {
        (RELEASE, &self.path, &self.info.token)
    }

    pub(super) fn stop_heartbeat(&self) {
        self.heartbeat.abort();
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// Releases a lock by its token (when the connection that took it is gone).
pub async fn release_token(host: &Host, service: &str, token: &str) -> Result<(), ReleaseError> {
    let (_, path) = lock_path(host, service);
    host.exec_ok("sh", &["-c", RELEASE, "deckhand-lock", &path, token], None)
        .await?;
    Ok(())
}

/// Removes exactly the lock `shown` (an operator confirmed that one): if it was released or
/// taken by someone else meanwhile, nothing is removed and `false` comes back.
pub async fn remove_shown(
    host: &Host,
    service: &str,
    shown: &LockState,
) -> Result<bool, ReleaseError> {
    let (_, path) = lock_path(host, service);
    let out = match (&shown.token, &shown.raw) {
        // A link lock, or an older file lock that names its token.
        (Some(t), _) => {
            host.exec_ok("sh", &["-c", RELEASE, "deckhand-lock", &path, t], None)
                .await?
        }
        // An unreadable file: only while its content is still what was shown.
        (None, Some(body)) => {
            host.exec_ok(
                "sh",
                &["-c", REMOVE_LEGACY, "deckhand-lock", &path, body],
                None,
            )
            .await?
        }
        (None, None) => return Ok(false),
    };
    Ok(out.stdout_text().trim() == "released")
}

/// Who asks to remove a lock, and whether they insist on a live one.
pub struct UnlockRequest<'a> {
    pub service: &'a str,
    pub actor: &'a str,
    pub env: &'a str,
    /// Remove it even though its holder still heartbeats (`unlock --force`).
    pub force: bool,
}

/// `deckhand unlock` after the operator saw `shown`: refuses a live lock unless forced, removes
/// only that lock, and audits it with both identities (who removed it, whose it was). `Ok`
/// carries a warning when the audit record could not be written.
pub async fn unlock(
    host: &Host,
    req: &UnlockRequest<'_>,
    shown: &LockState,
) -> Result<Option<String>, ReleaseError> {
    let live = shown.liveness() == Liveness::Live;
    let record = |outcome, details: String| {
        let mut rec =
            super::audit::AuditRecord::now(req.actor, req.env, host.name(), req.service, "unlock");
        rec.outcome = outcome;
        rec.details = Some(details);
        rec.extra.holder = shown.info.clone();
        rec.extra.forced = live && req.force;
        rec
    };
    if live && !req.force {
        // A refused attempt is something an operator did: it goes in the audit log too.
        let rec = record(
            super::audit::AuditOutcome::Refused,
            format!(
                "refused to remove the LIVE lock of {} (no --force)",
                shown.holder()
            ),
        );
        if let Err(e) = super::audit::append(host, &rec).await {
            tracing::warn!(error = %e, "the refused unlock is not in the audit log");
        }
        return Err(ReleaseError::Locked {
            host: host.name().to_string(),
            service: req.service.to_string(),
            holder: shown.holder(),
            hint: format!(
                "The lock is live (heartbeat {}s ago): its holder is working, and removing it lets two deploys race. Refused. If you know the holder is gone, pass --force (recorded with both identities).",
                shown.heartbeat_age_secs
            ),
            takeover_possible: false,
        });
    }
    if !remove_shown(host, req.service, shown).await? {
        return Err(ReleaseError::Locked {
            host: host.name().to_string(),
            service: req.service.to_string(),
            holder: shown.holder(),
            hint: "The lock changed since it was shown (released, or taken by someone else): nothing was removed. Look again: deckhand lock".into(),
            takeover_possible: false,
        });
    }
    let rec = record(
        super::audit::AuditOutcome::Success,
        format!(
            "removed the {} lock of {}",
            match shown.liveness() {
                Liveness::Live => "LIVE",
                Liveness::Stale => "stale",
                Liveness::Dead => "dead",
            },
            shown.holder()
        ),
    );
    Ok(super::audit::append(host, &rec)
        .await
        .err()
        .map(|e| format!("the unlock is not in the audit log: {e}")))
}

fn new_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    // Short enough that the link target stays inside the inode (no data block on a full disk).
    format!(
        "{:016x}-{}-{}",
        h.finish(),
        std::process::id(),
        machine_tag(&this_machine())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_lock_with_its_details_is_read() {
        let info = r#"{"token":"00ff","actor":"ana@laptop","action":"deploy a1","since":"2026-12-01T00:00:00Z","pid":1,"machine":"elsewhere"}"#;
        let s = parse_read(&format!("1000\n990\n.h-00ff\n{info}\n")).expect("locked");
        assert_eq!(s.token.as_deref(), Some("00ff"));
        assert_eq!(s.heartbeat_age_secs, 10);
        assert!(!s.legacy && !s.stale);
        assert_eq!(s.liveness(), Liveness::Live);
        assert!(s.holder().starts_with("ana@laptop since"), "{}", s.holder());
    }

    #[test]
    fn a_lock_whose_details_could_not_be_written_still_holds() {
        // Disk full: the link exists, its details file is empty.
        let s = parse_read("1000\n900\n.h-00ff\n").expect("locked");
        assert_eq!(s.token.as_deref(), Some("00ff"));
        assert!(s.info.is_none());
        assert_eq!(s.liveness(), Liveness::Stale);
        assert!(
            s.holder().contains("details could not be written"),
            "{}",
            s.holder()
        );
        assert!(parse_read("").is_none());
    }

    #[test]
    fn a_lock_without_details_whose_local_process_is_gone_is_dead() {
        // What a deploy killed while taking the lock on a full disk leaves: the token alone.
        let tag = machine_tag(&this_machine());
        let s = parse_read(&format!("1000\n999\n.h-00ff-4000000-{tag}\n")).expect("locked");
        assert!(s.info.is_none() && !s.stale);
        assert_eq!(s.liveness(), Liveness::Dead);
        assert!(
            s.holder().contains("DEAD: its process 4000000"),
            "{}",
            s.holder()
        );
        // The same token from another machine, or this process's own, is live.
        let other = parse_read("1000\n999\n.h-00ff-4000000-0badc0de\n").expect("locked");
        assert_eq!(other.liveness(), Liveness::Live);
        assert_eq!(
            token_holder(&new_token()).map(|(p, _)| p),
            Some(std::process::id())
        );
    }

    #[test]
    fn a_token_fits_in_the_inode_of_its_link() {
        // ext4 keeps link targets below 60 bytes in the inode.
        assert!(format!(".h-{}", new_token()).len() < 60);
    }

    fn run_acquire(dir: &std::path::Path, body: &[u8]) -> String {
        use std::io::Write;
        let lock = dir.join("svc.lock");
        let mut child = std::process::Command::new("sh")
            .args(["-c", ACQUIRE, "deckhand-lock"])
            .arg(dir)
            .arg(&lock)
            .arg("tok")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(body)
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn a_holder_that_sent_no_details_takes_no_lock() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(run_acquire(dir.path(), b""), "no-details");
        assert!(std::fs::symlink_metadata(dir.path().join("svc.lock")).is_err());
        assert!(
            std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
            "nothing left"
        );
        assert_eq!(run_acquire(dir.path(), b"{}"), "acquired");
        assert_eq!(run_acquire(dir.path(), b"{}"), "held");
    }

    #[test]
    fn a_legacy_file_lock_is_read_and_a_dead_local_holder_is_dead() {
        let me = hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        let info = format!(
            r#"{{"token":"ab","actor":"x","action":"deploy","since":"s","pid":4000000,"machine":"{me}"}}"#
        );
        let s = parse_read(&format!("1000\n999\nlegacy\n{info}")).expect("locked");
        assert!(s.legacy);
        assert_eq!(s.token.as_deref(), Some("ab"));
        assert_eq!(s.liveness(), Liveness::Dead);
    }
}
