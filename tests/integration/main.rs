//! Integration tests against a real dockerd, a real sshd and a real registry (see harness.rs).

mod alerts;
mod console_conn;
mod engine_restart;
mod faults;
mod harness;
mod release;
mod runner;
mod secrets;
mod status;
