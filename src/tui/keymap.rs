//! The one keymap: dispatch looks keys up here and `?` help is generated from it, so the help
//! can never disagree with what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a binding applies. `Global` applies everywhere no dialog or input has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Fleet,
    Host,
    Logs,
    Text,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Global => "everywhere",
            Scope::Fleet => "host list",
            Scope::Host => "host",
            Scope::Logs => "logs",
            Scope::Text => "inspect",
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
}

use K::{Char, Code, Ctrl};

#[rustfmt::skip]
pub const KEYMAP: &[Binding] = &[
    Binding { scope: Scope::Global, keys: &[Char('q')], action: KeyAction::Quit, help: "quit (asks while an action runs)" },
    Binding { scope: Scope::Global, keys: &[Char('?')], action: KeyAction::Help, help: "this help" },
    Binding { scope: Scope::Global, keys: &[Char(':')], action: KeyAction::Command, help: "command: env NAME, deploy SHA, rollback [SHA], prune, quit" },
    Binding { scope: Scope::Global, keys: &[Ctrl('c')], action: KeyAction::Interrupt, help: "abort the running action (asks), else quit" },
    Binding { scope: Scope::Global, keys: &[Char('['), Char(']')], action: KeyAction::NextEnv, help: "previous / next environment" },
    Binding { scope: Scope::Global, keys: &[Code(KeyCode::Esc), Char('h'), Code(KeyCode::Left)], action: KeyAction::Back, help: "back" },
    Binding { scope: Scope::Fleet, keys: &[Char('j'), Code(KeyCode::Down)], action: KeyAction::Down, help: "next host" },
    Binding { scope: Scope::Fleet, keys: &[Char('k'), Code(KeyCode::Up)], action: KeyAction::Up, help: "previous host" },
    Binding { scope: Scope::Fleet, keys: &[Code(KeyCode::Enter), Code(KeyCode::Right)], action: KeyAction::Open, help: "open the host" },
    Binding { scope: Scope::Fleet, keys: &[Char('/')], action: KeyAction::Filter, help: "filter hosts" },
    Binding { scope: Scope::Host, keys: &[Code(KeyCode::Tab)], action: KeyAction::NextPane, help: "next pane (colors, images, metrics, audit, progress)" },
    Binding { scope: Scope::Host, keys: &[Code(KeyCode::BackTab)], action: KeyAction::PrevPane, help: "previous pane" },
    Binding { scope: Scope::Host, keys: &[Char('j'), Code(KeyCode::Down)], action: KeyAction::Down, help: "scroll down" },
    Binding { scope: Scope::Host, keys: &[Char('k'), Code(KeyCode::Up)], action: KeyAction::Up, help: "scroll up" },
    Binding { scope: Scope::Host, keys: &[Char('b'), Char('g')], action: KeyAction::NextColor, help: "select the blue / green container" },
    Binding { scope: Scope::Host, keys: &[Char('n')], action: KeyAction::NextService, help: "next service on this host" },
    Binding { scope: Scope::Fleet, keys: &[Char('d')], action: KeyAction::Deploy, help: "deploy a SHA (picker)" },
    Binding { scope: Scope::Fleet, keys: &[Char('r')], action: KeyAction::Rollback, help: "roll back to the previous release" },
    Binding { scope: Scope::Fleet, keys: &[Char('P')], action: KeyAction::Promote, help: "promote the canary (all traffic to it)" },
    Binding { scope: Scope::Fleet, keys: &[Char('A')], action: KeyAction::AbortCanary, help: "abort the canary (rollback)" },
    Binding { scope: Scope::Fleet, keys: &[Char('p')], action: KeyAction::Prune, help: "prune old images (shows the dry run first)" },
    Binding { scope: Scope::Fleet, keys: &[Char('l')], action: KeyAction::Logs, help: "stream the selected container's logs" },
    Binding { scope: Scope::Fleet, keys: &[Char('i')], action: KeyAction::Inspect, help: "inspect the container (secrets redacted)" },
    Binding { scope: Scope::Fleet, keys: &[Char('s')], action: KeyAction::Shell, help: "shell in the container (over SSH)" },
    Binding { scope: Scope::Logs, keys: &[Char('f')], action: KeyAction::ToggleFollow, help: "follow on / off" },
    Binding { scope: Scope::Logs, keys: &[Char('t')], action: KeyAction::ToggleTimestamps, help: "timestamps on / off" },
    Binding { scope: Scope::Logs, keys: &[Char('/')], action: KeyAction::Filter, help: "search" },
    Binding { scope: Scope::Logs, keys: &[Char('j'), Code(KeyCode::Down)], action: KeyAction::Down, help: "scroll down" },
    Binding { scope: Scope::Logs, keys: &[Char('k'), Code(KeyCode::Up)], action: KeyAction::Up, help: "scroll up" },
    Binding { scope: Scope::Logs, keys: &[Code(KeyCode::PageDown)], action: KeyAction::PageDown, help: "page down" },
    Binding { scope: Scope::Logs, keys: &[Code(KeyCode::PageUp)], action: KeyAction::PageUp, help: "page up" },
    Binding { scope: Scope::Logs, keys: &[Char('G'), Code(KeyCode::End)], action: KeyAction::Bottom, help: "end (and follow)" },
    Binding { scope: Scope::Logs, keys: &[Code(KeyCode::Home)], action: KeyAction::Top, help: "start" },
    Binding { scope: Scope::Text, keys: &[Char('j'), Code(KeyCode::Down)], action: KeyAction::Down, help: "scroll down" },
    Binding { scope: Scope::Text, keys: &[Char('k'), Code(KeyCode::Up)], action: KeyAction::Up, help: "scroll up" },
    Binding { scope: Scope::Text, keys: &[Code(KeyCode::PageDown)], action: KeyAction::PageDown, help: "page down" },
    Binding { scope: Scope::Text, keys: &[Code(KeyCode::PageUp)], action: KeyAction::PageUp, help: "page up" },
];

