//! The console's state and how it changes: messages and keys in, state and effects out.
//!
//! Nothing here does I/O. Keys and background messages change the state; anything that must
//! reach a host comes back as an `Effect` that the runtime carries out, whose results arrive
//! later as `Msg`s. The state is in parts, each with private fields and its own keys:
//! navigation (`nav`), the dialog stack (`dialog`, `picker`), the log and text views (`logs`).
//! Every key is looked up in the keymap.

mod actions;
mod dialog;
mod logs;
mod msg;
mod nav;
mod picker;
mod scroll;

pub use dialog::{Button, Confirm, Dialog, DialogOutcome};
pub use logs::{LOG_CAPACITY, LogLine, LogView, TextBody, TextView};
pub use msg::{Effect, Msg};
pub use nav::{Nav, Pane, View};
pub use picker::{Candidate, Picker, RegistryTags, SeenRun};

use std::collections::BTreeMap;
use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui_textarea::TextArea;

use super::action::Progress;
use super::keymap::{self, KeyAction, Scope};
use super::model::HostView;
use super::theme::Theme;
use crate::config::Service;
pub use crate::release::runner::EnvInfo;

use crate::state::Color;
use scroll::Scroll;

fn progress_key(env: &str, service: &str) -> String {
    format!("{env}/{service}")
}

pub(crate) fn line_input(placeholder: &str) -> TextArea<'static> {
    let mut t = TextArea::default();
    t.set_placeholder_text(placeholder);
    t.set_cursor_line_style(ratatui::style::Style::default());
    t
}

/// The footer's input line, when one is open.
#[derive(Debug, Clone)]
pub enum InputMode {
    Normal,
    Filter(TextArea<'static>),
    Command(TextArea<'static>),
}

pub struct App {
    envs: Vec<EnvInfo>,
    env: String,
    services: Vec<Service>,
    /// `--read-only`.
    read_only_flag: bool,
    hosts: Vec<HostView>,
    epoch: u64,
    nav: Nav,
    input: InputMode,
    dialogs: Vec<Dialog>,
    help: Option<Scroll>,
    theme: Theme,
    /// Actions by `env/service`: running, or finished and kept for reading.
    progress: BTreeMap<String, Progress>,
    logs: Option<LogView>,
    text: Option<TextView>,
    seen: BTreeMap<String, Vec<SeenRun>>,
    registry_tags: BTreeMap<String, RegistryTags>,
    message: Option<String>,
    now: Instant,
    now_unix: i64,
    quit: bool,
    /// Who acts (recorded in locks and the audit log).
    actor: String,
    next_id: u64,
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
            nav: Nav::default(),
            input: InputMode::Normal,
            dialogs: Vec::new(),
            help: None,
            theme: Theme::default(),
            progress: BTreeMap::new(),
            logs: None,
            text: None,
            seen: BTreeMap::new(),
            registry_tags: BTreeMap::new(),
            message: None,
            now: Instant::now(),
            now_unix: chrono::Utc::now().timestamp(),
            quit: false,
            actor: String::new(),
            next_id: 1,
        };
        app.enter_env();
        app
    }

    /// The hosts of the current environment, and its first screen: a one-host environment
    /// opens on that host (both colors at once), a fleet on its host list.
    fn enter_env(&mut self) {
        self.hosts = self.env_info().map_or_else(Vec::new, |e| {
            e.hosts.iter().map(|h| HostView::new(h)).collect()
        });
        self.nav.reset();
        if self.hosts.len() == 1 {
            self.nav.open_host();
        }
    }

    // ---- read access (views and tests) ----------------------------------------------------

