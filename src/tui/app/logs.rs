//! The log view (bounded, searchable, following) and the text view (inspect): each keeps its
//! own state and handles its own scroll keys.

use std::collections::VecDeque;
use std::sync::Arc;

use super::scroll::Scroll;
use crate::tui::keymap::KeyAction;
use crate::tui::model::InspectError;

/// Lines a log view keeps; older lines are dropped so a chatty container never grows memory.
pub const LOG_CAPACITY: usize = 5000;
/// Lines PageUp/PageDown move.
const PAGE: isize = 15;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub ts: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct LogView {
    id: u64,
    host: String,
    container: String,
    lines: VecDeque<LogLine>,
    follow: bool,
    timestamps: bool,
    search: String,
    /// Lines above the bottom when not following.
    scroll: Scroll,
    ended: Option<String>,
    dropped: u64,
}

impl LogView {
    pub fn new(id: u64, host: &str, container: &str) -> Self {
        Self {
            id,
            host: host.to_string(),
            container: container.to_string(),
            lines: VecDeque::new(),
            follow: true,
            timestamps: true,
            search: String::new(),
            scroll: Scroll::default(),
            ended: None,
            dropped: 0,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }
    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn container(&self) -> &str {
        &self.container
    }
    pub fn lines(&self) -> &VecDeque<LogLine> {
        &self.lines
    }
    pub fn follow(&self) -> bool {
        self.follow
    }
    pub fn timestamps(&self) -> bool {
        self.timestamps
    }
    pub fn search(&self) -> &str {
        &self.search
    }
    /// Lines above the bottom the view shows.
    pub fn scroll(&self) -> usize {
        if self.follow { 0 } else { self.scroll.offset() }
    }
    pub fn ended(&self) -> Option<&str> {
        self.ended.as_deref()
    }
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn visible(&self) -> Vec<&LogLine> {
        let q = self.search.to_lowercase();
        self.lines
            .iter()
            .filter(|l| q.is_empty() || l.text.to_lowercase().contains(&q))
            .collect()
    }

    fn push(&mut self, raw: &str) {
        // Docker's timestamps come first, separated by one space.
        let (ts, text) = match raw.split_once(' ') {
            Some((t, rest)) if t.len() >= 20 && t.as_bytes().get(4) == Some(&b'-') => {
                (t.to_string(), rest.to_string())
            }
            _ => (String::new(), raw.to_string()),
        };
        self.lines.push_back(LogLine {
            ts,
            text: crate::redact::redact_text(&text),
        });
        while self.lines.len() > LOG_CAPACITY {
            self.lines.pop_front();
            self.dropped += 1;
        }
    }

    /// New lines from the stream; a view that does not follow stays still.
    pub fn on_lines(&mut self, lines: &[String]) {
        let before = self.visible().len();
        for line in lines {
            self.push(line);
        }
        let after = self.visible().len();
        if !self.follow {
            let grown = isize::try_from(after.saturating_sub(before)).unwrap_or(isize::MAX);
            self.scroll.by(grown, after);
        }
    }

    pub fn end(&mut self, reason: String) {
        self.ended = Some(reason);
    }

    pub fn set_search(&mut self, q: String) {
        self.search = q;
        self.scroll.reset();
    }

    /// The log view's own keys; false when the key is not one of them.
    pub fn on_action(&mut self, a: KeyAction) -> bool {
        let len = self.visible().len();
        match a {
            KeyAction::ToggleFollow => {
                self.follow = !self.follow;
                self.scroll.reset();
                return true;
            }
            KeyAction::ToggleTimestamps => {
                self.timestamps = !self.timestamps;
                return true;
            }
            KeyAction::Up => self.scroll.by(1, len),
            KeyAction::Down => self.scroll.by(-1, len),
            KeyAction::PageUp => self.scroll.by(PAGE, len),
            KeyAction::PageDown => self.scroll.by(-PAGE, len),
            KeyAction::Top => self.scroll.to(len, len),
            KeyAction::Bottom => {
                self.scroll.reset();
                self.follow = true;
                return true;
            }
            _ => return false,
        }
        if self.scroll.offset() > 0 {
            self.follow = false;
        }
        true
    }
}

/// Loading / loaded / failed, for a view fed by one background answer.
#[derive(Debug, Clone)]
pub enum TextBody {
    Loading,
    Ready(Vec<String>),
    Failed(Arc<InspectError>),
}

#[derive(Debug, Clone)]
pub struct TextView {
    id: u64,
    title: String,
    body: TextBody,
    scroll: Scroll,
}

impl TextView {
    pub fn new(id: u64, title: String) -> Self {
        Self {
            id,
            title,
            body: TextBody::Loading,
            scroll: Scroll::default(),
        }
    }
    pub fn id(&self) -> u64 {
        self.id
    }
    pub fn title(&self) -> &str {
        &self.title
    }
    pub fn body(&self) -> &TextBody {
        &self.body
    }
    pub fn scroll(&self) -> usize {
        self.scroll.offset()
    }

    pub fn fill(&mut self, body: TextBody) {
        self.body = body;
        self.scroll.reset();
    }

    fn len(&self) -> usize {
        match &self.body {
            TextBody::Ready(l) => l.len(),
            _ => 0,
        }
    }

    pub fn on_action(&mut self, a: KeyAction) -> bool {
        let len = self.len();
        match a {
            KeyAction::Up => self.scroll.by(-1, len),
            KeyAction::Down => self.scroll.by(1, len),
            KeyAction::PageUp => self.scroll.by(-PAGE, len),
            KeyAction::PageDown => self.scroll.by(PAGE, len),
            _ => return false,
        }
        true
    }
}
