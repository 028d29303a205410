//! `history` and `lock`: what one can roll back to, what happened, who holds the lock.

use color_eyre::eyre::Result;
use futures_util::future::join_all;
use serde::Serialize;

use super::output::Table;
use super::{Context, OutputFormat};
use crate::exit;
use crate::release::audit::{self, AuditRecord};
use crate::release::ledger;
use crate::release::lock::{self, LockState};
use crate::state::read_service;
use crate::transport::Host;
use crate::util::{format_age, format_bytes};

#[derive(Serialize)]
struct Release {
    sha: String,
    created: String,
    size_bytes: u64,
    role: &'static str,
    deployed_at: Option<String>,
    deployed_by: Option<String>,
}

/// One release as the ledger remembers it, with how long it served.
#[derive(Serialize)]
struct Served {
    #[serde(flatten)]
    release: ledger::Release,
    served_secs: Option<i64>,
    /// The ledger's rollback target (what `deckhand rollback` goes to).
    rollback_target: bool,
}

#[derive(Serialize)]
struct HostHistory {
    host: String,
    service: String,
    error: Option<String>,
    /// Every release that went live, oldest first (the host's ledger, reconciled with what the
    /// proxy serves).
    ledger: Vec<Served>,
    releases: Vec<Release>,
    audit: Vec<AuditRecord>,
    malformed_audit_lines: usize,
}

fn hosts_named(ctx: &Context, names: &[String]) -> Vec<crate::config::HostSpec> {
    ctx.env
        .hosts
        .iter()
        .filter(|h| names.is_empty() || names.contains(&h.name))
        .cloned()
        .collect()
}

pub async fn history(ctx: &Context, limit: usize, names: &[String]) -> Result<i32> {
    let specs = hosts_named(ctx, names);
    let per_host = join_all(specs.iter().map(|spec| async move {
        let mut out = Vec::new();
        let host = match Host::connect(spec).await {
            Ok(h) => h,
            Err(e) => {
                for s in &ctx.services {
                    out.push(HostHistory {
                        host: spec.name.clone(),
                        service: s.name.clone(),
                        error: Some(e.to_string()),
                        ledger: vec![],
                        releases: vec![],
                        audit: vec![],
                        malformed_audit_lines: 0,
                    });
                }
                return out;
            }
        };
        let log = audit::read(&host, 2000).await;
        for s in &ctx.services {
            let mut h = HostHistory {
                host: spec.name.clone(),
                service: s.name.clone(),
                error: None,
                ledger: vec![],
                releases: vec![],
                audit: vec![],
                malformed_audit_lines: 0,
            };
            match &log {
                Ok(l) => {
                    h.malformed_audit_lines = l.malformed.len();
                    h.audit = l
                        .records
                        .iter()
                        .filter(|r| r.service == s.name)
                        .cloned()
                        .collect();
                }
                Err(e) => h.error = Some(e.to_string()),
            }
            let status = read_service(&host, s).await;
            match (&status, ledger::read(&host, &s.name).await) {
                (Ok(st), Ok(mut l)) => {
                    let now = chrono::Utc::now();
                    l.reconcile(st, &now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                    let target = l.rollback_target().ok().cloned();
                    h.ledger = l
                        .releases
                        .into_iter()
                        .map(|r| Served {
                            served_secs: r.served_secs(now),
                            rollback_target: target.as_ref() == Some(&r),
                            release: r,
                        })
                        .collect();
                }
                (_, Err(e)) => h.error = Some(e.to_string()),
                (Err(_), _) => {}
            }
            match status {
                Ok(st) => {
                    for img in &st.images {
                        let role = match (img.in_use_by, st.live_color) {
                            (Some(c), Some(l)) if c == l => "live",
                            (Some(_), Some(_)) => "previous",
                            (Some(_), None) => "in use",
                            _ => "retained",
                        };
                        let last_deploy = h.audit.iter().rev().find(|r| {
                            r.to_sha.as_deref() == Some(img.tag.as_str())
                                && r.outcome == audit::AuditOutcome::Success
                        });
                        let color_labels = img.in_use_by.and_then(|c| st.color(c));
                        h.releases.push(Release {
                            sha: img.tag.clone(),
                            created: img.created.clone(),
                            size_bytes: img.size_bytes,
                            role,
                            deployed_at: last_deploy
                                .map(|r| r.time.clone())
                                .or_else(|| color_labels.and_then(|c| c.deployed_at.clone())),
                            deployed_by: last_deploy
                                .map(|r| r.actor.clone())
                                .or_else(|| color_labels.and_then(|c| c.deployed_by.clone())),
                        });
                    }
                }
                Err(e) => h.error = Some(format!("{}: {e}", spec.name)),
            }
            let n = h.audit.len();
            h.audit = h.audit.split_off(n.saturating_sub(limit));
            out.push(h);
        }
        host.close().await;
        out
    }))
    .await;
    let all: Vec<HostHistory> = per_host.into_iter().flatten().collect();
    let code = if all.iter().any(|h| h.error.is_some()) {
        exit::UNREACHABLE
    } else {
        exit::OK
    };
    if ctx.global.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(code);
    }
    let now = chrono::Utc::now();
    for h in &all {
        println!("{} / {}", h.host, h.service);
        if let Some(e) = &h.error {
            println!("  error: {e}");
            continue;
        }
        let mut t = Table::new(["SHA", "ROLE", "AGE", "SIZE", "DEPLOYED BY"]);
        for r in &h.releases {
            let age = chrono::DateTime::parse_from_rfc3339(&r.created)
                .map(|c| format_age((now - c.with_timezone(&chrono::Utc)).num_seconds()))
                .unwrap_or_default();
            let by = match (&r.deployed_by, &r.deployed_at) {
                (Some(b), Some(a)) => format!("{b} at {a}"),
                _ => "-".into(),
            };
            t.row([
                r.sha.clone(),
                r.role.to_string(),
                age,
                format_bytes(r.size_bytes),
                by,
            ]);
        }
        print!("{}", t.render("  "));
        if !h.ledger.is_empty() {
            println!("  releases that served (newest first):");
            let mut t = Table::new(["SHA", "COLOR", "SINCE", "SERVED", "ENDED", "BY"]);
            for r in h.ledger.iter().rev() {
                let rel = &r.release;
                let ended = match rel.ended {
                    None => "live".to_string(),
                    Some(e) => e.as_str().to_string(),
                };
                let mut ended = if rel.healthy {
                    ended
                } else {
                    format!("{ended}, unhealthy")
                };
                if r.rollback_target {
                    ended.push_str(" ← rollback target");
                }
                if rel.reconciled {
                    ended.push_str(" (reconciled)");
                }
                t.row([
                    rel.sha.clone(),
                    rel.color.to_string(),
                    rel.since.clone(),
                    r.served_secs.map(format_age).unwrap_or_default(),
                    ended,
                    rel.by.clone(),
                ]);
            }
            print!("{}", t.render("    "));
        }
        if !h.audit.is_empty() {
            println!("  audit log (newest last):");
            let mut t = Table::new(["TIME", "ACTOR", "ACTION", "FROM", "TO", "OUTCOME", "ERROR"]);
            for r in &h.audit {
                t.row([
                    r.time.clone(),
                    r.actor.clone(),
                    r.action.clone(),
                    r.from_sha.clone().unwrap_or_else(|| "-".into()),
                    r.to_sha.clone().unwrap_or_else(|| "-".into()),
                    r.outcome.to_string(),
                    r.error
                        .as_deref()
                        .map(|e| e.lines().next().unwrap_or("").to_string())
                        .unwrap_or_default(),
                ]);
            }
            print!("{}", t.render("    "));
        }
        if h.malformed_audit_lines > 0 {
            println!(
                "  warning: {} malformed audit line(s) skipped",
                h.malformed_audit_lines
            );
        }
    }
    Ok(code)
}

