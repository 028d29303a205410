//! One host's watcher: connect (retrying), read everything once, then follow Docker's event
//! stream: what an event says about a container is shown at once, and only the service whose
//! containers changed is re-read. What events cannot say comes
//! on timers sized for a slow link: `/health` of the running colors every [`HEALTH_EVERY`],
//! the proxy's traffic, the locks and the monitoring cycle (host metrics, alert rules) at the
//! environment's alert interval, and a full read every [`RESYNC_EVERY`] as a safety net (and
//! whenever the stream is opened again). While the stream cannot be opened (dockerd
//! restarting) the host is read every [`POLL_EVERY`] as before, and a stream that breaks
//! because the ssh master is gone makes the watcher reconnect at once.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bollard::models::EventMessage;
use futures_util::future::join_all;
use futures_util::{Stream, StreamExt};
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::model::{HostDown, HostUpdate, MonitorSnapshot, Snapshot};
use super::tasks::{Bg, monitor_view, snapshot};
use crate::config::{AlertThresholds, HostSpec, Service};
use crate::monitor::{HostMonitor, events, notify::Notifier};
use crate::release::{audit, ledger, lock};
use crate::state::{
    Color, ContainerState, HealthReport, ProxyKind, ServiceTraffic, probe_health, read_service,
    read_traffic,
};
use crate::transport::Host;

/// How often the host is read while its event stream is down (and was, before events).
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// How often the running colors' `/health` is probed.
pub const HEALTH_EVERY: Duration = Duration::from_secs(5);
/// The full read that catches what no event says (an image pulled by hand, a file edited).
pub const RESYNC_EVERY: Duration = Duration::from_secs(300);
/// Events come in bursts (die, stop; create, start): one re-read for the burst.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// A read that takes longer than this counts as a failure.
const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Retry delay after a failed connect.
const RETRY_EVERY: Duration = Duration::from_secs(5);
const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Full reads at once across the console's hosts. A full read is a few dozen Docker requests
/// (an archive read and an exec among them); fifty hosts starting together would each wait
/// for all the others and time out, then retry together. The wait for a turn is not timed.
const FULL_READS_AT_ONCE: usize = 8;
static FULL_READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(FULL_READS_AT_ONCE);
/// ssh handshakes at once across the console's hosts: fifty starting together (the console's
/// start, a network blip) each wait for all the others' key exchanges and pass their connect
/// timeout, then retry together. The wait for a turn is not part of the connect timeout.
const CONNECTS_AT_ONCE: usize = 8;
static CONNECTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONNECTS_AT_ONCE);
/// Monitoring cycles at once across hosts (each is a few remote commands and Docker's stats);
/// the wait for a turn is not timed either.
const MONITORS_AT_ONCE: usize = 8;
static MONITORS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MONITORS_AT_ONCE);
/// A full read that failed is tried again after this, doubled per failure in a row: a host
/// that is slow because the machine is busy must not add a full read every 2 s to the load.
const FAILED_READ_BACKOFF_MAX: Duration = Duration::from_secs(30);

type EventStream<'a> =
    Pin<Box<dyn Stream<Item = Result<EventMessage, bollard::errors::Error>> + Send + 'a>>;

/// Slow periodic work, run beside the event stream so an event is never queued behind it.
type Job<'a> = Pin<Box<dyn Future<Output = Done> + Send + 'a>>;

enum Done {
    Health {
        probed: Vec<(String, Color)>,
        reports: Option<Vec<HealthReport>>,
    },
    Monitor(Box<MonitorDone>),
}

struct MonitorDone {
    monitor: HostMonitor,
    traffic: Vec<(String, Result<ServiceTraffic, String>)>,
    locks: Option<Vec<Result<Option<lock::LockState>, crate::release::ReleaseError>>>,
    cycle: Option<crate::monitor::MonitorSnapshot>,
}

async fn run_job(job: &mut Option<Job<'_>>) -> Done {
    match job {
        Some(j) => j.await,
        None => std::future::pending().await,
    }
}

/// Why the watcher of a connection stopped.
enum Ended {
    Cancelled,
    Reconnect,
}

fn host_msg(epoch: u64, name: &str, update: HostUpdate) -> Bg {
    Bg::Msg(super::app::Msg::Host {
        epoch,
        host: name.to_string(),
        update,
    })
}

