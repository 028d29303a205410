//! `prune` on a Swarm: the droplet's retention rule over the Swarm's releases, applied on every
//! node by a one-shot job (`prune_job`), under the service's lock like every verb.
//!
//! The releases are global on a Swarm (any node may have run any of them), so the rule runs
//! once, over the manager's images plus every release the ledger knows (a release whose tasks
//! never ran on the manager is not among its images): keep the N most recent, both colors'
//! images (the scaled-down one is the next rollback), the ledger's rollback target and the
//! protected tags. Each node then removes the rest that it holds, by tag and by digest.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::models::{Node, Task, TaskState};
use bollard::query_parameters::{ListTasksOptions, LogsOptions};
use futures_util::StreamExt;

use super::prune_job::{self, JobInput, NodePrune};
use super::{api, status};
use crate::config::Service;
use crate::release::ledger::Ledger;
use crate::release::prune::{PrunePlan, ledger_keeps, plan_prune_keeping};
use crate::release::{Event, EventSink, ReleaseError};
use crate::state::{ImageInfo, is_protected_tag, normalize_repository};
use crate::transport::Host;

/// How long the job may take on the nodes that are up (a pull of the proxy image included).
const JOB_TIMEOUT: Duration = Duration::from_secs(90);
/// Reading one task's log (it is a few lines; a node that vanished must not hang the prune).
const LOG_TIMEOUT: Duration = Duration::from_secs(15);
const LOG_CAP: usize = 256 * 1024;

/// Plans a prune of the whole Swarm from the manager: the retention rule over its releases.
pub async fn plan_on_host(
    host: &Host,
    service: &Service,
    keep: usize,
) -> Result<PrunePlan, ReleaseError> {
    let mut st = super::read_service(host, service).await?;
    // An unreadable ledger keeps nothing extra; the deploy that next writes it says so.
    let ledger = crate::release::ledger::read(host, &service.name)
        .await
        .unwrap_or_default();
    let keeps = ledger_keeps(&ledger, &st);
    st.images = with_releases(std::mem::take(&mut st.images), &ledger, service);
    Ok(plan_prune_keeping(host.name(), &st, keep, &keeps))
}

/// The manager's images and an entry for each release of the ledger the manager does not hold,
/// newest first as the rule reads them. A release is as recent as when it last went live (the
/// order operators deployed them in), not as its image's build date: mixing the two would let
/// a long-pruned release built late take the place of a recent one.
pub fn with_releases(images: Vec<ImageInfo>, ledger: &Ledger, service: &Service) -> Vec<ImageInfo> {
    let mut live_at: HashMap<&str, i64> = HashMap::new();
    for r in &ledger.releases {
        if let Ok(d) = chrono::DateTime::parse_from_rfc3339(&r.since) {
            let at = live_at.entry(r.sha.as_str()).or_insert(i64::MIN);
            *at = (*at).max(d.timestamp());
        }
    }
    let mut out = images;
    for i in &mut out {
        if let Some(at) = live_at.get(i.tag.as_str()) {
            i.created_unix = *at;
        }
    }
    for r in ledger.releases.iter().rev() {
        if out.iter().any(|i| i.tag == r.sha) {
            continue;
        }
        let created_unix = live_at.get(r.sha.as_str()).copied().unwrap_or(0);
        out.push(ImageInfo {
            tag: r.sha.clone(),
            id: format!("release {}", r.sha),
            created: r.since.clone(),
            created_unix,
            size_bytes: 0,
            in_use_by: None,
            protected: is_protected_tag(&r.sha, &service.protected_tags),
            also_tagged: Vec::new(),
        });
    }
    out.sort_by(|a, b| {
        b.created_unix
            .cmp(&a.created_unix)
            .then_with(|| a.tag.cmp(&b.tag))
    });
    out
}

/// Every node's result.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SwarmPruned {
    pub nodes: Vec<NodePrune>,
}

impl SwarmPruned {
    /// `tag (node0 node1)` for each tag removed somewhere.
    pub fn removed(&self) -> Vec<String> {
        let mut by_tag: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for n in &self.nodes {
            for t in &n.removed {
                by_tag.entry(t).or_default().push(&n.node);
            }
        }
        by_tag
            .into_iter()
            .map(|(t, nodes)| format!("{t} ({})", nodes.join(" ")))
            .collect()
    }

    pub fn failed(&self) -> bool {
        self.nodes.iter().any(|n| !n.failed.is_empty())
    }
}

