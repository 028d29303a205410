//! dockerd restarted in the middle of a deploy. The other tests share the machine's dockerd, so
//! this one starts an engine of its own (own data root, sockets and address pool) configured like
//! our droplets: `live-restore` on, as `infrastructure/ansible/roles/docker` sets it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// Engines of concurrent tests take different slots: each has its own default bridge, bridge
/// address and container address pool, so their networks never overlap. The bridge is created
/// here, not by dockerd, because `--bridge=none` would make dockerd delete `docker0`, the
/// machine dockerd's default bridge.
const SLOTS: u8 = 8;

fn bridge_name(slot: u8) -> String {
    format!("dhtest{slot}")
}

fn pool(slot: u8) -> String {
    format!("10.{}.0.0/16", 231 + u16::from(slot))
}

struct PrivateDockerd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    slot: u8,
}

impl PrivateDockerd {
    fn start() -> PrivateDockerd {
        // Short path: the engine's unix sockets live under it (108-byte limit).
        let dir = tempfile::Builder::new()
            .prefix("dhd")
            .tempdir_in("/tmp")
            .expect("tempdir");
        // The host's FORWARD policy is DROP (the main dockerd sets it) and bridged traffic goes
        // through iptables, so the proxy could not reach the app containers of an engine that
        // manages no iptables rules of its own.
        let slot = take_bridge();
        iptables_rule("-I", slot);
        let mut engine = PrivateDockerd {
            dir,
            child: None,
            slot,
        };
        engine.spawn();
        engine
    }

