//! Image retention: keep the N most recent, never an image a color uses, never a protected tag.

use serde::Serialize;

use super::ReleaseError;
use super::proxy::docker_err;
use crate::config::Service;
use crate::state::{ImageInfo, ServiceStatus};
use crate::transport::Host;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PruneItem {
    pub tag: String,
    pub size_bytes: u64,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrunePlan {
    pub host: String,
    pub keep: usize,
    pub kept: Vec<String>,
    pub remove: Vec<PruneItem>,
    /// Bytes freed: images whose every tag in the repository goes.
    pub reclaim_bytes: u64,
}

/// The retention rule, as a pure function of the host's images (newest first).
pub fn plan_prune(host: &str, status: &ServiceStatus, keep: usize) -> PrunePlan {
    plan_prune_keeping(host, status, keep, &[])
}

/// The retention rule, also keeping `also_keep` (the ledger's rollback target: its container
/// may be gone, its image is how a rollback gets back).
pub fn plan_prune_keeping(
    host: &str,
    status: &ServiceStatus,
    keep: usize,
    also_keep: &[String],
) -> PrunePlan {
    let mut kept = Vec::new();
    let mut remove = Vec::new();
    let mut recent = 0usize;
    let images: &[ImageInfo] = &status.images;
    for img in images {
        let in_use = img.in_use_by.is_some()
            || crate::state::Color::BOTH.iter().any(|c| {
                status
                    .color(*c)
                    .is_some_and(|s| s.sha.as_deref() == Some(img.tag.as_str()))
            });
        if in_use || img.protected || also_keep.contains(&img.tag) {
            kept.push(img.tag.clone());
            continue;
        }
        if recent < keep {
            recent += 1;
            kept.push(img.tag.clone());
            continue;
        }
        remove.push(img);
    }
    // An image is freed only when all its tags go (a kept tag keeps the layers).
    let mut reclaim = 0u64;
    let mut counted = std::collections::BTreeSet::new();
    for img in &remove {
        let all_tags_go = img
            .also_tagged
            .iter()
            .all(|t| remove.iter().any(|r| &r.tag == t));
        if all_tags_go && counted.insert(img.id.clone()) {
            reclaim += img.size_bytes;
        }
    }
    PrunePlan {
        host: host.to_string(),
        keep,
        kept,
        remove: remove
            .into_iter()
            .map(|i| PruneItem {
                tag: i.tag.clone(),
                size_bytes: i.size_bytes,
                created: i.created.clone(),
            })
            .collect(),
        reclaim_bytes: reclaim,
    }
}

/// What the ledger says must stay: the release a rollback would go to.
pub fn ledger_keeps(ledger: &super::ledger::Ledger, status: &ServiceStatus) -> Vec<String> {
    let mut l = ledger.clone();
    l.reconcile(status, "");
    l.rollback_target()
        .map(|r| vec![r.sha.clone()])
        .unwrap_or_default()
}

/// Plans a prune on a connected host from what it has now, the ledger's rollback target kept.
pub async fn plan_on_host(
    host: &Host,
    service: &Service,
    keep: usize,
) -> Result<PrunePlan, ReleaseError> {
    if crate::swarm::is_swarm(host) {
        return crate::swarm::prune::plan_on_host(host, service, keep).await;
    }
    let st = crate::state::read_service(host, service)
        .await
        .map_err(|e| docker_err(host, "read the service", e))?;
    // An unreadable ledger keeps nothing extra; the deploy that next writes it says so.
    let ledger = super::ledger::read(host, &service.name)
        .await
        .unwrap_or_default();
    Ok(plan_prune_keeping(
        host.name(),
        &st,
        keep,
        &ledger_keeps(&ledger, &st),
    ))
}

/// Removes what the plan names (untagging; Docker frees the layers with the last tag).
/// Returns the tags actually removed.
pub async fn execute(
    host: &Host,
    service: &Service,
    plan: &PrunePlan,
) -> Result<Vec<String>, ReleaseError> {
    let mut removed = Vec::new();
    for item in &plan.remove {
        let image = format!("{}:{}", service.image, item.tag);
        match host
            .docker
            .remove_image(
                &image,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await
        {
            Ok(_) => removed.push(item.tag.clone()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(docker_err(host, &format!("remove {image}"), e)),
        }
    }
    Ok(removed)
}

/// Prunes one host the way every caller must: take the lock, re-plan on what the host has now
/// (a deploy may have happened since the operator looked), remove, audit, unlock; with events.
pub async fn run_on_host(
    host: &std::sync::Arc<Host>,
    service: &Service,
    keep: usize,
    env: &str,
    actor: &str,
    lock_wait: std::time::Duration,
    events: &super::EventSink,
) -> Result<(PrunePlan, Vec<String>), ReleaseError> {
    use super::audit::{self, AuditRecord};
    use super::{Event, Step};
    let name = host.name().to_string();
    let started = std::time::Instant::now();
    let ms = |t: std::time::Instant| u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
    let begin = |step: Step, detail: String| {
        events.emit(Event::StepStarted {
            host: name.clone(),
            step,
            detail,
        });
        std::time::Instant::now()
    };
    let done = |step: Step, t: std::time::Instant, detail: String| {
        events.emit(Event::StepFinished {
            host: name.clone(),
            step,
            elapsed_ms: ms(t),
            detail,
            trips: None,
        });
    };
    let t = begin(Step::Lock, service.name.clone());
    let req = super::lock::LockRequest {
        service: &service.name,
        action: "prune",
        actor,
        env,
        wait: lock_wait,
        take_over_stale: false,
    };
    let held = super::lock::acquire(host, &req).await.inspect_err(|e| {
        events.emit(Event::StepFailed {
            host: name.clone(),
            step: Step::Lock,
            error: e.to_string(),
        });
    })?;
    done(Step::Lock, t, String::new());

    let t = begin(Step::Prune, format!("keep {keep}"));
    // A Swarm is pruned on every node by a job; what each node did goes to the audit log.
    let mut per_node = None;
    let result = match plan_on_host(host, service, keep).await {
        Ok(plan) => match held.ensure_held(host).await {
            Ok(()) if crate::swarm::is_swarm(host) => {
                crate::swarm::prune::run(host, service, &plan, events)
                    .await
                    .map(|(removed, nodes)| {
                        per_node = Some(nodes);
                        (plan, removed)
                    })
            }
            Ok(()) => execute(host, service, &plan)
                .await
                .map(|removed| (plan, removed)),
            Err(now) => Err(ReleaseError::LockLost {
                host: host.name().to_string(),
                service: service.name.clone(),
                now,
                step: "removing images".into(),
                live_note: "no image was removed".into(),
            }),
        },
        Err(e) => Err(e),
    };
    match &result {
        Ok((p, removed)) => done(
            Step::Prune,
            t,
            format!(
                "removed {}; {} reclaimed",
                if removed.is_empty() {
                    "nothing".to_string()
                } else {
                    removed.join(", ")
                },
                crate::util::format_bytes(p.reclaim_bytes)
            ),
        ),
        Err(e) => events.emit(Event::StepFailed {
            host: name.clone(),
            step: Step::Prune,
            error: e.to_string(),
        }),
    }

    let t = begin(Step::Audit, String::new());
    let mut rec = AuditRecord::now(actor, env, host.name(), &service.name, "prune");
    rec.duration_ms = Some(ms(started));
    match &result {
        Ok((p, removed)) => {
            rec.outcome = audit::AuditOutcome::Success;
            rec.details = Some(format!(
                "kept {}; removed {}{}",
                p.kept.join(","),
                removed.join(","),
                per_node
                    .as_ref()
                    .map_or_else(String::new, |n| format!("; per node: {n}"))
            ));
        }
        Err(e) => {
            rec.outcome = audit::AuditOutcome::Failed;
            rec.error = Some(e.to_string());
        }
    }
    if let Err(e) = audit::append(host, &rec).await {
        events.emit(Event::Info {
            host: name.clone(),
            message: format!("WARNING: could not write the audit log: {e}"),
        });
    }
    done(Step::Audit, t, String::new());
    let t = begin(Step::Unlock, String::new());
    if let Err(e) = held.release(host).await {
        events.emit(Event::Info {
            host: name.clone(),
            message: format!("WARNING: could not release the lock: {e}"),
        });
    }
    done(Step::Unlock, t, String::new());
    result
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::state::{Color, ProxyStatus};

    fn img(tag: &str, created: i64, in_use: Option<Color>, protected: bool) -> ImageInfo {
        ImageInfo {
            tag: tag.into(),
            id: format!("id-{tag}"),
            created: String::new(),
            created_unix: created,
            size_bytes: 100,
            in_use_by: in_use,
            protected,
            also_tagged: vec![],
        }
    }

    fn status(images: Vec<ImageInfo>) -> ServiceStatus {
        let mut colors = BTreeMap::new();
        colors.insert(Color::Blue, None);
        colors.insert(Color::Green, None);
        ServiceStatus {
            name: "api".into(),
            live_color: None,
            live_sha: None,
            proxy: ProxyStatus {
                exists: false,
                running: false,
                image: None,
                public_port: None,
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
    fn keeps_the_newest_n_plus_in_use_and_protected() {
        let s = status(vec![
            img("a7", 7, None, false),
            img("a6", 6, Some(Color::Blue), false),
            img("a5", 5, None, false),
            img("latest", 4, None, true),
            img("a3", 3, None, false),
            img("a2", 2, Some(Color::Green), false),
            img("a1", 1, None, false),
        ]);
        let p = plan_prune("h", &s, 2);
        let removed: Vec<&str> = p.remove.iter().map(|r| r.tag.as_str()).collect();
        assert_eq!(removed, ["a3", "a1"]);
        assert_eq!(p.kept, ["a7", "a6", "a5", "latest", "a2"]);
        assert_eq!(p.reclaim_bytes, 200);
    }

    #[test]
    fn shared_images_free_nothing_while_a_tag_stays() {
        let mut a = img("old1", 1, None, false);
        a.id = "same".into();
        a.also_tagged = vec!["v1.0.0".into()];
        let mut b = img("v1.0.0", 1, None, true);
        b.id = "same".into();
        b.also_tagged = vec!["old1".into()];
        let s = status(vec![img("new", 9, None, false), a, b]);
        let p = plan_prune("h", &s, 1);
        assert_eq!(p.remove.len(), 1);
        assert_eq!(p.reclaim_bytes, 0);
    }

    #[test]
    fn the_ledgers_rollback_target_is_never_removed() {
        let s = status(vec![
            img("a3", 3, None, false),
            img("a2", 2, None, false),
            img("a1", 1, None, false),
        ]);
        let p = plan_prune_keeping("h", &s, 1, &["a1".to_string()]);
        let removed: Vec<&str> = p.remove.iter().map(|r| r.tag.as_str()).collect();
        assert_eq!(removed, ["a2"]);
        assert!(p.kept.contains(&"a1".to_string()));
    }

    #[test]
    fn nothing_to_do_when_under_the_limit() {
        let s = status(vec![img("a2", 2, None, false), img("a1", 1, None, false)]);
        assert!(plan_prune("h", &s, 5).remove.is_empty());
    }
}
