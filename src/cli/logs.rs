//! `deckhand logs`: asks the engine (`crate::logs`) for the merged lines and prints them.

use std::io::Write;
use std::ops::ControlFlow;

use color_eyre::eyre::Result;
use tokio_util::sync::CancellationToken;

use super::args::{LogColor, LogsArgs};
use super::host_text::{clean, clean_lines};
use super::{Context, OutputFormat};
use crate::exit;
use crate::logs::{ColorChoice, LogEvent, LogLine, LogRequest};
use crate::state::Color;

/// Lines of each container when `--tail` is not given.
const DEFAULT_TAIL: usize = 100;

pub async fn run(ctx: &Context, args: &LogsArgs) -> Result<i32> {
    let grep = match args.grep.as_deref().map(regex::Regex::new).transpose() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: --grep: not a regular expression: {e}");
            return Ok(exit::USAGE);
        }
    };
    let mut specs = Vec::new();
    for name in &args.hosts {
        match ctx.env.hosts.iter().find(|h| &h.name == name) {
            Some(h) => specs.push(h.clone()),
            None => {
                eprintln!(
                    "error: host `{name}` is not in environment `{}` (hosts: {})",
                    ctx.env.name,
                    ctx.env
                        .hosts
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Ok(exit::USAGE);
            }
        }
    }
    if specs.is_empty() {
        specs = ctx.env.hosts.clone();
    }
    let req = LogRequest {
        colors: match args.color {
            LogColor::Live => ColorChoice::Live,
            LogColor::Blue => ColorChoice::One(Color::Blue),
            LogColor::Green => ColorChoice::One(Color::Green),
            LogColor::Both => ColorChoice::Both,
        },
        since: args.since,
        tail: match (args.tail, args.since) {
            (Some(n), _) => Some(n),
            // --since alone means "everything since", not the last 100 of it.
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAIL),
        },
        follow: args.follow,
        grep,
    };
    let cancel = CancellationToken::new();
    if args.follow {
        let c = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                c.cancel();
            }
        });
    }
    let json = ctx.global.output == OutputFormat::Json;
    let several_services = ctx.services.len() > 1;
    let width = specs
        .iter()
        .map(|h| h.name.chars().count())
        .max()
        .unwrap_or(0);
    // Buffered, flushed whenever the engine waits for the hosts: a flood costs one write per
    // 8 KiB, a quiet --follow still shows each line at once.
    let mut stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let summary = crate::logs::run(&specs, &ctx.services, &req, cancel, |event| {
        match event {
            LogEvent::Idle => match stdout.flush() {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            },
            LogEvent::Notice { host, message } => {
                let _ = stdout.flush();
                eprintln!("warning: {}: {}", clean(&host), clean_lines(&message));
                ControlFlow::Continue(())
            }
            LogEvent::Line(line) => {
                let text = if json {
                    json_line(&line)
                } else {
                    table_line(&line, width, several_services)
                };
                // A closed pipe (`| head`) ends the run quietly.
                match writeln!(stdout, "{text}") {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(_) => ControlFlow::Break(()),
                }
            }
        }
    })
    .await;
    tracing::info!(
        containers = summary.containers,
        lines = summary.lines,
        cut_lines = summary.cut_lines,
        unreachable = summary.unreachable.len(),
        "logs"
    );
    if summary.containers == 0 && summary.unreachable.is_empty() {
        eprintln!("warning: no container to read logs from (see the warnings above)");
    }
    Ok(if summary.unreachable.is_empty() {
        exit::OK
    } else {
        exit::UNREACHABLE
    })
}

fn table_line(l: &LogLine, width: usize, with_service: bool) -> String {
    let mut out = format!(
        "{} {:<width$} {:<5} ",
        l.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        clean(&l.host),
        l.color.as_str(),
    );
    if with_service {
        out.push_str(&clean(&l.service));
        out.push(' ');
    }
    // A Swarm task (`S-blue.2@node1`): which node wrote the line is the point.
    if l.container.contains('@') {
        out.push_str(&clean(&l.container));
        out.push(' ');
    }
    out.push_str("| ");
    out.push_str(&clean(&l.line));
    if l.cut_bytes > 0 {
        out.push_str(&format!(" … [{} more bytes cut]", l.cut_bytes));
    }
    out
}

fn json_line(l: &LogLine) -> String {
    serde_json::json!({
        "time": l.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "host": clean(&l.host),
        "service": clean(&l.service),
        "color": l.color,
        "container": clean(&l.container),
        "stream": l.stream,
        "line": clean(&l.line),
        "cut_bytes": l.cut_bytes,
    })
    .to_string()
}