    /// The test service on host `lab-1` (env `lab`), whose Docker is this engine.
    fn config(&self, svc: &TestService, sshd: &SshServer) -> (tempfile::TempDir, PathBuf) {
        write_config(&format!(
            "{}\n{}docker_socket = \"{}\"\n",
            svc.service_toml(""),
            sshd.host_toml("lab", "lab-1"),
            self.socket().display()
        ))
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("d.sock")
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("dockerd.log"))
            .expect("log file");
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(d.join("root"))
            .arg("--exec-root")
            .arg(d.join("x"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args([
                &format!("--bridge={}", bridge_name(self.slot)),
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--default-address-pool",
                &format!("base={},size=24", pool(self.slot)),
                "--live-restore",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start dockerd ({e}): install docker.io (scripts/setup.sh does)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "the test's own dockerd did not answer within 60s:\n{}",
                self.log()
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

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// Stops dockerd the way `systemctl restart docker` does (SIGTERM, wait), then starts it.
    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("dockerd did not stop within 30s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ip_of(&self, container: &str) -> std::net::IpAddr {
        let out = self.docker(&[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            container,
        ]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("address of {container}: {e}: {}", text(&out)))
    }

    fn running(&self) -> Vec<String> {
        let out = self.docker(&["ps", "--format", "{{.Names}}"]);
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        names.sort();
        names
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        // live-restore keeps containers running without dockerd: remove them first.
        let ids = self.docker(&["ps", "-aq"]);
        let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.docker(&args);
        }
        let _ = self.docker(&["network", "prune", "-f"]);
        self.stop();
        iptables_rule("-D", self.slot);
        let _ = ip(&["link", "del", &bridge_name(self.slot)]);
    }
}

fn ip(args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip ({e}): install iproute2 (scripts/setup.sh does)"))
}

/// Creates the first free slot's bridge; creating a link is atomic, so it is also the lock.
fn take_bridge() -> u8 {
    for slot in 0..SLOTS {
        let name = bridge_name(slot);
        if ip(&["link", "add", "name", &name, "type", "bridge"])
            .status
            .success()
        {
            let addr = format!("10.{}.0.1/24", 240 + u16::from(slot));
            for args in [
                &["addr", "add", &addr, "dev", &name][..],
                &["link", "set", &name, "up"][..],
            ] {
                let out = ip(args);
                assert!(out.status.success(), "ip {args:?}: {}", text(&out));
            }
            return slot;
        }
    }
    panic!(
        "no free test bridge dhtest0..dhtest{SLOTS}: delete leftovers with `ip link del dhtestN`"
    )
}

fn iptables_rule(op: &str, slot: u8) {
    let pool = pool(slot);
    let status = Command::new("iptables")
        .args([op, "FORWARD", "-s", &pool, "-d", &pool, "-j", "ACCEPT"])
        .status()
        .unwrap_or_else(|e| panic!("iptables ({e}): install iptables (scripts/setup.sh does)"));
    assert!(
        status.success() || op == "-D",
        "iptables {op} FORWARD failed"
    );
}

#[test]
fn dockerd_restarted_at_each_deploy_step_keeps_serving_and_the_next_run_converges() {
    let mut engine = PrivateDockerd::start();
    let svc = TestService::new("dr");
    svc.push(&GOOD_SHAS);
    let sshd = SshServer::start();
    let (_d, path) = engine.config(&svc, &sshd);
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Two views of "serving": the proxy container's own address (what live-restore promises to
    // keep up) and the published port on loopback, which goes through docker-proxy, a child of
    // dockerd (on a droplet outside traffic is DNATed by iptables and does not use it).
    let proxy = std::net::SocketAddr::new(engine.ip_of(&format!("{}-proxy", svc.name)), 80);
    let direct = LoadClient::start_at(proxy);
    let published = LoadClient::start(svc.public_port);

    let steps = [
        "pull", "create", "start", "health", "switch", "confirm", "drain", "stop_old",
    ];
    let mut outcomes = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let sha = GOOD_SHAS[1 + i % (GOOD_SHAS.len() - 1)];
        let before = engine.running();
        let code = deploy_interrupted_at(&path, sha, step, |_| engine.restart())
            .unwrap_or_else(|| panic!("step {step} was never reached"));
        // live-restore: what ran before the restart still runs after it.
        let after = engine.running();
        for name in before.iter().filter(|n| n.ends_with("-proxy")) {
            assert!(
                after.contains(name),
                "{name} stopped with dockerd at {step}"
            );
        }
        let (status_code, v) = status_json(&path);
        let live = v["hosts"][0]["services"][0]["live_sha"].clone();
        assert!(
            live.is_string(),
            "a live release after a restart at {step}: {v:#}"
        );
        outcomes.push(format!(
            "{step}: exit {code:?}, status exit {status_code:?}, live {live}, problems {}",
            v["hosts"][0]["services"][0]["problems"]
        ));
        redeploy_converges(&path, sha, &format!("a restart at {step}"));
    }
    let direct = direct.finish();
    let published = published.finish();
    eprintln!(
        "dockerd restart matrix: {}\n  proxy address: {} sent, {} failed\n  published port (docker-proxy): {} sent, {} failed",
        outcomes.join("; "),
        direct.sent,
        direct.failed,
        published.sent,
        published.failed
    );
    assert_eq!(
        direct.failed, 0,
        "the proxy served throughout: {:?}",
        direct.failures
    );
    assert!(direct.colors_seen.len() == 2, "both colors served in turn");
    // Every run is on the record with its outcome: the audit log and the lock live on the host's
    // disk and go over ssh, not through Docker.
    let audit = audit_records(&sshd.state_dir());
    assert_eq!(
        ended_deploys(&audit),
        1 + 2 * steps.len(),
        "one outcome per run: {audit:#?}"
    );
}

/// Docker before 23 stops health-checking the containers it restores (moby#41871). A release
/// that was warming up during the restart must still become live on the next run.
#[test]
fn a_release_warming_up_across_a_dockerd_restart_gets_its_health_checks_back() {
    use std::io::{Read, Write};
    let mut engine = PrivateDockerd::start();
    let svc = TestService::new("dh");
    // UNHEALTHY_SHA answers 503 until told otherwise, so Docker cannot call it healthy before
    // the restart, whenever its first check runs.
    svc.push(&["a000001", UNHEALTHY_SHA]);
    let sshd = SshServer::start();
    let (_d, path) = engine.config(&svc, &sshd);
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    deploy_interrupted_at(&path, UNHEALTHY_SHA, "health", |child| {
        engine.restart();
        let _ = child.kill();
    })
    .expect("the health step was reached");
    let out = deckhand(&path, &["unlock", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let name = ["blue", "green"]
        .iter()
        .map(|c| format!("{}-{c}", svc.name))
        .find(|n| {
            let out = engine.docker(&[
                "inspect",
                "-f",
                "{{index .Config.Labels \"deckhand.sha\"}}",
                n,
            ]);
            text(&out).trim() == UNHEALTHY_SHA
        })
        .expect("the new color's container");
    let port = engine.docker(&["port", &name, "3000/tcp"]);
    let port: u16 = String::from_utf8_lossy(&port.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("127.0.0.1:")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("app port of {name}: {}", text(&port)));
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "POST /admin/healthy HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let version = engine.docker(&["version", "-f", "{{.Server.Version}}"]);
    let major: u32 = text(&version)
        .trim()
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let out = deckhand(&path, &["deploy", UNHEALTHY_SHA, "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    if major < 23 {
        assert!(
            text(&out).contains("moby#41871"),
            "Docker {} stopped checking {name}; the deploy should have restarted its checks: {}",
            text(&version).trim(),
            text(&out)
        );
    }
    let (code, v) = status_json(&path);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["hosts"][0]["services"][0]["live_sha"], UNHEALTHY_SHA);
}

/// The console's watcher over a dockerd restart: its event stream breaks, the host reads down
/// (as when the console polled), and once dockerd is back it reconnects and follows the events
/// again (a container stopped by hand is seen within seconds, the monitor running once a minute).
#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_a_dockerd_restart_and_follows_events_again() {
    use crate::console_conn::{blue_state, host_update};
    use deckhand::state::ContainerState;
    use deckhand::tui::model::HostUpdate;
    use tokio::task::block_in_place;
    let mut engine = block_in_place(PrivateDockerd::start);
    let svc = TestService::new("drc");
    svc.push(&GOOD_SHAS[..1]);
    let sshd = SshServer::start();
    let (_d, path) = engine.config(&svc, &sshd);
    let out = block_in_place(|| deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let cfg = deckhand::config::load(&path).expect("config");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = tokio_util::sync::CancellationToken::new();
    tokio::spawn(deckhand::tui::tasks::poll_host(
        cfg.env("lab").expect("lab").hosts[0].clone(),
        cfg.services.clone(),
        deckhand::config::AlertThresholds {
            interval: Duration::from_secs(60),
            ..Default::default()
        },
        0,
        tx,
        cancel.clone(),
        std::sync::Arc::new(tokio::sync::Notify::new()),
    ));
    host_update(&mut rx, Duration::from_secs(30), "blue running", |u| {
        blue_state(u) == Some(ContainerState::Running)
    })
    .await;

    block_in_place(|| engine.stop());
    let down = host_update(&mut rx, Duration::from_secs(40), "the host down", |u| {
        matches!(u, HostUpdate::Down { .. })
    })
    .await;
    eprintln!("while dockerd is stopped: {down:?}");
    block_in_place(|| engine.spawn());
    host_update(&mut rx, Duration::from_secs(60), "connected again", |u| {
        matches!(u, HostUpdate::Connected)
    })
    .await;
    // live-restore kept blue running through the restart.
    host_update(
        &mut rx,
        Duration::from_secs(30),
        "blue running again",
        |u| blue_state(u) == Some(ContainerState::Running),
    )
    .await;
    let out = engine.docker(&["stop", "-t", "1", &format!("{}-blue", svc.name)]);
    assert!(out.status.success(), "{}", text(&out));
    let stopped = Instant::now();
    host_update(
        &mut rx,
        Duration::from_secs(3),
        "blue exited after docker stop",
        |u| blue_state(u) == Some(ContainerState::Exited),
    )
    .await;
    eprintln!("seen {:?} after docker stop returned", stopped.elapsed());
    cancel.cancel();
}
