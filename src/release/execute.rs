//! Carrying out a deploy or rollback plan on one host, step by step, with events.
//!
//! The invariant: the old color serves until the new one is proven. Everything before the
//! switch only touches the idle color; a failure there stops the new container (kept for
//! inspection) and leaves the proxy alone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, LogsOptions, RemoveContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::audit::{self, AuditRecord};
use super::plan::{Action, DeployPlan, Target, plan_deploy, plan_rollback};
use super::proxy::{self, docker_err};
use super::{Event, EventSink, ReleaseError, Step, lock, prune, pull};
use crate::config::Service;
use crate::state::contract::{
    LABEL_COLOR, LABEL_DEPLOYED_AT, LABEL_DEPLOYED_BY, LABEL_SERVICE, LABEL_SHA, PROXY_CONF_DIR,
    PROXY_CONF_FILE, app_container,
};
use crate::state::proxy_conf::ProxyRoute;
use crate::state::{Color, HealthReport, ServiceStatus, probe_health, read_service};
use crate::transport::Host;
use crate::util::format_duration;

#[derive(Clone)]
pub struct ActionOptions {
    pub env: String,
    pub actor: String,
    pub lock_wait: Duration,
    /// Overrides the service's health timeout.
    pub health_timeout: Option<Duration>,
    /// Cancelled by Ctrl-C: honoured up to the switch, after which the deploy completes.
    pub cancel: CancellationToken,
}

/// How one host's action ended, with the time each step took (for the benchmark and the UI).
#[derive(Debug, Clone, Serialize)]
pub struct HostOutcome {
    pub host: String,
    pub plan: DeployPlan,
    pub duration_ms: u64,
    pub step_ms: Vec<(Step, u64)>,
    pub pulled: bool,
}

/// Deploys `tag` on one host.
pub async fn deploy_on_host(
    host: Arc<Host>,
    service: &Service,
    tag: &str,
    opts: &ActionOptions,
    events: &EventSink,
) -> Result<HostOutcome, ReleaseError> {
    run(
        host,
        service,
        Target::Ref(tag.to_string()),
        Action::Deploy,
        opts,
        events,
    )
    .await
}

/// Rolls back on one host: to the previous release by default.
pub async fn rollback_on_host(
    host: Arc<Host>,
    service: &Service,
    target: Target,
    opts: &ActionOptions,
    events: &EventSink,
) -> Result<HostOutcome, ReleaseError> {
    run(host, service, target, Action::Rollback, opts, events).await
}

/// Plans an action on a connected host without changing anything (for dialogs and prompts).
pub async fn plan_on_host(
    host: &Host,
    service: &Service,
    target: &Target,
    action: Action,
) -> Result<(DeployPlan, ServiceStatus), ReleaseError> {
    let status = read_service(host, service)
        .await
        .map_err(|e| docker_err(host, "read the service", &e))?;
    let plan = match (action, target) {
        (Action::Deploy | Action::Redeploy, Target::Ref(tag)) => {
            plan_deploy(&status, service, host.name(), tag, action)
        }
        (Action::Deploy | Action::Redeploy, Target::Previous) => {
            Err("deploy needs a SHA or tag".to_string())
        }
        (Action::Rollback, t) => plan_rollback(&status, service, host.name(), t),
    }
    .map_err(|message| ReleaseError::Plan {
        host: host.name().to_string(),
        message,
    })?;
    Ok((plan, status))
}

struct Runner<'a> {
    host: &'a Host,
    events: &'a EventSink,
    steps: Vec<(Step, u64)>,
}

impl Runner<'_> {
    fn start(&self, step: Step, detail: impl Into<String>) -> Instant {
        self.events.emit(Event::StepStarted {
            host: self.host.name().to_string(),
            step,
            detail: detail.into(),
        });
        Instant::now()
    }

    fn finish(&mut self, step: Step, started: Instant, detail: impl Into<String>) {
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.steps.push((step, ms));
        self.events.emit(Event::StepFinished {
            host: self.host.name().to_string(),
            step,
            elapsed_ms: ms,
            detail: detail.into(),
        });
    }

    fn fail(&self, step: Step, e: &ReleaseError) {
        self.events.emit(Event::StepFailed {
            host: self.host.name().to_string(),
            step,
            error: e.to_string(),
        });
    }

    fn info(&self, message: impl Into<String>) {
        self.events.emit(Event::Info {
            host: self.host.name().to_string(),
            message: message.into(),
        });
    }
}

