//! Dialogs: every one says what will happen, starts on Cancel, and Esc closes it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, TableState};

use super::{centered, trunc, wrap};
use crate::release::ledger::PickerMark;
use crate::release::plan::Target;
use crate::release::runner::{HostPlan, Verb};
use crate::tui::action::PlanState;
use crate::tui::app::{App, Button, Confirm, Dialog, Picker};
use crate::util::{format_age, format_bytes};

pub fn draw(f: &mut Frame, app: &App, d: &Dialog, area: Rect) {
    match d {
        Dialog::Confirm(c) => confirm(f, app, c, area),
        Dialog::Picker(p) => picker(f, app, p, area),
        Dialog::Abort { title, focus, .. } => {
            let lines = vec![
                Line::from(format!("Abort: {title}?")),
                Line::from(""),
                Line::from("Aborting stops before the switch: the old color keeps serving"),
                Line::from("and the new container is stopped and kept for inspection."),
                Line::from("A switch already under way completes."),
            ];
            simple(
                f,
                app,
                " Ctrl-C: abort the action? ",
                lines,
                *focus,
                "Abort",
                area,
            );
        }
        Dialog::QuitRunning { focus } => {
            let running: Vec<Line> = app
                .running()
                .map(|p| Line::from(format!("  {}", p.request.title())))
                .collect();
            let mut lines = vec![Line::from("An action is running:")];
            lines.extend(running);
            lines.push(Line::from(""));
            lines.push(Line::from(
                "Quitting aborts it before the switch (the old color keeps",
            ));
            lines.push(Line::from("serving) and waits for it to release its lock."));
            simple(f, app, " Quit? ", lines, *focus, "Abort and quit", area);
        }
    }
}

fn buttons(app: &App, focus: Button, label: &str, armed: bool) -> Line<'static> {
    let t = app.theme();
    let b = |text: &str, focused: bool, enabled: bool| {
        let s = if focused {
            format!("> {text} <")
        } else {
            format!("  {text}  ")
        };
        let style = match (focused, enabled) {
            (true, _) => t.selected().patch(t.bold()),
            (false, false) => t.dim(),
            (false, true) => t.plain(),
        };
        Span::styled(s, style)
    };
    Line::from(vec![
        b("Cancel", focus == Button::Cancel, true),
        Span::raw("    "),
        b(label, focus == Button::Confirm, armed),
    ])
    .centered()
}

fn frame(f: &mut Frame, area: Rect, title: &str, height: u16) -> Rect {
    let r = centered(area, 78, height);
    f.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title.to_string());
    let inner = block.inner(r);
    f.render_widget(block, r);
    inner
}

fn simple(
    f: &mut Frame,
    app: &App,
    title: &str,
    mut lines: Vec<Line<'static>>,
    focus: Button,
    label: &str,
    area: Rect,
) {
    lines.push(Line::from(""));
    lines.push(buttons(app, focus, label, true));
    let h = u16::try_from(lines.len()).unwrap_or(20) + 2;
    let inner = frame(f, area, title, h);
    f.render_widget(Paragraph::new(lines), inner);
}

