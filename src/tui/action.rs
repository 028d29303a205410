//! Destructive actions as values: what the operator asked for, the plan a dialog shows, and the
//! progress of a confirmed action as the engine reports it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::release::prune::PrunePlan;
use crate::release::{DeployPlan, Event, Step};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingAction {
    Deploy {
        env: String,
        service: String,
        hosts: Vec<String>,
        sha: String,
    },
    /// `target: None` rolls back to the previous release (the stopped color).
    Rollback {
        env: String,
        service: String,
        hosts: Vec<String>,
        target: Option<String>,
    },
    Prune {
        env: String,
        service: String,
        hosts: Vec<String>,
        keep: usize,
    },
    /// The release in canary (`sha`) takes all traffic (issue 13).
    Promote {
        env: String,
        service: String,
        hosts: Vec<String>,
        sha: String,
    },
}

impl PendingAction {
    pub fn verb(&self) -> &'static str {
        match self {
            PendingAction::Deploy { .. } => "deploy",
            PendingAction::Rollback { .. } => "rollback",
            PendingAction::Prune { .. } => "prune",
            PendingAction::Promote { .. } => "promote",
        }
    }

    pub fn env(&self) -> &str {
        match self {
            PendingAction::Deploy { env, .. }
            | PendingAction::Rollback { env, .. }
            | PendingAction::Prune { env, .. }
            | PendingAction::Promote { env, .. } => env,
        }
    }

    pub fn service(&self) -> &str {
        match self {
            PendingAction::Deploy { service, .. }
            | PendingAction::Rollback { service, .. }
            | PendingAction::Prune { service, .. }
            | PendingAction::Promote { service, .. } => service,
        }
    }

    pub fn hosts(&self) -> &[String] {
        match self {
            PendingAction::Deploy { hosts, .. }
            | PendingAction::Rollback { hosts, .. }
            | PendingAction::Prune { hosts, .. }
            | PendingAction::Promote { hosts, .. } => hosts,
        }
    }

    /// A title: `Rollback demo in dev`.
    pub fn title(&self) -> String {
        let verb = match self {
            PendingAction::Deploy { sha, .. } => format!("Deploy {sha} of"),
            PendingAction::Rollback { target: None, .. } => "Roll back".to_string(),
            PendingAction::Rollback {
                target: Some(t), ..
            } => format!("Roll back to {t}:"),
            PendingAction::Prune { .. } => "Prune images of".to_string(),
            PendingAction::Promote { sha, .. } => format!("Promote canary {sha} of"),
        };
        format!("{verb} {} in {}", self.service(), self.env())
    }

    /// The CLI command this action equals, so the CLI is learnable from the console.
    pub fn equivalent(&self, all_hosts: bool) -> String {
        let hosts = if all_hosts {
            String::new()
        } else {
            self.hosts()
                .iter()
                .map(|h| format!(" --host {h}"))
                .collect::<String>()
        };
        let what = match self {
            PendingAction::Deploy { sha, .. } => format!("deploy {sha}"),
            PendingAction::Rollback { target: None, .. } => "rollback".to_string(),
            PendingAction::Rollback {
                target: Some(t), ..
            } => format!("rollback {t}"),
            PendingAction::Prune { keep, .. } => format!("prune --keep {keep}"),
            PendingAction::Promote { .. } => "promote".to_string(),
        };
        format!(
            "deckhand {what} --env {} --service {}{hosts}",
            self.env(),
            self.service()
        )
    }
}

/// What planning found, shown by the dialog; what runs is re-planned under the lock.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanView {
    Release(Vec<DeployPlan>),
    Prune(Vec<PrunePlan>),
}

impl PlanView {
    /// Nothing would change on any host.
    pub fn is_noop(&self) -> bool {
        match self {
            PlanView::Release(p) => p.iter().all(|p| p.noop),
            PlanView::Prune(p) => p.iter().all(|p| p.remove.is_empty()),
        }
    }

