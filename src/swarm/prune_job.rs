//! The prune job's spec, its script and how its output is read (pure). Swarm has no way to
//! reach a worker's engine from the manager, so deckhand asks Swarm to run a one-shot task on
//! every node (`global-job`) from the proxy's image (busybox `sh` and `socat`, and every node
//! can pull it: the proxy came from there), with the node's Docker socket bind-mounted. The
//! task removes the image references deckhand names through the Docker API without force
//! (Docker refuses an image a container uses: 409, reported "in use" and kept) and prints one
//! line per reference, which deckhand reads back from the task's logs.

use std::collections::HashMap;

use bollard::models::{
    Mount, MountType, ServiceSpec, ServiceSpecMode, TaskSpec, TaskSpecContainerSpec,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use serde::Serialize;

use super::names::LABEL_ROLE;
use crate::config::Service;

/// Where the node's Docker socket is mounted inside the task.
const SOCKET_IN_TASK: &str = "/var/run/docker.sock";
/// The first word of every result line (anything else in the log is ignored).
const MARK: &str = "deckhand-prune";
/// A label of the job only (not `deckhand.service`: `status` lists services by that one).
pub const LABEL_PRUNE_OF: &str = "deckhand.prune-of";

/// `S-prune`: one at a time, under the service's lock.
pub fn job_name(service: &Service) -> String {
    format!("{}-prune", service.name)
}

/// What one job is asked to do on every node.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInput {
    /// The repository as Docker prints it in references (`normalize_repository`).
    pub repo: String,
    /// Tags to remove (with the same repository's digest references of their images).
    pub remove: Vec<String>,
    /// Tags that stay: reported when the node has them.
    pub keep: Vec<String>,
    /// `tag=sha256:…`: digest references of removed tags, for nodes that hold the image by
    /// digest only (pulled as `repo@sha256:…`, no tag).
    pub digests: Vec<String>,
    /// The node's Docker socket, bind-mounted into the task.
    pub node_socket: String,
}

/// The script every task runs. It first checks that the socket it was given is its own
/// node's engine (the node ID Swarm templates into `DH_NODE`), so a wrong socket path can never
/// prune another engine; then reports what it keeps, removes, and what Docker refused.
pub const SCRIPT: &str = r#"
say() { printf 'deckhand-prune %s %s\n' "$DH_NODE" "$*"; }
api() { printf '%s %s HTTP/1.0\r\nHost: docker\r\n\r\n' "$1" "$2" | socat -t 30 -T 60 - UNIX-CONNECT:/var/run/docker.sock 2>&1; }
code() { printf '%s\n' "$1" | sed -n '1s/^HTTP\/[0-9.]* \([0-9][0-9]*\).*/\1/p'; }
why() { printf '%s\n' "$1" | sed '1,/^\r*$/d' | tr -d '\r\n' | sed 's/^{"message":"//; s/"}$//' | head -c 300; }
info=$(api GET /info)
case "$info" in
  *"\"NodeID\":\"$DH_NODE\""*) ;;
  *) say wrong-engine - "$(printf '%s' "$info" | grep -o '"Name":"[^"]*"' | head -n 1)$(code "$info")"; exit 0 ;;
esac
say engine - "$(printf '%s' "$info" | grep -o '"Name":"[^"]*"' | head -n 1)"
gone() {
  r=$(api DELETE "/images/$2")
  c=$(code "$r")
  case "$c" in
    200) say removed "$1" ;;
    404) return 1 ;;
    409) say in-use "$1" "$(why "$r")" ;;
    *) say failed "$1" "${c:-no answer from the engine}: $(why "$r")" ;;
  esac
}
for t in $DH_KEEP; do
  r=$(api GET "/images/$DH_REPO:$t/json")
  [ "$(code "$r")" = 200 ] && say kept "$t"
done
for t in $DH_REMOVE; do
  r=$(api GET "/images/$DH_REPO:$t/json")
  [ "$(code "$r")" = 200 ] || continue
  ds=$(printf '%s' "$r" | grep -o '"[^"]*@sha256:[0-9a-f]*"' | tr -d '"')
  gone "$t" "$DH_REPO:$t" || continue
  for d in $ds; do
    case "$d" in "$DH_REPO@"*) api DELETE "/images/$d" > /dev/null ;; esac
  done
