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
    /// `promote`: a deploy of the release in canary (its SHA), which takes all traffic and
    /// stops the stable color (issue 13).
    Promote {
        reference: String,
    },
    Prune {
        keep: usize,
    },
    /// Removes the lock the plan showed. A live (heartbeating) lock is refused unless `force`
    /// (audited with both identities, see `lock::unlock`).
    Unlock {
        force: bool,
    },
}

impl Verb {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verb::Deploy { .. } => "deploy",
            Verb::Redeploy { .. } => "redeploy",
            Verb::Rollback { .. } => "rollback",
            Verb::Promote { .. } => "promote",
            Verb::Prune { .. } => "prune",
            Verb::Unlock { .. } => "unlock",
        }
    }

    /// Deploy, redeploy and rollback go through the release engine (and the webhook).
    pub fn is_release(&self) -> bool {
        matches!(
            self,
            Verb::Deploy { .. }
                | Verb::Redeploy { .. }
                | Verb::Rollback { .. }
                | Verb::Promote { .. }
        )
    }

    /// The label of the button that runs it.
    pub fn button(&self) -> &'static str {
        match self {
            Verb::Deploy { .. } => "Deploy",
            Verb::Redeploy { .. } => "Redeploy",
            Verb::Rollback { .. } => "Rollback",
            Verb::Promote { .. } => "Promote",
            Verb::Prune { .. } => "Prune",
            Verb::Unlock { .. } => "Unlock",
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
    /// Take over a stale lock (or one whose process is gone) instead of refusing; audited
    /// with whose lock it was.
    pub take_over_stale: bool,
    /// The watch window after the switch (issue 13): `None` is the service's `watch` for a
    /// deploy and none for a rollback or promote; zero turns it off.
    pub watch: Option<Duration>,
    /// Deploy as a canary with this share (1..=99 %) instead of a full switch.
    pub canary: Option<u8>,
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
            | Verb::Promote { reference }
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
            take_over_stale: false,
            watch: None,
            canary: None,
        })
    }

    /// The same release again from `host` on (the hosts before it are done), taking over the
    /// stale lock that stopped it; the equivalent command says `--take-over-stale`.
    pub fn taking_over_from(&self, host: &str) -> Request {
        let mut r = self.clone();
        if let Some(i) = r.hosts.iter().position(|h| h == host) {
            r.hosts.drain(..i);
            r.all_hosts = r.all_hosts && i == 0;
        }
        r.take_over_stale = true;
        r
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
            Verb::Promote { reference } => format!("Promote canary {reference} of"),
            Verb::Prune { .. } => "Prune images of".to_string(),
            Verb::Unlock { .. } => "Unlock".to_string(),
        };
        let on = if self.all_hosts {
            String::new()
        } else {
            format!(" on {}", self.hosts.join(", "))
        };
        let take_over = if self.take_over_stale {
            ", taking over the stale lock"
        } else {
            ""
        };
        format!(
            "{what} {} in {}{on}{take_over}",
            self.service.name, self.env
        )
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
            Verb::Promote { .. } => "promote".to_string(),
            Verb::Prune { keep } => format!("prune --keep {keep}"),
            Verb::Unlock { force: false } => "unlock".to_string(),
            Verb::Unlock { force: true } => "unlock --force".to_string(),
        };
        let hosts: String = if self.all_hosts {
            String::new()
        } else {
            self.hosts.iter().map(|h| format!(" --host {h}")).collect()
        };
        let take_over = if self.take_over_stale && self.verb.is_release() {
            " --take-over-stale"
        } else {
            ""
        };
        let canary = match (&self.verb, self.canary) {
            (Verb::Deploy { .. } | Verb::Redeploy { .. }, Some(p)) => format!(" --canary {p}"),
            _ => String::new(),
        };
        let watch = match self.watch {
            Some(w) if self.verb.is_release() => format!(" --watch {}", duration_arg(w)),
            _ => String::new(),
        };
        format!(
            "deckhand {what} --env {} --service {}{hosts}{canary}{watch}{take_over}",
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

/// A duration as `--watch` reads it back: `30s`, or `500ms` below whole seconds.
fn duration_arg(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::DeployPlan;
    use crate::state::Color;

    fn service() -> Service {
        let cfg = crate::config::load_str(
            "[[service]]\nname = \"api\"\nimage = \"r/acme/api\"\napp_port = 3000\npublic_port = 3001\nproxy_image = \"nginx\"\n\n[env.dev]\nhosts = [\"local\"]\n",
            std::path::Path::new("/tmp/deckhand.toml"),
        )
        .expect("config");
        cfg.services[0].clone()
    }

    fn env(protected: bool) -> EnvInfo {
        EnvInfo {
            name: "staging".into(),
            protected,
            read_only: false,
            hosts: vec!["s-1".into(), "s-2".into()],
        }
    }

    fn release_plan(to_sha: &str) -> HostPlan {
        HostPlan::Release(DeployPlan {
            action: crate::release::plan::Action::Deploy,
            host: "s-1".into(),
            service: "api".into(),
            from_color: Some(Color::Blue),
            from_sha: Some("a000001".into()),
            to_color: Color::Green,
            to_sha: to_sha.into(),
            image: format!("r/acme/api:{to_sha}"),
            reuse_existing: false,
            noop: false,
            finish_only: false,
            create_proxy: false,
            proxy_change: None,
            steps: Vec::new(),
            image_present: false,
            note: None,
        })
    }

    #[test]
    fn the_equivalent_command_names_hosts_only_when_some_are_chosen() {
        let svc = service();
        let verb = |v: Verb| Request::new(&env(false), &svc, &[], v, "me").expect("request");
        let cases = [
            (
                Verb::Deploy {
                    reference: "a000002".into(),
                },
                "deckhand deploy a000002 --env staging --service api",
            ),
            (
                Verb::Redeploy {
                    reference: "a000002".into(),
                },
                "deckhand deploy --force a000002 --env staging --service api",
            ),
            (
                Verb::Rollback {
                    target: Target::Previous,
                },
                "deckhand rollback --env staging --service api",
            ),
            (
                Verb::Rollback {
                    target: Target::Ref("a000001".into()),
                },
                "deckhand rollback a000001 --env staging --service api",
            ),
            (
                Verb::Prune { keep: 3 },
                "deckhand prune --keep 3 --env staging --service api",
            ),
            (
                Verb::Unlock { force: false },
                "deckhand unlock --env staging --service api",
            ),
            (
                Verb::Unlock { force: true },
                "deckhand unlock --force --env staging --service api",
            ),
        ];
        for (v, want) in cases {
            assert_eq!(verb(v).equivalent(), want);
        }
        let one = Request::new(
            &env(false),
            &svc,
            &["s-2".into()],
            Verb::Unlock { force: false },
            "me",
        )
        .expect("request");
        assert_eq!(
            one.equivalent(),
            "deckhand unlock --env staging --service api --host s-2"
        );
        assert!(!one.all_hosts);
        assert!(one.title().ends_with("on s-2"), "{}", one.title());
    }

    #[test]
    fn the_equivalent_command_spells_the_watch_the_canary_and_promote() {
        let svc = service();
        let mut r = Request::new(
            &env(false),
            &svc,
            &[],
            Verb::Deploy {
                reference: "a000002".into(),
            },
            "me",
        )
        .expect("request");
        r.canary = Some(25);
        r.watch = Some(Duration::from_secs(45));
        assert_eq!(
            r.equivalent(),
            "deckhand deploy a000002 --env staging --service api --canary 25 --watch 45s"
        );
        r.verb = Verb::Rollback {
            target: Target::Previous,
        };
        r.watch = Some(Duration::from_millis(1500));
        assert_eq!(
            r.equivalent(),
            "deckhand rollback --env staging --service api --watch 1500ms"
        );
        r.verb = Verb::Promote {
            reference: "a000002".into(),
        };
        r.watch = None;
        assert_eq!(
            r.equivalent(),
            "deckhand promote --env staging --service api"
        );
        assert_eq!(r.title(), "Promote canary a000002 of api in staging");
        assert!(r.verb.is_release());
    }

    #[test]
    fn a_request_refuses_unknown_hosts_and_bad_refs_and_keeps_the_env_order() {
        let svc = service();
        let e = Request::new(
            &env(false),
            &svc,
            &["nope".into()],
            Verb::Unlock { force: false },
            "me",
        )
        .expect_err("unknown host");
        assert_eq!(
            e.to_string(),
            "host `nope` is not in environment `staging` (hosts: s-1, s-2)"
        );
        let e = Request::new(
            &env(false),
            &svc,
            &[],
            Verb::Deploy {
                reference: "x;rm -rf /".into(),
            },
            "me",
        )
        .expect_err("bad ref");
        assert!(e.to_string().contains("neither a git SHA"), "{e}");
        let r = Request::new(
            &env(false),
            &svc,
            &["s-2".into(), "s-1".into()],
            Verb::Unlock { force: false },
            "me",
        )
        .expect("request");
        assert_eq!(r.hosts, ["s-1", "s-2"]);
        assert!(r.all_hosts);
    }

    #[test]
    fn a_protected_environment_wants_its_name_or_the_short_sha_typed() {
        let svc = service();
        let verb = Verb::Deploy {
            reference: "a000002".into(),
        };
        let plain = Request::new(&env(false), &svc, &[], verb.clone(), "me").expect("request");
        let rule = plain.confirmation(&[release_plan("a000002")]);
        assert_eq!(rule, Confirmation::Plain);
        assert!(rule.accepts("y\n") && rule.accepts("yes") && !rule.accepts("staging"));
        let protected = Request::new(&env(true), &svc, &[], verb, "me").expect("request");
        let rule = protected.confirmation(&[
            release_plan("a0000021234567890"),
            release_plan("a0000021234567890"),
        ]);
        assert_eq!(
            rule,
            Confirmation::Typed {
                words: vec!["staging".into(), "a000002".into()]
            }
        );
        assert!(rule.accepts("staging\n"));
        assert!(rule.accepts(" a000002 "));
        assert!(
            !rule.accepts("y"),
            "a plain yes does not confirm a protected env"
        );
        assert!(!rule.accepts("dev") && !rule.accepts(""));
        assert_eq!(rule.words_text(), "`staging` or `a000002`");
    }

    #[test]
    fn a_take_over_offer_reruns_from_the_stopped_host_and_says_so() {
        let svc = service();
        let r = Request::new(
            &env(false),
            &svc,
            &[],
            Verb::Deploy {
                reference: "a000002".into(),
            },
            "me",
        )
        .expect("request");
        let again = r.taking_over_from("s-2");
        assert!(again.take_over_stale);
        assert_eq!(again.hosts, ["s-2".to_string()]);
        assert_eq!(
            again.equivalent(),
            "deckhand deploy a000002 --env staging --service api --host s-2 --take-over-stale"
        );
        assert!(again.title().ends_with("taking over the stale lock"));
        // From the first host: still the whole environment.
        let all = r.taking_over_from("s-1");
        assert!(all.all_hosts);
        assert_eq!(
            all.equivalent(),
            "deckhand deploy a000002 --env staging --service api --take-over-stale"
        );
    }
}