#[derive(Serialize)]
struct LockRow {
    host: String,
    service: String,
    lock: Option<LockState>,
    error: Option<String>,
}

pub async fn locks(ctx: &Context, names: &[String]) -> Result<i32> {
    let specs = hosts_named(ctx, names);
    let rows = join_all(specs.iter().map(|spec| async move {
        let mut rows = Vec::new();
        match Host::connect(spec).await {
            Ok(host) => {
                for s in &ctx.services {
                    let r = lock::read(&host, &s.name).await;
                    rows.push(LockRow {
                        host: spec.name.clone(),
                        service: s.name.clone(),
                        error: r.as_ref().err().map(ToString::to_string),
                        lock: r.ok().flatten(),
                    });
                }
                host.close().await;
            }
            Err(e) => rows.push(LockRow {
                host: spec.name.clone(),
                service: "-".into(),
                lock: None,
                error: Some(e.to_string()),
            }),
        }
        rows
    }))
    .await;
    let rows: Vec<LockRow> = rows.into_iter().flatten().collect();
    if ctx.global.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let mut t = Table::new(["HOST", "SERVICE", "LOCK"]);
        for r in &rows {
            let cell = match (&r.error, &r.lock) {
                (Some(e), _) => format!("error: {e}"),
                (None, Some(l)) => l.holder(),
                (None, None) => "free".into(),
            };
            t.row([r.host.clone(), r.service.clone(), cell]);
        }
        print!("{}", t.render(""));
    }
    Ok(if rows.iter().any(|r| r.error.is_some()) {
        exit::UNREACHABLE
    } else if rows.iter().any(|r| r.lock.is_some()) {
        exit::LOCKED
    } else {
        exit::OK
    })
}
