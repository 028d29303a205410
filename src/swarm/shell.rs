//! The console's shell (`s`) on a Swarm manager. Docker execs only into containers on the node
//! whose engine it is asked, so the shell goes into a running task of the color on the
//! manager's node when there is one; otherwise it is a shell on the manager with `DOCKER_HOST`
//! set to the configured socket (`docker service ps`, `docker service logs` work there).

use super::api;
use crate::transport::Host;

#[derive(Debug, Clone, PartialEq)]
pub enum ShellTarget {
    /// A running task's container on the manager's node.
    Task(String),
    /// No task of the service runs on the manager's node.
    Manager,
}

/// Where `s` on `swarm_service` (`S-blue`) takes the operator.
pub async fn target(host: &Host, swarm_service: &str) -> ShellTarget {
    match api::proxy_container(host, swarm_service).await {
        Ok(Some(id)) => ShellTarget::Task(id),
        _ => ShellTarget::Manager,
    }
}
