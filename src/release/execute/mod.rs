//! Carrying out a deploy or rollback plan on one host, step by step, with events.
//!
//! The invariant: the old color serves until the new one is proven. Everything before the
//! switch only touches the idle color; a failure there stops the new container (kept for
//! inspection) and leaves the proxy alone.
//!
//! This file holds the entry points and the run's sequence; each phase is its own module, and
//! `audit_unlock` ends every run with its record and the unlock.

mod audit_unlock;
mod drain;
mod inspect;
mod planning;
mod pre_switch;
mod switch;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::audit::{AuditOutcome, AuditRecord};
use super::ledger::{self, Ending, Ledger};
use super::lock::{HeldLock, LockRequest};
use super::locked_plan::LockedRead;
use super::plan::{Action, DeployPlan, Pinned, Target};
use super::proxy;
use super::steps::StepRecorder;
use super::{Event, EventSink, ReleaseError, Step, prune, watch};
use crate::config::Service;
use crate::state::proxy_conf::ProxyRoute;
use crate::state::{ServiceStatus, read_service};
use crate::transport::Host;
use drain::drain_and_stop_old;
pub use planning::plan_on_host;
pub(crate) use planning::{ledger_for_plan, plan_from, plan_with_health, read_under_lock};
use pre_switch::PreSwitch;

#[derive(Clone)]
pub struct ActionOptions {
    pub env: String,
    pub actor: String,
    pub lock_wait: Duration,
    /// Overrides the service's health timeout.
    pub health_timeout: Option<Duration>,
    /// Cancelled by Ctrl-C, SIGTERM or SIGHUP (see `release::signals`): honoured up to the
    /// switch, after which the deploy completes.
    pub cancel: CancellationToken,
    /// The watch window after the switch (issue 13): `None` is the service's `watch` for a
    /// deploy and none for a rollback; zero turns it off.
    pub watch: Option<Duration>,
    /// A canary share (1..=99 %) instead of a full switch.
    pub canary: Option<u8>,
    /// Take over a stale lock (or one whose process is gone) instead of refusing; audited.
    pub take_over_stale: bool,
}

/// How one host's action ended, with the time each step took (for the benchmark and the UI).
#[derive(Debug, Clone, Serialize)]
pub struct HostOutcome {
    pub host: String,
    pub plan: DeployPlan,
    pub duration_ms: u64,
    pub step_ms: Vec<(Step, u64)>,
    pub pulled: bool,
    /// The share it was deployed with when it is a canary (issue 13).
    pub canary: Option<u8>,
    /// The service read back at the end of the run, beside its audit record (`None`: not
    /// read; the runner reads it).
    #[serde(skip)]
    pub after: Option<Result<ServiceStatus, String>>,
}

/// Deploys `tag` on one host.
pub async fn deploy_on_host(
    host: Arc<Host>,
    service: &Service,
    tag: &str,
    opts: &ActionOptions,
    events: &EventSink,
) -> Result<HostOutcome, ReleaseError> {
    run(
        host,
        service,
        Target::Ref(tag.to_string()),
        Action::Deploy,
        opts,
        events,
    )
    .await
}

/// Rolls back on one host: to the previous release by default.
pub async fn rollback_on_host(
    host: Arc<Host>,
    service: &Service,
    target: Target,
    opts: &ActionOptions,
    events: &EventSink,
) -> Result<HostOutcome, ReleaseError> {
    run(host, service, target, Action::Rollback, opts, events).await
}

/// Runs the plan the operator confirmed, pinned (`DeployPlan::pin`): its target, and only while
/// the host still looks the way it did (what served before). If it changed under the lock (a
/// colleague's deploy during the prompt), nothing is done and the error says what changed.
pub async fn run_pinned(
    host: Arc<Host>,
    service: &Service,
    pinned: &Pinned,
    opts: &ActionOptions,
    events: &EventSink,
) -> Result<HostOutcome, ReleaseError> {
    run_inner(
        host,
        service,
        Target::Ref(pinned.to_sha.clone()),
        pinned.action,
        Some(pinned.clone()),
        None,
        opts,
        events,
    )
    .await
}