/// One host's task: connect (retrying while the host is down), then watch it; a dead host
/// reports its error and keeps retrying on its own.
pub async fn watch_host(
    spec: HostSpec,
    services: Vec<Service>,
    thresholds: AlertThresholds,
    epoch: u64,
    tx: mpsc::UnboundedSender<Bg>,
    cancel: CancellationToken,
    refresh: Arc<Notify>,
) {
    let name = spec.name.clone();
    loop {
        let _ = tx.send(host_msg(epoch, &name, HostUpdate::Connecting));
        let connected = tokio::select! {
            () = cancel.cancelled() => return,
            r = async {
                let _turn = CONNECTS.acquire().await;
                Host::connect(&spec).await
            } => r,
        };
        let host = match connected {
            Ok(h) => Arc::new(h),
            Err(e) => {
                let why = Arc::new(HostDown::Connect(e));
                let _ = tx.send(host_msg(
                    epoch,
                    &name,
                    HostUpdate::Down {
                        why,
                        retry_in: RETRY_EVERY,
                    },
                ));
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(RETRY_EVERY) => continue,
                }
            }
        };
        let _ = tx.send(Bg::Connected {
            epoch,
            host: host.clone(),
        });
        let _ = tx.send(host_msg(epoch, &name, HostUpdate::Connected));
        let mut w = Watch {
            host: &host,
            services: &services,
            thresholds: &thresholds,
            epoch,
            tx: &tx,
            cancel: &cancel,
            snap: None,
            failures: 0,
            monitor: HostMonitor::default(),
            notifier: Notifier::from_env(),
            alerts_view: None,
            dirty: BTreeSet::new(),
        };
        match w.follow(&refresh).await {
            Ended::Cancelled => return,
            Ended::Reconnect => {}
        }
    }
}

struct Watch<'a> {
    host: &'a Host,
    services: &'a [Service],
    thresholds: &'a AlertThresholds,
    epoch: u64,
    tx: &'a mpsc::UnboundedSender<Bg>,
    cancel: &'a CancellationToken,
    /// What the console was last sent; patched by every partial read.
    snap: Option<Snapshot>,
    failures: u32,
    monitor: HostMonitor,
    notifier: Notifier,
    alerts_view: Option<MonitorSnapshot>,
    /// Services to re-read at the next flush.
    dirty: BTreeSet<String>,
}

/// A fixed offset per host name below the interval: hosts connected together run their cycles
/// spread over the whole interval, not in a burst.
fn spread(name: &str, interval: Duration) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let span = interval.as_millis().max(1);
    let ms = u128::from(h.finish()) % span;
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// `fut` unless the console stops first (`None`) or it takes longer than READ_TIMEOUT
/// (`Some(None)`).
async fn bounded<T>(cancel: &CancellationToken, fut: impl Future<Output = T>) -> Option<Option<T>> {
    tokio::select! {
        () = cancel.cancelled() => None,
        r = tokio::time::timeout(READ_TIMEOUT, fut) => Some(r.ok()),
    }
}

/// When to read again after `failures` failed full reads in a row (none: the poll interval).
fn retry_after(failures: u32) -> Duration {
    let doubled = POLL_EVERY.saturating_mul(1u32 << failures.min(8));
    if failures == 0 {
        POLL_EVERY
    } else {
        doubled.min(FAILED_READ_BACKOFF_MAX)
    }
}

