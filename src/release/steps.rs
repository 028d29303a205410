//! Records one host's steps as they run: events for the faces, timings for the outcome.

use std::time::Instant;

use super::{Event, EventSink, ReleaseError, Step};
use crate::transport::Host;

pub(super) struct StepRecorder<'a> {
    pub(super) host: &'a Host,
    pub(super) events: &'a EventSink,
    pub(super) steps: Vec<(Step, u64)>,
    /// Set by the lock's heartbeat when the lock is no longer ours (waits look at it).
    pub(super) lock_lost: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl StepRecorder<'_> {
    pub(super) fn start(&self, step: Step, detail: impl Into<String>) -> Instant {
        self.events.emit(Event::StepStarted {
            host: self.host.name().to_string(),
            step,
            detail: detail.into(),
        });
        Instant::now()
    }

    pub(super) fn finish(&mut self, step: Step, started: Instant, detail: impl Into<String>) {
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.steps.push((step, ms));
        self.events.emit(Event::StepFinished {
            host: self.host.name().to_string(),
            step,
            elapsed_ms: ms,
            detail: detail.into(),
        });
    }

    pub(super) fn fail(&self, step: Step, e: &ReleaseError) {
        self.events.emit(Event::StepFailed {
            host: self.host.name().to_string(),
            step,
            error: e.to_string(),
        });
    }

    pub(super) fn info(&self, message: impl Into<String>) {
        self.events.emit(Event::Info {
            host: self.host.name().to_string(),
            message: message.into(),
        });
    }
}
