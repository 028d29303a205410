//! `deckhand logs`: a service's containers on every host of an environment, merged in time
//! order (Docker's own log timestamps), in bounded memory whatever the hosts send.
//!
//! One reader task per container turns Docker's frames into lines (`assemble`, each cut at
//! [`MAX_LINE_BYTES`]), redacts and filters them, and sends them into one bounded channel; the
//! merger (`merge`) holds at most [`MAX_BUFFERED_LINES`] and hands lines out oldest first. A slow
//! consumer slows the readers down (the channel is bounded), which slows Docker down: nothing
//! piles up on this side. Lines are raw host text: the caller sanitizes them before printing.

mod assemble;
mod merge;

pub use assemble::{RawLine, Stream};
pub use merge::Merger;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::future::join_all;
use regex::Regex;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{HostSpec, Service};
use crate::state::contract::app_container;
use crate::state::{Color, read_service};
use crate::transport::Host;

/// Longest line kept; the rest of it is counted in `cut_bytes`.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Lines held for ordering; beyond this the oldest goes out at once.
pub const MAX_BUFFERED_LINES: usize = 2048;
/// Lines in flight between the readers and the merger.
const CHANNEL_LINES: usize = 256;
/// How long, when following, a line waits for older ones from a quiet container.
const FOLLOW_WINDOW: Duration = Duration::from_millis(300);

/// Which color's container to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    /// The color the proxy serves (read from the host).
    Live,
    One(Color),
    Both,
}

#[derive(Debug, Clone)]
pub struct LogRequest {
    pub colors: ColorChoice,
    pub since: Option<Duration>,
    /// Per container; `None`: everything Docker kept.
    pub tail: Option<usize>,
    pub follow: bool,
    pub grep: Option<Regex>,
}

/// One line of one container, as the host sent it (redacted, not sanitized).
#[derive(Debug, Clone)]
pub struct LogLine {
    pub time: DateTime<Utc>,
    pub host: Arc<str>,
    pub service: Arc<str>,
    pub color: Color,
    pub container: Arc<str>,
    pub stream: Stream,
    pub line: String,
    /// Bytes of an overlong line that were dropped (0: the whole line).
    pub cut_bytes: usize,
}

#[derive(Debug, Clone)]
pub enum LogEvent {
    Line(LogLine),
    /// Something the operator should know that is not a log line: a host unreachable, a
    /// container missing, a stream that ended with an error.
    Notice {
        host: String,
        message: String,
    },
    /// Nothing more can go out until a host sends more: the moment to flush buffered output.
    Idle,
}

/// How a run went, for the exit code.
#[derive(Debug, Default)]
pub struct LogSummary {
    pub unreachable: Vec<String>,
    pub containers: usize,
    pub lines: u64,
    pub cut_lines: u64,
}

struct Source {
    host: Arc<Host>,
    host_name: Arc<str>,
    service: usize,
    service_name: Arc<str>,
    color: Color,
    container: Arc<str>,
    /// On a Swarm, the task whose lines these are (`container` is `S-blue.2@node1`).
    task: Option<String>,
}

enum Item {
    Line(usize, RawLine),
    End(usize, Option<String>),
    /// Following the live color: source `usize` ended and the service is live again on
    /// `Color` (a switch, or the same color restarted); `None`: it did not come back.
    Relive(usize, Option<Color>),
    /// Following on a Swarm: a task of service `usize`'s followed color started.
    Task(Arc<Host>, usize, Color, crate::swarm::logs::TaskSource),
}

/// How often `--follow` on a Swarm looks for tasks Swarm started (a deploy, a rescheduled
/// task on another node).
const TASK_POLL: Duration = Duration::from_secs(2);

/// How long a followed live color may be gone before `logs --follow` gives up on it.
const RELIVE_WAIT: Duration = Duration::from_secs(120);

