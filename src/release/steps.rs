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
}

impl<'a> StepRecorder<'a> {
    pub(crate) fn new(host: &'a Host, events: &'a EventSink) -> Self {
        Self {
            host,
            events,
            steps: Vec::new(),
            lock_lost: None,
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
        self.events.emit(Event::StepFinished {
            host: self.host.name().to_string(),
            step,
            elapsed_ms: ms,
            detail: detail.into(),
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
