//! The second phase: carry out a confirmed `Planned` host by host, stopping at the first
//! failure or when the operator cancels, notifying the webhook of each outcome.

use std::sync::Arc;

use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use super::plan::{HostPlan, Planned, plan_one};
use super::report::{HostError, HostReport, HostResult, NotAttempted, RunReport, ServesNow};
use super::request::{Request, Verb};
use crate::monitor::notify::Notifier;
use crate::release::locked_plan::LockedRead;
use crate::release::plan::Pinned;
use crate::release::{ActionOptions, Event, EventSink, ReleaseError, Step, execute, lock, prune};
use crate::state::read_serving;
use crate::transport::Host;
use crate::util::format_bytes;

/// What a run needs besides the plan: where events go, the cancel switch, the webhook, how
/// the plan was confirmed and who may be asked about a stale lock.
#[derive(Clone)]
pub struct RunOptions {
    pub events: EventSink,
    /// Checked before every host and, inside a release, between its steps up to the switch.
    /// The faces make it with `release::signals::cancel_on_signals`.
    pub cancel: CancellationToken,
    pub notifier: Notifier,
    pub pin: PinMode,
    /// Asked (host, holder) when a host's lock is stale and the request does not take it over
    /// already; `true` re-runs that host taking it over. May block (a terminal prompt).
    pub offer_take_over: Option<TakeOverOffer>,
}

/// A question to the operator about a stale lock: (host, holder) → take it over?
pub type TakeOverOffer = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// How much of a confirmed release plan must still hold under the lock (`DeployPlan::pin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinMode {
    /// A person confirmed what they saw: the target and what served before are pinned.
    Confirmed,
    /// Nobody looked (`--yes`, CI often queued with `--lock-wait` behind another deploy): only
    /// the target is pinned.
    TargetOnly,
}

impl Planned {
    /// Runs the confirmed plans. The connections are closed unless someone else holds them.
    pub async fn run(self, opts: &RunOptions) -> RunReport {
        let Planned {
            request,
            hosts,
            plans,
            locked,
        } = self;
        let mut report = RunReport {
            title: request.title(),
            equivalent: request.equivalent(),
            refused: request.read_only.clone(),
            hosts: Vec::with_capacity(hosts.len()),
            trips: Vec::new(),
        };
        let mut stop: Option<NotAttempted> = report.refused.as_ref().map(|_| NotAttempted::Refused);
        let mut last_done: Option<String> = None;
        for ((host, plan), locked) in hosts.iter().zip(&plans).zip(locked) {
            if stop.is_none() && opts.cancel.is_cancelled() {
                stop = Some(NotAttempted::Cancelled);
                if let Some(after) = &last_done {
                    notify_stopped(&opts.notifier, &request, after, host.name()).await;
                }
            }
            if let Some(why) = stop {
                if let Some(l) = locked {
                    l.release(host).await;
                }
                opts.events.emit(Event::Info {
                    host: host.name().to_string(),
                    message: match why {
                        NotAttempted::Cancelled => "not attempted: cancelled by the operator",
                        NotAttempted::EarlierFailure => "not attempted: an earlier host failed",
                        NotAttempted::Refused => "not attempted: refused",
                    }
                    .to_string(),
                });
                report.hosts.push(HostReport {
                    host: host.name().to_string(),
                    result: HostResult::NotAttempted { why },
                    serves_now: None,
                });
                continue;
            }
            let result = run_host(&request, host, plan, locked, opts).await;
            if request.verb.is_release() {
                notify(&opts.notifier, &request, host.name(), &result).await;
            }
            match &result {
                HostResult::Done { .. } => last_done = Some(host.name().to_string()),
                _ => stop = Some(NotAttempted::EarlierFailure),
            }
            report.hosts.push(HostReport {
                host: host.name().to_string(),
                result,
                serves_now: None,
            });
        }
        if request.verb.is_release() && report.refused.is_none() {
            // The host that ran last was read back as its run ended (beside its audit
            // record); every other host is read now, an earlier one may have changed since.
            let last = report
                .hosts
                .iter()
                .rposition(|h| !matches!(h.result, HostResult::NotAttempted { .. }));
            let read_back = last.and_then(|i| match &mut report.hosts[i].result {
                HostResult::Done {
                    outcome: Some(o), ..
                } => o.after.take().map(|a| (i, a)),
                _ => None,
            });
            let request = &request;
            let now = join_all(hosts.iter().enumerate().map(|(i, h)| {
                let read_back = match &read_back {
                    Some((at, a)) if *at == i => Some(a.clone()),
                    _ => None,
                };
                async move {
                    match read_back {
                        Some(a) => serves_from(a),
                        None => serves_now(h, request).await,
                    }
                }
            }))
            .await;
            for (r, s) in report.hosts.iter_mut().zip(now) {
                r.serves_now = Some(s);
            }
        }
        report.trips = hosts
            .iter()
            .map(|h| (h.name().to_string(), h.trips()))
            .collect();
        super::plan::close(hosts).await;
        report
    }
}

