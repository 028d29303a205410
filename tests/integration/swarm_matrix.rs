//! The fuller Swarm matrix, run by scripts/swarm-matrix.py (ignored here: too long for CI).
//! Each case prints one `MATRIX {json}` line per measurement, before it asserts anything, so
//! the script gets the figures of failing cases too. Knobs (environment):
//!
//! - `SWARM_NODES` (3), `SWARM_REPLICAS` (3): the cluster and the replicas per color;
//! - `SWARM_ROUNDS` (2): deploy + rollback rounds under load (`swarm_matrix_deploys`);
//! - `SWARM_FAULT` (`kill` | `disconnect`) and `SWARM_STEP` (a deploy step: `create`, `health`,
//!   `switch`, `drain`, ...): when a worker fails (`swarm_matrix_node_failure`).

use std::time::{Duration, Instant};

use crate::harness::swarm::{MANAGER, SwarmCluster};
use crate::harness::*;
use crate::swarm_cluster::{deploy_ok, node_state, swarm_config};

fn knob(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn knob_n(name: &str, default: u32) -> u32 {
    knob(name, &default.to_string())
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[test]
#[ignore = "matrix: run by scripts/swarm-matrix.py"]
fn swarm_matrix_deploys() {
    let (nodes, replicas, rounds) = (
        knob_n("SWARM_NODES", 3),
        knob_n("SWARM_REPLICAS", 3),
        knob_n("SWARM_ROUNDS", 2),
    );
    let t = Instant::now();
    let swarm = SwarmCluster::start(usize::try_from(nodes).expect("nodes"));
    let start_ms = ms(t.elapsed());
    let svc = TestService::new("swm");
    svc.push(&GOOD_SHAS[..2]);
    let (_d, path) = swarm_config(&svc, &swarm, replicas);
    let first = deploy_ok(&path, &swarm, &["deploy", GOOD_SHAS[0]], GOOD_SHAS[0]);
    println!(
        "MATRIX {}",
        serde_json::json!({"case": "first_deploy", "nodes": nodes, "replicas": replicas,
            "cluster_start_ms": start_ms, "ms": ms(first)})
    );
    let public = swarm.node_addr(MANAGER, svc.public_port);
    let mut failed = 0;
    for round in 1..=rounds {
        for (action, args, sha) in [
            ("deploy", vec!["deploy", GOOD_SHAS[1]], GOOD_SHAS[1]),
            ("rollback", vec!["rollback"], GOOD_SHAS[0]),
        ] {
            let fresh = LoadClient::start_at(public);
            let kept = KeepAliveClients::start_at(public, 4);
            let took = deploy_ok(&path, &swarm, &args, sha);
            let (fresh, kept) = (fresh.finish(), kept.finish());
            failed += fresh.failed + kept.failed;
            println!(
                "MATRIX {}",
                serde_json::json!({"case": action, "nodes": nodes, "replicas": replicas,
                    "round": round, "ms": ms(took),
                    "fresh_sent": fresh.sent, "fresh_failed": fresh.failed,
                    "kept_sent": kept.sent, "kept_failed": kept.failed,
                    "failures": fresh.failures.iter().chain(&kept.failures).take(3).collect::<Vec<_>>()})
            );
        }
    }
    assert_eq!(failed, 0, "failed requests (see the MATRIX lines)");
}

#[test]
#[ignore = "matrix: run by scripts/swarm-matrix.py"]
fn swarm_matrix_node_failure() {
    let (nodes, replicas) = (knob_n("SWARM_NODES", 3), knob_n("SWARM_REPLICAS", 3));
    let fault = knob("SWARM_FAULT", "kill");
    let step = knob("SWARM_STEP", "health");
    let mut swarm = SwarmCluster::start(usize::try_from(nodes).expect("nodes"));
    let worker = swarm.len() - 1;
    assert_ne!(worker, MANAGER, "a node failure needs a worker");
    let svc = TestService::new("swf");
    svc.push(&GOOD_SHAS[..2]);
    let (_d, path) = swarm_config(&svc, &swarm, replicas);
    deploy_ok(&path, &swarm, &["deploy", GOOD_SHAS[0]], GOOD_SHAS[0]);

    let public = swarm.node_addr(MANAGER, svc.public_port);
    let load = LoadClient::start_at(public);
    let mut run = JsonRun::spawn(&path, &["deploy", GOOD_SHAS[1], "--env", "lab", "--yes"]);
    let reached = run.wait_for_step(&step);
    let failed_at = Instant::now();
    if reached {
        match fault.as_str() {
            "kill" => swarm.kill_node_dockerd(worker),
            "disconnect" => swarm.disconnect_node(worker),
            other => panic!("SWARM_FAULT={other}: kill or disconnect"),
        }
    }
    // When the manager calls the worker down, measured while the deploy runs.
    let (socket, hostname) = (swarm.manager_socket(), swarm.hostname(worker).to_string());
    let swarm_down = std::thread::spawn(move || {
        while failed_at.elapsed() < Duration::from_secs(90) {
            let out = std::process::Command::new("docker")
                .arg("-H")
                .arg(format!("unix://{}", socket.display()))
                .args(["node", "ls", "--format", "{{.Hostname}} {{.Status}}"])
                .output();
            if out.is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout).contains(&format!("{hostname} Down"))
            }) {
                return Some(ms(failed_at.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        None
    });
    let (code, out) = run.finish();
    let deploy_ms = ms(failed_at.elapsed());
    let load = load.finish();
    let after = get_at(public, "/");
    let (_, v) = status_json(&path);
    let live = v["hosts"][0]["services"][0]["live_sha"].clone();
    let swarm_down_ms = swarm_down.join().expect("watcher");
    // deckhand's status shows what the manager knows.
    let mut status_down = false;
    while failed_at.elapsed() < Duration::from_secs(90) {
        let (_, v) = status_json(&path);
        if node_state(&v, swarm.hostname(worker)).as_deref() == Some("down") {
            status_down = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let outcome = match (code, live.as_str(), &after) {
        (Some(0), Some(s), Ok((200, _))) if s == GOOD_SHAS[1] => "converged",
        (Some(c), Some(s), Ok((200, _))) if c != 0 && s == GOOD_SHAS[0] => "stopped, old serving",
        _ => "BROKEN",
    };
    // The worker back: the same deploy converges.
    match fault.as_str() {
        "kill" => swarm.restart_node(worker),
        _ => {
            swarm.reconnect_node(worker);
            swarm.wait_node_status(worker, "Ready", Duration::from_secs(60));
        }
    }
    let t = Instant::now();
    let again = deckhand(&path, &["deploy", GOOD_SHAS[1], "--env", "lab", "--yes"]);
    let (_, v2) = status_json(&path);
    let recovered =
        again.status.code() == Some(0) && v2["hosts"][0]["services"][0]["live_sha"] == GOOD_SHAS[1];
    println!(
        "MATRIX {}",
        serde_json::json!({"case": "node_failure", "fault": fault, "step": step,
            "nodes": nodes, "replicas": replicas, "reached": reached,
            "exit": code, "live": live, "outcome": outcome, "deploy_ms_after_fault": deploy_ms,
            "swarm_down_after_ms": swarm_down_ms, "status_shows_down": status_down, "sent": load.sent, "failed": load.failed,
            "failures": load.failures.iter().take(3).collect::<Vec<_>>(),
            "error": (code != Some(0)).then(|| out.lines().filter(|l| l.contains("error")).take(3).collect::<Vec<_>>()),
            "recovered": recovered, "recovery_deploy_ms": ms(t.elapsed())})
    );
    assert!(reached, "step {step} never started: {out}");
    assert_ne!(
        outcome, "BROKEN",
        "deploy exit {code:?}, live {live}, public {after:?}: {out}"
    );
    assert!(status_down, "status never showed the worker down: {v:#}");
    assert!(recovered, "with the worker back: {}", text(&again));
}
