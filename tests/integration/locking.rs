//! A lock that holds (issue 11): a live lock survives `unlock --yes`, a deploy whose lock was
//! taken away stops before it changes anything, a stale lock can be taken over, and the lock
//! and prune work when deckhand's state directory is full.

use crate::harness::*;

fn lock_path(sshd: &SshServer, svc: &TestService) -> std::path::PathBuf {
    sshd.state_dir()
        .join("locks")
        .join(format!("{}.lock", svc.name))
}

fn live(path: &std::path::Path) -> (String, String) {
    let (_, v) = status_json(path);
    let s = &v["hosts"][0]["services"][0];
    (
        s["live_color"].as_str().unwrap_or("").to_string(),
        s["live_sha"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn a_deploy_whose_live_lock_is_forced_away_stops_before_it_creates_a_container() {
    let svc = TestService::new("lt");
    svc.push(&["a000001", "a000002", "a000003"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let mut first = JsonRun::spawn(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
    assert!(
        first.wait_for_step("pull"),
        "the first deploy holds the lock"
    );
    // Hold it still where a slow link or a big pull would: the lock is live (fresh heartbeat,
    // its process alive).
    let pid = first.child.id();
    signal(pid, "STOP");
    let out = deckhand(&path, &["unlock", "--env", "lab", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "a live lock is refused: {t}");
    assert!(t.contains("--force"), "{t}");
    assert!(lock_path(&sshd, &svc).exists() || lock_path(&sshd, &svc).is_symlink());

    let out = deckhand(&path, &["unlock", "--env", "lab", "--yes", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A colleague deploys meanwhile: green goes live with a000003.
    let out = deckhand(&path, &["deploy", "a000003", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let green_id = svc.container_id("green");
    signal(pid, "CONT");

    let (code, t) = first.finish();
    assert_eq!(
        code,
        Some(3),
        "the first deploy stops: its lock is gone: {t}"
    );
    assert!(t.contains("lock"), "{t}");
    assert!(
        t.contains("a000003 (green) serves"),
        "it reports what really serves: {t}"
    );
    assert!(
        !t.contains("\"event\":\"step_started\",\"host\":\"lab-1\",\"step\":\"create\""),
        "no container created: {t}"
    );
    assert_eq!(
        svc.container_id("green"),
        green_id,
        "the colleague's release is untouched"
    );
    assert_eq!(live(&path), ("green".into(), "a000003".into()));
    let audit = audit_records(&sshd.state_dir());
    let refused = audit
        .iter()
        .find(|r| r["action"] == "unlock" && r["outcome"] == "refused")
        .expect("the refused unlock is audited too");
    assert!(
        refused["holder"]["pid"] == pid && refused["forced"] != true,
        "{refused:#}"
    );
    let forced = audit
        .iter()
        .find(|r| r["action"] == "unlock" && r["outcome"] == "success")
        .expect("the forced unlock is audited");
    assert_eq!(forced["forced"], true, "{forced:#}");
    assert!(
        forced["holder"]["pid"] == pid,
        "both identities: {forced:#}"
    );
}

#[test]
fn a_lock_forced_away_during_the_health_wait_stops_before_the_switch() {
    let svc = TestService::new("lh");
    svc.push(&["a000001", SLOW_SHA]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
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
    assert!(run.wait_for_step("health"));
    let started = std::time::Instant::now();
    let out = deckhand(&path, &["unlock", "--env", "lab", "--yes", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (code, t) = run.finish();
    assert_eq!(code, Some(3), "{t}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "noticed within a heartbeat or two, not at the health timeout"
    );
    assert!(t.contains("a000001 (blue) serves"), "{t}");
    assert!(
        !t.contains("\"event\":\"step_started\",\"host\":\"lab-1\",\"step\":\"switch\""),
        "{t}"
    );
    assert_eq!(live(&path), ("blue".into(), "a000001".into()));
    assert_eq!(public_get(svc.public_port, "/").expect("public").1, "blue");
}

#[test]
fn a_stale_lock_is_taken_over_with_a_flag_and_the_audit_names_whose() {
    let svc = TestService::new("lv");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    plant_stale_lock(&sshd, &svc);
    let out = deckhand(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("--take-over-stale"), "{}", text(&out));
    let out = deckhand(
        &path,
        &[
            "deploy",
            "a000002",
            "--env",
            "lab",
            "--yes",
            "--take-over-stale",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(live(&path).1, "a000002");
    let audit = audit_records(&sshd.state_dir());
    let took = audit
        .iter()
        .find(|r| r["action"] == "take_over_lock")
        .unwrap_or_else(|| panic!("{audit:#?}"));
    assert_eq!(took["holder"]["actor"], "ci@runner-7");
}

#[test]
fn lock_and_prune_work_when_the_state_directory_is_full() {
    let svc = TestService::new("ld");
    svc.push(&["a000001", "a000002", "a000003", "a000004"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "keep_images = 1\n");
    let disk = SmallDisk::mount(&sshd.state_dir(), "512k");
    for sha in ["a000001", "a000002", "a000003", "a000004"] {
        let out = deckhand(&path, &["deploy", sha, "--env", "lab", "--yes"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    disk.fill();
    let out = deckhand(&path, &["prune", "--env", "lab", "--yes", "--keep", "1"]);
    let t = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "prune on a full state directory: {t}"
    );
    let tags = docker_ok(&["images", "--format", "{{.Tag}}", &svc.repo]);
    let mut tags: Vec<&str> = tags.split_whitespace().collect();
    tags.sort_unstable();
    // a000004 live, a000003 previous (the ledger's rollback target), a000002 the 1 kept.
    assert_eq!(tags, ["a000002", "a000003", "a000004"], "{t}");
    assert!(
        !lock_path(&sshd, &svc).is_symlink() && !lock_path(&sshd, &svc).exists(),
        "released"
    );
    // The audit record had room: deckhand keeps a reserve for it.
    let audit = audit_records(&sshd.state_dir());
    assert!(
        audit
            .iter()
            .any(|r| r["action"] == "prune" && r["outcome"] == "success"),
        "{audit:#?}"
    );
    drop(disk);
}

#[test]
fn a_plan_confirmed_at_a_terminal_stops_when_a_colleague_deployed_meanwhile() {
    use std::io::{Read, Write};
    let svc = TestService::new("lp");
    svc.push(&["a000001", "a000002", "a000003"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A terminal for the prompt (util-linux `script` gives the run a pty).
    let state = tempfile::tempdir().expect("state");
    let cmd = format!(
        "{} --config {} deploy a000002 --env lab",
        env!("CARGO_BIN_EXE_deckhand"),
        path.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("XDG_STATE_HOME", state.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("script (util-linux)");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("Proceed?") {
        let n = stdout.read(&mut buf).expect("read the prompt");
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).contains("a000001 (blue) → a000002"));
    // While the operator reads the plan, a colleague deploys.
    let out = deckhand(&path, &["deploy", "a000003", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    child
        .stdin
        .as_mut()
        .expect("stdin")
        .write_all(b"y\n")
        .expect("answer");
    let _ = stdout.read_to_end(&mut seen);
    let status = child.wait().expect("wait");
    let t = String::from_utf8_lossy(&seen).to_string();
    assert_eq!(status.code(), Some(1), "{t}");
    assert!(t.contains("the host changed since you confirmed"), "{t}");
    assert!(
        t.contains("a000001 (blue) served when you confirmed, now a000003 (green) does"),
        "{t}"
    );
    assert_eq!(live(&path), ("green".into(), "a000003".into()));
    let audit = audit_records(&sshd.state_dir());
    assert_eq!(
        audit.last().map(|r| r["outcome"].clone()),
        Some("refused".into())
    );
}

#[test]
fn on_a_terminal_a_stale_lock_is_offered_for_take_over() {
    use std::io::{Read, Write};
    let svc = TestService::new("lq");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    plant_stale_lock(&sshd, &svc);
    let state = tempfile::tempdir().expect("state");
    let cmd = format!(
        "{} --config {} deploy a000002 --env lab",
        env!("CARGO_BIN_EXE_deckhand"),
        path.display()
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("XDG_STATE_HOME", state.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("script (util-linux)");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut answered = 0;
    for prompt in ["Proceed?", "Take it over"] {
        while String::from_utf8_lossy(&seen).matches(prompt).count() == 0 {
            let n = stdout.read(&mut buf).expect("read");
            assert!(n > 0, "no `{prompt}`: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
        child
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(b"y\n")
            .expect("answer");
        answered += 1;
    }
    let _ = stdout.read_to_end(&mut seen);
    let status = child.wait().expect("wait");
    let t = String::from_utf8_lossy(&seen).to_string();
    assert_eq!((answered, status.code()), (2, Some(0)), "{t}");
    assert!(t.contains("ci@runner-7"), "the offer says whose lock: {t}");
    assert_eq!(live(&path).1, "a000002");
    let audit = audit_records(&sshd.state_dir());
    assert!(
        audit
            .iter()
            .any(|r| r["action"] == "take_over_lock" && r["holder"]["actor"] == "ci@runner-7"),
        "{audit:#?}"
    );
}

/// A lock file left by a CI runner that died 10 minutes ago (the older regular-file form, no
/// heartbeat since): stale, and not this machine's.
fn plant_stale_lock(sshd: &SshServer, svc: &TestService) {
    let lock = lock_path(sshd, svc);
    std::fs::write(
        &lock,
        r#"{"token":"dead","actor":"ci@runner-7","action":"deploy a000009","since":"2026-11-22T01:00:00Z","pid":4242,"machine":"runner-7"}"#,
    )
    .expect("lock");
    assert!(
        std::process::Command::new("touch")
            .args(["-d", "10 minutes ago"])
            .arg(&lock)
            .status()
            .expect("touch")
            .success()
    );
}
