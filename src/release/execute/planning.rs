//! What a run reads and plans from: the service and its ledger, and the plan made from them.

use super::super::ReleaseError;
use super::super::ledger::{self, Ledger};
use super::super::plan::{Action, DeployPlan, Target, plan_deploy, plan_rollback};
use super::super::proxy::docker_err;
use crate::config::Service;
use crate::state::{ServiceStatus, read_service};
use crate::transport::Host;

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
