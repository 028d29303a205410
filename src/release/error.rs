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
    Docker { host: String, detail: String },

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
            Self::Locked { .. } => crate::exit::LOCKED,
            Self::Refused(_) => crate::exit::USAGE,
            Self::BeforeSwitch { source, .. } => source.exit_code(),
            _ => crate::exit::ACTION_FAILED,
        }
    }
}
