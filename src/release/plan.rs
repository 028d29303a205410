//! Deciding what an action will do, from what the host runs: a pure function of state.
//!
//! The confirmation dialog shows a plan and the executor runs exactly that plan, so what an
//! operator approved is what happens.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::Step;
use super::ledger::Ledger;
use crate::config::Service;
use crate::state::{Color, ContainerState, ServiceStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Deploy,
    Rollback,
    /// A deploy that replaces the container even when the SHA already serves (`deploy --force`):
    /// how new secrets from the host's env file reach the app.
    Redeploy,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::Rollback => "rollback",
            Action::Redeploy => "redeploy",
        }
    }
}

/// What to roll back or deploy to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Ref(String),
    Previous,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeployPlan {
    pub action: Action,
    pub host: String,
    pub service: String,
    pub from_color: Option<Color>,
    pub from_sha: Option<String>,
    pub to_color: Color,
    pub to_sha: String,
    pub image: String,
    /// The target color's container already holds the target release: start it, no pull, no create.
    pub reuse_existing: bool,
    /// The target already serves and is healthy: nothing to change.
    pub noop: bool,
    /// The target already serves but the other color still runs (a deploy was interrupted
    /// after its switch): only drain and stop the other color.
    pub finish_only: bool,
    /// No proxy yet (first deploy): create it after the new color is healthy.
    pub create_proxy: bool,
    /// The proxy differs from the config (image, port, the earlier nginx proxy): it is
    /// replaced at the proxy step, and this says why.
    pub proxy_change: Option<String>,
    pub steps: Vec<Step>,
    /// The host has the target image (a new container needs no pull).
    pub image_present: bool,
    /// Something the operator should know about how the target was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What the operator confirmed, pinned for the run under the lock: the target and what serves
/// before it. If the host no longer matches, the run stops and says what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    pub action: Action,
    pub to_sha: String,
    pub from_sha: Option<String>,
    pub from_color: Option<Color>,
    /// Whether what serves before must still be what the operator saw. A person who confirmed
    /// a plan pins it; `--yes` (CI, often queued with `--lock-wait` behind another deploy)
    /// pins only the target.
    pub check_from: bool,
}

impl Pinned {
    /// Pins only the target (for runs nobody confirmed interactively).
    pub fn target_only(mut self) -> Pinned {
        self.check_from = false;
        self
    }

    /// What differs between the confirmed plan and the plan made under the lock, in words.
    pub fn differences(&self, now: &DeployPlan) -> Option<String> {
        let show = |c: Option<Color>, s: &Option<String>| match (c, s) {
            (Some(c), Some(s)) => format!("{s} ({c})"),
            (Some(c), None) => format!("? ({c})"),
            _ => "nothing".to_string(),
        };
        let mut what = Vec::new();
        if now.to_sha != self.to_sha {
            what.push(format!(
                "the target was {} and is now {}",
                self.to_sha, now.to_sha
            ));
        }
        if self.check_from && (now.from_sha != self.from_sha || now.from_color != self.from_color) {
            what.push(format!(
                "{} served when you confirmed, now {} does",
                show(self.from_color, &self.from_sha),
                show(now.from_color, &now.from_sha)
            ));
        }
        (!what.is_empty()).then(|| what.join("; "))
    }
}

impl DeployPlan {
    /// The expectation to run this plan with once it is confirmed.
    pub fn pin(&self) -> Pinned {
        Pinned {
            action: self.action,
            to_sha: self.to_sha.clone(),
            from_sha: self.from_sha.clone(),
            from_color: self.from_color,
            check_from: true,
        }
    }

    /// One sentence for dialogs and prompts.
    pub fn summary(&self) -> String {
        if self.noop {
            return format!(
                "{}: {} already serves {} ({}); nothing to do",
                self.host, self.service, self.to_sha, self.to_color
            );
        }
        let from = match (&self.from_color, &self.from_sha) {
            (Some(c), Some(s)) => format!("{s} ({c})"),
            (Some(c), None) => format!("? ({c})"),
            _ => "nothing".to_string(),
        };
        if self.finish_only {
            return format!(
                "{}: {} already serves {} ({}); stop the other color, which still runs",
                self.host, self.service, self.to_sha, self.to_color
            );
        }
        let how = if self.reuse_existing {
            "restart the kept container"
        } else if self.action != Action::Rollback {
            "new container"
        } else if self.image_present {
            "its container is gone: new container from the retained image"
        } else {
            "its container and image are gone: new container, pulling the image"
        };
        let note = self
            .note
            .as_deref()
            .map(|n| format!("; {n}"))
            .unwrap_or_default();
        let proxy = self
            .proxy_change
            .as_ref()
            .map(|c| format!("; {c}"))
            .unwrap_or_default();
        format!(
            "{}: {} {} → {} ({}, {how}){note}{proxy}",
            self.host, self.service, from, self.to_sha, self.to_color
        )
    }
}

