//! Where the operator is: which view, which row of the host list, which pane and color of the
//! host view, the host filter, and the pane's scroll (clamped to the pane's content).

use super::scroll::Scroll;
use crate::state::Color;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Fleet,
    Host,
    Logs,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Colors,
    Images,
    Metrics,
    Audit,
    Progress,
}

impl Pane {
    pub const ALL: [Pane; 5] = [
        Pane::Colors,
        Pane::Images,
        Pane::Metrics,
        Pane::Audit,
        Pane::Progress,
    ];
    pub fn title(self) -> &'static str {
        match self {
            Pane::Colors => "containers",
            Pane::Images => "images",
            Pane::Metrics => "metrics & alerts",
            Pane::Audit => "audit log",
            Pane::Progress => "progress",
        }
    }
    pub fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone)]
pub struct Nav {
    view: View,
    pane: Pane,
    selected: usize,
    color: Option<Color>,
    pane_scroll: Scroll,
    filter: String,
}

impl Default for Nav {
    fn default() -> Self {
        Self {
            view: View::Fleet,
            pane: Pane::Colors,
            selected: 0,
            color: None,
            pane_scroll: Scroll::default(),
            filter: String::new(),
        }
    }
}

impl Nav {
    pub fn view(&self) -> View {
        self.view
    }
    pub fn pane(&self) -> Pane {
        self.pane
    }
    pub fn selected(&self) -> usize {
        self.selected
    }
    pub fn color(&self) -> Option<Color> {
        self.color
    }
    pub fn pane_scroll(&self) -> usize {
        self.pane_scroll.offset()
    }
    pub fn filter(&self) -> &str {
        &self.filter
    }

    pub fn set_view(&mut self, v: View) {
        self.view = v;
    }

    /// Opens the host view on the selected row, on the live color.
    pub fn open_host(&mut self) {
        self.view = View::Host;
        self.pane_scroll.reset();
        self.color = None;
    }

    pub fn show_pane(&mut self, p: Pane) {
        self.pane = p;
        self.pane_scroll.reset();
    }

    pub fn cycle_pane(&mut self, forward: bool) {
        let n = Pane::ALL.len();
        let i = self.pane.index();
        self.show_pane(
            Pane::ALL[if forward {
                (i + 1) % n
            } else {
                (i + n - 1) % n
            }],
        );
    }

    /// Moves the host list's selection within `rows` rows.
    pub fn move_selection(&mut self, down: bool, rows: usize) {
        self.selected = if down {
            (self.selected + 1).min(rows.saturating_sub(1))
        } else {
            self.selected.saturating_sub(1)
        };
        self.color = None;
    }

    pub fn select(&mut self, row: usize) {
        self.selected = row;
        self.color = None;
    }

    pub fn choose_color(&mut self, c: Color) {
        self.color = Some(c);
    }

    pub fn set_filter(&mut self, q: String) {
        self.filter = q;
        self.selected = 0;
    }

    pub fn clear_filter(&mut self) {
        self.filter.clear();
    }

    /// Scrolls the pane within its `len` lines.
    pub fn scroll_pane(&mut self, delta: isize, len: usize) {
        self.pane_scroll.by(delta, len);
    }

    /// A new environment: back to its host list, top row.
    pub fn reset(&mut self) {
        self.selected = 0;
        self.view = View::Fleet;
        self.color = None;
        self.filter.clear();
        self.pane_scroll.reset();
    }
}