/// Keys that dialogs handle themselves (documented in the help, not dispatched through the map).
pub const DIALOG_KEYS: &[(&str, &str)] = &[
    (
        "Tab ← →",
        "move between Cancel and the action (focus starts on Cancel)",
    ),
    ("Enter", "press the focused button"),
    (
        "typing",
        "protected environments: type the environment or short SHA to enable the action",
    ),
    ("Esc", "cancel, always"),
];

/// The scopes a view consults, most specific first. Host and fleet share the action keys.
pub fn scopes_for(view: Scope) -> &'static [Scope] {
    match view {
        Scope::Fleet => &[Scope::Fleet, Scope::Global],
        Scope::Host => &[Scope::Host, Scope::Fleet, Scope::Global],
        Scope::Logs => &[Scope::Logs, Scope::Global],
        Scope::Text => &[Scope::Text, Scope::Global],
        Scope::Global => &[Scope::Global],
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
                    (a, _) => a,
                });
            }
        }
    }
    None
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
    ] {
        let rows: Vec<(String, &'static str)> = KEYMAP
            .iter()
            .filter(|b| b.scope == scope && !(read_only && b.action.changes_hosts()))
            .map(|b| {
                (
                    b.keys
                        .iter()
                        .map(|k| k.label())
                        .collect::<Vec<_>>()
                        .join(" "),
                    b.help,
                )
            })
            .collect();
        let title = if scope == Scope::Fleet {
            "host list and host".to_string()
        } else {
            scope.title().to_string()
        };
        out.push((title, rows));
    }
    out.push((
        "dialogs".to_string(),
        DIALOG_KEYS
            .iter()
            .map(|(k, h)| ((*k).to_string(), *h))
            .collect(),
    ));
    out
}
