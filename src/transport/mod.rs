//! Reaching a host: its Docker engine, HTTP services on its loopback, and a few fixed commands.
//!
//! `local` talks to this machine directly. SSH rides the system OpenSSH client through one
//! multiplexed master per host (the user's `~/.ssh/config`, agent and known_hosts just work);
//! Docker and HTTP go through local unix sockets forwarded over that master.

mod error;
mod host;
mod http;
mod ssh;

pub use error::TransportError;
pub use host::{ExecOutput, Host};
pub use http::HttpEndpoint;
