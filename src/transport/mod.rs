//! Reaching a host: its Docker engine, HTTP services on its loopback, and a few fixed commands.
//!
//! `local` talks to this machine directly. SSH rides the system OpenSSH client through one
//! multiplexed master per host (the user's `~/.ssh/config`, agent and known_hosts just work);
//! Docker and HTTP go through local unix sockets forwarded over that master.

mod docker_client;
mod error;
mod host;
mod http;
mod kept;
mod port_memory;
mod remote_shell;
mod spare_execs;
mod ssh;
pub mod trips;

pub use error::TransportError;
pub use host::{ExecOutput, Host};
pub use http::HttpEndpoint;
pub use kept::{DEFAULT_IDLE as KEEP_CONNECTION_IDLE, disconnect_all, keep_connections};
pub use port_memory::PortMemory;
pub use remote_shell::{MAX_SHELLS, ShellStats};
pub use spare_execs::SpareExecs;
pub use trips::{TripCount, TripKind};
