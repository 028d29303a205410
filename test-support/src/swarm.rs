//! A real multi-node Docker Swarm on this machine, for tests of deckhand's Swarm backend.
//!
//! Each node is a private dockerd (own data root, exec root, pidfile and socket under the
//! cluster's temp dir in /tmp, so the root namespace and sshd reach the sockets) running in a
//! network namespace of its own, with its own address on a bridge in the root namespace
//! (10.252.<slot>.0/24, one slot per live cluster) and its own hostname (`node0`, `node1`, ...).
//! Node 0 is the manager (`docker swarm init`), the others join as workers. Each node's
//! containerd and dockerd share a mount namespace of the node's own, where `/run` is the node's
//! `run` dir: `/var/run/docker.sock` there (what a container bind-mounts) is the node's engine,
//! as on a real node, and never the machine's dockerd.
//!
//! - The registry: inside a namespace 127.0.0.1 is the node's own loopback, so every node runs
//!   a relay from its 127.0.0.1:5000 to a unix socket in the temp dir, served by one relay in
//!   the root namespace to the registry on 127.0.0.1:5000. The test images keep their names.
//! - SSH: a real sshd runs inside the manager's namespace on `node_ip(0):22` (throw-away keys,
//!   strict host key checking), so what deckhand forwards to "127.0.0.1:PORT" over ssh is the
//!   manager's loopback, as on a real manager.
//! - Published ports in host mode answer on `node_addr(i, port)` from the test process. The
//!   routing mesh (ingress) and service VIPs need IPVS, which this sandbox's kernel does not
//!   have; overlay networks (vxlan) with `--endpoint-mode dnsrr` work. See
//!   /work/wt/SWARM-HARNESS.md for what was probed.
//!
//! Everything is removed on drop, after a panic too; a cluster left by a killed test process
//! is removed by the next cluster that needs its slot.

mod net;

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{keygen, sshd_binary, text_of};

/// The manager's node index.
pub const MANAGER: usize = 0;

/// Swarm's own address pool for overlay networks. Overlay subnets only exist inside the nodes'
/// namespaces and containers, so every cluster can use the same pool.
const OVERLAY_POOL: &str = "10.128.0.0/16";

struct Node {
    hostname: String,
    dir: PathBuf,
    /// Holds the node's mount and UTS namespaces (see [`SwarmCluster::spawn_ns_holder`]).
    ns_holder: Option<Child>,
    dockerd: Option<Child>,
    containerd: Option<Child>,
    relay: Option<Child>,
}

/// Status of one node as the manager sees it (`docker node ls`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub id: String,
    pub hostname: String,
    /// `Ready`, `Down`, `Unknown`, `Disconnected`.
    pub status: String,
    /// `Active`, `Pause`, `Drain`.
    pub availability: String,
    /// `Leader`, `Reachable`, `Unreachable` for managers, empty for workers.
    pub manager_status: String,
}

/// A Swarm of `n` private dockerd nodes; see the module docs.
pub struct SwarmCluster {
    slot: u8,
    dir: PathBuf,
    nodes: Vec<Node>,
    registry_relay: Option<Child>,
    sshd: Option<Child>,
}

