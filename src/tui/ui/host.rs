//! One host and service: both colors side by side, images, metrics and alerts, the audit log,
//! and the progress of an action.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table, Tabs};

use super::{ago, trunc, wrap};
use crate::release::Step;
use crate::state::{Color, ColorStatus, ContainerState, ServiceStatus};
use crate::tui::action::{Progress, StepState};
use crate::tui::app::{App, Pane};
use crate::tui::model::{AlertState, Conn, HostView};
use crate::util::{format_age, format_bytes, format_duration};

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme();
    let Some((h, svc)) = app.current() else {
        f.render_widget(Paragraph::new("no host selected"), area);
        return;
    };
    let [title, tabs, body] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
    ])
    .areas(area);
    let s = h.service(&svc.name);
    let mut spans = vec![Span::styled(
        format!(" {} › {} ", h.name, svc.name),
        t.bold(),
    )];
    if let Some(s) = s {
        let route = match (s.proxy.exists, s.live_color) {
            (false, _) => "no proxy".to_string(),
            (true, Some(c)) => format!(":{} → {c}", s.proxy.public_port.unwrap_or(svc.public_port)),
            (true, None) => format!(":{} → ?", svc.public_port),
        };
        spans.push(Span::raw(format!(" proxy {route} ")));
        if let Some(n) = &s.settling {
            spans.push(Span::styled(format!(" {n} "), t.warn()));
        }
    }
    match (h.age(app.now()), h.stale_age(app.now())) {
        (_, Some(a)) => spans.push(Span::styled(
            format!(" STALE: updated {} ago ", format_age(secs(a))),
            t.warn(),
        )),
        (Some(a), None) => spans.push(Span::styled(
            format!(" updated {} ago ", format_age(secs(a))),
            t.dim(),
        )),
        (None, None) => spans.push(Span::styled(" not read yet ", t.dim())),
    }
    f.render_widget(Paragraph::new(Line::from(spans)), title);

    let titles: Vec<String> = Pane::ALL
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{} {}", i + 1, p.title()))
        .collect();
    let idx = Pane::ALL.iter().position(|p| *p == app.pane()).unwrap_or(0);
    f.render_widget(
        Tabs::new(titles)
            .select(idx)
            .highlight_style(t.selected())
            .divider("│"),
        tabs,
    );

    if app.pane() == Pane::Progress {
        draw_progress(f, app, body);
        return;
    }
    let down = h
        .down_reason()
        .map(|e| match h.conn.down_text(app.now(), app.now_unix()) {
            Some(d) => format!("{e}\n{d}"),
            None => e.to_string(),
        });
    if let Some(e) = down.filter(|_| h.snapshot.is_none() || app.pane() != Pane::Audit) {
        let mut lines = vec![Line::from(Span::styled(
            format!("{} is unreachable; other hosts keep working.", h.name),
            t.bad(),
        ))];
        lines.extend(
            wrap(&e, usize::from(body.width))
                .into_iter()
                .map(Line::from),
        );
        if let Some(a) = h.age(app.now()) {
            lines.push(Line::from(format!(
                "last good read {} ago (below it may be out of date)",
                format_age(secs(a))
            )));
        }
        let n = u16::try_from(lines.len()).unwrap_or(u16::MAX);
        let [err, rest] = Layout::vertical([Constraint::Length(n), Constraint::Min(0)]).areas(body);
        f.render_widget(Paragraph::new(lines), err);
        if h.snapshot.is_some() {
            draw_pane(f, app, h, s, rest);
        }
        return;
    }
    draw_pane(f, app, h, s, body);
}

fn draw_pane(f: &mut Frame, app: &App, h: &HostView, s: Option<&ServiceStatus>, area: Rect) {
    match app.pane() {
        Pane::Colors => match s {
            Some(s) => draw_colors(f, app, h, s, area),
            None => f.render_widget(Paragraph::new(waiting(h)), area),
        },
        Pane::Images => match s {
            Some(s) => draw_images(f, app, s, area),
            None => f.render_widget(Paragraph::new(waiting(h)), area),
        },
        Pane::Metrics => draw_metrics(f, app, h, area),
        Pane::Audit => draw_audit(f, app, h, area),
        Pane::Progress => draw_progress(f, app, area),
    }
}

