//! The deploy picker: SHAs the operator can deploy, where each runs now, filtered as they type.

use std::collections::BTreeMap;
use std::sync::Arc;

use crossterm::event::KeyEvent;
use ratatui_textarea::TextArea;

use crate::release::ledger::{self, Ledger, PickerMark};
use crate::release::registry::RegistryError;
use crate::state::Color;
use crate::tui::keymap::{self, KeyAction, Scope};
use crate::tui::model::HostView;

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
    /// From the hosts' release ledgers: known good, backed out of, and hosts without its image.
    pub mark: PickerMark,
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

/// Tags of a service's registry repository, as last listed (or why not).
pub type RegistryTags = Result<Vec<String>, Arc<RegistryError>>;

#[derive(Debug, Clone)]
pub struct Picker {
    service: String,
    input: TextArea<'static>,
    selected: usize,
    candidates: Vec<Candidate>,
    /// What the registry listing said: a count, "listing…", or why it failed.
    registry_note: String,
}

/// What a key did to the picker.
pub enum PickerOutcome {
    Stay,
    Cancel,
    /// Plan a deploy of this SHA.
    Pick(String),
    /// Enter with nothing to pick.
    Nothing,
}

impl Picker {
    pub fn new(service: &str, candidates: Vec<Candidate>, registry_note: String) -> Self {
        Self {
            service: service.to_string(),
            input: super::line_input("type to filter SHAs"),
            selected: 0,
            candidates,
            registry_note,
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }
    pub fn input(&self) -> &TextArea<'static> {
        &self.input
    }
    pub fn selected(&self) -> usize {
        self.selected
    }
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }
    pub fn registry_note(&self) -> &str {
        &self.registry_note
    }

    pub fn refresh(&mut self, candidates: Vec<Candidate>, note: String) {
        self.candidates = candidates;
        self.registry_note = note;
        self.selected = self.selected.min(self.visible().len().saturating_sub(1));
    }

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

    pub fn on_key(&mut self, key: KeyEvent) -> PickerOutcome {
        match keymap::lookup(Scope::Picker, &key, false) {
            Some(KeyAction::Cancel) => PickerOutcome::Cancel,
            Some(KeyAction::Up) => {
                self.selected = self.selected.saturating_sub(1);
                PickerOutcome::Stay
            }
            Some(KeyAction::Down) => {
                let n = self.visible().len();
                self.selected = (self.selected + 1).min(n.saturating_sub(1));
                PickerOutcome::Stay
            }
            Some(KeyAction::Press) => self
                .choice()
                .map_or(PickerOutcome::Nothing, PickerOutcome::Pick),
            _ => {
                self.input.input(key);
                self.selected = 0;
                PickerOutcome::Stay
            }
        }
    }
}

pub fn registry_note(tags: Option<&RegistryTags>) -> String {
    match tags {
        None => "registry: listing tags…".to_string(),
        Some(Ok(tags)) => format!("registry: {} tag(s)", tags.len()),
        Some(Err(e)) => format!("registry: {e}"),
    }
}

/// SHAs the picker offers: the registry's tags, images on this environment's hosts and SHAs
/// seen running in other environments, newest first, each with where it runs now.
pub fn candidates(
    env: &str,
    service: &str,
    hosts: &[HostView],
    seen: &BTreeMap<String, Vec<SeenRun>>,
    tags: Option<&RegistryTags>,
) -> Vec<Candidate> {
    let mut by_sha: BTreeMap<String, Candidate> = BTreeMap::new();
    fn entry<'m>(m: &'m mut BTreeMap<String, Candidate>, sha: &str) -> &'m mut Candidate {
        m.entry(sha.to_string()).or_insert_with(|| Candidate {
            sha: sha.to_string(),
            created: String::new(),
            created_unix: i64::MIN,
            size_bytes: 0,
            runs: Vec::new(),
            in_registry: false,
            mark: PickerMark::default(),
        })
    }
    if let Some(Ok(tags)) = tags {
        for t in tags {
            entry(&mut by_sha, t).in_registry = true;
        }
    }
    for h in hosts {
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
                    "{env}/{} {color}{}",
                    h.name,
                    if live { " LIVE" } else { "" }
                ));
            }
        }
    }
    for (other, runs) in seen {
        if other == env {
            continue;
        }
        for r in runs.iter().filter(|r| r.service == service) {
            entry(&mut by_sha, &r.sha).runs.push(format!(
                "{other}/{} {}{}",
                r.host,
                r.color,
                if r.live { " LIVE" } else { "" }
            ));
        }
    }
    // Each host that has the service, with its ledger (from the same snapshot) and the images
    // it retains (a container's SHA counts: its image is there).
    let empty = Ledger::default();
    let ledgers: Vec<(String, &Ledger, Vec<String>)> = hosts
        .iter()
        .filter_map(|h| {
            let s = h.service(service)?;
            let mut tags: Vec<String> = s.images.iter().map(|i| i.tag.clone()).collect();
            tags.extend(
                Color::BOTH
                    .iter()
                    .filter_map(|c| s.color(*c).and_then(|cs| cs.sha.clone())),
            );
            Some((h.name.clone(), h.ledger(service).unwrap_or(&empty), tags))
        })
        .collect();
    let mut out: Vec<Candidate> = by_sha.into_values().collect();
    for c in &mut out {
        c.runs.sort();
        c.runs.dedup();
        c.mark = ledger::picker_mark(&c.sha, &ledgers);
    }
    out.sort_by(|a, b| b.created_unix.cmp(&a.created_unix).then(a.sha.cmp(&b.sha)));
    out
}
