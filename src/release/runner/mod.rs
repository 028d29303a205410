//! The one loop around the release engine, for both faces: a [`Request`] is planned on every
//! host at once ([`plan`]), the face shows the [`Planned`] value and asks the operator, and the
//! confirmed value runs host by host ([`Planned::run`]) with cancellation, webhook notices and
//! a typed [`RunReport`]. The CLI and the console only confirm and format.

mod plan;
mod report;
mod request;
mod run;

pub use plan::{
    HostPlan, PlanError, Planned, close, connect, connect_for_lock, plan, plan_under_lock,
};
pub use report::{HostError, HostReport, HostResult, NotAttempted, RunReport, ServesNow};
pub use request::{Confirmation, EnvInfo, Request, Verb};
pub use run::{PinMode, RunOptions, TakeOverOffer, outcome_message};
