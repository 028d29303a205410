//! `deckhand logs` on a Swarm: a color is a Swarm service whose containers are its tasks, on
//! any node. Each running task is read through the manager (`/tasks/{id}/logs`: Swarm fetches
//! the lines from the task's node), named `S-blue.2@node1` (service, slot, node), and its lines
//! go through the droplet path unchanged: line cap, redaction, grep, the time-ordered merge,
//! and the CLI's sanitizing.

use std::collections::HashMap;

use bollard::models::{Task, TaskState};
use bollard::query_parameters::ListTasksOptions;

use super::{api, status};
use crate::transport::Host;

/// One task to read: how lines are attributed, and its id.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSource {
    pub name: String,
    pub task_id: String,
}

/// The running tasks of `swarm_service`, by slot.
pub async fn task_sources(
    host: &Host,
    swarm_service: &str,
) -> Result<Vec<TaskSource>, super::SwarmError> {
    let nodes: HashMap<String, String> = api::nodes(host)
        .await?
        .iter()
        .map(|n| {
            let s = status::node_status(n);
            (s.id, s.hostname)
        })
        .collect();
    let filters = HashMap::from([("service".to_string(), vec![swarm_service.to_string()])]);
    let tasks = match host
        .docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(filters),
        }))
        .await
    {
        Ok(t) => t,
        // Never deployed in this color: no service, so no task.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Vec::new(),
        Err(e) => return Err(super::SwarmError::docker(host.name(), "list the tasks", e)),
    };
    Ok(sources_of(swarm_service, &tasks, &nodes))
}

/// Running tasks Swarm wants running, named `service.slot@node` (pure).
pub fn sources_of(
    swarm_service: &str,
    tasks: &[Task],
    nodes: &HashMap<String, String>,
) -> Vec<TaskSource> {
    let mut running: Vec<&Task> = tasks
        .iter()
        .filter(|t| {
            t.desired_state == Some(TaskState::RUNNING)
                && t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
        })
        .collect();
    running.sort_by_key(|t| t.slot);
    running
        .into_iter()
        .filter_map(|t| {
            let id = t.id.clone()?;
            let node = t.node_id.as_ref().map(|n| {
                nodes
                    .get(n)
                    .cloned()
                    .unwrap_or_else(|| n.chars().take(12).collect())
            });
            let slot = t.slot.map_or_else(
                || format!(".{}", &id[..id.len().min(12)]),
                |s| format!(".{s}"),
            );
            Some(TaskSource {
                name: format!(
                    "{swarm_service}{slot}{}",
                    node.map_or_else(String::new, |n| format!(
                        "@{}",
                        crate::sanitize::host_text(&n)
                    ))
                ),
                task_id: id,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::TaskStatus;

    fn task(id: &str, slot: i64, node: &str, state: TaskState, desired: TaskState) -> Task {
        Task {
            id: Some(id.into()),
            slot: Some(slot),
            node_id: Some(node.into()),
            desired_state: Some(desired),
            status: Some(TaskStatus {
                state: Some(state),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn running_tasks_are_named_by_slot_and_node() {
        let nodes = HashMap::from([("N1".to_string(), "node1".to_string())]);
        let tasks = [
            task("T2", 2, "N1", TaskState::RUNNING, TaskState::RUNNING),
            task("T1", 1, "N9", TaskState::RUNNING, TaskState::RUNNING),
            task("T0", 1, "N1", TaskState::SHUTDOWN, TaskState::SHUTDOWN),
            task("T3", 3, "N1", TaskState::RUNNING, TaskState::SHUTDOWN),
        ];
        let s = sources_of("api-blue", &tasks, &nodes);
        let names: Vec<&str> = s.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["api-blue.1@N9", "api-blue.2@node1"]);
        assert_eq!(s[1].task_id, "T2");
    }
}