/// Runs the prune on every node the way `release::prune::run_on_host` needs it: one event
/// line per node, the tags removed (with where), and the per-node account for the audit log.
/// A node that failed to remove an image fails the prune (after every node has had its go);
/// a node that is down, drained or silent is reported and does not.
pub async fn run(
    host: &Host,
    service: &Service,
    plan: &PrunePlan,
    events: &EventSink,
) -> Result<(Vec<String>, String), ReleaseError> {
    let pruned = execute(host, service, plan).await?;
    let lines: Vec<String> = pruned.nodes.iter().map(NodePrune::line).collect();
    for l in &lines {
        events.emit(Event::Info {
            host: host.name().to_string(),
            message: l.clone(),
        });
    }
    if pruned.failed() {
        return Err(ReleaseError::Docker {
            host: host.name().to_string(),
            detail: format!("prune failed on a node: {}", lines.join(" | ")),
            source: None,
        });
    }
    Ok((pruned.removed(), lines.join(" | ")))
}

/// Creates the job, waits for every node that can run it, reads each node's result, removes
/// the job.
pub async fn execute(
    host: &Host,
    service: &Service,
    plan: &PrunePlan,
) -> Result<SwarmPruned, ReleaseError> {
    let repo = normalize_repository(&service.image).to_string();
    let remove: Vec<String> = plan.remove.iter().map(|i| i.tag.clone()).collect();
    let input = JobInput {
        digests: manager_digests(host, service, &repo, &remove).await,
        repo,
        remove,
        keep: plan.kept.clone(),
        // Where each node's engine listens, as a task there sees it (`swarm.node_docker_socket`).
        node_socket: host.spec.swarm.as_ref().map_or_else(
            || "/var/run/docker.sock".to_string(),
            |s| s.node_docker_socket.clone(),
        ),
    };
    let name = prune_job::job_name(service);
    // A job left by a deckhand that died mid-prune (we hold the lock: nobody else runs one).
    api::remove(host, &name).await?;
    api::apply(host, prune_job::job_spec(service, &input)).await?;
    let result = collect(host, &name).await;
    let removed = api::remove(host, &name).await;
    let pruned = result?;
    if let Err(e) = removed {
        tracing::warn!(host = host.name(), job = %name, error = %e, "prune job not removed");
    }
    Ok(pruned)
}

/// `tag=sha256:…` for each tag to remove that the manager holds with a digest of `repo`:
/// how a node that pulled by digest (no tag) holds the same image.
async fn manager_digests(
    host: &Host,
    service: &Service,
    repo: &str,
    tags: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    for tag in tags {
        let Ok(img) = host
            .docker
            .inspect_image(&format!("{}:{tag}", service.image))
            .await
        else {
            continue;
        };
        for d in img.repo_digests.unwrap_or_default() {
            if let Some(digest) = d.strip_prefix(&format!("{repo}@")) {
                out.push(format!("{tag}={digest}"));
            }
        }
    }
    out
}

fn is_done(t: &Task) -> bool {
    matches!(
        t.status.as_ref().and_then(|s| s.state),
        Some(
            TaskState::COMPLETE
                | TaskState::FAILED
                | TaskState::REJECTED
                | TaskState::SHUTDOWN
                | TaskState::ORPHANED
                | TaskState::REMOVE
        )
    )
}

/// Why a node gets no task (Swarm schedules none on it), or `None` when it should run one.
fn cannot_run(n: &status::NodeStatus) -> Option<String> {
    if !n.is_ready() {
        return Some(format!(
            "the node is {}{}",
            n.state,
            n.message
                .as_ref()
                .map_or_else(String::new, |m| format!(" ({m})"))
        ));
    }
    (n.availability != "active").then(|| {
        format!(
            "the node's availability is {} (Swarm starts no task there)",
            n.availability
        )
    })
}

async fn job_tasks(host: &Host, name: &str) -> Result<Vec<Task>, ReleaseError> {
    let filters = HashMap::from([("service".to_string(), vec![name.to_string()])]);
    host.docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|e| super::SwarmError::docker(host.name(), "list the prune job's tasks", e).into())
}

async fn nodes(host: &Host) -> Result<Vec<(Node, status::NodeStatus)>, ReleaseError> {
    Ok(api::nodes(host)
        .await?
        .into_iter()
        .map(|n| {
            let s = status::node_status(&n);
            (n, s)
        })
        .collect())
}