static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("static regex"));

/// A REF is a git SHA (7-40 hex) or an OCI image tag; anything else is refused before it gets
/// near a host.
pub fn validate_ref(r: &str) -> Result<(), String> {
    if TAG.is_match(r) {
        Ok(())
    } else {
        Err(format!(
            "`{r}` is neither a git SHA (7-40 hex characters) nor an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})"
        ))
    }
}

/// Plans deploying `tag` of `service` on a host whose current state is `status`.
pub fn plan_deploy(
    status: &ServiceStatus,
    service: &Service,
    host: &str,
    tag: &str,
    action: Action,
) -> Result<DeployPlan, String> {
    validate_ref(tag)?;
    let running = |c: Color| {
        status
            .color(c)
            .is_some_and(|s| s.state == ContainerState::Running)
    };
    // The live color is the one the proxy routes to, if that container actually runs.
    let live = status.live_color.filter(|c| running(*c));
    let to_color = match status.live_color {
        Some(c) => c.other(),
        None => Color::BOTH
            .into_iter()
            .find(|c| !running(*c))
            .unwrap_or(Color::Blue),
    };
    // Without a route (the proxy was removed by hand) the color still running is what served
    // last: it is stopped after the switch like a live one.
    let from = live.or_else(|| {
        (status.live_color.is_none() && running(to_color.other())).then(|| to_color.other())
    });
    let from_sha = from.and_then(|c| status.color(c).and_then(|s| s.sha.clone()));
    let image = format!("{}:{tag}", service.image);

    let live_is_target = live.is_some_and(|c| {
        status.color(c).is_some_and(|s| {
            s.sha.as_deref() == Some(tag)
                && s.health
                    .as_ref()
                    .is_none_or(crate::state::HealthReport::is_healthy)
        })
    });
    let other_running = live.is_some_and(|c| running(c.other()));
    let force = action == Action::Redeploy;
    // A proxy the config no longer describes is replaced by a deploy even of what serves.
    let proxy_change = status.proxy.drift.clone().filter(|_| status.proxy.exists);
    let settled = live_is_target && status.proxy.running && proxy_change.is_none();
    let noop = !force && settled && !other_running;
    let finish_only = !force && settled && other_running;
    let reuse_existing = !force
        && status
            .color(to_color)
            .is_some_and(|s| s.sha.as_deref() == Some(tag) && s.image == image);
    let create_proxy = !status.proxy.exists;
    let image_present = status.images.iter().any(|i| i.tag == tag);

    let steps = if noop {
        vec![Step::Lock, Step::Audit, Step::Unlock]
    } else if finish_only {
        vec![
            Step::Lock,
            Step::Drain,
            Step::StopOld,
            Step::Audit,
            Step::Unlock,
        ]
    } else {
        let mut s = vec![Step::Lock];
        if !reuse_existing {
            s.extend([Step::Pull, Step::Network, Step::Create]);
        }
        s.extend([
            Step::Start,
            Step::Health,
            Step::Proxy,
            Step::Switch,
            Step::Confirm,
        ]);
        if from.is_some() {
            s.extend([Step::Drain, Step::StopOld]);
        }
        if service.auto_prune && action != Action::Rollback {
            s.push(Step::Prune);
        }
        s.extend([Step::Audit, Step::Unlock]);
        s
    };
    if finish_only && let Some(l) = live {
        return Ok(DeployPlan {
            action,
            host: host.to_string(),
            service: service.name.clone(),
            from_color: Some(l.other()),
            from_sha: status.color(l.other()).and_then(|s| s.sha.clone()),
            to_color: l,
            to_sha: tag.to_string(),
            image,
            reuse_existing: true,
            noop: false,
            finish_only: true,
            create_proxy: false,
            proxy_change: None,
            steps,
            image_present,
            note: None,
        });
    }
    Ok(DeployPlan {
        action,
        host: host.to_string(),
        service: service.name.clone(),
        from_color: from,
        from_sha,
        to_color: if noop {
            live.unwrap_or(to_color)
        } else {
            to_color
        },
        to_sha: tag.to_string(),
        image,
        reuse_existing,
        noop,
        finish_only: false,
        create_proxy,
        proxy_change,
        steps,
        image_present,
        note: None,
    })
}