async fn run_host(
    request: &Request,
    host: &Arc<Host>,
    plan: &HostPlan,
    locked: Option<LockedRead>,
    opts: &RunOptions,
) -> HostResult {
    let failed = |e: HostError| HostResult::Failed { error: Arc::new(e) };
    let service = &request.service;
    match (&request.verb, plan) {
        // A release is pinned to the confirmed plan and checked under the lock, the stronger
        // check (`execute::run_pinned`: `ReleaseError::Changed` says what changed).
        (v, HostPlan::Release(p)) if v.is_release() => {
            let pin = match opts.pin {
                PinMode::Confirmed => p.pin(),
                PinMode::TargetOnly => p.pin().target_only(),
            };
            release(request, host, &pin, locked, opts).await
        }
        (Verb::Prune { keep }, _) => {
            if let Err(e) = confirmed_still_holds(request, host, plan, &opts.events).await {
                return failed(e);
            }
            match prune::run_on_host(
                host,
                service,
                *keep,
                &request.env,
                &request.actor,
                request.lock_wait,
                &opts.events,
            )
            .await
            {
                Ok((p, removed)) => HostResult::Done {
                    summary: format!(
                        "{}: removed {} image(s){} ({} reclaimed)",
                        host.name(),
                        removed.len(),
                        if removed.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", removed.join(", "))
                        },
                        format_bytes(p.reclaim_bytes)
                    ),
                    duration_ms: 0,
                    outcome: None,
                },
                Err(e) => failed(e.into()),
            }
        }
        (Verb::Unlock { force }, _) => {
            let now = match confirmed_still_holds(request, host, plan, &opts.events).await {
                Ok(now) => now,
                Err(e) => return failed(e),
            };
            // Released meanwhile (its holder finished): nothing to remove, nothing to record.
            if now.is_noop() && !plan.is_noop() {
                return HostResult::Done {
                    summary: format!(
                        "{}: the lock was released meanwhile; nothing to do",
                        host.name()
                    ),
                    duration_ms: 0,
                    outcome: None,
                };
            }
            unlock(request, *force, host, plan, &opts.events).await
        }
        (_, other) => failed(HostError::Changed {
            host: host.name().to_string(),
            confirmed: other.summary(),
            now: format!("a plan for {}", request.verb.as_str()),
        }),
    }
}

/// Runs one host's confirmed release; a stale lock is offered for take-over when someone can
/// be asked, and the host is run again taking it over if they agree.
async fn release(
    request: &Request,
    host: &Arc<Host>,
    pin: &Pinned,
    locked: Option<LockedRead>,
    opts: &RunOptions,
) -> HostResult {
    let mut action_opts = ActionOptions {
        env: request.env.clone(),
        actor: request.actor.clone(),
        lock_wait: request.lock_wait,
        health_timeout: request.health_timeout,
        cancel: opts.cancel.clone(),
        take_over_stale: request.take_over_stale,
        // A promote ends the canary's watch: it is not watched again unless asked.
        watch: match request.verb {
            Verb::Promote { .. } => Some(request.watch.unwrap_or_default()),
            _ => request.watch,
        },
        canary: request.canary,
    };
    let service = &request.service;
    let swarm = crate::swarm::is_swarm(host);
    let run_once = |o: ActionOptions| async move {
        if swarm {
            crate::swarm::run_pinned(host.clone(), service, pin, &o, &opts.events).await
        } else {
            execute::run_pinned(host.clone(), service, pin, &o, &opts.events).await
        }
    };
    let mut done = match locked {
        // Boxed: a release's future is large, and the console runs it on a small stack.
        Some(l) => {
            Box::pin(execute::run_pinned_locked(
                host.clone(),
                service,
                pin,
                l,
                &action_opts,
                &opts.events,
            ))
            .await
        }
        None => run_once(action_opts.clone()).await,
    };
    if let Err(ReleaseError::Locked {
        takeover_possible: true,
        holder,
        ..
    }) = &done
        && !action_opts.take_over_stale
        && let Some(offer) = &opts.offer_take_over
    {
        let (offer, name, holder) = (offer.clone(), host.name().to_string(), holder.clone());
        let yes = tokio::task::spawn_blocking(move || offer(&name, &holder))
            .await
            .unwrap_or(false);
        if yes {
            action_opts.take_over_stale = true;
            done = run_once(action_opts.clone()).await;
        }
    }
    match done {
        Ok(o) => HostResult::Done {
            summary: o.plan.summary(),
            duration_ms: o.duration_ms,
            outcome: Some(Box::new(o)),
        },
        Err(e @ ReleaseError::Aborted { .. }) => HostResult::Aborted {
            error: Arc::new(e.into()),
        },
        Err(e) => HostResult::Failed {
            error: Arc::new(e.into()),
        },
    }
}

