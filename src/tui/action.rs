//! Actions as the console shows them: the plan a dialog shows (from the engine's runner), and
//! the progress of a confirmed action as the engine reports it. What an action *is* lives in
//! the engine (`release::runner::Request`), so the console and the CLI ask the same thing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::release::runner::{HostPlan, PlanError, Request, RunReport};
use crate::release::{Event, Step};

#[derive(Debug, Clone)]
pub enum PlanState {
    Loading,
    Ready(Vec<HostPlan>),
    Failed(Arc<PlanError>),
}

impl PlanState {
    /// Nothing would change on any host.
    pub fn is_noop(&self) -> bool {
        matches!(self, PlanState::Ready(p) if p.iter().all(HostPlan::is_noop))
    }
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
    pub request: Request,
    pub started: Instant,
    pub finished: Option<Instant>,
    pub steps: Vec<StepRow>,
    pub pull: BTreeMap<String, PullLayer>,
    /// The last health attempt: (attempt, healthy, detail).
    pub health: Option<(u32, bool, String)>,
    pub notes: Vec<String>,
    /// The runner's report, once the action ended.
    pub outcome: Option<Arc<RunReport>>,
    pub abort_requested: bool,
}

impl Progress {
    pub fn new(id: u64, request: Request, now: Instant) -> Self {
        Self {
            id,
            request,
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

    /// Ended, and every host did its part.
    pub fn succeeded(&self) -> bool {
        self.outcome.as_ref().is_some_and(|r| r.succeeded())
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
                ..
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

    pub fn finish(&mut self, report: Arc<RunReport>, now: Instant) {
        // A step still open when the action ended did not finish.
        if !report.succeeded() {
            for row in &mut self.steps {
                if row.state == StepState::Running {
                    row.state = StepState::Failed;
                }
            }
        }
        self.outcome = Some(report);
        self.finished = Some(now);
    }
}
