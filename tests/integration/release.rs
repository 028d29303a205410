//! The release engine against real dockerd + sshd + registry + nginx.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;

fn live_of(path: &std::path::Path) -> (String, String) {
    let out = deckhand(path, &["status", "--env", "lab", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    let s = &v["hosts"][0]["services"][0];
    (
        s["live_color"].as_str().unwrap_or("").to_string(),
        s["live_sha"].as_str().unwrap_or("").to_string(),
    )
}

fn audit_lines(sshd: &SshServer) -> Vec<serde_json::Value> {
    std::fs::read_to_string(sshd.state_dir().join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

#[test]
fn deploy_v1_v2_v3_over_ssh_then_rollback() {
    let svc = TestService::new("dp");
    svc.push(&["a000001", "a000002", "a000003"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");

    // v1 on an empty host: network, blue, proxy.
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("pulled"), "{}", text(&out));
    assert_eq!(live_of(&path), ("blue".into(), "a000001".into()));
    assert_eq!(svc.container_state("blue").as_deref(), Some("running"));
    assert_eq!(svc.container_state("green"), None);
    assert_eq!(public_get(svc.public_port, "/").expect("public").1, "blue");

    // v2: green, blue stopped and kept.
    let out = deckhand(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(live_of(&path), ("green".into(), "a000002".into()));
    assert_eq!(svc.container_state("blue").as_deref(), Some("exited"));
    assert_eq!(public_get(svc.public_port, "/").expect("public").1, "green");

    // v3: blue again (replacing v1), green stopped.
    let out = deckhand(&path, &["deploy", "a000003", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(live_of(&path), ("blue".into(), "a000003".into()));
    assert_eq!(svc.container_state("green").as_deref(), Some("exited"));

    // Rollback: the stopped green (v2) starts again, no pull, no new container.
    let green_id = svc.container_id("green");
    let out = deckhand(&path, &["rollback", "--env", "lab", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        !t.contains("make sure the image is present"),
        "rollback must not pull: {t}"
    );
    assert_eq!(
        svc.container_id("green"),
        green_id,
        "same container, restarted"
    );
    assert_eq!(live_of(&path), ("green".into(), "a000002".into()));

    // Deploying what serves is a no-op.
    let out = deckhand(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("nothing to do"), "{}", text(&out));

    // --force replaces it anyway (how rotated secrets reach the app): a fresh blue container.
    let blue_before = svc.container_id("blue");
    let out = deckhand(
        &path,
        &["deploy", "a000002", "--force", "--env", "lab", "--yes"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(live_of(&path), ("blue".into(), "a000002".into()));
    assert_ne!(svc.container_id("blue"), blue_before, "a new container");

    // The audit log has a start and an end for every action.
    let audit = audit_lines(&sshd);
    let ends: Vec<(String, String, String)> = audit
        .iter()
        .filter(|r| r["outcome"] != "started")
        .map(|r| {
            (
                r["action"].as_str().unwrap_or("").to_string(),
                r["to_sha"].as_str().unwrap_or("").to_string(),
                r["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let expect = |a: &str, s: &str, o: &str| (a.to_string(), s.to_string(), o.to_string());
    assert_eq!(
        ends,
        [
            expect("deploy", "a000001", "success"),
            expect("deploy", "a000002", "success"),
            expect("deploy", "a000003", "success"),
            expect("rollback", "a000002", "success"),
            expect("deploy", "a000002", "noop"),
            expect("redeploy", "a000002", "success"),
        ]
    );
    assert_eq!(
        audit.iter().filter(|r| r["outcome"] == "started").count(),
        6
    );
    assert_eq!(audit[2]["from_sha"], "a000001");
    assert!(audit[2]["actor"].as_str().is_some_and(|a| !a.is_empty()));

    // history lists what one can roll back to, with who deployed it.
    let out = deckhand(&path, &["history", "--env", "lab"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("a000002  live"), "{t}");
    assert!(t.contains("a000003  retained"), "{t}");
    assert!(t.contains("a000001  retained"), "{t}");
}

#[test]
fn zero_downtime_through_ten_deploy_rollback_cycles() {
    let svc = TestService::new("zd");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = deckhand(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Both kinds of client at once: fresh connections, and persistent keep-alive ones (a
    // graceful nginx reload closed idle keep-alive connections under their next request).
    let load = LoadClient::start(svc.public_port);
    let pooled = KeepAliveClients::start(svc.public_port, 6);
    for cycle in 0..10 {
        let out = deckhand(&path, &["rollback", "--env", "lab", "--yes"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "cycle {cycle} rollback: {}",
            text(&out)
        );
        let out = deckhand(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "cycle {cycle} deploy: {}",
            text(&out)
        );
    }
    let report = load.finish();
    let kept = pooled.finish();
    eprintln!(
        "zero downtime: fresh connections: {} sent, {} failed; keep-alive ({} connections opened for 6 clients): {} sent, {} failed; colors seen {:?} / {:?}",
        report.sent,
        report.failed,
        kept.connections,
        kept.sent,
        kept.failed,
        report.colors_seen,
        kept.colors_seen
    );
    assert!(
        report.sent > 200,
        "the client must really have been sending: {report:?}"
    );
    assert!(kept.sent > 1000, "keep-alive clients sent: {}", kept.sent);
    assert_eq!(report.failed, 0, "failed requests: {:?}", report.failures);
    assert_eq!(
        kept.failed,
        0,
        "failed keep-alive requests: {:?}",
        &kept.failures[..kept.failures.len().min(20)]
    );
    assert_eq!(report.colors_seen.len(), 2, "traffic moved between colors");
    assert_eq!(
        kept.colors_seen.len(),
        2,
        "kept-alive connections moved between colors"
    );
    assert_eq!(
        kept.connections, 6,
        "no keep-alive connection was closed by a switch"
    );
}

/// Deploys `sha` over a healthy a000001 and checks the old release kept serving.
fn failing_deploy(
    prefix: &str,
    sha: &str,
    extra_args: &[&str],
    push: bool,
) -> (String, TestService) {
    let svc = TestService::new(prefix);
    svc.push(&["a000001"]);
    if push {
        svc.push(&[sha]);
    }
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let load = LoadClient::start(svc.public_port);
    let mut args = vec!["deploy", sha, "--env", "lab", "--yes"];
    args.extend_from_slice(extra_args);
    let out = deckhand(&path, &args);
    let report = load.finish();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert_eq!(
        report.failed, 0,
        "the old color must serve throughout: {:?}",
        report.failures
    );
    assert!(report.sent > 0);
    assert_eq!(live_of(&path), ("blue".into(), "a000001".into()), "{t}");
    assert_eq!(public_get(svc.public_port, "/").expect("public").1, "blue");
    assert!(
        t.contains("a000001 (blue) still serves") || t.contains("still serves"),
        "{t}"
    );
    let audit = audit_lines(&sshd);
    assert_eq!(
        audit.last().map(|r| r["outcome"].clone()),
        Some("failed".into()),
        "{audit:?}"
    );
    (t, svc)
}

#[test]
fn an_unhealthy_release_is_reverted_with_the_reason() {
    let (t, svc) = failing_deploy("fu", UNHEALTHY_SHA, &["--timeout", "4s"], true);
    assert!(t.contains("did not become healthy"), "{t}");
    assert!(t.contains("HTTP 503, status \"unhealthy\""), "{t}");
    assert!(t.contains("database disconnected"), "{t}");
    assert!(t.contains("last log lines of"), "{t}");
    // Kept for inspection, stopped.
    assert_eq!(svc.container_state("green").as_deref(), Some("exited"));
}

#[test]
fn a_slow_release_times_out_and_is_reverted() {
    let (t, _svc) = failing_deploy("fs", SLOW_SHA, &["--timeout", "3s"], true);
    assert!(t.contains("not healthy within 3.0s"), "{t}");
    assert!(t.contains("the app does not answer"), "{t}");
    assert!(
        t.contains("waiting 600000 ms before listening"),
        "the app's own log is shown: {t}"
    );
}

#[test]
fn a_release_that_exits_is_reverted_at_once() {
    let (t, _svc) = failing_deploy("fx", EXITING_SHA, &["--timeout", "30s"], true);
    assert!(t.contains("the container is exited (exit code 3)"), "{t}");
    assert!(
        !t.contains("not healthy within"),
        "a crash is reported at once, not after the timeout: {t}"
    );
    assert!(
        t.contains("exiting"),
        "the app's own last words are shown: {t}"
    );
}

#[test]
fn a_sha_missing_from_the_registry_names_the_cause() {
    let (t, _svc) = failing_deploy("fm", "dddddd1", &[], false);
    assert!(t.contains("cannot be pulled"), "{t}");
    assert!(t.contains("is the SHA pushed?"), "{t}");
}

#[test]
fn an_unreachable_registry_names_the_cause() {
    let svc = TestService::new("fr");
    svc.push(&["a000001"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Same service, now pointing at a registry that is not there.
    let dead = free_port();
    let cfg = std::fs::read_to_string(&path).expect("cfg").replace(
        &format!("image = \"{}\"", svc.repo),
        &format!("image = \"127.0.0.1:{dead}/{}/demo\"", svc.name),
    );
    std::fs::write(&path, cfg).expect("cfg");
    let out = deckhand(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("registry is unreachable"), "{t}");
    assert_eq!(public_get(svc.public_port, "/").expect("public").1, "blue");
}

#[test]
fn two_concurrent_deploys_exactly_one_proceeds() {
    let svc = TestService::new("cc");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_deckhand"))
            .arg("--config")
            .arg(&path)
            .args(["deploy", "a000002", "--env", "lab", "--yes"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    let mut codes = [a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(
        codes,
        [Some(0), Some(3)],
        "a: {}\nb: {}",
        text(&a),
        text(&b)
    );
    let loser = if a.status.code() == Some(3) { &a } else { &b };
    let t = text(loser);
    assert!(t.contains("is locked by"), "{t}");
    assert!(t.contains("doing deploy a000002"), "{t}");
    assert!(t.contains(" since "), "{t}");
}

#[test]
fn lock_wait_queues_behind_the_holder() {
    let svc = TestService::new("lw");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let first = Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .arg("--config")
        .arg(&path)
        .args(["deploy", "a000002", "--env", "lab", "--yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Start the second run only once the first holds the lock: a fixed head start loses the
    // race on a loaded machine, and then the first (without --lock-wait) is the one refused.
    let lock = sshd
        .state_dir()
        .join("locks")
        .join(format!("{}.lock", svc.name));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("deploy a000002")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the first deploy did not take the lock within 60s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = deckhand(
        &path,
        &[
            "deploy",
            "a000001",
            "--env",
            "lab",
            "--yes",
            "--lock-wait",
            "60s",
        ],
    );
    let first = first.wait_with_output().expect("first");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert_eq!(live_of(&path), ("blue".into(), "a000001".into()));
}

#[test]
fn prune_keeps_exactly_what_the_rule_says_and_rollback_still_works() {
    let svc = TestService::new("pr");
    svc.push(&GOOD_SHAS);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "keep_images = 2\n");
    // Pull all seven onto the host by deploying them in order (oldest first).
    for sha in GOOD_SHAS {
        let out = deckhand(&path, &["deploy", sha, "--env", "lab", "--yes"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    // A protected tag on an old image.
    docker_ok(&[
        "tag",
        &format!("{}:a000001", svc.repo),
        &format!("{}:v1.0.0", svc.repo),
    ]);

    let out = deckhand(
        &path,
        &["prune", "--env", "lab", "--dry-run", "--keep", "2"],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("dry run"), "{t}");
    let tags_now = || {
        let mut v: Vec<String> = docker_ok(&["images", "--format", "{{.Tag}}", &svc.repo])
            .split_whitespace()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(tags_now().len(), 8, "dry run removed nothing");

    let out = deckhand(&path, &["prune", "--env", "lab", "--yes", "--keep", "2"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    // Live a000007 (blue) and previous a000006 (green) are in use and count among the 2 most
    // recent? No: in-use images are kept on top of the N most recent unused ones.
    // Unused by age: a000005, a000004 kept; a000003, a000002 removed; a000001 protected by v1.0.0
    // but its own tag `a000001` is not protected and goes, the image stays via v1.0.0.
    assert_eq!(
        tags_now(),
        ["a000004", "a000005", "a000006", "a000007", "v1.0.0"],
        "{t}"
    );

    // Rollback right after a prune: to the previous release (kept, in use).
    let out = deckhand(&path, &["rollback", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(live_of(&path).1, "a000006");
    // And to an older retained SHA.
    let out = deckhand(&path, &["rollback", "a000004", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(live_of(&path).1, "a000004");
    // A pruned one is refused with the list of what is retained.
    let out = deckhand(&path, &["rollback", "a000002", "--env", "lab", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("not retained"), "{t}");
    let audit = audit_lines(&sshd);
    assert!(
        audit
            .iter()
            .any(|r| r["action"] == "prune" && r["outcome"] == "success")
    );
}

#[test]
fn actions_refuse_without_yes_when_stdin_is_not_a_terminal_and_in_read_only() {
    let svc = TestService::new("ry");
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("pass --yes"), "{t}");
    let out = deckhand(
        &path,
        &["deploy", "a000001", "--env", "lab", "--yes", "--read-only"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--read-only"));
    let out = deckhand(&path, &["deploy", "x;rm -rf /", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("neither a git SHA"));
    assert_eq!(svc.container_state("blue"), None, "nothing was created");
}

/// SIGKILLs a deploy when `step` starts; whether the step was reached.
fn deploy_killed_at(path: &std::path::Path, sha: &str, step: &str) -> bool {
    deploy_interrupted_at(path, sha, step, |child| child.kill().expect("SIGKILL")).is_some()
}

#[test]
fn killing_the_deploy_at_each_step_then_deploying_again_converges() {
    let svc = TestService::new("kl");
    svc.push(&GOOD_SHAS);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let load = LoadClient::start(svc.public_port);
    let steps = [
        "lock", "inspect", "pull", "network", "create", "start", "health", "proxy", "switch",
        "confirm", "drain", "stop_old",
    ];
    let mut killed = 0;
    for (i, step) in steps.iter().enumerate() {
        // A different release each round, so every deploy really changes something.
        let sha = GOOD_SHAS[1 + i % (GOOD_SHAS.len() - 1)];
        if deploy_killed_at(&path, sha, step) {
            killed += 1;
        }
        // The killed process's lock stays (stale once its heartbeat stops); an operator clears it.
        unlock_ok(&path, &format!("kill at {step}"));
        let out = deckhand(&path, &["deploy", sha, "--env", "lab", "--yes"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "re-run after kill at {step}: {}",
            text(&out)
        );
        let (color, live) = live_of(&path);
        assert_eq!(live, sha, "converged after kill at {step}");
        let other = if color == "blue" { "green" } else { "blue" };
        assert_ne!(
            svc.container_state(other).as_deref(),
            Some("running"),
            "after kill at {step} and a re-run, only the live color runs"
        );
    }
    let report = load.finish();
    eprintln!(
        "kill matrix: {killed}/{} steps killed, {} requests sent, {} failed",
        steps.len(),
        report.sent,
        report.failed
    );
    assert_eq!(killed, steps.len(), "every step was reached and killed");
    assert_eq!(report.failed, 0, "served throughout: {:?}", report.failures);
    // Every killed deploy is on the record as started and never finished.
    let audit = audit_lines(&sshd);
    let started = audit.iter().filter(|r| r["outcome"] == "started").count();
    let ended = audit
        .iter()
        .filter(|r| r["action"] == "deploy" && r["outcome"] != "started")
        .count();
    // Kills at `lock` and `inspect` may come before the `started` record is written: a `--yes`
    // run takes the lock and reads while planning, so those two steps are announced just
    // before the record and a kill at them lands on either side of it.
    assert!(
        (ended + killed - 2..=ended + killed).contains(&started),
        "started {started}, ended {ended}, killed {killed}"
    );
    assert!(audit.iter().any(|r| r["action"] == "unlock"));
}

#[test]
fn an_environment_deploy_stops_at_the_first_failing_host_and_says_where_each_stands() {
    // Two hosts behind two sshd instances (same engine underneath; host 2 is never reached
    // because host 1 fails, which is the point).
    let svc = TestService::new("mh");
    svc.push(&["a000001", UNHEALTHY_SHA]);
    let (s1, s2) = (SshServer::start(), SshServer::start());
    let (_d, path) = write_config(&format!(
        "{}\n{}\n{}",
        svc.service_toml(""),
        s1.host_toml("lab", "lab-1"),
        s2.host_toml("lab", "lab-2")
    ));
    let out = deckhand(
        &path,
        &[
            "deploy", "a000001", "--env", "lab", "--yes", "--host", "lab-1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = deckhand(
        &path,
        &[
            "deploy",
            UNHEALTHY_SHA,
            "--env",
            "lab",
            "--yes",
            "--timeout",
            "3s",
        ],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("one host at a time"), "{t}");
    let table: Vec<&str> = t.lines().skip_while(|l| !l.starts_with("HOST")).collect();
    assert!(
        table.iter().any(|l| l.starts_with("lab-1")
            && l.contains("FAILED")
            && l.contains("a000001 (blue)")),
        "{t}"
    );
    assert!(
        table
            .iter()
            .any(|l| l.starts_with("lab-2") && l.contains("not attempted")),
        "{t}"
    );
    assert!(
        !t.contains("[lab-2] ▸ take the lock"),
        "host 2 must not be touched: {t}"
    );
}

#[test]
fn an_unreachable_host_stops_an_environment_deploy_before_anything_changes() {
    let svc = TestService::new("mu");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let dead = free_port();
    let (_d, path) = write_config(&format!(
        "{}\n{}\n[[env.lab.host]]\nname = \"lab-2\"\nssh = \"root@127.0.0.1\"\nport = {dead}\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\n",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1"),
        sshd.client_key.display(),
        sshd.known_hosts.display()
    ));
    let out = deckhand(
        &path,
        &[
            "deploy", "a000001", "--env", "lab", "--yes", "--host", "lab-1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = deckhand(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(t.contains("lab-2: "), "{t}");
    assert!(t.contains("nothing was changed on any host"), "{t}");
    assert_eq!(public_get(svc.public_port, "/").expect("public").1, "blue");
    assert_eq!(
        svc.container_state("green"),
        None,
        "nothing created on lab-1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_registry_lists_the_tags_of_a_repository() {
    let svc = TestService::new("rg");
    svc.push(&["a000001", "a000002"]);
    let tags = deckhand::release::registry::list_tags(&svc.repo)
        .await
        .expect("tags");
    assert_eq!(tags, ["a000001", "a000002"]);
    let missing =
        deckhand::release::registry::list_tags(&format!("{REGISTRY}/{}/nothing", svc.name))
            .await
            .expect_err("no such repository");
    assert!(missing.to_string().contains("not found"), "{missing}");
    let dead = deckhand::release::registry::list_tags(&format!("127.0.0.1:{}/x/y", free_port()))
        .await
        .expect_err("no registry");
    assert!(
        dead.to_string().starts_with("registry 127.0.0.1:"),
        "{dead}"
    );
}

#[test]
fn auto_prune_after_a_successful_deploy_keeps_what_the_rule_says() {
    let svc = TestService::new("ap");
    svc.push(&["a000001", "a000002", "a000003", "a000004"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "keep_images = 1\nauto_prune = true\n");
    for sha in ["a000001", "a000002", "a000003", "a000004"] {
        let out = deckhand(&path, &["deploy", sha, "--env", "lab", "--yes"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains("prune old images"), "{}", text(&out));
    }
    let mut tags: Vec<String> = docker_ok(&["images", "--format", "{{.Tag}}", &svc.repo])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    tags.sort();
    // Live a000004 and previous a000003 are in use; of the unused, the newest one stays.
    assert_eq!(tags, ["a000002", "a000003", "a000004"]);
}

/// `--yes` plans from a read without `/health` probes; the plan asks for the live color's
/// health only when it serves the target already. A live color that went unhealthy is then
/// not "nothing to do": the deploy of the same SHA replaces it.
#[test]
fn deploying_what_serves_after_it_went_unhealthy_replaces_it() {
    let svc = TestService::new("uh");
    svc.push(&["a000001"]);
    let sshd = SshServer::start();
    let (_d, path) = write_config(&format!(
        "{}\n{}",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    ));
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert!(text(&out).contains("nothing to do"), "{}", text(&out));
    let before = svc.container_id("blue");

    post_ok(svc.public_port, "/admin/unhealthy");

    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        !t.contains("nothing to do"),
        "an unhealthy live color is no no-op: {t}"
    );
    assert_eq!(live_of(&path), ("green".into(), "a000001".into()));
    assert_ne!(svc.container_id("green"), before);
}
