//! The console's state and how it changes: messages and keys in, state and effects out.
//!
//! Nothing here does I/O. Keys and background messages change the state; anything that must
//! reach a host comes back as an `Effect` that the runtime carries out, whose results arrive
//! later as `Msg`s. That keeps every transition unit-testable without a terminal or a host.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::TextArea;

use super::action::{PendingAction, PlanState, PlanView, Progress};
use super::keymap::{self, KeyAction, Scope};
use super::model::{HostUpdate, HostView};
use crate::config::Service;
use crate::release::Event;
use crate::state::Color;

/// Lines a log view keeps; older lines are dropped so a chatty container never grows memory.
pub const LOG_CAPACITY: usize = 5000;

/// An environment as the console needs it.
#[derive(Debug, Clone)]
pub struct EnvInfo {
    pub name: String,
    pub protected: bool,
    pub read_only: bool,
    pub hosts: Vec<String>,
}

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
    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    Cancel,
    Confirm,
}

impl Button {
    fn toggle(self) -> Button {
        match self {
            Button::Cancel => Button::Confirm,
            Button::Confirm => Button::Cancel,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Confirm {
    pub id: u64,
    pub action: PendingAction,
    pub plan: PlanState,
    pub focus: Button,
    pub protected: bool,
    pub typed: TextArea<'static>,
}

impl Confirm {
    /// What the operator may type in a protected environment.
    pub fn confirm_words(&self) -> Vec<String> {
        let mut words = vec![self.action.env().to_string()];
        if let PlanState::Ready(p) = &self.plan {
            words.extend(p.confirm_words());
        }
        words.dedup();
        words
    }

    /// The action button works: the plan is ready, changes something, and (in a protected
    /// environment) the right word is typed.
    pub fn armed(&self) -> bool {
        let PlanState::Ready(plan) = &self.plan else {
            return false;
        };
        if plan.is_noop() {
            return false;
        }
        if !self.protected {
            return true;
        }
        let typed = self.typed.lines().join("");
        let typed = typed.trim();
        !typed.is_empty() && self.confirm_words().iter().any(|w| w == typed)
    }
}

/// One SHA the deploy picker offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub sha: String,
    pub created: String,
    pub created_unix: i64,
    pub size_bytes: u64,
    /// Where it runs now: `dev/local blue LIVE`.
    pub runs: Vec<String>,
    /// The registry has this tag (so hosts that lack it can pull it).
    pub in_registry: bool,
}

#[derive(Debug, Clone)]
pub struct Picker {
    pub service: String,
    pub input: TextArea<'static>,
    pub selected: usize,
    pub candidates: Vec<Candidate>,
    /// What the registry listing said: a count, "listing…", or why it failed.
    pub registry_note: String,
}

impl Picker {
    pub fn query(&self) -> String {
        self.input.lines().join("").trim().to_string()
    }

    /// Candidates matching what is typed, in order.
    pub fn visible(&self) -> Vec<&Candidate> {
        let q = self.query().to_lowercase();
        self.candidates
            .iter()
            .filter(|c| {
                q.is_empty()
                    || c.sha.to_lowercase().contains(&q)
                    || c.runs.iter().any(|r| r.to_lowercase().contains(&q))
            })
            .collect()
    }

    /// The SHA Enter would pick: the highlighted match, else what was typed if it is a ref.
    pub fn choice(&self) -> Option<String> {
        let visible = self.visible();
        if let Some(c) = visible.get(self.selected.min(visible.len().saturating_sub(1))) {
            return Some(c.sha.clone());
        }
        let q = self.query();
        crate::release::plan::validate_ref(&q).ok().map(|()| q)
    }
}

#[derive(Debug, Clone)]
pub enum Dialog {
    Confirm(Box<Confirm>),
    Picker(Box<Picker>),
    /// Ctrl-C while an action runs.
    Abort {
        id: u64,
        title: String,
        focus: Button,
    },
    /// `q` while an action runs.
    QuitRunning {
        focus: Button,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub ts: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct LogsState {
    pub id: u64,
    pub host: String,
    pub container: String,
    pub lines: VecDeque<LogLine>,
    pub follow: bool,
    pub timestamps: bool,
    pub search: String,
    /// Lines above the bottom when not following.
    pub scroll: usize,
    pub ended: Option<String>,
    pub dropped: u64,
}

impl LogsState {
    pub fn visible(&self) -> Vec<&LogLine> {
        let q = self.search.to_lowercase();
        self.lines
            .iter()
            .filter(|l| q.is_empty() || l.text.to_lowercase().contains(&q))
            .collect()
    }

    pub fn push(&mut self, raw: &str) {
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
}

#[derive(Debug, Clone)]
pub struct TextState {
    pub id: u64,
    pub title: String,
    pub lines: PlanLike,
    pub scroll: usize,
}

/// Loading / loaded / failed, for views fed by one background answer.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanLike {
    Loading,
    Ready(Vec<String>),
    Failed(String),
}

#[derive(Debug, Clone)]
pub enum InputMode {
    Normal,
    Filter(TextArea<'static>),
    Command(TextArea<'static>),
}

/// Something the runtime must do: the only way state reaches the outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Stop the pollers and start new ones for this environment, tagged `epoch`.
    SwitchEnv {
        env: String,
        epoch: u64,
    },
    Plan {
        id: u64,
        action: PendingAction,
    },
    Execute {
        id: u64,
        action: PendingAction,
    },
    Abort {
        id: u64,
    },
    Logs {
        id: u64,
        host: String,
        container: String,
    },
    StopLogs,
    Inspect {
        id: u64,
        host: String,
        container: String,
    },
    /// List the tags of a service's repository in its registry.
    RegistryTags {
        service: String,
    },
    Shell {
        host: String,
        container: String,
    },
    Quit,
}

/// What the runtime tells the state.
#[derive(Debug, Clone)]
pub enum Msg {
    Host {
        epoch: u64,
        host: String,
        update: HostUpdate,
    },
    Plan {
        id: u64,
        result: Result<PlanView, String>,
    },
    Action {
        id: u64,
        event: Event,
    },
    ActionDone {
        id: u64,
        result: Result<String, String>,
    },
    Logs {
        id: u64,
        lines: Vec<String>,
    },
    LogsEnded {
        id: u64,
        reason: String,
    },
    Inspect {
        id: u64,
        result: Result<Vec<String>, String>,
    },
    RegistryTags {
        service: String,
        result: Result<Vec<String>, String>,
    },
    Note(String),
}

/// Where a SHA ran when the console last saw an environment (for promoting across envs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRun {
    pub host: String,
    pub service: String,
    pub color: Color,
    pub sha: String,
    pub live: bool,
}

pub struct App {
    pub envs: Vec<EnvInfo>,
    pub env: String,
    pub services: Vec<Service>,
    /// `--read-only`.
    pub read_only_flag: bool,
    pub hosts: Vec<HostView>,
    pub epoch: u64,
    pub view: View,
    pub pane: Pane,
    pub selected: usize,
    pub color: Option<Color>,
    pub pane_scroll: usize,
    pub filter: String,
    pub input: InputMode,
    pub dialogs: Vec<Dialog>,
    pub help: bool,
    pub help_scroll: usize,
    pub theme: super::theme::Theme,
    /// Actions by `env/service`: running, or finished and kept for reading.
    pub progress: BTreeMap<String, Progress>,
    pub logs: Option<LogsState>,
    pub text: Option<TextState>,
    pub seen: BTreeMap<String, Vec<SeenRun>>,
    /// Tags in each service's registry repository, as last listed (or why not).
    pub registry_tags: BTreeMap<String, Result<Vec<String>, String>>,
    pub message: Option<String>,
    pub now: Instant,
    pub now_unix: i64,
    pub quit: bool,
    next_id: u64,
}

fn progress_key(env: &str, service: &str) -> String {
    format!("{env}/{service}")
}

fn line_input(placeholder: &str) -> TextArea<'static> {
    let mut t = TextArea::default();
    t.set_placeholder_text(placeholder);
    t.set_cursor_line_style(ratatui::style::Style::default());
    t
}

impl App {
    pub fn new(envs: Vec<EnvInfo>, env: &str, services: Vec<Service>, read_only: bool) -> App {
        let mut app = App {
            envs,
            env: env.to_string(),
            services,
            read_only_flag: read_only,
            hosts: Vec::new(),
            epoch: 0,
            view: View::Fleet,
            pane: Pane::Colors,
            selected: 0,
            color: None,
            pane_scroll: 0,
            filter: String::new(),
            input: InputMode::Normal,
            dialogs: Vec::new(),
            help: false,
            help_scroll: 0,
            theme: super::theme::Theme::default(),
            progress: BTreeMap::new(),
            logs: None,
            text: None,
            seen: BTreeMap::new(),
            registry_tags: BTreeMap::new(),
            message: None,
            now: Instant::now(),
            now_unix: chrono::Utc::now().timestamp(),
            quit: false,
            next_id: 1,
        };
        app.hosts = app.env_info().map_or_else(Vec::new, |e| {
            e.hosts.iter().map(|h| HostView::new(h)).collect()
        });
        app
    }

    pub fn env_info(&self) -> Option<&EnvInfo> {
        self.envs.iter().find(|e| e.name == self.env)
    }

    pub fn read_only(&self) -> bool {
        self.read_only_flag || self.env_info().is_some_and(|e| e.read_only)
    }

    pub fn protected(&self) -> bool {
        self.env_info().is_some_and(|e| e.protected)
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn set_clock(&mut self, now: Instant, unix: i64) {
        self.now = now;
        self.now_unix = unix;
    }

    /// Host list rows: (host index, service index), filtered.
    pub fn rows(&self) -> Vec<(usize, usize)> {
        let q = self.filter.to_lowercase();
        let mut out = Vec::new();
        for (hi, h) in self.hosts.iter().enumerate() {
            for (si, s) in self.services.iter().enumerate() {
                let live_sha = h
                    .service(&s.name)
                    .and_then(|x| x.live_sha.clone())
                    .unwrap_or_default();
                if q.is_empty()
                    || h.name.to_lowercase().contains(&q)
                    || s.name.to_lowercase().contains(&q)
                    || live_sha.contains(&q)
                {
                    out.push((hi, si));
                }
            }
        }
        out
    }

    pub fn current(&self) -> Option<(&HostView, &Service)> {
        let rows = self.rows();
        let (hi, si) = *rows.get(self.selected.min(rows.len().saturating_sub(1)))?;
        Some((self.hosts.get(hi)?, self.services.get(si)?))
    }

    /// The container the inspect keys act on: the chosen color, else the live one, else blue.
    pub fn current_color(&self) -> Color {
        if let Some(c) = self.color {
            return c;
        }
        self.current()
            .and_then(|(h, s)| h.service(&s.name))
            .and_then(|s| s.live_color)
            .unwrap_or(Color::Blue)
    }

    pub fn current_progress(&self) -> Option<&Progress> {
        let (_, svc) = self.current()?;
        self.progress.get(&progress_key(&self.env, &svc.name))
    }

    pub fn running(&self) -> impl Iterator<Item = &Progress> {
        self.progress.values().filter(|p| p.running())
    }

    // ---- messages -------------------------------------------------------------------------

    pub fn on_msg(&mut self, msg: Msg) -> Vec<Effect> {
        let now = self.now;
        match msg {
            Msg::Host {
                epoch,
                host,
                update,
            } => {
                if epoch == self.epoch
                    && let Some(h) = self.hosts.iter_mut().find(|h| h.name == host)
                {
                    h.apply(update, now);
                }
            }
            Msg::Plan { id, result } => {
                for d in &mut self.dialogs {
                    if let Dialog::Confirm(c) = d
                        && c.id == id
                    {
                        c.plan = match result {
                            Ok(p) => PlanState::Ready(p),
                            Err(e) => PlanState::Failed(e),
                        };
                        break;
                    }
                }
            }
            Msg::Action { id, event } => {
                if let Some(p) = self.progress.values_mut().find(|p| p.id == id) {
                    p.apply(event, now);
                }
            }
            Msg::ActionDone { id, result } => {
                if let Some(p) = self.progress.values_mut().find(|p| p.id == id) {
                    self.message = Some(match &result {
                        Ok(s) => format!("{} finished: {s}", p.action.verb()),
                        Err(_) => format!("{} FAILED (see the progress pane)", p.action.verb()),
                    });
                    p.finish(result, now);
                }
                // An abort dialog for an action that has ended has nothing left to ask.
                self.dialogs
                    .retain(|d| !matches!(d, Dialog::Abort { id: a, .. } if *a == id));
            }
            Msg::Logs { id, lines } => {
                if let Some(l) = self.logs.as_mut().filter(|l| l.id == id) {
                    let before = l.visible().len();
                    for line in &lines {
                        l.push(line);
                    }
                    if !l.follow {
                        // Keep the view still while new lines arrive below.
                        let after = l.visible().len();
                        l.scroll += after.saturating_sub(before);
                    }
                }
            }
            Msg::LogsEnded { id, reason } => {
                if let Some(l) = self.logs.as_mut().filter(|l| l.id == id) {
                    l.ended = Some(reason);
                }
            }
            Msg::Inspect { id, result } => {
                if let Some(t) = self.text.as_mut().filter(|t| t.id == id) {
                    t.lines = match result {
                        Ok(l) => PlanLike::Ready(l),
                        Err(e) => PlanLike::Failed(e),
                    };
                }
            }
            Msg::Note(m) => self.message = Some(m),
            Msg::RegistryTags { service, result } => self.on_registry_tags(service, result),
        }
        Vec::new()
    }

    // ---- keys -----------------------------------------------------------------------------

    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if self.help {
            match key.code {
                KeyCode::Char('j') | KeyCode::Down => self.help_scroll += 1,
                KeyCode::Char('k') | KeyCode::Up => {
                    self.help_scroll = self.help_scroll.saturating_sub(1);
                }
                _ => {
                    self.help = false;
                    self.help_scroll = 0;
                }
            }
            return Vec::new();
        }
        if !self.dialogs.is_empty() {
            return self.dialog_key(key);
        }
        if !matches!(self.input, InputMode::Normal) {
            return self.input_key(key);
        }
        let scope = match self.view {
            View::Fleet => Scope::Fleet,
            View::Host => Scope::Host,
            View::Logs => Scope::Logs,
            View::Text => Scope::Text,
        };
        // Panes by number in the host view.
        if self.view == View::Host
            && let KeyCode::Char(c @ '1'..='5') = key.code
        {
            let i = (c as usize) - ('1' as usize);
            self.pane = Pane::ALL[i];
            self.pane_scroll = 0;
            return Vec::new();
        }
        match keymap::lookup(scope, &key, self.read_only()) {
            Some(a) => self.act(a),
            None => {
                if self.read_only()
                    && matches!(key.code, KeyCode::Char('d' | 'r' | 'p'))
                    && matches!(self.view, View::Fleet | View::Host)
                {
                    self.message = Some("read-only: actions are hidden".into());
                }
                Vec::new()
            }
        }
    }

    fn act(&mut self, a: KeyAction) -> Vec<Effect> {
        self.message = None;
        match a {
            KeyAction::Quit => {
                if self.running().next().is_some() {
                    self.dialogs.push(Dialog::QuitRunning {
                        focus: Button::Cancel,
                    });
                    return Vec::new();
                }
                self.quit = true;
                return vec![Effect::Quit];
            }
            KeyAction::Interrupt => {
                let running = self
                    .current_progress()
                    .filter(|p| p.running())
                    .or_else(|| self.running().next())
                    .map(|p| (p.id, p.action.title()));
                if let Some((id, title)) = running {
                    self.dialogs.push(Dialog::Abort {
                        id,
                        title,
                        focus: Button::Cancel,
                    });
                    return Vec::new();
                }
                self.quit = true;
                return vec![Effect::Quit];
            }
            KeyAction::Help => self.help = true,
            KeyAction::Command => {
                self.input = InputMode::Command(line_input(
                    "env NAME · deploy SHA · rollback [SHA] · prune · quit",
                ))
            }
            KeyAction::Filter => {
                let mut t = line_input(if self.view == View::Logs {
                    "search"
                } else {
                    "filter hosts"
                });
                let current = if self.view == View::Logs {
                    self.logs
                        .as_ref()
                        .map(|l| l.search.clone())
                        .unwrap_or_default()
                } else {
                    self.filter.clone()
                };
                t.insert_str(current);
                self.input = InputMode::Filter(t);
            }
            KeyAction::Back => return self.back(),
            KeyAction::Open => {
                if self.current().is_some() {
                    self.view = View::Host;
                    self.pane_scroll = 0;
                    self.color = None;
                }
            }
            KeyAction::Up
            | KeyAction::Down
            | KeyAction::PageUp
            | KeyAction::PageDown
            | KeyAction::Top
            | KeyAction::Bottom => self.scroll(a),
            KeyAction::NextPane | KeyAction::PrevPane => {
                let n = Pane::ALL.len();
                let i = self.pane.index();
                let next = if a == KeyAction::NextPane {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.pane = Pane::ALL[next];
                self.pane_scroll = 0;
            }
            KeyAction::PrevEnv | KeyAction::NextEnv => {
                let n = self.envs.len();
                if n > 1 {
                    let i = self
                        .envs
                        .iter()
                        .position(|e| e.name == self.env)
                        .unwrap_or(0);
                    let next = if a == KeyAction::NextEnv {
                        (i + 1) % n
                    } else {
                        (i + n - 1) % n
                    };
                    let name = self.envs[next].name.clone();
                    return self.switch_env(&name);
                }
            }
            KeyAction::PrevColor => self.color = Some(Color::Blue),
            KeyAction::NextColor => self.color = Some(Color::Green),
            KeyAction::NextService => {
                // Services of one host are consecutive rows.
                let rows = self.rows();
                if let Some(&(hi, _)) = rows.get(self.selected) {
                    let next = self.selected + 1;
                    self.selected = if rows.get(next).is_some_and(|r| r.0 == hi) {
                        next
                    } else {
                        rows.iter().position(|r| r.0 == hi).unwrap_or(0)
                    };
                    self.color = None;
                }
            }
            KeyAction::Deploy => return self.open_deploy(None),
            KeyAction::Rollback => return self.open_rollback(None),
            KeyAction::Promote => return self.open_promote(),
            KeyAction::AbortCanary => {
                if self.current_canary().is_some() {
                    return self.open_rollback(None);
                }
                self.message = Some("no canary on this service: nothing to abort".into());
            }
            KeyAction::Prune => return self.open_prune(),
            KeyAction::Logs => return self.open_logs(),
            KeyAction::Inspect => return self.open_inspect(),
            KeyAction::Shell => {
                if let Some((h, s)) = self.current() {
                    let container = crate::state::contract::app_container(s, self.current_color());
                    return vec![Effect::Shell {
                        host: h.name.clone(),
                        container,
                    }];
                }
            }
            KeyAction::ToggleFollow => {
                if let Some(l) = &mut self.logs {
                    l.follow = !l.follow;
                    l.scroll = 0;
                }
            }
            KeyAction::ToggleTimestamps => {
                if let Some(l) = &mut self.logs {
                    l.timestamps = !l.timestamps;
                }
            }
        }
        Vec::new()
    }

    fn back(&mut self) -> Vec<Effect> {
        match self.view {
            View::Fleet => {
                self.filter.clear();
            }
            View::Host => self.view = View::Fleet,
            View::Logs => {
                self.logs = None;
                self.view = View::Host;
                return vec![Effect::StopLogs];
            }
            View::Text => {
                self.text = None;
                self.view = View::Host;
            }
        }
        Vec::new()
    }

    fn scroll(&mut self, a: KeyAction) {
        match self.view {
            View::Fleet => {
                let n = self.rows().len();
                match a {
                    KeyAction::Up => self.selected = self.selected.saturating_sub(1),
                    KeyAction::Down if n > 0 => self.selected = (self.selected + 1).min(n - 1),
                    _ => {}
                }
                self.color = None;
            }
            View::Host => match a {
                KeyAction::Up => self.pane_scroll = self.pane_scroll.saturating_sub(1),
                KeyAction::Down => self.pane_scroll += 1,
                _ => {}
            },
            View::Text => {
                if let Some(t) = &mut self.text {
                    t.scroll = match a {
                        KeyAction::Up => t.scroll.saturating_sub(1),
                        KeyAction::Down => t.scroll + 1,
                        KeyAction::PageUp => t.scroll.saturating_sub(15),
                        KeyAction::PageDown => t.scroll + 15,
                        _ => t.scroll,
                    };
                }
            }
            View::Logs => {
                if let Some(l) = &mut self.logs {
                    let max = l.visible().len().saturating_sub(1);
                    let by = |n: usize, up: bool, s: usize| {
                        if up {
                            (s + n).min(max)
                        } else {
                            s.saturating_sub(n)
                        }
                    };
                    match a {
                        KeyAction::Up => l.scroll = by(1, true, l.scroll),
                        KeyAction::Down => l.scroll = by(1, false, l.scroll),
                        KeyAction::PageUp => l.scroll = by(15, true, l.scroll),
                        KeyAction::PageDown => l.scroll = by(15, false, l.scroll),
                        KeyAction::Top => l.scroll = max,
                        KeyAction::Bottom => {
                            l.scroll = 0;
                            l.follow = true;
                        }
                        _ => {}
                    }
                    if l.scroll > 0 {
                        l.follow = false;
                    }
                }
            }
        }
    }

    pub fn switch_env(&mut self, name: &str) -> Vec<Effect> {
        let Some(info) = self.envs.iter().find(|e| e.name == name).cloned() else {
            self.message = Some(format!(
                "no environment `{name}` (known: {})",
                self.envs
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return Vec::new();
        };
        let runs = self.live_runs();
        self.seen.insert(self.env.clone(), runs);
        self.env = info.name.clone();
        self.hosts = info.hosts.iter().map(|h| HostView::new(h)).collect();
        self.epoch += 1;
        self.selected = 0;
        self.view = View::Fleet;
        self.color = None;
        self.filter.clear();
        let mut effects = Vec::new();
        if self.logs.take().is_some() {
            effects.push(Effect::StopLogs);
        }
        self.text = None;
        effects.push(Effect::SwitchEnv {
            env: info.name,
            epoch: self.epoch,
        });
        effects
    }

    fn live_runs(&self) -> Vec<SeenRun> {
        let mut out = Vec::new();
        for h in &self.hosts {
            let Some(snap) = &h.snapshot else { continue };
            for s in &snap.status.services {
                for c in Color::BOTH {
                    if let Some(cs) = s.color(c)
                        && let Some(sha) = &cs.sha
                    {
                        out.push(SeenRun {
                            host: h.name.clone(),
                            service: s.name.clone(),
                            color: c,
                            sha: sha.clone(),
                            live: s.live_color == Some(c),
                        });
                    }
                }
            }
        }
        out
    }

    // ---- actions --------------------------------------------------------------------------

    fn action_target(&mut self) -> Option<(String, Vec<String>)> {
        if self.read_only() {
            self.message = Some("read-only: nothing that changes a host may run".into());
            return None;
        }
        let (_, svc) = self.current()?;
        let service = svc.name.clone();
        if self
            .progress
            .get(&progress_key(&self.env, &service))
            .is_some_and(Progress::running)
        {
            self.message = Some(format!(
                "an action on {service} in {} is already running",
                self.env
            ));
            return None;
        }
        let hosts = self.hosts.iter().map(|h| h.name.clone()).collect();
        Some((service, hosts))
    }

    fn confirm_dialog(&mut self, action: PendingAction) -> Vec<Effect> {
        let id = self.id();
        let mut typed = line_input("type to confirm");
        typed.set_cursor_line_style(ratatui::style::Style::default());
        self.dialogs.push(Dialog::Confirm(Box::new(Confirm {
            id,
            action: action.clone(),
            plan: PlanState::Loading,
            focus: Button::Cancel,
            protected: self.protected(),
            typed,
        })));
        vec![Effect::Plan { id, action }]
    }

    pub fn open_rollback(&mut self, target: Option<String>) -> Vec<Effect> {
        let Some((service, hosts)) = self.action_target() else {
            return Vec::new();
        };
        let action = PendingAction::Rollback {
            env: self.env.clone(),
            service,
            hosts,
            target,
        };
        self.confirm_dialog(action)
    }

    /// The canary's SHA of the selected service, if it is in canary on the selected host.
    fn current_canary(&self) -> Option<String> {
        let (h, s) = self.current()?;
        h.service(&s.name)?.canary.as_ref().map(|k| k.sha.clone())
    }

    /// `P`: the confirm dialog for promoting the canary (issue 13).
    pub fn open_promote(&mut self) -> Vec<Effect> {
        let Some(sha) = self.current_canary() else {
            self.message = Some("no canary on this service: nothing to promote".into());
            return Vec::new();
        };
        let Some((service, hosts)) = self.action_target() else {
            return Vec::new();
        };
        let action = PendingAction::Promote {
            env: self.env.clone(),
            service,
            hosts,
            sha,
        };
        self.confirm_dialog(action)
    }

    pub fn open_prune(&mut self) -> Vec<Effect> {
        let Some((service, hosts)) = self.action_target() else {
            return Vec::new();
        };
        let keep = self
            .services
            .iter()
            .find(|s| s.name == service)
            .map_or(5, |s| s.keep_images)
            .max(1);
        let action = PendingAction::Prune {
            env: self.env.clone(),
            service,
            hosts,
            keep,
        };
        self.confirm_dialog(action)
    }

    /// `d` opens the picker; `:deploy SHA` goes straight to the dialog.
    pub fn open_deploy(&mut self, sha: Option<String>) -> Vec<Effect> {
        let Some((service, hosts)) = self.action_target() else {
            return Vec::new();
        };
        if let Some(sha) = sha {
            if let Err(e) = crate::release::plan::validate_ref(&sha) {
                self.message = Some(e);
                return Vec::new();
            }
            let action = PendingAction::Deploy {
                env: self.env.clone(),
                service,
                hosts,
                sha,
            };
            return self.confirm_dialog(action);
        }
        let candidates = self.candidates(&service);
        let registry_note = self.registry_note(&service);
        self.dialogs.push(Dialog::Picker(Box::new(Picker {
            service: service.clone(),
            input: line_input("type to filter SHAs"),
            selected: 0,
            candidates,
            registry_note,
        })));
        // Listed afresh each time: CI pushes new SHAs while the console is open.
        vec![Effect::RegistryTags { service }]
    }

    fn registry_note(&self, service: &str) -> String {
        match self.registry_tags.get(service) {
            None => "registry: listing tags…".to_string(),
            Some(Ok(tags)) => format!("registry: {} tag(s)", tags.len()),
            Some(Err(e)) => format!("registry: {e}"),
        }
    }

    fn on_registry_tags(&mut self, service: String, result: Result<Vec<String>, String>) {
        self.registry_tags.insert(service.clone(), result);
        let candidates = self.candidates(&service);
        let note = self.registry_note(&service);
        for d in &mut self.dialogs {
            if let Dialog::Picker(p) = d
                && p.service == service
            {
                p.candidates.clone_from(&candidates);
                p.registry_note.clone_from(&note);
            }
        }
    }

    /// SHAs the picker offers: images on this environment's hosts and SHAs seen running in
    /// other environments, newest first, each with where it runs now.
    pub fn candidates(&self, service: &str) -> Vec<Candidate> {
        let mut by_sha: BTreeMap<String, Candidate> = BTreeMap::new();
        fn entry<'m>(m: &'m mut BTreeMap<String, Candidate>, sha: &str) -> &'m mut Candidate {
            m.entry(sha.to_string()).or_insert_with(|| Candidate {
                sha: sha.to_string(),
                created: String::new(),
                created_unix: i64::MIN,
                size_bytes: 0,
                runs: Vec::new(),
                in_registry: false,
            })
        }
        if let Some(Ok(tags)) = self.registry_tags.get(service) {
            for t in tags {
                entry(&mut by_sha, t).in_registry = true;
            }
        }
        for h in &self.hosts {
            let Some(s) = h.service(service) else {
                continue;
            };
            for img in &s.images {
                let c = entry(&mut by_sha, &img.tag);
                c.created.clone_from(&img.created);
                c.created_unix = img.created_unix;
                c.size_bytes = img.size_bytes;
            }
            for color in Color::BOTH {
                if let Some(cs) = s.color(color)
                    && let Some(sha) = &cs.sha
                {
                    let live = s.live_color == Some(color);
                    entry(&mut by_sha, sha).runs.push(format!(
                        "{}/{} {color}{}",
                        self.env,
                        h.name,
                        if live { " LIVE" } else { "" }
                    ));
                }
            }
        }
        for (env, runs) in &self.seen {
            if *env == self.env {
                continue;
            }
            for r in runs.iter().filter(|r| r.service == service) {
                entry(&mut by_sha, &r.sha).runs.push(format!(
                    "{env}/{} {}{}",
                    r.host,
                    r.color,
                    if r.live { " LIVE" } else { "" }
                ));
            }
        }
        let mut out: Vec<Candidate> = by_sha.into_values().collect();
        for c in &mut out {
            c.runs.sort();
            c.runs.dedup();
        }
        out.sort_by(|a, b| b.created_unix.cmp(&a.created_unix).then(a.sha.cmp(&b.sha)));
        out
    }

    fn open_logs(&mut self) -> Vec<Effect> {
        let Some((h, s)) = self.current() else {
            return Vec::new();
        };
        let color = self.current_color();
        let container = crate::state::contract::app_container(s, color);
        let host = h.name.clone();
        let id = self.id();
        self.logs = Some(LogsState {
            id,
            host: host.clone(),
            container: container.clone(),
            lines: VecDeque::new(),
            follow: true,
            timestamps: true,
            search: String::new(),
            scroll: 0,
            ended: None,
            dropped: 0,
        });
        self.view = View::Logs;
        vec![Effect::Logs {
            id,
            host,
            container,
        }]
    }

    fn open_inspect(&mut self) -> Vec<Effect> {
        let Some((h, s)) = self.current() else {
            return Vec::new();
        };
        let container = crate::state::contract::app_container(s, self.current_color());
        let host = h.name.clone();
        let id = self.id();
        self.text = Some(TextState {
            id,
            title: format!("inspect {container} on {host} (secrets redacted)"),
            lines: PlanLike::Loading,
            scroll: 0,
        });
        self.view = View::Text;
        vec![Effect::Inspect {
            id,
            host,
            container,
        }]
    }

    // ---- dialogs and inputs ---------------------------------------------------------------

    fn dialog_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if key.code == KeyCode::Esc || (ctrl && key.code == KeyCode::Char('c')) {
            self.dialogs.pop();
            return Vec::new();
        }
        let Some(top) = self.dialogs.last_mut() else {
            return Vec::new();
        };
        match top {
            Dialog::Picker(p) => match key.code {
                KeyCode::Up => p.selected = p.selected.saturating_sub(1),
                KeyCode::Down => {
                    let n = p.visible().len();
                    if n > 0 {
                        p.selected = (p.selected + 1).min(n - 1);
                    }
                }
                KeyCode::Enter => {
                    let Some(sha) = p.choice() else {
                        self.message = Some("no SHA matches; type a SHA or tag".into());
                        return Vec::new();
                    };
                    self.dialogs.pop();
                    return self.open_deploy(Some(sha));
                }
                _ => {
                    p.input.input(key);
                    p.selected = 0;
                }
            },
            Dialog::Confirm(c) => match key.code {
                KeyCode::Tab | KeyCode::BackTab | KeyCode::Left | KeyCode::Right => {
                    c.focus = c.focus.toggle();
                }
                KeyCode::Enter => {
                    if c.focus == Button::Cancel {
                        self.dialogs.pop();
                        return Vec::new();
                    }
                    if !c.armed() {
                        self.message = Some(if c.protected {
                            format!(
                                "type {} to confirm",
                                c.confirm_words()
                                    .iter()
                                    .map(|w| format!("`{w}`"))
                                    .collect::<Vec<_>>()
                                    .join(" or ")
                            )
                        } else {
                            "nothing to confirm yet".into()
                        });
                        return Vec::new();
                    }
                    let (id, action) = (c.id, c.action.clone());
                    self.dialogs.pop();
                    return self.start(id, action);
                }
                KeyCode::Char(_) | KeyCode::Backspace | KeyCode::Delete if c.protected && !ctrl => {
                    c.typed.input(key);
                }
                _ => {}
            },
            Dialog::Abort { id, focus, .. } => match key.code {
                KeyCode::Tab | KeyCode::BackTab | KeyCode::Left | KeyCode::Right => {
                    *focus = focus.toggle();
                }
                KeyCode::Enter => {
                    let (id, yes) = (*id, *focus == Button::Confirm);
                    self.dialogs.pop();
                    if yes {
                        if let Some(p) = self.progress.values_mut().find(|p| p.id == id) {
                            p.abort_requested = true;
                        }
                        return vec![Effect::Abort { id }];
                    }
                }
                _ => {}
            },
            Dialog::QuitRunning { focus } => match key.code {
                KeyCode::Tab | KeyCode::BackTab | KeyCode::Left | KeyCode::Right => {
                    *focus = focus.toggle();
                }
                KeyCode::Enter => {
                    let yes = *focus == Button::Confirm;
                    self.dialogs.pop();
                    if yes {
                        let mut effects: Vec<Effect> = self
                            .progress
                            .values_mut()
                            .filter(|p| p.running())
                            .map(|p| {
                                p.abort_requested = true;
                                Effect::Abort { id: p.id }
                            })
                            .collect();
                        self.quit = true;
                        effects.push(Effect::Quit);
                        return effects;
                    }
                }
                _ => {}
            },
        }
        Vec::new()
    }

    /// A confirmed action starts: its progress is shown at once.
    fn start(&mut self, id: u64, action: PendingAction) -> Vec<Effect> {
        let key = progress_key(action.env(), action.service());
        self.progress
            .insert(key, Progress::new(id, action.clone(), self.now));
        self.view = View::Host;
        self.pane = Pane::Progress;
        self.pane_scroll = 0;
        vec![Effect::Execute { id, action }]
    }

    fn input_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let mode = std::mem::replace(&mut self.input, InputMode::Normal);
        match (mode, key.code) {
            (_, KeyCode::Esc) => {
                if self.view == View::Logs {
                    if let Some(l) = &mut self.logs {
                        l.search.clear();
                    }
                } else if self.view == View::Fleet {
                    self.filter.clear();
                }
                Vec::new()
            }
            (InputMode::Filter(_), KeyCode::Enter) => Vec::new(),
            (InputMode::Filter(mut t), _) => {
                t.input(key);
                let text = t.lines().join("");
                if self.view == View::Logs {
                    if let Some(l) = &mut self.logs {
                        l.search = text;
                        l.scroll = 0;
                    }
                } else {
                    self.filter = text;
                    self.selected = 0;
                }
                self.input = InputMode::Filter(t);
                Vec::new()
            }
            (InputMode::Command(t), KeyCode::Enter) => {
                let line = t.lines().join(" ");
                self.command(&line)
            }
            (InputMode::Command(mut t), _) => {
                t.input(key);
                self.input = InputMode::Command(t);
                Vec::new()
            }
            (InputMode::Normal, _) => Vec::new(),
        }
    }

    /// `:` commands.
    pub fn command(&mut self, line: &str) -> Vec<Effect> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [] => Vec::new(),
            ["env", name] => self.switch_env(name),
            ["deploy", sha] => self.open_deploy(Some((*sha).to_string())),
            ["deploy"] => self.open_deploy(None),
            ["rollback"] => self.open_rollback(None),
            ["rollback", sha] => self.open_rollback(Some((*sha).to_string())),
            ["prune"] => self.open_prune(),
            ["help"] => {
                self.help = true;
                Vec::new()
            }
            ["q" | "quit"] => self.act(KeyAction::Quit),
            _ => {
                self.message = Some(format!(
                    "unknown command `{line}` (env NAME, deploy [SHA], rollback [SHA], prune, help, quit)"
                ));
                Vec::new()
            }
        }
    }
}