fn waiting(h: &HostView) -> String {
    match (&h.conn, &h.snapshot) {
        (Conn::Connecting, _) => format!("connecting to {} …", h.name),
        (Conn::Down { why, .. }, None) => why.to_string(),
        (_, Some(s)) => s
            .status
            .error
            .clone()
            .unwrap_or_else(|| "this service is not on the host".into()),
        _ => "waiting for the first read …".into(),
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn draw_colors(f: &mut Frame, app: &App, h: &HostView, s: &ServiceStatus, area: Rect) {
    let t = app.theme();
    let problems: Vec<Line> = s
        .problems
        .iter()
        .map(|p| Line::from(Span::styled(format!("! {p}"), t.bad())))
        .collect();
    let n = u16::try_from(problems.len())
        .unwrap_or(0)
        .min(area.height / 3);
    let [cols, probs] = Layout::vertical([Constraint::Min(4), Constraint::Length(n)]).areas(area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(cols);
    let chosen = app.current_color();
    let back = crate::tui::model::rollback_target(s, h.ledger(&s.name));
    for (c, r) in [(Color::Blue, left), (Color::Green, right)] {
        let live = s.live_color == Some(c);
        let cs = s.color(c);
        let rollback_target = back.as_ref().is_some_and(|(rc, _)| *rc == Some(c));
        let mut title = vec![Span::styled(
            format!(" {c} "),
            t.color_of(c).patch(t.bold()),
        )];
        if live {
            title.push(Span::styled("● LIVE ", t.live()));
        } else if rollback_target {
            title.push(Span::styled("↺ rollback target ", t.warn()));
        }
        let mut block = Block::default()
            .borders(Borders::ALL)
            .title(Line::from(title));
        if c == chosen {
            block = block
                .border_style(t.bold())
                .title_bottom(" selected: l i s ");
        }
        let inner = block.inner(r);
        f.render_widget(block, r);
        let Some(cs) = cs else {
            f.render_widget(Paragraph::new(Span::styled("no container", t.dim())), inner);
            continue;
        };
        let lines = color_lines(app, cs, inner.width);
        let spark = h
            .latency
            .get(&(s.name.clone(), c))
            .filter(|q| !q.is_empty());
        let traffic = h
            .traffic
            .get(&(s.name.clone(), c))
            .filter(|q| !q.is_empty());
        let spark_h = if (spark.is_some() || traffic.is_some()) && inner.height > 4 {
            2
        } else {
            0
        };
        let [text, sp] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(spark_h)]).areas(inner);
        f.render_widget(Paragraph::new(lines), text);
        // Requests per second through the proxy, beside the health latency.
        let [sp, tp] = match traffic {
            Some(_) => Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(sp),
            None => [sp, Rect::default()],
        };
        if let Some(q) = traffic {
            super::traffic::spark(f, app, s, c, q, tp);
        }
        if let Some(q) = spark {
            let data: Vec<u64> = q.iter().copied().collect();
            let max = data.iter().copied().max().unwrap_or(0);
            let [label, line] =
                Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(sp);
            f.render_widget(
                Paragraph::new(Span::styled(
                    format!("latency last {} reads, max {max}ms", data.len()),
                    t.dim(),
                )),
                label,
            );
            f.render_widget(Sparkline::default().data(&data).style(t.accent()), line);
        }
    }
    f.render_widget(Paragraph::new(problems), probs);
}

fn color_lines(app: &App, cs: &ColorStatus, width: u16) -> Vec<Line<'static>> {
    let t = app.theme();
    let w = usize::from(width.saturating_sub(10));
    let kv = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{k:<9} "), t.dim()),
            Span::raw(trunc(&v, w)),
        ])
    };
    let state_style = match cs.state {
        ContainerState::Running => t.ok(),
        ContainerState::Exited => t.plain(),
        _ => t.warn(),
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{:<9} ", "state"), t.dim()),
            Span::styled(cs.state.as_str().to_string(), state_style),
            Span::raw(match (cs.state, cs.exit_code) {
                (ContainerState::Exited, Some(code)) => format!(" (exit {code})"),
                _ => String::new(),
            }),
        ]),
        kv("sha", cs.sha.clone().unwrap_or_else(|| "?".into())),
        kv("image", cs.image.clone()),
    ];
    let uptime = if cs.state == ContainerState::Running {
        cs.started_at
            .as_deref()
            .and_then(|s| super::age_of(s, app.now_unix()))
            .map_or_else(|| "—".to_string(), format_age)
    } else {
        format!("stopped {}", ago(cs.finished_at.as_deref(), app.now_unix()))
    };
    lines.push(kv("uptime", uptime));
    lines.push(kv(
        "deployed",
        ago(cs.deployed_at.as_deref(), app.now_unix()),
    ));
    lines.push(kv(
        "by",
        cs.deployed_by.clone().unwrap_or_else(|| "?".into()),
    ));
    match &cs.health {
        None => lines.push(kv("/health", "not probed (not running)".into())),
        Some(hr) => {
            let style = if hr.is_healthy() { t.ok() } else { t.bad() };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<9} ", "/health"), t.dim()),
                Span::styled(trunc(&hr.summary(), w), style),
            ]));
            for (name, state) in &hr.services {
                let st = if state == "connected" {
                    t.ok()
                } else {
                    t.bad()
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("  {name:<7} "), t.dim()),
                    Span::styled(state.clone(), st),
                ]));
            }
        }
    }
    if let Some(d) = &cs.docker_health {
        lines.push(kv("docker", d.clone()));
    }
    lines
}

