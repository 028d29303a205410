//! Reading a Swarm back: nodes (ready/down, availability, role), per service and color the
//! replicas desired and running and on which nodes, the tasks' errors, and what the proxy
//! routes to (its memory first, its config file as the fallback). Also the `ServiceStatus`
//! the release planner and `status` read, so plans, the ledger and the faces work unchanged.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{Node, NodeState, Task, TaskState};
use serde::Serialize;

use super::names::{self, LABEL_DEPLOYED_AT, LABEL_DEPLOYED_BY, LABEL_SHA};
use super::{SwarmError, api, haproxy, spec};
use crate::config::Service;
use crate::state::{
    Color, ColorStatus, ContainerState, HostStatus, ProxyKind, ProxyStatus, ServiceStatus,
};
use crate::transport::Host;

/// The whole Swarm as `status` shows it (JSON: `hosts[].swarm`).
#[derive(Debug, Clone, Serialize)]
pub struct SwarmStatus {
    /// The node deckhand reaches (where the proxies run).
    pub manager_node: String,
    pub nodes: Vec<NodeStatus>,
    pub services: Vec<SwarmService>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeStatus {
    pub id: String,
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    /// `active`, `pause`, `drain`.
    pub availability: String,
    /// `ready`, `down`, `disconnected`, `unknown`.
    pub state: String,
    pub leader: bool,
    pub addr: Option<String>,
    /// Swarm's word on a node that is not ready ("heartbeat failure").
    pub message: Option<String>,
}

impl NodeStatus {
    pub fn is_ready(&self) -> bool {
        self.state == "ready"
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SwarmService {
    pub name: String,
    pub live_color: Option<Color>,
    /// The proxy's task: running, and on which node.
    pub proxy_running: bool,
    pub proxy_node: Option<String>,
    pub colors: BTreeMap<Color, Option<SwarmColor>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SwarmColor {
    pub service: String,
    pub sha: Option<String>,
    pub image: Option<String>,
    pub desired: u32,
    pub running: u32,
    /// Hostnames of the nodes with a running task, one entry per task.
    pub nodes: Vec<String>,
    /// Tasks that failed or are not running yet, newest first (at most 5).
    pub task_errors: Vec<TaskInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskInfo {
    pub slot: Option<i64>,
    pub node: Option<String>,
    pub state: String,
    pub desired: String,
    pub error: Option<String>,
    pub since: Option<String>,
}

fn lower<T: std::fmt::Debug>(v: &T) -> String {
    format!("{v:?}").to_lowercase()
}

pub(crate) fn node_status(n: &Node) -> NodeStatus {
    let spec = n.spec.clone().unwrap_or_default();
    let status = n.status.clone().unwrap_or_default();
    NodeStatus {
        id: n.id.clone().unwrap_or_default(),
        hostname: n
            .description
            .as_ref()
            .and_then(|d| d.hostname.clone())
            .unwrap_or_default(),
        role: spec.role.map_or_else(|| "unknown".into(), |r| lower(&r)),
        availability: spec
            .availability
            .map_or_else(|| "unknown".into(), |a| lower(&a)),
        state: status.state.map_or_else(|| "unknown".into(), |s| lower(&s)),
        leader: n
            .manager_status
            .as_ref()
            .and_then(|m| m.leader)
            .unwrap_or(false),
        addr: status.addr.clone(),
        message: status
            .message
            .filter(|m| !m.is_empty() && status.state != Some(NodeState::READY))
            .map(|m| crate::sanitize::host_text(&m)),
    }
}

/// Summarises one color from its service and tasks (pure).
pub fn color_of(
    svc: &bollard::models::Service,
    tasks: &[&Task],
    node_names: &HashMap<String, String>,
) -> SwarmColor {
    let spec_ = svc.spec.clone().unwrap_or_default();
    let labels = spec_.labels.clone().unwrap_or_default();
    let image = spec_
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.clone())
        .map(|i| i.split('@').next().unwrap_or_default().to_string());
    let node_of = |t: &Task| {
        t.node_id
            .as_ref()
            .map(|id| node_names.get(id).cloned().unwrap_or_else(|| id.clone()))
    };
    let running: Vec<&&Task> = tasks
        .iter()
        .filter(|t| {
            t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
                && t.desired_state == Some(TaskState::RUNNING)
        })
        .collect();
    let mut errors: Vec<(&Task, String)> = tasks
        .iter()
        .filter_map(|t| {
            let st = t.status.as_ref()?;
            let bad = st.err.as_ref().is_some_and(|e| !e.is_empty())
                || matches!(st.state, Some(TaskState::FAILED | TaskState::REJECTED));
            let pending =
                t.desired_state == Some(TaskState::RUNNING) && st.state != Some(TaskState::RUNNING);
            (bad || pending).then(|| {
                (
                    *t,
                    st.timestamp
                        .as_ref()
                        .map(|d| format!("{d:?}"))
                        .unwrap_or_default(),
                )
            })
        })
        .collect();
    errors.sort_by(|a, b| b.1.cmp(&a.1));
    SwarmColor {
        service: spec_.name.clone().unwrap_or_default(),
        sha: labels.get(LABEL_SHA).cloned(),
        image,
        desired: spec::replicas_of(&spec_),
        running: u32::try_from(running.len()).unwrap_or(u32::MAX),
        nodes: running.iter().filter_map(|t| node_of(t)).collect(),
        task_errors: errors
            .into_iter()
            .take(5)
            .map(|(t, _)| {
                let st = t.status.clone().unwrap_or_default();
                TaskInfo {
                    slot: t.slot,
                    node: node_of(t),
                    state: st.state.map_or_else(|| "unknown".into(), |s| lower(&s)),
                    desired: t
                        .desired_state
                        .map_or_else(|| "unknown".into(), |s| lower(&s)),
                    error: st
                        .err
                        .filter(|e| !e.is_empty())
                        .or(st.message)
                        .map(|m| crate::sanitize::host_text(&m)),
                    since: st.timestamp.map(|d| format!("{d:?}")),
                }
            })
            .collect(),
    }
}

/// What one service looks like on the Swarm, read from the manager.
pub struct ServiceRead {
    pub swarm: SwarmService,
    pub status: ServiceStatus,
    /// The proxy task's container on the manager, when it runs.
    pub proxy_container: Option<String>,
}

/// Reads one service: its color services, their tasks, the proxy and its route.
pub async fn read(
    host: &Host,
    service: &Service,
    node_names: &HashMap<String, String>,
) -> Result<ServiceRead, SwarmError> {
    let (svcs, tasks) = tokio::join!(api::services(host, service), api::tasks(host, service));
    let (svcs, tasks) = (svcs?, tasks?);
    let by_name = |name: &str| {
        svcs.iter()
            .find(|s| s.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(name))
    };
    let tasks_of = |svc: &bollard::models::Service| -> Vec<&Task> {
        tasks
            .iter()
            .filter(|t| t.service_id.is_some() && t.service_id == svc.id)
            .collect()
    };
    let mut colors = BTreeMap::new();
    for c in Color::BOTH {
        let sc = by_name(&names::color_service(service, c))
            .map(|s| color_of(s, &tasks_of(s), node_names));
        colors.insert(c, sc);
    }
    let proxy_name = names::proxy_service(service);
    let proxy_svc = by_name(&proxy_name);
    let proxy_color = proxy_svc.map(|s| color_of(s, &tasks_of(s), node_names));
    let proxy_container = match proxy_svc {
        Some(_) => api::proxy_container(host, &proxy_name).await?,
        None => None,
    };
    // The route: HAProxy's memory, else the file it would start from.
    let mut live = None;
    if let Some(c) = &proxy_container
        && let Ok((0, out)) = crate::state::proxy_api::cli(host, c, &haproxy::stat_command()).await
    {
        live = haproxy::serving(&haproxy::parse_stat(&out));
    }
    let conf_dir = names::proxy_conf_dir(&host.spec.state_dir, service);
    let file = api::read_conf(host, &conf_dir).await.ok().flatten();
    let file_route = file.as_deref().and_then(haproxy::parse_route);
    // A canary (issue 16): the file names it while its color has tasks.
    let canary = file.as_deref().and_then(haproxy::parse_canary).filter(|k| {
        colors
            .get(&k.color)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.desired > 0)
    });
    let live = live.or(file_route.map(|r| r.color));

    let proxy_image = proxy_svc
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.clone())
        .map(|i| i.split('@').next().unwrap_or_default().to_string());
    let drift = proxy_image
        .as_ref()
        .filter(|i| **i != service.proxy_image)
        .map(|i| {
            format!(
                "the proxy runs {i}, the config says {}",
                service.proxy_image
            )
        });
    let proxy = ProxyStatus {
        exists: proxy_svc.is_some(),
        running: proxy_container.is_some(),
        image: proxy_image,
        public_port: proxy_svc.map(|_| service.public_port),
        upstream: live.map(|c| format!("tasks.{}", names::color_service(service, c))),
        kind: proxy_svc.map(|_| ProxyKind::Haproxy),
        drift,
    };
    let swarm = SwarmService {
        name: service.name.clone(),
        live_color: live,
        proxy_running: proxy.running,
        proxy_node: proxy_color.and_then(|p| p.nodes.first().cloned()),
        colors: colors.clone(),
    };
    let color_statuses: BTreeMap<Color, Option<ColorStatus>> = Color::BOTH
        .iter()
        .map(|c| {
            let st = colors.get(c).cloned().flatten().map(|sc| {
                let svc = by_name(&sc.service);
                let labels = svc
                    .and_then(|s| s.spec.as_ref())
                    .and_then(|s| s.labels.clone())
                    .unwrap_or_default();
                ColorStatus {
                    // Scaled to zero is the droplet's stopped-and-kept color.
                    state: if sc.desired > 0 {
                        ContainerState::Running
                    } else {
                        ContainerState::Exited
                    },
                    sha: sc.sha.clone(),
                    image: sc.image.clone().unwrap_or_default(),
                    container_id: svc.and_then(|s| s.id.clone()).unwrap_or_default(),
                    deployed_at: labels.get(LABEL_DEPLOYED_AT).cloned(),
                    deployed_by: labels.get(LABEL_DEPLOYED_BY).cloned(),
                    started_at: None,
                    finished_at: None,
                    exit_code: None,
                    docker_health: None,
                    host_port: None,
                    health: None,
                }
            });
            (*c, st)
        })
        .collect();
    let images = crate::state::read::read_images(host, service, &color_statuses)
        .await
        .unwrap_or_default();
    let mut color_statuses = color_statuses;
    // The live color's health as users get it: `/health` through the proxy's published port.
    if let (Some(c), true) = (live, proxy.running)
        && let Some(Some(cs)) = color_statuses.get_mut(&c)
        && cs.state == ContainerState::Running
    {
        cs.health = Some(
            crate::state::probe_health(
                host,
                service.public_port,
                &service.health_path,
                std::time::Duration::from_secs(3),
            )
            .await,
        );
    }
    let mut status = ServiceStatus {
        name: service.name.clone(),
        live_color: live,
        live_sha: live.and_then(|c| colors.get(&c).cloned().flatten().and_then(|s| s.sha)),
        proxy,
        colors: color_statuses,
        images,
        problems: Vec::new(),
        traffic: None,
        canary,
        settling: None,
    };
    status.problems = problems(&swarm, &status);
    status.settling = status.compute_settling();
    Ok(ServiceRead {
        swarm,
        status,
        proxy_container,
    })
}

/// In words, what makes a Swarm service unhealthy.
pub fn problems(sw: &SwarmService, st: &ServiceStatus) -> Vec<String> {
    let mut p = Vec::new();
    if !st.proxy.exists {
        p.push(if sw.colors.values().any(Option::is_some) {
            format!("proxy service {}-proxy is missing", sw.name)
        } else {
            "not deployed on this Swarm".to_string()
        });
        return p;
    }
    if !sw.proxy_running {
        p.push(format!(
            "the proxy service {}-proxy has no running task on the manager",
            sw.name
        ));
    }
    match sw
        .live_color
        .and_then(|c| sw.colors.get(&c).cloned().flatten())
    {
        None => p.push("no color is live".to_string()),
        Some(c) if c.running == 0 => {
            p.push(format!("{}: no task runs (0/{})", c.service, c.desired));
        }
        Some(c) if c.running < c.desired => p.push(format!(
            "{}: {}/{} tasks run{}",
            c.service,
            c.running,
            c.desired,
            c.task_errors
                .first()
                .and_then(|t| t.error.clone())
                .map_or_else(String::new, |e| format!(" (last task error: {e})"))
        )),
        Some(_) => {}
    }
    if let Some(h) = sw
        .live_color
        .and_then(|c| st.color(c))
        .and_then(|c| c.health.as_ref())
        .filter(|h| !h.is_healthy())
    {
        p.push(format!(
            "the live color's /health through the proxy: {}",
            h.summary()
        ));
    }
    p
}

/// A Swarm manager as a status row: the manager's facts, every service, and the Swarm.
pub async fn read_host(host: &Host, services: &[Service]) -> HostStatus {
    let started = std::time::Instant::now();
    let facts = crate::state::facts::read_facts(host).await;
    let mut error = None;
    let mut out = Vec::new();
    let swarm = match read_swarm(host, services).await {
        Ok((sw, statuses)) => {
            out = statuses;
            Some(sw)
        }
        Err(e) => {
            error = Some(e.to_string());
            None
        }
    };
    HostStatus {
        name: host.name().to_string(),
        reachable: true,
        error,
        facts: Some(facts),
        services: out,
        read_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        swarm,
    }
}

/// Nodes and every service.
pub async fn read_swarm(
    host: &Host,
    services: &[Service],
) -> Result<(SwarmStatus, Vec<ServiceStatus>), SwarmError> {
    let manager = api::manager_node_id(host).await?;
    let nodes: Vec<NodeStatus> = api::nodes(host).await?.iter().map(node_status).collect();
    let names: HashMap<String, String> = nodes
        .iter()
        .map(|n| (n.id.clone(), n.hostname.clone()))
        .collect();
    let mut sw_services = Vec::new();
    let mut statuses = Vec::new();
    for s in services {
        let r = read(host, s, &names).await?;
        let mut st = r.status;
        for n in nodes.iter().filter(|n| !n.is_ready()) {
            st.problems.push(format!(
                "node {} is {}{}",
                n.hostname,
                n.state,
                n.message
                    .as_ref()
                    .map_or_else(String::new, |m| format!(" ({m})"))
            ));
        }
        sw_services.push(r.swarm);
        statuses.push(st);
    }
    Ok((
        SwarmStatus {
            manager_node: names.get(&manager).cloned().unwrap_or(manager),
            nodes,
            services: sw_services,
        },
        statuses,
    ))
}

/// One service's `ServiceStatus`, for the planner and the run's "serves now".
pub async fn read_service(host: &Host, service: &Service) -> Result<ServiceStatus, SwarmError> {
    let nodes: HashMap<String, String> = api::nodes(host)
        .await?
        .iter()
        .map(|n| {
            let s = node_status(n);
            (s.id, s.hostname)
        })
        .collect();
    Ok(read(host, service, &nodes).await?.status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        Service as SvcObj, ServiceSpec, TaskSpec, TaskSpecContainerSpec, TaskStatus,
    };

    fn service_obj(name: &str, sha: &str, replicas: u32) -> SvcObj {
        SvcObj {
            id: Some(format!("id-{name}")),
            spec: Some(spec::with_replicas(
                ServiceSpec {
                    name: Some(name.into()),
                    labels: Some(HashMap::from([(LABEL_SHA.to_string(), sha.to_string())])),
                    task_template: Some(TaskSpec {
                        container_spec: Some(TaskSpecContainerSpec {
                            image: Some(format!("r/api:{sha}@sha256:abc")),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                replicas,
            )),
            ..Default::default()
        }
    }

    fn task(node: &str, state: TaskState, desired: TaskState, err: Option<&str>) -> Task {
        Task {
            id: Some(format!("t-{node}-{state:?}")),
            service_id: Some("id-api-blue".into()),
            node_id: Some(format!("n-{node}")),
            slot: Some(1),
            desired_state: Some(desired),
            status: Some(TaskStatus {
                state: Some(state),
                err: err.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_color_counts_running_tasks_names_their_nodes_and_keeps_task_errors() {
        let names = HashMap::from([
            ("n-node0".to_string(), "node0".to_string()),
            ("n-node1".to_string(), "node1".to_string()),
        ]);
        let tasks = [
            task("node0", TaskState::RUNNING, TaskState::RUNNING, None),
            task("node1", TaskState::RUNNING, TaskState::RUNNING, None),
            task(
                "node2",
                TaskState::REJECTED,
                TaskState::SHUTDOWN,
                Some("no such image"),
            ),
            // Being replaced: still running but Swarm wants it gone.
            task("node1", TaskState::PREPARING, TaskState::RUNNING, None),
        ];
        let refs: Vec<&Task> = tasks.iter().collect();
        let c = color_of(&service_obj("api-blue", "a000001", 3), &refs, &names);
        assert_eq!((c.desired, c.running), (3, 2));
        assert_eq!(c.nodes, vec!["node0", "node1"]);
        assert_eq!(c.sha.as_deref(), Some("a000001"));
        assert_eq!(c.image.as_deref(), Some("r/api:a000001"), "digest stripped");
        assert_eq!(c.task_errors.len(), 2);
        let rejected = c
            .task_errors
            .iter()
            .find(|t| t.state == "rejected")
            .expect("rejected task");
        assert_eq!(
            rejected.node.as_deref(),
            Some("n-node2"),
            "unknown node: its id"
        );
        assert_eq!(rejected.error.as_deref(), Some("no such image"));
    }

    fn swarm_service(running: u32, desired: u32, proxy: bool) -> SwarmService {
        SwarmService {
            name: "api".into(),
            live_color: Some(Color::Blue),
            proxy_running: proxy,
            proxy_node: None,
            colors: BTreeMap::from([
                (
                    Color::Blue,
                    Some(SwarmColor {
                        service: "api-blue".into(),
                        sha: Some("a000001".into()),
                        image: None,
                        desired,
                        running,
                        nodes: Vec::new(),
                        task_errors: vec![TaskInfo {
                            slot: Some(2),
                            node: Some("node2".into()),
                            state: "rejected".into(),
                            desired: "shutdown".into(),
                            error: Some("node is down".into()),
                            since: None,
                        }],
                    }),
                ),
                (Color::Green, None),
            ]),
        }
    }

    fn service_status(proxy_exists: bool) -> ServiceStatus {
        ServiceStatus {
            name: "api".into(),
            live_color: Some(Color::Blue),
            live_sha: Some("a000001".into()),
            proxy: ProxyStatus {
                exists: proxy_exists,
                running: proxy_exists,
                image: None,
                public_port: None,
                upstream: None,
                kind: None,
                drift: None,
            },
            colors: BTreeMap::new(),
            images: Vec::new(),
            problems: Vec::new(),
            traffic: None,
            canary: None,
            settling: None,
        }
    }

    #[test]
    fn problems_say_what_is_short_on_a_swarm() {
        assert!(problems(&swarm_service(2, 2, true), &service_status(true)).is_empty());
        let p = problems(&swarm_service(1, 2, true), &service_status(true));
        assert_eq!(
            p,
            vec!["api-blue: 1/2 tasks run (last task error: node is down)".to_string()]
        );
        let p = problems(&swarm_service(0, 2, false), &service_status(true));
        assert!(p[0].contains("no running task on the manager"), "{p:?}");
        assert!(p[1].contains("no task runs (0/2)"), "{p:?}");
        let p = problems(&swarm_service(2, 2, true), &service_status(false));
        assert_eq!(p, vec!["proxy service api-proxy is missing".to_string()]);
    }
}