/// Plans a rollback: by default to the release that served before the live one, per the host's
/// ledger (whatever failed, was forced or interrupted since; pulled again if its image was
/// removed by hand); with a REF, to any release whose image the host still has.
pub fn plan_rollback(
    status: &ServiceStatus,
    ledger: &Ledger,
    service: &Service,
    host: &str,
    target: &Target,
) -> Result<DeployPlan, String> {
    let mut ledger = ledger.clone();
    ledger.reconcile(status, "");
    let mut note = None;
    let tag = match target {
        Target::Previous => match ledger.rollback_target() {
            Ok(r) => r.sha.clone(),
            // A host deployed before it had a ledger: the kept container is all we know.
            Err(_) if ledger.releases.len() <= 1 => {
                let sha = idle_sha(status)?;
                note = Some(format!(
                    "the host's ledger has no earlier release; going to the kept {} container",
                    status.live_color.map_or(Color::Blue, Color::other)
                ));
                sha
            }
            Err(why) => {
                return Err(format!(
                    "{why}; name the release to go to: deckhand rollback <SHA> (retained: {})",
                    retained(status)
                ));
            }
        },
        Target::Ref(r) => {
            validate_ref(r)?;
            let known = status.images.iter().any(|i| &i.tag == r)
                || Color::BOTH.iter().any(|c| {
                    status
                        .color(*c)
                        .is_some_and(|s| s.sha.as_deref() == Some(r))
                });
            if !known {
                return Err(format!(
                    "{r} is not retained on this host (retained: {}); deploy it instead to pull it",
                    retained(status)
                ));
            }
            r.clone()
        }
    };
    let mut plan = plan_deploy(status, service, host, &tag, Action::Rollback)?;
    plan.note = note;
    Ok(plan)
}

fn idle_sha(status: &ServiceStatus) -> Result<String, String> {
    let live = status.live_color.ok_or_else(|| {
        "nothing is live on this host, so there is no previous release; deploy a SHA instead"
            .to_string()
    })?;
    let idle = status.color(live.other()).ok_or_else(|| {
        format!(
            "the {} color has no container and the host's ledger has no earlier release; name one: deckhand rollback <SHA> (retained: {})",
            live.other(),
            retained(status)
        )
    })?;
    idle.sha
        .clone()
        .ok_or_else(|| format!("the {} container has no deckhand.sha label", live.other()))
}

