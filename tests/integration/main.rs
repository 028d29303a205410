//! Integration tests against a real dockerd, a real sshd and a real registry (the harness is the
//! `deckhand-test-support` crate, test-support/src/lib.rs).

use deckhand_test_support as harness;

mod alerts;
mod audit_log;
mod console_conn;
mod console_idle;
mod credentials;
mod doctor;
mod engine_restart;
mod faults;
mod hostile;
mod init;
mod kept_master;
mod ledger;
mod locking;
mod logs;
mod metrics;
mod proxy;
mod release;
mod remote_shell;
mod round_trips;
mod runner;
mod secrets;
mod status;
mod swarm;
mod swarm_cluster;
mod swarm_matrix;
mod swarm_ops;
mod swarm_prune;
mod swarm_watch;
mod watch;
