//! `doctor` on a Swarm manager entry (issue 16): the Swarm's own checks next to the host's.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::harness::swarm::SwarmCluster;
use crate::harness::*;

/// `(check, status, detail | fix)` of the first host.
fn swarm_checks(v: &serde_json::Value) -> Vec<(String, String, String)> {
    v["hosts"][0]["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap_or("").to_string(),
                c["status"].as_str().unwrap_or("").to_string(),
                format!(
                    "{} | {}",
                    c["detail"].as_str().unwrap_or(""),
                    c["fix"].as_str().unwrap_or("")
                ),
            )
        })
        .collect()
}

fn check<'a>(checks: &'a [(String, String, String)], id: &str) -> &'a (String, String, String) {
    checks
        .iter()
        .find(|c| c.0 == id)
        .unwrap_or_else(|| panic!("no {id} check: {checks:#?}"))
}

#[test]
fn swarm_doctor_checks_the_manager_the_nodes_and_the_proxy_and_fails_on_a_down_worker() {
    let mut swarm = SwarmCluster::start(2);
    let svc = TestService::new("swd");
    svc.push(&GOOD_SHAS[..1]);
    // The env file lives on the manager (the shared filesystem here), 0600 as doctor wants.
    let secrets = tempfile::tempdir().expect("tempdir");
    let env_file = secrets.path().join("app.env");
    std::fs::write(&env_file, "DB_PASSWORD=x\n").expect("env file");
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (_d, path) = write_config(&format!(
        "{}\n{}",
        svc.service_toml(&format!("env_file = \"{}\"", env_file.display())),
        swarm.swarm_env_toml("lab", 1)
    ));
    let doctor = |path: &std::path::Path| {
        let out = deckhand(path, &["doctor", "--env", "lab", "--output", "json"]);
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        (out.status.code(), swarm_checks(&v), v)
    };
    let (code, checks, v) = doctor(&path);
    assert_eq!(code, Some(0), "{v:#}");
    for id in [
        "ssh",
        "state_dir",
        "swarm_manager",
        "swarm_nodes",
        "swarm_proxy",
        "swarm_pull",
    ] {
        assert_eq!(check(&checks, id).1, "pass", "{id}: {checks:#?}");
    }
    let nodes = &check(&checks, "swarm_nodes").2;
    assert!(
        nodes.contains("node0 (manager, ready, active")
            && nodes.contains("node1 (worker, ready, active"),
        "{nodes}"
    );
    assert!(check(&checks, "swarm_proxy").2.contains("not deployed yet"));

    swarm.kill_node_dockerd(1);
    swarm.wait_node_status(1, "Down", Duration::from_secs(60));
    let (code, checks, v) = doctor(&path);
    assert_eq!(code, Some(5), "a down node is a failed check: {v:#}");
    let (_, status, detail) = check(&checks, "swarm_nodes");
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.contains("node1 (worker, down") && detail.contains("systemctl start docker"),
        "{detail}"
    );
    let out = deckhand(&path, &["doctor", "--env", "lab"]);
    let t = text(&out);
    assert!(t.contains("swarm nodes") && t.contains("node1"), "{t}");
}

/// `logs` on a Swarm reads each running task of the color wherever it runs, and says which
/// task and node wrote each line (table and JSON), with the droplet's flags; `--follow` of the
/// live color picks up the tasks a deploy starts.
#[test]
fn swarm_logs_read_every_task_on_every_node_with_task_and_node_attribution() {
    let swarm = SwarmCluster::start(2);
    let svc = TestService::new("swl");
    svc.push(&GOOD_SHAS[..2]);
    let (_d, path) = crate::swarm_cluster::swarm_config(&svc, &swarm, 2);
    crate::swarm_cluster::deploy_ok(&path, &swarm, &["deploy", GOOD_SHAS[0]], GOOD_SHAS[0]);
    let out = deckhand(
        &path,
        &["logs", "--env", "lab", "--tail", "20", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let objs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let writers: std::collections::BTreeSet<String> = objs
        .iter()
        .filter_map(|o| o["container"].as_str().map(str::to_string))
        .collect();
    let blue = format!("{}-blue.", svc.name);
    assert!(writers.iter().all(|w| w.starts_with(&blue)), "{writers:?}");
    for i in 0..swarm.len() {
        assert!(
            writers
                .iter()
                .any(|w| w.ends_with(&format!("@{}", swarm.hostname(i)))),
            "no line from {}'s task: {writers:?}\n{}",
            swarm.hostname(i),
            text(&out)
        );
    }
    assert!(
        objs.iter()
            .all(|o| o["color"] == "blue" && o["service"] == svc.name.as_str()),
        "{objs:?}"
    );
    // --grep and the table: the writer is on every line.
    let out = deckhand(
        &path,
        &[
            "logs",
            "--env",
            "lab",
            "--grep",
            "listening",
            "--color",
            "both",
        ],
    );
    let t = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: Vec<&str> = t.lines().filter(|l| l.contains(" | ")).collect();
    assert!(!lines.is_empty(), "{}", text(&out));
    assert!(
        lines
            .iter()
            .all(|l| l.contains("listening") && l.contains(&blue) && l.contains("@node")),
        "{t}"
    );
    assert!(
        text(&out).contains(&format!("{}-green: no running task", svc.name)),
        "the scaled-down color is said to have no task: {}",
        text(&out)
    );

    // --follow of the live color across a deploy: the new color's tasks are followed.
    use std::io::BufRead;
    use std::sync::{Arc, Mutex};
    let state = tempfile::tempdir().expect("state");
    let mut child = std::process::Command::new(deckhand_bin())
        .arg("--config")
        .arg(&path)
        .args(["logs", "--env", "lab", "--follow", "--output", "json"])
        .env("XDG_STATE_HOME", state.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn logs --follow");
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut readers = Vec::new();
    for pipe in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let seen = seen.clone();
        readers.push(std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                seen.lock().expect("lock").push(line);
            }
        }));
    }
    let wait_for = |what: &str, ok: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while !seen.lock().expect("lock").iter().any(|l| ok(l)) {
            assert!(
                std::time::Instant::now() < deadline,
                "never saw {what}: {:#?}",
                seen.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_for("a line of the first release", &|l| {
        l.contains("version a000001")
    });
    crate::swarm_cluster::deploy_ok(&path, &swarm, &["deploy", GOOD_SHAS[1]], GOOD_SHAS[1]);
    let green = format!("{}-green.", svc.name);
    wait_for("the new color's task", &|l| {
        l.contains("version a000002") && l.contains(&green) && l.contains("@node")
    });
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    for r in readers {
        let _ = r.join();
    }
    assert_eq!(status.code(), Some(0), "Ctrl-C ends a follow cleanly");
}
