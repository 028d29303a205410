//! The one keymap: every key the console acts on is here (views, panes, dialogs, the picker,
//! the help), dispatch looks keys up here, and both `?` help and the footer hints are generated
//! from it, so neither can disagree with what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies. `Global` applies everywhere no dialog or input has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Fleet,
    Host,
    Logs,
    Text,
    /// Confirm, abort and quit dialogs.
    Dialog,
    /// The deploy picker (typing filters).
    Picker,
    /// The help overlay (any other key closes it).
    Help,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Global => "everywhere",
            Scope::Fleet => "host list",
            Scope::Host => "host",
            Scope::Logs => "logs",
            Scope::Text => "inspect",
            Scope::Dialog => "dialogs",
            Scope::Picker => "deploy picker",
            Scope::Help => "help",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    Quit,
    Help,
    Command,
    Filter,
    NextPane,
    PrevPane,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    PrevEnv,
    NextEnv,
    PrevColor,
    NextColor,
    NextService,
    Deploy,
    Rollback,
    /// The release in canary takes all traffic (issue 13).
    Promote,
    /// A rollback that aborts the canary (issue 13).
    AbortCanary,
    Prune,
    Logs,
    Inspect,
    Shell,
    Interrupt,
    ToggleFollow,
    ToggleTimestamps,
    /// A pane of the host view by number (0-based).
    Pane(u8),
    /// Dialogs: move focus between Cancel and the action.
    Toggle,
    /// Dialogs: press the focused button; picker: plan the highlighted SHA.
    Press,
    /// Dialogs and picker: close without acting.
    Cancel,
    /// Act on the selected host only, or on every host of the environment.
    ToggleScope,
}

impl KeyAction {
    /// Actions that change a host: hidden and refused in read-only mode.
    pub fn changes_hosts(self) -> bool {
        matches!(
            self,
            KeyAction::Deploy
                | KeyAction::Rollback
                | KeyAction::Prune
                | KeyAction::Promote
                | KeyAction::AbortCanary
        )
    }
}

/// A key as written in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum K {
    Char(char),
    Ctrl(char),
    Code(KeyCode),
}

impl K {
    fn matches(self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        match self {
            K::Char(c) => !ctrl && ev.code == KeyCode::Char(c),
            K::Ctrl(c) => ctrl && ev.code == KeyCode::Char(c),
            K::Code(code) => !ctrl && ev.code == code,
        }
    }

    pub fn label(self) -> String {
        match self {
            K::Char(' ') => "Space".into(),
            K::Char(c) => c.to_string(),
            K::Ctrl(c) => format!("Ctrl-{}", c.to_ascii_uppercase()),
            K::Code(KeyCode::Up) => "↑".into(),
            K::Code(KeyCode::Down) => "↓".into(),
            K::Code(KeyCode::Left) => "←".into(),
            K::Code(KeyCode::Right) => "→".into(),
            K::Code(KeyCode::Enter) => "Enter".into(),
            K::Code(KeyCode::Esc) => "Esc".into(),
            K::Code(KeyCode::Tab) => "Tab".into(),
            K::Code(KeyCode::BackTab) => "Shift-Tab".into(),
            K::Code(KeyCode::PageUp) => "PgUp".into(),
            K::Code(KeyCode::PageDown) => "PgDn".into(),
            K::Code(KeyCode::Home) => "Home".into(),
            K::Code(KeyCode::End) => "End".into(),
            K::Code(other) => format!("{other:?}"),
        }
    }
}

pub struct Binding {
    pub scope: Scope,
    pub keys: &'static [K],
    pub action: KeyAction,
    pub help: &'static str,
    /// The footer's word for it, when the footer shows it.
    pub hint: Option<&'static str>,
}

use K::{Char, Code, Ctrl};

macro_rules! b {
    ($scope:ident, [$($k:expr),+], $action:expr, $help:literal) => {
        Binding { scope: Scope::$scope, keys: &[$($k),+], action: $action, help: $help, hint: None }
    };
    ($scope:ident, [$($k:expr),+], $action:expr, $help:literal, $hint:literal) => {
        Binding { scope: Scope::$scope, keys: &[$($k),+], action: $action, help: $help, hint: Some($hint) }
    };
}

use KeyAction as A;

