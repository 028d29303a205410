//! Deploy and rollback on a Swarm, under the droplet's lock, audit log and ledger (kept in the
//! manager's state directory). The plan is the droplet planner's (`release::plan`) on the
//! `ServiceStatus` read from the Swarm, so plans, pins, "previous" and the confirmation are
//! the same; the steps are Swarm's:
//!
//! lock → inspect → overlay network → proxy service (pinned to the manager) → the target
//! color's service at the SHA with N replicas (or the kept one scaled up for a rollback) →
//! wait until N tasks of that spec run (Swarm waits for the image's HEALTHCHECK) and each
//! answers `/health` from the proxy's container → the proxy has resolved them → switch in
//! HAProxy's memory and file (one exec) → confirm through the public port → ledger → the
//! watch window (`watch`: the old color's replicas stay up; a breach switches back) → drain the
//! old color → scale it to zero (its spec is kept for the next rollback) → audit → unlock.
//! Anything that fails before the switch scales the new color back to zero: the old one
//! serves untouched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::{Task, TaskState};

use super::spec::{ColorRelease, color_spec, with_replicas};
use super::status::ServiceRead;
use super::{SwarmError, api, haproxy, names};
use crate::config::Service;
use crate::release::audit::{self, AuditOutcome, AuditRecord};
use crate::release::execute::{ledger_for_plan, plan_from};
use crate::release::ledger::{self, Ending, Ledger};
use crate::release::lock::{HeldLock, LockRequest};
use crate::release::plan::{Action, Pinned, Target};
use crate::release::{ActionOptions, DeployPlan, EventSink, HostOutcome, ReleaseError, Step};
use crate::state::proxy_conf::Canary;
use crate::transport::Host;

fn replicas(host: &Host) -> u32 {
    host.spec.swarm.as_ref().map_or(1, |s| s.replicas)
}

async fn read_now(host: &Host, service: &Service) -> Result<ServiceRead, SwarmError> {
    api::manager_node_id(host).await?;
    let nodes = api::nodes(host).await?;
    let names = nodes
        .iter()
        .filter_map(|n| Some((n.id.clone()?, n.description.as_ref()?.hostname.clone()?)))
        .collect();
    super::status::read(host, service, &names).await
}

/// Plans on the manager without changing anything (the runner's first phase).
pub async fn plan_on_host(
    host: &Host,
    service: &Service,
    target: &Target,
    action: Action,
    canary: Option<u8>,
) -> Result<DeployPlan, ReleaseError> {
    let read = read_now(host, service).await?;
    let ledger = ledger_for_plan(
        host,
        ledger::read(host, &service.name).await,
        target,
        action,
    )?;
    let mut plan = plan_from(host, &read.status, &ledger, service, target, action)?;
    if let Some(message) = super::canary::refusal(canary, &plan, &read.status) {
        return Err(ReleaseError::Plan {
            host: host.name().to_string(),
            message,
        });
    }
    plan.note = Some(format!(
        "Swarm: {} with {} replica(s) behind {}; the old color is scaled to 0 after the watch window and the drain",
        names::color_service(service, plan.to_color),
        replicas(host),
        names::proxy_service(service)
    ));
    Ok(plan)
}

/// Step events and their times: the droplet engine's recorder.
type Recorder<'a> = crate::release::steps::StepRecorder<'a>;

