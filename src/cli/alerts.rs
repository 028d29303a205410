//! `deckhand alerts [--watch]`: evaluates the alert rules on every host; exits 5 when any fires,
//! so a cron job or a CI smoke step can use it.

use std::sync::Arc;

use color_eyre::eyre::Result;
use futures_util::future::join_all;
use tokio::sync::Mutex;

use super::output::Table;
use super::{Context, OutputFormat};
use crate::exit;
use crate::monitor::notify::Notifier;
use crate::monitor::{AlertState, HostMonitor, MonitorSnapshot, run_cycle};
use crate::transport::Host;
use crate::util::{format_age, format_duration};

struct Watched {
    spec: crate::config::HostSpec,
    host: Option<Host>,
    monitor: HostMonitor,
    /// The last cycle as the metrics endpoint shows it (only with `--listen`).
    sample: Option<crate::monitor::exposition::HostSample>,
}

pub async fn run(ctx: &Context, watch: bool, listen: Option<std::net::SocketAddr>) -> Result<i32> {
    let notifier = Notifier::from_env();
    let published = match listen {
        Some(addr) => {
            let p = crate::monitor::serve::Published::default();
            match crate::monitor::serve::serve(addr, p.clone()).await {
                Ok(bound) => eprintln!("serving metrics at http://{bound}/metrics"),
                Err(e) => {
                    eprintln!("error: --listen {addr}: {e}");
                    return Ok(exit::USAGE);
                }
            }
            Some(p)
        }
        None => None,
    };
    let hosts: Vec<Arc<Mutex<Watched>>> = ctx
        .env
        .hosts
        .iter()
        .map(|spec| {
            Arc::new(Mutex::new(Watched {
                spec: spec.clone(),
                host: None,
                monitor: HostMonitor::default(),
                sample: None,
            }))
        })
        .collect();
    // One handler for the whole run: a fresh `ctrl_c()` per sleep would miss (and, once
    // registered, swallow) a Ctrl-C that arrives while a cycle runs.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut code = exit::OK;
    loop {
        let started = std::time::Instant::now();
        let results = tokio::select! {
            r = join_all(hosts.iter().map(|w| cycle(w.clone(), ctx, &notifier, published.is_some()))) => r,
            _ = &mut interrupted => break,
        };
        let cycle_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        code = exit_code(&results);
        print(ctx, &results, cycle_ms);
        if let Some(p) = &published {
            let mut samples = Vec::new();
            for (w, r) in hosts.iter().zip(&results) {
                let sample = w.lock().await.sample.take();
                samples.push(match (r, sample) {
                    (Ok(_), Some(s)) => s,
                    _ => crate::monitor::exposition::HostSample {
                        host: w.lock().await.spec.name.clone(),
                        ..Default::default()
                    },
                });
            }
            p.set(super::metrics::render_cycle(&ctx.env.name, &samples));
        }
        // One line per cycle in the log file: a watch left running for days should show flat
        // task counts here (the soak script reads them).
        tracing::info!(
            cycle_ms,
            hosts = results.len(),
            unreachable = results.iter().filter(|r| r.is_err()).count(),
            alive_tasks = tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            "alerts cycle"
        );
        if !watch {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(ctx.env.alerts.interval) => {}
            _ = &mut interrupted => break,
        }
    }
    for w in hosts {
        if let Some(h) = w.lock().await.host.take() {
            h.close().await;
        }
    }
    Ok(code)
}

type CycleResult = Result<MonitorSnapshot, (String, String)>;

