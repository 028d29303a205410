//! After the switch: the old color drains its in-flight requests and is stopped (kept for a
//! rollback).

use std::time::Duration;

use super::super::ledger::Ledger;
use super::super::lock::HeldLock;
use super::super::plan::DeployPlan;
use super::super::steps::StepRecorder;
use super::super::{Step, container, proxy};
use super::save_ledger;
use crate::config::Service;
use crate::state::contract::app_container;
use crate::util::format_duration;

/// `ledger`, when given, is written beside the drain.
pub(super) async fn drain_and_stop_old(
    r: &mut StepRecorder<'_>,
    held: &HeldLock,
    service: &Service,
    plan: &DeployPlan,
    ledger: Option<&Ledger>,
) {
    let Some(old) = plan.from_color else {
        if let Some(l) = ledger {
            save_ledger(r, service, l).await;
        }
        return;
    };
    let host = r.host;
    // The old color is out of rotation: it is stopped once it has no request in flight (or
    // at the drain timeout), so a slow request that started before the switch completes.
    let t = r.start(
        Step::Drain,
        format!(
            "{old}: in-flight requests, at most {}",
            format_duration(service.drain)
        ),
    );
    // The lock check before the stop goes out with the first drain poll, in one remote
    // command with the ledger write when there is one; a drain that took longer than a second
    // is checked for again when it ends.
    let (d, held_then) = {
        let rr: &StepRecorder<'_> = r;
        tokio::join!(proxy::drain(host, service, old, service.drain), async {
            let Some(l) = ledger else {
                return held.ensure_held(host).await;
            };
            let (written, lock) =
                super::super::batch::ledger_and_check(host, &service.name, l, held).await;
            if let Err(e) = written {
                rr.info(format!(
                        "WARNING: the release ledger could not be written ({e}); the next run reconciles it from what the proxy serves"
                    ));
            }
            match lock.as_deref() {
                Some("ok") if !held.lost_flag().load(std::sync::atomic::Ordering::SeqCst) => Ok(()),
                // Lost, or the command did not run: the check on its own says who holds it.
                _ => held.ensure_held(host).await,
            }
        })
    };
    let detail = match (d.measured, d.left) {
        (false, _) => format!(
            "the proxy could not be asked; waited the whole {}",
            format_duration(d.waited)
        ),
        (true, 0) => format!("no request in flight after {}", format_duration(d.waited)),
        (true, n) => format!(
            "WARNING: {n} request(s) still in flight at the drain timeout ({}); stopping anyway",
            format_duration(d.waited)
        ),
    };
    r.finish(Step::Drain, t, detail);
    let old_name = app_container(service, old);
    let held_now = if d.waited < Duration::from_secs(1) {
        held_then
    } else {
        held.ensure_held(host).await
    };
    if let Err(now) = held_now {
        // The new release serves; whoever holds the lock now decides about the old color.
        r.info(format!(
            "WARNING: the lock is no longer ours ({now}); {old_name} was left running for its holder to decide"
        ));
        return;
    }
    let t = r.start(Step::StopOld, old_name.clone());
    // The read of what serves after the run (beside its audit record) starts this exec.
    let (stopped, ()) = tokio::join!(
        container::stop(host, &old_name, service),
        crate::state::prepare_traffic_read(host, service)
    );
    match stopped {
        Ok(()) => r.finish(Step::StopOld, t, "kept stopped for rollback"),
        Err(e) => {
            // The new release serves; a stuck old container is worth a warning, not a failure.
            r.info(format!("WARNING: could not stop {old_name}: {e}"));
            r.finish(Step::StopOld, t, "failed");
        }
    }
}
