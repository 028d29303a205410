//! The first phase: connect, then plan on every chosen host at once, changing nothing. What the
//! operator confirms is the `Planned` value this returns, and the run carries out exactly it.

use std::sync::Arc;

use futures_util::future::join_all;
use serde::Serialize;
use thiserror::Error;

use super::request::{Confirmation, Request, Verb};
use crate::config::HostSpec;
use crate::release::execute::plan_on_host;
use crate::release::lock::{self, LockRequest, LockState};
use crate::release::locked_plan::{LockedRead, lock_and_plan};
use crate::release::plan::{Action, Target};
use crate::release::prune::{self, PrunePlan};
use crate::release::{DeployPlan, ReleaseError, ledger};
use crate::transport::{Host, TransportError};

/// Why a request cannot be planned. Nothing changed on any host.
#[derive(Debug, Error)]
pub enum PlanError {
    #[error("{message}")]
    BadRef { message: String },

    #[error("host `{host}` is not in environment `{env}` (hosts: {known})")]
    UnknownHost {
        host: String,
        env: String,
        known: String,
    },

    #[error("{}\nnothing was changed on any host: every host must be reachable before an action starts", join_lines(.failures))]
    Unreachable { failures: Vec<TransportError> },

    #[error(
        "{host} is not reachable ({why}); every host must be reachable before an action starts, nothing was changed"
    )]
    NotConnected { host: String, why: String },

    /// Reading or planning on one host failed.
    /// An environment rollback must land on one SHA; the hosts' ledgers name different ones.
    #[error("{message}")]
    Disagree { message: String },

    #[error("{source}")]
    Host {
        host: String,
        #[source]
        source: Box<ReleaseError>,
    },
}

fn join_lines(errors: &[TransportError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl PlanError {
    pub fn exit_code(&self) -> i32 {
        match self {
            PlanError::Unreachable { .. } | PlanError::NotConnected { .. } => {
                crate::exit::UNREACHABLE
            }
            PlanError::Host { source, .. } => match source.as_ref() {
                ReleaseError::Transport(_) => crate::exit::UNREACHABLE,
                // A plan that cannot work (no previous release, unknown SHA): a usage error.
                ReleaseError::Plan { .. } => crate::exit::USAGE,
                e => e.exit_code(),
            },
            PlanError::BadRef { .. }
            | PlanError::UnknownHost { .. }
            | PlanError::Disagree { .. } => crate::exit::USAGE,
        }
    }
}

/// What one host would see.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HostPlan {
    Release(DeployPlan),
    Prune(PrunePlan),
    Unlock {
        host: String,
        /// The lock as it was read; `None`: not locked, nothing to do.
        lock: Option<LockState>,
    },
}

impl HostPlan {
    pub fn host(&self) -> &str {
        match self {
            HostPlan::Release(p) => &p.host,
            HostPlan::Prune(p) => &p.host,
            HostPlan::Unlock { host, .. } => host,
        }
    }

    pub fn is_noop(&self) -> bool {
        match self {
            HostPlan::Release(p) => p.noop,
            HostPlan::Prune(p) => p.remove.is_empty(),
            HostPlan::Unlock { lock, .. } => lock.is_none(),
        }
    }

    /// One line for prompts and notifications.
    pub fn summary(&self) -> String {
        match self {
            HostPlan::Release(p) => p.summary(),
            HostPlan::Prune(p) => format!(
                "{}: remove {} image(s), reclaim {}; keep {}",
                p.host,
                p.remove.len(),
                crate::util::format_bytes(p.reclaim_bytes),
                p.kept.len()
            ),
            HostPlan::Unlock { host, lock: None } => format!("{host}: not locked"),
            HostPlan::Unlock {
                host,
                lock: Some(l),
            } => format!("{host}: locked by {}", l.holder()),
        }
    }
}

/// A request with its plans on every chosen host: what the operator confirms.
pub struct Planned {
    pub(super) request: Request,
    pub(super) hosts: Vec<Arc<Host>>,
    pub(super) plans: Vec<HostPlan>,
    /// Per host, its lock and read when it was planned under the lock ([`plan_under_lock`]).
    pub(super) locked: Vec<Option<LockedRead>>,
}

impl Planned {
    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn plans(&self) -> &[HostPlan] {
        &self.plans
    }

    /// Nothing would change on any host.
    pub fn is_noop(&self) -> bool {
        self.plans.iter().all(HostPlan::is_noop)
    }

    pub fn confirmation(&self) -> Confirmation {
        self.request.confirmation(&self.plans)
    }

    /// Gives the connections back without running (a cancelled confirmation). A lock taken
    /// while planning is released in the background (the faces run such plans at once).
    pub fn into_hosts(self) -> Vec<Arc<Host>> {
        for (host, l) in self.hosts.iter().zip(self.locked) {
            if let Some(l) = l {
                let host = host.clone();
                tokio::spawn(async move { l.release(&host).await });
            }
        }
        self.hosts
    }
}

/// Connects to every host of the request at once; all must answer before anything changes.
pub async fn connect(specs: &[HostSpec]) -> Result<Vec<Arc<Host>>, PlanError> {
    let results = join_all(specs.iter().map(Host::connect)).await;
    collect_connected(results).await
}

/// [`connect`] for [`plan_under_lock`], which takes each host's lock while the Docker engine
/// is asked whether it answers (one round trip or two less over a slow link): the ssh link
/// must stand here, the engine's answer is checked there.
pub async fn connect_for_lock(specs: &[HostSpec]) -> Result<Vec<Arc<Host>>, PlanError> {
    let results = join_all(specs.iter().map(Host::connect_for_command)).await;
    collect_connected(results).await
}

async fn collect_connected(
    results: Vec<Result<Host, TransportError>>,
) -> Result<Vec<Arc<Host>>, PlanError> {
    let mut hosts = Vec::new();
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(h) => hosts.push(Arc::new(h)),
            Err(e) => failures.push(e),
        }
    }
    if failures.is_empty() {
        return Ok(hosts);
    }
    close(hosts).await;
    Err(PlanError::Unreachable { failures })
}

