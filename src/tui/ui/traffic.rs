//! A color's traffic through the proxy, drawn beside its health sparkline in the host view.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Paragraph, Sparkline};

use crate::state::{Color, ServiceStatus};
use crate::tui::app::App;

/// `q` holds the last-minute request rate ×10 of successive reads.
pub(super) fn spark(
    f: &mut Frame,
    app: &App,
    s: &ServiceStatus,
    c: Color,
    q: &VecDeque<u64>,
    area: Rect,
) {
    let t = app.theme();
    let data: Vec<u64> = q.iter().copied().collect();
    let now = s.traffic.as_ref().and_then(|t| t.color(c));
    let label = match now {
        Some(n) => format!(
            " {} req/s, 5xx {}, p99 {}",
            n.req_per_s,
            n.error_5xx_percent
                .map_or("-".to_string(), |p| format!("{p}%")),
            n.p99_ms.map_or("-".to_string(), |v| format!("{v}ms"))
        ),
        None => " traffic: no figures".to_string(),
    };
    let [top, line] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    f.render_widget(Paragraph::new(Span::styled(label, t.dim())), top);
    let style = if now
        .and_then(|n| n.error_5xx_percent)
        .is_some_and(|p| p > 0.0)
    {
        t.warn()
    } else {
        t.accent()
    };
    f.render_widget(Sparkline::default().data(&data).style(style), line);
}
