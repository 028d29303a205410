//! Reading hosts for the metrics exposition, read-only: status, the alert book as the last
//! `alerts` run left it, the locks and the audit log's last release. Nothing is evaluated or
//! written, so `deckhand metrics` from cron changes no host (run `alerts` for that).

use std::time::Instant;

use futures_util::future::join_all;

use super::exposition::{ColorTraffic, HostSample, ServiceSample};
use super::store::{AlertBook, book_path};
use super::{Alert, MonitorSnapshot};
use crate::config::{Environment, HostSpec, Service};
use crate::release::audit::{self, AuditRecord};
use crate::release::lock::{self, LockState};
use crate::state::{ServiceStatus, read_host};
use crate::transport::Host;

/// Audit lines read back to find each service's last release.
const AUDIT_TAIL: usize = 500;

pub async fn scrape_env(env: &Environment, services: &[Service]) -> Vec<HostSample> {
    join_all(env.hosts.iter().map(|h| scrape_host(h, services))).await
}

async fn scrape_host(spec: &HostSpec, services: &[Service]) -> HostSample {
    let started = Instant::now();
    let host = match Host::connect(spec).await {
        Ok(h) => h,
        Err(_) => {
            return HostSample {
                host: spec.name.clone(),
                reachable: false,
                read_seconds: started.elapsed().as_secs_f64(),
                ..Default::default()
            };
        }
    };
    let (status, alerts, (locks, releases)) = tokio::join!(
        read_host(&host, services),
        read_alerts(&host),
        locks_and_releases(&host, services),
    );
    host.close().await;
    HostSample {
        host: spec.name.clone(),
        reachable: true,
        read_seconds: started.elapsed().as_secs_f64(),
        facts: status.facts,
        metrics: None,
        services: samples(status.services, services, locks, releases),
        alerts,
    }
}

/// The exposition's view of one `alerts` cycle (for `alerts --watch --listen`).
pub async fn from_cycle(host: &Host, services: &[Service], snap: &MonitorSnapshot) -> HostSample {
    let (locks, releases) = locks_and_releases(host, services).await;
    HostSample {
        host: snap.host.clone(),
        reachable: true,
        read_seconds: 0.0,
        facts: None,
        metrics: Some(snap.metrics.clone()),
        services: samples(snap.services.clone(), services, locks, releases),
        alerts: snap.alerts.clone(),
    }
}

fn samples(
    statuses: Vec<ServiceStatus>,
    services: &[Service],
    locks: Vec<Option<LockState>>,
    releases: Vec<Option<AuditRecord>>,
) -> Vec<ServiceSample> {
    let mut out = Vec::new();
    for status in statuses {
        let i = services.iter().position(|s| s.name == status.name);
        out.push(ServiceSample {
            lock: i.and_then(|i| locks.get(i).cloned().flatten()),
            last_release: i.and_then(|i| releases.get(i).cloned().flatten()),
            traffic: ColorTraffic::from_state(status.traffic.as_ref()),
            status,
        });
    }
    out
}

async fn read_alerts(host: &Host) -> Vec<Alert> {
    let path = book_path(host);
    match host.exec("cat", &[&path], None).await {
        Ok(o) if o.success() => AlertBook::parse(o.stdout_text().trim())
            .alerts
            .into_values()
            .collect(),
        _ => Vec::new(),
    }
}

async fn locks_and_releases(
    host: &Host,
    services: &[Service],
) -> (Vec<Option<LockState>>, Vec<Option<AuditRecord>>) {
    let (locks, log) = tokio::join!(
        join_all(services.iter().map(|s| lock::read(host, &s.name))),
        audit::read(host, AUDIT_TAIL)
    );
    let locks = locks.into_iter().map(|r| r.ok().flatten()).collect();
    let records = log.map(|l| l.records).unwrap_or_default();
    let releases = services
        .iter()
        .map(|s| last_release(&records, &s.name))
        .collect();
    (locks, releases)
}

/// The newest deploy or rollback of `service` that ended.
pub fn last_release(records: &[AuditRecord], service: &str) -> Option<AuditRecord> {
    records
        .iter()
        .rev()
        .find(|r| {
            r.service == service
                && matches!(r.action.as_str(), "deploy" | "rollback" | "redeploy")
                && r.outcome != "started"
        })
        .cloned()
}
