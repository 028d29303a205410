//! Background work: one watcher per host (`watch`), planning, actions, logs, inspect. Each task owns its
//! I/O and *sends* results to the UI task; none touches the console's state.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::{InspectContainerOptions, LogsOptions};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::app::Msg;
use super::model::{InspectError, Snapshot};
use std::path::Path;

use crate::config::{HostSpec, HostTarget, Service};
use crate::monitor::notify::Notifier;
use crate::release::runner::{self, PinMode, PlanError, Planned, Request, RunOptions, RunReport};
use crate::release::{EventSink, audit, ledger, lock};
use crate::state::read_host;
use crate::transport::Host;

/// What background tasks send the runtime: messages for the state, and connected hosts, which
/// the runtime keeps (they are not state) so actions reuse the poller's connection.
pub enum Bg {
    Msg(Msg),
    Connected {
        epoch: u64,
        host: Arc<Host>,
    },
    /// A dialog's plan: the runtime keeps the value (it holds connections) and shows its plans.
    Planned {
        id: u64,
        result: Result<Box<Planned>, PlanError>,
    },
}

/// Reads everything the console shows about one host.
pub async fn snapshot(host: &Host, services: &[Service]) -> Snapshot {
    let locks = async {
        let mut out = BTreeMap::new();
        for s in services {
            let l = lock::read(host, &s.name).await.map_err(Arc::new);
            out.insert(s.name.clone(), l);
        }
        out
    };
    // One small file per service, read with the rest: the views never ask the host per frame.
    let ledgers = async {
        let mut out = BTreeMap::new();
        for s in services {
            let l = ledger::read(host, &s.name).await.map_err(Arc::new);
            out.insert(s.name.clone(), l);
        }
        out
    };
    let (status, audit, locks, ledgers) = tokio::join!(
        read_host(host, services),
        audit::read(host, 50),
        locks,
        ledgers
    );
    Snapshot {
        status,
        audit: audit.map(|l| l.records).map_err(Arc::new),
        locks,
        ledgers,
        monitor: None,
        fresh: None,
    }
}

/// One host's background task (the name tests and the runtime know): see [`super::watch`].
pub use super::watch::watch_host as poll_host;
pub use super::watch::{HEALTH_EVERY, POLL_EVERY, RESYNC_EVERY};

