//! Health and alerts: host metrics over the same SSH connection, the spec's alert rules with
//! Prometheus-like states, alert state kept on the host, optional webhook notifications.

pub mod cycle;
pub mod events;
pub mod exposition;
pub mod metrics;
pub mod notify;
pub mod rules;
pub mod scrape;
pub mod serve;
pub mod store;

pub use cycle::{HostMonitor, MonitorSnapshot, run_cycle, run_cycle_with};
pub use metrics::{ContainerStats, HostMetrics};
pub use rules::{Alert, AlertState};