#[rustfmt::skip]
pub const KEYMAP: &[Binding] = &[
    b!(Global, [Code(KeyCode::Esc), Char('h'), Code(KeyCode::Left)], A::Back, "back", "back"),
    b!(Global, [Char('q')], A::Quit, "quit (asks while an action runs)", "quit"),
    b!(Global, [Char('?')], A::Help, "this help", "help"),
    b!(Global, [Char(':')], A::Command, "command: env NAME, deploy SHA, rollback [SHA], prune, quit"),
    b!(Global, [Ctrl('c')], A::Interrupt, "abort the running action (asks), else quit"),
    b!(Global, [Char('['), Char(']')], A::NextEnv, "previous / next environment"),
    b!(Fleet, [Char('j'), Code(KeyCode::Down)], A::Down, "next host", "host"),
    b!(Fleet, [Char('k'), Code(KeyCode::Up)], A::Up, "previous host"),
    b!(Fleet, [Code(KeyCode::Enter), Code(KeyCode::Right)], A::Open, "open the host", "open"),
    b!(Fleet, [Char('/')], A::Filter, "filter hosts"),
    b!(Host, [Code(KeyCode::Tab)], A::NextPane, "next pane (colors, images, metrics, audit, progress)", "pane"),
    b!(Host, [Code(KeyCode::BackTab)], A::PrevPane, "previous pane"),
    b!(Host, [Char('1'), Char('2'), Char('3'), Char('4'), Char('5')], A::Pane(0), "pane by number"),
    b!(Host, [Char('j'), Code(KeyCode::Down)], A::Down, "scroll down"),
    b!(Host, [Char('k'), Code(KeyCode::Up)], A::Up, "scroll up"),
    b!(Host, [Char('b'), Char('g')], A::NextColor, "select the blue / green container", "color"),
    b!(Host, [Char('n')], A::NextService, "next service on this host"),
    b!(Fleet, [Char('d')], A::Deploy, "deploy a SHA (picker)", "deploy"),
    b!(Fleet, [Char('r')], A::Rollback, "roll back to the previous release", "rollback"),
    b!(Fleet, [Char('P')], A::Promote, "promote the canary (all traffic to it)"),
    b!(Fleet, [Char('A')], A::AbortCanary, "abort the canary (rollback)"),
    b!(Fleet, [Char('p')], A::Prune, "prune old images (shows the dry run first)", "prune"),
    b!(Fleet, [Char('l')], A::Logs, "stream the selected container's logs", "logs"),
    b!(Fleet, [Char('i')], A::Inspect, "inspect the container (secrets redacted)"),
    b!(Fleet, [Char('s')], A::Shell, "shell in the container (over the host's SSH connection)"),
    b!(Logs, [Char('f')], A::ToggleFollow, "follow on / off", "follow"),
    b!(Logs, [Char('t')], A::ToggleTimestamps, "timestamps on / off", "time"),
    b!(Logs, [Char('/')], A::Filter, "search", "search"),
    b!(Logs, [Char('j'), Code(KeyCode::Down)], A::Down, "scroll down", "scroll"),
    b!(Logs, [Char('k'), Code(KeyCode::Up)], A::Up, "scroll up"),
    b!(Logs, [Code(KeyCode::PageDown)], A::PageDown, "page down"),
    b!(Logs, [Code(KeyCode::PageUp)], A::PageUp, "page up"),
    b!(Logs, [Char('G'), Code(KeyCode::End)], A::Bottom, "end (and follow)", "end"),
    b!(Logs, [Code(KeyCode::Home)], A::Top, "start"),
    b!(Text, [Char('j'), Code(KeyCode::Down)], A::Down, "scroll down", "scroll"),
    b!(Text, [Char('k'), Code(KeyCode::Up)], A::Up, "scroll up"),
    b!(Text, [Code(KeyCode::PageDown)], A::PageDown, "page down"),
    b!(Text, [Code(KeyCode::PageUp)], A::PageUp, "page up"),
    b!(Dialog, [Code(KeyCode::Tab), Code(KeyCode::BackTab), Code(KeyCode::Left), Code(KeyCode::Right)], A::Toggle, "move between Cancel and the action (focus starts on Cancel)", "switch"),
    b!(Dialog, [Code(KeyCode::Enter)], A::Press, "press the focused button", "press"),
    b!(Dialog, [Ctrl('a')], A::ToggleScope, "act on the selected host only / on every host (plans again)", "hosts"),
    b!(Dialog, [Code(KeyCode::Esc), Ctrl('c')], A::Cancel, "cancel, always", "cancel"),
    b!(Picker, [Code(KeyCode::Up)], A::Up, "previous SHA"),
    b!(Picker, [Code(KeyCode::Down)], A::Down, "next SHA", "choose"),
    b!(Picker, [Code(KeyCode::Enter)], A::Press, "plan the highlighted SHA (or the one typed)", "plan"),
    b!(Picker, [Code(KeyCode::Esc), Ctrl('c')], A::Cancel, "cancel", "cancel"),
    b!(Help, [Char('j'), Code(KeyCode::Down)], A::Down, "scroll the help down"),
    b!(Help, [Char('k'), Code(KeyCode::Up)], A::Up, "scroll the help up"),
];

