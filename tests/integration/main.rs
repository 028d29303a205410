//! Integration tests against a real dockerd, a real sshd and a real registry (see harness.rs).

mod alerts;
mod doctor;
mod engine_restart;
mod faults;
mod harness;
mod init;
mod logs;
mod metrics;
mod release;
mod secrets;
mod status;
