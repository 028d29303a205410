//! After the switch: the old color drains its in-flight requests and is stopped (kept for a
//! rollback).

use std::time::{Duration, Instant};

use super::super::ledger::Ledger;
use super::super::lock::HeldLock;
use super::super::plan::DeployPlan;
use super::super::proxy::Drained;
use super::super::steps::StepRecorder;
use super::super::{Step, container, proxy};
use super::save_ledger;
use crate::config::Service;
use crate::state::Color;
use crate::state::contract::app_container;
use crate::transport::Host;
use crate::util::format_duration;

/// The drain and the lock check before the stop, started beside the confirm (its one request
/// through the public port): both only read, and what they find is used only once the confirm
/// has passed (a failed confirm drops them and puts the old route back). Over a slow link the
/// drain then costs no round trip of its own when nothing is in flight.
pub(super) struct EarlyDrain {
    drained: Drained,
    held: Result<(), String>,
    checked: Instant,
}

pub(super) async fn early(
    host: &Host,
    held: &HeldLock,
    service: &Service,
    old: Color,
) -> EarlyDrain {
    let (drained, (held, checked)) =
        tokio::join!(proxy::drain(host, service, old, service.drain), async {
            (held.ensure_held(host).await, Instant::now())
        });
    EarlyDrain {
        drained,
        held,
        checked,
    }
}

/// `ledger`, when given, is written beside the drain (beside the stop when the drain began
/// with the confirm: `early`).
pub(super) async fn drain_and_stop_old(
    r: &mut StepRecorder<'_>,
    held: &HeldLock,
    service: &Service,
    plan: &DeployPlan,
    ledger: Option<&Ledger>,
    early: Option<EarlyDrain>,
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
    // command with the ledger write when there is one; a check older than a second (a long
    // drain or confirm) is made again when the drain ends.
    let early_ledger = early.is_some().then_some(ledger).flatten();
    let (d, held_then, checked) = match early {
        Some(e) => (e.drained, e.held, e.checked),
        None => {
            let rr: &StepRecorder<'_> = r;
            let (d, held_then) = tokio::join!(
                proxy::drain(host, service, old, service.drain),
                async {
                    let Some(l) = ledger else {
                        return (held.ensure_held(host).await, Instant::now());
                    };
                    let (written, lock) =
                        super::super::batch::ledger_and_check(host, &service.name, l, held).await;
                    if let Err(e) = written {
                        rr.info(format!(
                        "WARNING: the release ledger could not be written ({e}); the next run reconciles it from what the proxy serves"
                    ));
                    }
                    let held_then = match lock.as_deref() {
                        Some("ok")
                            if !held.lost_flag().load(std::sync::atomic::Ordering::SeqCst) =>
                        {
                            Ok(())
                        }
                        // Lost, or the command did not run: the check on its own says who holds it.
                        _ => held.ensure_held(host).await,
                    };
                    (held_then, Instant::now())
                }
            );
            let (held_then, checked) = held_then;
            (d, held_then, checked)
        }
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
    let held_now = if checked.elapsed() < Duration::from_secs(1) {
        held_then
    } else {
        held.ensure_held(host).await
    };
    if let Err(now) = held_now {
        // The new release serves; whoever holds the lock now decides about the old color.
        r.info(format!(
            "WARNING: the lock is no longer ours ({now}); {old_name} was left running for its holder to decide"
        ));
        if let Some(l) = early_ledger {
            save_ledger(r, service, l).await;
        }
        return;
    }
    let t = r.start(Step::StopOld, old_name.clone());
    // The read of what serves after the run (beside its audit record) starts this exec.
    let rr: &StepRecorder<'_> = r;
    let (stopped, (), ()) = tokio::join!(
        container::stop(host, &old_name, service),
        crate::state::prepare_traffic_read(host, service),
        async {
            if let Some(l) = early_ledger {
                save_ledger(rr, service, l).await;
            }
        }
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