/// [`run_pinned`] on a host locked and read while planning (`locked_plan`): that read is
/// the one under the lock, so the host is not read again.
pub async fn run_pinned_locked(
    host: Arc<Host>,
    service: &Service,
    pinned: &Pinned,
    locked: LockedRead,
    opts: &ActionOptions,
    events: &EventSink,
) -> Result<HostOutcome, ReleaseError> {
    run_inner(
        host,
        service,
        Target::Ref(pinned.to_sha.clone()),
        pinned.action,
        Some(pinned.clone()),
        Some(locked),
        opts,
        events,
    )
    .await
}

/// Runs any action on one host (deploy, rollback, forced redeploy), planned under the lock.
pub async fn run(
    host: Arc<Host>,
    service: &Service,
    target: Target,
    action: Action,
    opts: &ActionOptions,
    events: &EventSink,
) -> Result<HostOutcome, ReleaseError> {
    run_inner(host, service, target, action, None, None, opts, events).await
}

#[allow(clippy::too_many_arguments)]
async fn run_inner(
    host: Arc<Host>,
    service: &Service,
    target: Target,
    action: Action,
    pinned: Option<Pinned>,
    locked: Option<LockedRead>,
    opts: &ActionOptions,
    events: &EventSink,
) -> Result<HostOutcome, ReleaseError> {
    let started = Instant::now();
    let mut r = StepRecorder::new(&host, events);
    let what = match &target {
        Target::Ref(t) => format!("{} {t}", action.as_str()),
        Target::Previous => format!("{} to previous", action.as_str()),
    };
    let req = LockRequest {
        service: &service.name,
        action: &what,
        actor: &opts.actor,
        env: &opts.env,
        wait: opts.lock_wait,
        take_over_stale: opts.take_over_stale,
    };
    let (held, pre_read) = match locked {
        Some(l) => {
            // Taken while planning: the lock step says so, with the time it took then.
            r.events.emit(Event::StepStarted {
                host: host.name().to_string(),
                step: Step::Lock,
                detail: format!("{} on {}", service.name, host.name()),
            });
            r.lock_lost = Some(l.held.lost_flag());
            r.steps.push((Step::Lock, l.lock_ms));
            r.events.emit(Event::StepFinished {
                host: host.name().to_string(),
                step: Step::Lock,
                elapsed_ms: l.lock_ms,
                detail: "taken with the plan".into(),
                // Its round trips were the plan's (counted there).
                trips: None,
            });
            (l.held, Some((l.status, l.set_aside, l.ledger)))
        }
        None => (r.take_lock(&host, &service.name, &req).await?, None),
    };

    let mut record = AuditRecord::now(
        &opts.actor,
        &opts.env,
        host.name(),
        &service.name,
        action.as_str(),
    );
    // Boxed: the steps' future is large (a debug build overflowed a test thread's stack).
    let result = Box::pin(run_locked(
        &mut r,
        &held,
        service,
        &target,
        action,
        pinned.as_ref(),
        pre_read,
        opts,
        &mut record,
    ))
    .await;
    record.duration_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    match &result {
        Ok((plan, _)) if plan.noop => record.outcome = AuditOutcome::Noop,
        Ok(_) if opts.canary.is_some() => record.outcome = AuditOutcome::Canary,
        Ok(_) => record.outcome = AuditOutcome::Success,
        Err(e) => {
            record.outcome = match e {
                ReleaseError::Aborted { .. } => AuditOutcome::Aborted,
                ReleaseError::Changed { .. } => AuditOutcome::Refused,
                ReleaseError::RolledBack { .. } => AuditOutcome::RolledBack,
                ReleaseError::WatchInterrupted { .. } => AuditOutcome::WatchInterrupted,
                _ => AuditOutcome::Failed,
            };
            record.error = Some(e.to_string());
        }
    }
    let after =
        audit_unlock::record_and_unlock(&mut r, &host, service, held, &record, result.is_ok())
            .await;

    let (plan, pulled) = result?;
    Ok(HostOutcome {
        host: host.name().to_string(),
        plan,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        step_ms: r.steps,
        pulled,
        canary: opts.canary,
        after,
    })
}

