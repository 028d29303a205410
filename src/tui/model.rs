//! What the console knows about each host: the latest snapshot a background task sent, when it
//! arrived, and what was observed over time (health latencies for the sparkline).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::release::ReleaseError;
use crate::release::audit::AuditRecord;
use crate::release::ledger::Ledger;
use crate::release::lock::LockState;
use crate::state::{Color, HostStatus, ServiceStatus};
use crate::transport::TransportError;

/// How many health latencies the sparkline keeps per color.
pub const LATENCY_SAMPLES: usize = 40;
/// A snapshot older than this is marked stale with its age. The watcher sends one at least
/// every `tasks::HEALTH_EVERY` (5 s) while the host answers.
pub const STALE_AFTER: Duration = Duration::from_secs(15);

/// One read of a host, as a background task sends it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: HostStatus,
    /// The host's audit log, newest last; an error if it could not be read.
    pub audit: Result<Vec<AuditRecord>, Arc<ReleaseError>>,
    /// Lock of each service (by name): `None` when free.
    pub locks: BTreeMap<String, Result<Option<LockState>, Arc<ReleaseError>>>,
    /// Release ledger of each service (by name), read with the rest of the snapshot: where
    /// "previous" comes from (the rollback target) and the picker's marks.
    pub ledgers: BTreeMap<String, Result<Ledger, Arc<ReleaseError>>>,
    /// Metrics and alerts from the monitor (issue 5); `None` until it exists.
    pub monitor: Option<MonitorSnapshot>,
    /// The services whose `/health` was probed for this snapshot (the latency sparkline takes
    /// a point from these only); `None`: all of them.
    pub fresh: Option<std::collections::BTreeSet<String>>,
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

/// An alert's state as instants (unix seconds); ages and time left are computed when drawn,
/// by the state's clock, like every other age on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertState {
    Pending { fires_at: i64 },
    Firing { since: i64 },
    Resolved { at: i64 },
}

/// Why a host is down.
#[derive(Debug, Error)]
pub enum HostDown {
    #[error(transparent)]
    Connect(#[from] TransportError),
    #[error("{host}: reading the host took longer than {secs}s")]
    ReadTimeout { host: String, secs: u64 },
    /// The host answered, but reading it back failed (as the state reader said).
    #[error("{detail}")]
    Unreadable { detail: String },
}

/// The background task's view of its connection.
#[derive(Debug, Clone)]
pub enum Conn {
    /// The first connect is under way.
    Connecting,
    Connected,
    /// Unreachable since `since` (wall clock `since_unix`). The poller tries again at
    /// `retry_at`; `None` while a try is under way.
    Down {
        since: Instant,
        since_unix: i64,
        why: Arc<HostDown>,
        retry_at: Option<Instant>,
        /// Tries since it went down.
        attempts: u32,
    },
}

impl Conn {
    pub fn is_up(&self) -> bool {
        matches!(self, Conn::Connected)
    }

    pub fn is_down(&self) -> bool {
        matches!(self, Conn::Down { .. })
    }

    /// `down since 10:00:00 UTC (3m ago); next try in 4s`, by the state's clock; the why is
    /// shown beside it.
    pub fn down_text(&self, now: Instant, now_unix: i64) -> Option<String> {
        let Conn::Down {
            since_unix,
            retry_at,
            attempts,
            ..
        } = self
        else {
            return None;
        };
        let at = chrono::DateTime::from_timestamp(*since_unix, 0)
            .map_or_else(String::new, |t| t.format("%H:%M:%S UTC").to_string());
        let next = match retry_at {
            Some(r) => format!(
                "next try in {}",
                crate::util::format_age(
                    i64::try_from(r.saturating_duration_since(now).as_secs()).unwrap_or(0)
                )
            ),
            None => format!("trying again now (attempt {})", attempts + 1),
        };
        Some(format!(
            "down since {at} ({} ago); {next}",
            crate::util::format_age(now_unix - since_unix)
        ))
    }
}

/// What a host's background task reports.
#[derive(Debug, Clone)]
pub enum HostUpdate {
    /// A connect starts (the first, or a retry).
    Connecting,
    Connected,
    /// Down; the next try comes after `retry_in`.
    Down {
        why: Arc<HostDown>,
        retry_in: Duration,
    },
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

    /// Marks the host down (keeping when it went down), with the next try after `retry_in`.
    fn down(&mut self, why: Arc<HostDown>, retry_in: Option<Duration>, now: Instant, unix: i64) {
        let retry_at = retry_in.map(|d| now + d);
        match &mut self.conn {
            Conn::Down {
                why: w,
                retry_at: r,
                ..
            } => {
                *w = why;
                *r = retry_at;
            }
            c => {
                *c = Conn::Down {
                    since: now,
                    since_unix: unix,
                    why,
                    retry_at,
                    attempts: 0,
                }
            }
        }
    }

