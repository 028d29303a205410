//! Carrying out a deploy or rollback plan on one host, step by step, with events.
//!
//! The invariant: the old color serves until the new one is proven. Everything before the
//! switch only touches the idle color; a failure there stops the new container (kept for
//! inspection) and leaves the proxy alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::RestartPolicyNameEnum;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::audit::{self, AuditOutcome, AuditRecord};
use super::ledger::{self, Ending, Ledger};
use super::lock::{HeldLock, LockRequest};
use super::locked_plan::LockedRead;
use super::plan::{Action, DeployPlan, Pinned, Target, plan_deploy, plan_rollback};
use super::proxy::{self, docker_err};
use super::steps::StepRecorder;
use super::{
    Event, EventSink, ReleaseError, Step, container, health_wait, lock, prune, pull, watch,
};
use crate::config::Service;
use crate::state::contract::app_container;
use crate::state::proxy_api;
use crate::state::proxy_conf::ProxyRoute;
use crate::state::{Color, ServiceStatus, read_service};
use crate::transport::Host;
use crate::util::format_duration;

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

/// Plans an action on a connected host without changing anything (for dialogs and prompts).
/// The ledger is reconciled in memory only; the run under the lock writes it.
pub async fn plan_on_host(
    host: &Host,
    service: &Service,
    target: &Target,
    action: Action,
) -> Result<(DeployPlan, ServiceStatus), ReleaseError> {
    // The ledger is read beside the service (one remote command next to the Docker reads).
    let (status, ledger) = tokio::join!(
        read_service(host, service),
        ledger::read(host, &service.name)
    );
    let status = status.map_err(|e| docker_err(host, "read the service", e))?;
    let ledger = ledger_for_plan(host, ledger, target, action)?;
    let plan = plan_from(host, &status, &ledger, service, target, action)?;
    Ok((plan, status))
}

/// The ledger a plan uses: only a rollback to "previous" needs it, so an unreadable ledger
/// stops that plan and anything else plans without it.
pub(crate) fn ledger_for_plan(
    host: &Host,
    read: Result<Ledger, ReleaseError>,
    target: &Target,
    action: Action,
) -> Result<Ledger, ReleaseError> {
    match read {
        Ok(l) => Ok(l),
        Err(e @ ReleaseError::Ledger { .. })
            if action == Action::Rollback && *target == Target::Previous =>
        {
            Err(ReleaseError::Plan {
                host: host.name().to_string(),
                message: e.to_string(),
            })
        }
        Err(ReleaseError::Ledger { .. }) => Ok(Ledger::default()),
        Err(e) => Err(e),
    }
}

/// [`plan_from`] a status read without `/health` probes (`read_under_lock`): a plan depends on
/// a color's health only when that color serves the target already (nothing to do, or only
/// the other color to stop, if it is healthy), so that color alone is probed then and the
/// plan made again.
pub(crate) async fn plan_with_health(
    host: &Host,
    status: &mut ServiceStatus,
    ledger: &Ledger,
    service: &Service,
    target: &Target,
    action: Action,
) -> Result<DeployPlan, ReleaseError> {
    let plan = plan_from(host, status, ledger, service, target, action)?;
    let unprobed_target = status.live_color.filter(|c| {
        status
            .color(*c)
            .is_some_and(|s| s.health.is_none() && s.sha.as_deref() == Some(plan.to_sha.as_str()))
    });
    match unprobed_target {
        Some(c) => {
            crate::state::probe_color(host, service, status, c).await;
            plan_from(host, status, ledger, service, target, action)
        }
        None => Ok(plan),
    }
}