async fn cycle(
    w: Arc<Mutex<Watched>>,
    ctx: &Context,
    notifier: &Notifier,
    want_sample: bool,
) -> CycleResult {
    let mut w = w.lock().await;
    if w.host.is_none() {
        match Host::connect(&w.spec).await {
            Ok(h) => w.host = Some(h),
            Err(e) => return Err((w.spec.name.clone(), e.to_string())),
        }
    }
    let Watched { host, monitor, .. } = &mut *w;
    let Some(host) = host.as_ref() else {
        return Err((String::new(), "not connected".into()));
    };
    let snap = run_cycle(
        host,
        &ctx.services,
        &ctx.env.alerts,
        monitor,
        notifier,
        chrono::Utc::now(),
    )
    .await;
    let sample = if want_sample {
        Some(crate::monitor::scrape::from_cycle(host, &ctx.services, &snap).await)
    } else {
        None
    };
    w.sample = sample;
    // A broken connection is dropped and made again next cycle.
    if snap
        .error
        .as_deref()
        .is_some_and(|e| e.contains("ssh") || e.contains("Docker"))
    {
        w.host = None;
    }
    Ok(snap)
}

fn exit_code(results: &[CycleResult]) -> i32 {
    if results.iter().any(Result::is_err) {
        exit::UNREACHABLE
    } else if results
        .iter()
        .flatten()
        .any(|s| s.firing().next().is_some())
    {
        exit::UNHEALTHY
    } else {
        exit::OK
    }
}

fn print(ctx: &Context, results: &[CycleResult], cycle_ms: u64) {
    if ctx.global.output == OutputFormat::Json {
        let v: Vec<serde_json::Value> = results
            .iter()
            .map(|r| match r {
                Ok(s) => serde_json::json!({"host": s.host, "reachable": true, "error": s.error,
                    "metrics": s.metrics, "alerts": s.alerts}),
                Err((h, e)) => {
                    serde_json::json!({"host": h, "reachable": false, "error": e, "alerts": []})
                }
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string(
                &serde_json::json!({"env": ctx.env.name, "cycle_ms": cycle_ms, "hosts": v})
            )
            .unwrap_or_default()
        );
        return;
    }
    let now = chrono::Utc::now();
    let mut t = Table::new(["HOST", "ALERT", "STATE", "VALUE", "WHEN", "DETAIL"]);
    for r in results {
        match r {
            Err((h, e)) => t.row([
                h.clone(),
                "host".into(),
                "UNREACHABLE".into(),
                "-".into(),
                "-".into(),
                e.lines().next().unwrap_or("").to_string(),
            ]),
            Ok(s) => {
                for a in &s.alerts {
                    let for_ = match a.key.as_str() {
                        "cpu" => ctx.env.alerts.cpu_for,
                        "memory" => ctx.env.alerts.memory_for,
                        "disk" => ctx.env.alerts.disk_for,
                        _ => std::time::Duration::ZERO,
                    };
                    let when = match a.state {
                        AlertState::Pending => a
                            .time_left(for_, now)
                            .map(|d| format!("fires in {}", format_duration(d)))
                            .unwrap_or_default(),
                        AlertState::Firing => a
                            .firing_since
                            .map(|t| format!("since {} ago", format_age((now - t).num_seconds())))
                            .unwrap_or_default(),
                        AlertState::Resolved => a
                            .resolved_at
                            .map(|t| {
                                format!("resolved {} ago", format_age((now - t).num_seconds()))
                            })
                            .unwrap_or_default(),
                        AlertState::Inactive => String::new(),
                    };
                    let state = match a.state {
                        AlertState::Firing => "FIRING",
                        AlertState::Pending => "pending",
                        AlertState::Resolved => "resolved",
                        AlertState::Inactive => "ok",
                    };
                    t.row([
                        s.host.clone(),
                        a.rule.clone(),
                        state.into(),
                        a.value.map_or_else(|| "-".into(), |v| format!("{v:.1}")),
                        when,
                        a.message.clone(),
                    ]);
                }
                if let Some(e) = &s.error {
                    t.row([
                        s.host.clone(),
                        "monitor".into(),
                        "ERROR".into(),
                        "-".into(),
                        "-".into(),
                        e.clone(),
                    ]);
                }
            }
        }
    }
    println!(
        "env {} at {}",
        ctx.env.name,
        now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    print!("{}", t.render(""));
}
