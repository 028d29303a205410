//! The per-service lock on a host, shared by every operator and CI job.
//!
//! A file `<state_dir>/locks/<service>.lock`, created atomically with `ln` (fails if it exists),
//! holding who, since when, doing what. The holder touches it every few seconds; a lock whose
//! heartbeat stopped (the holder was killed or lost its connection) is reported as stale and
//! cleared only by `deckhand unlock`. The host's own clock judges age, so operators' clock skew
//! does not matter.

use std::time::Duration;

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
}

impl LockState {
    pub fn holder(&self) -> String {
        match &self.info {
            Some(i) => format!(
                "{} since {} doing {}{}",
                i.actor,
                i.since,
                i.action,
                if self.stale {
                    format!(" (STALE: no heartbeat for {}s)", self.heartbeat_age_secs)
                } else {
                    String::new()
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

// Fixed scripts: values arrive as positional parameters, never spliced into the script text.
const ACQUIRE: &str = r#"set -e; umask 022; mkdir -p "$1"; t="$1/.tmp.$$"; cat > "$t"; if ln "$t" "$2" 2>/dev/null; then rm -f "$t"; echo acquired; else rm -f "$t"; echo held; fi"#;
const READ: &str = r#"if [ -f "$1" ]; then date +%s; stat -c %Y "$1"; cat "$1"; fi"#;
const RELEASE: &str = r#"if [ -f "$1" ] && grep -q -F "$2" "$1"; then rm -f "$1"; echo released; else echo not-ours; fi"#;
const HEARTBEAT_SCRIPT: &str =
    r#"if [ -f "$1" ] && grep -q -F "$2" "$1"; then touch "$1"; echo ok; else echo lost; fi"#;

/// Reads the lock of a service, if any.
pub async fn read(host: &Host, service: &str) -> Result<Option<LockState>, ReleaseError> {
    let (_, path) = lock_path(host, service);
    let out = host
        .exec_ok("sh", &["-c", READ, "deckhand-lock", &path], None)
        .await?;
    let text = out.stdout_text();
    let mut lines = text.splitn(3, '\n');
    let (Some(now), Some(mtime)) = (lines.next(), lines.next()) else {
        return Ok(None);
    };
    let body = lines.next().unwrap_or("").trim().to_string();
    let age = now.trim().parse::<i64>().unwrap_or(0) - mtime.trim().parse::<i64>().unwrap_or(0);
    let info: Option<LockInfo> = serde_json::from_str(&body)
        .ok()
        .map(crate::sanitize::strings_in);
    let body = crate::sanitize::for_terminal(&body).into_owned();
    Ok(Some(LockState {
        raw: info.is_none().then_some(body),
        info,
        heartbeat_age_secs: age,
        stale: age > i64::try_from(STALE_AFTER.as_secs()).unwrap_or(30),
    }))
}

/// A held lock. Release it with [`HeldLock::release`]; if the process dies instead, the
/// heartbeat stops and others see the lock as stale.
pub struct HeldLock {
    pub info: LockInfo,
    path: String,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// Takes the lock, waiting up to `wait` for another holder to finish.
pub async fn acquire(
    host: &std::sync::Arc<Host>,
    service: &str,
    action: &str,
    actor: &str,
    wait: Duration,
) -> Result<HeldLock, ReleaseError> {
    let (dir, path) = lock_path(host, service);
    let info = LockInfo {
        token: new_token(),
        actor: actor.to_string(),
        action: action.to_string(),
        since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        pid: std::process::id(),
        machine: hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default(),
    };
    let body = serde_json::to_vec(&info).map_err(|e| ReleaseError::Refused(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let out = host
            .exec_ok(
                "sh",
                &["-c", ACQUIRE, "deckhand-lock", &dir, &path],
                Some(&body),
            )
            .await?;
        if out.stdout_text().trim() == "acquired" {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let state = read(host, service).await?;
            let (holder, hint) = match &state {
                Some(s) if s.stale => (
                    s.holder(),
                    format!(
                        "The holder stopped refreshing it. If nobody is deploying, clear it: deckhand unlock --env <env> --service {service} --host {}",
                        host.name()
                    ),
                ),
                Some(s) => (
                    s.holder(),
                    "Wait for it to finish, or pass --lock-wait 5m to queue behind it.".to_string(),
                ),
                None => ("someone who just released it".into(), "Try again.".into()),
            };
            return Err(ReleaseError::Locked {
                host: host.name().to_string(),
                service: service.to_string(),
                holder,
                hint,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let hb_host = host.clone();
    let hb_path = path.clone();
    let token = info.token.clone();
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

/// Removes the lock whoever holds it (`deckhand unlock`, after the operator confirmed).
pub async fn force_remove(host: &Host, service: &str) -> Result<(), ReleaseError> {
    let (_, path) = lock_path(host, service);
    host.exec_ok("rm", &["-f", "--", &path], None).await?;
    Ok(())
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
    format!("{:016x}", h.finish())
}