/// Runs any action on one host (deploy, rollback, forced redeploy).
pub async fn run(
    host: Arc<Host>,
    service: &Service,
    target: Target,
    action: Action,
    opts: &ActionOptions,
    events: &EventSink,
) -> Result<HostOutcome, ReleaseError> {
    let started = Instant::now();
    let mut r = Runner {
        host: &host,
        events,
        steps: Vec::new(),
    };
    let what = match &target {
        Target::Ref(t) => format!("{} {t}", action.as_str()),
        Target::Previous => format!("{} to previous", action.as_str()),
    };
    let t = r.start(Step::Lock, format!("{} on {}", service.name, host.name()));
    let held = match lock::acquire(&host, &service.name, &what, &opts.actor, opts.lock_wait).await {
        Ok(l) => l,
        Err(e) => {
            r.fail(Step::Lock, &e);
            return Err(e);
        }
    };
    r.finish(Step::Lock, t, "");
    let record_token = held.info.token.clone();

    let mut record = AuditRecord::now(
        &opts.actor,
        &opts.env,
        host.name(),
        &service.name,
        action.as_str(),
    );
    let result = run_locked(&mut r, service, &target, action, opts, &mut record).await;
    record.duration_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    match &result {
        Ok((plan, _)) if plan.noop => record.outcome = "noop".into(),
        Ok(_) => record.outcome = "success".into(),
        Err(ReleaseError::Aborted { .. }) => {
            record.outcome = "aborted".into();
            record.error = result.as_ref().err().map(ToString::to_string);
        }
        Err(e) => {
            record.outcome = "failed".into();
            record.error = Some(e.to_string());
        }
    }
    // The record and the unlock matter even when the connection just died (that may be why the
    // action failed): one new connection is tried before giving up on them.
    let mut fresh: Option<Host> = None;
    let t = r.start(Step::Audit, record.outcome.clone());
    if audit::append(&host, &record).await.is_err() {
        fresh = reconnect(&r, &host).await;
        match &fresh {
            Some(h) => {
                if let Err(e) = audit::append(h, &record).await {
                    r.info(format!("WARNING: could not write the audit log: {e}"));
                }
            }
            None => r.info(
                "WARNING: the audit log could not be written: the host is unreachable".to_string(),
            ),
        }
    }
    r.finish(Step::Audit, t, "");
    let t = r.start(Step::Unlock, "");
    let released = match &fresh {
        Some(h) => held.release(h).await,
        None => held.release(&host).await,
    };
    if released.is_err() {
        let retry = match fresh.take() {
            Some(h) => Some(h),
            None => reconnect(&r, &host).await,
        };
        match retry {
            Some(h) => {
                // `held` was consumed; release by token through the new connection.
                if let Err(e) = lock::release_token(&h, &service.name, &record_token).await {
                    r.info(format!("WARNING: could not release the lock: {e}; clear it with deckhand unlock"));
                }
                fresh = Some(h);
            }
            None => r.info("WARNING: the lock could not be released: the host is unreachable; clear it with deckhand unlock".to_string()),
        }
    }
    r.finish(Step::Unlock, t, "");
    if let Some(h) = fresh {
        h.close().await;
    }

    let (plan, pulled) = result?;
    Ok(HostOutcome {
        host: host.name().to_string(),
        plan,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        step_ms: r.steps,
        pulled,
    })
}