    pub fn envs(&self) -> &[EnvInfo] {
        &self.envs
    }
    pub fn env(&self) -> &str {
        &self.env
    }
    pub fn services(&self) -> &[Service] {
        &self.services
    }
    pub fn hosts(&self) -> &[HostView] {
        &self.hosts
    }
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    pub fn nav(&self) -> &Nav {
        &self.nav
    }
    pub fn view(&self) -> View {
        self.nav.view()
    }
    pub fn pane(&self) -> Pane {
        self.nav.pane()
    }
    pub fn input(&self) -> &InputMode {
        &self.input
    }
    /// The top dialog.
    pub fn dialog(&self) -> Option<&Dialog> {
        self.dialogs.last()
    }
    /// The help's scroll, when it is open.
    pub fn help(&self) -> Option<usize> {
        self.help.map(Scroll::offset)
    }
    pub fn theme(&self) -> Theme {
        self.theme
    }
    pub fn progress(&self) -> &BTreeMap<String, Progress> {
        &self.progress
    }
    pub fn logs(&self) -> Option<&LogView> {
        self.logs.as_ref()
    }
    pub fn text(&self) -> Option<&TextView> {
        self.text.as_ref()
    }
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
    pub fn now(&self) -> Instant {
        self.now
    }
    pub fn now_unix(&self) -> i64 {
        self.now_unix
    }
    pub fn quitting(&self) -> bool {
        self.quit
    }

    pub fn set_theme(&mut self, t: Theme) {
        self.theme = t;
    }
    pub fn set_actor(&mut self, actor: &str) {
        self.actor = actor.to_string();
    }
    pub fn set_clock(&mut self, now: Instant, unix: i64) {
        self.now = now;
        self.now_unix = unix;
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

    /// Host list rows: (host index, service index), filtered.
    pub fn rows(&self) -> Vec<(usize, usize)> {
        let q = self.nav.filter().to_lowercase();
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
        let (hi, si) = *rows.get(self.nav.selected().min(rows.len().saturating_sub(1)))?;
        Some((self.hosts.get(hi)?, self.services.get(si)?))
    }

    /// The container the inspect keys act on: the chosen color, else the live one, else blue.
    pub fn current_color(&self) -> Color {
        if let Some(c) = self.nav.color() {
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

    /// How many lines the current pane has, so its scroll stops at the end.
    fn pane_len(&self) -> usize {
        let Some((h, s)) = self.current() else {
            return 0;
        };
        let svc = h.service(&s.name);
        match self.nav.pane() {
            Pane::Colors => 0,
            Pane::Images => svc.map_or(0, |s| s.images.len()),
            Pane::Audit => h
                .snapshot
                .as_ref()
                .and_then(|s| s.audit.as_ref().ok())
                .map_or(0, Vec::len),
            Pane::Metrics => h.snapshot.as_ref().map_or(0, |s| {
                // Facts (up to 6 lines), a blank, then metrics and alerts.
                7 + s
                    .monitor
                    .as_ref()
                    .map_or(1, |m| m.metrics.len() + m.alerts.len().max(1))
            }),
            Pane::Progress => self
                .current_progress()
                .map_or(0, |p| p.steps.len() + p.notes.len() + p.pull.len() + 8),
        }
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
                    h.apply(update, now, self.now_unix);
                }
            }
            Msg::Plan { id, result } => {
                for d in &mut self.dialogs {
                    if let Dialog::Confirm(c) = d
                        && c.id() == id
                    {
                        c.planned(result);
                        break;
                    }
                }
            }
            Msg::Action { id, event } => {
                if let Some(p) = self.progress.values_mut().find(|p| p.id == id) {
                    p.apply(event, now);
                }
            }
            Msg::ActionDone { id, report } => {
                let mut offer = None;
                if let Some(p) = self.progress.values_mut().find(|p| p.id == id) {
                    let verb = p.request.verb.as_str();
                    self.message = Some(if report.succeeded() {
                        format!("{verb} finished: {}", report.summary().replace('\n', "; "))
                    } else {
                        format!("{verb} FAILED (see the progress pane)")
                    });
                    // A stale lock stopped it: offer the same run again, taking the lock over
                    // (behind the usual confirm dialog; the audit records whose lock it was).
                    if !p.request.take_over_stale
                        && let Some((host, holder)) = report.stale_lock()
                    {
                        self.message = Some(format!(
                            "{host}: the lock is stale ({holder}); confirm to take it over and run again"
                        ));
                        offer = Some(p.request.taking_over_from(host));
                    }
                    p.finish(report, now);
                }
                // An abort dialog for an action that has ended has nothing left to ask.
                self.dialogs
                    .retain(|d| !matches!(d, Dialog::Abort { id: a, .. } if *a == id));
                if let Some(request) = offer {
                    return self.confirm_dialog(request);
                }
            }
            Msg::Logs { id, lines } => {
                if let Some(l) = self.logs.as_mut().filter(|l| l.id() == id) {
                    l.on_lines(&lines);
                }
            }
            Msg::LogsEnded { id, reason } => {
                if let Some(l) = self.logs.as_mut().filter(|l| l.id() == id) {
                    l.end(reason);
                }
            }
            Msg::Inspect { id, result } => {
                if let Some(t) = self.text.as_mut().filter(|t| t.id() == id) {
                    t.fill(match result {
                        Ok(l) => TextBody::Ready(l),
                        Err(e) => TextBody::Failed(e),
                    });
                }
            }
            Msg::Note(m) => self.message = Some(m),
            Msg::RegistryTags { service, result } => self.on_registry_tags(service, result),
        }
        Vec::new()
    }

