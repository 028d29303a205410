//! The watch inside a deploy: after the switch (or the canary's weights), watch; on a breach
//! switch back at once to the warm old color, stop the new one and say why.

use std::time::Duration;

use super::super::audit::AuditRecord;
use super::super::execute::ActionOptions;
use super::super::plan::DeployPlan;
use super::super::steps::StepRecorder;
use super::super::{ReleaseError, Step, container, proxy};
use super::{WatchEnd, WatchSpec, attach_logs, mark_rolled_back_automatically, passed_note, watch};
use crate::config::Service;
use crate::state::contract::app_container;
use crate::state::proxy_conf::ProxyRoute;
use crate::state::{Color, ServiceStatus};
use crate::util::format_duration;

/// Why a canary cannot start on this host, if it cannot.
pub(in crate::release) fn canary_refusal(
    opts: &ActionOptions,
    plan: &DeployPlan,
    status: &ServiceStatus,
) -> Option<String> {
    opts.canary?;
    if plan.from_color.is_none() {
        return Some(
            "a canary needs a live release to share traffic with; deploy without --canary first"
                .into(),
        );
    }
    if plan.create_proxy || plan.proxy_change.is_some() || !status.proxy.running {
        return Some("the proxy must be (re)created first, which sends all traffic to one color; deploy without --canary".into());
    }
    None
}

#[allow(clippy::too_many_arguments)]
pub(in crate::release) async fn after_switch(
    r: &mut StepRecorder<'_>,
    service: &Service,
    plan: &DeployPlan,
    old: Color,
    previous: &ProxyRoute,
    window: Duration,
    opts: &ActionOptions,
    record: &mut AuditRecord,
) -> Result<(), ReleaseError> {
    let host = r.host;
    // A canary is always watched: its whole point is the comparison.
    let window = if window.is_zero() {
        service.watch.window.max(Duration::from_secs(1))
    } else {
        window
    };
    let canary = opts.canary.is_some();
    let t = r.start(
        Step::Watch,
        format!(
            "{}{} for {} ({} still runs warm)",
            plan.to_color,
            opts.canary.map_or(String::new(), |p| format!(" at {p} %")),
            format_duration(window),
            old
        ),
    );
    let spec = WatchSpec {
        service,
        window,
        settings: &service.watch,
        new: plan.to_color,
        stable: canary.then_some(old),
    };
    match watch(r, &spec, &opts.cancel).await {
        WatchEnd::Passed { new, stable } => {
            r.finish(Step::Watch, t, passed_note(&new, stable.as_ref()));
            Ok(())
        }
        WatchEnd::Breached(mut ev) => {
            // Traffic first: the old color is warm, the switch is in memory.
            let live_note = match proxy::switch(host, service, previous, None).await {
                Ok(()) => format!(
                    "{} ({}) serves again (it stayed warm); the new container is stopped and kept for inspection",
                    previous.sha, previous.color
                ),
                Err(e) => format!("switching back FAILED: {e}"),
            };
            let new_name = app_container(service, plan.to_color);
            container::stop_quietly(host, &new_name, service).await;
            attach_logs(host, service, &mut ev).await;
            mark_rolled_back_automatically(record, &ev);
            let e = ReleaseError::RolledBack {
                host: host.name().to_string(),
                color: plan.to_color.to_string(),
                sha: plan.to_sha.clone(),
                live_note,
                evidence: ev.text(),
            };
            r.fail(Step::Watch, &e);
            Err(e)
        }
        WatchEnd::Interrupted(why) => {
            let e = ReleaseError::WatchInterrupted {
                host: host.name().to_string(),
                why,
                live_note: format!(
                    "nothing was changed: {} {} and {} still runs warm; the next deploy, rollback or promote settles it",
                    plan.to_color,
                    if canary {
                        "has its canary share"
                    } else {
                        "serves"
                    },
                    old
                ),
            };
            r.fail(Step::Watch, &e);
            Err(e)
        }
    }
}
