//! The actions an operator opens from the console: each becomes an engine `Request`, planned
//! for a confirm dialog; and the views opened on a container (logs, inspect).

use super::{
    App, Confirm, Dialog, Effect, LogView, Pane, Picker, RegistryTags, TextView, View, picker,
    progress_key,
};
use crate::release::plan::Target;
use crate::release::runner::{Request, Verb};
use crate::tui::action::Progress;

impl App {
    /// The service and hosts an action from a key applies to: every host of the environment
    /// (Ctrl-A in the dialog narrows it to the selected host).
    fn action_target(&mut self) -> Option<String> {
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
        Some(service)
    }

    pub(super) fn confirm_dialog(&mut self, request: Request) -> Vec<Effect> {
        let id = self.id();
        self.dialogs
            .push(Dialog::Confirm(Box::new(Confirm::new(id, request.clone()))));
        vec![Effect::Plan { id, request }]
    }

    /// The request for `verb` on `service`, checked by the engine's rules.
    pub(super) fn request(
        &mut self,
        service: &str,
        hosts: &[String],
        verb: Verb,
    ) -> Option<Request> {
        let env = self.env_info()?.clone();
        let svc = self.services.iter().find(|s| s.name == service)?.clone();
        match Request::new(&env, &svc, hosts, verb, &self.actor) {
            Ok(r) => Some(r),
            Err(e) => {
                self.message = Some(e.to_string());
                None
            }
        }
    }

    fn open(&mut self, verb: Verb) -> Vec<Effect> {
        let Some(service) = self.action_target() else {
            return Vec::new();
        };
        match self.request(&service, &[], verb) {
            Some(r) => self.confirm_dialog(r),
            None => Vec::new(),
        }
    }

    pub fn open_rollback(&mut self, target: Option<String>) -> Vec<Effect> {
        self.open(Verb::Rollback {
            target: target.map_or(Target::Previous, Target::Ref),
        })
    }

    /// The canary's SHA of the selected service, if it is in canary on the selected host.
    pub(super) fn current_canary(&self) -> Option<String> {
        let (h, s) = self.current()?;
        h.service(&s.name)?.canary.as_ref().map(|k| k.sha.clone())
    }

    /// `P`: the confirm dialog for promoting the canary (issue 13); the engine runs it as a
    /// deploy of the canary's SHA, not watched again.
    pub fn open_promote(&mut self) -> Vec<Effect> {
        let Some(reference) = self.current_canary() else {
            self.message = Some("no canary on this service: nothing to promote".into());
            return Vec::new();
        };
        self.open(Verb::Promote { reference })
    }

    pub fn open_prune(&mut self) -> Vec<Effect> {
        let keep = self.current().map_or(5, |(_, s)| s.keep_images).max(1);
        self.open(Verb::Prune { keep })
    }

    /// `d` opens the picker; `:deploy SHA` goes straight to the dialog.
    pub fn open_deploy(&mut self, sha: Option<String>) -> Vec<Effect> {
        if let Some(reference) = sha {
            return self.open(Verb::Deploy { reference });
        }
        let Some(service) = self.action_target() else {
            return Vec::new();
        };
        let tags = self.registry_tags.get(&service);
        let list = picker::candidates(&self.env, &service, &self.hosts, &self.seen, tags);
        let note = picker::registry_note(tags);
        self.dialogs
            .push(Dialog::Picker(Box::new(Picker::new(&service, list, note))));
        // Listed afresh each time: CI pushes new SHAs while the console is open.
        vec![Effect::RegistryTags { service }]
    }

    pub(super) fn on_registry_tags(&mut self, service: String, result: RegistryTags) {
        self.registry_tags.insert(service.clone(), result);
        let tags = self.registry_tags.get(&service);
        let list = picker::candidates(&self.env, &service, &self.hosts, &self.seen, tags);
        let note = picker::registry_note(tags);
        for d in &mut self.dialogs {
            if let Dialog::Picker(p) = d
                && p.service() == service
            {
                p.refresh(list.clone(), note.clone());
            }
        }
    }

    pub(super) fn open_logs(&mut self) -> Vec<Effect> {
        let Some((h, s)) = self.current() else {
            return Vec::new();
        };
        let container = crate::state::contract::app_container(s, self.current_color());
        let host = h.name.clone();
        let id = self.id();
        self.logs = Some(LogView::new(id, &host, &container));
        self.nav.set_view(View::Logs);
        vec![Effect::Logs {
            id,
            host,
            container,
        }]
    }

    pub(super) fn open_inspect(&mut self) -> Vec<Effect> {
        let Some((h, s)) = self.current() else {
            return Vec::new();
        };
        let container = crate::state::contract::app_container(s, self.current_color());
        let host = h.name.clone();
        let id = self.id();
        self.text = Some(TextView::new(
            id,
            format!("inspect {container} on {host} (secrets redacted)"),
        ));
        self.nav.set_view(View::Text);
        vec![Effect::Inspect {
            id,
            host,
            container,
        }]
    }

    /// A confirmed action starts: its progress is shown at once.
    pub(super) fn start(&mut self, id: u64, request: Request) -> Vec<Effect> {
        let key = progress_key(&request.env, &request.service.name);
        self.progress
            .insert(key, Progress::new(id, request.clone(), self.now));
        self.nav.set_view(View::Host);
        self.nav.show_pane(Pane::Progress);
        vec![Effect::Execute { id, request }]
    }
}
