//! dockerd restarted in the middle of a deploy. The other tests share the machine's dockerd, so
//! this one starts an engine of its own (own data root, sockets and address pool) configured like
//! our droplets: `live-restore` on, as `infrastructure/ansible/roles/docker` sets it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// Container addresses of this engine. Nothing else on a test machine uses it.
const POOL: &str = "10.231.0.0/16";

struct PrivateDockerd {
    dir: tempfile::TempDir,
    child: Option<Child>,
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
        iptables_rule("-I");
        let mut engine = PrivateDockerd { dir, child: None };
        engine.spawn();
        engine
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
                "--bridge=none",
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--default-address-pool",
                &format!("base={POOL},size=24"),
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
        iptables_rule("-D");
    }
}

fn iptables_rule(op: &str) {
    let status = Command::new("iptables")
        .args([op, "FORWARD", "-s", POOL, "-d", POOL, "-j", "ACCEPT"])
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
    let (_d, path) = write_config(&format!(
        "{}\n{}docker_socket = \"{}\"\n",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1"),
        engine.socket().display()
    ));
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
        let out = deckhand(&path, &["deploy", sha, "--env", "lab", "--yes"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "re-run after a restart at {step}: {}",
            text(&out)
        );
        if *step == "health" {
            // The restart came while the new color was still "starting": Docker 20.10 stops
            // checking restored containers, so the re-run has to restart the checks.
            assert!(
                text(&out).contains("moby#41871"),
                "the re-run noticed Docker's stopped health checks: {}",
                text(&out)
            );
        }
        let (code, v) = status_json(&path);
        assert_eq!(code, Some(0), "after a restart at {step}: {v:#}");
        assert_eq!(
            v["hosts"][0]["services"][0]["live_sha"], sha,
            "after a restart at {step}"
        );
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
    let audit: Vec<serde_json::Value> =
        std::fs::read_to_string(sshd.state_dir().join("audit.jsonl"))
            .expect("audit")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
    let ended = audit
        .iter()
        .filter(|r| r["action"] == "deploy" && r["outcome"] != "started")
        .count();
    assert_eq!(
        ended,
        1 + 2 * steps.len(),
        "one outcome per run: {audit:#?}"
    );
}
