//! `deckhand metrics` and `alerts --watch --listen`: what status and alerts know, in the
//! Prometheus text format, checked by `promtool check metrics` (Debian's prometheus package).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deckhand::monitor::exposition::{HostSample, render};

use crate::harness::*;

fn sample_line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no sample starting with {prefix} in:\n{text}"))
}

#[test]
fn metrics_say_what_status_audit_locks_and_alerts_know_and_pass_promtool() {
    let svc = TestService::new("mx");
    svc.push(&["a000001", EXITING_SHA]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = deckhand(&path, &["deploy", EXITING_SHA, "--env", "lab", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a release that crashes fails: {}",
        text(&out)
    );
    let out = deckhand(&path, &["alerts", "--env", "lab"]);
    assert!(matches!(out.status.code(), Some(0 | 5)), "{}", text(&out));
    let (_, status) = status_json(&path);
    let live = status["hosts"][0]["services"][0]["live_color"]
        .as_str()
        .expect("a live color")
        .to_string();
    // Someone holds the lock now.
    let locks = sshd.state_dir().join("locks");
    std::fs::create_dir_all(&locks).expect("locks dir");
    std::fs::write(
        locks.join(format!("{}.lock", svc.name)),
        r#"{"token":"t","actor":"ana@laptop","action":"deploy","since":"2026-12-01T08:00:00Z","pid":1,"machine":"laptop"}"#,
    )
    .expect("lock");

    let out = deckhand(&path, &["metrics", "--env", "lab"]);
    let body = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (ok, said) = promtool_check(&body);
    assert!(ok && said.trim().is_empty(), "promtool: {said}\n{body}");

    let s = &svc.name;
    let hl = r#"env="lab",host="lab-1""#;
    assert_eq!(
        sample_line(&body, &format!("deckhand_host_up{{{hl}}}")),
        format!("deckhand_host_up{{{hl}}} 1")
    );
    assert_eq!(
        sample_line(&body, "deckhand_service_info{"),
        format!(
            r#"deckhand_service_info{{{hl},service="{s}",live_color="{live}",live_sha="a000001"}} 1"#
        )
    );
    assert!(sample_line(&body, "deckhand_service_healthy{").ends_with(" 1"));
    assert!(
        sample_line(&body, "deckhand_last_release_success{").ends_with(" 0"),
        "the last deploy failed"
    );
    let ts = sample_line(&body, "deckhand_last_release_timestamp_seconds{");
    assert!(ts.contains(r#"action="deploy",outcome="failed""#), "{ts}");
    let when: f64 = ts
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number");
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(
        (now - when).abs() < 300.0,
        "seconds since the epoch: {when}"
    );
    assert!(sample_line(&body, "deckhand_lock_held{").ends_with(" 1"));
    assert!(
        sample_line(
            &body,
            &format!("deckhand_color_running{{{hl},service=\"{s}\",color=\"{live}\"}}")
        )
        .ends_with(" 1")
    );
    let disk: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("deckhand_alert_state{") && l.contains(r#"alert="disk""#))
        .collect();
    assert_eq!(disk.len(), 4, "one sample per state: {disk:?}");
    assert_eq!(
        disk.iter().filter(|l| l.ends_with(" 1")).count(),
        1,
        "{disk:?}"
    );
    assert!(body.contains("# TYPE deckhand_host_filesystem_size_bytes gauge"));
}

#[test]
fn hostile_label_values_are_escaped_and_promtool_still_parses() {
    let hosts = vec![HostSample {
        host: "db\"1\\x\nnext\u{1b}[31m".into(),
        reachable: true,
        alerts: vec![deckhand::monitor::Alert::new("health:a\"b", "rule")],
        ..Default::default()
    }];
    let clean = |s: &str| s.replace('\u{1b}', "\\x1b");
    let body = render("lab", &hosts, &clean);
    let (ok, said) = promtool_check(&body);
    assert!(ok && said.trim().is_empty(), "promtool: {said}\n{body}");
    assert!(body.contains(r#"host="db\"1\\x\nnext\\x1b[31m""#), "{body}");
    assert!(!body.contains('\u{1b}'));
}

fn get(addr: &str, path: &str) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, head.to_string(), body.to_string()))
}

#[test]
fn alerts_watch_listen_serves_the_exposition_to_a_scraper() {
    let svc = TestService::new("ml");
    svc.push(&["a000001"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = deckhand(
        &path,
        &["alerts", "--env", "lab", "--listen", "127.0.0.1:0"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "--listen needs --watch: {}",
        text(&out)
    );

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let state = tempfile::tempdir().expect("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .arg("--config")
        .arg(&path)
        .args(["alerts", "--env", "lab", "--watch", "--listen", &addr])
        .env("XDG_STATE_HOME", state.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn alerts --watch");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (head, body) = loop {
        match get(&addr, "/metrics") {
            Some((200, head, body)) => break (head, body),
            Some((503, _, _)) | None => {}
            Some((code, head, _)) => panic!("HTTP {code}: {head}"),
        }
        assert!(Instant::now() < deadline, "no exposition within 60s");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let (ok, said) = promtool_check(&body);
    assert!(ok && said.trim().is_empty(), "promtool: {said}\n{body}");
    assert!(
        body.contains(r#"deckhand_host_up{env="lab",host="lab-1"} 1"#),
        "{body}"
    );
    assert!(body.contains("deckhand_host_cpu_usage_ratio{"), "{body}");
    assert!(body.contains(r#"live_sha="a000001""#), "{body}");
    assert!(body.contains("deckhand_last_release_success{"), "{body}");
    assert_eq!(get(&addr, "/nope").map(|r| r.0), Some(404));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.code().is_some(), "exited on Ctrl-C, not killed");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("alerts --watch did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