done
for p in $DH_DIGESTS; do
  t=${p%%=*}; d=${p#*=}
  gone "$t" "$DH_REPO@$d" || true
done
say done -
"#;

/// The job: one task per node, never restarted (a failure is reported, not retried), as root
/// (the socket is root's), with the node's socket and nothing else.
pub fn job_spec(service: &Service, input: &JobInput) -> ServiceSpec {
    let labels = HashMap::from([
        (LABEL_ROLE.to_string(), "prune".to_string()),
        (LABEL_PRUNE_OF.to_string(), service.name.clone()),
    ]);
    ServiceSpec {
        name: Some(job_name(service)),
        labels: Some(labels.clone()),
        mode: Some(ServiceSpecMode {
            global_job: Some(HashMap::new()),
            ..Default::default()
        }),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(service.proxy_image.clone()),
                labels: Some(labels),
                command: Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]),
                user: Some("0".into()),
                env: Some(vec![
                    "DH_NODE={{.Node.ID}}".into(),
                    format!("DH_REPO={}", input.repo),
                    format!("DH_REMOVE={}", input.remove.join(" ")),
                    format!("DH_KEEP={}", input.keep.join(" ")),
                    format!("DH_DIGESTS={}", input.digests.join(" ")),
                ]),
                mounts: Some(vec![Mount {
                    target: Some(SOCKET_IN_TASK.to_string()),
                    source: Some(input.node_socket.clone()),
                    typ: Some(MountType::BIND),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What one node did, read from its task.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodePrune {
    pub node: String,
    pub removed: Vec<String>,
    /// Kept tags the node holds.
    pub kept: Vec<String>,
    /// `tag: Docker's reason`: refused because a container uses it; kept.
    pub in_use: Vec<String>,
    /// `tag: error`.
    pub failed: Vec<String>,
    /// Why nothing was done there (down, drained, no result in time).
    pub not_pruned: Option<String>,
}

impl NodePrune {
    pub fn not_pruned(node: &str, why: impl Into<String>) -> Self {
        NodePrune {
            node: node.to_string(),
            not_pruned: Some(why.into()),
            ..Default::default()
        }
    }

    /// One line for the operator: `node1: removed a1, a2; a3 in use (…), kept; kept a4, a5`.
    pub fn line(&self) -> String {
        if let Some(why) = &self.not_pruned {
            return format!("{}: not pruned: {why}", self.node);
        }
        let mut parts = vec![if self.removed.is_empty() {
            "removed nothing".to_string()
        } else {
            format!("removed {}", self.removed.join(", "))
        }];
        parts.extend(self.in_use.iter().map(|u| {
            let (tag, why) = u.split_once(": ").unwrap_or((u, ""));
            format!("{tag} in use, kept ({why})")
        }));
        parts.extend(self.failed.iter().map(|f| format!("FAILED {f}")));
        if !self.kept.is_empty() {
            parts.push(format!("kept {}", self.kept.join(", ")));
        }
        format!("{}: {}", self.node, parts.join("; "))
    }
}

/// Reads one task's log into `node`'s result. Only lines marked and naming the task's own node
/// count; their words are the host's, so they are sanitized. `None` when the script did not get
/// to its end (with what it said so far).
pub fn parse_output(node: &str, node_id: &str, log: &str) -> (NodePrune, bool) {
    let mut r = NodePrune {
        node: node.to_string(),
        ..Default::default()
    };
    let mut finished = false;
    for line in log.lines() {
        let mut words = line.trim_end().splitn(5, ' ');
        if words.next() != Some(MARK) || words.next() != Some(node_id) {
            continue;
        }
        let verb = words.next().unwrap_or_default();
        let tag = crate::sanitize::host_text(words.next().unwrap_or_default());
        let rest = crate::sanitize::host_text(words.next().unwrap_or_default());
        match verb {
            "removed" if !r.removed.contains(&tag) => r.removed.push(tag),
            "kept" => r.kept.push(tag),
            "in-use" => r.in_use.push(format!("{tag}: {rest}")),
            "failed" => r.failed.push(format!("{tag}: {rest}")),
            // A misconfigured socket fails the prune: nothing was removed there, and the
            // operator must fix the config.
            "wrong-engine" => {
                r.failed.push(format!(
                    "the Docker socket mounted into its task is not this node's engine (it answered {rest}), nothing removed there; set `swarm.node_docker_socket` to where each node's engine listens"
                ));
                finished = true;
            }
            "done" => finished = true,
            _ => {}
        }
    }
    (r, finished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::names::LABEL_SERVICE;

    fn service() -> Service {
        crate::config::load_str(
            "[[service]]\nname = \"api\"\nimage = \"reg:5000/acme/api\"\npublic_port = 8080\n\n[env.dev]\nhosts = [\"local\"]\n",
            std::path::Path::new("/tmp/deckhand.toml"),
        )
        .expect("config")
        .services
        .remove(0)
    }

    #[test]
    fn the_job_is_one_task_per_node_with_the_node_socket_and_never_restarts() {
        let input = JobInput {
            repo: "reg:5000/acme/api".into(),
            remove: vec!["a1".into(), "a2".into()],
            keep: vec!["a3".into()],
            digests: vec!["a1=sha256:ab".into()],
            node_socket: "/var/run/docker.sock".into(),
        };
        let s = job_spec(&service(), &input);
        assert_eq!(s.name.as_deref(), Some("api-prune"));
        assert!(
            s.mode
                .as_ref()
                .and_then(|m| m.global_job.as_ref())
                .is_some()
        );
        let t = s.task_template.expect("task");
        assert_eq!(
            t.restart_policy.and_then(|r| r.condition),
            Some(TaskSpecRestartPolicyConditionEnum::NONE)
        );
        let c = t.container_spec.expect("container");
        let env = c.env.expect("env");
        assert!(env.contains(&"DH_NODE={{.Node.ID}}".to_string()), "{env:?}");
        assert!(env.contains(&"DH_REMOVE=a1 a2".to_string()), "{env:?}");
        assert!(
            env.contains(&"DH_DIGESTS=a1=sha256:ab".to_string()),
            "{env:?}"
        );
        let m = &c.mounts.expect("mounts")[0];
        assert_eq!(m.source.as_deref(), Some("/var/run/docker.sock"));
        assert_eq!(m.target.as_deref(), Some(SOCKET_IN_TASK));
        let labels = s.labels.expect("labels");
        assert!(
            !labels.contains_key(LABEL_SERVICE),
            "status must not list it"
        );
    }

    #[test]
    fn output_counts_only_its_own_nodes_marked_lines_and_is_sanitized() {
        let log = "noise\n\
            deckhand-prune N1 engine - \"Name\":\"node1\"\n\
            deckhand-prune N1 kept a3\n\
            deckhand-prune N2 removed a9\n\
            deckhand-prune N1 removed a1\n\
            deckhand-prune N1 in-use a2 conflict: unable to remove \x1b[31m (must force)\n\
            deckhand-prune N1 failed a4 500: boom\n\
            deckhand-prune N1 done -\n";
        let (r, done) = parse_output("node1", "N1", log);
        assert!(done);
        assert_eq!(r.removed, vec!["a1"]);
        assert_eq!(r.kept, vec!["a3"]);
        assert_eq!(r.failed, vec!["a4: 500: boom"]);
        assert!(r.in_use[0].starts_with("a2: conflict"), "{:?}", r.in_use);
        assert!(!r.in_use[0].contains('\x1b'), "{:?}", r.in_use);
        assert_eq!(
            r.line(),
            "node1: removed a1; a2 in use, kept (conflict: unable to remove \\x1b[31m (must force)); FAILED a4: 500: boom; kept a3"
        );
        let (r, done) = parse_output("node1", "N1", "deckhand-prune N1 removed a1\n");
        assert!(!done && r.removed == vec!["a1"]);
        let (r, done) = parse_output(
            "node1",
            "N1",
            "deckhand-prune N1 wrong-engine - \"Name\":\"laptop\"\n",
        );
        assert!(done);
        assert!(r.failed[0].contains("laptop"), "{:?}", r.failed);
    }
}