/// Runs the confirmed plan on the manager, pinned like `execute::run_pinned`.
pub async fn run_pinned(
    host: Arc<Host>,
    service: &Service,
    pinned: &Pinned,
    opts: &ActionOptions,
    events: &EventSink,
) -> Result<HostOutcome, ReleaseError> {
    let started = Instant::now();
    let mut r = Recorder::new(&host, events);
    let what = format!("{} {}", pinned.action.as_str(), pinned.to_sha);
    let req = LockRequest {
        service: &service.name,
        action: &what,
        actor: &opts.actor,
        env: &opts.env,
        wait: opts.lock_wait,
        take_over_stale: opts.take_over_stale,
    };
    let held = r.take_lock(&host, &service.name, &req).await?;
    let mut record = AuditRecord::now(
        &opts.actor,
        &opts.env,
        host.name(),
        &service.name,
        pinned.action.as_str(),
    );
    let result = run_locked(&mut r, &held, service, pinned, opts, &mut record).await;
    record.duration_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    match &result {
        Ok(plan) if plan.noop => record.outcome = AuditOutcome::Noop,
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
    let t = r.start(Step::Audit, record.outcome.to_string());
    if let Err(e) = audit::append(&host, &record).await {
        r.info(format!("WARNING: could not write the audit log: {e}"));
    }
    r.finish(Step::Audit, t, "");
    let t = r.start(Step::Unlock, "");
    if let Err(e) = held.release(&host).await {
        r.info(format!(
            "WARNING: could not release the lock: {e}; clear it with deckhand unlock"
        ));
    }
    r.finish(Step::Unlock, t, "");
    let plan = result?;
    Ok(HostOutcome {
        host: host.name().to_string(),
        plan,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        step_ms: r.steps,
        pulled: false,
        canary: opts.canary,
        after: None,
    })
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn guard(
    r: &Recorder<'_>,
    held: &HeldLock,
    service: &Service,
    step: Step,
    opts: &ActionOptions,
) -> Result<(), ReleaseError> {
    if opts.cancel.is_cancelled() {
        let e = ReleaseError::Aborted {
            host: r.host.name().to_string(),
            live_note: "the old release still serves".into(),
        };
        r.fail(step, &e);
        return Err(e);
    }
    if let Err(now) = held.ensure_held(r.host).await {
        let e = ReleaseError::LockLost {
            host: r.host.name().to_string(),
            service: service.name.clone(),
            now,
            step: step.label().to_string(),
            live_note: "the old release still serves".into(),
        };
        r.fail(step, &e);
        return Err(e);
    }
    Ok(())
}

/// The steps under the lock; returns the plan that ran.
async fn run_locked(
    r: &mut Recorder<'_>,
    held: &HeldLock,
    service: &Service,
    pinned: &Pinned,
    opts: &ActionOptions,
    record: &mut AuditRecord,
) -> Result<DeployPlan, ReleaseError> {
    let host = r.host;
    let n = replicas(host);
    let t = r.start(Step::Inspect, "");
    let read = async {
        let read = read_now(host, service).await?;
        let (ledger, set_aside) = ledger::read_for_update(host, &service.name).await?;
        Ok::<_, ReleaseError>((read, ledger, set_aside))
    };
    let (read, mut ledger, set_aside) = match read.await {
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
    if ledger.reconcile(&read.status, &now_rfc3339()) {
        r.info("the release ledger was behind what the proxy serves; reconciled".to_string());
        save_ledger(r, service, &ledger).await;
    }
    let target = Target::Ref(pinned.to_sha.clone());
    let plan =
        plan_from(host, &read.status, &ledger, service, &target, pinned.action).and_then(|p| {
            match pinned.differences(&p) {
                Some(what) => Err(ReleaseError::Changed {
                    host: host.name().to_string(),
                    what,
                }),
                None => Ok(p),
            }
        });
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            r.fail(Step::Inspect, &e);
            return Err(e);
        }
    };
    r.finish(Step::Inspect, t, plan.summary());
    record.from_sha = plan.from_sha.clone();
    record.to_sha = Some(plan.to_sha.clone());
    let mut started_record = record.clone();
    started_record.outcome = AuditOutcome::Started;
    started_record.details = Some(plan.summary());
    if let Err(e) = audit::append(host, &started_record).await {
        r.info(format!("WARNING: could not write the audit log: {e}"));
    }
    if plan.noop {
        r.info(plan.summary());
        return Ok(plan);
    }
    let to = plan.to_color;
    let from = plan.from_color;
    if let Some(message) = super::canary::refusal(opts.canary, &plan, &read.status) {
        let e = ReleaseError::Plan {
            host: host.name().to_string(),
            message,
        };
        r.fail(Step::Inspect, &e);
        return Err(e);
    }

    // Network and proxy: needed before the new color (its health is probed from the proxy).
    guard(r, held, service, Step::Network, opts).await?;
    let t = r.start(Step::Network, names::network(service));
    api::ensure_network(host, &names::network(service))
        .await
        .map_err(|e| fail(r, Step::Network, e.into()))?;
    r.finish(Step::Network, t, "");
    guard(r, held, service, Step::Proxy, opts).await?;
    let t = r.start(Step::Proxy, names::proxy_service(service));
    let live_route = read.swarm.live_color.and_then(|c| {
        read.status
            .color(c)
            .and_then(|s| s.sha.clone())
            .map(|sha| haproxy::Route { color: c, sha })
    });
    let proxy = super::proxy::ensure(host, service, n, &read, live_route.as_ref())
        .await
        .map_err(|e| fail(r, Step::Proxy, e.into()))?;
    r.finish(Step::Proxy, t, "");

    // A deploy of another release during a canary: the canary's color is about to get a new
    // spec, so the stable color takes all traffic first.
    if let (Some(k), Some(stable), false) = (&read.status.canary, &live_route, plan.finish_only)
        && k.sha != plan.to_sha
    {
        r.info(format!(
            "ending the canary of {} ({}): {} takes all traffic",
            k.sha, k.color, stable.color
        ));
        super::proxy::switch(host, service, &proxy, n, stable)
            .await
            .map_err(|e| fail(r, Step::Switch, e.into()))?;
    }
    let color_name = names::color_service(service, to);
    if plan.finish_only {
        // A run cut off after its switch left the old color running: the route is asserted
        // again below, then the old color drained and scaled down; the live one is untouched.
        r.info(plan.summary());
    } else {
        create_and_wait(r, held, service, &plan, &proxy, opts).await?;
    }
    // Switch (memory and file in one exec), then confirm through the public port.
    guard(r, held, service, Step::Switch, opts).await?;
    let t = r.start(
        Step::Switch,
        format!("{} → {to}", from.map_or("none".into(), |c| c.to_string())),
    );
    let route = haproxy::Route {
        color: to,
        sha: plan.to_sha.clone(),
    };
    let switched = match (opts.canary, &live_route) {
        (Some(percent), Some(stable)) => {
            let k = Canary {
                color: to,
                sha: plan.to_sha.clone(),
                percent,
            };
            let set = super::canary::set(host, service, &proxy, n, stable, &k).await;
            if set.is_err() {
                let _ = super::proxy::switch(host, service, &proxy, n, stable).await;
            }
            set
        }
        _ => super::proxy::switch(host, service, &proxy, n, &route).await,
    };
    if let Err(e) = switched {
        scale(host, &color_name, 0).await;
        let e = ReleaseError::Switch {
            host: host.name().to_string(),
            detail: e.to_string(),
            live_note: "the previous route was applied again".into(),
        };
        r.fail(Step::Switch, &e);
        return Err(e);
    }
    let switched_at = now_rfc3339();
    tracing::info!(host = host.name(), service = %service.name, color = %to, sha = %plan.to_sha, "swarm: switched");
    r.finish(Step::Switch, t, "");
    let t = r.start(Step::Confirm, format!("port {}", service.public_port));
    if let Err(detail) =
        crate::release::proxy::confirm(host, service, to, Duration::from_secs(10)).await
    {
        let back = match &live_route {
            Some(old) => super::proxy::switch(host, service, &proxy, n, old)
                .await
                .err(),
            None => None,
        };
        scale(host, &color_name, 0).await;
        let e = ReleaseError::Switch {
            host: host.name().to_string(),
            detail: format!(
                "{to} did not answer through port {}: {detail}",
                service.public_port
            ),
            live_note: match back {
                None => "the previous route was applied again".into(),
                Some(b) => format!("switching back failed too: {b}"),
            },
        };
        r.fail(Step::Confirm, &e);
        return Err(e);
    }
    r.finish(Step::Confirm, t, "");
    let release = ledger::Release {
        sha: plan.to_sha.clone(),
        color: to,
        since: switched_at,
        by: opts.actor.clone(),
        action: plan.action.as_str().to_string(),
        until: None,
        ended: None,
        healthy: true,
        reconciled: false,
    };
    // A canary is not live in the ledger: the stable color stays the route until `promote`.
    let canary_release = opts.canary.is_some().then(|| release.clone());
    if !plan.finish_only && canary_release.is_none() {
        ledger.went_live(
            release,
            if plan.action == Action::Rollback {
                Ending::RolledBack
            } else {
                Ending::Replaced
            },
        );
        save_ledger(r, service, &ledger).await;
    }

    // The watch window (issue 16): the old color's replicas stay up until it passes.
    let window = super::watch::window(service, plan.action, opts);
    if let (Some(previous), false) = (
        live_route.as_ref().filter(|p| p.color != to),
        (window.is_zero() && opts.canary.is_none()) || plan.finish_only,
    ) {
        // Only the lock is checked here: a cancel ends the watch itself, with the right note
        // (the new release serves now).
        if let Err(now) = held.ensure_held(host).await {
            let e = ReleaseError::LockLost {
                host: host.name().to_string(),
                service: service.name.clone(),
                now,
                step: Step::Watch.label().to_string(),
                live_note: format!(
                    "{} serves and {} keeps its tasks up",
                    names::color_service(service, to),
                    names::color_service(service, previous.color)
                ),
            };
            r.fail(Step::Watch, &e);
            return Err(e);
        }
        let w = super::watch::Watched {
            proxy: &proxy,
            replicas: n,
            previous,
            // A canary is always watched: its point is the comparison.
            window: if window.is_zero() {
                service.watch.window.max(Duration::from_secs(1))
            } else {
                window
            },
            canary: opts.canary,
        };
        let watched = super::watch::after_switch(r, service, &plan, &w, opts, record).await;
        if matches!(watched, Err(ReleaseError::RolledBack { .. })) {
            // The failed release ended "rolled back automatically"; the one before serves
            // again, so a later rollback does not go *to* the failed release.
            match canary_release {
                Some(rel) => ledger.record_reverted(rel, &now_rfc3339()),
                None => ledger.switched_back_by_watch(&now_rfc3339()),
            }
            save_ledger(r, service, &ledger).await;
        }
        watched?;
        if let Some(p) = opts.canary {
            r.info(format!(
                "the canary passed its watch; it stays at {p} % until `deckhand promote` (or `deckhand rollback` to abort)"
            ));
            return Ok(plan);
        }
    }

    // Drain the old color, then scale it to zero (spec kept for a rollback).
    if let Some(old) = from.filter(|c| *c != to) {
        let t = r.start(Step::Drain, format!("{old}, at most {:?}", service.drain));
        let left = super::proxy::drain(host, &proxy, old, service.drain).await;
        r.finish(
            Step::Drain,
            t,
            if left == 0 {
                String::new()
            } else {
                format!("{left} request(s) still in flight at the limit")
            },
        );
        let t = r.start(Step::StopOld, names::color_service(service, old));
        scale(host, &names::color_service(service, old), 0).await;
        r.finish(Step::StopOld, t, "scaled to 0, spec kept");
    }
    if service.auto_prune && plan.action != Action::Rollback {
        auto_prune(r, held, service).await;
    }
    Ok(plan)
}

/// `auto_prune` after a deploy, as on droplets: the retention rule applied on every node under
/// the deploy's lock. A prune that fails is a warning: the release serves either way.
async fn auto_prune(r: &mut Recorder<'_>, held: &HeldLock, service: &Service) {
    let (host, events) = (r.host, r.events);
    let t = r.start(Step::Prune, format!("keep {}", service.keep_images));
    let pruned = async {
        let plan = super::prune::plan_on_host(host, service, service.keep_images).await?;
        held.ensure_held(host)
            .await
            .map_err(|now| ReleaseError::Refused(format!("the lock is no longer ours ({now})")))?;
        super::prune::run(host, service, &plan, events).await
    }
    .await;
    match pruned {
        Ok((removed, _)) => r.finish(
            Step::Prune,
            t,
            format!("removed {} image(s) across the nodes", removed.len()),
        ),
        Err(e) => {
            r.info(format!("WARNING: auto-prune failed: {e}"));
            r.finish(Step::Prune, t, "failed");
        }
    }
}

/// The target color at the SHA with N replicas, then healthy; scaled back to 0 on failure.
async fn create_and_wait(
    r: &mut Recorder<'_>,
    held: &HeldLock,
    service: &Service,
    plan: &DeployPlan,
    proxy: &super::proxy::ProxyHandle,
    opts: &ActionOptions,
) -> Result<(), ReleaseError> {
    let host = r.host;
    let n = replicas(host);
    let to = plan.to_color;
    let color_name = names::color_service(service, to);
    guard(r, held, service, Step::Create, opts).await?;

    let t = r.start(Step::Create, format!("{color_name}: {} × {n}", plan.image));
    let spec = match (plan.reuse_existing, api::spec_of(host, &color_name).await) {
        // A rollback scales the kept spec back up: same image, no new pull.
        (true, Ok(Some(kept))) => with_replicas(kept, n),
        _ => {
            let mut env: Vec<String> = service
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            env.extend(
                crate::release::container::read_env_file(host, service)
                    .await
                    .map_err(|e| fail(r, Step::Create, e))?,
            );
            color_spec(
                service,
                &ColorRelease {
                    color: to,
                    sha: &plan.to_sha,
                    replicas: n,
                    deployed_at: &now_rfc3339(),
                    deployed_by: &opts.actor,
                    env,
                },
            )
        }
    };
    // Tasks Swarm remembers from earlier runs (a failed deploy of this SHA) are not this
    // run's failures.
    let before: std::collections::HashSet<String> = api::tasks(host, service)
        .await
        .map_err(|e| fail(r, Step::Create, e.into()))?
        .into_iter()
        .filter_map(|t| t.id)
        .collect();
    api::apply(host, spec)
        .await
        .map_err(|e| fail(r, Step::Create, e.into()))?;
    r.finish(Step::Create, t, "");

    // Health: N tasks of this spec run (after the image's HEALTHCHECK) and answer /health.
    let t = r.start(Step::Health, format!("{n} task(s) of {color_name}"));
    let timeout = opts.health_timeout.unwrap_or(service.health_timeout);
    if let Err(e) = super::proxy::wait_healthy(
        host,
        service,
        proxy,
        &super::proxy::Wanted {
            color: to,
            sha: &plan.to_sha,
            replicas: n,
            earlier_tasks: &before,
        },
        timeout,
        &opts.cancel,
    )
    .await
    {
        let live_note = match &plan.from_sha {
            Some(s) => format!("{s} still serves"),
            None => "nothing served before".into(),
        };
        scale(host, &color_name, 0).await;
        let e = if opts.cancel.is_cancelled() {
            ReleaseError::Aborted {
                host: host.name().to_string(),
                live_note,
            }
        } else {
            ReleaseError::Unhealthy {
                host: host.name().to_string(),
                color: to.to_string(),
                sha: plan.to_sha.clone(),
                live_note: format!("{live_note}; {color_name} was scaled to 0 and kept"),
                report: e.to_string(),
            }
        };
        r.fail(Step::Health, &e);
        return Err(e);
    }
    r.finish(Step::Health, t, "");

    Ok(())
}

fn fail(r: &Recorder<'_>, step: Step, e: ReleaseError) -> ReleaseError {
    let e = ReleaseError::BeforeSwitch {
        source: Box::new(e),
        live_note: "the old release still serves".into(),
    };
    r.fail(step, &e);
    e
}

/// Scales a color's service, keeping the rest of its spec; best effort (logged).
pub(super) async fn scale(host: &Host, name: &str, n: u32) {
    let r = match api::spec_of(host, name).await {
        Ok(Some(spec)) => api::apply(host, with_replicas(spec, n)).await,
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => tracing::info!(service = name, replicas = n, "swarm: scaled"),
        Err(e) => tracing::warn!(service = name, replicas = n, error = %e, "swarm: scaling failed"),
    }
}

async fn save_ledger(r: &Recorder<'_>, service: &Service, l: &Ledger) {
    if let Err(e) = ledger::write(r.host, &service.name, l).await {
        r.info(format!(
            "WARNING: the release ledger could not be written ({e}); the next run reconciles it from what the proxy serves"
        ));
    }
}

/// Tasks of a color running the image `REPO:sha` that Swarm wants running, and how many
/// of that image failed.
pub(super) fn current_tasks<'a>(
    tasks: &'a [Task],
    color: crate::state::Color,
    image: &str,
    earlier: &std::collections::HashSet<String>,
) -> (Vec<&'a Task>, usize) {
    let of_spec: Vec<&Task> = tasks
        .iter()
        .filter(|t| {
            t.spec
                .as_ref()
                .and_then(|s| s.container_spec.as_ref())
                .and_then(|c| c.labels.as_ref())
                .and_then(|l| l.get(names::LABEL_COLOR))
                .is_some_and(|c| c == color.as_str())
        })
        .filter(|t| {
            t.spec
                .as_ref()
                .and_then(|s| s.container_spec.as_ref())
                .and_then(|c| c.image.as_deref())
                .is_some_and(|i| i == image || i.starts_with(&format!("{image}@")))
        })
        .collect();
    let failed = of_spec
        .iter()
        .filter(|t| t.id.as_ref().is_none_or(|id| !earlier.contains(id)))
        .filter(|t| {
            matches!(
                t.status.as_ref().and_then(|s| s.state),
                Some(TaskState::FAILED | TaskState::REJECTED)
            )
        })
        .count();
    let running = of_spec
        .into_iter()
        .filter(|t| {
            t.desired_state == Some(TaskState::RUNNING)
                && t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
        })
        .collect();
    (running, failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{TaskSpec, TaskSpecContainerSpec, TaskStatus};
    use std::collections::{HashMap, HashSet};

    fn task(id: &str, color: &str, image: &str, state: TaskState) -> Task {
        Task {
            id: Some(id.into()),
            desired_state: Some(if state == TaskState::RUNNING {
                TaskState::RUNNING
            } else {
                TaskState::SHUTDOWN
            }),
            status: Some(TaskStatus {
                state: Some(state),
                ..Default::default()
            }),
            spec: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(format!("{image}@sha256:0")),
                    labels: Some(HashMap::from([(
                        names::LABEL_COLOR.to_string(),
                        color.to_string(),
                    )])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_this_runs_tasks_of_the_color_and_image_count() {
        let tasks = [
            task("old-fail", "green", "r:b1", TaskState::FAILED),
            task("new-fail", "green", "r:b1", TaskState::FAILED),
            task("up", "green", "r:b1", TaskState::RUNNING),
            task("other-color", "blue", "r:b1", TaskState::RUNNING),
            task("other-image", "green", "r:a1", TaskState::RUNNING),
        ];
        let earlier = HashSet::from(["old-fail".to_string()]);
        let (running, failed) = current_tasks(&tasks, crate::state::Color::Green, "r:b1", &earlier);
        assert_eq!(running.len(), 1);
        assert_eq!(running[0].id.as_deref(), Some("up"));
        assert_eq!(
            failed, 1,
            "a failure Swarm remembers from an earlier run is not this run's"
        );
    }

    #[test]
    fn an_engine_that_is_no_manager_is_a_plan_error_with_the_fix() {
        let e: ReleaseError = SwarmError::NotManager {
            host: "mgr".into(),
            state: "swarm state: inactive".into(),
        }
        .into();
        let text = e.to_string();
        assert!(
            text.starts_with("mgr: this Docker engine is not a Swarm manager"),
            "{text}"
        );
        assert!(
            text.contains("Fix: point `swarm.manager` at a manager node"),
            "{text}"
        );
        assert!(matches!(e, ReleaseError::Plan { .. }));
    }
}
