//! The host list: every host of the environment, one row per service, at a glance.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};

use super::{trunc, wrap};
use crate::tui::app::App;
use crate::tui::model::{AlertState, Conn, HostView};
use crate::util::format_age;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme();
    let rows = app.rows();
    let notes = notes(app, area.width.saturating_sub(2) as usize);
    let notes_h = u16::try_from(notes.len())
        .unwrap_or(u16::MAX)
        .min(area.height / 2);
    let [table_area, notes_area] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(notes_h)]).areas(area);

    let header = Row::new([
        "HOST", "CONN", "SERVICE", "LIVE", "SHA", "ROLLBACK", "HEALTH", "ALERTS", "UPDATED",
    ])
    .style(t.bold());
    let mut table_rows = Vec::new();
    for (hi, si) in &rows {
        let (h, svc) = (&app.hosts()[*hi], &app.services()[*si]);
        let (conn, conn_style) = match &h.conn {
            Conn::Connected => ("up", t.ok()),
            Conn::Connecting => ("…", t.dim()),
            Conn::Down { .. } => ("DOWN", t.bad()),
        };
        let s = h.service(&svc.name);
        let live = s.and_then(|s| s.live_color);
        let live_cell = match live {
            Some(c) => Cell::from(Span::styled(c.as_str(), t.color_of(c))),
            None => Cell::from(if s.is_some() { "none" } else { "—" }),
        };
        let sha = s
            .and_then(|s| s.live_sha.clone())
            .unwrap_or_else(|| "—".into());
        let back = match h.rollback_target(&svc.name) {
            Some((_, sha)) => Cell::from(Span::styled(format!("↺{}", trunc(&sha, 7)), t.warn())),
            None => Cell::from(Span::styled("—", t.dim())),
        };
        let health = match s {
            None => Cell::from("—"),
            Some(s) => {
                let report = live
                    .and_then(|c| s.color(c))
                    .and_then(|c| c.health.as_ref());
                match report {
                    Some(r) if r.is_healthy() && s.problems.is_empty() => {
                        Cell::from(Span::styled(format!("ok {}ms", r.latency_ms), t.ok()))
                    }
                    _ if !s.problems.is_empty() => Cell::from(Span::styled(
                        format!(
                            "{} problem{}",
                            s.problems.len(),
                            if s.problems.len() == 1 { "" } else { "s" }
                        ),
                        t.bad(),
                    )),
                    Some(_) => Cell::from(Span::styled("UNHEALTHY", t.bad())),
                    None => Cell::from("—"),
                }
            }
        };
        let alerts = match h.snapshot.as_ref().and_then(|s| s.monitor.as_ref()) {
            None => Cell::from(Span::styled("n/a", t.dim())),
            Some(m) => {
                let firing = m
                    .alerts
                    .iter()
                    .filter(|a| matches!(a.state, AlertState::Firing { .. }))
                    .count();
                if firing > 0 {
                    Cell::from(Span::styled(format!("{firing} firing"), t.bad()))
                } else {
                    Cell::from(Span::styled("none", t.ok()))
                }
            }
        };
        let updated = match (h.age(app.now()), h.stale_age(app.now())) {
            (_, Some(a)) => Cell::from(Span::styled(
                format!("STALE {}", format_age(secs(a))),
                t.warn(),
            )),
            (Some(a), None) => Cell::from(format!("{} ago", format_age(secs(a)))),
            (None, _) => Cell::from("never"),
        };
        table_rows.push(Row::new(vec![
            Cell::from(trunc(&h.name, 16)),
            Cell::from(Span::styled(conn, conn_style)),
            Cell::from(trunc(&svc.name, 8)),
            live_cell,
            Cell::from(trunc(&sha, 7)),
            back,
            health,
            alerts,
            updated,
        ]));
    }
    let widths = [
        Constraint::Min(8),
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(9),
    ];
    let title = if app.nav().filter().is_empty() {
        format!(" {} hosts ", app.env())
    } else {
        format!(" {} hosts · filter `{}` ", app.env(), app.nav().filter())
    };
    let table = Table::new(table_rows, widths)
        .header(header)
        .block(Block::default().borders(Borders::ALL).title(title))
        .row_highlight_style(t.selected())
        .highlight_symbol("▶");
    let mut state = TableState::default();
    if !rows.is_empty() {
        state.select(Some(app.nav().selected().min(rows.len() - 1)));
    }
    f.render_stateful_widget(table, table_area, &mut state);
    f.render_widget(Paragraph::new(notes), notes_area);
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Lines under the table: why a host is down, and that alerts are not monitored yet.
fn notes(app: &App, width: usize) -> Vec<Line<'static>> {
    let t = app.theme();
    let mut out = Vec::new();
    for h in app.hosts() {
        if let Some(e) = failure(h) {
            let e = if e.starts_with(&format!("{}:", h.name)) {
                e
            } else {
                format!("{}: {e}", h.name)
            };
            let text = match h.conn.down_text(app.now(), app.now_unix()) {
                Some(d) => format!("{e}\n{d}"),
                None => e,
            };
            for (i, l) in wrap(&text, width.saturating_sub(2)).into_iter().enumerate() {
                out.push(Line::from(Span::styled(
                    if i == 0 {
                        format!("✗ {l}")
                    } else {
                        format!("  {l}")
                    },
                    t.bad(),
                )));
            }
        }
    }
    for h in app.hosts() {
        if let Some(sw) = h.snapshot.as_ref().and_then(|s| s.status.swarm.as_ref()) {
            out.extend(swarm_lines(&h.name, sw, app, width));
        }
    }
    if app
        .hosts()
        .iter()
        .all(|h| h.snapshot.as_ref().is_none_or(|s| s.monitor.is_none()))
    {
        out.push(Line::from(Span::styled(
            " alerts: not monitored yet",
            t.dim(),
        )));
    }
    out
}

fn failure(h: &HostView) -> Option<String> {
    match h.down_reason() {
        Some(e) => Some(e.to_string()),
        None => h.snapshot.as_ref().and_then(|s| s.status.error.clone()),
    }
}

/// A Swarm manager's nodes (a down one in red) and each color's replicas (issue 16).
fn swarm_lines(
    host: &str,
    sw: &crate::swarm::SwarmStatus,
    app: &App,
    width: usize,
) -> Vec<Line<'static>> {
    let t = app.theme();
    let mut spans = vec![Span::raw(format!(" ⎈ {host} nodes: "))];
    for (i, n) in sw.nodes.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" · "));
        }
        let role = if n.role == "manager" { "mgr" } else { "wkr" };
        let text = format!("{} {role} {}", trunc(&n.hostname, 16), n.state);
        spans.push(if n.is_ready() && n.availability == "active" {
            Span::styled(text, t.ok())
        } else if n.is_ready() {
            Span::styled(format!("{text} ({})", n.availability), t.warn())
        } else {
            Span::styled(text.to_uppercase(), t.bad())
        });
    }
    let mut out = vec![Line::from(spans)];
    for s in &sw.services {
        for (color, c) in s
            .colors
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|c| (k, c)))
        {
            if c.desired == 0 && c.running == 0 {
                continue;
            }
            let style = if c.running < c.desired {
                t.bad()
            } else {
                t.dim()
            };
            let text = format!(
                "   {} {color} {}/{} on {}",
                s.name,
                c.running,
                c.desired,
                if c.nodes.is_empty() {
                    "-".to_string()
                } else {
                    c.nodes.join(", ")
                }
            );
            out.push(Line::from(Span::styled(
                trunc(&text, width.max(8)).to_string(),
                style,
            )));
        }
    }
    out
}
