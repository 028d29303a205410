//! What crosses between the console's state and its runtime: effects out, messages in.

use std::sync::Arc;

use super::picker::RegistryTags;
use crate::release::Event;
use crate::release::runner::{HostPlan, PlanError, Request, RunReport};
use crate::tui::model::{HostUpdate, InspectError};

/// Something the runtime must do: the only way state reaches the outside.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Stop the pollers and start new ones for this environment, tagged `epoch`.
    SwitchEnv {
        env: String,
        epoch: u64,
    },
    /// Plan the request on its hosts (the runner's first phase).
    Plan {
        id: u64,
        request: Request,
    },
    /// Run the plan confirmed in dialog `id`, exactly as planned.
    Execute {
        id: u64,
        request: Request,
    },
    Abort {
        id: u64,
    },
    Logs {
        id: u64,
        host: String,
        container: String,
    },
    StopLogs,
    Inspect {
        id: u64,
        host: String,
        container: String,
    },
    /// List the tags of a service's repository in its registry.
    RegistryTags {
        service: String,
    },
    Shell {
        host: String,
        container: String,
    },
    Quit,
}

/// What the runtime tells the state.
#[derive(Debug, Clone)]
pub enum Msg {
    Host {
        epoch: u64,
        host: String,
        update: HostUpdate,
    },
    Plan {
        id: u64,
        result: Result<Vec<HostPlan>, Arc<PlanError>>,
    },
    Action {
        id: u64,
        event: Event,
    },
    ActionDone {
        id: u64,
        report: Arc<RunReport>,
    },
    Logs {
        id: u64,
        lines: Vec<String>,
    },
    LogsEnded {
        id: u64,
        reason: String,
    },
    Inspect {
        id: u64,
        result: Result<Vec<String>, Arc<InspectError>>,
    },
    RegistryTags {
        service: String,
        result: RegistryTags,
    },
    Note(String),
}
