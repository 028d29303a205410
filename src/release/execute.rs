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

use super::audit::{self, AuditRecord};
use super::plan::{Action, DeployPlan, Target, plan_deploy, plan_rollback};
use super::proxy::{self, docker_err};
use super::steps::StepRecorder;
use super::{
    Event, EventSink, ReleaseError, Step, container, health_wait, lock, prune, pull, watch,
};
use crate::config::Service;
use crate::state::contract::app_container;
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
    /// Cancelled by Ctrl-C: honoured up to the switch, after which the deploy completes.
    pub cancel: CancellationToken,
    /// The watch window after the switch (issue 13): `None` is the service's `watch` for a
    /// deploy and none for a rollback; zero turns it off.
    pub watch: Option<Duration>,
    /// A canary share (1..=99 %) instead of a full switch.
    pub canary: Option<u8>,
}

/// How one host's action ended, with the time each step took (for the benchmark and the UI).
#[derive(Debug, Clone, Serialize)]
pub struct HostOutcome {
    pub host: String,
    pub plan: DeployPlan,
    pub duration_ms: u64,
    pub step_ms: Vec<(Step, u64)>,
    pub pulled: bool,
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
pub async fn plan_on_host(
    host: &Host,
    service: &Service,
    target: &Target,
    action: Action,
) -> Result<(DeployPlan, ServiceStatus), ReleaseError> {
    let status = read_service(host, service)
        .await
        .map_err(|e| docker_err(host, "read the service", &e))?;
    let plan = match (action, target) {
        (Action::Deploy | Action::Redeploy, Target::Ref(tag)) => {
            plan_deploy(&status, service, host.name(), tag, action)
        }
        (Action::Deploy | Action::Redeploy, Target::Previous) => {
            Err("deploy needs a SHA or tag".to_string())
        }
        // A rollback during a canary aborts it: the stable color alone serves, the canary
        // is stopped (issue 13).
        (Action::Rollback, Target::Previous) if status.canary.is_some() => match &status.live_sha {
            Some(stable) => plan_deploy(&status, service, host.name(), stable, action),
            None => Err("a canary runs but the stable color has no SHA label".to_string()),
        },
        (Action::Rollback, t) => plan_rollback(&status, service, host.name(), t),
    }
    .map_err(|message| ReleaseError::Plan {
        host: host.name().to_string(),
        message,
    })?;
    Ok((plan, status))
}

/// Runs any action on one host (deploy, rollback, forced redeploy).
pub async fn run(
    host: Arc<Host>,
    service: &Service,
    target: Target,
    action: Action,
    opts: &ActionOptions,
    events: &EventSink,
) -> Result<HostOutcome, ReleaseError> {
    let started = Instant::now();
    let mut r = StepRecorder {
        host: &host,
        events,
        steps: Vec::new(),
    };
    let what = match &target {
        Target::Ref(t) => format!("{} {t}", action.as_str()),
        Target::Previous => format!("{} to previous", action.as_str()),
    };
    let t = r.start(Step::Lock, format!("{} on {}", service.name, host.name()));
    let held = match lock::acquire(&host, &service.name, &what, &opts.actor, opts.lock_wait).await {
        Ok(l) => l,
        Err(e) => {
            r.fail(Step::Lock, &e);
            return Err(e);
        }
    };
    r.finish(Step::Lock, t, "");
    let record_token = held.info.token.clone();

    let mut record = AuditRecord::now(
        &opts.actor,
        &opts.env,
        host.name(),
        &service.name,
        action.as_str(),
    );
    let result = run_locked(&mut r, service, &target, action, opts, &mut record).await;
    record.duration_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    match &result {
        Ok((plan, _)) if plan.noop => record.outcome = "noop".into(),
        Ok(_) if opts.canary.is_some() => record.outcome = "canary".into(),
        Ok(_) => record.outcome = "success".into(),
        Err(e @ ReleaseError::RolledBack { .. }) => {
            record.outcome = "rolled_back".into();
            record.error = Some(e.to_string());
        }
        Err(ReleaseError::WatchInterrupted { .. }) => {
            record.outcome = "watch_interrupted".into();
            record.error = result.as_ref().err().map(ToString::to_string);
        }
        Err(ReleaseError::Aborted { .. }) => {
            record.outcome = "aborted".into();
            record.error = result.as_ref().err().map(ToString::to_string);
        }
        Err(e) => {
            record.outcome = "failed".into();
            record.error = Some(e.to_string());
        }
    }
    // The record and the unlock matter even when the connection just died (that may be why the
    // action failed): one new connection is tried before giving up on them.
    let mut fresh: Option<Host> = None;
    let t = r.start(Step::Audit, record.outcome.clone());
    if audit::append(&host, &record).await.is_err() {
        fresh = reconnect(&r, &host).await;
        match &fresh {
            Some(h) => {
                if let Err(e) = audit::append(h, &record).await {
                    r.info(format!("WARNING: could not write the audit log: {e}"));
                }
            }
            None => r.info(
                "WARNING: the audit log could not be written: the host is unreachable".to_string(),
            ),
        }
    }
    r.finish(Step::Audit, t, "");
    let t = r.start(Step::Unlock, "");
    let released = match &fresh {
        Some(h) => held.release(h).await,
        None => held.release(&host).await,
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
    r.finish(Step::Unlock, t, "");
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
    })
}