/// What the console shows of a monitoring cycle: the metrics as label/value pairs, and every
/// alert that is not quiet.
pub fn monitor_view(
    m: &crate::monitor::MonitorSnapshot,
    t: &crate::config::AlertThresholds,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::tui::model::MonitorSnapshot {
    use crate::monitor::AlertState as S;
    use crate::tui::model::{AlertRow, AlertState, MonitorSnapshot};
    use crate::util::format_bytes;
    let x = &m.metrics;
    let mut metrics = Vec::new();
    if let Some(c) = x.cpu_percent {
        metrics.push(("CPU".to_string(), format!("{c:.1}%")));
    }
    // Sizes and load are in the host facts above; these are the values the rules watch.
    if let Some(p) = x.mem_percent {
        metrics.push(("memory".into(), format!("{p:.1}%")));
    }
    if let Some(d) = x.disk_percent {
        metrics.push((
            "disk".into(),
            format!("{d:.1}% (fuller of / and Docker's root)"),
        ));
    }
    for c in &x.containers {
        metrics.push((
            c.name.clone(),
            format!(
                "CPU {} mem {}",
                c.cpu_percent
                    .map_or_else(|| "?".into(), |v| format!("{v:.1}%")),
                c.mem_bytes.map_or_else(|| "?".into(), format_bytes)
            ),
        ));
    }
    let alerts = m
        .alerts
        .iter()
        .filter_map(|a| {
            let for_ = match a.key.as_str() {
                "cpu" => t.cpu_for,
                "memory" => t.memory_for,
                "disk" => t.disk_for,
                _ => Duration::ZERO,
            };
            let state = match a.state {
                S::Inactive => return None,
                S::Pending => AlertState::Pending {
                    fires_at: now.timestamp()
                        + a.time_left(for_, now)
                            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
                },
                S::Firing => AlertState::Firing {
                    since: a.firing_since.unwrap_or(now).timestamp(),
                },
                S::Resolved => AlertState::Resolved {
                    at: a.resolved_at.unwrap_or(now).timestamp(),
                },
            };
            Some(AlertRow {
                name: a.rule.clone(),
                state,
                detail: a.message.clone(),
            })
        })
        .collect();
    MonitorSnapshot { metrics, alerts }
}

/// The runner's first phase for a dialog: plan the request on the hosts the pollers hold.
pub async fn plan(
    request: Request,
    hosts: Result<Vec<Arc<Host>>, PlanError>,
) -> Result<Planned, PlanError> {
    runner::plan(request, hosts?).await
}

/// The runner's second phase for a confirmed dialog: exactly the plans the dialog showed, host
/// by host; events flow to the UI and outcomes to the webhook, as from the CLI.
pub async fn execute(
    planned: Planned,
    cancel: CancellationToken,
    events: EventSink,
    notifier: Notifier,
) -> RunReport {
    planned
        .run(&RunOptions {
            events,
            cancel,
            notifier,
            // The operator saw the dialog's plan: what served then is pinned too.
            pin: PinMode::Confirmed,
            offer_take_over: None,
        })
        .await
}

/// Follows a container's logs, in batches, into a bounded channel: a chatty container slows
/// its own stream down, never the UI.
pub async fn stream_logs(
    host: Arc<Host>,
    container: String,
    id: u64,
    tx: mpsc::Sender<Msg>,
    cancel: CancellationToken,
) {
    let opts = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: "500".into(),
        ..Default::default()
    };
    let mut stream = host.docker.logs(&container, Some(opts));
    let mut batch: Vec<String> = Vec::new();
    let mut flush_at = tokio::time::Instant::now() + Duration::from_millis(50);
    let reason = loop {
        let next = tokio::select! {
            () = cancel.cancelled() => return,
            r = tokio::time::timeout_at(flush_at, stream.next()) => r,
        };
        match next {
            Ok(Some(Ok(chunk))) => {
                for line in String::from_utf8_lossy(&chunk.into_bytes()).lines() {
                    batch.push(line.to_string());
                }
                if batch.len() < 500 {
                    continue;
                }
            }
            Ok(Some(Err(e))) => break crate::util::error_chain(&e),
            Ok(None) => break "the container stopped or the stream closed".to_string(),
            Err(_) => {}
        }
        if !batch.is_empty() {
            let lines = std::mem::take(&mut batch);
            tokio::select! {
                () = cancel.cancelled() => return,
                r = tx.send(Msg::Logs { id, lines }) => if r.is_err() { return },
            }
        }
        flush_at = tokio::time::Instant::now() + Duration::from_millis(50);
    };
    if !batch.is_empty() {
        let _ = tx.send(Msg::Logs { id, lines: batch }).await;
    }
    let _ = tx.send(Msg::LogsEnded { id, reason }).await;
}

/// `docker inspect` of a container with secrets redacted: env values whose names look secret,
/// secret-looking labels, and credentials in any text.
pub async fn inspect(host: Arc<Host>, container: String) -> Result<Vec<String>, InspectError> {
    let info = host
        .docker
        .inspect_container(&container, None::<InspectContainerOptions>)
        .await
        .map_err(|source| InspectError::Docker {
            host: host.name().to_string(),
            container: container.clone(),
            source,
        })?;
    let json = |source| InspectError::Json {
        container: container.clone(),
        source,
    };
    let mut value = serde_json::to_value(&info).map_err(json)?;
    redact_value(&mut value);
    let text = serde_json::to_string_pretty(&value).map_err(json)?;
    Ok(text.lines().map(crate::redact::redact_text).collect())
}

/// The command line of an interactive shell in `container`: `docker exec -it … sh` against the
/// host's configured Docker socket, for a remote host through its SSH master's control socket
/// (`-S`; `ControlMaster=no` so it never becomes a master of its own).
pub fn shell_argv(spec: &HostSpec, control: Option<&Path>, container: &str) -> Vec<String> {
    let docker = [
        "docker".to_string(),
        "-H".to_string(),
        format!("unix://{}", spec.docker_socket),
        "exec".to_string(),
        "-it".to_string(),
        container.to_string(),
        "sh".to_string(),
    ];
    match (&spec.target, control) {
        (HostTarget::Ssh { destination, .. }, Some(ctl)) => {
            let mut argv: Vec<String> = ["ssh", "-S"].map(String::from).to_vec();
            argv.push(ctl.display().to_string());
            argv.extend(["-o", "ControlMaster=no", "-t", "--"].map(String::from));
            argv.push(destination.clone());
            // ssh hands the remote side one string for its shell: quote every word.
            argv.extend(docker.iter().map(|w| sh_quote(w)));
            argv
        }
        _ => docker.to_vec(),
    }
}