/// Waits until every node that can run the job has finished it (a node that goes down
/// meanwhile is not waited for), then reads each one's log.
async fn collect(host: &Host, name: &str) -> Result<SwarmPruned, ReleaseError> {
    let deadline = Instant::now() + JOB_TIMEOUT;
    let mut not_running: BTreeMap<String, String> = BTreeMap::new();
    let (all, tasks) = loop {
        let all = nodes(host).await?;
        let tasks = job_tasks(host, name).await?;
        let mut waiting = false;
        for (_, n) in &all {
            let done = tasks
                .iter()
                .any(|t| t.node_id.as_deref() == Some(n.id.as_str()) && is_done(t));
            if done {
                not_running.remove(&n.id);
            } else if let Some(why) = cannot_run(n) {
                not_running.insert(n.id.clone(), why);
            } else {
                waiting = true;
            }
        }
        if !waiting || Instant::now() >= deadline {
            break (all, tasks);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut out = Vec::new();
    for (_, n) in &all {
        let node = if n.hostname.is_empty() {
            n.id.clone()
        } else {
            n.hostname.clone()
        };
        if let Some(why) = not_running.get(&n.id) {
            out.push(NodePrune::not_pruned(&node, why.clone()));
            continue;
        }
        let mine: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.node_id.as_deref() == Some(n.id.as_str()))
            .collect();
        let Some(task) = mine.iter().find(|t| is_done(t)) else {
            let state = mine
                .first()
                .and_then(|t| t.status.as_ref()?.state)
                .map_or_else(
                    || "not scheduled".to_string(),
                    |s| format!("{s:?}").to_lowercase(),
                );
            out.push(NodePrune::not_pruned(
                &node,
                format!(
                    "no result within {}s (its task: {state})",
                    JOB_TIMEOUT.as_secs()
                ),
            ));
            continue;
        };
        let log = task_log(host, task.id.as_deref().unwrap_or_default()).await;
        let (mut r, finished) = prune_job::parse_output(&node, &n.id, &log);
        if !finished && r.not_pruned.is_none() {
            let st = task.status.clone().unwrap_or_default();
            let why = st
                .err
                .filter(|e| !e.is_empty())
                .or(st.message)
                .map(|m| crate::sanitize::host_text(&m))
                .unwrap_or_default();
            r.failed.push(format!(
                "the job's task ended before its end ({}{})",
                st.state
                    .map_or_else(|| "unknown".into(), |s| format!("{s:?}").to_lowercase()),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {why}")
                }
            ));
        }
        out.push(r);
    }
    out.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(SwarmPruned { nodes: out })
}

/// A finished task's output, bounded in size and time.
async fn task_log(host: &Host, task_id: &str) -> String {
    let mut stream = host.docker.task_logs(
        task_id,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            follow: false,
            ..Default::default()
        }),
    );
    let mut text = Vec::new();
    let read = async {
        while let Some(item) = stream.next().await {
            match item {
                Ok(out) => {
                    text.extend_from_slice(&out.into_bytes());
                    if text.len() > LOG_CAP {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(host = host.name(), task = task_id, error = %e, "prune job log");
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(LOG_TIMEOUT, read).await;
    String::from_utf8_lossy(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::ledger::Release;
    use crate::state::Color;

    fn img(tag: &str, created: i64) -> ImageInfo {
        ImageInfo {
            tag: tag.into(),
            id: format!("id-{tag}"),
            created: String::new(),
            created_unix: created,
            size_bytes: 10,
            in_use_by: None,
            protected: false,
            also_tagged: vec![],
        }
    }

    fn release(sha: &str, since: &str) -> Release {
        Release {
            sha: sha.into(),
            color: Color::Blue,
            since: since.into(),
            by: "t".into(),
            action: "deploy".into(),
            until: None,
            ended: None,
            healthy: true,
            reconciled: false,
        }
    }

    #[test]
    fn releases_the_manager_never_ran_join_the_rule_dated_when_they_went_live() {
        let service = crate::config::load_str(
            "[[service]]\nname = \"api\"\nimage = \"r/acme/api\"\npublic_port = 8080\nprotected_tags = [\"keep*\"]\n\n[env.dev]\nhosts = [\"local\"]\n",
            std::path::Path::new("/tmp/deckhand.toml"),
        )
        .expect("config")
        .services
        .remove(0);
        let ledger = Ledger {
            releases: vec![
                release("a1", "2026-01-01T00:00:00Z"),
                release("keep1", "2026-01-02T00:00:00Z"),
                release("a3", "2026-01-03T00:00:00Z"),
            ],
        };
        // a1's image was built last but went live first; a9 was never deployed.
        let images = with_releases(
            vec![
                img("a1", 1_900_000_000),
                img("a3", 1_600_000_000),
                img("a9", 1_800_000_000),
            ],
            &ledger,
            &service,
        );
        let tags: Vec<&str> = images.iter().map(|i| i.tag.as_str()).collect();
        assert_eq!(tags, vec!["a9", "a3", "keep1", "a1"]);
        assert!(images[2].protected);
        assert_eq!(
            images[2].size_bytes, 0,
            "not on the manager: nothing to count"
        );
        assert_eq!(images[3].size_bytes, 10);
        assert_ne!(images[2].id, images[1].id);
    }

    #[test]
    fn a_node_that_is_down_or_drained_is_not_waited_for() {
        let n = |state: &str, availability: &str| status::NodeStatus {
            id: "n".into(),
            hostname: "node1".into(),
            role: "worker".into(),
            availability: availability.into(),
            state: state.into(),
            leader: false,
            addr: None,
            message: Some("heartbeat failure".into()),
        };
        assert_eq!(cannot_run(&n("ready", "active")), None);
        assert_eq!(
            cannot_run(&n("down", "active")).as_deref(),
            Some("the node is down (heartbeat failure)")
        );
        assert!(cannot_run(&n("ready", "drain")).is_some_and(|w| w.contains("drain")));
    }
}