impl SwarmCluster {
    /// Starts `n` nodes, makes node 0 the manager and joins the others as workers; returns when
    /// the manager lists every node `Ready`. Panics with the failing node's log on any error.
    pub fn start(n: usize) -> SwarmCluster {
        assert!(n >= 1, "a Swarm needs at least one node");
        crate::require_docker_and_images();
        let (slot, dir) = net::take_slot(|slot| {
            tempfile::Builder::new()
                .prefix(&format!("{}{slot}-{}-", net::PREFIX, std::process::id()))
                .tempdir_in("/tmp")
                .expect("tempdir in /tmp")
                .keep()
        });
        // From here on Drop cleans up whatever part of the cluster exists.
        let mut cluster = SwarmCluster {
            slot,
            dir,
            nodes: Vec::new(),
            registry_relay: None,
            sshd: None,
        };
        cluster.registry_relay = Some(spawn_logged(
            Command::new("socat")
                .arg(format!(
                    "UNIX-LISTEN:{},fork,unlink-early",
                    cluster.registry_socket().display()
                ))
                .arg(format!("TCP:{}", crate::REGISTRY)),
            &cluster.dir.join("registry-relay.log"),
        ));
        for i in 0..n {
            net::add_node(slot, i);
            let dir = cluster.dir.join(format!("n{i}"));
            std::fs::create_dir_all(&dir).expect("node dir");
            cluster.nodes.push(Node {
                hostname: format!("node{i}"),
                dir,
                ns_holder: None,
                dockerd: None,
                containerd: None,
                relay: None,
            });
            cluster.spawn_ns_holder(i);
            let relay = spawn_logged(
                cluster
                    .in_netns(i, "socat")
                    .arg("TCP-LISTEN:5000,bind=127.0.0.1,fork,reuseaddr")
                    .arg(format!(
                        "UNIX-CONNECT:{}",
                        cluster.registry_socket().display()
                    )),
                &cluster.nodes[i].dir.join("registry-relay.log"),
            );
            cluster.nodes[i].relay = Some(relay);
            cluster.spawn_containerd(i);
            cluster.spawn_dockerd(i);
        }
        for i in 0..n {
            cluster.wait_dockerd(i);
            cluster.wait_registry(i);
        }
        let ip0 = cluster.node_ip(MANAGER).to_string();
        cluster.docker_ok(
            MANAGER,
            &[
                "swarm",
                "init",
                "--advertise-addr",
                &ip0,
                "--listen-addr",
                &format!("{ip0}:2377"),
                "--default-addr-pool",
                OVERLAY_POOL,
                "--default-addr-pool-mask-length",
                "24",
            ],
        );
        let token = cluster.docker_ok(MANAGER, &["swarm", "join-token", "-q", "worker"]);
        for i in 1..n {
            let ip = cluster.node_ip(i).to_string();
            cluster.docker_ok(
                i,
                &[
                    "swarm",
                    "join",
                    "--token",
                    &token,
                    "--advertise-addr",
                    &ip,
                    "--listen-addr",
                    &format!("{ip}:2377"),
                    &format!("{ip0}:2377"),
                ],
            );
        }
        for i in 0..n {
            cluster.wait_node_status(i, "Ready", Duration::from_secs(60));
        }
        cluster.start_sshd();
        cluster
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s address on the cluster's bridge (reachable from the test process).
    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        net::node_ip(self.slot, i)
    }

    /// `node_ip(i):port`: where a port published in host mode on node `i` answers.
    pub fn node_addr(&self, i: usize, port: u16) -> SocketAddr {
        SocketAddr::from((self.node_ip(i), port))
    }

    /// The hostname node `i` has in Swarm (`docker node ls`): `node<i>`.
    pub fn hostname(&self, i: usize) -> &str {
        &self.nodes[i].hostname
    }

    /// Node `i`'s Swarm node ID (from its own engine).
    pub fn node_id(&self, i: usize) -> String {
        self.docker_ok(i, &["info", "--format", "{{.Swarm.NodeID}}"])
    }

    /// Node `i`'s network namespace (`ip netns exec <it> ...`).
    pub fn netns(&self, i: usize) -> String {
        net::netns(self.slot, i)
    }

    /// Node `i`'s dockerd socket: a path on the shared filesystem. Inside the node's own
    /// mount namespace (its dockerd, containerd and containers) the same socket is
    /// `/var/run/docker.sock`, as on a real node.
    pub fn socket(&self, i: usize) -> PathBuf {
        self.run_dir(i).join("docker.sock")
    }

