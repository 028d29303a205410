//! What the console knows about each host: the latest snapshot a background task sent, when it
//! arrived, and what was observed over time (health latencies for the sparkline).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::release::audit::AuditRecord;
use crate::release::lock::LockState;
use crate::state::{Color, HostStatus, ServiceStatus};

/// How many health latencies the sparkline keeps per color.
pub const LATENCY_SAMPLES: usize = 40;
/// A snapshot older than this is marked stale with its age.
pub const STALE_AFTER: Duration = Duration::from_secs(6);

/// One read of a host, as a background task sends it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: HostStatus,
    /// The host's audit log, newest last; an error if it could not be read.
    pub audit: Result<Vec<AuditRecord>, String>,
    /// Lock of each service (by name): `None` when free.
    pub locks: BTreeMap<String, Result<Option<LockState>, String>>,
    /// Metrics and alerts from the monitor (issue 5); `None` until it exists.
    pub monitor: Option<MonitorSnapshot>,
}

/// The shape a monitor snapshot will plug into: host metrics and the alert list.
#[derive(Debug, Clone, Default)]
pub struct MonitorSnapshot {
    pub metrics: Vec<(String, String)>,
    pub alerts: Vec<AlertRow>,
}

#[derive(Debug, Clone)]
pub struct AlertRow {
    pub name: String,
    pub state: AlertState,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertState {
    Pending { left_secs: u64 },
    Firing { since: String },
    Resolved { ago_secs: u64 },
}

/// The background task's view of its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conn {
    Connecting,
    Connected,
    Failed(String),
}

/// What a host's background task reports.
#[derive(Debug, Clone)]
pub enum HostUpdate {
    Connecting,
    Connected,
    Failed(String),
    Snapshot(Box<Snapshot>),
}

#[derive(Debug, Clone)]
pub struct HostView {
    pub name: String,
    pub conn: Conn,
    pub snapshot: Option<Snapshot>,
    pub received: Option<Instant>,
    /// Health latencies observed in successive snapshots, per (service, color).
    pub latency: BTreeMap<(String, Color), VecDeque<u64>>,
    /// Requests per second through the proxy (last-minute rate, ×10), per (service, color).
    pub traffic: BTreeMap<(String, Color), VecDeque<u64>>,
}

impl HostView {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            conn: Conn::Connecting,
            snapshot: None,
            received: None,
            latency: BTreeMap::new(),
            traffic: BTreeMap::new(),
        }
    }

    pub fn apply(&mut self, update: HostUpdate, now: Instant) {
        match update {
            HostUpdate::Connecting => {
                if self.conn != Conn::Connected {
                    self.conn = Conn::Connecting;
                }
            }
            HostUpdate::Connected => self.conn = Conn::Connected,
            HostUpdate::Failed(e) => self.conn = Conn::Failed(e),
            HostUpdate::Snapshot(s) => {
                for svc in &s.status.services {
                    for c in Color::BOTH {
                        if let Some(h) = svc.color(c).and_then(|cs| cs.health.as_ref()) {
                            let q = self.latency.entry((svc.name.clone(), c)).or_default();
                            q.push_back(h.latency_ms);
                            while q.len() > LATENCY_SAMPLES {
                                q.pop_front();
                            }
                        }
                        if let Some(t) = svc.traffic.as_ref().and_then(|t| t.color(c)) {
                            let q = self.traffic.entry((svc.name.clone(), c)).or_default();
                            q.push_back((t.req_per_s * 10.0).round() as u64);
                            while q.len() > LATENCY_SAMPLES {
                                q.pop_front();
                            }
                        }
                    }
                }
                self.conn = if s.status.reachable {
                    Conn::Connected
                } else {
                    Conn::Failed(s.status.error.clone().unwrap_or_default())
                };
                self.snapshot = Some(*s);
                self.received = Some(now);
            }
        }
    }

    pub fn service(&self, name: &str) -> Option<&ServiceStatus> {
        self.snapshot
            .as_ref()
            .and_then(|s| s.status.services.iter().find(|x| x.name == name))
    }

    pub fn age(&self, now: Instant) -> Option<Duration> {
        self.received.map(|r| now.saturating_duration_since(r))
    }

    /// The age, when the data is old enough that the operator should know.
    pub fn stale_age(&self, now: Instant) -> Option<Duration> {
        self.age(now).filter(|a| *a >= STALE_AFTER)
    }

    pub fn lock(&self, service: &str) -> Option<&Result<Option<LockState>, String>> {
        self.snapshot.as_ref().and_then(|s| s.locks.get(service))
    }
}
