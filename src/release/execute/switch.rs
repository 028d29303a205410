//! The switch: the proxy step, the route moved to the proven color, and its confirm through
//! the public port; a confirm that fails puts the previous route back.

use std::time::Duration;

use super::super::ledger::{self, Ledger};
use super::super::lock::HeldLock;
use super::super::plan::{Action, DeployPlan};
use super::super::steps::StepRecorder;
use super::super::{Event, ReleaseError, Step, container, proxy, watch};
use super::pre_switch::PreSwitch;
use super::{ActionOptions, guard, now_rfc3339, save_ledger};
use crate::config::Service;
use crate::state::contract::app_container;
use crate::state::proxy_conf::ProxyRoute;
use crate::state::{Color, ServiceStatus};
use crate::transport::Host;

/// The switch step of a run that finishes an interrupted one (`plan.finish_only`).
pub(super) async fn reassert_route(
    r: &mut StepRecorder<'_>,
    held: &HeldLock,
    service: &Service,
    plan: &DeployPlan,
    status: &ServiceStatus,
) -> Result<(), ReleaseError> {
    let host = r.host;
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
    ensure_route(host, service, plan)
        .await
        .inspect_err(|e| r.fail(Step::Switch, e))?;
    r.finish(Step::Switch, t, "");
    Ok(())
}

/// The proxy step and the switch; the release that now serves (for the ledger) when it went.
#[allow(clippy::too_many_arguments)]
pub(super) async fn switch(
    r: &mut StepRecorder<'_>,
    held: &HeldLock,
    service: &Service,
    plan: &DeployPlan,
    action: Action,
    opts: &ActionOptions,
    previous: Option<&ProxyRoute>,
    live_note: &str,
    pre: &mut PreSwitch,
) -> Result<ledger::Release, ReleaseError> {
    let host = r.host;
    let new_name = app_container(service, plan.to_color);
    // From here on the deploy completes even if the operator presses Ctrl-C: a half switch
    // helps nobody, and the switch itself takes milliseconds.
    let route = ProxyRoute {
        color: plan.to_color,
        sha: plan.to_sha.clone(),
    };
    let t = r.start(Step::Proxy, service.proxy_container());
    let seen = match pre.proxy_seen.take() {
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
        if let Some(id) = &pre.ours {
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
    let switched = match (opts.canary, previous) {
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
                    live_note: live_note.to_string(),
                })
        }
        _ if proxy_started => Ok(()),
        _ => {
            proxy::switch_at(
                host,
                service,
                &route,
                previous,
                pre.new_addr.clone(),
                pre.prepared_switch.take(),
            )
            .await
        }
    };
    if let Err(e) = switched {
        r.fail(Step::Switch, &e);
        if opts.canary.is_some()
            && let Some(stable) = previous
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
    Ok(release)
}

/// The confirm through the public port; when the new color does not answer there, the
/// previous route is put back and `release` recorded as reverted.
pub(super) async fn confirm(
    r: &mut StepRecorder<'_>,
    service: &Service,
    plan: &DeployPlan,
    previous: Option<&ProxyRoute>,
    live_note: &str,
    ledger: &mut Ledger,
    release: ledger::Release,
) -> Result<ledger::Release, ReleaseError> {
    let host = r.host;
    let t = r.start(Step::Confirm, format!("port {}", service.public_port));
    if let Err(detail) = proxy::confirm(host, service, plan.to_color, Duration::from_secs(10)).await
    {
        // Put the old route back if there was one (memory and disk); the new color is not
        // answering publicly. The note says what serves after that, as the proxy reports it.
        let note = match previous {
            Some(prev) => match proxy::switch(host, service, prev, None).await {
                Ok(()) => {
                    ledger.record_reverted(release, &now_rfc3339());
                    save_ledger(r, service, ledger).await;
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
    Ok(release)
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