async fn run_locked(
    r: &mut StepRecorder<'_>,
    service: &Service,
    target: &Target,
    action: Action,
    opts: &ActionOptions,
    record: &mut AuditRecord,
) -> Result<(DeployPlan, bool), ReleaseError> {
    let host = r.host;
    let t = r.start(Step::Inspect, "");
    let (plan, status) = match plan_on_host(host, service, target, action).await {
        Ok(p) => p,
        Err(e) => {
            r.fail(Step::Inspect, &e);
            return Err(e);
        }
    };
    r.finish(Step::Inspect, t, plan.summary());
    record.from_sha = plan.from_sha.clone();
    record.to_sha = Some(plan.to_sha.clone());
    // The start of the action is on the record before anything changes, so an action that is
    // killed half-way still shows up in the audit log.
    let mut started_record = record.clone();
    started_record.outcome = "started".into();
    started_record.details = Some(plan.summary());
    if let Err(e) = audit::append(host, &started_record).await {
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
        drain_and_stop_old(r, service, &plan).await;
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

            let t = r.start(Step::Create, new_name.clone());
            container::create_app(host, service, &plan, opts)
                .await
                .inspect_err(|e| r.fail(Step::Create, e))?;
            r.finish(Step::Create, t, "");
        }
        check_cancel(opts, host, &live_note)?;
        let t = r.start(Step::Start, new_name.clone());
        host.docker
            .start_container(&new_name, None)
            .await
            .or_else(|e| match e {
                // Already running (a converging re-run): fine.
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 304, ..
                } => Ok(()),
                e => Err(docker_err(host, &format!("start {new_name}"), &e)),
            })
            .inspect_err(|e| r.fail(Step::Start, e))?;
        started_new = true;
        r.finish(Step::Start, t, "");

        let timeout = opts.health_timeout.unwrap_or(service.health_timeout);
        let t = r.start(Step::Health, format!("within {}", format_duration(timeout)));
        health_wait::wait_healthy(r, service, &plan, timeout, opts, &live_note)
            .await
            .inspect_err(|e| r.fail(Step::Health, e))?;
        r.finish(Step::Health, t, "");
        check_cancel(opts, host, &live_note)?;
        Ok::<(), ReleaseError>(())
    };
    if let Err(e) = pre_switch.await {
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
    // Proven: from now on Docker restarts it after a crash or reboot.
    container::set_restart_policy(host, &new_name, RestartPolicyNameEnum::UNLESS_STOPPED).await?;

    // From here on the deploy completes even if the operator presses Ctrl-C: a half switch
    // helps nobody, and the switch itself takes milliseconds.
    let route = ProxyRoute {
        color: plan.to_color,
        sha: plan.to_sha.clone(),
    };
    let previous = previous_route(&plan);
    let t = r.start(Step::Proxy, service.proxy_container());
    let proxy_started = match proxy::ensure_proxy(
        host,
        service,
        &route,
        plan.proxy_change.as_deref(),
        r.events,
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

    let t = r.start(
        Step::Switch,
        format!(
            "{} → {}",
            plan.from_color.map_or("-", Color::as_str),
            plan.to_color
        ),
    );
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
        _ => proxy::switch(host, service, &route, previous.as_ref()).await,
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

    let t = r.start(Step::Confirm, format!("port {}", service.public_port));
    if let Err(detail) = proxy::confirm(host, service, plan.to_color, Duration::from_secs(10)).await
    {
        // Put the old route back if there was one (memory and disk); the new color is not
        // answering publicly. The note says what serves after that, as the proxy reports it.
        let note = match &previous {
            Some(prev) => match proxy::switch(host, service, prev, None).await {
                Ok(()) => format!("the previous route was restored: {live_note}"),
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

    let window = opts.watch.unwrap_or(match action {
        Action::Rollback => Duration::ZERO,
        _ => service.watch.window,
    });
    if let (Some(old), Some(prev)) = (plan.from_color, &previous)
        && (!window.is_zero() || opts.canary.is_some())
    {
        watch::after_switch(r, service, &plan, old, prev, window, opts, record).await?;
        if opts.canary.is_some() {
            r.info(format!(
                "the canary passed its watch; it stays at {} % until `deckhand promote` (or `deckhand rollback` to abort)",
                opts.canary.unwrap_or_default()
            ));
            return Ok((plan, pulled));
        }
    }
    drain_and_stop_old(r, service, &plan).await;

    if service.auto_prune && action != Action::Rollback {
        let t = r.start(Step::Prune, format!("keep {}", service.keep_images));
        match read_service(host, service).await {
            Ok(st) => {
                let p = prune::plan_prune(host.name(), &st, service.keep_images);
                match prune::execute(host, service, &p).await {
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

async fn drain_and_stop_old(r: &mut StepRecorder<'_>, service: &Service, plan: &DeployPlan) {
    let Some(old) = plan.from_color else {
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
    let d = proxy::drain(host, service, old, service.drain).await;
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
    let t = r.start(Step::StopOld, old_name.clone());
    match container::stop(host, &old_name, service).await {
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