async fn run_locked(
    r: &mut Runner<'_>,
    service: &Service,
    target: &Target,
    action: Action,
    opts: &ActionOptions,
    record: &mut AuditRecord,
) -> Result<(DeployPlan, bool), ReleaseError> {
    let host = r.host;
    let t = r.start(Step::Inspect, "");
    let (plan, _) = match plan_on_host(host, service, target, action).await {
        Ok(p) => p,
        Err(e) => {
            r.fail(Step::Inspect, &e);
            return Err(e);
        }
    };
    r.finish(Step::Inspect, t, plan.summary());
    record.from_sha = plan.from_sha.clone();
    record.to_sha = Some(plan.to_sha.clone());
    // The start of the action is on the record before anything changes, so an action that is
    // killed half-way still shows up in the audit log.
    let mut started_record = record.clone();
    started_record.outcome = "started".into();
    started_record.details = Some(plan.summary());
    if let Err(e) = audit::append(host, &started_record).await {
        r.info(format!("WARNING: could not write the audit log: {e}"));
    }
    if plan.noop {
        r.info(plan.summary());
        return Ok((plan, false));
    }
    if plan.finish_only {
        r.info(plan.summary());
        // Re-assert the route before stopping anything: the interrupted run may have died
        // between writing the config and reloading nginx.
        let t = r.start(
            Step::Switch,
            format!("make sure the proxy serves {}", plan.to_color),
        );
        ensure_route(host, service, &plan)
            .await
            .inspect_err(|e| r.fail(Step::Switch, e))?;
        r.finish(Step::Switch, t, "");
        drain_and_stop_old(r, service, &plan).await;
        return Ok((plan, false));
    }
    let live_note = match (&plan.from_color, &plan.from_sha) {
        (Some(c), Some(s)) => format!("{s} ({c}) still serves"),
        (Some(c), None) => format!("{c} still serves"),
        _ => "nothing was serving before either".to_string(),
    };
    let new_name = app_container(service, plan.to_color);
    let mut pulled = false;
    let mut started_new = false;

    let pre_switch = async {
        if !plan.reuse_existing {
            let t = r.start(Step::Pull, plan.image.clone());
            pulled = pull::ensure_image(host, &plan.image, r.events)
                .await
                .inspect_err(|e| r.fail(Step::Pull, e))?;
            r.finish(
                Step::Pull,
                t,
                if pulled { "pulled" } else { "already present" },
            );
            check_cancel(opts, host, &live_note)?;

            let t = r.start(Step::Network, service.network_name());
            proxy::ensure_network(host, service)
                .await
                .inspect_err(|e| r.fail(Step::Network, e))?;
            r.finish(Step::Network, t, "");

            let t = r.start(Step::Create, new_name.clone());
            create_app(host, service, &plan, opts)
                .await
                .inspect_err(|e| r.fail(Step::Create, e))?;
            r.finish(Step::Create, t, "");
        }
        check_cancel(opts, host, &live_note)?;
        let t = r.start(Step::Start, new_name.clone());
        host.docker
            .start_container(&new_name, None)
            .await
            .or_else(|e| match e {
                // Already running (a converging re-run): fine.
                bollard::errors::Error::DockerResponseServerError {
                    status_code: 304, ..
                } => Ok(()),
                e => Err(docker_err(host, &format!("start {new_name}"), &e)),
            })
            .inspect_err(|e| r.fail(Step::Start, e))?;
        started_new = true;
        r.finish(Step::Start, t, "");

        let timeout = opts.health_timeout.unwrap_or(service.health_timeout);
        let t = r.start(Step::Health, format!("within {}", format_duration(timeout)));
        wait_healthy(r, service, &plan, timeout, opts, &live_note)
            .await
            .inspect_err(|e| r.fail(Step::Health, e))?;
        r.finish(Step::Health, t, "");
        check_cancel(opts, host, &live_note)?;
        Ok::<(), ReleaseError>(())
    };
    if let Err(e) = pre_switch.await {
        if started_new || matches!(e, ReleaseError::Unhealthy { .. }) {
            stop_quietly(host, &new_name, service).await;
            r.info(format!(
                "stopped {new_name}; it is kept for inspection (docker logs {new_name})"
            ));
        }
        return Err(match e {
            e @ (ReleaseError::Unhealthy { .. } | ReleaseError::Aborted { .. }) => e,
            e => ReleaseError::BeforeSwitch {
                source: Box::new(e),
                live_note,
            },
        });
    }
    // Proven: from now on Docker restarts it after a crash or reboot.
    set_restart_policy(host, &new_name, RestartPolicyNameEnum::UNLESS_STOPPED).await?;

    // From here on the deploy completes even if the operator presses Ctrl-C: a half switch
    // helps nobody, and the switch itself takes milliseconds.
    let route = ProxyRoute {
        color: plan.to_color,
        sha: plan.to_sha.clone(),
    };
    let previous_conf = crate::state::read_file_from_container_pub(
        host,
        &service.proxy_container(),
        PROXY_CONF_DIR,
        PROXY_CONF_FILE,
    )
    .await;
    let t = r.start(Step::Proxy, service.proxy_container());
    let proxy_started = match proxy::ensure_proxy(host, service, &route, r.events).await {
        Ok(s) => s,
        Err(e) => {
            r.fail(Step::Proxy, &e);
            stop_quietly(host, &new_name, service).await;
            return Err(e);
        }
    };
    r.finish(
        Step::Proxy,
        t,
        if proxy_started { "started" } else { "running" },
    );

    let t = r.start(
        Step::Switch,
        format!(
            "{} → {}",
            plan.from_color.map_or("-", Color::as_str),
            plan.to_color
        ),
    );
    if !proxy_started
        && let Err(e) = proxy::switch(host, service, &route, previous_conf.as_deref()).await
    {
        r.fail(Step::Switch, &e);
        stop_quietly(host, &new_name, service).await;
        return Err(e);
    }
    r.finish(Step::Switch, t, "");
    r.events.emit(Event::Switched {
        host: host.name().to_string(),
        from: plan.from_color,
        to: plan.to_color,
    });

    let t = r.start(Step::Confirm, format!("port {}", service.public_port));
    if let Err(detail) = proxy::confirm(host, service, plan.to_color, Duration::from_secs(10)).await
    {
        // Put the old route back if there was one; the new color is not answering publicly.
        let mut note = "nothing was serving before".to_string();
        if let (Some(prev), Some(_)) = (&previous_conf, plan.from_color) {
            let name = service.proxy_container();
            if restore_conf(host, &name, prev).await.is_ok() {
                note = live_note.clone();
            }
        }
        let e = ReleaseError::Switch {
            host: host.name().to_string(),
            detail,
            live_note: note,
        };
        r.fail(Step::Confirm, &e);
        return Err(e);
    }
    r.finish(Step::Confirm, t, format!("{} answers", plan.to_color));

    drain_and_stop_old(r, service, &plan).await;

    if service.auto_prune && action != Action::Rollback {
        let t = r.start(Step::Prune, format!("keep {}", service.keep_images));
        match read_service(host, service).await {
            Ok(st) => {
                let p = prune::plan_prune(host.name(), &st, service.keep_images);
                match prune::execute(host, service, &p).await {
                    Ok(removed) => r.finish(Step::Prune, t, format!("removed {}", removed.len())),
                    Err(e) => {
                        r.info(format!("WARNING: auto-prune failed: {e}"));
                        r.finish(Step::Prune, t, "failed");
                    }
                }
            }
            Err(e) => r.info(format!("WARNING: auto-prune skipped: {e}")),
        }
    }
    Ok((plan, pulled))
}

