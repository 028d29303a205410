//! Why a Swarm operation failed; converted to a `ReleaseError` at the engine's edge.

use thiserror::Error;

use crate::release::ReleaseError;

#[derive(Debug, Error)]
pub enum SwarmError {
    #[error("{host}: Docker Swarm: {what}: {source}")]
    Docker {
        host: String,
        what: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error(
        "{host}: this Docker engine is not a Swarm manager ({state}).\n  Fix: point `swarm.manager` at a manager node (`docker node ls` works there), or use `hosts` for plain droplets"
    )]
    NotManager { host: String, state: String },

    #[error("{host}: {message}")]
    Proxy { host: String, message: String },

    #[error("{host}: {message}")]
    Tasks { host: String, message: String },

    #[error(transparent)]
    Transport(#[from] crate::transport::TransportError),
}

impl SwarmError {
    /// For readers whose error type is the Docker client's (`state::read_service`): the
    /// engine's own error when there is one, else this one's words as a server error.
    pub fn into_docker(self) -> bollard::errors::Error {
        match self {
            SwarmError::Docker { source, .. } => source,
            other => bollard::errors::Error::DockerResponseServerError {
                status_code: 500,
                message: other.to_string(),
            },
        }
    }

    pub fn docker(host: &str, what: impl Into<String>, source: bollard::errors::Error) -> Self {
        SwarmError::Docker {
            host: host.to_string(),
            what: what.into(),
            source,
        }
    }
}

impl From<SwarmError> for ReleaseError {
    fn from(e: SwarmError) -> Self {
        match e {
            SwarmError::Transport(t) => ReleaseError::from(t),
            SwarmError::Docker { host, what, source } => ReleaseError::Docker {
                host,
                detail: format!("{what}: {}", crate::util::error_chain(&source)),
                source: Some(source),
            },
            SwarmError::NotManager { host, state } => ReleaseError::Plan {
                host: host.clone(),
                message: SwarmError::NotManager { host, state }
                    .to_string()
                    .split_once(": ")
                    .map_or_else(String::new, |(_, m)| m.to_string()),
            },
            SwarmError::Proxy { host, message } | SwarmError::Tasks { host, message } => {
                ReleaseError::Docker {
                    host,
                    detail: message,
                    source: None,
                }
            }
        }
    }
}
