//! `[env.NAME] swarm = { manager = ... }`: an environment backed by a Docker Swarm, reached
//! over SSH through one manager (issue 16). The manager becomes the environment's one host,
//! marked as a Swarm manager; the rest of the fields are a long-form host's.

use toml::Spanned;

use super::{HOST_NAME, Validator};
use crate::config::ConfigError;
use crate::config::model::{HostSpec, SwarmSpec};
use crate::config::raw::{RawEnv, RawSwarm};

use super::hosts::{HostDefaults, expand_home};

/// Replicas per color when the table does not say.
const DEFAULT_REPLICAS: u32 = 2;
/// Where each node's Docker engine listens when the table does not say.
const DEFAULT_NODE_SOCKET: &str = "/var/run/docker.sock";
/// More tasks than this per color is beyond what the proxy's server slots are sized for.
const MAX_REPLICAS: u32 = 32;

impl Validator<'_> {
    pub(super) fn swarm_manager(
        &self,
        env: &str,
        sw: &Spanned<RawSwarm>,
        r: &RawEnv,
        ctx: &HostDefaults<'_>,
    ) -> Result<HostSpec, ConfigError> {
        let field = |f: &str| format!("env.{env}.swarm.{f}");
        if !r.hosts.is_empty() || !r.host.is_empty() || r.ansible_inventory.is_some() {
            return Err(self.invalid(
                sw,
                format!("env.{env}.swarm"),
                format!(
                    "environment `{env}` has both a swarm and hosts: a Swarm is reached through its manager only"
                ),
                "remove `hosts`, `[[env.NAME.host]]` and `ansible_inventory` from this environment, or move the swarm to an environment of its own",
            ));
        }
        let s = sw.get_ref();
        let manager = s.manager.get_ref();
        if manager == "local" {
            return Err(self.invalid(
                &s.manager,
                field("manager"),
                "a Swarm manager is reached over SSH, not as `local`",
                "give the manager's ssh destination, e.g. \"deploy@203.0.113.10\" or an alias from ~/.ssh/config",
            ));
        }
        if manager.is_empty() || manager.starts_with('-') || !HOST_NAME.is_match(manager) {
            return Err(self.invalid(
                &s.manager,
                field("manager"),
                format!("`{manager}` is not an ssh destination"),
                "write user@host, host, or an alias from ~/.ssh/config (no spaces, not starting with `-`)",
            ));
        }
        let name = match &s.name {
            Some(n) if !HOST_NAME.is_match(n.get_ref()) => {
                return Err(self.invalid(
                    n,
                    field("name"),
                    format!("`{}` is not a usable host name", n.get_ref()),
                    "use letters, digits, `.`, `-` and `_`",
                ));
            }
            Some(n) => n.get_ref().clone(),
            None => manager.clone(),
        };
        let port = match &s.port {
            Some(p) => Some(self.port(p, &field("port"))?),
            None => None,
        };
        let replicas = match &s.replicas {
            None => DEFAULT_REPLICAS,
            Some(n) => u32::try_from(*n.get_ref())
                .ok()
                .filter(|n| (1..=MAX_REPLICAS).contains(n))
                .ok_or_else(|| {
                    self.invalid(
                        n,
                        field("replicas"),
                        format!("{} is not a number of replicas", n.get_ref()),
                        format!(
                            "use 1 to {MAX_REPLICAS} tasks per color (default {DEFAULT_REPLICAS})"
                        ),
                    )
                })?,
        };
        for (v, f) in [
            (&s.docker_socket, "docker_socket"),
            (&s.state_dir, "state_dir"),
            (&s.node_docker_socket, "node_docker_socket"),
        ] {
            if let Some(p) = v
                && !p.get_ref().starts_with('/')
            {
                return Err(self.invalid(
                    p,
                    field(f),
                    format!("`{}` is not an absolute path on the manager", p.get_ref()),
                    "give an absolute path, e.g. \"/var/run/docker.sock\" or \"/var/lib/deckhand\"",
                ));
            }
        }
        let mut spec = ctx.ssh(
            name,
            manager.clone(),
            s.user.as_ref().map(|v| v.get_ref().clone()),
            port,
            s.identity_file.as_ref().map(|v| expand_home(v.get_ref())),
            s.known_hosts.as_ref().map(|v| expand_home(v.get_ref())),
            s.docker_socket.as_ref().map(|v| v.get_ref().clone()),
            s.state_dir.as_ref().map(|v| v.get_ref().clone()),
        );
        spec.swarm = Some(SwarmSpec {
            replicas,
            node_docker_socket: s
                .node_docker_socket
                .as_ref()
                .map_or_else(|| DEFAULT_NODE_SOCKET.to_string(), |v| v.get_ref().clone()),
        });
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    fn load(swarm: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        crate::config::load_str(
            &format!(
                "[[service]]\nname = \"api\"\nimage = \"r/acme/api\"\npublic_port = 8080\n\n[env.prod]\nswarm = {{ manager = \"deploy@10.0.0.1\"{swarm} }}\n"
            ),
            std::path::Path::new("/tmp/deckhand.toml"),
        )
    }

    #[test]
    fn the_nodes_docker_socket_defaults_and_must_be_absolute() {
        let c = load("").expect("config");
        let spec = c.envs["prod"].hosts[0].swarm.clone().expect("swarm");
        assert_eq!(spec.node_docker_socket, "/var/run/docker.sock");
        let c = load(", node_docker_socket = \"/run/user/1000/docker.sock\"").expect("config");
        let spec = c.envs["prod"].hosts[0].swarm.clone().expect("swarm");
        assert_eq!(spec.node_docker_socket, "/run/user/1000/docker.sock");
        let e = load(", node_docker_socket = \"docker.sock\"")
            .expect_err("relative")
            .to_string();
        assert!(e.contains("env.prod.swarm.node_docker_socket"), "{e}");
    }
}
