//! Integration tests against a real dockerd, a real sshd and a real registry (see harness.rs).

mod alerts;
mod engine_restart;
mod faults;
mod harness;
mod proxy;
mod release;
mod secrets;
mod status;
mod watch;
