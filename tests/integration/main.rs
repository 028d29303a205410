//! Integration tests against a real dockerd, a real sshd and a real registry (see harness.rs).

mod alerts;
mod credentials;
mod engine_restart;
mod faults;
mod harness;
mod hostile;
mod release;
mod secrets;
mod status;
