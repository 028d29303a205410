//! The Swarm backend (issue 16) on a one-node Swarm: a private dockerd in its own network
//! namespace (own data root, sockets and addresses; never the machine's dockerd), made a
//! Swarm manager, reached by deckhand through a real sshd like any manager. The multi-node
//! and node-failure cases are in swarm_cluster.rs (sh's test bed).
//!
//! The node reaches the machine's registry on its own `127.0.0.1:5000` through a socat pair
//! joined by a unix socket (filesystem paths cross namespaces); the proxy's published port is
//! forwarded from the machine's loopback to the node's address, so the keep-alive clients, the
//! fresh-connection client and deckhand's confirm (ssh to the machine's 127.0.0.1) all go
//! through the published port of the node.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

const SLOTS: u8 = 16;

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} ({e}): install it (scripts/setup.sh does)"))
}

fn run_ok(cmd: &str, args: &[&str]) {
    let out = run(cmd, args);
    assert!(out.status.success(), "{cmd} {args:?}: {}", text(&out));
}

/// One Swarm node in its own network namespace, a manager.
struct SwarmNode {
    dir: tempfile::TempDir,
    netns: String,
    slot: u8,
    children: Vec<Child>,
    dockerd: Option<Child>,
}

impl SwarmNode {
    fn host_veth(slot: u8) -> String {
        format!("dhsw{slot}h")
    }

    fn addr(&self) -> String {
        format!("10.198.{}.2", self.slot)
    }

    /// Takes the first free slot: creating the veth pair is atomic, so it is also the lock.
    fn start() -> SwarmNode {
        require_docker_and_images();
        let slot = (0..SLOTS)
            .find(|s| {
                run(
                    "ip",
                    &[
                        "link",
                        "add",
                        &Self::host_veth(*s),
                        "type",
                        "veth",
                        "peer",
                        "name",
                        &format!("dhsw{s}n"),
                    ],
                )
                .status
                .success()
            })
            .unwrap_or_else(|| {
                panic!("no free swarm test slot: delete leftovers with `ip link del dhswNh`")
            });
        let netns = format!("dhsw{slot}-{}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("dhsw")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let mut node = SwarmNode {
            dir,
            netns: netns.clone(),
            slot,
            children: Vec::new(),
            dockerd: None,
        };
        let (h, n) = (Self::host_veth(slot), format!("dhsw{slot}n"));
        run_ok("ip", &["netns", "add", &netns]);
        run_ok("ip", &["link", "set", &n, "netns", &netns]);
        run_ok(
            "ip",
            &["addr", "add", &format!("10.198.{slot}.1/24"), "dev", &h],
        );
        run_ok("ip", &["link", "set", &h, "up"]);
        let cidr = format!("{}/24", node.addr());
        for args in [
            ["addr", "add", cidr.as_str(), "dev", n.as_str()].as_slice(),
            &["link", "set", n.as_str(), "up"],
            &["link", "set", "lo", "up"],
        ] {
            let mut a = vec!["netns", "exec", netns.as_str(), "ip"];
            a.extend_from_slice(args);
            run_ok("ip", &a);
        }
        node.bridge_registry();
        node.spawn_dockerd();
        let out = node.docker(&["swarm", "init", "--advertise-addr", &node.addr()]);
        assert!(out.status.success(), "swarm init: {}", text(&out));
        node
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("d.sock")
    }

    fn nsenter(&self) -> Command {
        let mut c = Command::new("nsenter");
        // Only the network namespace: `ip netns exec` would also remount /sys, hiding the
        // cgroup mounts dockerd needs ("Devices cgroup isn't mounted").
        c.arg(format!("--net=/var/run/netns/{}", self.netns));
        c
    }

