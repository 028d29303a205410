//! Things operators and hosts do to a running service, and how deckhand copes: each test is a row
//! of docs/reliability.md.

use crate::harness::*;

fn deployed(
    prefix: &str,
) -> (
    TestService,
    SshServer,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    let svc = TestService::new(prefix);
    svc.push(&["a000001", "a000002", "a000003"]);
    let sshd = SshServer::start();
    let (d, path) = ssh_config(&svc, &sshd, "");
    for sha in ["a000001", "a000002"] {
        let out = deckhand(&path, &["deploy", sha, "--env", "lab", "--yes"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    (svc, sshd, d, path)
}

#[test]
fn proxy_stopped_by_hand_is_reported_and_the_next_deploy_restarts_it() {
    let (svc, _sshd, _d, path) = deployed("xp");
    docker_ok(&["stop", &format!("{}-proxy", svc.name)]);
    let (code, v) = status_json(&path);
    assert_eq!(code, Some(5), "{v:#}");
    let problems = v["hosts"][0]["services"][0]["problems"].to_string();
    assert!(problems.contains("is not running"), "{problems}");
    assert_eq!(
        v["hosts"][0]["services"][0]["live_color"], "green",
        "read from the stopped proxy's config"
    );

    let out = deckhand(&path, &["deploy", "a000003", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(public_get(svc.public_port, "/").expect("public").1, "blue");
    let (code, v) = status_json(&path);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(svc.container_state("green").as_deref(), Some("exited"));
}

#[test]
fn proxy_removed_by_hand_is_recreated_and_the_orphan_color_stopped() {
    let (svc, _sshd, _d, path) = deployed("xr");
    docker_ok(&["rm", "-f", &format!("{}-proxy", svc.name)]);
    let (code, v) = status_json(&path);
    assert_eq!(code, Some(5), "{v:#}");
    assert!(
        v["hosts"][0]["services"][0]["problems"]
            .to_string()
            .contains("is missing"),
        "{v:#}"
    );

    let out = deckhand(&path, &["deploy", "a000003", "--env", "lab", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    let (code, v) = status_json(&path);
    assert_eq!(code, Some(0), "{v:#}");
    let s = &v["hosts"][0]["services"][0];
    assert_eq!(s["live_sha"], "a000003");
    let live = s["live_color"].as_str().unwrap_or("");
    let other = if live == "blue" { "green" } else { "blue" };
    assert_eq!(
        svc.container_state(other).as_deref(),
        Some("exited"),
        "the orphan was stopped: {t}"
    );
    assert_eq!(public_get(svc.public_port, "/").expect("public").1, live);
}

#[test]
fn both_colors_stopped_by_hand_are_reported_and_a_rollback_restores_service() {
    let (svc, _sshd, _d, path) = deployed("xb");
    docker_ok(&["stop", &format!("{}-green", svc.name)]);
    let (code, v) = status_json(&path);
    assert_eq!(code, Some(5), "{v:#}");
    assert!(
        v["hosts"][0]["services"][0]["problems"]
            .to_string()
            .contains("live color green is exited"),
        "{v:#}"
    );
    // No backend: HAProxy answers 503 once its connect attempts to the gone container fail.
    let (code, _) = public_get(svc.public_port, "/").expect("proxy answers");
    assert_eq!(code, 503);

    // The previous release (blue, a000001) is the fastest way back.
    let out = deckhand(&path, &["rollback", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (code, v) = status_json(&path);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["hosts"][0]["services"][0]["live_sha"], "a000001");
    assert_eq!(
        public_get(svc.public_port, "/").expect("public"),
        (200, "blue".to_string())
    );
}

#[test]
fn a_stale_lock_is_reported_as_such_and_cleared_only_by_unlock() {
    let (svc, sshd, _d, path) = deployed("xl");
    // A lock whose holder died long ago: the file exists and its heartbeat is old.
    let locks = sshd.state_dir().join("locks");
    std::fs::create_dir_all(&locks).expect("locks dir");
    let lock = locks.join(format!("{}.lock", svc.name));
    std::fs::write(
        &lock,
        r#"{"token":"dead","actor":"ci@runner-7","action":"deploy a000002","since":"2026-11-22T01:00:00Z","pid":4242,"machine":"runner-7"}"#,
    )
    .expect("lock");
    let old = std::process::Command::new("touch")
        .args(["-d", "10 minutes ago"])
        .arg(&lock)
        .status()
        .expect("touch");
    assert!(old.success());
    let out = deckhand(&path, &["deploy", "a000003", "--env", "lab", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(
        t.contains("locked by ci@runner-7 since 2026-11-22T01:00:00Z doing deploy a000002 (STALE"),
        "{t}"
    );
    assert!(t.contains("deckhand unlock"), "{t}");
    let out = deckhand(&path, &["lock", "--env", "lab"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let out = deckhand(&path, &["unlock", "--env", "lab"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "unlock asks; without a terminal it needs --yes: {}",
        text(&out)
    );
    let out = deckhand(&path, &["unlock", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = deckhand(&path, &["deploy", "a000003", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn an_interrupted_switch_is_seen_from_what_the_proxy_serves_and_settled_by_the_next_action() {
    let (svc, _sshd, _d, path) = deployed("xs");
    // The file names blue, HAProxy's memory serves green (a switch cut half-way, or a hand edit).
    docker_ok(&["start", &format!("{}-blue", svc.name)]);
    let cfg = deckhand::config::load(&path).expect("config");
    let conf = deckhand::state::proxy_conf::render(
        &cfg.services[0],
        &deckhand::state::proxy_conf::ProxyRoute {
            color: deckhand::state::Color::Blue,
            sha: "a000001".into(),
        },
    );
    let f = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(f.path(), conf).expect("write");
    docker_ok(&[
        "cp",
        &f.path().display().to_string(),
        &format!("{}-proxy:/etc/haproxy/haproxy.cfg", svc.name),
    ]);
    assert_eq!(public_get(svc.public_port, "/").expect("public").1, "green");

    let (code, v) = status_json(&path);
    assert_eq!(code, Some(5), "{v:#}");
    let s = &v["hosts"][0]["services"][0];
    assert_eq!(s["live_color"], "green", "what the proxy serves: {v:#}");
    assert!(
        s["problems"]
            .to_string()
            .contains("the proxy serves green but its config file names blue"),
        "{v:#}"
    );

    let load = LoadClient::start(svc.public_port);
    let out = deckhand(&path, &["deploy", "a000003", "--env", "lab", "--yes"]);
    let report = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(report.failed, 0, "{:?}", report.failures);
    let (code, v) = status_json(&path);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["hosts"][0]["services"][0]["live_sha"], "a000003");
    assert_eq!(public_get(svc.public_port, "/").expect("public").1, "blue");
}

/// A throw-away non-root user in the `docker` group, removed on drop.
struct DeployUser(String);

impl DeployUser {
    fn create() -> DeployUser {
        let name = format!("dh{}", unique_name("u").replace('-', ""));
        let name: String = name.chars().take(30).collect();
        let ok = std::process::Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", "-G", "docker", &name])
            .status()
            .unwrap_or_else(|e| {
                panic!("useradd ({e}): the test needs root and the passwd package")
            });
        assert!(
            ok.success(),
            "useradd {name} failed (is there a `docker` group? apt-get install docker.io)"
        );
        // A `!` password means "locked" to sshd without PAM, even for key logins.
        let ok = std::process::Command::new("usermod")
            .args(["-p", "*", &name])
            .status()
            .expect("usermod");
        assert!(ok.success());
        DeployUser(name)
    }
}

impl Drop for DeployUser {
    fn drop(&mut self) {
        let _ = std::process::Command::new("userdel").arg(&self.0).status();
    }
}

#[test]
fn a_non_root_deploy_user_in_the_docker_group_can_do_everything() {
    use std::os::unix::fs::PermissionsExt;
    let svc = TestService::new("nu");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let user = DeployUser::create();
    // sshd reads authorized_keys as the user; the state dir must be the user's to write.
    std::fs::set_permissions(sshd.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    std::fs::create_dir_all(sshd.state_dir()).expect("state dir");
    let ok = std::process::Command::new("chown")
        .args([&format!("{}:{}", user.0, user.0)])
        .arg(sshd.state_dir())
        .status()
        .expect("chown");
    assert!(ok.success());
    let host = sshd.host_toml("lab", "lab-1").replace(
        "ssh = \"root@127.0.0.1\"",
        &format!("ssh = \"{}@127.0.0.1\"", user.0),
    );
    let (_d, path) = write_config(&format!("{}\n{host}", svc.service_toml("")));

    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = deckhand(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = deckhand(&path, &["rollback", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (code, v) = status_json(&path);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["hosts"][0]["services"][0]["live_sha"], "a000001");
    let audit = std::fs::read_to_string(sshd.state_dir().join("audit.jsonl")).expect("audit");
    assert!(
        audit.contains("\"host\":\"lab-1\""),
        "the audit log was written by the deploy user"
    );
    let owner = std::process::Command::new("stat")
        .args(["-c", "%U"])
        .arg(sshd.state_dir().join("audit.jsonl"))
        .output()
        .expect("stat");
    assert_eq!(String::from_utf8_lossy(&owner.stdout).trim(), user.0);
}

/// Cuts a deploy's SSH connection (SIGKILL to the ssh master) when `step` starts. Returns the
/// exit code, or `None` when the step was never reached.
fn deploy_cut_at(path: &std::path::Path, port: u16, sha: &str, step: &str) -> Option<Option<i32>> {
    deploy_interrupted_at(path, sha, step, |_| {
        for pid in ssh_masters(port) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
        }
    })
}

#[test]
fn the_ssh_connection_cut_at_each_step_leaves_a_serving_service_and_the_next_run_converges() {
    let svc = TestService::new("sc");
    svc.push(&GOOD_SHAS);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        ssh_masters(sshd.port).is_empty(),
        "deckhand closed its master on exit"
    );

    let load = LoadClient::start(svc.public_port);
    let steps = [
        "inspect", "pull", "network", "create", "start", "health", "proxy", "switch", "confirm",
        "drain", "stop_old",
    ];
    let mut outcomes = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let sha = GOOD_SHAS[1 + i % (GOOD_SHAS.len() - 1)];
        let code = deploy_cut_at(&path, sshd.port, sha, step)
            .unwrap_or_else(|| panic!("step {step} was never reached"));
        outcomes.push(format!("{step}: exit {code:?}"));
        // The lock of the cut run stays until someone clears it (its heartbeat died with the
        // connection); then the same deploy converges.
        unlock_ok(&path, &format!("a cut at {step}"));
        redeploy_converges(&path, sha, &format!("a cut at {step}"));
    }
    let report = load.finish();
    eprintln!(
        "ssh cut matrix: {}; {} requests sent, {} failed",
        outcomes.join(", "),
        report.sent,
        report.failed
    );
    assert_eq!(report.failed, 0, "served throughout: {:?}", report.failures);
    assert!(
        ssh_masters(sshd.port).is_empty(),
        "no ssh master left behind"
    );
    // Every run is on the record with its outcome, cut ones included: deckhand reconnects to
    // write the record and release its lock.
    let audit = audit_records(&sshd.state_dir());
    assert_eq!(
        ended_deploys(&audit),
        1 + 2 * steps.len(),
        "one outcome per run: {audit:#?}"
    );
}

#[test]
fn the_ssh_master_of_a_killed_deckhand_is_stopped_by_the_next_run() {
    let svc = TestService::new("om");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // SIGKILL mid-deploy: nothing in the process can close its master.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .arg("--config")
        .arg(&path)
        .args(["deploy", "a000002", "--env", "lab", "--yes"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Killed once its master is up (the ssh process exists before its control socket does).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ssh_masters(sshd.port)
        .iter()
        .any(|pid| master_socket_exists(pid))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the deploy never connected"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert_eq!(
        ssh_masters(sshd.port).len(),
        1,
        "the orphan master lives on"
    );
    // Any later deckhand run stops it.
    let out = deckhand(&path, &["status", "--env", "lab"]);
    assert!(out.status.code().is_some(), "{}", text(&out));
    // `ssh -O exit` asks the master to go; it does so within moments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !ssh_masters(sshd.port).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "orphan master not reaped: {:?}",
            ssh_masters(sshd.port)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn master_socket_exists(pid: &str) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    args.iter()
        .position(|a| a == "-S")
        .and_then(|i| args.get(i + 1))
        .is_some_and(|sock| std::path::Path::new(sock).exists())
}
