//! Waiting for a new color to be healthy: Docker's HEALTHCHECK and `/health` must agree; a
//! crash, exit or restart fails at once, with the evidence an operator needs.

use std::time::{Duration, Instant};

use super::execute::ActionOptions;
use super::plan::DeployPlan;
use super::proxy::docker_err;
use super::steps::StepRecorder;
use super::{Event, ReleaseError, container};
use crate::config::Service;
use crate::state::contract::app_container;
use crate::state::{HealthReport, probe_health};
use crate::transport::Host;
use crate::util::format_duration;

pub(super) async fn wait_healthy(
    r: &StepRecorder<'_>,
    service: &Service,
    plan: &DeployPlan,
    timeout: Duration,
    opts: &ActionOptions,
    live_note: &str,
    restarts_before: Option<i64>,
) -> Result<Option<String>, ReleaseError> {
    let host = r.host;
    let name = app_container(service, plan.to_color);
    let deadline = Instant::now() + timeout;
    let mut attempt = 0u32;
    let mut last: Option<HealthReport> = None;
    let mut last_docker: Option<String> = None;
    let initial_restarts = match restarts_before {
        Some(n) => n,
        None => host
            .docker
            .inspect_container(&name, None)
            .await
            .ok()
            .and_then(|i| i.restart_count)
            .unwrap_or(0),
    };
    // Once the inspect named the port, each attempt probes /health beside its inspect (one
    // round trip per attempt instead of two); a probe whose inspect then shows the container
    // gone or restarted is not trusted.
    let mut port: Option<u16> = None;
    let unhealthy = |why: String, last: &Option<HealthReport>, docker_log: String, logs: String| {
        let mut report = format!("  why: {why}\n");
        if let Some(h) = last {
            report.push_str(&format!("  last /health answer: {}\n", h.summary()));
            if let Some(b) = &h.body {
                report.push_str(&format!("  body: {b}\n"));
            }
        }
        if !docker_log.is_empty() {
            report.push_str(&format!("  docker health log:\n{docker_log}"));
        }
        report.push_str(&format!("  last log lines of {name}:\n{logs}"));
        ReleaseError::Unhealthy {
            host: host.name().to_string(),
            color: plan.to_color.as_str().to_string(),
            sha: plan.to_sha.clone(),
            live_note: live_note.to_string(),
            report: report.trim_end().to_string(),
        }
    };
    let mut checks: Option<super::docker_checks::CheckWatch> = None;
    let mut checks_restarted = false;
    loop {
        attempt += 1;
        let (ins, early) = match port {
            Some(p) => {
                let (ins, report) = tokio::join!(
                    host.docker.inspect_container(&name, None),
                    probe_health(host, p, &service.health_path, Duration::from_secs(2))
                );
                (ins, Some(report))
            }
            None => (host.docker.inspect_container(&name, None).await, None),
        };
        let ins = ins.map_err(|e| docker_err(host, &format!("inspect {name}"), e))?;
        let state = ins.state.clone().unwrap_or_default();
        if attempt == 1 {
            checks = super::docker_checks::CheckWatch::new(
                ins.config.as_ref().and_then(|c| c.healthcheck.as_ref()),
                Instant::now(),
            );
        }
        if let Some(quiet) = checks
            .as_mut()
            .and_then(|w| w.stalled(&state, Instant::now()))
            && !checks_restarted
            && state.running == Some(true)
        {
            r.info(format!(
                "Docker ran no health check of {name} for {}s: its checks stop when dockerd restarts with live-restore (Docker before 23, moby#41871). Pausing and unpausing {name} (not serving yet) to restart them.",
                quiet.as_secs()
            ));
            restart_docker_checks(host, &name).await?;
            checks_restarted = true;
            if let Some(w) = checks.as_mut() {
                w.reset(Instant::now());
            }
        }
        let docker_health = state
            .health
            .as_ref()
            .and_then(|h| h.status)
            .map(|s| s.to_string());
        let docker_log = state
            .health
            .as_ref()
            .and_then(|h| h.log.clone())
            .unwrap_or_default()
            .iter()
            .rev()
            .take(3)
            .map(|l| {
                format!(
                    "    exit {}: {}\n",
                    l.exit_code.unwrap_or(-1),
                    crate::sanitize::for_terminal_line(&crate::redact::redact_text(
                        l.output.as_deref().unwrap_or("").trim()
                    ))
                )
            })
            .collect::<String>();
        // A kept container being restarted (rollback target with a restart policy) crashed too.
        let restarted = ins.restart_count.unwrap_or(0) > initial_restarts;
        if state.running != Some(true) || state.restarting == Some(true) || restarted {
            let why = format!(
                "the container {} (exit code {}{})",
                if restarted || state.restarting == Some(true) {
                    "crashed and is being restarted".to_string()
                } else {
                    format!(
                        "is {}",
                        state
                            .status
                            .map_or_else(|| "gone".to_string(), |s| s.to_string())
                    )
                },
                state.exit_code.unwrap_or(-1),
                if state.oom_killed == Some(true) {
                    ", OOM-killed"
                } else {
                    ""
                }
            );
            return Err(unhealthy(
                why,
                &last,
                docker_log,
                container::tail_logs(host, &name).await,
            ));
        }
        let now_port = ins
            .network_settings
            .as_ref()
            .and_then(|n| n.ports.as_ref())
            .and_then(|p| p.get(&format!("{}/tcp", service.app_port)))
            .and_then(Option::as_ref)
            .and_then(|b| {
                b.iter()
                    .find_map(|b| b.host_port.as_deref()?.parse::<u16>().ok())
            });
        let report = match (now_port, early) {
            (Some(p), Some(report)) if Some(p) == port => report,
            (Some(p), _) => {
                probe_health(host, p, &service.health_path, Duration::from_secs(2)).await
            }
            (None, _) => HealthReport {
                http_status: None,
                status: None,
                latency_ms: 0,
                uptime: None,
                services: Default::default(),
                error: Some("the container publishes no app port".into()),
                body: None,
            },
        };
        // Both must agree: the image's own HEALTHCHECK (when it has one) and our /health.
        let docker_ok = docker_health.as_deref().is_none_or(|s| s == "healthy");
        let healthy = report.is_healthy() && docker_ok;
        r.events.emit(Event::HealthAttempt {
            host: host.name().to_string(),
            color: plan.to_color,
            attempt,
            healthy,
            detail: match &docker_health {
                Some(d) => format!("/health: {}; docker: {d}", report.summary()),
                None => format!("/health: {}", report.summary()),
            },
        });
        last = Some(report);
        last_docker = docker_health.or(last_docker);
        port = now_port;
        if healthy {
            // Its address on the service's network, for the switch (no inspect of its own).
            return Ok(ins
                .network_settings
                .and_then(|n| n.networks)
                .and_then(|n| n.get(&service.network_name()).cloned())
                .and_then(|n| n.ip_address)
                .filter(|a| !a.is_empty()));
        }
        if Instant::now() >= deadline {
            let stalled = checks
                .as_mut()
                .and_then(|w| w.stalled(&state, Instant::now()))
                .map(|q| format!("; Docker ran no health check for {}s", q.as_secs()))
                .unwrap_or_default();
            let why = format!(
                "not healthy within {}{}{stalled}",
                format_duration(timeout),
                last_docker
                    .as_deref()
                    .map(|d| format!(" (docker health: {d})"))
                    .unwrap_or_default()
            );
            return Err(unhealthy(
                why,
                &last,
                docker_log,
                container::tail_logs(host, &name).await,
            ));
        }
        if r.lock_lost
            .as_ref()
            .is_some_and(|f| f.load(std::sync::atomic::Ordering::SeqCst))
        {
            // The caller says who holds it now and what serves (an empty note asks for that).
            return Err(ReleaseError::LockLost {
                host: host.name().to_string(),
                service: service.name.clone(),
                now: String::new(),
                step: super::Step::Proxy.label().to_string(),
                live_note: String::new(),
            });
        }
        if opts.cancel.is_cancelled() {
            return Err(ReleaseError::Aborted {
                host: host.name().to_string(),
                live_note: live_note.to_string(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Pause and unpause make Docker set up a container's health monitor again.
async fn restart_docker_checks(host: &Host, name: &str) -> Result<(), ReleaseError> {
    host.docker
        .pause_container(name)
        .await
        .map_err(|e| docker_err(host, &format!("pause {name}"), e))?;
    host.docker
        .unpause_container(name)
        .await
        .map_err(|e| docker_err(host, &format!("unpause {name}"), e))
}