fn draw_images(f: &mut Frame, app: &App, s: &ServiceStatus, area: Rect) {
    let t = app.theme();
    let previous = s
        .live_color
        .and_then(|c| s.color(c.other()))
        .and_then(|c| c.sha.clone());
    let header = Row::new([
        "SHA",
        "CREATED",
        "SIZE",
        "IN USE BY",
        "PROTECTED",
        "NOTE",
        "ALSO TAGGED",
    ])
    .style(t.bold());
    let rows: Vec<Row> = s
        .images
        .iter()
        .skip(app.nav().pane_scroll())
        .map(|img| {
            let note = if s.live_sha.as_deref() == Some(img.tag.as_str()) {
                "live"
            } else if previous.as_deref() == Some(img.tag.as_str()) {
                "previous"
            } else {
                ""
            };
            let created = if img.created_unix > 0 {
                format!("{} ago", format_age(app.now_unix() - img.created_unix))
            } else {
                img.created.clone()
            };
            let row = Row::new(vec![
                trunc(&img.tag, 12),
                created,
                format_bytes(img.size_bytes),
                img.in_use_by
                    .map_or_else(|| "—".to_string(), |c| c.to_string()),
                if img.protected {
                    "yes".into()
                } else {
                    "no".into()
                },
                note.to_string(),
                img.also_tagged.join(","),
            ]);
            match note {
                "live" => row.style(t.live()),
                "previous" => row.style(t.warn()),
                _ => row,
            }
        })
        .collect();
    let widths = [
        Constraint::Length(12),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Min(5),
    ];
    f.render_widget(
        Table::new(rows, widths).header(header).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {} images, newest first ", s.images.len())),
        ),
        area,
    );
}