    // ---- keys -----------------------------------------------------------------------------

    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Some(scroll) = &mut self.help {
            let len = keymap::help_lines(self.read_only_flag)
                .iter()
                .map(|(_, rows)| rows.len() + 1)
                .sum();
            match keymap::lookup(Scope::Help, &key, false) {
                Some(KeyAction::Down) => scroll.by(1, len),
                Some(KeyAction::Up) => scroll.by(-1, len),
                _ => self.help = None,
            }
            return Vec::new();
        }
        if let Some(top) = self.dialogs.last_mut() {
            let outcome = top.on_key(key);
            return self.dialog_outcome(outcome);
        }
        if !matches!(self.input, InputMode::Normal) {
            return self.input_key(key);
        }
        let scope = match self.nav.view() {
            View::Fleet => Scope::Fleet,
            View::Host => Scope::Host,
            View::Logs => Scope::Logs,
            View::Text => Scope::Text,
        };
        match keymap::lookup(scope, &key, self.read_only()) {
            Some(a) => self.act(a),
            None => {
                if self.read_only()
                    && matches!(key.code, KeyCode::Char('d' | 'r' | 'p'))
                    && matches!(self.nav.view(), View::Fleet | View::Host)
                {
                    self.message = Some("read-only: actions are hidden".into());
                }
                Vec::new()
            }
        }
    }

    fn dialog_outcome(&mut self, outcome: DialogOutcome) -> Vec<Effect> {
        match outcome {
            DialogOutcome::Stay => {}
            DialogOutcome::Close => {
                self.dialogs.pop();
            }
            DialogOutcome::Message(m) => self.message = Some(m),
            DialogOutcome::Confirmed { id, request } => {
                self.dialogs.pop();
                return self.start(id, request);
            }
            DialogOutcome::Rescope { request } => {
                self.dialogs.pop();
                let hosts = if request.all_hosts {
                    self.current()
                        .map(|(h, _)| vec![h.name.clone()])
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                if let Some(r) = self.request(&request.service.name, &hosts, request.verb) {
                    return self.confirm_dialog(r);
                }
            }
            DialogOutcome::Pick(sha) => {
                self.dialogs.pop();
                return self.open_deploy(Some(sha));
            }
            DialogOutcome::Abort { id } => {
                self.dialogs.pop();
                if let Some(p) = self.progress.values_mut().find(|p| p.id == id) {
                    p.abort_requested = true;
                }
                return vec![Effect::Abort { id }];
            }
            DialogOutcome::QuitAndAbort => {
                self.dialogs.pop();
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
        Vec::new()
    }

    fn act(&mut self, a: KeyAction) -> Vec<Effect> {
        self.message = None;
        // The log and text views scroll themselves.
        match self.nav.view() {
            View::Logs if self.logs.as_mut().is_some_and(|l| l.on_action(a)) => {
                return Vec::new();
            }
            View::Text if self.text.as_mut().is_some_and(|t| t.on_action(a)) => {
                return Vec::new();
            }
            _ => {}
        }
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
                    .map(|p| (p.id, p.request.title()));
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
            KeyAction::Help => self.help = Some(Scroll::default()),
            KeyAction::Command => {
                self.input = InputMode::Command(line_input(
                    "env NAME · deploy SHA · rollback [SHA] · prune · quit",
                ));
            }
            KeyAction::Filter => {
                let logs = self.nav.view() == View::Logs;
                let mut t = line_input(if logs { "search" } else { "filter hosts" });
                let current = if logs {
                    self.logs
                        .as_ref()
                        .map(|l| l.search().to_string())
                        .unwrap_or_default()
                } else {
                    self.nav.filter().to_string()
                };
                t.insert_str(current);
                self.input = InputMode::Filter(t);
            }
            KeyAction::Back => return self.back(),
            KeyAction::Open => {
                if self.current().is_some() {
                    self.nav.open_host();
                }
            }
            KeyAction::Up | KeyAction::Down => {
                let down = a == KeyAction::Down;
                match self.nav.view() {
                    View::Fleet => self.nav.move_selection(down, self.rows().len()),
                    View::Host => {
                        let len = self.pane_len();
                        self.nav.scroll_pane(if down { 1 } else { -1 }, len);
                    }
                    View::Logs | View::Text => {}
                }
            }
            KeyAction::PageUp
            | KeyAction::PageDown
            | KeyAction::Top
            | KeyAction::Bottom
            | KeyAction::ToggleFollow
            | KeyAction::ToggleTimestamps
            | KeyAction::Toggle
            | KeyAction::Press
            | KeyAction::Cancel
            | KeyAction::ToggleScope => {}
            KeyAction::Pane(i) => {
                if let Some(p) = Pane::ALL.get(usize::from(i)) {
                    self.nav.show_pane(*p);
                }
            }
            KeyAction::NextPane | KeyAction::PrevPane => {
                self.nav.cycle_pane(a == KeyAction::NextPane);
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
            KeyAction::PrevColor => self.nav.choose_color(Color::Blue),
            KeyAction::NextColor => self.nav.choose_color(Color::Green),
            KeyAction::NextService => {
                // Services of one host are consecutive rows.
                let rows = self.rows();
                let sel = self.nav.selected();
                if let Some(&(hi, _)) = rows.get(sel) {
                    let next = sel + 1;
                    self.nav
                        .select(if rows.get(next).is_some_and(|r| r.0 == hi) {
                            next
                        } else {
                            rows.iter().position(|r| r.0 == hi).unwrap_or(0)
                        });
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
        }
        Vec::new()
    }

    fn back(&mut self) -> Vec<Effect> {
        match self.nav.view() {
            View::Fleet => self.nav.clear_filter(),
            View::Host => self.nav.set_view(View::Fleet),
            View::Logs => {
                self.logs = None;
                self.nav.set_view(View::Host);
                return vec![Effect::StopLogs];
            }
            View::Text => {
                self.text = None;
                self.nav.set_view(View::Host);
            }
        }
        Vec::new()
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
        self.epoch += 1;
        self.enter_env();
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

    fn input_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let mode = std::mem::replace(&mut self.input, InputMode::Normal);
        let logs = self.nav.view() == View::Logs;
        match (mode, key.code) {
            (_, KeyCode::Esc) => {
                if logs {
                    if let Some(l) = &mut self.logs {
                        l.set_search(String::new());
                    }
                } else if self.nav.view() == View::Fleet {
                    self.nav.clear_filter();
                }
                Vec::new()
            }
            (InputMode::Filter(_), KeyCode::Enter) => Vec::new(),
            (InputMode::Filter(mut t), _) => {
                t.input(key);
                let text = t.lines().join("");
                if logs {
                    if let Some(l) = &mut self.logs {
                        l.set_search(text);
                    }
                } else {
                    self.nav.set_filter(text);
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
                self.help = Some(Scroll::default());
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