/// The run under the lock, in order: inspect and plan (`inspect`), the steps on the idle
/// color (`pre_switch`), the switch and its confirm (`switch`), the watch window, the drain and
/// stop of the old color (`drain`), and the auto-prune.
#[allow(clippy::too_many_arguments)]
async fn run_locked(
    r: &mut StepRecorder<'_>,
    held: &HeldLock,
    service: &Service,
    target: &Target,
    action: Action,
    pinned: Option<&Pinned>,
    pre_read: Option<(ServiceStatus, Option<String>, Ledger)>,
    opts: &ActionOptions,
    record: &mut AuditRecord,
) -> Result<(DeployPlan, bool), ReleaseError> {
    let host = r.host;
    let inspect::Inspected {
        status,
        mut ledger,
        plan,
        start_guarded,
        pre_inspected,
    } = inspect::inspect(r, held, service, target, action, pinned, pre_read, record).await?;
    if plan.noop {
        r.info(plan.summary());
        return Ok((plan, false));
    }
    if plan.finish_only {
        r.info(plan.summary());
        switch::reassert_route(r, held, service, &plan, &status).await?;
        drain_and_stop_old(r, held, service, &plan, None, None).await;
        return Ok((plan, false));
    }
    let live_note = match (&plan.from_color, &plan.from_sha) {
        (Some(c), Some(s)) => format!("{s} ({c}) still serves"),
        (Some(c), None) => format!("{c} still serves"),
        _ => "nothing was serving before either".to_string(),
    };
    if let Some(msg) = watch::canary_refusal(opts, &plan, &status) {
        return Err(ReleaseError::Plan {
            host: host.name().to_string(),
            message: msg,
        });
    }
    // A deploy of another release during a canary: the canary's container is about to be
    // replaced, so the stable color takes all traffic first.
    if let Some(k) = &status.canary
        && k.sha != plan.to_sha
        && let Some(stable) = previous_route(&plan)
    {
        r.info(format!(
            "ending the canary of {} ({}): {} takes all traffic",
            k.sha, k.color, stable.color
        ));
        proxy::switch(host, service, &stable, None).await?;
    }
    let previous = previous_route(&plan);
    let mut pre = PreSwitch::default();
    if let Err(e) = pre_switch::run(
        r,
        held,
        service,
        &plan,
        opts,
        &live_note,
        start_guarded,
        pre_inspected,
        previous.as_ref(),
        &mut pre,
    )
    .await
    {
        return Err(pre_switch::failed(r, held, service, &plan, &pre, live_note, e).await);
    }
    // From here on the deploy completes even if the operator presses Ctrl-C: a half switch
    // helps nobody, and the switch itself takes milliseconds.
    let release = switch::switch(
        r,
        held,
        service,
        &plan,
        action,
        opts,
        previous.as_ref(),
        &live_note,
        &mut pre,
    )
    .await?;
    let window = opts.watch.unwrap_or(match action {
        Action::Rollback => Duration::ZERO,
        _ => service.watch.window,
    });
    let watching = plan.from_color.is_some()
        && previous.is_some()
        && (!window.is_zero() || opts.canary.is_some());
    // Without a watch or a canary the old color drains from now on, beside the confirm: the
    // drain and the lock check only read, and count only once the confirm has passed.
    let host = r.host;
    let (from, drain_now) = (plan.from_color, !watching && opts.canary.is_none());
    let early = async move {
        match from {
            Some(old) if drain_now => Some(drain::early(host, held, service, old).await),
            _ => None,
        }
    };
    tokio::pin!(early);
    let mut drained_early = None;
    let confirmed = {
        let confirm = switch::confirm(
            r,
            service,
            &plan,
            previous.as_ref(),
            &live_note,
            &mut ledger,
            release,
        );
        tokio::pin!(confirm);
        loop {
            tokio::select! {
                confirmed = &mut confirm => break confirmed,
                e = &mut early, if drained_early.is_none() => drained_early = Some(e),
            }
        }
    };
    // A failed confirm put the old route back: the drain that began beside it is dropped.
    let release = confirmed?;
    let drained_early = match drained_early {
        Some(e) => e,
        None => early.await,
    };
    let pulled = pre.pulled;
    // Written with the switch's outcome: what serves now, and how the one before ended. A
    // canary is not live in the ledger: the stable color stays the route until `promote`.
    let canary_release = if opts.canary.is_some() {
        Some(release)
    } else {
        ledger.went_live(
            release,
            if action == Action::Rollback {
                Ending::RolledBack
            } else {
                Ending::Replaced
            },
        );
        None
    };

    // Without a watch the ledger is written while the old color drains (it is independent of
    // the drain and the stop); before a watch it must be on the host first.
    if watching && canary_release.is_none() {
        save_ledger(r, service, &ledger).await;
    }
    if let (Some(old), Some(prev)) = (plan.from_color, &previous)
        && watching
    {
        guard(r, held, service, Step::Watch).await?;
        let watched = watch::after_switch(r, service, &plan, old, prev, window, opts, record).await;
        if matches!(watched, Err(ReleaseError::RolledBack { .. })) {
            // The ledger says the new release ended "rolled back automatically" and the one
            // before serves again, so a later rollback does not go *to* the failed release.
            match canary_release {
                Some(rel) => ledger.record_reverted(rel, &now_rfc3339()),
                None => ledger.switched_back_by_watch(&now_rfc3339()),
            }
            save_ledger(r, service, &ledger).await;
        }
        watched?;
        if opts.canary.is_some() {
            r.info(format!(
                "the canary passed its watch; it stays at {} % until `deckhand promote` (or `deckhand rollback` to abort)",
                opts.canary.unwrap_or_default()
            ));
            return Ok((plan, pulled));
        }
    }
    let write_now = (!watching && opts.canary.is_none()).then_some(&ledger);
    drain_and_stop_old(r, held, service, &plan, write_now, drained_early).await;

    if service.auto_prune && action != Action::Rollback {
        let t = r.start(Step::Prune, format!("keep {}", service.keep_images));
        match read_service(host, service).await {
            Ok(st) => {
                let keep = prune::ledger_keeps(&ledger, &st);
                let p = prune::plan_prune_keeping(host.name(), &st, service.keep_images, &keep);
                let res = match held.ensure_held(host).await {
                    Ok(()) => prune::execute(host, service, &p).await,
                    Err(now) => Err(ReleaseError::Refused(format!(
                        "the lock is no longer ours ({now})"
                    ))),
                };
                match res {
                    Ok(removed) => r.finish(Step::Prune, t, format!("removed {}", removed.len())),
                    Err(e) => {
                        r.info(format!("WARNING: auto-prune failed: {e}"));
                        r.finish(Step::Prune, t, "failed");
                    }
                }
            }
            Err(e) => r.info(format!("WARNING: auto-prune skipped: {e}")),
        }
    }
    Ok((plan, pulled))
}

