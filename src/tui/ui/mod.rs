//! Views: pure functions from the state to a frame. No I/O, no clocks (the state carries `now`).

mod dialog;
mod fleet;
mod host;
mod logs;
mod traffic;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::app::{App, Dialog, InputMode, View};
use super::keymap::{self, Scope};

/// Draws the whole console.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, app, header);
    match app.view() {
        View::Fleet => fleet::draw(f, app, body),
        View::Host => host::draw(f, app, body),
        View::Logs => logs::draw_logs(f, app, body),
        View::Text => logs::draw_text(f, app, body),
    }
    draw_footer(f, app, footer);
    if let Some(d) = app.dialog() {
        dialog::draw(f, app, d, area);
    }
    if let Some(scroll) = app.help() {
        draw_help(f, app, scroll, area);
    }
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme();
    let mut spans = vec![Span::styled(" deckhand ", t.bold()), Span::raw(" ")];
    for e in app.envs() {
        if e.name == app.env() {
            spans.push(Span::styled(
                format!("[{}]", e.name),
                t.selected().patch(t.bold()),
            ));
        } else {
            spans.push(Span::styled(format!(" {} ", e.name), t.dim()));
        }
        spans.push(Span::raw(" "));
    }
    if app.protected() {
        spans.push(Span::styled("protected ", t.warn()));
    }
    let up = app.hosts().iter().filter(|h| h.conn.is_up()).count();
    let conn_style = if up == app.hosts().len() {
        t.ok()
    } else {
        t.bad()
    };
    spans.push(Span::raw("│ "));
    spans.push(Span::styled(
        format!("{up}/{} up", app.hosts().len()),
        conn_style,
    ));
    spans.push(Span::raw(" │ "));
    let (lock, lock_style) = lock_text(app);
    spans.push(Span::styled(lock, lock_style));
    if let Some(p) = app.running().next() {
        spans.push(Span::raw(" │ "));
        spans.push(Span::styled(
            format!("⟳ {} {}", p.request.verb.as_str(), p.request.service.name),
            t.warn(),
        ));
    }
    if app.read_only() {
        spans.push(Span::raw(" │ "));
        spans.push(Span::styled("READ-ONLY", t.bad()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Lock state of the selected service on the selected host.
fn lock_text(app: &App) -> (String, ratatui::style::Style) {
    let t = app.theme();
    let Some((h, s)) = app.current() else {
        return ("lock ?".into(), t.dim());
    };
    match h.lock(&s.name) {
        None => ("lock ?".into(), t.dim()),
        Some(Ok(None)) => ("lock free".into(), t.ok()),
        Some(Ok(Some(l))) => {
            let who = l.info.as_ref().map_or("?", |i| i.actor.as_str());
            let what = l.info.as_ref().map_or("", |i| i.action.as_str());
            if l.stale {
                (format!("lock STALE {who}"), t.bad())
            } else {
                (format!("locked: {who} {what}"), t.warn())
            }
        }
        Some(Err(_)) => ("lock unreadable".into(), t.bad()),
    }
}

fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme();
    match &app.input() {
        InputMode::Command(ta) | InputMode::Filter(ta) => {
            let prefix = if matches!(app.input(), InputMode::Command(_)) {
                ":"
            } else {
                "/"
            };
            let [p, rest] =
                Layout::horizontal([Constraint::Length(1), Constraint::Min(1)]).areas(area);
            f.render_widget(Paragraph::new(prefix), p);
            f.render_widget(ta, rest);
            return;
        }
        InputMode::Normal => {}
    }
    if let Some(m) = &app.message() {
        f.render_widget(Paragraph::new(Span::styled(m.to_string(), t.warn())), area);
        return;
    }
    // The footer is built from the keymap: what the top dialog takes, else the view's keys.
    let scope = match (app.dialog(), app.view()) {
        (Some(Dialog::Picker(_)), _) => Scope::Picker,
        (Some(_), _) => Scope::Dialog,
        (None, View::Fleet) => Scope::Fleet,
        (None, View::Host) => Scope::Host,
        (None, View::Logs) => Scope::Logs,
        (None, View::Text) => Scope::Text,
    };
    let hints = keymap::hints(scope, app.read_only());
    let mut spans = Vec::new();
    for (k, h) in hints {
        spans.push(Span::styled(format!(" {k}"), t.accent()));
        spans.push(Span::raw(format!(" {h} ")));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_help(f: &mut Frame, app: &App, scroll: usize, area: Rect) {
    let t = app.theme();
    let mut lines = Vec::new();
    for (title, rows) in super::keymap::help_lines(app.read_only()) {
        lines.push(Line::from(Span::styled(title, t.bold())));
        for (keys, help) in rows {
            lines.push(Line::from(vec![
                Span::styled(format!("  {keys:<16}"), t.accent()),
                Span::raw(help),
            ]));
        }
    }
    let r = centered(area, 78, area.height.saturating_sub(2));
    let inner_h = usize::from(r.height.saturating_sub(2));
    let max_scroll = lines.len().saturating_sub(inner_h);
    let scroll = scroll.min(max_scroll);
    f.render_widget(Clear, r);
    let more = if max_scroll > scroll {
        " ↓ j/k scroll "
    } else {
        ""
    };
    f.render_widget(
        Paragraph::new(lines)
            .scroll((u16::try_from(scroll).unwrap_or(0), 0))
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" help: keys (any other key closes) ")
                    .title_bottom(more),
            ),
        r,
    );
}

/// A rectangle of at most `w`×`h` centred in `area`.
pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Cuts `s` to `n` characters, marking the cut with `…`.
pub(crate) fn trunc(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else if n == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(n - 1).collect();
        out.push('…');
        out
    }
}

/// Splits text into lines of at most `width` characters (hard wrap; keeps explicit newlines).
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    for line in text.lines() {
        let chars: Vec<char> = line.chars().collect();
        if chars.is_empty() {
            out.push(String::new());
        }
        for chunk in chars.chunks(width) {
            out.push(chunk.iter().collect());
        }
    }
    out
}

/// Seconds since an RFC 3339 time, by the state's clock.
pub(crate) fn age_of(rfc3339: &str, now_unix: i64) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| now_unix - t.timestamp())
}

pub(crate) fn ago(rfc3339: Option<&str>, now_unix: i64) -> String {
    match rfc3339.and_then(|t| age_of(t, now_unix)) {
        Some(s) => format!("{} ago", crate::util::format_age(s)),
        None => "—".into(),
    }
}