async fn next_event(
    s: &mut Option<EventStream<'_>>,
) -> Option<Result<EventMessage, bollard::errors::Error>> {
    match s {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

impl<'a> Watch<'a> {
    fn name(&self) -> &str {
        self.host.name()
    }

    fn send_update(&self, update: HostUpdate) {
        let _ = self.tx.send(host_msg(self.epoch, self.name(), update));
    }

    fn send(&self, fresh: Option<BTreeSet<String>>) {
        if let Some(s) = &self.snap {
            let mut s = s.clone();
            s.monitor.clone_from(&self.alerts_view);
            s.fresh = fresh;
            self.send_update(HostUpdate::Snapshot(Box::new(s)));
        }
    }

    async fn bounded<T>(&self, fut: impl Future<Output = T>) -> Option<Option<T>> {
        bounded(self.cancel, fut).await
    }

    async fn follow(&mut self, refresh: &Notify) -> Ended {
        let mut stream: Option<EventStream<'a>> = None;
        let mut flush_at: Option<Instant> = None;
        let mut next_full = Instant::now();
        let mut next_health = Instant::now() + HEALTH_EVERY;
        let mut health_job: Option<Job<'a>> = None;
        let mut monitor_job: Option<Job<'a>> = None;
        // Hosts connected together spread their cycles over the interval, not all at once.
        let mut next_monitor = Instant::now() + spread(self.name(), self.thresholds.interval);
        loop {
            if Instant::now() >= next_full {
                // Subscribed before the read, so a change during the read is not missed.
                if stream.is_none() {
                    stream = match self
                        .bounded(events::subscribe(self.host, self.services))
                        .await
                    {
                        None => return Ended::Cancelled,
                        Some(Some(Ok(s))) => Some(Box::pin(s)),
                        Some(Some(Err(e))) => {
                            tracing::warn!(host = %self.name(), error = %crate::util::error_chain(&e), "cannot follow Docker's events; reading on a timer");
                            None
                        }
                        Some(None) => None,
                    };
                }
                if let Err(end) = self.full_read().await {
                    return end;
                }
                self.dirty.clear();
                flush_at = None;
                // A host read in full without error waits for events; otherwise it is read
                // again soon, as before events.
                let whole = self.snap.as_ref().is_some_and(|s| s.status.error.is_none());
                // A Swarm manager's container events cover its own node only: a worker going
                // down or a task moving says nothing here, so a Swarm is read on the timer.
                let swarm = crate::swarm::is_swarm(self.host);
                next_full = Instant::now()
                    + if stream.is_some() && self.failures == 0 && whole && !swarm {
                        RESYNC_EVERY
                    } else {
                        retry_after(self.failures)
                    };
            }
            if Instant::now() >= next_monitor && monitor_job.is_none() {
                monitor_job = self.start_monitor();
                // Counted from the cycle's end (below): cycles never overlap, and a slow link
                // does not run them back to back.
                next_monitor = Instant::now() + self.thresholds.interval;
            }
            if !self.dirty.is_empty() && flush_at.is_none() {
                flush_at = Some(Instant::now() + DEBOUNCE);
            }
            tokio::select! {
                () = self.cancel.cancelled() => return Ended::Cancelled,
                ev = next_event(&mut stream) => match ev {
                    Some(Ok(msg)) => {
                        if let Some(s) = events::service_of(&msg, self.services) {
                            tracing::debug!(host = %self.name(), service = s, action = ?msg.action, "docker event");
                            self.dirty.insert(s.to_string());
                            if self.apply_event(s, &msg) {
                                self.send(Some(BTreeSet::new()));
                            }
                        }
                    }
                    other => {
                        let why = match other {
                            Some(Err(e)) => crate::util::error_chain(&e),
                            _ => "the stream ended".to_string(),
                        };
                        tracing::warn!(host = %self.name(), why, "Docker's event stream broke");
                        stream = None;
                        if let Err(end) = self.check_connection().await {
                            return end;
                        }
                        // dockerd restarted, or a proxy in between closed it: read and
                        // subscribe again (a failing read counts as before).
                        next_full = Instant::now();
                    }
                },
                () = sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => {
                    flush_at = None;
                    if self.reread().await.is_err() {
                        next_full = Instant::now();
                    }
                }
                () = sleep_until(next_health), if health_job.is_none() => {
                    next_health = Instant::now() + HEALTH_EVERY;
                    health_job = self.start_health();
                    if health_job.is_none() {
                        // Nothing to probe: the snapshot is as fresh as the stream.
                        self.send(Some(BTreeSet::new()));
                    }
                    if let Err(end) = self.check_connection().await {
                        return end;
                    }
                }
                done = run_job(&mut health_job) => {
                    health_job = None;
                    if let Done::Health { probed, reports } = done {
                        self.finish_health(probed, reports);
                    }
                }
                done = run_job(&mut monitor_job) => {
                    monitor_job = None;
                    next_monitor = Instant::now() + self.thresholds.interval;
                    if let Done::Monitor(m) = done {
                        let MonitorDone { monitor, traffic, locks, cycle } = *m;
                        self.monitor = monitor;
                        self.finish_monitor(traffic, locks, cycle);
                    }
                }
                () = sleep_until(next_monitor), if monitor_job.is_none() => {}
                () = sleep_until(next_full) => {}
                () = refresh.notified() => next_full = Instant::now(),
            }
        }
    }

    /// Shows what an event says about a color's container at once (the re-read of its service
    /// follows within [`DEBOUNCE`] and a read; it also works out the problems again).
    fn apply_event(&mut self, service: &str, msg: &EventMessage) -> bool {
        let Some((name, change)) = events::change_of(msg) else {
            return false;
        };
        let Some(s) = self
            .snap
            .as_mut()
            .and_then(|x| x.status.services.iter_mut().find(|x| x.name == service))
        else {
            return false;
        };
        let Some(color) = Color::BOTH
            .into_iter()
            .find(|c| name == format!("{service}-{c}"))
        else {
            return false;
        };
        let Some(slot) = s.colors.get_mut(&color) else {
            return false;
        };
        match (change, slot.as_mut()) {
            (events::Change::Gone, _) => *slot = None,
            (events::Change::State { state, exit_code }, Some(cs)) => {
                cs.state = state;
                if state != ContainerState::Running {
                    cs.health = None;
                    cs.docker_health = None;
                    cs.exit_code = exit_code.or(cs.exit_code);
                }
            }
            (events::Change::Health(h), Some(cs)) => cs.docker_health = Some(h),
            (_, None) => return false,
        }
        true
    }

    /// Reads everything, as the console did on every poll. A read that fails or times out
    /// counts; three in a row, or a lost ssh master, end the connection.
    async fn full_read(&mut self) -> Result<(), Ended> {
        tracing::debug!(host = %self.name(), failures = self.failures, "full read");
        let turn = tokio::select! {
            () = self.cancel.cancelled() => return Err(Ended::Cancelled),
            t = FULL_READS.acquire() => t,
        };
        let read = self.bounded(snapshot(self.host, self.services)).await;
        drop(turn);
        match read {
            None => return Err(Ended::Cancelled),
            Some(Some(snap)) => {
                let broken = snap.status.error.is_some() && snap.status.services.is_empty();
                self.failures = if broken { self.failures + 1 } else { 0 };
                // Facts the monitor read since are newer than none.
                self.snap = Some(snap);
                self.send(None);
            }
            Some(None) => {
                self.failures += 1;
                self.send_update(HostUpdate::Down {
                    why: Arc::new(HostDown::ReadTimeout {
                        host: self.name().to_string(),
                        secs: READ_TIMEOUT.as_secs(),
                    }),
                    retry_in: retry_after(self.failures),
                });
            }
        }
        if self.failures > 0 {
            self.check_connection().await?;
        }
        if self.failures >= 3 {
            // The connection is probably gone: start over with a new one.
            return Err(Ended::Reconnect);
        }
        Ok(())
    }

    /// A lost ssh master says so (typed): reconnect now. Asks the local master only (no bytes
    /// on the wire).
    async fn check_connection(&self) -> Result<(), Ended> {
        if let Err(e) = self.host.check_alive().await
            && e.is_connection_lost()
        {
            self.send_update(HostUpdate::Down {
                why: Arc::new(HostDown::Connect(e)),
                retry_in: Duration::ZERO,
            });
            return Err(Ended::Reconnect);
        }
        Ok(())
    }

    fn service(&self, name: &str) -> Option<&'a Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Re-reads the services events named: their containers, proxy, images, health, lock and
    /// ledger, and the audit tail (a deploy writes it). `Err`: a full read should say why.
    async fn reread(&mut self) -> Result<(), ()> {
        let names = std::mem::take(&mut self.dirty);
        let svcs: Vec<&Service> = names.iter().filter_map(|n| self.service(n)).collect();
        let host = self.host;
        let reads = join_all(svcs.iter().map(|s| async move {
            tokio::join!(
                read_service(host, s),
                lock::read(host, &s.name),
                ledger::read(host, &s.name)
            )
        }));
        let (reads, audit) = match self
            .bounded(async { tokio::join!(reads, audit::read(host, 50)) })
            .await
        {
            Some(Some(r)) => r,
            _ => return Err(()),
        };
        let Some(snap) = self.snap.as_mut() else {
            return Err(());
        };
        let mut failed = false;
        for (svc, (status, lock, ledger)) in svcs.iter().zip(reads) {
            let Ok(status) = status else {
                failed = true;
                continue;
            };
            let services = &mut snap.status.services;
            match services.iter_mut().find(|s| s.name == svc.name) {
                Some(old) => *old = status,
                None => {
                    // In the config's order, as a full read lists them.
                    let rank = |n: &str| self.services.iter().position(|s| s.name == n);
                    let at = services
                        .iter()
                        .position(|s| rank(&s.name) > rank(&svc.name))
                        .unwrap_or(services.len());
                    services.insert(at, status);
                }
            }
            if snap
                .status
                .error
                .as_deref()
                .is_some_and(|e| e.contains(&format!("`{}`", svc.name)))
            {
                snap.status.error = None;
            }
            snap.locks.insert(svc.name.clone(), lock.map_err(Arc::new));
            snap.ledgers
                .insert(svc.name.clone(), ledger.map_err(Arc::new));
        }
        snap.audit = audit.map(|l| l.records).map_err(Arc::new);
        self.send(Some(names));
        if failed { Err(()) } else { Ok(()) }
    }

    /// Probes `/health` of every running color, as a job beside the event stream (a probe
    /// can take its whole timeout). `None`: nothing runs.
    fn start_health(&self) -> Option<Job<'a>> {
        let snap = self.snap.as_ref()?;
        let mut targets = Vec::new();
        for s in &snap.status.services {
            let Some(cfg) = self.service(&s.name) else {
                continue;
            };
            for c in Color::BOTH {
                if let Some(cs) = s.color(c)
                    && cs.state == ContainerState::Running
                    && let Some(port) = cs.host_port
                {
                    targets.push((s.name.clone(), c, port, cfg.health_path.clone()));
                }
            }
        }
        if targets.is_empty() {
            return None;
        }
        let host = self.host;
        Some(Box::pin(async move {
            let probes =
                join_all(targets.iter().map(|(_, _, port, path)| {
                    probe_health(host, *port, path, HEALTH_PROBE_TIMEOUT)
                }));
            let reports = tokio::time::timeout(READ_TIMEOUT, probes).await.ok();
            let probed = targets.into_iter().map(|(s, c, _, _)| (s, c)).collect();
            Done::Health { probed, reports }
        }))
    }

    /// The same verdict patches the snapshot (new latency and body); a changed one makes its
    /// service dirty, so the reader works its problems out again.
    fn finish_health(&mut self, probed: Vec<(String, Color)>, reports: Option<Vec<HealthReport>>) {
        let (Some(reports), Some(snap)) = (reports, self.snap.as_mut()) else {
            return;
        };
        let mut fresh = BTreeSet::new();
        for ((svc, color), report) in probed.into_iter().zip(reports) {
            let Some(Some(cs)) = snap
                .status
                .services
                .iter_mut()
                .find(|s| s.name == svc)
                .and_then(|s| s.colors.get_mut(&color))
            else {
                continue;
            };
            if cs.state != ContainerState::Running {
                // Stopped while probed (an event said so): the probe's failure is no news.
                continue;
            }
            if cs.health.as_ref().map(|h| &h.error) == Some(&report.error) {
                cs.health = Some(report);
                fresh.insert(svc);
            } else {
                tracing::debug!(host = %self.host.name(), service = %svc, "health verdict changed: re-read");
                self.dirty.insert(svc);
            }
        }
        self.send(Some(fresh));
    }

    /// The environment's monitoring cycle (metrics, alert rules, the book on the host), as a
    /// job beside the event stream, after the parts no event reports: the proxy's traffic (a
    /// switch in HAProxy's memory is not a container event) and the locks. The cycle works on
    /// the services as they stand with that traffic.
    fn start_monitor(&mut self) -> Option<Job<'a>> {
        let snap = self.snap.as_ref()?;
        let (host, services, thresholds) = (self.host, self.services, self.thresholds);
        let proxied: Vec<&'a Service> = snap
            .status
            .services
            .iter()
            .filter(|s| s.proxy.running && s.proxy.kind == Some(ProxyKind::Haproxy))
            .filter_map(|s| services.iter().find(|c| c.name == s.name))
            .collect();
        let statuses = snap
            .status
            .error
            .is_none()
            .then(|| snap.status.services.clone());
        let mut monitor = std::mem::take(&mut self.monitor);
        let notifier = self.notifier.clone();
        Some(Box::pin(async move {
            // Held for the whole cycle; its own time limits start once it has a turn.
            let _turn = MONITORS.acquire().await;
            let reads = async {
                tokio::join!(
                    join_all(proxied.iter().map(|s| read_traffic(host, s))),
                    join_all(services.iter().map(|s| lock::read(host, &s.name)))
                )
            };
            let Ok((traffic, locks)) = tokio::time::timeout(READ_TIMEOUT, reads).await else {
                return Done::Monitor(Box::new(MonitorDone {
                    monitor,
                    traffic: Vec::new(),
                    locks: None,
                    cycle: None,
                }));
            };
            let traffic: Vec<(String, Result<ServiceTraffic, String>)> = proxied
                .iter()
                .map(|s| s.name.clone())
                .zip(traffic)
                .collect();
            let known = statuses.map(|mut st| {
                for s in &mut st {
                    if let Some((_, Ok(t))) = traffic.iter().find(|(n, _)| *n == s.name) {
                        s.traffic = Some(t.clone());
                    }
                }
                st
            });
            let cycle = crate::monitor::run_cycle_with(
                host,
                services,
                known,
                thresholds,
                &mut monitor,
                &notifier,
                chrono::Utc::now(),
            );
            let cycle = tokio::time::timeout(READ_TIMEOUT, cycle).await.ok();
            Done::Monitor(Box::new(MonitorDone {
                monitor,
                traffic,
                locks: Some(locks),
                cycle,
            }))
        }))
    }

    fn finish_monitor(
        &mut self,
        traffic: Vec<(String, Result<ServiceTraffic, String>)>,
        locks: Option<Vec<Result<Option<lock::LockState>, crate::release::ReleaseError>>>,
        cycle: Option<crate::monitor::MonitorSnapshot>,
    ) {
        let Some(snap) = self.snap.as_mut() else {
            return;
        };
        let rotation = |t: &ServiceTraffic| -> Vec<Color> {
            t.colors
                .iter()
                .filter(|(_, c)| c.in_rotation)
                .map(|(c, _)| *c)
                .collect()
        };
        for (name, t) in traffic {
            let Some(s) = snap.status.services.iter_mut().find(|s| s.name == name) else {
                continue;
            };
            match (t, &s.traffic) {
                // The same colors in rotation: new figures, same route.
                (Ok(t), Some(old)) if rotation(&t) == rotation(old) => s.traffic = Some(t),
                // A switch (or a proxy that stopped answering): the reader works it out.
                _ => {
                    tracing::debug!(host = %self.host.name(), service = %name, "proxy rotation changed: re-read");
                    self.dirty.insert(name);
                }
            }
        }
        for (svc, l) in self.services.iter().zip(locks.unwrap_or_default()) {
            let same = match (snap.locks.get(&svc.name), &l) {
                (Some(Ok(a)), Ok(b)) => a == b,
                _ => false,
            };
            if !same {
                // Taken or released by someone: what they did is in the audit log and the
                // ledger, which the re-read brings.
                tracing::debug!(host = %self.host.name(), service = %svc.name, "lock changed: re-read");
                self.dirty.insert(svc.name.clone());
            }
        }
        if let Some(m) = cycle {
            if let Some(f) = snap.status.facts.as_mut() {
                // The cycle read the numbers the facts show: keep them current.
                let x = &m.metrics;
                f.mem_total_bytes = x.mem_total_bytes.or(f.mem_total_bytes);
                f.mem_available_bytes = x.mem_available_bytes.or(f.mem_available_bytes);
                f.load_average = x.load_average.or(f.load_average);
                f.disk_root = x.disk_root.clone().or(f.disk_root.take());
                f.disk_docker = x.disk_docker.clone().or(f.disk_docker.take());
            }
            self.alerts_view = Some(monitor_view(&m, self.thresholds, chrono::Utc::now()));
        }
        self.send(Some(BTreeSet::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_reads_back_off_to_a_ceiling() {
        assert_eq!(retry_after(0), POLL_EVERY);
        assert_eq!(retry_after(1), POLL_EVERY * 2);
        assert_eq!(retry_after(2), POLL_EVERY * 4);
        assert_eq!(retry_after(9), FAILED_READ_BACKOFF_MAX);
        assert_eq!(retry_after(u32::MAX), FAILED_READ_BACKOFF_MAX);
    }

    #[test]
    fn fifty_hosts_spread_their_cycles_over_the_interval() {
        let interval = Duration::from_secs(15);
        let offsets: Vec<Duration> = (1..=50)
            .map(|i| spread(&format!("h{i:02}"), interval))
            .collect();
        assert!(offsets.iter().all(|o| *o < interval));
        // Not bunched in the first seconds: a third or more start after 5 s.
        let late = offsets
            .iter()
            .filter(|o| **o >= Duration::from_secs(5))
            .count();
        assert!(late >= 17, "{late} of 50 after 5 s: {offsets:?}");
    }
}