/// The host is still what the operator confirmed: read again just before this host's turn
/// (an earlier host took minutes; another operator may have acted). For prune and unlock;
/// releases are checked under their lock instead (`execute::run_pinned`).
async fn confirmed_still_holds(
    request: &Request,
    host: &Host,
    confirmed: &HostPlan,
    events: &EventSink,
) -> Result<HostPlan, HostError> {
    let r = still_holds(request, host, confirmed).await;
    if let Err(e) = &r {
        events.emit(Event::StepFailed {
            host: host.name().to_string(),
            step: Step::Inspect,
            error: e.to_string(),
        });
    }
    r
}

async fn still_holds(
    request: &Request,
    host: &Host,
    confirmed: &HostPlan,
) -> Result<HostPlan, HostError> {
    let now = match plan_one(request, host).await {
        Ok(p) => p,
        Err(super::PlanError::Host { source, .. }) => return Err((*source).into()),
        Err(e) => {
            return Err(HostError::Changed {
                host: host.name().to_string(),
                confirmed: confirmed.summary(),
                now: e.to_string(),
            });
        }
    };
    let changed = differs(confirmed, &now);
    if changed {
        return Err(HostError::Changed {
            host: host.name().to_string(),
            confirmed: confirmed.summary(),
            now: now.summary(),
        });
    }
    Ok(now)
}

/// Whether what a host would do now differs from what the operator confirmed.
fn differs(confirmed: &HostPlan, now: &HostPlan) -> bool {
    match (confirmed, now) {
        // Converging on what was asked is fine whatever the path (someone deployed the same).
        (HostPlan::Release(_), HostPlan::Release(n)) if n.noop => false,
        (HostPlan::Release(c), HostPlan::Release(n)) => {
            c.from_sha != n.from_sha || c.from_color != n.from_color || c.to_sha != n.to_sha
        }
        (HostPlan::Unlock { lock: c, .. }, HostPlan::Unlock { lock: n, .. }) => {
            // The link's token; the details file may be empty (a full disk).
            let token = |l: &Option<crate::release::lock::LockState>| {
                l.as_ref().and_then(|l| {
                    l.token
                        .clone()
                        .or_else(|| l.info.as_ref().map(|i| i.token.clone()))
                })
            };
            n.is_some() && token(c) != token(n)
        }
        // Prune re-plans under its lock by rule (keep N), whatever arrived since.
        (HostPlan::Prune(_), HostPlan::Prune(_)) => false,
        _ => true,
    }
}

/// Removes the lock that was confirmed, by the unlock rules (`lock::unlock`: only the lock
/// shown, a live one only with `force`), which also records it with both identities.
async fn unlock(
    request: &Request,
    force: bool,
    host: &Host,
    plan: &HostPlan,
    events: &EventSink,
) -> HostResult {
    let HostPlan::Unlock {
        lock: Some(state), ..
    } = plan
    else {
        return HostResult::Done {
            summary: format!("{}: {} is not locked", host.name(), request.service.name),
            duration_ms: 0,
            outcome: None,
        };
    };
    let name = host.name().to_string();
    let started = std::time::Instant::now();
    events.emit(Event::StepStarted {
        host: name.clone(),
        step: Step::Unlock,
        detail: state.holder(),
    });
    let req = lock::UnlockRequest {
        service: &request.service.name,
        actor: &request.actor,
        env: &request.env,
        force,
    };
    match lock::unlock(host, &req, state).await {
        Ok(warning) => {
            if let Some(w) = warning {
                events.emit(Event::Info {
                    host: name.clone(),
                    message: format!("WARNING: {w}"),
                });
            }
        }
        Err(e) => {
            events.emit(Event::StepFailed {
                host: name,
                step: Step::Unlock,
                error: e.to_string(),
            });
            return HostResult::Failed {
                error: Arc::new(e.into()),
            };
        }
    }
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    events.emit(Event::StepFinished {
        host: name.clone(),
        step: Step::Unlock,
        elapsed_ms: duration_ms,
        detail: String::new(),
        trips: None,
    });
    HostResult::Done {
        summary: format!("{name}: lock removed (was: {})", state.holder()),
        duration_ms,
        outcome: None,
    }
}

