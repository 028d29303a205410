use thiserror::Error;

use crate::transport::TransportError;

/// Why an action did not complete. Each says what happened to the service: for everything but
/// `Transport` and `Locked`, the previous release still serves.
#[derive(Debug, Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Transport(Box<TransportError>),

    #[error("{host}: {service} is locked by {holder}\n  {hint}")]
    Locked {
        host: String,
        service: String,
        holder: String,
        hint: String,
        /// The lock is stale or its holder is gone: `--take-over-stale` (or the terminal's
        /// offer) may take it.
        takeover_possible: bool,
    },

    #[error("{host}: {message}")]
    Plan { host: String, message: String },

    #[error("{host}: image {image} cannot be pulled: {detail}")]
    Pull {
        host: String,
        image: String,
        detail: String,
    },

    #[error(
        "{host}: the new {color} container ({sha}) did not become healthy; {live_note}\n{report}"
    )]
    Unhealthy {
        host: String,
        color: String,
        sha: String,
        live_note: String,
        report: String,
    },

    #[error("{host}: switching the proxy failed: {detail}; {live_note}")]
    Switch {
        host: String,
        detail: String,
        live_note: String,
    },

    #[error("{host}: Docker: {detail}")]
    Docker {
        host: String,
        detail: String,
        /// The engine's own error, when the failure came from the Docker API.
        #[source]
        source: Option<bollard::errors::Error>,
    },

    #[error("{host}: aborted by the operator before the switch; {live_note}")]
    Aborted { host: String, live_note: String },

    #[error("{0}")]
    Refused(String),

    /// The watch after the switch saw a breach and switched back (issue 13).
    #[error(
        "{host}: the new {color} release ({sha}) was rolled back automatically by the watch; {live_note}\n{evidence}"
    )]
    RolledBack {
        host: String,
        color: String,
        sha: String,
        live_note: String,
        evidence: String,
    },

    /// The watch could not finish (Ctrl-C, or the proxy could not be read): the route is as
    /// it was and both colors run.
    #[error("{host}: the watch was interrupted ({why}); {live_note}")]
    WatchInterrupted {
        host: String,
        why: String,
        live_note: String,
    },

    #[error("{host}: release ledger: {detail}")]
    Ledger { host: String, detail: String },

    /// Someone removed or took over our lock: we stop without touching anything more.
    #[error(
        "{host}: the lock of {service} is no longer ours ({now}); stopped before {step} without changing anything more; {live_note}"
    )]
    LockLost {
        host: String,
        service: String,
        now: String,
        step: String,
        live_note: String,
    },

    /// The host changed between the operator's confirmation and taking the lock.
    #[error(
        "{host}: the host changed since you confirmed the plan: {what}. Nothing was changed; look at `deckhand status` and run the action again"
    )]
    Changed { host: String, what: String },

    /// A failure before the switch that does not say it itself: the old release still serves.
    #[error("{source}\n  Nothing was switched: {live_note}.")]
    BeforeSwitch {
        #[source]
        source: Box<ReleaseError>,
        live_note: String,
    },
}

impl From<TransportError> for ReleaseError {
    fn from(e: TransportError) -> Self {
        Self::Transport(Box::new(e))
    }
}

impl ReleaseError {
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Transport(_) => crate::exit::UNREACHABLE,
            Self::Locked { .. } | Self::LockLost { .. } => crate::exit::LOCKED,
            Self::Refused(_) => crate::exit::USAGE,
            Self::BeforeSwitch { source, .. } => source.exit_code(),
            _ => crate::exit::ACTION_FAILED,
        }
    }
}
