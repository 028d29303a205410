//! The end of every run, whatever happened: its audit record and the unlock, through a new
//! connection when the run's one broke.

use super::super::Step;
use super::super::audit::{self, AuditRecord};
use super::super::lock::{self, HeldLock};
use super::super::steps::StepRecorder;
use crate::config::Service;
use crate::state::ServiceStatus;
use crate::transport::Host;

/// Writes the run's end `record` and releases `held`; `ok` (the run got through) also reads
/// back what serves now, which it returns.
pub(super) async fn record_and_unlock(
    r: &mut StepRecorder<'_>,
    host: &Host,
    service: &Service,
    held: HeldLock,
    record: &AuditRecord,
    ok: bool,
) -> Option<Result<ServiceStatus, String>> {
    let record_token = held.info.token.clone();
    // The record and the unlock matter even when the connection just died (that may be why the
    // action failed): one new connection is tried before giving up on them.
    let mut fresh: Option<Host> = None;
    let t = r.start(Step::Audit, record.outcome.to_string());
    // The end record and the unlock in one remote command; each part that did not get done
    // is done again on its own, through a new connection when this one broke.
    // What serves now is read back beside it when the run got through (the runner reports
    // it; after a failure the runner reads it itself).
    let (batched, after) = if ok {
        let (b, st) = tokio::join!(
            super::super::batch::audit_and_release(host, record, &held),
            crate::state::read_serving(host, service)
        );
        (b, Some(st.map_err(|e| crate::util::error_chain(&e))))
    } else {
        (
            super::super::batch::audit_and_release(host, record, &held).await,
            None,
        )
    };
    if !batched.audited {
        let retry_here = batched.lock.is_some();
        let done_here = retry_here && audit::append(host, record).await.is_ok();
        if !done_here {
            fresh = reconnect(r, host).await;
            match &fresh {
                Some(h) => {
                    if let Err(e) = audit::append(h, record).await {
                        r.info(format!("WARNING: could not write the audit log: {e}"));
                    }
                }
                None => r.info(
                    "WARNING: the audit log could not be written: the host is unreachable"
                        .to_string(),
                ),
            }
        }
    }
    r.finish(Step::Audit, t, "");
    let t = r.start(Step::Unlock, "");
    let released = if batched.lock.is_some() {
        drop(held);
        Ok(())
    } else {
        match &fresh {
            Some(h) => held.release(h).await,
            None => held.release(host).await,
        }
    };
    if released.is_err() {
        let retry = match fresh.take() {
            Some(h) => Some(h),
            None => reconnect(r, host).await,
        };
        match retry {
            Some(h) => {
                // `held` was consumed; release by token through the new connection.
                if let Err(e) = lock::release_token(&h, &service.name, &record_token).await {
                    r.info(format!("WARNING: could not release the lock: {e}; clear it with deckhand unlock"));
                }
                fresh = Some(h);
            }
            None => r.info("WARNING: the lock could not be released: the host is unreachable; clear it with deckhand unlock".to_string()),
        }
    }
    r.finish(
        Step::Unlock,
        t,
        if batched.lock.is_some() {
            "with the audit record, one command"
        } else {
            ""
        },
    );
    if let Some(h) = fresh {
        h.close().await;
    }
    after
}

/// A new connection to the same host, for bookkeeping after the first one broke.
async fn reconnect(r: &StepRecorder<'_>, host: &Host) -> Option<Host> {
    match Host::connect(&host.spec).await {
        Ok(h) => {
            r.info("the connection broke; reconnected to record the outcome".to_string());
            Some(h)
        }
        Err(e) => {
            tracing::warn!(error = %e, "reconnect for the audit record failed");
            None
        }
    }
}