/// Makes nginx serve the plan's color: a cheap check through the public port, and a switch only
/// when it answers with another color.
async fn ensure_route(
    host: &Host,
    service: &Service,
    plan: &DeployPlan,
) -> Result<(), ReleaseError> {
    if proxy::confirm(host, service, plan.to_color, Duration::ZERO)
        .await
        .is_ok()
    {
        return Ok(());
    }
    let route = ProxyRoute {
        color: plan.to_color,
        sha: plan.to_sha.clone(),
    };
    let previous = crate::state::read_file_from_container_pub(
        host,
        &service.proxy_container(),
        PROXY_CONF_DIR,
        PROXY_CONF_FILE,
    )
    .await;
    proxy::switch(host, service, &route, previous.as_deref()).await?;
    proxy::confirm(host, service, plan.to_color, Duration::from_secs(10))
        .await
        .map_err(|detail| ReleaseError::Switch {
            host: host.name().to_string(),
            detail,
            live_note: "the other color was not stopped".into(),
        })
}

/// A new connection to the same host, for bookkeeping after the first one broke.
async fn reconnect(r: &Runner<'_>, host: &Host) -> Option<Host> {
    match Host::connect(&host.spec).await {
        Ok(h) => {
            r.info("the connection broke; reconnected to record the outcome".to_string());
            Some(h)
        }
        Err(e) => {
            tracing::warn!(error = %e, "reconnect for the audit record failed");
            None
        }
    }
}