/// Plans from a service's status (a droplet's or a Swarm's) and its ledger.
pub(crate) fn plan_from(
    host: &Host,
    status: &ServiceStatus,
    ledger: &Ledger,
    service: &Service,
    target: &Target,
    action: Action,
) -> Result<DeployPlan, ReleaseError> {
    match (action, target) {
        (Action::Deploy | Action::Redeploy, Target::Ref(tag)) => {
            plan_deploy(status, service, host.name(), tag, action)
        }
        (Action::Deploy | Action::Redeploy, Target::Previous) => {
            Err("deploy needs a SHA or tag".to_string())
        }
        // A rollback during a canary aborts it: the stable color alone serves, the canary
        // is stopped (issue 13).
        (Action::Rollback, Target::Previous) if status.canary.is_some() => match &status.live_sha {
            Some(stable) => plan_deploy(status, service, host.name(), stable, action),
            None => Err("a canary runs but the stable color has no SHA label".to_string()),
        },
        (Action::Rollback, t) => plan_rollback(status, ledger, service, host.name(), t),
    }
    .map_err(|message| ReleaseError::Plan {
        host: host.name().to_string(),
        message,
    })
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
    let record_token = held.info.token.clone();

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
    // The record and the unlock matter even when the connection just died (that may be why the
    // action failed): one new connection is tried before giving up on them.
    let mut fresh: Option<Host> = None;
    let t = r.start(Step::Audit, record.outcome.to_string());
    // The end record and the unlock in one remote command; each part that did not get done
    // is done again on its own, through a new connection when this one broke.
    // What serves now is read back beside it when the run got through (the runner reports
    // it; after a failure the runner reads it itself).
    let (batched, after) = if result.is_ok() {
        let (b, st) = tokio::join!(
            super::batch::audit_and_release(&host, &record, &held),
            crate::state::read_serving(&host, service)
        );
        (b, Some(st.map_err(|e| crate::util::error_chain(&e))))
    } else {
        (
            super::batch::audit_and_release(&host, &record, &held).await,
            None,
        )
    };
    if !batched.audited {
        let retry_here = batched.lock.is_some();
        let done_here = retry_here && audit::append(&host, &record).await.is_ok();
        if !done_here {
            fresh = reconnect(&r, &host).await;
            match &fresh {
                Some(h) => {
                    if let Err(e) = audit::append(h, &record).await {
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
            None => held.release(&host).await,
        }
    };
    if released.is_err() {
        let retry = match fresh.take() {
            Some(h) => Some(h),
            None => reconnect(&r, &host).await,
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

/// What a run reads once it holds the lock: the service and its ledger (an unreadable one set
/// aside, which is why the lock must be held), together. Without the colors' `/health`
/// (`state::read_for_plan`): [`plan_with_health`] asks for it when the plan depends on it.
pub(crate) async fn read_under_lock(
    host: &Host,
    service: &Service,
) -> Result<(ServiceStatus, Option<String>, Ledger), ReleaseError> {
    let (status, ledger) = tokio::join!(
        crate::state::read_for_plan(host, service),
        ledger::read_for_update(host, &service.name)
    );
    let status = status.map_err(|e| docker_err(host, "read the service", e))?;
    let (ledger, set_aside) = ledger?;
    Ok((status, set_aside, ledger))
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
    let t = r.start(Step::Inspect, "");
    let read = async {
        match pre_read {
            Some(v) => Ok(v),
            None => read_under_lock(host, service).await,
        }
    };
    let (mut status, set_aside, mut ledger) = match read.await {
        Ok(v) => v,
        Err(e) => {
            r.fail(Step::Inspect, &e);
            return Err(e);
        }
    };
    if let Some(why) = set_aside {
        r.info(format!(
            "WARNING: {why}; it was set aside and the ledger starts again from what serves"
        ));
    }
    // A run killed after its switch left the ledger behind the proxy: catch up first.
    if ledger.reconcile(&status, &now_rfc3339()) {
        r.info("the release ledger was behind what the proxy serves (a run was interrupted after its switch); reconciled".to_string());
        save_ledger(r, service, &ledger).await;
    }
    let plan = match plan_with_health(host, &mut status, &ledger, service, target, action).await {
        Ok(p) => p,
        Err(e) => {
            r.fail(Step::Inspect, &e);
            return Err(e);
        }
    };
    if let Some(what) = pinned.and_then(|p| p.differences(&plan)) {
        let e = ReleaseError::Changed {
            host: host.name().to_string(),
            what,
        };
        r.fail(Step::Inspect, &e);
        return Err(e);
    }
    r.finish(Step::Inspect, t, plan.summary());
    record.from_sha = plan.from_sha.clone();
    record.to_sha = Some(plan.to_sha.clone());
    // The start of the action is on the record before anything changes, so an action that is
    // killed half-way still shows up in the audit log.
    let mut started_record = record.clone();
    started_record.outcome = AuditOutcome::Started;
    started_record.details = Some(plan.summary());
    // A rollback to a kept container changes nothing before its start: the start record and
    // the lock check before the start go out as one command.
    let batch_start =
        plan.reuse_existing && !plan.noop && !plan.finish_only && status.canary.is_none();
    let mut start_guarded = false;
    // The container about to be started, looked at beside that command (read-only).
    let mut pre_inspected = None;
    if batch_start {
        let target = app_container(service, plan.to_color);
        let (b, ins) = tokio::join!(
            super::batch::audit_and_check(host, &started_record, held),
            host.docker.inspect_container(&target, None)
        );
        pre_inspected = Some(ins.ok());
        if !b.audited
            && let Err(e) = audit::append(host, &started_record).await
        {
            r.info(format!("WARNING: could not write the audit log: {e}"));
        }
        // Anything but "ok" (lost, or the command did not run): the guard before the start
        // checks again on its own and says who holds the lock.
        start_guarded = b.lock.as_deref() == Some("ok");
    } else if let Err(e) = audit::append(host, &started_record).await {
        r.info(format!("WARNING: could not write the audit log: {e}"));
    }
    if plan.noop {
        r.info(plan.summary());
        return Ok((plan, false));
    }
    if plan.finish_only {
        r.info(plan.summary());
        // Re-assert the route before stopping anything: the interrupted run may have died
        // half-way through the switch.
        let t = r.start(
            Step::Switch,
            format!("make sure the proxy serves {}", plan.to_color),
        );
        guard(r, held, service, Step::Switch).await?;
        // A canary being aborted: both colors are in rotation, so the cheap check through the
        // public port proves nothing; the stable color is made the only one.
        if status.canary.is_some() {
            let route = ProxyRoute {
                color: plan.to_color,
                sha: plan.to_sha.clone(),
            };
            proxy::switch(host, service, &route, None)
                .await
                .inspect_err(|e| r.fail(Step::Switch, e))?;
        }
        ensure_route(host, service, &plan)
            .await
            .inspect_err(|e| r.fail(Step::Switch, e))?;
        r.finish(Step::Switch, t, "");
        drain_and_stop_old(r, held, service, &plan, None).await;
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
    let new_name = app_container(service, plan.to_color);
    let mut pulled = false;
    let mut started_new = false;
    // The container this run made or started, by id: after a lost lock, the name may already
    // belong to someone else's container.
    let mut ours: Option<String> = None;
    let mut restarts_before: Option<i64> = None;
    let mut new_addr: Option<String> = None;
    let mut proxy_seen = None;
    let mut prepared_switch = None;
    let previous = previous_route(&plan);

    let pre_switch = async {
        if !plan.reuse_existing {
            let t = r.start(Step::Pull, plan.image.clone());
            pulled = pull::ensure_image(host, &plan.image, r.events)
                .await
                .inspect_err(|e| r.fail(Step::Pull, e))?;
            r.finish(
                Step::Pull,
                t,
                if pulled { "pulled" } else { "already present" },
            );
            check_cancel(opts, host, &live_note)?;

            let t = r.start(Step::Network, service.network_name());
            proxy::ensure_network(host, service)
                .await
                .inspect_err(|e| r.fail(Step::Network, e))?;
            r.finish(Step::Network, t, "");

            guard(r, held, service, Step::Create).await?;
            let t = r.start(Step::Create, new_name.clone());
            container::create_app(host, service, &plan, opts)
                .await
                .inspect_err(|e| r.fail(Step::Create, e))?;
            r.finish(Step::Create, t, "");
        }
        check_cancel(opts, host, &live_note)?;
        if !start_guarded {
            guard(r, held, service, Step::Start).await?;
        }
        let ins = match pre_inspected.take() {
            Some(ins) if start_guarded => ins,
            _ => host.docker.inspect_container(&new_name, None).await.ok(),
        };
        restarts_before = ins.as_ref().and_then(|i| i.restart_count);
        ours = ins.and_then(|i| i.id);
        let t = r.start(Step::Start, new_name.clone());
        host.docker
            .start_container(&new_name, None)
            .await
            .or_else(|e| match e {
                // Already running (a converging re-run): fine.
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 304, ..
                } => Ok(()),
                e => Err(docker_err(host, &format!("start {new_name}"), e)),
            })
            .inspect_err(|e| r.fail(Step::Start, e))?;
        started_new = true;
        r.finish(Step::Start, t, "");

        let timeout = opts.health_timeout.unwrap_or(service.health_timeout);
        let t = r.start(Step::Health, format!("within {}", format_duration(timeout)));
        // The kept-alive connection through the public port that the confirm reuses after
        // the switch is opened while the new color starts (a new channel and a request: off
        // the path the release waits on). HAProxy keeps it open for 65 s.
        let (healthy, ()) = tokio::join!(
            health_wait::wait_healthy(
                r,
                service,
                &plan,
                timeout,
                opts,
                &live_note,
                restarts_before,
            ),
            proxy::open_public(host, service)
        );
        new_addr = healthy.inspect_err(|e| r.fail(Step::Health, e))?;
        r.finish(Step::Health, t, "");
        check_cancel(opts, host, &live_note)?;
        // The lock check before the proxy step, beside what changes nothing anyone else owns:
        // the proven container's restart policy (from now on Docker restarts it after a crash
        // or reboot). The execs of the switch and of the drain's first read are created here
        // too (that runs nothing): each is then one round trip instead of two.
        let proxy_name = service.proxy_container();
        let prepare = async {
            let route = ProxyRoute {
                color: plan.to_color,
                sha: plan.to_sha.clone(),
            };
            let canary_switch = opts.canary.is_some() && previous.is_some();
            let switch = async {
                match &new_addr {
                    Some(addr) if !canary_switch => {
                        proxy::prepare_switch(host, service, &route, addr).await
                    }
                    _ => None,
                }
            };
            let drain = async {
                if plan.from_color.is_some() {
                    proxy_api::prepare_cli(host, &proxy_name, &proxy_api::stat_command()).await;
                }
            };
            tokio::join!(switch, drain).0
        };
        let (held_now, policy, seen, prepared) = tokio::join!(
            guard(r, held, service, Step::Proxy),
            container::set_restart_policy(host, &new_name, RestartPolicyNameEnum::UNLESS_STOPPED),
            host.docker.inspect_container(&proxy_name, None),
            prepare,
        );
        proxy_seen = Some(seen);
        prepared_switch = prepared;
        held_now?;
        policy?;
        Ok::<(), ReleaseError>(())
    };
    if let Err(e) = pre_switch.await {
        if let ReleaseError::LockLost { .. } = e {
            // Someone else holds the service now: stop only what this run started, by id.
            if let Some(id) = &ours {
                container::stop_quietly(host, id, service).await;
                r.info(format!(
                    "stopped the container this run started ({new_name}, {}); nothing else was touched",
                    id.get(..12).unwrap_or(id)
                ));
            }
            return Err(match e {
                // The health wait saw the heartbeat's flag: say who holds it and what serves.
                ReleaseError::LockLost { live_note, .. } if live_note.is_empty() => {
                    match guard(r, held, service, Step::Health).await {
                        Err(e) => e,
                        Ok(()) => ReleaseError::LockLost {
                            host: host.name().to_string(),
                            service: service.name.clone(),
                            now: "the heartbeat found it removed".into(),
                            step: Step::Proxy.label().to_string(),
                            live_note: served_now(host, service).await,
                        },
                    }
                }
                e => e,
            });
        }
        if started_new || matches!(e, ReleaseError::Unhealthy { .. }) {
            container::stop_quietly(host, &new_name, service).await;
            r.info(format!(
                "stopped {new_name}; it is kept for inspection (docker logs {new_name})"
            ));
        }
        return Err(match e {
            e @ (ReleaseError::Unhealthy { .. } | ReleaseError::Aborted { .. }) => e,
            e => ReleaseError::BeforeSwitch {
                source: Box::new(e),
                live_note,
            },
        });
    }
    // From here on the deploy completes even if the operator presses Ctrl-C: a half switch
    // helps nobody, and the switch itself takes milliseconds.
    let route = ProxyRoute {
        color: plan.to_color,
        sha: plan.to_sha.clone(),
    };
    let t = r.start(Step::Proxy, service.proxy_container());
    let seen = match proxy_seen.take() {
        Some(seen) => seen,
        None => {
            host.docker
                .inspect_container(&service.proxy_container(), None)
                .await
        }
    };
    let proxy_started = match proxy::ensure_proxy_seen(
        host,
        service,
        &route,
        plan.proxy_change.as_deref(),
        r.events,
        seen,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            r.fail(Step::Proxy, &e);
            container::stop_quietly(host, &new_name, service).await;
            return Err(e);
        }
    };
    r.finish(
        Step::Proxy,
        t,
        if proxy_started { "started" } else { "running" },
    );

    // A proxy that was already running was only looked at: the check before the proxy step
    // still stands. One that was (re)started or replaced is checked for again.
    if proxy_started && let Err(e) = guard(r, held, service, Step::Switch).await {
        if let Some(id) = &ours {
            container::stop_quietly(host, id, service).await;
        }
        return Err(e);
    }
    let t = r.start(
        Step::Switch,
        format!(
            "{} → {}",
            plan.from_color.map_or("-", Color::as_str),
            plan.to_color
        ),
    );
    let switched_at = now_rfc3339();
    let switched = match (opts.canary, &previous) {
        (Some(percent), Some(stable)) => {
            let k = crate::state::proxy_conf::Canary {
                color: plan.to_color,
                sha: plan.to_sha.clone(),
                percent,
            };
            watch::canary::set(host, service, stable, &k)
                .await
                .map_err(|detail| ReleaseError::Switch {
                    host: host.name().to_string(),
                    detail,
                    live_note: live_note.clone(),
                })
        }
        _ if proxy_started => Ok(()),
        _ => {
            proxy::switch_at(
                host,
                service,
                &route,
                previous.as_ref(),
                new_addr.clone(),
                prepared_switch.take(),
            )
            .await
        }
    };
    if let Err(e) = switched {
        r.fail(Step::Switch, &e);
        if opts.canary.is_some()
            && let Some(stable) = &previous
        {
            let _ = proxy::switch(host, service, stable, None).await;
        }
        container::stop_quietly(host, &new_name, service).await;
        return Err(e);
    }
    r.finish(Step::Switch, t, "");
    r.events.emit(Event::Switched {
        host: host.name().to_string(),
        from: plan.from_color,
        to: plan.to_color,
    });
    let release = ledger::Release {
        sha: plan.to_sha.clone(),
        color: plan.to_color,
        since: switched_at.clone(),
        by: opts.actor.clone(),
        action: action.as_str().to_string(),
        until: None,
        ended: None,
        healthy: true,
        reconciled: false,
    };

    let t = r.start(Step::Confirm, format!("port {}", service.public_port));
    if let Err(detail) = proxy::confirm(host, service, plan.to_color, Duration::from_secs(10)).await
    {
        // Put the old route back if there was one (memory and disk); the new color is not
        // answering publicly. The note says what serves after that, as the proxy reports it.
        let note = match &previous {
            Some(prev) => match proxy::switch(host, service, prev, None).await {
                Ok(()) => {
                    ledger.record_reverted(release, &now_rfc3339());
                    save_ledger(r, service, &ledger).await;
                    format!("the previous route was restored: {live_note}")
                }
                Err(e) => format!("restoring the previous route failed: {e}"),
            },
            None => format!(
                "nothing was serving before; {}",
                proxy::what_serves(host, service).await
            ),
        };
        let e = ReleaseError::Switch {
            host: host.name().to_string(),
            detail,
            live_note: note,
        };
        r.fail(Step::Confirm, &e);
        return Err(e);
    }
    r.finish(Step::Confirm, t, format!("{} answers", plan.to_color));
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

    let window = opts.watch.unwrap_or(match action {
        Action::Rollback => Duration::ZERO,
        _ => service.watch.window,
    });
    let watching = plan.from_color.is_some()
        && previous.is_some()
        && (!window.is_zero() || opts.canary.is_some());
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
    drain_and_stop_old(r, held, service, &plan, write_now).await;

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

/// Makes the proxy serve the plan's color: a cheap check through the public port, and a switch only
/// when it answers with another color.
async fn ensure_route(
    host: &Host,
    service: &Service,
    plan: &DeployPlan,
) -> Result<(), ReleaseError> {
    if proxy::confirm(host, service, plan.to_color, Duration::ZERO)
        .await
        .is_ok()
    {
        return Ok(());
    }
    let route = ProxyRoute {
        color: plan.to_color,
        sha: plan.to_sha.clone(),
    };
    proxy::switch(host, service, &route, None).await?;
    proxy::confirm(host, service, plan.to_color, Duration::from_secs(10))
        .await
        .map_err(|detail| ReleaseError::Switch {
            host: host.name().to_string(),
            detail,
            live_note: "the other color was not stopped".into(),
        })
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

/// `ledger`, when given, is written beside the drain.
async fn drain_and_stop_old(
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
                super::batch::ledger_and_check(host, &service.name, l, held).await;
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
