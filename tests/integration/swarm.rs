//! The Swarm backend (issue 16), CI-sized: a one-node Swarm (sh's test bed,
//! test-support/src/swarm.rs: a private dockerd in its own network namespace, never the
//! machine's dockerd), reached by deckhand through a real sshd in the manager's namespace like
//! any manager. The multi-node and node-failure cases are in swarm_cluster.rs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::swarm::{MANAGER, SwarmCluster};
use crate::harness::*;

fn config(swarm: &SwarmCluster, svc: &TestService, replicas: u32) -> (tempfile::TempDir, PathBuf) {
    write_config(&format!(
        "{}\n{}name = \"mgr\"\n",
        svc.service_toml(""),
        swarm.swarm_env_toml("sw", replicas)
    ))
}

fn timed(path: &Path, args: &[&str]) -> (std::process::Output, Duration) {
    let t = Instant::now();
    let out = deckhand(path, args);
    (out, t.elapsed())
}

fn replicas_running(swarm: &SwarmCluster, name: &str) -> String {
    swarm.docker_ok(
        MANAGER,
        &[
            "service",
            "ls",
            "--filter",
            &format!("name={name}"),
            "--format",
            "{{.Name}} {{.Replicas}}",
        ],
    )
}

#[test]
fn swarm_deploy_and_rollback_under_load_lose_no_request_and_status_shows_nodes_and_replicas() {
    let swarm = SwarmCluster::start(1);
    let svc = TestService::new("sw");
    svc.push(&GOOD_SHAS[..3]);
    svc.push(&[UNHEALTHY_SHA]);
    let (_d, path) = config(&swarm, &svc, 2);
    let public = swarm.node_addr(MANAGER, svc.public_port);

    let (out, first) = timed(&path, &["deploy", GOOD_SHAS[0], "--env", "sw", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "first deploy: {}\n{}",
        text(&out),
        swarm.diagnose()
    );
    assert_eq!(get_at(public, "/").map(|r| r.0), Ok(200));

    let keep = KeepAliveClients::start_at(public, 6);
    let fresh = LoadClient::start_at(public);
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
        replicas_running(&swarm, &format!("{}-{live}", svc.name)).ends_with("2/2"),
        "{}",
        replicas_running(&swarm, &format!("{}-{live}", svc.name))
    );

    // History and the audit log are on the manager's state directory.
    let out = deckhand(&path, &["history", "--env", "sw", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "history: {}", text(&out));
    let h = String::from_utf8_lossy(&out.stdout);
    assert!(h.contains(GOOD_SHAS[1]) && h.contains("rolled_back"), "{h}");
    let audit = audit_records(&swarm.state_dir());
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

    // Prune on a Swarm: the manager's images; what either color's spec names is in use (the
    // kept color is the next rollback). Two unused images (the never-healthy one and one
    // pulled by hand): one goes, the most recent unused one is kept (`--keep` is at least 1).
    let image = |sha: &str| format!("{}:{sha}", svc.repo);
    swarm.docker_ok(MANAGER, &["pull", "-q", &image(GOOD_SHAS[2])]);
    let present = |sha: &str| {
        swarm
            .docker(MANAGER, &["image", "inspect", &image(sha)])
            .status
            .success()
    };
    let out = deckhand(&path, &["prune", "--keep", "1", "--env", "sw", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "prune: {}", text(&out));
    assert!(
        present(GOOD_SHAS[0]) && present(GOOD_SHAS[1]),
        "a color's image was pruned: {}",
        text(&out)
    );
    assert_eq!(
        [GOOD_SHAS[2], UNHEALTHY_SHA]
            .iter()
            .filter(|s| present(s))
            .count(),
        1,
        "{}\n{}",
        text(&out),
        swarm.diagnose()
    );

    // Alerts read the Swarm like status does: the live color answers through the proxy.
    let out = deckhand(&path, &["alerts", "--env", "sw"]);
    assert_eq!(out.status.code(), Some(0), "alerts: {}", text(&out));

    // A canary of what already serves has nothing to share: refused before anything changes
    // (canaries themselves: swarm_watch.rs).
    let out = deckhand(
        &path,
        &[
            "deploy",
            GOOD_SHAS[0],
            "--canary",
            "20",
            "--env",
            "sw",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "canary: {}", text(&out));
    assert!(
        text(&out).contains("a canary needs a live release to share traffic with and a new one"),
        "{}",
        text(&out)
    );

    // The lock is the manager's, as on a droplet: free after the runs.
    let out = deckhand(&path, &["lock", "--env", "sw"]);
    assert_eq!(out.status.code(), Some(0), "lock: {}", text(&out));
    assert!(text(&out).contains("free"), "{}", text(&out));

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

/// Task ids of a Swarm service that Swarm wants running.
fn running_tasks(swarm: &SwarmCluster, service: &str) -> Vec<String> {
    let out = swarm.docker_ok(
        MANAGER,
        &[
            "service",
            "ps",
            "-q",
            "--filter",
            "desired-state=running",
            service,
        ],
    );
    let mut ids: Vec<String> = out.split_whitespace().map(str::to_string).collect();
    ids.sort();
    ids
}

#[test]
fn a_deploy_cut_off_after_its_switch_is_finished_without_touching_the_live_tasks() {
    let swarm = SwarmCluster::start(1);
    let svc = TestService::new("swf");
    svc.push(&GOOD_SHAS[..2]);
    let (_d, path) = config(&swarm, &svc, 1);
    for sha in &GOOD_SHAS[..2] {
        let out = deckhand(&path, &["deploy", sha, "--env", "sw", "--yes"]);
        assert_eq!(out.status.code(), Some(0), "deploy {sha}: {}", text(&out));
    }
    // What a deckhand killed between the switch and the scale-down leaves: green live, blue
    // (the old color) still running.
    let (blue, green) = (format!("{}-blue", svc.name), format!("{}-green", svc.name));
    swarm.docker_ok(
        MANAGER,
        &["service", "scale", "--detach=false", &format!("{blue}=1")],
    );
    let live_tasks = running_tasks(&swarm, &green);
    assert_eq!(live_tasks.len(), 1, "{}", swarm.diagnose());

    let out = deckhand(&path, &["deploy", GOOD_SHAS[1], "--env", "sw", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "finishing deploy: {}",
        text(&out)
    );
    // Scaling down is asynchronous in Swarm: the task stops within its stop timeout.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !replicas_running(&swarm, &blue).ends_with("0/0") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        replicas_running(&swarm, &blue).ends_with("0/0"),
        "the old color was not scaled down: {}\n{}",
        replicas_running(&swarm, &blue),
        text(&out)
    );
    assert_eq!(
        running_tasks(&swarm, &green),
        live_tasks,
        "the live color's tasks were replaced: {}",
        text(&out)
    );
    // The release that was already live is not recorded a second time, so "previous" is
    // still the release before it.
    let ledger: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(swarm.state_dir().join(format!("ledger/{}.json", svc.name)))
            .expect("ledger"),
    )
    .expect("ledger JSON");
    let shas: Vec<&str> = ledger["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .filter_map(|r| r["sha"].as_str())
        .collect();
    assert_eq!(shas, [GOOD_SHAS[0], GOOD_SHAS[1]], "{ledger}");
}