async fn drain_and_stop_old(r: &mut Runner<'_>, service: &Service, plan: &DeployPlan) {
    let Some(old) = plan.from_color else {
        return;
    };
    let host = r.host;
    let t = r.start(Step::Drain, format_duration(service.drain));
    tokio::time::sleep(service.drain).await;
    r.finish(Step::Drain, t, "");
    let old_name = app_container(service, old);
    let t = r.start(Step::StopOld, old_name.clone());
    match stop(host, &old_name, service).await {
        Ok(()) => r.finish(Step::StopOld, t, "kept stopped for rollback"),
        Err(e) => {
            // The new release serves; a stuck old container is worth a warning, not a failure.
            r.info(format!("WARNING: could not stop {old_name}: {e}"));
            r.finish(Step::StopOld, t, "failed");
        }
    }
}

fn check_cancel(opts: &ActionOptions, host: &Host, live_note: &str) -> Result<(), ReleaseError> {
    if opts.cancel.is_cancelled() {
        Err(ReleaseError::Aborted {
            host: host.name().to_string(),
            live_note: live_note.to_string(),
        })
    } else {
        Ok(())
    }
}

async fn restore_conf(host: &Host, container: &str, conf: &str) -> Result<(), ReleaseError> {
    proxy::upload_conf(host, container, conf).await?;
    proxy::exec_in(host, container, &["nginx", "-s", "reload"]).await?;
    Ok(())
}

/// Secrets for the app: the env file on the host, read at deploy time, never logged.
async fn read_env_file(host: &Host, service: &Service) -> Result<Vec<String>, ReleaseError> {
    let out = host
        .exec(
            "sh",
            &[
                "-c",
                r#"if [ -f "$1" ]; then cat "$1"; fi"#,
                "deckhand-env",
                &service.env_file,
            ],
            None,
        )
        .await?;
    if !out.success() {
        return Err(ReleaseError::Plan {
            host: host.name().to_string(),
            message: format!(
                "cannot read the secrets file {}: {} (it must be readable by the ssh user)",
                service.env_file,
                out.stderr_text()
            ),
        });
    }
    Ok(parse_env_file(&out.stdout_text()))
}

/// `KEY=value` lines; blank lines and `#` comments skipped; optional `export `; surrounding
/// quotes removed.
pub fn parse_env_file(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.strip_prefix("export ").unwrap_or(l))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .unwrap_or(v);
            Some(format!("{}={v}", k.trim()))
        })
        .collect()
}