async fn serves_now(host: &Host, request: &Request) -> ServesNow {
    let read = if crate::swarm::is_swarm(host) {
        crate::swarm::read_service(host, &request.service)
            .await
            .map_err(|e| e.to_string())
    } else {
        read_serving(host, &request.service)
            .await
            .map_err(|e| crate::util::error_chain(&e))
    };
    serves_from(read)
}

fn serves_from(read: Result<crate::state::ServiceStatus, String>) -> ServesNow {
    match read {
        Ok(s) => match s.live_color {
            Some(color) => ServesNow::Release {
                color,
                sha: s.live_sha,
                settling: s.settling,
            },
            None => ServesNow::Nothing,
        },
        Err(e) => ServesNow::Unknown(e),
    }
}

/// The webhook line of one host's outcome; the same whichever face asked.
pub fn outcome_message(request: &Request, host: &str, result: &HostResult) -> Option<String> {
    let what = match result {
        HostResult::Done { summary, .. } => format!("succeeded: {summary}"),
        HostResult::Failed { error } | HostResult::Aborted { error } => format!(
            "FAILED: {}",
            error.to_string().lines().next().unwrap_or_default()
        ),
        HostResult::NotAttempted { .. } => return None,
    };
    Some(format!(
        "[deckhand] {} of {} in {} on {host} {what}",
        request.verb.as_str(),
        request.service.name,
        request.env
    ))
}

async fn notify(notifier: &Notifier, request: &Request, host: &str, result: &HostResult) {
    if !notifier.enabled() {
        return;
    }
    if let Some(text) = outcome_message(request, host, result) {
        notifier.send(&text).await;
    }
}

async fn notify_stopped(notifier: &Notifier, request: &Request, after: &str, next: &str) {
    if notifier.enabled() {
        notifier
            .send(&format!(
                "[deckhand] {} of {} in {} stopped by the operator after {after}; {next} and later hosts were not attempted",
                request.verb.as_str(),
                request.service.name,
                request.env
            ))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::DeployPlan;
    use crate::release::lock::{LockInfo, LockState};
    use crate::release::plan::Action;
    use crate::state::Color;

    fn plan(from: &str, to: &str, noop: bool) -> HostPlan {
        HostPlan::Release(DeployPlan {
            action: Action::Deploy,
            host: "h".into(),
            service: "api".into(),
            from_color: Some(Color::Blue),
            from_sha: Some(from.into()),
            to_color: Color::Green,
            to_sha: to.into(),
            image: format!("r:{to}"),
            reuse_existing: false,
            noop,
            finish_only: false,
            create_proxy: false,
            proxy_change: None,
            steps: Vec::new(),
            image_present: false,
            note: None,
        })
    }

    fn lock(token: &str) -> HostPlan {
        HostPlan::Unlock {
            host: "h".into(),
            lock: Some(LockState {
                info: Some(LockInfo {
                    token: token.into(),
                    actor: "a".into(),
                    action: "deploy x".into(),
                    since: "t".into(),
                    pid: 1,
                    machine: "m".into(),
                }),
                heartbeat_age_secs: 99,
                stale: true,
                raw: None,
                token: Some(token.into()),
                legacy: false,
            }),
        }
    }

    #[test]
    fn a_host_that_changed_since_the_confirmation_is_not_acted_on() {
        let confirmed = plan("a000001", "a000002", false);
        assert!(!differs(&confirmed, &plan("a000001", "a000002", false)));
        // Another operator deployed meanwhile: the old release is no longer the one confirmed.
        assert!(differs(&confirmed, &plan("a000009", "a000002", false)));
        // Someone deployed the same target: converging is fine.
        assert!(!differs(&confirmed, &plan("a000002", "a000002", true)));
        // Unlock: only the confirmed lock is removed, never a new holder's.
        assert!(!differs(&lock("t1"), &lock("t1")));
        assert!(differs(&lock("t1"), &lock("t2")));
        let freed = HostPlan::Unlock {
            host: "h".into(),
            lock: None,
        };
        assert!(
            !differs(&lock("t1"), &freed),
            "already free: nothing to refuse"
        );
    }
}