    /// The directory that is `/run` (and so `/var/run`) inside node `i`'s mount namespace.
    fn run_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.join("run")
    }

    /// The manager's dockerd socket (`docker_socket` of the manager host).
    pub fn manager_socket(&self) -> PathBuf {
        self.socket(MANAGER)
    }

    /// The `docker` CLI against node `i`'s engine.
    pub fn docker(&self, i: usize, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket(i).display()))
            .args(args)
            .output()
            .expect("docker CLI (docker.io)")
    }

    /// [`docker`](Self::docker) that must succeed; its trimmed stdout.
    pub fn docker_ok(&self, i: usize, args: &[&str]) -> String {
        let out = self.docker(i, args);
        assert!(
            out.status.success(),
            "docker {} on {} failed: {}\n--- its dockerd log (tail):\n{}",
            args.join(" "),
            self.hostname(i),
            text_of(&out),
            self.log_tail(i, 40)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A command run inside node `i`'s network namespace (its loopback, its published ports).
    /// Only the network namespace: files and processes are the machine's.
    pub fn in_netns(&self, i: usize, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.netns(i)))
            .arg(program);
        cmd
    }

    /// A command run as a process of node `i` itself: its network, mount and UTS namespaces
    /// (its `/var/run/docker.sock` is the node's own engine, its hostname `node<i>`).
    pub fn in_node(&self, i: usize, program: &str) -> Command {
        let holder = self.nodes[i]
            .ns_holder
            .as_ref()
            .map(Child::id)
            .expect("the node's namespace holder runs");
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", self.netns(i)))
            .arg(format!("--mount=/proc/{holder}/ns/mnt"))
            .arg(format!("--uts=/proc/{holder}/ns/uts"))
            .arg(program);
        cmd
    }

    /// The last `lines` lines of node `i`'s dockerd log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let log =
            std::fs::read_to_string(self.nodes[i].dir.join("dockerd.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// What the manager knows, for failure messages: nodes, services, and every service's
    /// tasks with their errors.
    pub fn diagnose(&self) -> String {
        let mut out = vec![
            text_of(&self.docker(MANAGER, &["node", "ls"])),
            text_of(&self.docker(MANAGER, &["service", "ls"])),
        ];
        let services = self.docker(MANAGER, &["service", "ls", "-q"]);
        for id in String::from_utf8_lossy(&services.stdout).split_whitespace() {
            out.push(text_of(&self.docker(
                MANAGER,
                &[
                    "service",
                    "ps",
                    "--no-trunc",
                    "--format",
                    "{{.Name}} {{.Node}} {{.DesiredState}} {{.CurrentState}} {{.Error}}",
                    id,
                ],
            )));
        }
        out.join("\n")
    }

    /// Every node as the manager sees it, in `docker node ls` order.
    pub fn node_states(&self) -> Vec<NodeState> {
        let out = self.docker(
            MANAGER,
            &[
                "node",
                "ls",
                "--format",
                "{{.ID}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}",
            ],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.split('\t').map(str::to_string);
                Some(NodeState {
                    id: f.next()?,
                    hostname: f.next()?,
                    status: f.next()?,
                    availability: f.next()?,
                    manager_status: f.next().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Waits until the manager reports node `i` with `status` (`Ready`, `Down`); panics with
    /// what it saw after `timeout`.
    pub fn wait_node_status(&self, i: usize, status: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let states = self.node_states();
            if states
                .iter()
                .any(|s| s.hostname == self.nodes[i].hostname && s.status == status)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not {status} within {timeout:?}: {states:#?}\n--- its dockerd log (tail):\n{}",
                self.hostname(i),
                self.log_tail(i, 40)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills node `i`'s dockerd with SIGKILL, as a crash or the OOM killer would. Its containerd
    /// and containers keep running (as with Debian's separate containerd service); the manager
    /// sees the node `Down` after its heartbeat period (5 s by default).
    pub fn kill_node_dockerd(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].dockerd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i`'s dockerd again (after [`kill_node_dockerd`](Self::kill_node_dockerd),
    /// or stops it with SIGTERM first, as `systemctl restart docker` does) and waits until
    /// the manager lists it `Ready`.
    pub fn restart_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].dockerd.take() {
            net::kill(child.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let containerd_exited = self.nodes[i]
            .containerd
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some());
        if containerd_exited {
            self.spawn_containerd(i);
        }
        self.spawn_dockerd(i);
        self.wait_dockerd(i);
        self.wait_node_status(i, "Ready", Duration::from_secs(60));
    }

    /// Cuts node `i` off the network (its veth goes down): a partition, or a powered-off
    /// droplet as the rest of the cluster sees it. Its processes keep running.
    pub fn disconnect_node(&self, i: usize) {
        net::run_ok("ip", &["link", "set", &net::veth(self.slot, i), "down"]);
    }

    /// Undoes [`disconnect_node`](Self::disconnect_node).
    pub fn reconnect_node(&self, i: usize) {
        net::run_ok("ip", &["link", "set", &net::veth(self.slot, i), "up"]);
    }

    /// Copies an image from the machine's dockerd into node `i` (`docker save | docker load`),
    /// for images that are not in the registry (e.g. [`crate::BUSYBOX_IMAGE`]).
    pub fn load_local_image(&self, i: usize, image: &str) {
        let mut save = Command::new("docker")
            .args(["save", image])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save");
        let out = Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket(i).display()))
            .args(["load", "-q"])
            .stdin(save.stdout.take().expect("save stdout"))
            .output()
            .expect("docker load");
        let saved = save.wait().expect("docker save");
        assert!(
            saved.success() && out.status.success(),
            "loading {image} into {}: {}",
            self.hostname(i),
            text_of(&out)
        );
    }

    // --- the manager's sshd -------------------------------------------------------------

    /// `root@<manager ip>`: the ssh destination of the manager (port [`Self::ssh_port`]).
    pub fn ssh_destination(&self) -> String {
        format!("root@{}", self.node_ip(MANAGER))
    }

    pub fn ssh_port(&self) -> u16 {
        22
    }

    /// The client key the manager's sshd accepts.
    pub fn client_key(&self) -> PathBuf {
        self.sshd_dir().join("client_key")
    }

    /// known_hosts holding exactly the manager's host key.
    pub fn known_hosts(&self) -> PathBuf {
        self.sshd_dir().join("known_hosts")
    }

    /// A state directory for deckhand on the manager (lock, audit log, ledger), on the shared
    /// filesystem so tests can read it.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("manager-state")
    }

    /// The ssh fields of the manager, one `key = value` line each, for a TOML table: `ssh`,
    /// `port`, `identity_file`, `known_hosts`, `state_dir`, `docker_socket`.
    pub fn manager_ssh_fields(&self) -> String {
        format!(
            "ssh = \"{}\"\nport = {}\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\nstate_dir = \"{}\"\ndocker_socket = \"{}\"\n",
            self.ssh_destination(),
            self.ssh_port(),
            self.client_key().display(),
            self.known_hosts().display(),
            self.state_dir().display(),
            self.manager_socket().display(),
        )
    }

    /// The manager as an ordinary host table (`[[env.<env>.host]]`, name `name`).
    pub fn manager_host_toml(&self, env: &str, name: &str) -> String {
        format!(
            "[[env.{env}.host]]\nname = \"{name}\"\n{}",
            self.manager_ssh_fields()
        )
    }

    /// `[env.<env>.swarm]` for deckhand.toml: this cluster's manager over ssh, `replicas` per
    /// color.
    pub fn swarm_env_toml(&self, env: &str, replicas: u32) -> String {
        format!(
            "[env.{env}.swarm]\nmanager = \"{}\"\nport = {}\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\nstate_dir = \"{}\"\ndocker_socket = \"{}\"\nreplicas = {replicas}\n",
            self.ssh_destination(),
            self.ssh_port(),
            self.client_key().display(),
            self.known_hosts().display(),
            self.state_dir().display(),
            self.manager_socket().display(),
        )
    }

    fn sshd_dir(&self) -> PathBuf {
        self.dir.join("sshd")
    }

    fn start_sshd(&mut self) {
        let dir = self.sshd_dir();
        std::fs::create_dir_all(&dir).expect("sshd dir");
        std::fs::create_dir_all(self.state_dir()).expect("state dir");
        let _ = std::fs::create_dir_all("/run/sshd");
        let host_key = dir.join("host_key");
        keygen(&host_key);
        keygen(&self.client_key());
        let authorized = dir.join("authorized_keys");
        std::fs::copy(self.client_key().with_extension("pub"), &authorized)
            .expect("authorized_keys");
        let ip = self.node_ip(MANAGER);
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port 22\nListenAddress {ip}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\nAuthorizedKeysFile {ak}\n\
                 StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nAllowTcpForwarding yes\n\
                 AllowStreamLocalForwarding yes\nExposeAuthInfo yes\nMaxSessions 200\nMaxStartups 200\nLogLevel ERROR\n",
                hk = host_key.display(),
                pid = dir.join("sshd.pid").display(),
                ak = authorized.display(),
            ),
        )
        .expect("sshd_config");
        let pubkey = std::fs::read_to_string(host_key.with_extension("pub")).expect("host pub key");
        let mut parts = pubkey.split_whitespace();
        let (kind, key) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        // Port 22 is written without brackets in known_hosts.
        std::fs::write(self.known_hosts(), format!("{ip} {kind} {key}\n")).expect("known_hosts");
        let mut cmd = self.in_netns(MANAGER, &sshd_binary().display().to_string());
        cmd.args(["-D", "-e", "-f"]).arg(&config);
        self.sshd = Some(spawn_logged(&mut cmd, &dir.join("sshd.log")));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&self.node_addr(MANAGER, 22), Duration::from_secs(1))
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the manager's sshd did not listen on {ip}:22 within 10s: {}",
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // --- engines --------------------------------------------------------------------------

    fn registry_socket(&self) -> PathBuf {
        self.dir.join("registry.sock")
    }

    fn containerd_socket(&self, i: usize) -> PathBuf {
        self.nodes[i].dir.join("ctd.sock")
    }

    /// The node's own containerd, in its namespace, like Debian's containerd service next to
    /// dockerd: a dockerd left to find one would take the machine's at
    /// /run/containerd/containerd.sock where that runs (shared with the machine's dockerd, in
    /// the root namespace), and killing a dockerd must leave its containers running.
    /// The node's own mount and UTS namespaces, held by a sleeping process that containerd
    /// and dockerd join (`nsenter`). In it `/run` (so `/var/run`) is the node's `run` dir:
    /// `/var/run/docker.sock` there is the node's socket, as on a real node, so a container
    /// that bind-mounts it (deckhand's prune job) reaches its own node's engine, never the
    /// machine's dockerd (whose socket is the root namespace's /run/docker.sock). Mounts made
    /// in it (overlay layers, network namespaces) never show in the machine's namespace, and
    /// go with it. Its hostname is the node's (Swarm names nodes by hostname).
    fn spawn_ns_holder(&mut self, i: usize) {
        let run = self.run_dir(i);
        std::fs::create_dir_all(&run).expect("node run dir");
        let ready = run.join(".mntns-ready");
        let mut cmd = self.in_netns(i, "unshare");
        cmd.args([
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
        ])
        .arg(
            "set -e; target=$(readlink -f /var/run); mount --bind \"$0\" \"$target\"; \
                 hostname \"$1\"; : > \"$target/.mntns-ready\"; exec sleep infinity",
        )
        .arg(&run)
        .arg(&self.nodes[i].hostname);
        let mut child = spawn_logged(&mut cmd, &self.nodes[i].dir.join("ns-holder.log"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready.exists() {
            let exited = child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{}'s mount namespace was not set up (exit {exited:?}): {}",
                self.hostname(i),
                std::fs::read_to_string(self.nodes[i].dir.join("ns-holder.log"))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.nodes[i].ns_holder = Some(child);
    }

    fn spawn_containerd(&mut self, i: usize) {
        let d = self.nodes[i].dir.clone();
        let config = d.join("containerd.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{sock}\"\n[debug]\n  address = \"{debug}\"\n",
                root = d.join("ctd-root").display(),
                state = d.join("ctd-state").display(),
                sock = self.containerd_socket(i).display(),
                debug = d.join("ctd-debug.sock").display(),
            ),
        )
        .expect("containerd config");
        let mut cmd = self.in_node(i, "containerd");
        cmd.arg("--config").arg(&config);
        self.nodes[i].containerd = Some(spawn_logged(&mut cmd, &d.join("containerd.log")));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(self.containerd_socket(i)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{}'s containerd did not listen within 30s:\n{}",
                self.hostname(i),
                std::fs::read_to_string(d.join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn spawn_dockerd(&mut self, i: usize) {
        let d = self.nodes[i].dir.clone();
        // In the node's namespaces, with its containerd: dockerd's mounts must be where its
        // containerd (and runc) see them.
        let mut cmd = self.in_node(i, "dockerd");
        cmd.arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("x"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket(i).display()))
            .arg("--containerd")
            .arg(self.containerd_socket(i))
            // Drop (and restart_node) should not wait long for containers to stop.
            .args(["--shutdown-timeout", "5"]);
        self.nodes[i].dockerd = Some(spawn_logged(&mut cmd, &d.join("dockerd.log")));
    }

    fn wait_dockerd(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.docker(i, &["version"]).status.success() {
            let exited = self.nodes[i]
                .dockerd
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{}'s dockerd did not answer within 60s (exit: {exited:?}):\n{}",
                self.hostname(i),
                self.log_tail(i, 60)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The registry answers through node `i`'s relay (`GET /v2/` from inside its namespace).
    fn wait_registry(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self
                .in_netns(i, "socat")
                .args(["-T", "2", "-", "TCP:127.0.0.1:5000"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    use std::io::Write;
                    if let Some(mut s) = c.stdin.take() {
                        let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                    }
                    c.wait_with_output()
                });
            let answer = out.map(|o| text_of(&o)).unwrap_or_else(|e| e.to_string());
            if answer.starts_with("HTTP/1.") && answer.contains(" 200 ") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the registry does not answer on {}'s 127.0.0.1:5000 (relay to {}): {answer}",
                self.hostname(i),
                crate::REGISTRY
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Spawns `cmd` with stdout and stderr appended to `log`, stdin closed.
fn spawn_logged(cmd: &mut Command, log: &Path) -> Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {:?} ({e}): install docker.io, socat, openssh-server and util-linux (scripts/setup.sh does)",
                cmd.get_program()
            )
        })
}

impl Drop for SwarmCluster {
    fn drop(&mut self) {
        // For a post-mortem: the cluster stays up (clean it with a later run, which reclaims
        // the slot once this process has exited).
        if std::env::var_os("DECKHAND_KEEP_SWARM").is_some() {
            eprintln!(
                "DECKHAND_KEEP_SWARM: cluster kept in {} (manager socket {})",
                self.dir.display(),
                self.manager_socket().display()
            );
            return;
        }
        // Children first, by handle; the teardown then finds whatever they left (containerd,
        // shims, containers of a killed dockerd) by the temp dir in their command lines.
        for child in [self.sshd.take(), self.registry_relay.take()]
            .into_iter()
            .flatten()
            .chain(self.nodes.iter_mut().filter_map(|n| n.relay.take()))
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        for node in &mut self.nodes {
            if let Some(child) = &node.dockerd {
                net::kill(child.id(), "TERM");
            }
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.dockerd.take() {
                let deadline = Instant::now() + Duration::from_secs(20);
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            // After its dockerd: containers a killed dockerd left are the teardown's.
            if let Some(mut child) = node.containerd.take() {
                net::kill(child.id(), "TERM");
                let deadline = Instant::now() + Duration::from_secs(5);
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            if let Some(mut child) = node.ns_holder.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        net::teardown(self.slot, Some(&self.dir));
    }
}
