//! The dialog stack's parts: the confirm dialog (shows the runner's plans, focus starts on
//! Cancel, protected environments want a word typed), the deploy picker, and the abort and quit
//! questions. Each handles its own keys, looked up in the keymap, and says what it wants.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui_textarea::TextArea;

use super::picker::{Picker, PickerOutcome};
use crate::release::runner::{Confirmation, HostPlan, PlanError, Request};
use crate::tui::action::PlanState;
use crate::tui::keymap::{self, KeyAction, Scope};

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
    id: u64,
    request: Request,
    plan: PlanState,
    focus: Button,
    typed: TextArea<'static>,
}

impl Confirm {
    pub fn new(id: u64, request: Request) -> Self {
        Self {
            id,
            request,
            plan: PlanState::Loading,
            focus: Button::Cancel,
            typed: super::line_input("type to confirm"),
        }
    }
    pub fn id(&self) -> u64 {
        self.id
    }
    pub fn request(&self) -> &Request {
        &self.request
    }
    pub fn plan(&self) -> &PlanState {
        &self.plan
    }
    pub fn focus(&self) -> Button {
        self.focus
    }
    pub fn protected(&self) -> bool {
        self.request.protected
    }
    pub fn typed(&self) -> &TextArea<'static> {
        &self.typed
    }

    pub fn planned(&mut self, result: Result<Vec<HostPlan>, Arc<PlanError>>) {
        self.plan = match result {
            Ok(p) => PlanState::Ready(p),
            Err(e) => PlanState::Failed(e),
        };
    }

    /// What confirms, by the engine's rule (the same as the CLI's).
    pub fn confirmation(&self) -> Confirmation {
        match &self.plan {
            PlanState::Ready(p) => self.request.confirmation(p),
            _ => self.request.confirmation(&[]),
        }
    }

    /// The action button works: the plan is ready, changes something, and (in a protected
    /// environment) the right word is typed.
    pub fn armed(&self) -> bool {
        if !matches!(self.plan, PlanState::Ready(_)) || self.plan.is_noop() {
            return false;
        }
        match self.confirmation() {
            // The button is the plain yes.
            Confirmation::Plain => true,
            rule => rule.accepts(&self.typed.lines().join("")),
        }
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

/// What a key did to the top dialog.
pub enum DialogOutcome {
    Stay,
    Close,
    Message(String),
    /// The confirm dialog `id` was confirmed: run its plan.
    Confirmed {
        id: u64,
        request: Request,
    },
    /// The confirm dialog wants the other host scope (selected host only / every host).
    Rescope {
        request: Request,
    },
    /// The picker chose a SHA.
    Pick(String),
    Abort {
        id: u64,
    },
    QuitAndAbort,
}

impl Dialog {
    pub fn on_key(&mut self, key: KeyEvent) -> DialogOutcome {
        if let Dialog::Picker(p) = self {
            return match p.on_key(key) {
                PickerOutcome::Stay => DialogOutcome::Stay,
                PickerOutcome::Cancel => DialogOutcome::Close,
                PickerOutcome::Pick(sha) => DialogOutcome::Pick(sha),
                PickerOutcome::Nothing => {
                    DialogOutcome::Message("no SHA matches; type a SHA or tag".into())
                }
            };
        }
        let action = keymap::lookup(Scope::Dialog, &key, false);
        if action == Some(KeyAction::Cancel) {
            return DialogOutcome::Close;
        }
        match self {
            Dialog::Picker(_) => DialogOutcome::Stay,
            Dialog::Confirm(c) => match action {
                Some(KeyAction::Toggle) => {
                    c.focus = c.focus.toggle();
                    DialogOutcome::Stay
                }
                Some(KeyAction::ToggleScope) => DialogOutcome::Rescope {
                    request: c.request.clone(),
                },
                Some(KeyAction::Press) if c.focus == Button::Cancel => DialogOutcome::Close,
                Some(KeyAction::Press) if !c.armed() => {
                    DialogOutcome::Message(match c.confirmation() {
                        rule @ Confirmation::Typed { .. } => {
                            format!("type {} to confirm", rule.words_text())
                        }
                        Confirmation::Plain => "nothing to confirm yet".into(),
                    })
                }
                Some(KeyAction::Press) => DialogOutcome::Confirmed {
                    id: c.id,
                    request: c.request.clone(),
                },
                _ => {
                    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
                    if c.protected()
                        && !ctrl
                        && matches!(
                            key.code,
                            KeyCode::Char(_) | KeyCode::Backspace | KeyCode::Delete
                        )
                    {
                        c.typed.input(key);
                    }
                    DialogOutcome::Stay
                }
            },
            Dialog::Abort { id, focus, .. } => match action {
                Some(KeyAction::Toggle) => {
                    *focus = focus.toggle();
                    DialogOutcome::Stay
                }
                Some(KeyAction::Press) if *focus == Button::Confirm => {
                    DialogOutcome::Abort { id: *id }
                }
                Some(KeyAction::Press) => DialogOutcome::Close,
                _ => DialogOutcome::Stay,
            },
            Dialog::QuitRunning { focus } => match action {
                Some(KeyAction::Toggle) => {
                    *focus = focus.toggle();
                    DialogOutcome::Stay
                }
                Some(KeyAction::Press) if *focus == Button::Confirm => DialogOutcome::QuitAndAbort,
                Some(KeyAction::Press) => DialogOutcome::Close,
                _ => DialogOutcome::Stay,
            },
        }
    }
}
