//! The release engine: the one implementation of blue/green that the console and CI both use.
//!
//! `plan` decides (pure, unit-tested); `execute` carries a plan out on one host and reports
//! typed `events`; `lock` and `audit` are the host-side records every operator shares.

pub mod actor;
pub mod audit;
mod batch;
pub mod container;
pub mod credentials;
mod docker_checks;
mod error;
pub mod events;
pub mod execute;
mod health_wait;
pub mod ledger;
pub mod lock;
pub mod locked_plan;
pub mod plan;
pub mod proxy;
pub mod prune;
pub mod pull;
pub mod registry;
pub mod runner;
pub mod signals;
pub(crate) mod steps;
pub mod watch;

pub use error::ReleaseError;
pub use events::{Event, EventSink, Step};
pub use execute::{ActionOptions, HostOutcome, deploy_on_host, rollback_on_host};
pub use plan::{DeployPlan, Target, plan_deploy, plan_rollback};