fn confirm(f: &mut Frame, app: &App, c: &Confirm, area: Rect) {
    let t = app.theme();
    let width = usize::from(area.width.min(78).saturating_sub(2));
    let a = &c.request();
    let mut lines = vec![
        Line::from(vec![
            Span::styled("environment  ", t.dim()),
            Span::styled(a.env.clone(), t.bold()),
            Span::styled(if c.protected() { "  (protected)" } else { "" }, t.warn()),
        ]),
        Line::from(vec![
            Span::styled("hosts        ", t.dim()),
            Span::raw(trunc(
                &format!(
                    "{}{}",
                    a.hosts.join(", "),
                    if a.all_hosts {
                        ""
                    } else {
                        "  (selected host only)"
                    }
                ),
                width.saturating_sub(13),
            )),
        ]),
        Line::from(""),
    ];
    match c.plan() {
        PlanState::Loading => lines.push(Line::from(Span::styled(
            "planning on every host (reading what each runs)…",
            t.dim(),
        ))),
        PlanState::Failed(e) => {
            lines.push(Line::from(Span::styled(
                "cannot plan; nothing will change:",
                t.bad(),
            )));
            for l in wrap(&e.to_string(), width).into_iter().take(8) {
                lines.push(Line::from(l));
            }
        }
        PlanState::Ready(all) => {
            let plans: Vec<_> = all
                .iter()
                .filter_map(|p| match p {
                    HostPlan::Release(p) => Some(p),
                    _ => None,
                })
                .collect();
            if let Verb::Rollback {
                target: Target::Previous,
            } = a.verb
                && let Some(p) = plans.first()
            {
                lines.push(Line::from(vec![
                    Span::raw("to the previous release: "),
                    Span::styled(p.to_sha.clone(), t.bold()),
                ]));
            }
            for p in plans {
                let from = p.from_sha.clone().unwrap_or_else(|| "nothing".into());
                let from_c = p.from_color.map_or_else(String::new, |c| format!(" ({c})"));
                lines.push(Line::from(vec![
                    Span::styled(format!("{}: ", p.host), t.bold()),
                    Span::raw(format!("{from}{from_c} → ")),
                    Span::styled(format!("{} ({})", p.to_sha, p.to_color), t.bold()),
                ]));
                let how = if p.noop {
                    "already live and healthy: nothing to do".to_string()
                } else if p.finish_only {
                    "already live; stop the other color, which still runs".to_string()
                } else if p.reuse_existing {
                    format!(
                        "restart the kept {} container, health, switch, stop {}",
                        p.to_color,
                        p.from_color.map_or("-", |c| c.as_str())
                    )
                } else {
                    format!("new {} container, health, switch, stop the old", p.to_color)
                };
                for l in wrap(&format!("  {how}"), width) {
                    lines.push(Line::from(Span::styled(l, t.dim())));
                }
            }
            for p in all {
                if let HostPlan::Unlock { .. } = p {
                    lines.push(Line::from(p.summary()));
                }
            }
            for p in all.iter().filter_map(|p| match p {
                HostPlan::Prune(p) => Some(p),
                _ => None,
            }) {
                lines.push(Line::from(vec![
                    Span::styled(format!("{}: ", p.host), t.bold()),
                    Span::raw(format!(
                        "remove {} image(s), reclaim {}; keep {}",
                        p.remove.len(),
                        format_bytes(p.reclaim_bytes),
                        p.kept.len()
                    )),
                ]));
                for r in p.remove.iter().take(6) {
                    lines.push(Line::from(format!(
                        "  - {}  {}  {}",
                        r.tag,
                        format_bytes(r.size_bytes),
                        r.created.get(..16).unwrap_or(&r.created)
                    )));
                }
                if p.remove.len() > 6 {
                    lines.push(Line::from(format!("  … and {} more", p.remove.len() - 6)));
                }
            }
        }
    }
    if c.plan().is_noop() {
        lines.push(Line::from(Span::styled(
            "nothing to do on any host",
            t.warn(),
        )));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(vec![
        Span::styled("same as  ", t.dim()),
        Span::raw(trunc(&a.equivalent(), width.saturating_sub(9))),
    ]));
    let label = a.verb.button();
    let title = format!(" {} ", a.title());
    let extra = if c.protected() { 3 } else { 0 };
    let h = u16::try_from(lines.len()).unwrap_or(20) + 2 + 2 + extra;
    let inner = frame(f, area, &title, h);
    let [body, typed, btn] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(extra),
        Constraint::Length(2),
    ])
    .areas(inner);
    f.render_widget(Paragraph::new(lines), body);
    if c.protected() {
        let words = c.confirmation().words_text();
        let [q, input, _] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(typed);
        f.render_widget(
            Paragraph::new(Span::styled(
                format!("protected: type {words} to enable {label}:"),
                t.warn(),
            )),
            q,
        );
        let [mark, field] =
            Layout::horizontal([Constraint::Length(2), Constraint::Min(1)]).areas(input);
        f.render_widget(Paragraph::new("› "), mark);
        f.render_widget(c.typed(), field);
    }
    let [_, b] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(btn);
    f.render_widget(Paragraph::new(buttons(app, c.focus(), label, c.armed())), b);
}

