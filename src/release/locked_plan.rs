//! Planning under the lock, for runs nobody looks at between plan and run (`--yes`): the host
//! is locked first and the plan made from the read under it, which the run then uses instead
//! of reading the host a second time. The run still re-plans from that read and compares it
//! with the confirmed plan (`Pinned::differences`), and every lock check before a change stays.
//!
//! Opportunistic: a lock that is held (or anything else that goes wrong here) releases what was
//! taken and leaves the host to the ordinary path (plan without the lock, the run waits for
//! it), so every error is reported as before.

use std::sync::Arc;
use std::time::Instant;

use super::execute::{now_rfc3339, plan_with_health, read_under_lock};
use super::ledger::Ledger;
use super::lock::{self, HeldLock, LockRequest};
use super::plan::{Action, DeployPlan, Target};
use crate::config::Service;
use crate::state::ServiceStatus;
use crate::transport::Host;

/// A host locked while planning, with the read the plan was made from.
pub struct LockedRead {
    pub(crate) held: HeldLock,
    pub(crate) status: ServiceStatus,
    pub(crate) set_aside: Option<String>,
    pub(crate) ledger: Ledger,
    /// How long taking the lock took (reported by the run's lock step).
    pub(crate) lock_ms: u64,
}

impl LockedRead {
    /// Gives the lock back without running (the host is not attempted).
    pub async fn release(self, host: &Host) {
        if let Err(e) = self.held.release(host).await {
            tracing::warn!(host = host.name(), error = %e, "a lock taken while planning could not be released");
        }
    }
}

/// Locks the host (without waiting) and plans from the read under the lock. `None`: not
/// locked (held by someone, or the read or plan failed); plan the ordinary way.
pub async fn lock_and_plan(
    host: &Arc<Host>,
    service: &Service,
    target: &Target,
    action: Action,
    req: &LockRequest<'_>,
) -> Option<(DeployPlan, LockedRead)> {
    let t = Instant::now();
    // The exec of the read's traffic is created while the lock is taken (it runs nothing):
    // the read under the lock then starts it, one round trip instead of two.
    let (acquired, ()) = tokio::join!(
        lock::acquire(host, req),
        crate::state::prepare_traffic_read(host, service)
    );
    let held = match acquired {
        Ok(h) if h.took_over.is_none() => h,
        Ok(h) => {
            // Never happens without `take_over_stale`; the ordinary path says whose it was.
            let _ = h.release(host).await;
            return None;
        }
        Err(_) => return None,
    };
    let lock_ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (mut status, set_aside, ledger) = match read_under_lock(host, service).await {
        Ok(v) => v,
        Err(_) => {
            let _ = held.release(host).await;
            return None;
        }
    };
    // The plan the run will make from this read (it reconciles the ledger the same way first).
    let mut reconciled = ledger.clone();
    reconciled.reconcile(&status, &now_rfc3339());
    match plan_with_health(host, &mut status, &reconciled, service, target, action).await {
        Ok(plan) => Some((
            plan,
            LockedRead {
                held,
                status,
                set_aside,
                ledger,
                lock_ms,
            },
        )),
        Err(_) => {
            let _ = held.release(host).await;
            None
        }
    }
}
