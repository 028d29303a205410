//! Bookkeeping steps that go out together: an audit record and the lock's check or release in
//! one remote command. Over a slow link each remote command costs two round trips (a channel,
//! then its answer); the start record and the lock check before the first change, and the end
//! record and the unlock, need one command each instead of two. Both scripts are the fixed
//! scripts of `audit` and `lock`, run as shell functions in a subshell each (their `exit`s end
//! only their own part), their values as positional parameters.

use super::ReleaseError;
use super::audit::{self, AuditRecord};
use super::ledger::{self, Ledger};
use super::lock::HeldLock;
use crate::transport::Host;

/// What one batched command did.
pub(super) struct Batched {
    /// The record is on the host.
    pub audited: bool,
    /// The lock part's answer (`ok` / `lost` for a check, `released` / `not-ours` for a release);
    /// `None` when the command did not run (the connection broke).
    pub lock: Option<String>,
}

fn script(lock_script: &str) -> String {
    format!(
        "a() (\n{}\n)\nl() (\n{lock_script}\n)\nif a \"$1\" \"$2\"; then echo audit=ok; else echo audit=failed; fi\nl \"$3\" \"$4\"",
        audit::APPEND
    )
}

async fn run(host: &Host, record: &AuditRecord, lock: (&str, &str, &str)) -> Batched {
    let line = match audit::encode(record) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "an audit record could not be encoded");
            return Batched {
                audited: false,
                lock: None,
            };
        }
    };
    let (dir, path) = audit::audit_path(host);
    let (lock_script, lock_path, token) = lock;
    let text = script(lock_script);
    match host
        .exec(
            "sh",
            &["-c", &text, "deckhand-batch", &dir, &path, lock_path, token],
            Some(&line),
        )
        .await
    {
        Ok(out) => {
            let stdout = out.stdout_text();
            let mut lines = stdout.lines().map(str::trim);
            let audited = lines.next() == Some("audit=ok");
            let lock = lines.next().map(str::to_string);
            if !audited {
                tracing::warn!(stderr = %crate::sanitize::host_text(&out.stderr_text()), "the batched audit append failed");
            }
            Batched { audited, lock }
        }
        Err(e) => {
            tracing::warn!(error = %e, "a batched bookkeeping command failed");
            Batched {
                audited: false,
                lock: None,
            }
        }
    }
}

/// Appends `record` and checks the lock is still ours (the heartbeat's own check).
pub(super) async fn audit_and_check(host: &Host, record: &AuditRecord, held: &HeldLock) -> Batched {
    run(host, record, held.heartbeat_call()).await
}

/// Appends `record` and releases the lock (only if it is still ours).
pub(super) async fn audit_and_release(
    host: &Host,
    record: &AuditRecord,
    held: &HeldLock,
) -> Batched {
    held.stop_heartbeat();
    run(host, record, held.release_call()).await
}

/// Writes the ledger and checks the lock is still ours, in one remote command (the drain's
/// bookkeeping: two commands at once would need a second remote shell). The lock part's
/// answer is `ok` / `lost`, `None` when the command did not run.
pub(super) async fn ledger_and_check(
    host: &Host,
    service: &str,
    l: &Ledger,
    held: &HeldLock,
) -> (Result<(), ReleaseError>, Option<String>) {
    let (dir, path, body) = match ledger::write_call(host, service, l) {
        Ok(v) => v,
        Err(e) => return (Err(e), None),
    };
    let (lock_script, lock_path, token) = held.heartbeat_call();
    let text = format!(
        "w() (\n{}\n)\nl() (\n{lock_script}\n)\nif w \"$1\" \"$2\"; then echo ledger=ok; else echo ledger=failed; fi\nl \"$3\" \"$4\" </dev/null",
        ledger::WRITE
    );
    match host
        .exec(
            "sh",
            &["-c", &text, "deckhand-batch", &dir, &path, lock_path, token],
            Some(&body),
        )
        .await
    {
        Ok(out) => {
            let stdout = out.stdout_text();
            let mut lines = stdout.lines().map(str::trim);
            let written = if lines.next() == Some("ledger=ok") {
                Ok(())
            } else {
                Err(ReleaseError::Ledger {
                    host: host.name().to_string(),
                    detail: format!(
                        "{path} could not be written: {}",
                        crate::sanitize::host_text(&out.stderr_text())
                    ),
                })
            };
            (written, lines.next().map(str::to_string))
        }
        Err(e) => (Err(e.into()), None),
    }
}
