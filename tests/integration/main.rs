//! Integration tests against a real dockerd, a real sshd and a real registry (see harness.rs).

mod alerts;
mod harness;
mod release;
mod status;
