//! Health polling and alert rules against real hosts (sshd + dockerd).

use crate::harness::*;
use std::time::Duration;

fn alerts_json(path: &std::path::Path, envs: &[(&str, &str)]) -> (Option<i32>, serde_json::Value) {
    let out = deckhand_env(path, &["alerts", "--env", "lab", "--output", "json"], envs);
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("alerts json ({e}): {}", text(&out)));
    (out.status.code(), v)
}

fn alert<'a>(v: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    v["hosts"][0]["alerts"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["key"] == key))
        .unwrap_or_else(|| panic!("no alert {key} in {v:#}"))
}

#[test]
fn an_unhealthy_live_color_goes_pending_then_firing_then_resolves() {
    let svc = TestService::new("ah");
    svc.push(&["a000001"]);
    let sshd = SshServer::start();
    let (_d, path) = write_config(&format!(
        "{}\n{}\n[env.lab.alerts]\nhealth_failures = 2\ninterval = \"1s\"\n",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    ));
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let hook = Webhook::start();
    let env = [("DECKHAND_WEBHOOK_URL", hook.url.as_str())];
    let key = format!("health:{}", svc.name);

    let (code, v) = alerts_json(&path, &env);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(alert(&v, &key)["state"], "inactive");
    let metrics = &v["hosts"][0]["metrics"];
    assert!(metrics["cpu_percent"].as_f64().is_some(), "{metrics:#}");
    assert!(metrics["mem_percent"].as_f64().is_some_and(|m| m > 0.0));
    assert!(
        metrics["containers"][0]["mem_bytes"]
            .as_u64()
            .is_some_and(|m| m > 0),
        "{metrics:#}"
    );

    // Flip the live app to unhealthy through the public port.
    post_ok(svc.public_port, "/admin/unhealthy");

    let (code, v) = alerts_json(&path, &env);
    assert_eq!(alert(&v, &key)["state"], "pending", "{v:#}");
    assert_eq!(code, Some(0), "pending is not firing");
    let (code, v) = alerts_json(&path, &env);
    assert_eq!(alert(&v, &key)["state"], "firing", "{v:#}");
    assert_eq!(code, Some(5));
    assert!(
        alert(&v, &key)["message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP 503")),
        "{v:#}"
    );

    let mut s = std::net::TcpStream::connect(("127.0.0.1", svc.public_port)).expect("connect");
    std::io::Write::write_all(&mut s, b"POST /admin/healthy HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").expect("post");
    let _ = std::io::Read::read_to_string(&mut s, &mut String::new());
    let (code, v) = alerts_json(&path, &env);
    assert_eq!(alert(&v, &key)["state"], "resolved", "{v:#}");
    assert_eq!(code, Some(0));

    let got = hook.received();
    assert!(
        got.iter()
            .any(|b| b.contains("FIRING") && b.contains(&svc.name)),
        "{got:?}"
    );
    assert!(got.iter().any(|b| b.contains("resolved")), "{got:?}");
}

#[test]
fn a_failed_deploy_raises_the_deploy_alert_and_a_notification() {
    let svc = TestService::new("ad");
    svc.push(&["a000001", UNHEALTHY_SHA]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let hook = Webhook::start();
    let env = [("DECKHAND_WEBHOOK_URL", hook.url.as_str())];
    let out = deckhand_env(&path, &["deploy", "a000001", "--env", "lab", "--yes"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = deckhand_env(
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
        &env,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let key = format!("deploy:{}", svc.name);
    let (code, v) = alerts_json(&path, &[]);
    assert_eq!(code, Some(5), "{v:#}");
    assert_eq!(alert(&v, &key)["state"], "firing");
    assert!(
        alert(&v, &key)["message"]
            .as_str()
            .is_some_and(|m| m.contains(UNHEALTHY_SHA)),
        "{v:#}"
    );
    // A later good deploy resolves it.
    let out = deckhand(
        &path,
        &["deploy", "a000001", "--env", "lab", "--yes", "--force"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (_, v) = alerts_json(&path, &[]);
    assert_eq!(alert(&v, &key)["state"], "resolved", "{v:#}");
    let got = hook.received();
    assert!(
        got.iter()
            .any(|b| b.contains("deploy of") && b.contains("succeeded")),
        "{got:?}"
    );
    assert!(got.iter().any(|b| b.contains("FAILED")), "{got:?}");
}

#[test]
fn a_disk_threshold_below_current_use_fires_and_the_table_says_so() {
    let svc = TestService::new("ak");
    let sshd = SshServer::start();
    let (_d, path) = write_config(&format!(
        "{}\n{}\n[env.lab.alerts]\ndisk_percent = 1\ncpu_percent = 100\n",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    ));
    let (code, v) = alerts_json(&path, &[]);
    assert_eq!(code, Some(5), "{v:#}");
    assert_eq!(alert(&v, "disk")["state"], "firing");
    assert_eq!(alert(&v, "cpu")["state"], "inactive");
    let out = deckhand(&path, &["alerts", "--env", "lab"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(
        t.lines()
            .any(|l| l.contains("disk > 1%") && l.contains("FIRING")),
        "{t}"
    );
}

/// Ctrl-C must stop `alerts --watch` whenever it comes, also while a cycle is waiting on a slow
/// host, and the ssh masters must go with it.
#[test]
fn alerts_watch_stops_on_ctrl_c_in_the_middle_of_a_cycle() {
    use std::io::BufRead;
    let svc = TestService::new("aw");
    let sshd = SshServer::start();
    // A host that accepts TCP and never speaks SSH: each cycle waits for its connect timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming().flatten() {
            held.push(conn);
        }
    });
    let good = sshd.host_toml("lab", "lab-1");
    let hung = good.replace("\"lab-1\"", "\"lab-2\"").replace(
        &format!("port = {}", sshd.port),
        &format!("port = {silent_port}"),
    );
    let (_d, path) = write_config(&format!(
        "[defaults]\nconnect_timeout = \"4s\"\n\n{}\n[env.lab.alerts]\ninterval = \"1s\"\n\n{good}\n{hung}",
        svc.service_toml("")
    ));
    let state = tempfile::tempdir().expect("state");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .arg("--config")
        .arg(&path)
        .args(["alerts", "--watch", "--env", "lab", "--output", "json"])
        .env("XDG_STATE_HOME", state.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("a first cycle").expect("read");
    let v: serde_json::Value = serde_json::from_str(&first).expect("json");
    assert_eq!(v["hosts"][1]["reachable"], false, "{v:#}");
    assert_eq!(
        ssh_masters(sshd.port).len(),
        1,
        "one master for the good host"
    );
    // The next cycle starts 1 s after the first printed and then waits ~4 s on lab-2.
    std::thread::sleep(Duration::from_millis(2500));
    let sent = std::time::Instant::now();
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    let deadline = sent + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("alerts --watch ignored Ctrl-C during a cycle");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        status.code(),
        Some(4),
        "exit code of the last full cycle (a host unreachable): {status:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        ssh_masters(sshd.port).is_empty(),
        "ssh masters left behind: {:?}",
        ssh_masters(sshd.port)
    );
}