    fn bridge_registry(&mut self) {
        let sock = self.dir.path().join("registry.sock");
        let outside = Command::new("socat")
            .arg(format!("UNIX-LISTEN:{},fork", sock.display()))
            .arg(format!("TCP:{REGISTRY}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat (scripts/setup.sh installs it)");
        self.children.push(outside);
        let inside = self
            .nsenter()
            .args([
                "socat",
                "TCP-LISTEN:5000,bind=127.0.0.1,fork,reuseaddr",
                &format!("UNIX-CONNECT:{}", sock.display()),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat in the namespace");
        self.children.push(inside);
    }

    /// Forwards the machine's `127.0.0.1:port` to the node's published `port`.
    fn forward_public_port(&mut self, port: u16) {
        let c = Command::new("socat")
            .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"))
            .arg(format!("TCP:{}:{port}", self.addr()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat");
        self.children.push(c);
    }

    fn spawn_dockerd(&mut self) {
        let d = self.dir.path();
        let log = std::fs::File::create(d.join("dockerd.log")).expect("log");
        let child = self
            .nsenter()
            .arg("dockerd")
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("x"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("dockerd");
        self.dockerd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "the node's dockerd did not answer within 60s:\n{}",
                std::fs::read_to_string(d.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .output()
            .expect("docker CLI")
    }

    fn docker_out(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.status.success(), "docker {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// What Swarm says about the test's services, for failure messages.
    fn diagnose(&self, svc: &TestService) -> String {
        let mut out = String::new();
        for c in ["blue", "green", "proxy"] {
            let name = format!("{}-{c}", svc.name);
            out.push_str(&text(&self.docker(&["service", "ps", "--no-trunc", &name])));
        }
        let proxy = self.docker_out(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={}-proxy", svc.name),
        ]);
        if !proxy.is_empty() {
            for c in ["blue", "green"] {
                out.push_str(&text(&self.docker(&[
                    "exec",
                    &proxy,
                    "sh",
                    "-c",
                    &format!("nslookup tasks.{}-{c} 127.0.0.11", svc.name),
                ])));
            }
        }
        out
    }

    /// `[env.sw] swarm = { ... }` for this manager through `sshd`.
    fn env_toml(&self, sshd: &SshServer, extra: &str) -> String {
        format!(
            "[env.sw]\nswarm = {{ manager = \"root@127.0.0.1\", name = \"mgr\", port = {port}, identity_file = \"{key}\", known_hosts = \"{kh}\", docker_socket = \"{sock}\", state_dir = \"{state}\"{extra} }}\n",
            port = sshd.port,
            key = sshd.client_key.display(),
            kh = sshd.known_hosts.display(),
            sock = self.socket().display(),
            state = sshd.state_dir().display(),
        )
    }
}

impl Drop for SwarmNode {
    fn drop(&mut self) {
        let services = self.docker(&["service", "ls", "-q"]);
        for id in String::from_utf8_lossy(&services.stdout).split_whitespace() {
            let _ = self.docker(&["service", "rm", id]);
        }
        let _ = self.docker(&["swarm", "leave", "--force"]);
        if let Some(mut d) = self.dockerd.take() {
            let _ = run("kill", &["-TERM", &d.id().to_string()]);
            let deadline = Instant::now() + Duration::from_secs(20);
            while d.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = run("ip", &["link", "del", &Self::host_veth(self.slot)]);
        let _ = run("ip", &["netns", "del", &self.netns]);
    }
}

fn config(
    node: &SwarmNode,
    svc: &TestService,
    sshd: &SshServer,
    extra: &str,
) -> (tempfile::TempDir, PathBuf) {
    write_config(&format!(
        "{}\n{}",
        svc.service_toml(""),
        node.env_toml(sshd, extra)
    ))
}

fn timed(path: &Path, args: &[&str]) -> (std::process::Output, Duration) {
    let t = Instant::now();
    let out = deckhand(path, args);
    (out, t.elapsed())
}

fn replicas_running(node: &SwarmNode, name: &str) -> String {
    node.docker_out(&[
        "service",
        "ls",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Name}} {{.Replicas}}",
    ])
}

#[test]
fn swarm_deploy_and_rollback_under_load_lose_no_request_and_status_shows_nodes_and_replicas() {
    let mut node = SwarmNode::start();
    let svc = TestService::new("sw");
    svc.push(&GOOD_SHAS[..2]);
    svc.push(&[UNHEALTHY_SHA]);
    node.forward_public_port(svc.public_port);
    let sshd = SshServer::start();
    let (_d, path) = config(&node, &svc, &sshd, ", replicas = 2");

    let (out, first) = timed(&path, &["deploy", GOOD_SHAS[0], "--env", "sw", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "first deploy: {}\n{}",
        text(&out),
        node.diagnose(&svc)
    );
    assert_eq!(public_get(svc.public_port, "/").map(|r| r.0), Ok(200));

    let keep = KeepAliveClients::start(svc.public_port, 6);
    let fresh = LoadClient::start(svc.public_port);
    std::thread::sleep(Duration::from_millis(300));
    let (out, deploy) = timed(&path, &["deploy", GOOD_SHAS[1], "--env", "sw", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "deploy: {}", text(&out));
    // A release that never gets healthy: exit 1, the live color untouched and serving.
    let out = deckhand(
        &path,
        &[
            "deploy",
            UNHEALTHY_SHA,
            "--env",
            "sw",
            "--yes",
            "--timeout",
            "8s",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "unhealthy deploy: {}",
        text(&out)
    );
    let (out, rollback) = timed(&path, &["rollback", "--env", "sw", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "rollback: {}", text(&out));
    std::thread::sleep(Duration::from_millis(300));
    let k = keep.finish();
    let f = fresh.finish();
    eprintln!(
        "swarm figures: first deploy {first:?}, deploy {deploy:?}, rollback {rollback:?}; keep-alive sent {} failed {} connections {}; fresh sent {} failed {}",
        k.sent, k.failed, k.connections, f.sent, f.failed
    );
    assert_eq!(k.failed, 0, "keep-alive failures: {:?}", k.failures);
    assert_eq!(f.failed, 0, "fresh-connection failures: {:?}", f.failures);
    assert_eq!(
        k.connections, 6,
        "a keep-alive connection was closed by the switch"
    );
    assert!(
        k.colors_seen.len() == 2,
        "both colors served: {:?}",
        k.colors_seen
    );

    // Rolled back to a000001: the first color again, the other scaled to zero, spec kept.
    let out = deckhand(&path, &["status", "--env", "sw", "--output", "json"]);
    let (code, json): (_, serde_json::Value) = (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out))),
    );
    assert_eq!(code, Some(0), "status: {json}");
    let host = &json["hosts"][0];
    let sw = &host["swarm"];
    let nodes = sw["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1, "{sw}");
    assert_eq!(nodes[0]["state"], "ready");
    assert_eq!(nodes[0]["role"], "manager");
    assert_eq!(nodes[0]["availability"], "active");
    let s = &sw["services"][0];
    let live = s["live_color"].as_str().expect("live color");
    let idle = if live == "blue" { "green" } else { "blue" };
    assert_eq!(s["colors"][live]["sha"], GOOD_SHAS[0], "{s}");
    assert_eq!(s["colors"][live]["desired"], 2);
    assert_eq!(s["colors"][live]["running"], 2);
    assert_eq!(s["colors"][live]["nodes"].as_array().map(Vec::len), Some(2));
    assert_eq!(s["colors"][idle]["desired"], 0, "{s}");
    assert_eq!(host["services"][0]["live_sha"], GOOD_SHAS[0]);
    assert!(
        replicas_running(&node, &format!("{}-{live}", svc.name)).ends_with("2/2"),
        "{}",
        replicas_running(&node, &format!("{}-{live}", svc.name))
    );

    // History and the audit log are on the manager's state directory.
    let out = deckhand(&path, &["history", "--env", "sw", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "history: {}", text(&out));
    let h = String::from_utf8_lossy(&out.stdout);
    assert!(h.contains(GOOD_SHAS[1]) && h.contains("rolled_back"), "{h}");
    let audit = audit_records(&sshd.state_dir());
    assert!(
        audit
            .iter()
            .any(|r| r["action"] == "rollback" && r["outcome"] == "success"),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|r| r["to_sha"] == UNHEALTHY_SHA && r["outcome"] == "failed")
    );

    // The table names the nodes too.
    let out = deckhand(&path, &["status", "--env", "sw"]);
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(
        t.contains("NODE") && t.contains("ready") && t.contains("manager"),
        "{t}"
    );
}

#[test]
fn a_bad_swarm_table_is_refused_naming_the_file_and_the_field() {
    let svc = TestService::new("swc");
    for (env, field, says) in [
        (
            "[env.sw]\nhosts = [\"a@b\"]\nswarm = { manager = \"deploy@10.0.0.1\" }\n",
            "env.sw.swarm",
            "both a swarm and hosts",
        ),
        (
            "[env.sw]\nswarm = { manager = \"deploy@10.0.0.1\", replicas = 0 }\n",
            "env.sw.swarm.replicas",
            "0 is not a number of replicas",
        ),
        (
            "[env.sw]\nswarm = { manager = \"local\" }\n",
            "env.sw.swarm.manager",
            "reached over SSH",
        ),
        (
            "[env.sw]\nswarm = { manager = \"deploy@10.0.0.1\", managr = \"x\" }\n",
            "managr",
            "unknown field",
        ),
    ] {
        let (_d, path) = write_config(&format!("{}\n{env}", svc.service_toml("")));
        let out = deckhand(&path, &["status", "--env", "sw"]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{t}");
        assert!(
            t.contains(&path.display().to_string()),
            "names the file: {t}"
        );
        assert!(t.contains(field) && t.contains(says), "{field}: {t}");
    }
}
