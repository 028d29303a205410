//! Records one host's steps as they run: events for the faces, timings for the outcome.

use std::time::Instant;

use super::lock::{self, HeldLock, LockRequest};
use super::{Event, EventSink, ReleaseError, Step};
use crate::transport::Host;

pub(crate) struct StepRecorder<'a> {
    pub(crate) host: &'a Host,
    pub(crate) events: &'a EventSink,
    pub(crate) steps: Vec<(Step, u64)>,
    /// Set by the lock's heartbeat when the lock is no longer ours (waits look at it).
    pub(crate) lock_lost: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// The host's round trips when each step in progress started (st, issue 14); steps can
    /// overlap, so per step.
    trips_at_start: std::sync::Mutex<Vec<(Step, crate::transport::TripCount)>>,
}

impl<'a> StepRecorder<'a> {
    pub(crate) fn new(host: &'a Host, events: &'a EventSink) -> Self {
        Self {
            host,
            events,
            steps: Vec::new(),
            lock_lost: None,
            trips_at_start: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The `lock` step of every run (droplet or Swarm): takes the lock, says whose stale lock
    /// it took over, and keeps the heartbeat's "lost" flag for the waits.
    pub(crate) async fn take_lock(
        &mut self,
        host: &std::sync::Arc<Host>,
        service: &str,
        req: &LockRequest<'_>,
    ) -> Result<HeldLock, ReleaseError> {
        let t = self.start(Step::Lock, format!("{service} on {}", host.name()));
        let held = match lock::acquire(host, req).await {
            Ok(l) => l,
            Err(e) => {
                self.fail(Step::Lock, &e);
                return Err(e);
            }
        };
        if let Some(old) = &held.took_over {
            self.info(format!("took over the stale lock of {}", old.holder()));
        }
        self.lock_lost = Some(held.lost_flag());
        self.finish(Step::Lock, t, "");
        Ok(held)
    }

    pub(crate) fn start(&self, step: Step, detail: impl Into<String>) -> Instant {
        if let Ok(mut at) = self.trips_at_start.lock() {
            at.retain(|(s, _)| *s != step);
            at.push((step, self.host.trips()));
        }
        self.events.emit(Event::StepStarted {
            host: self.host.name().to_string(),
            step,
            detail: detail.into(),
        });
        Instant::now()
    }

    pub(crate) fn finish(&mut self, step: Step, started: Instant, detail: impl Into<String>) {
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.steps.push((step, ms));
        let began = self.trips_at_start.lock().ok().and_then(|mut at| {
            let i = at.iter().position(|(s, _)| *s == step)?;
            Some(at.swap_remove(i).1)
        });
        let trips = began.map(|b| self.host.trips().since(&b));
        tracing::debug!(host = %self.host.name(), ?step, elapsed_ms = ms, ?trips, "step finished");
        self.events.emit(Event::StepFinished {
            host: self.host.name().to_string(),
            step,
            elapsed_ms: ms,
            detail: detail.into(),
            trips,
        });
    }

    pub(crate) fn fail(&self, step: Step, e: &dyn std::fmt::Display) {
        self.events.emit(Event::StepFailed {
            host: self.host.name().to_string(),
            step,
            error: e.to_string(),
        });
    }

    pub(crate) fn info(&self, message: impl Into<String>) {
        self.events.emit(Event::Info {
            host: self.host.name().to_string(),
            message: message.into(),
        });
    }
}