fn draw_metrics(f: &mut Frame, app: &App, h: &HostView, area: Rect) {
    let t = app.theme();
    let mut lines = Vec::new();
    match h.snapshot.as_ref().and_then(|s| s.status.facts.as_ref()) {
        None => lines.push(Line::from("no facts read yet")),
        Some(fa) => {
            let opt = |v: Option<String>| v.unwrap_or_else(|| "—".into());
            lines.push(Line::from(format!(
                "docker     {} (API {})",
                opt(fa.docker_version.clone()),
                opt(fa.docker_api_version.clone())
            )));
            if let (Some(total), Some(avail)) = (fa.mem_total_bytes, fa.mem_available_bytes) {
                let used = total.saturating_sub(avail);
                #[allow(clippy::cast_precision_loss)]
                let pct = if total > 0 {
                    used as f64 * 100.0 / total as f64
                } else {
                    0.0
                };
                lines.push(Line::from(format!(
                    "memory     {} of {} used ({pct:.0} %)",
                    format_bytes(used),
                    format_bytes(total)
                )));
            }
            if let Some([a, b, c]) = fa.load_average {
                lines.push(Line::from(format!("load       {a:.2} {b:.2} {c:.2}")));
            }
            for (label, d) in [("disk /", &fa.disk_root), ("disk docker", &fa.disk_docker)] {
                if let Some(d) = d {
                    lines.push(Line::from(format!(
                        "{label:<10} {} of {} ({:.0} %) on {}",
                        format_bytes(d.used_bytes),
                        format_bytes(d.total_bytes),
                        d.percent,
                        d.mount
                    )));
                }
            }
        }
    }
    lines.push(Line::from(""));
    match h.snapshot.as_ref().and_then(|s| s.monitor.as_ref()) {
        None => lines.push(Line::from(Span::styled(
            "alerts: not monitored yet (CPU, memory, disk and health rules come with the monitor)",
            t.dim(),
        ))),
        Some(m) => {
            for (k, v) in &m.metrics {
                lines.push(Line::from(format!("{k:<10} {v}")));
            }
            if m.alerts.is_empty() {
                lines.push(Line::from(Span::styled("alerts: none", t.ok())));
            }
            for a in &m.alerts {
                let (state, style) = match &a.state {
                    AlertState::Pending { fires_at } => (
                        format!(
                            "pending, fires in {}",
                            format_duration(Duration::from_secs(
                                u64::try_from(fires_at - app.now_unix()).unwrap_or(0)
                            ))
                        ),
                        t.warn(),
                    ),
                    AlertState::Firing { since } => (
                        format!(
                            "FIRING since {} ({} ago)",
                            chrono::DateTime::from_timestamp(*since, 0)
                                .map_or_else(String::new, |d| d.format("%H:%M:%S").to_string()),
                            format_age(app.now_unix() - since)
                        ),
                        t.bad(),
                    ),
                    AlertState::Resolved { at } => (
                        format!(
                            "resolved {} ago",
                            format_duration(Duration::from_secs(
                                u64::try_from(app.now_unix() - at).unwrap_or(0)
                            ))
                        ),
                        t.ok(),
                    ),
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("{:<16} {state:<28} ", a.name), style),
                    Span::raw(a.detail.clone()),
                ]));
            }
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .scroll((u16::try_from(app.nav().pane_scroll()).unwrap_or(0), 0))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(format!(" {} ", h.name)),
            ),
        area,
    );
}

fn draw_audit(f: &mut Frame, app: &App, h: &HostView, area: Rect) {
    let t = app.theme();
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" audit log, newest first ");
    let records = match h.snapshot.as_ref().map(|s| &s.audit) {
        None => {
            f.render_widget(Paragraph::new("not read yet").block(block), area);
            return;
        }
        Some(Err(e)) => {
            f.render_widget(
                Paragraph::new(Span::styled(
                    format!("cannot read the audit log: {e}"),
                    t.bad(),
                ))
                .block(block),
                area,
            );
            return;
        }
        Some(Ok(r)) => r,
    };
    if records.is_empty() {
        f.render_widget(Paragraph::new("no records yet").block(block), area);
        return;
    }
    let header =
        Row::new(["TIME", "ACTOR", "ACTION", "FROM → TO", "OUTCOME", "TOOK"]).style(t.bold());
    let rows: Vec<Row> = records
        .iter()
        .rev()
        .skip(app.nav().pane_scroll())
        .map(|r| {
            let time = r.time.get(5..16).unwrap_or(&r.time).replace('T', " ");
            let style = match r.outcome.as_str() {
                "failed" => t.bad(),
                "aborted" | "started" => t.warn(),
                _ => t.plain(),
            };
            Row::new(vec![
                time,
                trunc(&r.actor, 18),
                format!("{} {}", r.action, r.service),
                format!(
                    "{} → {}",
                    r.from_sha.as_deref().unwrap_or("-"),
                    r.to_sha.as_deref().unwrap_or("-")
                ),
                r.outcome.to_string(),
                r.duration_ms
                    .map(|ms| format_duration(Duration::from_millis(ms)))
                    .unwrap_or_default(),
            ])
            .style(style)
        })
        .collect();
    let widths = [
        Constraint::Length(11),
        Constraint::Min(8),
        Constraint::Length(14),
        Constraint::Length(17),
        Constraint::Length(8),
        Constraint::Length(6),
    ];
    f.render_widget(Table::new(rows, widths).header(header).block(block), area);
}