/// Reads, merges and hands every line to `emit` until the streams end (or, following, until
/// `cancel`), or `emit` says stop. Following the live color survives a deploy: when its
/// container stops, the new live color's container is followed from then on.
pub async fn run(
    specs: &[HostSpec],
    services: &[Service],
    req: &LogRequest,
    cancel: CancellationToken,
    mut emit: impl FnMut(LogEvent) -> ControlFlow<()>,
) -> LogSummary {
    let mut summary = LogSummary::default();
    let connected = join_all(specs.iter().map(Host::connect)).await;
    let mut hosts = Vec::new();
    for (spec, r) in specs.iter().zip(connected) {
        match r {
            Ok(h) => hosts.push(Arc::new(h)),
            Err(e) => {
                summary.unreachable.push(spec.name.clone());
                let _ = emit(LogEvent::Notice {
                    host: spec.name.clone(),
                    message: e.to_string(),
                });
            }
        }
    }
    let mut sources = resolve_sources(&hosts, services, req.colors, &mut emit).await;
    summary.containers = sources.len();
    let (tx, mut rx) = mpsc::channel::<Item>(CHANNEL_LINES);
    let since = req.since.map_or(0, |d| {
        let secs = Utc::now().timestamp() - i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        i32::try_from(secs.max(0)).unwrap_or(0)
    });
    let tail = req
        .tail
        .map_or_else(|| "all".to_string(), |n| n.to_string());
    let mut tasks = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        tasks.push(tokio::spawn(read_source(
            s.host.clone(),
            (s.container.to_string(), s.task.clone()),
            (since, tail.clone()),
            req.clone(),
            i,
            tx.clone(),
        )));
    }
    // Following on a Swarm: tasks come and go, so each manager is polled for new ones.
    let task_tx = req.follow.then(|| tx.clone());
    if let Some(ttx) = &task_tx {
        for host in hosts.iter().filter(|h| crate::swarm::is_swarm(h)) {
            let known = sources
                .iter()
                .filter(|s| Arc::ptr_eq(&s.host, host))
                .filter_map(|s| s.task.clone())
                .collect();
            tasks.push(tokio::spawn(poll_tasks(
                host.clone(),
                services.to_vec(),
                req.colors,
                known,
                ttx.clone(),
            )));
        }
    }
    let relive = req.follow && req.colors == ColorChoice::Live;
    // Without relive, the channel closes when the last reader ends.
    let tx = relive.then_some(tx);
    let window = req.follow.then_some(FOLLOW_WINDOW);
    let mut merger: Merger<LogLine> = Merger::new(sources.len(), MAX_BUFFERED_LINES, window);
    let mut stopped = false;
    'outer: while !merger.done() {
        while let Some(line) = merger.pop_ready(Instant::now()) {
            summary.lines += 1;
            summary.cut_lines += u64::from(line.cut_bytes > 0);
            if emit(LogEvent::Line(line)).is_break() {
                stopped = true;
                break 'outer;
            }
        }
        let item = match rx.try_recv() {
            Ok(item) => Some(item),
            Err(mpsc::error::TryRecvError::Disconnected) => None,
            Err(mpsc::error::TryRecvError::Empty) => {
                // Caught up: flush, then wait for the hosts (or the oldest line's window).
                if emit(LogEvent::Idle).is_break() {
                    stopped = true;
                    break;
                }
                let sleep_until = merger
                    .deadline()
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep_until(sleep_until.into()) => continue,
                    item = rx.recv() => item,
                }
            }
        };
        match item {
            Some(Item::Line(i, raw)) => {
                let s = &sources[i];
                let line = LogLine {
                    time: raw.time,
                    host: s.host_name.clone(),
                    service: s.service_name.clone(),
                    color: s.color,
                    container: s.container.clone(),
                    stream: raw.stream,
                    line: raw.text,
                    cut_bytes: raw.cut_bytes,
                };
                merger.push(i, raw.time, line, Instant::now());
            }
            Some(Item::End(i, reason)) => {
                // A Swarm task that ended is not replaced here: Swarm names new tasks, and the
                // run follows the tasks it started with.
                if let Some(tx) = tx.as_ref().filter(|_| sources[i].task.is_none()) {
                    let s = &sources[i];
                    let message = format!(
                        "{}: stopped; waiting for the live color (a deploy or a restart)",
                        s.container
                    );
                    if emit(LogEvent::Notice {
                        host: s.host_name.to_string(),
                        message,
                    })
                    .is_break()
                    {
                        stopped = true;
                        break;
                    }
                    tasks.push(tokio::spawn(wait_for_live(
                        s.host.clone(),
                        services[s.service].clone(),
                        i,
                        tx.clone(),
                    )));
                    continue;
                }
                merger.close(i);
                if let Some(message) = reason {
                    let host = sources[i].host_name.to_string();
                    if emit(LogEvent::Notice { host, message }).is_break() {
                        stopped = true;
                        break;
                    }
                }
            }
            Some(Item::Relive(i, color)) => {
                merger.close(i);
                let (Some(color), Some(tx)) = (color, &tx) else {
                    let s = &sources[i];
                    let message = format!(
                        "{}: no live color came back within {}s; stopped following it",
                        s.service_name,
                        RELIVE_WAIT.as_secs()
                    );
                    let _ = emit(LogEvent::Notice {
                        host: s.host_name.to_string(),
                        message,
                    });
                    continue;
                };
                let old = &sources[i];
                let service = &services[old.service];
                let next = Source {
                    host: old.host.clone(),
                    host_name: old.host_name.clone(),
                    service: old.service,
                    service_name: old.service_name.clone(),
                    color,
                    container: app_container(service, color).into(),
                    task: None,
                };
                let message = format!(
                    "{}: the live color is {color} now; following {}",
                    next.service_name, next.container
                );
                if emit(LogEvent::Notice {
                    host: next.host_name.to_string(),
                    message,
                })
                .is_break()
                {
                    stopped = true;
                    break;
                }
                // From a little before the old stream ended: the new color's last lines
                // before the switch are what one wants to see.
                // (The same color restarted: from now, or its old lines would come twice.)
                let back = if color == old.color { 1 } else { 30 };
                let since = i32::try_from(Utc::now().timestamp() - back).unwrap_or(0);
                let j = merger.add_source();
                tasks.push(tokio::spawn(read_source(
                    next.host.clone(),
                    (next.container.to_string(), None),
                    (since, "all".to_string()),
                    req.clone(),
                    j,
                    tx.clone(),
                )));
                sources.push(next);
                summary.containers += 1;
            }
            Some(Item::Task(host, si, color, t)) => {
                let Some(ttx) = &task_tx else { continue };
                let message = format!("{}: a new task; following it", t.name);
                if emit(LogEvent::Notice {
                    host: host.name().to_string(),
                    message,
                })
                .is_break()
                {
                    stopped = true;
                    break;
                }
                let j = merger.add_source();
                // A task that just started: all of it.
                tasks.push(tokio::spawn(read_source(
                    host.clone(),
                    (t.name.clone(), Some(t.task_id.clone())),
                    (0, "all".to_string()),
                    req.clone(),
                    j,
                    ttx.clone(),
                )));
                sources.push(Source {
                    host_name: host.name().into(),
                    host,
                    service: si,
                    service_name: services[si].name.as_str().into(),
                    color,
                    container: t.name.into(),
                    task: Some(t.task_id),
                });
                summary.containers += 1;
            }
            // Every reader ended: close whatever is still marked open.
            None => {
                for i in 0..sources.len() {
                    merger.close(i);
                }
            }
        }
    }
    // Ctrl-C while following: what is buffered still goes out, in order.
    if !stopped {
        for i in 0..sources.len() {
            merger.close(i);
        }
        while let Some(line) = merger.pop_ready(Instant::now()) {
            summary.lines += 1;
            if emit(LogEvent::Line(line)).is_break() {
                break;
            }
        }
    }
    let _ = emit(LogEvent::Idle);
    for t in tasks {
        t.abort();
    }
    drop(sources);
    for h in hosts {
        if let Ok(h) = Arc::try_unwrap(h) {
            h.close().await;
        }
    }
    summary
}