    /// Short SHAs the operator may type to confirm in a protected environment.
    pub fn confirm_words(&self) -> Vec<String> {
        match self {
            PlanView::Release(p) => p
                .iter()
                .map(|p| p.to_sha.chars().take(7).collect::<String>())
                .collect(),
            PlanView::Prune(_) => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PlanState {
    Loading,
    Ready(PlanView),
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone)]
pub struct StepRow {
    pub host: String,
    pub step: Step,
    pub state: StepState,
    pub started: Instant,
    pub elapsed_ms: Option<u64>,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct PullLayer {
    pub status: String,
    pub current: Option<i64>,
    pub total: Option<i64>,
}

/// A confirmed action's progress, from the engine's events.
#[derive(Debug, Clone)]
pub struct Progress {
    pub id: u64,
    pub action: PendingAction,
    pub started: Instant,
    pub finished: Option<Instant>,
    pub steps: Vec<StepRow>,
    pub pull: BTreeMap<String, PullLayer>,
    /// The last health attempt: (attempt, healthy, detail).
    pub health: Option<(u32, bool, String)>,
    pub notes: Vec<String>,
    /// `Ok(summary)` or `Err(cause)` once the action ended.
    pub outcome: Option<Result<String, String>>,
    pub abort_requested: bool,
}

impl Progress {
    pub fn new(id: u64, action: PendingAction, now: Instant) -> Self {
        Self {
            id,
            action,
            started: now,
            finished: None,
            steps: Vec::new(),
            pull: BTreeMap::new(),
            health: None,
            notes: Vec::new(),
            outcome: None,
            abort_requested: false,
        }
    }

    pub fn running(&self) -> bool {
        self.outcome.is_none()
    }

    pub fn elapsed(&self, now: Instant) -> Duration {
        self.finished
            .unwrap_or(now)
            .saturating_duration_since(self.started)
    }

    fn open_row(&mut self, host: &str, step: Step) -> Option<&mut StepRow> {
        self.steps
            .iter_mut()
            .rev()
            .find(|r| r.host == host && r.step == step && r.state == StepState::Running)
    }

    pub fn apply(&mut self, event: Event, now: Instant) {
        match event {
            Event::StepStarted { host, step, detail } => {
                if step != Step::Pull {
                    self.pull.clear();
                }
                self.steps.push(StepRow {
                    host,
                    step,
                    state: StepState::Running,
                    started: now,
                    elapsed_ms: None,
                    detail,
                });
            }
            Event::StepFinished {
                host,
                step,
                elapsed_ms,
                detail,
            } => {
                if let Some(row) = self.open_row(&host, step) {
                    row.state = StepState::Done;
                    row.elapsed_ms = Some(elapsed_ms);
                    if !detail.is_empty() {
                        row.detail = detail;
                    }
                } else {
                    self.steps.push(StepRow {
                        host,
                        step,
                        state: StepState::Done,
                        started: now,
                        elapsed_ms: Some(elapsed_ms),
                        detail,
                    });
                }
            }
            Event::StepFailed { host, step, error } => {
                let elapsed = |r: &StepRow| {
                    u64::try_from(now.saturating_duration_since(r.started).as_millis())
                        .unwrap_or(u64::MAX)
                };
                if let Some(row) = self.open_row(&host, step) {
                    row.state = StepState::Failed;
                    row.elapsed_ms = Some(elapsed(row));
                    row.detail = error;
                } else {
                    self.steps.push(StepRow {
                        host,
                        step,
                        state: StepState::Failed,
                        started: now,
                        elapsed_ms: None,
                        detail: error,
                    });
                }
            }
            Event::PullProgress {
                layer,
                status,
                current,
                total,
                ..
            } => {
                self.pull.insert(
                    layer,
                    PullLayer {
                        status,
                        current,
                        total,
                    },
                );
            }
            Event::HealthAttempt {
                attempt,
                healthy,
                detail,
                ..
            } => self.health = Some((attempt, healthy, detail)),
            Event::Switched { host, from, to } => self.notes.push(format!(
                "[{host}] traffic: {} → {to}",
                from.map_or("-", crate::state::Color::as_str)
            )),
            Event::Info { host, message } => self.notes.push(format!("[{host}] {message}")),
            // Issue 13: the watch's live counts, one line that is replaced, not one per second.
            e @ Event::Watch { .. } => {
                let line = crate::release::watch::describe_event(&e);
                match self.notes.last_mut() {
                    Some(last) if last.contains(" watch ") => *last = line,
                    _ => self.notes.push(line),
                }
            }
        }
    }

    pub fn finish(&mut self, result: Result<String, String>, now: Instant) {
        // A step still open when the action ended did not finish.
        if result.is_err() {
            for row in &mut self.steps {
                if row.state == StepState::Running {
                    row.state = StepState::Failed;
                }
            }
        }
        self.outcome = Some(result);
        self.finished = Some(now);
    }
}