fn picker(f: &mut Frame, app: &App, p: &Picker, area: Rect) {
    let t = app.theme();
    let visible = p.visible();
    let list_h = u16::try_from(visible.len().clamp(1, 10)).unwrap_or(10);
    let title = format!(" Deploy {} in {}: pick a SHA ", p.service(), app.env());
    let inner = frame(f, area, &title, list_h + 6);
    let [input, list, hint] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    let [mark, field] =
        Layout::horizontal([Constraint::Length(2), Constraint::Min(1)]).areas(input);
    f.render_widget(Paragraph::new("› "), mark);
    f.render_widget(p.input(), field);
    if visible.is_empty() {
        let q = p.query();
        let text = if q.is_empty() {
            "no images known yet; type a SHA or tag".to_string()
        } else {
            format!("no known SHA matches; Enter deploys `{q}` (pulled from the registry)")
        };
        f.render_widget(Paragraph::new(Span::styled(text, t.dim())), list);
    } else {
        let rows: Vec<Row> = visible
            .iter()
            .map(|c| {
                let created = if c.created_unix == i64::MIN {
                    "—".to_string()
                } else {
                    format!("{} ago", format_age(app.now_unix() - c.created_unix))
                };
                let size = if c.size_bytes == 0 {
                    "—".to_string()
                } else {
                    format_bytes(c.size_bytes)
                };
                let runs = match (c.runs.is_empty(), c.in_registry, c.created_unix == i64::MIN) {
                    (false, _, _) => c.runs.join(", "),
                    (true, true, true) => "in the registry, on no host yet".to_string(),
                    (true, _, _) => "not running".to_string(),
                };
                Row::new(vec![
                    Cell::from(c.sha.clone()),
                    Cell::from(created),
                    Cell::from(size),
                    ledger_cell(&c.mark, &t),
                    Cell::from(runs),
                ])
            })
            .collect();
        let widths = [
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Length(22),
            Constraint::Min(10),
        ];
        let table = Table::new(rows, widths)
            .header(Row::new(["SHA", "CREATED", "SIZE", "LEDGER", "RUNS NOW"]).style(t.bold()))
            .row_highlight_style(t.selected())
            .highlight_symbol("▶");
        let mut state = TableState::default();
        state.select(Some(p.selected().min(visible.len() - 1)));
        f.render_stateful_widget(table, list, &mut state);
    }
    f.render_widget(
        Paragraph::new(Span::styled(
            format!(
                "{} · ↑↓ choose · Enter plan · Esc cancel",
                p.registry_note()
            ),
            t.dim(),
        )),
        hint,
    );
}

/// What the hosts' ledgers say of a SHA: served healthy, or backed out of; and where its image
/// is missing (a deploy there pulls it).
fn ledger_cell(m: &PickerMark, t: &crate::tui::theme::Theme) -> Cell<'static> {
    let mut spans = Vec::new();
    if m.backed_out {
        spans.push(Span::styled("✗ backed out", t.bad()));
    } else if m.known_good {
        spans.push(Span::styled("✓ good", t.ok()));
    }
    if !m.missing_on.is_empty() {
        if !spans.is_empty() {
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(
            format!("not on {}", m.missing_on.join(",")),
            t.warn(),
        ));
    }
    Cell::from(Line::from(spans))
}