/// After the followed live color's stream ended: polls until the service is live again and
/// its live container runs (a deploy switched, or the color was restarted).
async fn wait_for_live(host: Arc<Host>, service: Service, index: usize, tx: mpsc::Sender<Item>) {
    let deadline = Instant::now() + RELIVE_WAIT;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Ok(st) = read_service(&host, &service).await
            && let Some(c) = st.live_color
            && st
                .color(c)
                .is_some_and(|s| s.state == crate::state::ContainerState::Running)
        {
            let _ = tx.send(Item::Relive(index, Some(c))).await;
            return;
        }
    }
    let _ = tx.send(Item::Relive(index, None)).await;
}

/// Following on a Swarm: every [`TASK_POLL`], the running tasks of the followed colors (the
/// live one as the manager says now) that are not read yet.
async fn poll_tasks(
    host: Arc<Host>,
    services: Vec<Service>,
    choice: ColorChoice,
    mut known: std::collections::HashSet<String>,
    tx: mpsc::Sender<Item>,
) {
    loop {
        tokio::time::sleep(TASK_POLL).await;
        for (si, service) in services.iter().enumerate() {
            let colors = match choice {
                ColorChoice::One(c) => vec![c],
                ColorChoice::Both => Color::BOTH.to_vec(),
                ColorChoice::Live => match read_service(&host, service).await {
                    Ok(st) => st.live_color.into_iter().collect(),
                    Err(_) => continue,
                },
            };
            for color in colors {
                let name = app_container(service, color);
                let Ok(found) = crate::swarm::logs::task_sources(&host, &name).await else {
                    continue;
                };
                for t in found {
                    if known.insert(t.task_id.clone())
                        && tx
                            .send(Item::Task(host.clone(), si, color, t))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
            }
        }
    }
}

async fn resolve_sources(
    hosts: &[Arc<Host>],
    services: &[Service],
    choice: ColorChoice,
    emit: &mut impl FnMut(LogEvent) -> ControlFlow<()>,
) -> Vec<Source> {
    let mut sources = Vec::new();
    for host in hosts {
        let host_name: Arc<str> = host.name().into();
        for (si, service) in services.iter().enumerate() {
            let colors: Vec<Color> = match choice {
                ColorChoice::One(c) => vec![c],
                ColorChoice::Both => Color::BOTH.to_vec(),
                ColorChoice::Live => match read_service(host, service).await {
                    Ok(st) => match st.live_color {
                        Some(c) => vec![c],
                        None => {
                            let _ = emit(LogEvent::Notice {
                                host: host.name().to_string(),
                                message: format!(
                                    "{}: no live color (nothing deployed, or the proxy is gone); try --color both",
                                    service.name
                                ),
                            });
                            continue;
                        }
                    },
                    Err(e) => {
                        let _ = emit(LogEvent::Notice {
                            host: host.name().to_string(),
                            message: format!("{}: cannot read the service: {e}", service.name),
                        });
                        continue;
                    }
                },
            };
            for color in colors {
                let name = app_container(service, color);
                // A Swarm color: one source per running task, on whichever node it runs.
                let tasks: Vec<(String, Option<String>)> = if crate::swarm::is_swarm(host) {
                    match crate::swarm::logs::task_sources(host, &name).await {
                        Ok(t) if t.is_empty() => {
                            let _ = emit(LogEvent::Notice {
                                host: host.name().to_string(),
                                message: format!("{name}: no running task on the Swarm"),
                            });
                            Vec::new()
                        }
                        Ok(t) => t.into_iter().map(|t| (t.name, Some(t.task_id))).collect(),
                        Err(e) => {
                            let _ = emit(LogEvent::Notice {
                                host: host.name().to_string(),
                                message: format!("{name}: cannot list its tasks: {e}"),
                            });
                            Vec::new()
                        }
                    }
                } else {
                    vec![(name, None)]
                };
                for (container, task) in tasks {
                    sources.push(Source {
                        host: host.clone(),
                        host_name: host_name.clone(),
                        service: si,
                        service_name: service.name.as_str().into(),
                        color,
                        container: container.into(),
                        task,
                    });
                }
            }
        }
    }
    sources
}

/// `(since, tail)`: Docker's `since` (Unix seconds, 0: all) and `tail` (a count or `all`).
async fn read_source(
    host: Arc<Host>,
    (container, task): (String, Option<String>),
    (since, tail): (i32, String),
    req: LogRequest,
    index: usize,
    tx: mpsc::Sender<Item>,
) {
    let opts = LogsOptions {
        follow: req.follow,
        stdout: true,
        stderr: true,
        timestamps: true,
        since,
        tail,
        ..Default::default()
    };
    type Frames = std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >;
    let mut stream: Frames = match &task {
        Some(t) => Box::pin(host.docker.task_logs(t, Some(opts))),
        None => Box::pin(host.docker.logs(&container, Some(opts))),
    };
    let mut asm = assemble::Assembler::new(MAX_LINE_BYTES);
    let mut lines = Vec::new();
    let mut reason = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                asm.push(Stream::Stdout, &message, &mut lines);
            }
            Ok(LogOutput::StdErr { message }) => asm.push(Stream::Stderr, &message, &mut lines),
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => {
                reason = Some(describe_error(&container, &e));
                break;
            }
        }
        if !send_lines(&mut lines, &req, index, &tx).await {
            return;
        }
    }
    asm.finish(&mut lines);
    if !send_lines(&mut lines, &req, index, &tx).await {
        return;
    }
    if reason.is_none() && req.follow {
        reason = Some(format!(
            "{container}: the log stream ended (the container was removed, or Docker closed it)"
        ));
    }
    let _ = tx.send(Item::End(index, reason)).await;
}

/// Redacts and filters, then sends; false when the merger is gone.
async fn send_lines(
    lines: &mut Vec<RawLine>,
    req: &LogRequest,
    index: usize,
    tx: &mpsc::Sender<Item>,
) -> bool {
    for mut l in lines.drain(..) {
        let redacted = crate::redact::redact_text(&l.text);
        if redacted != l.text {
            l.text = redacted;
        }
        if req.grep.as_ref().is_some_and(|g| !g.is_match(&l.text)) {
            continue;
        }
        if tx.send(Item::Line(index, l)).await.is_err() {
            return false;
        }
    }
    true
}

fn describe_error(container: &str, e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => format!("{container}: no such container on this host"),
        other => format!("{container}: {}", crate::util::error_chain(other)),
    }
}