/// A shell on the host itself with `DOCKER_HOST` set to its configured socket (a Swarm
/// manager with no task of the service on its node), through its SSH master like
/// [`shell_argv`].
pub fn host_shell_argv(spec: &HostSpec, control: Option<&Path>) -> Vec<String> {
    let cmd = [
        "env".to_string(),
        format!("DOCKER_HOST=unix://{}", spec.docker_socket),
        "sh".to_string(),
    ];
    match (&spec.target, control) {
        (HostTarget::Ssh { destination, .. }, Some(ctl)) => {
            let mut argv: Vec<String> = ["ssh", "-S"].map(String::from).to_vec();
            argv.push(ctl.display().to_string());
            argv.extend(["-o", "ControlMaster=no", "-t", "--"].map(String::from));
            argv.push(destination.clone());
            argv.extend(cmd.iter().map(|w| sh_quote(w)));
            argv
        }
        _ => cmd.to_vec(),
    }
}

/// `'word'` for a POSIX shell.
fn sh_quote(w: &str) -> String {
    format!("'{}'", w.replace('\'', r"'\''"))
}

/// Redacts an inspect document; the rules (by name, by the container's secret-env label, by
/// value) live in the core: [`crate::redact::redact_json`].
pub fn redact_value(v: &mut serde_json::Value) {
    crate::redact::redact_json(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_rides_the_ssh_master_and_the_configured_docker_socket() {
        let mut spec = HostSpec {
            name: "lab-1".into(),
            target: HostTarget::Ssh {
                destination: "deploy@203.0.113.10".into(),
                user: Some("deploy".into()),
                port: Some(2222),
                identity_file: Some("/k/id".into()),
                known_hosts: None,
            },
            docker_socket: "/run/user/1000/docker.sock".into(),
            state_dir: "/var/lib/deckhand".into(),
            connect_timeout: Duration::from_secs(5),
            swarm: None,
        };
        let argv = shell_argv(&spec, Some(Path::new("/tmp/dhX/master")), "api-blue");
        assert_eq!(
            argv.join(" "),
            "ssh -S /tmp/dhX/master -o ControlMaster=no -t -- deploy@203.0.113.10 'docker' '-H' 'unix:///run/user/1000/docker.sock' 'exec' '-it' 'api-blue' 'sh'"
        );
        assert!(!argv.iter().any(|a| a == "-i" || a == "-p"), "no new login");
        spec.target = HostTarget::Local;
        assert_eq!(
            shell_argv(&spec, None, "api-blue").join(" "),
            "docker -H unix:///run/user/1000/docker.sock exec -it api-blue sh"
        );
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        spec.target = HostTarget::Ssh {
            destination: "root@10.0.0.1".into(),
            user: None,
            port: None,
            identity_file: None,
            known_hosts: None,
        };
        assert_eq!(
            host_shell_argv(&spec, Some(Path::new("/tmp/m"))).join(" "),
            "ssh -S /tmp/m -o ControlMaster=no -t -- root@10.0.0.1 'env' 'DOCKER_HOST=unix:///run/user/1000/docker.sock' 'sh'"
        );
    }
    use crate::monitor::{Alert, AlertState as S, HostMetrics, MonitorSnapshot};
    use crate::tui::model::AlertState;

    #[test]
    fn the_console_shows_metrics_and_every_alert_that_is_not_quiet() {
        let now = chrono::DateTime::from_timestamp(1_800_000_600, 0).expect("time");
        let at = |s: i64| chrono::DateTime::from_timestamp(1_800_000_000 + s, 0);
        let mut cpu = Alert::new("cpu", "CPU > 80% for 5m");
        cpu.state = S::Pending;
        cpu.active_since = at(480);
        let mut disk = Alert::new("disk", "disk > 90%");
        disk.state = S::Firing;
        disk.firing_since = at(0);
        let mut health = Alert::new("health:api", "api health fails 3x in a row");
        health.state = S::Resolved;
        health.resolved_at = at(540);
        let quiet = Alert::new("memory", "memory > 85% for 5m");
        let m = MonitorSnapshot {
            host: "h".into(),
            at: now,
            metrics: HostMetrics {
                cpu_percent: Some(91.5),
                mem_percent: Some(40.0),
                mem_total_bytes: Some(1 << 30),
                ..Default::default()
            },
            alerts: vec![cpu, quiet, disk, health],
            services: vec![],
            error: None,
        };
        let v = monitor_view(&m, &crate::config::AlertThresholds::default(), now);
        assert_eq!(v.metrics[0], ("CPU".to_string(), "91.5%".to_string()));
        assert_eq!(v.alerts.len(), 3, "the quiet memory rule is not listed");
        let t = now.timestamp();
        assert_eq!(v.alerts[0].state, AlertState::Pending { fires_at: t + 180 });
        assert_eq!(v.alerts[1].state, AlertState::Firing { since: t - 600 });
        assert_eq!(v.alerts[2].state, AlertState::Resolved { at: t - 60 });
    }
}