fn retained(status: &ServiceStatus) -> String {
    if status.images.is_empty() {
        "none".into()
    } else {
        status
            .images
            .iter()
            .map(|i| i.tag.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::state::{ColorStatus, ImageInfo, ProxyStatus};

    fn service() -> Service {
        crate::config::load_str(
            "[[service]]\nname=\"api\"\nimage=\"reg/acme/api\"\n[env.dev]\nhosts=[\"local\"]\n",
            std::path::Path::new("t.toml"),
        )
        .expect("valid")
        .services[0]
            .clone()
    }

    fn color(state: ContainerState, sha: &str) -> ColorStatus {
        ColorStatus {
            state,
            sha: Some(sha.into()),
            image: format!("reg/acme/api:{sha}"),
            container_id: "id".into(),
            deployed_at: None,
            deployed_by: None,
            started_at: None,
            finished_at: None,
            exit_code: None,
            docker_health: None,
            host_port: Some(1),
            health: None,
        }
    }

    fn status(
        live: Option<Color>,
        blue: Option<ColorStatus>,
        green: Option<ColorStatus>,
    ) -> ServiceStatus {
        let mut colors = BTreeMap::new();
        colors.insert(Color::Blue, blue);
        colors.insert(Color::Green, green);
        let images = ["c3", "b2", "a1"]
            .iter()
            .map(|t| ImageInfo {
                tag: format!("{t}00000"),
                id: (*t).into(),
                created: String::new(),
                created_unix: 0,
                size_bytes: 1,
                in_use_by: None,
                protected: false,
                also_tagged: vec![],
            })
            .collect();
        ServiceStatus {
            name: "api".into(),
            live_color: live,
            live_sha: None,
            proxy: ProxyStatus {
                exists: live.is_some(),
                running: live.is_some(),
                image: None,
                public_port: Some(3001),
                upstream: None,
                kind: None,
                drift: None,
            },
            colors,
            images,
            problems: vec![],
            traffic: None,
            canary: None,
            settling: None,
        }
    }

    #[test]
    fn first_deploy_goes_to_blue_and_creates_the_proxy() {
        let p = plan_deploy(
            &status(None, None, None),
            &service(),
            "h",
            "a100000",
            Action::Deploy,
        )
        .expect("plan");
        assert_eq!(p.to_color, Color::Blue);
        assert!(p.create_proxy);
        assert_eq!(p.from_color, None);
        assert!(!p.steps.contains(&Step::StopOld), "nothing to stop");
        assert!(p.steps.contains(&Step::Pull));
        assert_eq!(
            p.summary(),
            "h: api nothing → a100000 (blue, new container)"
        );
    }

    #[test]
    fn a_deploy_goes_to_the_idle_color_and_stops_the_live_one() {
        let s = status(
            Some(Color::Blue),
            Some(color(ContainerState::Running, "a100000")),
            Some(color(ContainerState::Exited, "0900000")),
        );
        let p = plan_deploy(&s, &service(), "h", "b200000", Action::Deploy).expect("plan");
        assert_eq!(p.to_color, Color::Green);
        assert_eq!(p.from_color, Some(Color::Blue));
        assert_eq!(p.from_sha.as_deref(), Some("a100000"));
        assert!(!p.reuse_existing);
        assert!(!p.create_proxy);
        assert_eq!(
            p.steps,
            [
                Step::Lock,
                Step::Pull,
                Step::Network,
                Step::Create,
                Step::Start,
                Step::Health,
                Step::Proxy,
                Step::Switch,
                Step::Confirm,
                Step::Drain,
                Step::StopOld,
                Step::Audit,
                Step::Unlock
            ]
        );
    }

    #[test]
    fn rollback_defaults_to_the_stopped_color_without_pull_or_create() {
        let s = status(
            Some(Color::Blue),
            Some(color(ContainerState::Running, "b200000")),
            Some(color(ContainerState::Exited, "a100000")),
        );
        let p = plan_rollback(&s, &Ledger::default(), &service(), "h", &Target::Previous)
            .expect("plan");
        assert_eq!(p.action, Action::Rollback);
        assert_eq!(p.to_sha, "a100000");
        assert_eq!(p.to_color, Color::Green);
        assert!(p.reuse_existing);
        assert!(!p.steps.contains(&Step::Pull));
        assert!(!p.steps.contains(&Step::Create));
    }

    fn ledger_of(steps: &[(&str, Color)]) -> Ledger {
        let mut l = Ledger::default();
        for (i, (sha, c)) in steps.iter().enumerate() {
            l.went_live(
                crate::release::ledger::Release {
                    sha: (*sha).into(),
                    color: *c,
                    since: format!("2026-12-01T0{i}:00:00Z"),
                    by: "t".into(),
                    action: "deploy".into(),
                    until: None,
                    ended: None,
                    healthy: true,
                    reconciled: false,
                },
                crate::release::ledger::Ending::Replaced,
            );
        }
        l
    }

    #[test]
    fn rollback_follows_the_ledger_not_the_idle_slot() {
        // a100000 then b200000 served; a failed c300000 now sits stopped in blue.
        let s = status(
            Some(Color::Green),
            Some(color(ContainerState::Exited, "c300000")),
            Some(color(ContainerState::Running, "b200000")),
        );
        let l = ledger_of(&[("a100000", Color::Blue), ("b200000", Color::Green)]);
        let p = plan_rollback(&s, &l, &service(), "h", &Target::Previous).expect("plan");
        assert_eq!(p.to_sha, "a100000");
        assert_eq!(p.to_color, Color::Blue);
        assert!(!p.reuse_existing && p.image_present);
        assert!(p.steps.contains(&Step::Create) && p.steps.contains(&Step::Pull));
        assert!(
            p.summary().contains("from the retained image"),
            "{}",
            p.summary()
        );
        // Its image pruned too: pulled again, and the plan says so.
        let mut s2 = s.clone();
        s2.images.retain(|i| i.tag != "a100000");
        let p = plan_rollback(&s2, &l, &service(), "h", &Target::Previous).expect("plan");
        assert!(!p.image_present);
        assert!(p.summary().contains("pulling the image"), "{}", p.summary());
    }

    #[test]
    fn the_pinned_plan_names_what_changed() {
        let s = status(
            Some(Color::Blue),
            Some(color(ContainerState::Running, "a100000")),
            None,
        );
        let confirmed = plan_deploy(&s, &service(), "h", "b200000", Action::Deploy).expect("plan");
        let pin = confirmed.pin();
        assert_eq!(pin.differences(&confirmed), None);
        let moved = status(
            Some(Color::Green),
            Some(color(ContainerState::Exited, "a100000")),
            Some(color(ContainerState::Running, "c300000")),
        );
        let now = plan_deploy(&moved, &service(), "h", "b200000", Action::Deploy).expect("plan");
        let what = pin.differences(&now).expect("changed");
        assert!(
            what.contains("a100000 (blue) served when you confirmed, now c300000 (green) does"),
            "{what}"
        );
    }

    #[test]
    fn rollback_without_a_previous_release_says_what_to_do() {
        let s = status(
            Some(Color::Blue),
            Some(color(ContainerState::Running, "b200000")),
            None,
        );
        let e =
            plan_rollback(&s, &Ledger::default(), &service(), "h", &Target::Previous).unwrap_err();
        assert!(e.contains("deckhand rollback <SHA>"), "{e}");
        assert!(e.contains("c300000, b200000, a100000"), "{e}");
    }

    #[test]
    fn rollback_to_an_unretained_sha_is_refused() {
        let s = status(
            Some(Color::Blue),
            Some(color(ContainerState::Running, "b200000")),
            None,
        );
        let e = plan_rollback(
            &s,
            &Ledger::default(),
            &service(),
            "h",
            &Target::Ref("dddddd0".into()),
        )
        .unwrap_err();
        assert!(e.contains("not retained"), "{e}");
        assert!(
            plan_rollback(
                &s,
                &Ledger::default(),
                &service(),
                "h",
                &Target::Ref("a100000".into())
            )
            .is_ok()
        );
    }

    #[test]
    fn deploying_what_already_serves_is_a_noop() {
        let s = status(
            Some(Color::Blue),
            Some(color(ContainerState::Running, "b200000")),
            None,
        );
        let p = plan_deploy(&s, &service(), "h", "b200000", Action::Deploy).expect("plan");
        assert!(p.noop);
        assert_eq!(p.steps, [Step::Lock, Step::Audit, Step::Unlock]);
    }

    #[test]
    fn a_dead_live_color_is_replaced_from_the_other_side() {
        // Proxy routes to blue but blue was stopped by hand: deploy to green, nothing to stop.
        let s = status(
            Some(Color::Blue),
            Some(color(ContainerState::Exited, "b200000")),
            None,
        );
        let p = plan_deploy(&s, &service(), "h", "c300000", Action::Deploy).expect("plan");
        assert_eq!(p.to_color, Color::Green);
        assert_eq!(p.from_color, None);
        assert!(!p.steps.contains(&Step::StopOld));
    }

    #[test]
    fn an_interrupted_deploy_is_finished_not_repeated() {
        // Killed after the switch, before the old color stopped: both run, green is live.
        let s = status(
            Some(Color::Green),
            Some(color(ContainerState::Running, "a100000")),
            Some(color(ContainerState::Running, "b200000")),
        );
        let p = plan_deploy(&s, &service(), "h", "b200000", Action::Deploy).expect("plan");
        assert!(p.finish_only && !p.noop);
        assert_eq!(p.from_color, Some(Color::Blue));
        assert_eq!(
            p.steps,
            [
                Step::Lock,
                Step::Drain,
                Step::StopOld,
                Step::Audit,
                Step::Unlock
            ]
        );
    }

    #[test]
    fn a_forced_redeploy_of_the_live_sha_makes_a_fresh_container() {
        let s = status(
            Some(Color::Blue),
            Some(color(ContainerState::Running, "b200000")),
            Some(color(ContainerState::Exited, "b200000")),
        );
        let p = plan_deploy(&s, &service(), "h", "b200000", Action::Redeploy).expect("plan");
        assert!(!p.noop && !p.finish_only && !p.reuse_existing);
        assert_eq!(p.to_color, Color::Green);
        assert!(p.steps.contains(&Step::Create));
    }

    #[test]
    fn without_a_proxy_the_running_color_is_replaced_and_stopped() {
        let mut s = status(None, Some(color(ContainerState::Running, "a100000")), None);
        s.proxy.exists = false;
        let p = plan_deploy(&s, &service(), "h", "b200000", Action::Deploy).expect("plan");
        assert_eq!(p.to_color, Color::Green);
        assert_eq!(p.from_color, Some(Color::Blue));
        assert!(p.create_proxy);
        assert!(p.steps.contains(&Step::StopOld));
    }

    #[test]
    fn refs_are_validated() {
        assert!(validate_ref("abc1234").is_ok());
        assert!(validate_ref("v1.2.3").is_ok());
        for bad in [
            "",
            "-rf",
            "a b",
            "x;rm -rf /",
            "$(id)",
            "../etc",
            &"a".repeat(129),
        ] {
            assert!(validate_ref(bad).is_err(), "{bad}");
        }
    }
}
