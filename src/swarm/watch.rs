//! The watch window of a Swarm deploy (issue 16, as issue 13 on a droplet): after the switch the
//! old color's replicas stay up while the droplet's watch (`release::watch`) reads the new
//! color's answers from the Swarm proxy's request log and its tasks' `/health` as the proxy
//! sees them. A breach switches back in HAProxy's memory and file (one exec, the old tasks are
//! warm), scales the new color to 0 (its spec kept for inspection) and says why.

use std::time::Duration;

use super::proxy::{ProxyHandle, probe_all, switch, task_addresses};
use super::{api, haproxy, names};
use crate::config::Service;
use crate::release::audit::AuditRecord;
use crate::release::plan::{Action, DeployPlan};
use crate::release::steps::StepRecorder;
use crate::release::watch::{
    Evidence, HealthSeen, WatchEnd, WatchSpec, WatchTarget, mark_rolled_back_automatically,
    passed_note, watch_via,
};
use crate::release::{ActionOptions, ReleaseError, Step};
use crate::state::Color;
use crate::state::proxy_api;
use crate::transport::Host;
use crate::util::format_duration;

/// The Swarm proxy's task container on the manager, and the color's tasks seen from it.
struct SwarmProxy<'a> {
    host: &'a Host,
    service: &'a Service,
    proxy: &'a ProxyHandle,
}

impl WatchTarget for SwarmProxy<'_> {
    async fn proxy_cli(&self, commands: &str) -> Result<(i64, String), String> {
        proxy_api::cli(self.host, &self.proxy.container, commands)
            .await
            .map_err(|e| crate::util::error_chain(&e))
    }

    async fn health(&self, color: Color) -> HealthSeen {
        let name = names::color_service(self.service, color);
        let addrs = match task_addresses(self.host, self.proxy, self.service, color).await {
            Ok(a) => a,
            // The manager could not be asked: not the release's fault; the next probe decides.
            Err(e) => return HealthSeen::Unknown(format!("could not list {name}'s tasks: {e}")),
        };
        if addrs.is_empty() {
            return HealthSeen::Gone(format!("no task of {name} in Swarm's DNS"));
        }
        match probe_all(self.host, self.proxy, self.service, &addrs).await {
            Ok(()) => HealthSeen::Healthy(format!("healthy on {} task(s)", addrs.len())),
            Err(why) => HealthSeen::Unhealthy(why),
        }
    }
}

/// The window a deploy is watched for: `--watch`, else the service's `watch` (a rollback is
/// the way back and is not watched unless asked). Zero: not watched.
pub fn window(service: &Service, action: Action, opts: &ActionOptions) -> Duration {
    opts.watch.unwrap_or(match action {
        Action::Rollback => Duration::ZERO,
        _ => service.watch.window,
    })
}

/// What the watch needs besides the plan.
pub struct Watched<'a> {
    pub proxy: &'a ProxyHandle,
    pub replicas: u32,
    /// The route before the switch: where a breach sends traffic back.
    pub previous: &'a haproxy::Route,
    pub window: Duration,
    /// A canary's share: the watch compares it with the stable (previous) color.
    pub canary: Option<u8>,
}

/// Watches the new color for the window; on a breach switches back, scales the new color to 0
/// and returns [`ReleaseError::RolledBack`] (the audit record says `rolled_back` with the
/// evidence). The caller writes the ledger and scales the old color down after a pass.
pub async fn after_switch(
    r: &mut StepRecorder<'_>,
    service: &Service,
    plan: &DeployPlan,
    w: &Watched<'_>,
    opts: &ActionOptions,
    record: &mut AuditRecord,
) -> Result<(), ReleaseError> {
    let host = r.host;
    let old = w.previous.color;
    let new_name = names::color_service(service, plan.to_color);
    let t = r.start(
        Step::Watch,
        format!(
            "{}{} for {} ({} keeps its {} replica(s) up)",
            new_name,
            w.canary.map_or(String::new(), |p| format!(" at {p} %")),
            format_duration(w.window),
            names::color_service(service, old),
            w.replicas
        ),
    );
    let spec = WatchSpec {
        service,
        window: w.window,
        settings: &service.watch,
        new: plan.to_color,
        stable: w.canary.map(|_| old),
    };
    let target = SwarmProxy {
        host,
        service,
        proxy: w.proxy,
    };
    match watch_via(r, &target, &spec, &opts.cancel).await {
        WatchEnd::Passed { new, stable } => {
            r.finish(Step::Watch, t, passed_note(&new, stable.as_ref()));
            Ok(())
        }
        WatchEnd::Breached(mut ev) => {
            // Traffic first: the old tasks are up, the switch is in memory (and file).
            let live_note = match switch(host, service, w.proxy, w.replicas, w.previous).await {
                Ok(()) => format!(
                    "{} ({old}) serves again (its tasks stayed up); {new_name} was scaled to 0, its spec kept for inspection",
                    w.previous.sha
                ),
                Err(e) => format!("switching back FAILED: {e}"),
            };
            // Its logs before its tasks stop (a task's container is kept, but may be on
            // another node).
            ev.logs = task_logs(host, &new_name).await;
            super::deploy::scale(host, &new_name, 0).await;
            mark_rolled_back_automatically(record, &ev);
            let e = rolled_back(host, plan, live_note, &ev);
            r.fail(Step::Watch, &e);
            Err(e)
        }
        WatchEnd::Interrupted(why) => {
            let e = ReleaseError::WatchInterrupted {
                host: host.name().to_string(),
                why,
                live_note: format!(
                    "nothing was changed: {new_name} {} and {} keeps its replicas up; the next deploy, rollback or promote settles it",
                    if w.canary.is_some() {
                        "has its canary share"
                    } else {
                        "serves"
                    },
                    names::color_service(service, old)
                ),
            };
            r.fail(Step::Watch, &e);
            Err(e)
        }
    }
}

fn rolled_back(host: &Host, plan: &DeployPlan, live_note: String, ev: &Evidence) -> ReleaseError {
    ReleaseError::RolledBack {
        host: host.name().to_string(),
        color: plan.to_color.to_string(),
        sha: plan.to_sha.clone(),
        live_note,
        evidence: ev.text(),
    }
}

/// The last log lines of one of the color's tasks running on this manager (Docker reads a
/// container's logs only on its own node).
async fn task_logs(host: &Host, color_service: &str) -> String {
    match api::proxy_container(host, color_service).await {
        Ok(Some(id)) => crate::release::container::tail_logs(host, &id).await,
        Ok(None) => format!(
            "    (no task of {color_service} runs on the manager; see `docker service logs {color_service}`)\n"
        ),
        Err(e) => format!("    (its logs could not be listed: {e})\n"),
    }
}
