//! The release ledger on the host: rollback goes to the last good release whatever failed, was
//! forced or was interrupted since (issue 11), and a killed deckhand is reconciled.

use crate::harness::*;

fn deploy_ok(path: &std::path::Path, args: &[&str]) -> String {
    let mut a = vec!["deploy"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--env", "lab", "--yes"]);
    let out = deckhand(path, &a);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "deploy {args:?}: {t}");
    t
}

fn live(path: &std::path::Path) -> (String, String) {
    let (_, v) = status_json(path);
    let s = &v["hosts"][0]["services"][0];
    (
        s["live_color"].as_str().unwrap_or("").to_string(),
        s["live_sha"].as_str().unwrap_or("").to_string(),
    )
}

/// The ledger as `history --output json` shows it: (sha, ended) per release, oldest first.
fn ledger(path: &std::path::Path) -> Vec<(String, String)> {
    let out = deckhand(path, &["history", "--env", "lab", "--output", "json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    v[0]["ledger"]
        .as_array()
        .unwrap_or_else(|| panic!("no ledger in history: {v:#}"))
        .iter()
        .map(|r| {
            (
                r["sha"].as_str().unwrap_or("").to_string(),
                r["ended"].as_str().unwrap_or("live").to_string(),
            )
        })
        .collect()
}

fn rollback(path: &std::path::Path) -> String {
    let out = deckhand(path, &["rollback", "--env", "lab", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "rollback: {t}");
    t
}

#[test]
fn rollback_after_a_failed_deploy_lands_on_the_last_good_release() {
    let svc = TestService::new("lf");
    svc.push(&["a000001", "a000002", UNHEALTHY_SHA]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    deploy_ok(&path, &["a000001"]);
    deploy_ok(&path, &["a000002"]);
    // The failed release replaces a000001's container in the idle color.
    let out = deckhand(
        &path,
        &[
            "deploy",
            UNHEALTHY_SHA,
            "--timeout",
            "4s",
            "--env",
            "lab",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(live(&path), ("green".into(), "a000002".into()));

    let load = LoadClient::start(svc.public_port);
    let t = rollback(&path);
    let report = load.finish();
    assert!(
        t.contains("a000002 (green) → a000001 (blue"),
        "the plan names the last good release: {t}"
    );
    assert!(
        t.contains("from the retained image"),
        "the plan says the container is recreated: {t}"
    );
    assert_eq!(live(&path), ("blue".into(), "a000001".into()), "{t}");
    assert_eq!(report.failed, 0, "{:?}", report.failures);
    assert_eq!(
        ledger(&path),
        [
            ("a000001".to_string(), "replaced".to_string()),
            ("a000002".to_string(), "rolled_back".to_string()),
            ("a000001".to_string(), "live".to_string()),
        ]
    );
}

#[test]
fn rollback_after_a_forced_deploy_lands_on_the_release_before() {
    let svc = TestService::new("lo");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    deploy_ok(&path, &["a000001"]);
    deploy_ok(&path, &["a000002"]);
    // The secret-rotation runbook: the same SHA again, in a fresh container.
    deploy_ok(&path, &["a000002", "--force"]);
    let t = rollback(&path);
    assert_eq!(live(&path).1, "a000001", "{t}");
    // The image was pruned by hand meanwhile? Not here; but the container was replaced twice.
    assert!(t.contains("→ a000001"), "{t}");
}

#[test]
fn rollback_after_deploys_stopped_by_sigterm_and_sighup_lands_on_the_last_good_release() {
    let svc = TestService::new("ls");
    svc.push(&["a000001", "a000002", SLOW_SHA]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    deploy_ok(&path, &["a000001"]);
    deploy_ok(&path, &["a000002"]);
    let lock = sshd
        .state_dir()
        .join("locks")
        .join(format!("{}.lock", svc.name));
    for sig in ["TERM", "HUP"] {
        let mut run = JsonRun::spawn(
            &path,
            &[
                "deploy",
                SLOW_SHA,
                "--timeout",
                "120s",
                "--env",
                "lab",
                "--yes",
            ],
        );
        assert!(
            run.wait_for_step("health"),
            "the deploy reached its health wait"
        );
        let pid = run.child.id();
        signal(pid, sig);
        let (code, t) = run.finish();
        assert_eq!(
            code,
            Some(1),
            "SIG{sig} aborts before the switch like Ctrl-C (not a death by signal): {t}"
        );
        assert!(t.contains("aborted"), "{t}");
        assert!(
            std::fs::symlink_metadata(&lock).is_err(),
            "SIG{sig}: the lock was released"
        );
        assert_ne!(
            svc.container_state("blue").as_deref(),
            Some("running"),
            "SIG{sig}: the new container was stopped"
        );
        let audit = audit_records(&sshd.state_dir());
        assert_eq!(
            audit.last().map(|r| r["outcome"].clone()),
            Some("aborted".into()),
            "SIG{sig}"
        );
        assert_eq!(live(&path), ("green".into(), "a000002".into()));
    }
    let t = rollback(&path);
    assert_eq!(live(&path), ("blue".into(), "a000001".into()), "{t}");
}

#[test]
fn a_deploy_killed_after_its_switch_is_reconciled_into_the_ledger() {
    let svc = TestService::new("lk");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    deploy_ok(&path, &["a000001"]);
    // Killed after the switch, before its confirmation: the proxy serves a000002, the ledger
    // was never told.
    assert!(
        deploy_interrupted_at(&path, "a000002", "confirm", |c| c.kill().expect("SIGKILL"))
            .is_some()
    );
    // The holder is dead (same machine, its pid is gone): unlock needs no --force.
    unlock_ok(&path, "a kill after the switch");
    let out = deckhand(&path, &["history", "--env", "lab", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let entries = v[0]["ledger"].as_array().expect("ledger").clone();
    assert_eq!(entries.len(), 2, "{v:#}");
    assert_eq!(entries[1]["sha"], "a000002");
    assert_eq!(entries[1]["reconciled"], true, "{v:#}");
    let t = rollback(&path);
    assert_eq!(live(&path), ("blue".into(), "a000001".into()), "{t}");
}

#[test]
fn an_environment_rollback_whose_hosts_disagree_asks_for_a_ref() {
    // Two hosts behind two sshd instances on the same engine, with their own state (ledgers).
    let svc = TestService::new("le");
    svc.push(&["a000001", "a000002"]);
    let (s1, s2) = (SshServer::start(), SshServer::start());
    let (_d, path) = write_config(&format!(
        "{}\n{}\n{}",
        svc.service_toml(""),
        s1.host_toml("lab", "lab-1"),
        s2.host_toml("lab", "lab-2")
    ));
    for args in [&["a000001"][..], &["a000002"], &["a000002", "--force"]] {
        let mut a = vec!["deploy"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["--env", "lab", "--yes", "--host", "lab-1"]);
        let out = deckhand(&path, &a);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    // lab-1's ledger says a000001 served before; lab-2 has no ledger and only the kept
    // container (a000002, from the forced redeploy) to go by.
    let out = deckhand(&path, &["rollback", "--env", "lab", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("the hosts disagree"), "{t}");
    assert!(
        t.contains("lab-1: a000001") && t.contains("lab-2: a000002"),
        "{t}"
    );
    assert!(t.contains("deckhand rollback <SHA>"), "{t}");
    let out = deckhand(&path, &["rollback", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(live(&path).1, "a000001");
}
