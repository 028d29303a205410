//! Everything before the switch touches only the idle color: pull, network, create, start,
//! the health wait, and the lock check before the proxy step beside the execs the switch and
//! the drain reuse. A failure here stops the new container (kept for inspection) and leaves
//! the proxy alone.

use bollard::models::{ContainerInspectResponse, RestartPolicyNameEnum};

use super::super::lock::HeldLock;
use super::super::plan::DeployPlan;
use super::super::proxy::{self, PreparedSwitch, docker_err};
use super::super::steps::StepRecorder;
use super::super::{ReleaseError, Step, container, health_wait, pull};
use super::{ActionOptions, check_cancel, guard, served_now};
use crate::config::Service;
use crate::state::contract::app_container;
use crate::state::proxy_api;
use crate::state::proxy_conf::ProxyRoute;
use crate::util::format_duration;

/// What the steps before the switch leave for the switch, and for the clean-up when one fails.
#[derive(Default)]
pub(super) struct PreSwitch {
    pub pulled: bool,
    pub started_new: bool,
    /// The container this run made or started, by id: after a lost lock, the name may already
    /// belong to someone else's container.
    pub ours: Option<String>,
    pub new_addr: Option<String>,
    pub proxy_seen: Option<Result<ContainerInspectResponse, bollard::errors::Error>>,
    pub prepared_switch: Option<PreparedSwitch>,
}

/// Runs the steps before the switch, filling `s` as they go.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    r: &mut StepRecorder<'_>,
    held: &HeldLock,
    service: &Service,
    plan: &DeployPlan,
    opts: &ActionOptions,
    live_note: &str,
    start_guarded: bool,
    mut pre_inspected: Option<Option<ContainerInspectResponse>>,
    previous: Option<&ProxyRoute>,
    s: &mut PreSwitch,
) -> Result<(), ReleaseError> {
    let host = r.host;
    let new_name = app_container(service, plan.to_color);
    if !plan.reuse_existing {
        let t = r.start(Step::Pull, plan.image.clone());
        s.pulled = pull::ensure_image(host, &plan.image, r.events)
            .await
            .inspect_err(|e| r.fail(Step::Pull, e))?;
        r.finish(
            Step::Pull,
            t,
            if s.pulled {
                "pulled"
            } else {
                "already present"
            },
        );
        check_cancel(opts, host, live_note)?;

        let t = r.start(Step::Network, service.network_name());
        proxy::ensure_network(host, service)
            .await
            .inspect_err(|e| r.fail(Step::Network, e))?;
        r.finish(Step::Network, t, "");

        guard(r, held, service, Step::Create).await?;
        let t = r.start(Step::Create, new_name.clone());
        container::create_app(host, service, plan, opts)
            .await
            .inspect_err(|e| r.fail(Step::Create, e))?;
        r.finish(Step::Create, t, "");
    }
    check_cancel(opts, host, live_note)?;
    if !start_guarded {
        guard(r, held, service, Step::Start).await?;
    }
    let ins = match pre_inspected.take() {
        Some(ins) if start_guarded => ins,
        _ => host.docker.inspect_container(&new_name, None).await.ok(),
    };
    let restarts_before = ins.as_ref().and_then(|i| i.restart_count);
    s.ours = ins.and_then(|i| i.id);
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
    s.started_new = true;
    r.finish(Step::Start, t, "");

    let timeout = opts.health_timeout.unwrap_or(service.health_timeout);
    let t = r.start(Step::Health, format!("within {}", format_duration(timeout)));
    // The kept-alive connection through the public port that the confirm reuses after
    // the switch is opened while the new color starts (a new channel and a request: off
    // the path the release waits on). HAProxy keeps it open for 65 s.
    let (healthy, ()) = tokio::join!(
        health_wait::wait_healthy(r, service, plan, timeout, opts, live_note, restarts_before),
        proxy::open_public(host, service)
    );
    s.new_addr = healthy.inspect_err(|e| r.fail(Step::Health, e))?;
    r.finish(Step::Health, t, "");
    check_cancel(opts, host, live_note)?;
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
            match &s.new_addr {
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
    s.proxy_seen = Some(seen);
    s.prepared_switch = prepared;
    held_now?;
    policy?;
    Ok(())
}

/// The error a failed step before the switch ends the run with, after stopping what this run
/// started (only by id when the lock was lost: the name may be someone else's by now).
pub(super) async fn failed(
    r: &StepRecorder<'_>,
    held: &HeldLock,
    service: &Service,
    plan: &DeployPlan,
    s: &PreSwitch,
    live_note: String,
    e: ReleaseError,
) -> ReleaseError {
    let host = r.host;
    let new_name = app_container(service, plan.to_color);
    if let ReleaseError::LockLost { .. } = e {
        // Someone else holds the service now: stop only what this run started, by id.
        if let Some(id) = &s.ours {
            container::stop_quietly(host, id, service).await;
            r.info(format!(
                "stopped the container this run started ({new_name}, {}); nothing else was touched",
                id.get(..12).unwrap_or(id)
            ));
        }
        return match e {
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
        };
    }
    if s.started_new || matches!(e, ReleaseError::Unhealthy { .. }) {
        container::stop_quietly(host, &new_name, service).await;
        r.info(format!(
            "stopped {new_name}; it is kept for inspection (docker logs {new_name})"
        ));
    }
    match e {
        e @ (ReleaseError::Unhealthy { .. } | ReleaseError::Aborted { .. }) => e,
        e => ReleaseError::BeforeSwitch {
            source: Box::new(e),
            live_note,
        },
    }
}