    pub fn apply(&mut self, update: HostUpdate, now: Instant, now_unix: i64) {
        match update {
            HostUpdate::Connecting => match &mut self.conn {
                // A retry of a host that is down: it stays down (with since and why) until the
                // connect succeeds; a host that accepts TCP and never speaks SSH would otherwise
                // read "connecting" forever.
                Conn::Down {
                    retry_at, attempts, ..
                } => {
                    *retry_at = None;
                    *attempts += 1;
                }
                Conn::Connected => {}
                c => *c = Conn::Connecting,
            },
            HostUpdate::Connected => self.conn = Conn::Connected,
            HostUpdate::Down { why, retry_in } => self.down(why, Some(retry_in), now, now_unix),
            HostUpdate::Snapshot(s) => {
                for svc in &s.status.services {
                    let probed = s.fresh.as_ref().is_none_or(|f| f.contains(&svc.name));
                    // A traffic read is one point, however many snapshots carry it.
                    let traffic_at = |v: &HostView| {
                        v.service(&svc.name)
                            .and_then(|x| x.traffic.as_ref())
                            .map(|t| t.at)
                    };
                    let new_traffic =
                        svc.traffic.as_ref().map(|t| t.at) != traffic_at(self) || s.fresh.is_none();
                    for c in Color::BOTH {
                        if let Some(h) = svc
                            .color(c)
                            .and_then(|cs| cs.health.as_ref())
                            .filter(|_| probed)
                        {
                            let q = self.latency.entry((svc.name.clone(), c)).or_default();
                            q.push_back(h.latency_ms);
                            while q.len() > LATENCY_SAMPLES {
                                q.pop_front();
                            }
                        }
                        if let Some(t) = svc
                            .traffic
                            .as_ref()
                            .and_then(|t| t.color(c))
                            .filter(|_| new_traffic)
                        {
                            let q = self.traffic.entry((svc.name.clone(), c)).or_default();
                            q.push_back((t.req_per_s * 10.0).round() as u64);
                            while q.len() > LATENCY_SAMPLES {
                                q.pop_front();
                            }
                        }
                    }
                }
                if s.status.reachable {
                    self.conn = Conn::Connected;
                } else {
                    let detail = s.status.error.clone().unwrap_or_default();
                    self.down(
                        Arc::new(HostDown::Unreadable { detail }),
                        None,
                        now,
                        now_unix,
                    );
                }
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

    /// The service's release ledger as last read; `None` when unread or unreadable.
    pub fn ledger(&self, name: &str) -> Option<&Ledger> {
        self.snapshot
            .as_ref()
            .and_then(|s| s.ledgers.get(name))
            .and_then(|l| l.as_ref().ok())
    }

    /// Where `service`'s rollback (no REF) would go on this host, as the engine plans it.
    pub fn rollback_target(&self, service: &str) -> Option<(Option<Color>, String)> {
        rollback_target(self.service(service)?, self.ledger(service))
    }

    pub fn age(&self, now: Instant) -> Option<Duration> {
        self.received.map(|r| now.saturating_duration_since(r))
    }

    /// The age, when the data is old enough that the operator should know.
    pub fn stale_age(&self, now: Instant) -> Option<Duration> {
        self.age(now).filter(|a| *a >= STALE_AFTER)
    }

    /// Why the host is down, if it is.
    pub fn down_reason(&self) -> Option<&HostDown> {
        match &self.conn {
            Conn::Down { why, .. } => Some(why),
            _ => None,
        }
    }

    pub fn lock(&self, service: &str) -> Option<&Result<Option<LockState>, Arc<ReleaseError>>> {
        self.snapshot.as_ref().and_then(|s| s.locks.get(service))
    }
}

/// Why the inspect view could not be filled.
#[derive(Debug, Error)]
pub enum InspectError {
    #[error("{host} is not connected")]
    NotConnected { host: String },
    #[error("{host}: inspect {container}: {}", crate::util::error_chain(.source))]
    Docker {
        host: String,
        container: String,
        #[source]
        source: bollard::errors::Error,
    },
    #[error("inspect {container}: {source}")]
    Json {
        container: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The release a rollback (no REF) would go to, as `release::plan::plan_rollback` picks it:
/// the ledger's last good release before the live one; on a host whose ledger has no earlier
/// release, the kept (stopped) other color. With the color whose container holds it, if any
/// (none: the rollback recreates it from the retained image). `None`: no target, or the
/// ledger is unreadable (the engine refuses then too).
pub fn rollback_target(
    s: &ServiceStatus,
    ledger: Option<&Ledger>,
) -> Option<(Option<Color>, String)> {
    let mut ledger = ledger?.clone();
    // What the proxy serves wins, as under the lock (the write happens there, not here).
    ledger.reconcile(s, "");
    let sha = match ledger.rollback_target() {
        Ok(r) => r.sha.clone(),
        Err(_) if ledger.releases.len() <= 1 => {
            let other = s.live_color?.other();
            let cs = s.color(other)?;
            return (cs.state != crate::state::ContainerState::Running)
                .then_some(())
                .and(cs.sha.clone())
                .map(|sha| (Some(other), sha));
        }
        Err(_) => return None,
    };
    let color = Color::BOTH.into_iter().find(|c| {
        s.live_color != Some(*c)
            && s.color(*c)
                .is_some_and(|cs| cs.sha.as_deref() == Some(&sha))
    });
    Some((color, sha))
}
