//! Progress of an action as typed events: printed by the CLI, drawn by the console.

use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use crate::state::Color;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Connect,
    Lock,
    Inspect,
    Pull,
    Network,
    Create,
    Start,
    Health,
    Proxy,
    Switch,
    Confirm,
    Drain,
    StopOld,
    /// The watch window after the switch (issue 13).
    Watch,
    Prune,
    Audit,
    Unlock,
}

impl Step {
    pub fn label(self) -> &'static str {
        match self {
            Step::Connect => "connect",
            Step::Lock => "take the lock",
            Step::Inspect => "read the host",
            Step::Pull => "make sure the image is present",
            Step::Network => "make sure the network exists",
            Step::Create => "create the new container",
            Step::Start => "start the new container",
            Step::Health => "wait until healthy",
            Step::Proxy => "make sure the proxy runs",
            Step::Switch => "switch the proxy",
            Step::Confirm => "confirm through the public port",
            Step::Drain => "drain",
            Step::StopOld => "stop the old color",
            Step::Watch => "watch the new color",
            Step::Prune => "prune old images",
            Step::Audit => "write the audit log",
            Step::Unlock => "release the lock",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    StepStarted {
        host: String,
        step: Step,
        detail: String,
    },
    StepFinished {
        host: String,
        step: Step,
        elapsed_ms: u64,
        detail: String,
        /// The step's remote operations and sequential round trips (st, issue 14).
        #[serde(skip_serializing_if = "Option::is_none")]
        trips: Option<crate::transport::TripCount>,
    },
    StepFailed {
        host: String,
        step: Step,
        error: String,
    },
    PullProgress {
        host: String,
        layer: String,
        status: String,
        current: Option<i64>,
        total: Option<i64>,
    },
    HealthAttempt {
        host: String,
        color: Color,
        attempt: u32,
        healthy: bool,
        detail: String,
    },
    Switched {
        host: String,
        from: Option<Color>,
        to: Color,
    },
    Info {
        host: String,
        message: String,
    },
    /// About once a second during a watch: the new color's answers since it began (and the
    /// stable color's, for a canary).
    Watch {
        host: String,
        color: Color,
        elapsed_ms: u64,
        window_ms: u64,
        requests: u64,
        status_5xx: u64,
        p99_ms: Option<u64>,
        stable_requests: Option<u64>,
        stable_5xx: Option<u64>,
    },
}

/// Where events go. Cloneable; a closed receiver is not an error (the action carries on).
#[derive(Clone, Default)]
pub struct EventSink(Option<UnboundedSender<Event>>);

impl EventSink {
    pub fn new(tx: UnboundedSender<Event>) -> Self {
        Self(Some(tx))
    }
    pub fn none() -> Self {
        Self(None)
    }
    pub fn emit(&self, e: Event) {
        tracing::debug!(event = ?e, "release event");
        if let Some(tx) = &self.0 {
            let _ = tx.send(e);
        }
    }
}
