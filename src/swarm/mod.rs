//! Docker Swarm as a backend (issue 16): an environment whose one "host" is a Swarm manager
//! reached over SSH. Each color is a Swarm service (`S-blue`, `S-green`, N replicas), the proxy
//! is deckhand's HAProxy as a one-replica Swarm service pinned to that manager (so its container
//! can be exec'd through the manager's Docker API), and a switch moves the live color in
//! HAProxy's memory exactly as on a droplet. Lock, audit log and release ledger are the
//! droplet's, kept in the manager's state directory. Swarm schedules; deckhand never does.
//!
//! One job per file: `names` (the on-Swarm contract), `spec` (service specs, pure), `haproxy`
//! (the proxy's config and runtime commands, pure), `api` (Docker calls), `status` (nodes,
//! replicas, tasks; the `ServiceStatus` the planner reads), `deploy` (plan and run under the
//! lock), `watch` (the watch window after the switch, through `release::watch`), `canary`
//! (weights between the colors), `prune` (the retention rule over the Swarm's releases) and
//! `prune_job` (the job that applies it on every node).

pub mod api;
mod canary;
mod deploy;
mod error;
pub mod haproxy;
pub mod logs;
pub mod names;
mod proxy;
pub mod prune;
pub mod prune_job;
pub mod shell;
pub mod spec;
pub mod status;
mod watch;

pub use deploy::{plan_on_host, run_pinned};
pub use error::SwarmError;
pub use status::{
    NodeStatus, SwarmColor, SwarmService, SwarmStatus, TaskInfo, read_service, read_swarm,
};

use crate::transport::Host;

/// Whether deckhand operates this host as a Swarm manager.
pub fn is_swarm(host: &Host) -> bool {
    host.spec.swarm.is_some()
}