/// What serves on the host right now, read back (never assumed from the plan).
async fn served_now(host: &Host, service: &Service) -> String {
    match read_service(host, service).await {
        Ok(st) => match (
            st.live_color,
            st.live_color
                .and_then(|c| st.color(c))
                .and_then(|c| c.sha.clone())
                .or(st.live_sha),
        ) {
            (Some(c), Some(sha)) => format!("{sha} ({c}) serves"),
            (Some(c), None) => format!("{c} serves"),
            _ => "nothing serves".to_string(),
        },
        Err(e) => format!("what serves now could not be read: {e}"),
    }
}

/// Before a step that changes a container or the proxy: the lock must still be ours.
async fn guard(
    r: &StepRecorder<'_>,
    held: &HeldLock,
    service: &Service,
    step: Step,
) -> Result<(), ReleaseError> {
    match held.ensure_held(r.host).await {
        Ok(()) => Ok(()),
        Err(now) => {
            let e = ReleaseError::LockLost {
                host: r.host.name().to_string(),
                service: service.name.clone(),
                now,
                step: step.label().to_string(),
                live_note: served_now(r.host, service).await,
            };
            r.fail(step, &e);
            Err(e)
        }
    }
}

/// Writes the ledger; a failure is a warning (the next run reconciles from the proxy).
async fn save_ledger(r: &StepRecorder<'_>, service: &Service, l: &Ledger) {
    if let Err(e) = ledger::write(r.host, &service.name, l).await {
        r.info(format!(
            "WARNING: the release ledger could not be written ({e}); the next run reconciles it from what the proxy serves"
        ));
    }
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn check_cancel(opts: &ActionOptions, host: &Host, live_note: &str) -> Result<(), ReleaseError> {
    if opts.cancel.is_cancelled() {
        Err(ReleaseError::Aborted {
            host: host.name().to_string(),
            live_note: live_note.to_string(),
        })
    } else {
        Ok(())
    }
}

/// The route that served before the plan, if any: what a failed switch goes back to.
fn previous_route(plan: &DeployPlan) -> Option<ProxyRoute> {
    Some(ProxyRoute {
        color: plan.from_color?,
        sha: plan.from_sha.clone().unwrap_or_else(|| "?".into()),
    })
}
