//! The doctor's checks of a Swarm manager entry (issue 16): it is a manager, every node is
//! ready and active, each service's proxy task runs on the manager, and no node reports that it
//! cannot pull (a task Swarm rejected for its image says which node and why).

use bollard::models::TaskState;

use super::{Check, CheckId};
use crate::config::Service;
use crate::swarm::{api, names, status};
use crate::transport::Host;

/// Every Swarm check of the manager `host`.
pub async fn checks(host: &Host, services: &[Service]) -> Vec<Check> {
    let mut out = Vec::new();
    match api::manager_node_id(host).await {
        Ok(_) => out.push(Check::pass(
            CheckId::SwarmManager,
            "this engine is a Swarm manager",
        )),
        Err(e) => {
            out.push(Check::fail(
                CheckId::SwarmManager,
                crate::util::error_chain(&e),
                "point `swarm.manager` at a manager node (`docker node ls` works there), or use `hosts` for plain droplets",
            ));
            for id in [CheckId::SwarmNodes, CheckId::SwarmProxy, CheckId::SwarmPull] {
                out.push(Check::skip(id, "not a Swarm manager"));
            }
            return out;
        }
    }
    let nodes: Vec<status::NodeStatus> = match api::nodes(host).await {
        Ok(n) => n.iter().map(status::node_status).collect(),
        Err(e) => {
            out.push(Check::fail(
                CheckId::SwarmNodes,
                crate::util::error_chain(&e),
                "`docker node ls` on the manager says why",
            ));
            return out;
        }
    };
    out.push(nodes_check(&nodes));
    for s in services {
        let tasks = api::tasks(host, s).await.unwrap_or_default();
        let running_proxy = api::proxy_container(host, &names::proxy_service(s))
            .await
            .ok()
            .flatten();
        let deployed = api::inspect(host, &names::proxy_service(s))
            .await
            .ok()
            .flatten()
            .is_some();
        out.push(match (deployed, running_proxy) {
            (false, _) => Check::pass(
                CheckId::SwarmProxy,
                format!("{}: not deployed yet (the first deploy creates {})", s.name, names::proxy_service(s)),
            ),
            (true, Some(_)) => Check::pass(
                CheckId::SwarmProxy,
                format!("{}: {} runs on the manager", s.name, names::proxy_service(s)),
            ),
            (true, None) => Check::fail(
                CheckId::SwarmProxy,
                format!("{}: {} has no running task on the manager", s.name, names::proxy_service(s)),
                format!(
                    "`docker service ps {}` on the manager shows its task errors; a redeploy recreates it",
                    names::proxy_service(s)
                ),
            ),
        });
        let names_of: std::collections::HashMap<&str, &str> = nodes
            .iter()
            .map(|n| (n.id.as_str(), n.hostname.as_str()))
            .collect();
        let pull_errors: Vec<String> = tasks
            .iter()
            .filter(|t| t.desired_state == Some(TaskState::RUNNING) || is_recent_failure(t))
            .filter_map(|t| {
                let err = t.status.as_ref()?.err.clone()?;
                is_pull_error(&err).then(|| {
                    let node = t
                        .node_id
                        .as_deref()
                        .and_then(|id| names_of.get(id).copied())
                        .unwrap_or("a node");
                    format!("{node}: {}", crate::sanitize::host_text(&err))
                })
            })
            .collect();
        out.push(if pull_errors.is_empty() {
            Check::pass(
                CheckId::SwarmPull,
                format!("{}: no node reports a failed pull", s.name),
            )
        } else {
            let mut uniq = pull_errors;
            uniq.sort();
            uniq.dedup();
            Check::fail(
                CheckId::SwarmPull,
                format!("{}: {}", s.name, uniq.join("; ")),
                "each node pulls the image itself: log that node in to the registry (`docker login`), or pass the credentials with the deploy (deckhand sends its registry credentials to Swarm), and check the node reaches the registry",
            )
        });
    }
    out
}

fn is_recent_failure(t: &bollard::models::Task) -> bool {
    matches!(
        t.status.as_ref().and_then(|s| s.state),
        Some(TaskState::REJECTED | TaskState::FAILED)
    )
}

/// Swarm's words when a node could not get the image.
pub fn is_pull_error(err: &str) -> bool {
    let e = err.to_lowercase();
    [
        "no such image",
        "pull access denied",
        "manifest unknown",
        "unauthorized",
        "not found: manifest",
        "error pulling",
        "toomanyrequests",
    ]
    .iter()
    .any(|w| e.contains(w))
}

/// Ready and active everywhere passes; a drained or paused node warns; a node down fails.
pub fn nodes_check(nodes: &[status::NodeStatus]) -> Check {
    let describe = |n: &status::NodeStatus| {
        format!(
            "{} ({}, {}, {}{})",
            n.hostname,
            n.role,
            n.state,
            n.availability,
            n.message
                .as_ref()
                .map_or_else(String::new, |m| format!(": {m}"))
        )
    };
    let down: Vec<String> = nodes
        .iter()
        .filter(|n| !n.is_ready())
        .map(describe)
        .collect();
    let idle: Vec<String> = nodes
        .iter()
        .filter(|n| n.is_ready() && n.availability != "active")
        .map(describe)
        .collect();
    let summary = format!(
        "{} node(s): {}",
        nodes.len(),
        nodes.iter().map(describe).collect::<Vec<_>>().join(", ")
    );
    if !down.is_empty() {
        Check::fail(
            CheckId::SwarmNodes,
            format!("not ready: {}", down.join(", ")),
            "start Docker on that node (`systemctl start docker`) or check its network to the managers; a node gone for good: `docker node rm <node>` on the manager",
        )
    } else if !idle.is_empty() {
        Check::warn(
            CheckId::SwarmNodes,
            format!("Swarm starts no task on: {}", idle.join(", ")),
            "`docker node update --availability active <node>` when it should take tasks again",
        )
    } else {
        Check::pass(CheckId::SwarmNodes, summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    fn node(name: &str, state: &str, availability: &str) -> status::NodeStatus {
        status::NodeStatus {
            id: name.into(),
            hostname: name.into(),
            role: "worker".into(),
            availability: availability.into(),
            state: state.into(),
            leader: false,
            addr: None,
            message: (state == "down").then(|| "heartbeat failure".into()),
        }
    }

    #[test]
    fn a_down_node_fails_a_drained_one_warns_with_their_fixes() {
        let ok = nodes_check(&[node("node0", "ready", "active")]);
        assert_eq!(ok.status, Status::Pass);
        let c = nodes_check(&[
            node("node0", "ready", "active"),
            node("node1", "down", "active"),
        ]);
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.detail
                .contains("node1 (worker, down, active: heartbeat failure)"),
            "{}",
            c.detail
        );
        assert!(c.fix.is_some_and(|f| f.contains("systemctl start docker")));
        let c = nodes_check(&[node("node2", "ready", "drain")]);
        assert_eq!(c.status, Status::Warn);
        assert!(is_pull_error("No such image: r/api:a1"));
        assert!(!is_pull_error("task: non-zero exit (1)"));
    }
}