pub(super) fn draw_progress(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme();
    let Some(p) = app.current_progress() else {
        f.render_widget(
            Paragraph::new("no action on this service yet (d deploy · r rollback · p prune)")
                .block(Block::default().borders(Borders::ALL).title(" progress ")),
            area,
        );
        return;
    };
    let (state, style) = match &p.outcome {
        None if p.abort_requested => ("aborting…".to_string(), t.warn()),
        None => ("running".to_string(), t.warn()),
        Some(r) if r.succeeded() => ("done ✓".to_string(), t.ok()),
        Some(_) => ("FAILED ✗".to_string(), t.bad()),
    };
    let title = Line::from(vec![
        Span::raw(format!(" {} · ", p.request.title())),
        Span::styled(state, style),
        Span::raw(format!(" · {} ", format_duration(p.elapsed(app.now())))),
    ]);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let lines = progress_lines(app, p, usize::from(inner.width));
    let height = usize::from(inner.height);
    // The newest lines stay in view; ↑ scrolls back.
    let top = lines
        .len()
        .saturating_sub(height)
        .saturating_sub(app.nav().pane_scroll());
    f.render_widget(
        Paragraph::new(lines).scroll((u16::try_from(top).unwrap_or(0), 0)),
        inner,
    );
}

fn progress_lines(app: &App, p: &Progress, width: usize) -> Vec<Line<'static>> {
    let t = app.theme();
    let mut lines = Vec::new();
    for row in &p.steps {
        let (mark, style) = match row.state {
            StepState::Done => ("✓", t.ok()),
            StepState::Running => ("▸", t.warn()),
            StepState::Failed => ("✗", t.bad()),
        };
        let took = match (row.state, row.elapsed_ms) {
            (_, Some(ms)) => format_duration(Duration::from_millis(ms)),
            (StepState::Running, None) => {
                format_duration(app.now().saturating_duration_since(row.started))
            }
            _ => String::new(),
        };
        let detail = if row.state == StepState::Failed {
            String::new()
        } else {
            row.detail.clone()
        };
        let label = format!("[{}] {}", row.host, row.step.label());
        let head = format!("{mark} {label:<38} {took:>7} ");
        let rest = width.saturating_sub(head.chars().count());
        lines.push(Line::from(vec![
            Span::styled(head, style),
            Span::styled(trunc(&detail, rest), t.dim()),
        ]));
        if row.state == StepState::Running && row.step == Step::Pull {
            for (layer, l) in &p.pull {
                let amount = match (l.current, l.total) {
                    (Some(c), Some(tot)) if tot > 0 => format!(
                        " {}/{}",
                        format_bytes(u64::try_from(c).unwrap_or(0)),
                        format_bytes(u64::try_from(tot).unwrap_or(0))
                    ),
                    _ => String::new(),
                };
                lines.push(Line::from(Span::styled(
                    format!("    {} {}{amount}", trunc(layer, 12), l.status),
                    t.dim(),
                )));
            }
        }
        if row.step == Step::Health
            && let Some((n, healthy, detail)) = &p.health
        {
            lines.push(Line::from(Span::styled(
                trunc(
                    &format!(
                        "    attempt {n}: {}",
                        if *healthy {
                            "healthy".to_string()
                        } else {
                            detail.clone()
                        }
                    ),
                    width,
                ),
                if *healthy { t.ok() } else { t.dim() },
            )));
        }
    }
    for n in &p.notes {
        lines.push(Line::from(Span::styled(
            trunc(&format!("  {n}"), width),
            t.accent(),
        )));
    }
    match &p.outcome {
        Some(r) if r.succeeded() => {
            for l in wrap(&r.summary(), width) {
                lines.push(Line::from(Span::styled(l, t.ok())));
            }
        }
        Some(r) => {
            lines.push(Line::from(Span::styled("cause:", t.bad())));
            for l in wrap(&r.summary(), width) {
                lines.push(Line::from(l));
            }
        }
        None => {
            if !p.abort_requested {
                lines.push(Line::from(Span::styled(
                    "Ctrl-C aborts before the switch (the old color keeps serving)",
                    t.dim(),
                )));
            }
        }
    }
    lines
}