/// What typing does where it is not a key above (documented in the help, handled by inputs).
pub const TYPING: &[(&str, &str)] = &[
    (
        "typing",
        "protected environments: type the environment or short SHA to enable the action",
    ),
    ("typing", "deploy picker: filters the SHAs"),
];

/// The scopes a view consults, most specific first. Host and fleet share the action keys.
pub fn scopes_for(view: Scope) -> &'static [Scope] {
    match view {
        Scope::Fleet => &[Scope::Fleet, Scope::Global],
        Scope::Host => &[Scope::Host, Scope::Fleet, Scope::Global],
        Scope::Logs => &[Scope::Logs, Scope::Global],
        Scope::Text => &[Scope::Text, Scope::Global],
        Scope::Global => &[Scope::Global],
        Scope::Dialog => &[Scope::Dialog],
        Scope::Picker => &[Scope::Picker],
        Scope::Help => &[Scope::Help],
    }
}

/// Finds what a key does in a view. `[`/`]` and `b`/`g` share an entry; the key tells which.
pub fn lookup(view: Scope, ev: &KeyEvent, read_only: bool) -> Option<KeyAction> {
    for scope in scopes_for(view) {
        for b in KEYMAP.iter().filter(|b| b.scope == *scope) {
            if read_only && b.action.changes_hosts() {
                continue;
            }
            // In the host view `Enter`/`→` do not reopen; `/` filters only the host list.
            if view == Scope::Host
                && b.scope == Scope::Fleet
                && matches!(
                    b.action,
                    KeyAction::Open | KeyAction::Filter | KeyAction::Up | KeyAction::Down
                )
            {
                continue;
            }
            if let Some(k) = b.keys.iter().find(|k| k.matches(ev)) {
                return Some(match (b.action, k) {
                    (KeyAction::NextEnv, K::Char('[')) => KeyAction::PrevEnv,
                    (KeyAction::NextColor, K::Char('b')) => KeyAction::PrevColor,
                    (KeyAction::Pane(_), K::Char(c)) => {
                        KeyAction::Pane(u8::try_from(u32::from(*c) - u32::from('1')).unwrap_or(0))
                    }
                    (a, _) => a,
                });
            }
        }
    }
    None
}

fn keys_label(keys: &[K]) -> String {
    keys.iter().map(|k| k.label()).collect::<Vec<_>>().join(" ")
}

/// The help text, one line per binding, grouped by scope.
pub fn help_lines(read_only: bool) -> Vec<(String, Vec<(String, &'static str)>)> {
    let mut out: Vec<(String, Vec<(String, &'static str)>)> = Vec::new();
    for scope in [
        Scope::Global,
        Scope::Fleet,
        Scope::Host,
        Scope::Logs,
        Scope::Text,
        Scope::Dialog,
        Scope::Picker,
        Scope::Help,
    ] {
        let mut rows: Vec<(String, &'static str)> = KEYMAP
            .iter()
            .filter(|b| b.scope == scope && !(read_only && b.action.changes_hosts()))
            .map(|b| (keys_label(b.keys), b.help))
            .collect();
        if scope == Scope::Dialog {
            rows.push((TYPING[0].0.to_string(), TYPING[0].1));
        }
        if scope == Scope::Picker {
            rows.push((TYPING[1].0.to_string(), TYPING[1].1));
        }
        if scope == Scope::Help {
            rows.push(("any other key".to_string(), "close the help"));
        }
        let title = if scope == Scope::Fleet {
            "host list and host".to_string()
        } else {
            scope.title().to_string()
        };
        out.push((title, rows));
    }
    out
}

/// The footer: (keys, word) for every binding with a hint that applies in `view`, most
/// specific scope first, in the keymap's order.
pub fn hints(view: Scope, read_only: bool) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for scope in scopes_for(view) {
        for b in KEYMAP.iter().filter(|b| b.scope == *scope) {
            let Some(hint) = b.hint else { continue };
            if read_only && b.action.changes_hosts() {
                continue;
            }
            // On the host list, Esc only clears the filter.
            if view == Scope::Fleet && b.action == KeyAction::Back {
                continue;
            }
            // The host view does not show the host list's own keys.
            if view == Scope::Host
                && b.scope == Scope::Fleet
                && matches!(
                    b.action,
                    KeyAction::Open | KeyAction::Filter | KeyAction::Down
                )
            {
                continue;
            }
            let keys = match b.keys {
                [K::Char('j'), K::Code(KeyCode::Down)] => "↓↑".to_string(),
                [K::Char('b'), K::Char('g')] => "b/g".to_string(),
                keys => keys.first().map(|k| k.label()).unwrap_or_default(),
            };
            out.push((keys, hint));
        }
    }
    out
}
