//! What an operator asks the engine to do, as a value both faces build, and the two rules that
//! belong to the ask rather than to a face: the CLI command it equals, and what confirms it.

use std::time::Duration;

use crate::config::{Environment, Service};
use crate::release::plan::{Target, validate_ref};

use super::PlanError;
use super::plan::HostPlan;

/// The action of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    Deploy {
        reference: String,
    },
    /// `deploy --force`: replace the container even when the SHA already serves.
    Redeploy {
        reference: String,
    },
    Rollback {
        target: Target,
    },
    Prune {
        keep: usize,
    },
    Unlock,
}

impl Verb {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verb::Deploy { .. } => "deploy",
            Verb::Redeploy { .. } => "redeploy",
            Verb::Rollback { .. } => "rollback",
            Verb::Prune { .. } => "prune",
            Verb::Unlock => "unlock",
        }
    }

    /// Deploy, redeploy and rollback go through the release engine (and the webhook).
    pub fn is_release(&self) -> bool {
        matches!(
            self,
            Verb::Deploy { .. } | Verb::Redeploy { .. } | Verb::Rollback { .. }
        )
    }

    /// The label of the button that runs it.
    pub fn button(&self) -> &'static str {
        match self {
            Verb::Deploy { .. } => "Deploy",
            Verb::Redeploy { .. } => "Redeploy",
            Verb::Rollback { .. } => "Rollback",
            Verb::Prune { .. } => "Prune",
            Verb::Unlock => "Unlock",
        }
    }
}

/// An environment as a request needs it (and the console shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvInfo {
    pub name: String,
    pub protected: bool,
    pub read_only: bool,
    pub hosts: Vec<String>,
}

impl From<&Environment> for EnvInfo {
    fn from(e: &Environment) -> Self {
        EnvInfo {
            name: e.name.clone(),
            protected: e.protected,
            read_only: e.read_only,
            hosts: e.hosts.iter().map(|h| h.name.clone()).collect(),
        }
    }
}

/// One ask: which environment, service and hosts, and what to do. Pure data, no connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub env: String,
    /// The environment wants the operator to type what confirms (see [`Confirmation`]).
    pub protected: bool,
    /// Why nothing may change (`--read-only`, or the environment is read-only); the run refuses.
    pub read_only: Option<String>,
    pub service: Service,
    /// The chosen hosts, in the order they run.
    pub hosts: Vec<String>,
    /// Every host of the environment is chosen (the equivalent command names none).
    pub all_hosts: bool,
    pub verb: Verb,
    pub actor: String,
    pub lock_wait: Duration,
    /// Overrides the service's health timeout.
    pub health_timeout: Option<Duration>,
}

impl Request {
    /// A request on `hosts` of `env` (every host when empty), checked: the hosts exist and a
    /// reference is a SHA or tag.
    pub fn new(
        env: &EnvInfo,
        service: &Service,
        hosts: &[String],
        verb: Verb,
        actor: &str,
    ) -> Result<Request, PlanError> {
        match &verb {
            Verb::Deploy { reference }
            | Verb::Redeploy { reference }
            | Verb::Rollback {
                target: Target::Ref(reference),
            } => validate_ref(reference).map_err(|message| PlanError::BadRef { message })?,
            _ => {}
        }
        let known = &env.hosts;
        for h in hosts {
            if !known.contains(h) {
                return Err(PlanError::UnknownHost {
                    host: h.clone(),
                    env: env.name.clone(),
                    known: known.join(", "),
                });
            }
        }
        let chosen: Vec<String> = if hosts.is_empty() {
            known.clone()
        } else {
            // The environment's order, whatever order the flags came in.
            known
                .iter()
                .filter(|k| hosts.contains(k))
                .cloned()
                .collect()
        };
        Ok(Request {
            env: env.name.clone(),
            protected: env.protected,
            read_only: env
                .read_only
                .then(|| format!("environment `{}` is read_only in the config", env.name)),
            service: service.clone(),
            all_hosts: chosen.len() == known.len(),
            hosts: chosen,
            verb,
            actor: actor.to_string(),
            lock_wait: Duration::ZERO,
            health_timeout: None,
        })
    }

    /// A title: `Deploy a000002 of api in dev`.
    pub fn title(&self) -> String {
        let what = match &self.verb {
            Verb::Deploy { reference } => format!("Deploy {reference} of"),
            Verb::Redeploy { reference } => format!("Redeploy {reference} of"),
            Verb::Rollback {
                target: Target::Previous,
            } => "Roll back".to_string(),
            Verb::Rollback {
                target: Target::Ref(r),
            } => format!("Roll back to {r}:"),
            Verb::Prune { .. } => "Prune images of".to_string(),
            Verb::Unlock => "Unlock".to_string(),
        };
        let on = if self.all_hosts {
            String::new()
        } else {
            format!(" on {}", self.hosts.join(", "))
        };
        format!("{what} {} in {}{on}", self.service.name, self.env)
    }

    /// The CLI command this request equals, so the CLI is learnable from the console and a
    /// refused CLI prompt can say what to run instead. The one place it is spelt.
    pub fn equivalent(&self) -> String {
        let what = match &self.verb {
            Verb::Deploy { reference } => format!("deploy {reference}"),
            Verb::Redeploy { reference } => format!("deploy --force {reference}"),
            Verb::Rollback {
                target: Target::Previous,
            } => "rollback".to_string(),
            Verb::Rollback {
                target: Target::Ref(r),
            } => format!("rollback {r}"),
            Verb::Prune { keep } => format!("prune --keep {keep}"),
            Verb::Unlock => "unlock".to_string(),
        };
        let hosts: String = if self.all_hosts {
            String::new()
        } else {
            self.hosts.iter().map(|h| format!(" --host {h}")).collect()
        };
        format!(
            "deckhand {what} --env {} --service {}{hosts}",
            self.env, self.service.name
        )
    }

    /// What confirms this request once it is planned.
    pub fn confirmation(&self, plans: &[HostPlan]) -> Confirmation {
        if !self.protected {
            return Confirmation::Plain;
        }
        let mut words = vec![self.env.clone()];
        for p in plans {
            if let HostPlan::Release(p) = p {
                let short: String = p.to_sha.chars().take(7).collect();
                if !words.contains(&short) {
                    words.push(short);
                }
            }
        }
        Confirmation::Typed { words }
    }
}

/// The protected-environment rule, the same in both faces: in a protected environment the
/// operator types the environment's name or the target's short SHA (what they mean to change);
/// elsewhere a plain yes (the CLI's `y`, the console's button) is enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    Plain,
    Typed { words: Vec<String> },
}

impl Confirmation {
    /// Whether `typed` confirms. For `Plain`, the CLI's `y`/`yes`.
    pub fn accepts(&self, typed: &str) -> bool {
        let typed = typed.trim();
        match self {
            Confirmation::Plain => matches!(typed, "y" | "Y" | "yes" | "YES" | "Yes"),
            Confirmation::Typed { words } => !typed.is_empty() && words.iter().any(|w| w == typed),
        }
    }

    /// `` `staging` or `a000002` ``, for prompts.
    pub fn words_text(&self) -> String {
        match self {
            Confirmation::Plain => "`y`".to_string(),
            Confirmation::Typed { words } => words
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }
}