/// Closes connections nobody else holds (the console's pollers keep theirs).
pub async fn close(hosts: Vec<Arc<Host>>) {
    for h in hosts {
        if let Ok(h) = Arc::try_unwrap(h) {
            h.close().await;
        }
    }
}

/// Plans the request on every host concurrently. `hosts` are the request's hosts, connected,
/// in its order.
pub async fn plan(request: Request, hosts: Vec<Arc<Host>>) -> Result<Planned, PlanError> {
    plan_inner(request, hosts, false).await
}

/// [`plan`] for a run nobody confirms by looking (`--yes`): each host of a release is locked
/// first and planned from the read under its lock, which the run uses instead of reading the
/// host again (`release::locked_plan`; the run still compares its plan with this one). A host
/// whose lock is held is planned as [`plan`] does, and its run waits for the lock.
pub async fn plan_under_lock(
    request: Request,
    hosts: Vec<Arc<Host>>,
) -> Result<Planned, PlanError> {
    plan_inner(request, hosts, true).await
}

async fn plan_inner(
    request: Request,
    hosts: Vec<Arc<Host>>,
    under_lock: bool,
) -> Result<Planned, PlanError> {
    // Each host's plan, and its lock and read when it was planned under the lock. Under the
    // lock the engine's first answer comes in beside the lock (`connect_for_lock`); a host
    // whose engine does not answer is unreachable, and its lock is given back.
    let results = join_all(hosts.iter().map(|h| async {
        if under_lock {
            let (ready, locked) = tokio::join!(h.ready(), plan_locked(&request, h));
            if let Err(e) = ready {
                if let Some((_, l)) = locked {
                    l.release(h).await;
                }
                return Err(PlanError::Unreachable { failures: vec![e] });
            }
            if let Some((p, l)) = locked {
                return Ok((HostPlan::Release(p), Some(l)));
            }
        }
        plan_one(&request, h).await.map(|p| (p, None))
    }))
    .await;
    let mut plans = Vec::with_capacity(results.len());
    let mut locked = Vec::with_capacity(results.len());
    let mut failed = None;
    // Every unreachable host is named, as `connect` does.
    let mut unreachable = Vec::new();
    for r in results {
        match r {
            Ok((p, l)) => {
                plans.push(p);
                locked.push(l);
            }
            Err(PlanError::Unreachable { failures }) => {
                unreachable.extend(failures);
                locked.push(None);
            }
            Err(e) => {
                failed.get_or_insert(e);
                locked.push(None);
            }
        }
    }
    if !unreachable.is_empty() {
        failed = Some(PlanError::Unreachable {
            failures: unreachable,
        });
    }
    let disagree = if failed.is_none() {
        agree(&request, &plans).err()
    } else {
        None
    };
    if failed.is_some() || disagree.is_some() {
        for (h, l) in hosts.iter().zip(locked.drain(..)) {
            if let Some(l) = l {
                l.release(h).await;
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(e) = disagree {
        close(hosts).await;
        return Err(e);
    }
    Ok(Planned {
        request,
        hosts,
        plans,
        locked,
    })
}

/// A release on a droplet, locked without waiting and planned from the read under the lock.
async fn plan_locked(request: &Request, host: &Arc<Host>) -> Option<(DeployPlan, LockedRead)> {
    if crate::swarm::is_swarm(host) || request.take_over_stale || request.read_only.is_some() {
        return None;
    }
    let (target, action) = match &request.verb {
        Verb::Deploy { reference } | Verb::Promote { reference } => {
            (Target::Ref(reference.clone()), Action::Deploy)
        }
        Verb::Redeploy { reference } => (Target::Ref(reference.clone()), Action::Redeploy),
        Verb::Rollback { target } => (target.clone(), Action::Rollback),
        _ => return None,
    };
    let what = match &target {
        Target::Ref(t) => format!("{} {t}", action.as_str()),
        Target::Previous => format!("{} to previous", action.as_str()),
    };
    let req = LockRequest {
        service: &request.service.name,
        action: &what,
        actor: &request.actor,
        env: &request.env,
        wait: std::time::Duration::ZERO,
        take_over_stale: false,
    };
    lock_and_plan(host, &request.service, &target, action, &req).await
}

/// One environment rollback to "previous" goes to one SHA: when the hosts' ledgers name
/// different releases, the plan lists them and asks for a REF.
fn agree(request: &Request, plans: &[HostPlan]) -> Result<(), PlanError> {
    if request.verb
        != (Verb::Rollback {
            target: Target::Previous,
        })
    {
        return Ok(());
    }
    let targets: Vec<(String, String)> = plans
        .iter()
        .filter_map(|p| match p {
            HostPlan::Release(p) => Some((p.host.clone(), p.to_sha.clone())),
            _ => None,
        })
        .collect();
    ledger::agree_on_target(&targets)
        .map(|_| ())
        .map_err(|message| PlanError::Disagree { message })
}

/// Plans on one host, as the run will when it gets there.
pub(super) async fn plan_one(request: &Request, host: &Host) -> Result<HostPlan, PlanError> {
    let err = |source: ReleaseError| PlanError::Host {
        host: host.name().to_string(),
        source: Box::new(source),
    };
    let service = &request.service;
    if crate::swarm::is_swarm(host) {
        return plan_swarm(request, host).await.map_err(err);
    }
    match &request.verb {
        Verb::Deploy { reference } | Verb::Redeploy { reference } | Verb::Promote { reference } => {
            let action = if matches!(request.verb, Verb::Redeploy { .. }) {
                Action::Redeploy
            } else {
                Action::Deploy
            };
            plan_on_host(host, service, &Target::Ref(reference.clone()), action)
                .await
                .map(|(p, _)| HostPlan::Release(p))
                .map_err(err)
        }
        Verb::Rollback { target } => plan_on_host(host, service, target, Action::Rollback)
            .await
            .map(|(p, _)| HostPlan::Release(p))
            .map_err(err),
        // The ledger's rollback target is kept, as the run under the lock keeps it.
        Verb::Prune { keep } => prune::plan_on_host(host, service, *keep)
            .await
            .map(HostPlan::Prune)
            .map_err(err),
        Verb::Unlock { .. } => lock::read(host, &service.name)
            .await
            .map(|lock| HostPlan::Unlock {
                host: host.name().to_string(),
                lock,
            })
            .map_err(err),
    }
}

/// A Swarm manager (issue 16): releases through `crate::swarm`, the lock as on a droplet.
async fn plan_swarm(request: &Request, host: &Host) -> Result<HostPlan, ReleaseError> {
    let service = &request.service;
    let plan = |target: Target, action: Action| async move {
        crate::swarm::plan_on_host(host, service, &target, action, request.canary)
            .await
            .map(HostPlan::Release)
    };
    match &request.verb {
        // A promote is a deploy of the canary's SHA: a full switch to it (issue 16).
        Verb::Deploy { reference } | Verb::Promote { reference } => {
            plan(Target::Ref(reference.clone()), Action::Deploy).await
        }
        Verb::Redeploy { reference } => {
            plan(Target::Ref(reference.clone()), Action::Redeploy).await
        }
        Verb::Rollback { target } => plan(target.clone(), Action::Rollback).await,
        // The manager's images; what a scaled-down color's spec names counts as in use.
        Verb::Prune { keep } => prune::plan_on_host(host, service, *keep)
            .await
            .map(HostPlan::Prune),
        Verb::Unlock { .. } => lock::read(host, &service.name)
            .await
            .map(|lock| HostPlan::Unlock {
                host: host.name().to_string(),
                lock,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::plan::Action;
    use crate::state::Color;

    fn rollback_plan(host: &str, to: &str) -> HostPlan {
        HostPlan::Release(DeployPlan {
            action: Action::Rollback,
            host: host.into(),
            service: "api".into(),
            from_color: Some(Color::Green),
            from_sha: Some("a000003".into()),
            to_color: Color::Blue,
            to_sha: to.into(),
            image: format!("r/api:{to}"),
            reuse_existing: true,
            noop: false,
            finish_only: false,
            create_proxy: false,
            proxy_change: None,
            steps: Vec::new(),
            image_present: true,
            note: None,
        })
    }

    fn request(target: Target) -> Request {
        let cfg = crate::config::load_str(
            "[[service]]\nname = \"api\"\nimage = \"r/api\"\n\n[env.dev]\nhosts = [\"local\"]\n",
            std::path::Path::new("/tmp/deckhand.toml"),
        )
        .expect("config");
        let env = super::super::EnvInfo {
            name: "prod".into(),
            protected: false,
            read_only: false,
            hosts: vec!["p-1".into(), "p-2".into()],
        };
        Request::new(&env, &cfg.services[0], &[], Verb::Rollback { target }, "me").expect("request")
    }

    #[test]
    fn an_environment_rollback_goes_to_one_sha_or_asks_for_a_ref() {
        let agreed = [
            rollback_plan("p-1", "a000002"),
            rollback_plan("p-2", "a000002"),
        ];
        assert!(agree(&request(Target::Previous), &agreed).is_ok());
        let split = [
            rollback_plan("p-1", "a000002"),
            rollback_plan("p-2", "a000001"),
        ];
        let e = agree(&request(Target::Previous), &split).expect_err("hosts disagree");
        assert_eq!(e.exit_code(), crate::exit::USAGE);
        let text = e.to_string();
        assert!(text.contains("deckhand rollback <SHA>"), "{text}");
        assert!(
            text.contains("p-1: a000002") && text.contains("p-2: a000001"),
            "{text}"
        );
        // A named REF is one SHA by construction.
        assert!(agree(&request(Target::Ref("a000001".into())), &split).is_ok());
    }
}