async fn create_app(
    host: &Host,
    service: &Service,
    plan: &DeployPlan,
    opts: &ActionOptions,
) -> Result<(), ReleaseError> {
    let name = app_container(service, plan.to_color);
    // The idle color's old container (the previous rollback target) makes way for the new one.
    match host
        .docker
        .remove_container(
            &name,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
    {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => return Err(docker_err(host, &format!("remove the old {name}"), &e)),
    }
    let mut env: Vec<String> = service
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    env.extend(read_env_file(host, service).await?);
    let mut labels = HashMap::new();
    labels.insert(LABEL_SERVICE.to_string(), service.name.clone());
    labels.insert(LABEL_COLOR.to_string(), plan.to_color.as_str().to_string());
    labels.insert(LABEL_SHA.to_string(), plan.to_sha.clone());
    labels.insert(
        LABEL_DEPLOYED_AT.to_string(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    labels.insert(LABEL_DEPLOYED_BY.to_string(), opts.actor.clone());
    let port_key = format!("{}/tcp", service.app_port);
    let mut ports = HashMap::new();
    // Published on the host's loopback only, on an ephemeral port: the console reaches /health
    // through its SSH tunnel; the public only ever reaches the proxy.
    ports.insert(
        port_key.clone(),
        Some(vec![PortBinding {
            host_ip: Some("127.0.0.1".into()),
            host_port: Some(String::new()),
        }]),
    );
    let mut endpoints = HashMap::new();
    endpoints.insert(service.network_name(), EndpointSettings::default());
    host.docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            ContainerCreateBody {
                image: Some(plan.image.clone()),
                env: Some(env),
                labels: Some(labels),
                exposed_ports: Some(vec![port_key]),
                stop_signal: Some("SIGTERM".into()),
                stop_timeout: i64::try_from(service.stop_timeout.as_secs()).ok(),
                host_config: Some(HostConfig {
                    port_bindings: Some(ports),
                    network_mode: Some(service.network_name()),
                    // No restarts until proven healthy: a crash must show as a crash, not as a
                    // container that keeps coming back; set to unless-stopped after the check.
                    restart_policy: Some(RestartPolicy {
                        name: Some(RestartPolicyNameEnum::NO),
                        maximum_retry_count: None,
                    }),
                    ..Default::default()
                }),
                networking_config: Some(NetworkingConfig {
                    endpoints_config: Some(endpoints),
                }),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| docker_err(host, &format!("create {name}"), &e))?;
    Ok(())
}

async fn set_restart_policy(
    host: &Host,
    name: &str,
    policy: RestartPolicyNameEnum,
) -> Result<(), ReleaseError> {
    host.docker
        .update_container(
            name,
            bollard::models::ContainerUpdateBody {
                restart_policy: Some(RestartPolicy {
                    name: Some(policy),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| docker_err(host, &format!("set the restart policy of {name}"), &e))
}

async fn wait_healthy(
    r: &Runner<'_>,
    service: &Service,
    plan: &DeployPlan,
    timeout: Duration,
    opts: &ActionOptions,
    live_note: &str,
) -> Result<(), ReleaseError> {
    let host = r.host;
    let name = app_container(service, plan.to_color);
    let deadline = Instant::now() + timeout;
    let mut attempt = 0u32;
    let mut last: Option<HealthReport> = None;
    let mut last_docker: Option<String> = None;
    let initial_restarts = host
        .docker
        .inspect_container(&name, None)
        .await
        .ok()
        .and_then(|i| i.restart_count)
        .unwrap_or(0);
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
        let ins = host
            .docker
            .inspect_container(&name, None)
            .await
            .map_err(|e| docker_err(host, &format!("inspect {name}"), &e))?;
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
                    crate::redact::redact_text(l.output.as_deref().unwrap_or("").trim())
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
                tail_logs(host, &name).await,
            ));
        }
        let port = ins
            .network_settings
            .as_ref()
            .and_then(|n| n.ports.as_ref())
            .and_then(|p| p.get(&format!("{}/tcp", service.app_port)))
            .and_then(Option::as_ref)
            .and_then(|b| {
                b.iter()
                    .find_map(|b| b.host_port.as_deref()?.parse::<u16>().ok())
            });
        let report = match port {
            Some(p) => probe_health(host, p, &service.health_path, Duration::from_secs(2)).await,
            None => HealthReport {
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
        if healthy {
            return Ok(());
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
                tail_logs(host, &name).await,
            ));
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
        .map_err(|e| docker_err(host, &format!("pause {name}"), &e))?;
    host.docker
        .unpause_container(name)
        .await
        .map_err(|e| docker_err(host, &format!("unpause {name}"), &e))
}

async fn tail_logs(host: &Host, name: &str) -> String {
    let mut stream = host.docker.logs(
        name,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            tail: "20".into(),
            ..Default::default()
        }),
    );
    let mut out = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        for line in String::from_utf8_lossy(&chunk.into_bytes()).lines() {
            out.push_str("    ");
            out.push_str(&crate::redact::redact_text(line));
            out.push('\n');
        }
    }
    if out.is_empty() {
        out.push_str("    (no output)\n");
    }
    out
}

async fn stop(host: &Host, name: &str, service: &Service) -> Result<(), ReleaseError> {
    match host
        .docker
        .stop_container(
            name,
            Some(StopContainerOptions {
                t: i32::try_from(service.stop_timeout.as_secs()).ok(),
                ..Default::default()
            }),
        )
        .await
    {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304 | 404,
            ..
        }) => Ok(()),
        Err(e) => Err(docker_err(host, &format!("stop {name}"), &e)),
    }
}

async fn stop_quietly(host: &Host, name: &str, service: &Service) {
    if let Err(e) = stop(host, name, service).await {
        tracing::warn!(error = %e, container = name, "could not stop the failed container");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_parse() {
        let v = parse_env_file(
            "# secrets\nDB_PASSWORD=hunter2\nexport TOKEN=\"abc def\"\n\nBAD LINE\nQ='x'\n",
        );
        assert_eq!(v, ["DB_PASSWORD=hunter2", "TOKEN=abc def", "Q=x"]);
    }
}
