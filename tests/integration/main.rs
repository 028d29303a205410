//! Integration tests against a real dockerd, a real sshd and a real registry (see harness.rs).

mod alerts;
mod audit_log;
mod engine_restart;
mod faults;
mod harness;
mod ledger;
mod locking;
mod release;
mod secrets;
mod status;
