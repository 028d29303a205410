//! The first step under the lock: the host read (or the one taken with the plan), the ledger
//! caught up, the plan made and checked against the pinned one, and the start record written.

use super::super::audit::{self, AuditOutcome, AuditRecord};
use super::super::ledger::Ledger;
use super::super::lock::HeldLock;
use super::super::plan::{Action, DeployPlan, Pinned, Target};
use super::super::steps::StepRecorder;
use super::super::{ReleaseError, Step};
use super::planning::{plan_with_health, read_under_lock};
use super::{now_rfc3339, save_ledger};
use crate::config::Service;
use crate::state::ServiceStatus;
use crate::state::contract::app_container;

/// What the inspect step hands to the rest of the run.
pub(super) struct Inspected {
    pub status: ServiceStatus,
    pub ledger: Ledger,
    pub plan: DeployPlan,
    /// The start record went out with a lock check that found the lock ours.
    pub start_guarded: bool,
    /// The container about to be started, when it was looked at beside that check.
    pub pre_inspected: Option<Option<bollard::models::ContainerInspectResponse>>,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn inspect(
    r: &mut StepRecorder<'_>,
    held: &HeldLock,
    service: &Service,
    target: &Target,
    action: Action,
    pinned: Option<&Pinned>,
    pre_read: Option<(ServiceStatus, Option<String>, Ledger)>,
    record: &mut AuditRecord,
) -> Result<Inspected, ReleaseError> {
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
            super::super::batch::audit_and_check(host, &started_record, held),
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
    Ok(Inspected {
        status,
        ledger,
        plan,
        start_guarded,
        pre_inspected,
    })
}
