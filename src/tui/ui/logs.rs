//! Container logs (bounded, searchable, following) and the inspect text view.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use crate::tui::app::{App, TextBody};

pub fn draw_logs(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme();
    let Some(l) = &app.logs() else {
        f.render_widget(Paragraph::new("no logs open"), area);
        return;
    };
    let visible = l.visible();
    let mut title = format!(
        " logs {} on {} · follow {} · time {} · {} lines",
        l.container(),
        l.host(),
        if l.follow() { "on" } else { "off" },
        if l.timestamps() { "on" } else { "off" },
        l.lines().len()
    );
    if l.dropped() > 0 {
        title.push_str(&format!(" ({} older dropped)", l.dropped()));
    }
    if !l.search().is_empty() {
        title.push_str(&format!(
            " · search `{}`: {} match",
            l.search(),
            visible.len()
        ));
    }
    title.push(' ');
    let mut block = Block::default().borders(Borders::ALL).title(title);
    if let Some(e) = l.ended() {
        block = block.title_bottom(Span::styled(format!(" stream ended: {e} "), t.warn()));
    }
    let inner = block.inner(area);
    f.render_widget(block, area);
    let h = usize::from(inner.height);
    let end = visible
        .len()
        .saturating_sub(if l.follow() { 0 } else { l.scroll() });
    let start = end.saturating_sub(h);
    let lines: Vec<Line> = visible[start..end]
        .iter()
        .map(|line| {
            if l.timestamps() && !line.ts.is_empty() {
                let short = line.ts.get(11..23).unwrap_or(&line.ts);
                Line::from(vec![
                    Span::styled(format!("{short} "), t.dim()),
                    Span::raw(line.text.clone()),
                ])
            } else {
                Line::from(line.text.clone())
            }
        })
        .collect();
    f.render_widget(Paragraph::new(lines), inner);
}

pub fn draw_text(f: &mut Frame, app: &App, area: Rect) {
    let t = app.theme();
    let Some(v) = app.text() else {
        f.render_widget(Paragraph::new("nothing to show"), area);
        return;
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {} ", v.title()));
    let p = match v.body() {
        TextBody::Loading => Paragraph::new(Span::styled("reading…", t.dim())),
        TextBody::Failed(e) => Paragraph::new(Span::styled(e.to_string(), t.bad())),
        TextBody::Ready(lines) => Paragraph::new(
            lines
                .iter()
                .skip(v.scroll())
                .map(|l| Line::from(l.clone()))
                .collect::<Vec<_>>(),
        ),
    };
    f.render_widget(p.block(block), area);
}
