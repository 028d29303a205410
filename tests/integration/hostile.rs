//! Hostile hosts: escape sequences in logs, health answers, audit records and lock files; huge
//! bodies; commands that hang; Docker Hub names; several monitors sharing one alert book.

use std::time::{Duration, Instant};

use crate::harness::*;

/// ESC]0;…BEL retitles the terminal, ESC[2J wipes it, ESC]52;c;…BEL writes the clipboard; as
/// TOML/JSON escapes, so the host gets the raw bytes.
const HOSTILE_ESCAPED: &str = "\\u001b]0;owned\\u0007 \\u001b[2J \\u001b]52;c;b3duZWQ=\\u0007";

fn raw_controls(out: &std::process::Output) -> usize {
    out.stdout
        .iter()
        .chain(&out.stderr)
        .filter(|b| **b == 0x1b || **b == 0x07)
        .count()
}

#[test]
fn escape_sequences_from_a_host_never_reach_the_operators_terminal() {
    let svc = TestService::new("hx");
    svc.push(&["a000001"]);
    let sshd = SshServer::start();
    // The app logs its version at start, and this one is unhealthy: the failed deploy prints
    // the log tail.
    let (_d, path) = ssh_config(
        &svc,
        &sshd,
        &format!("env = {{ DEMO_UNHEALTHY = \"1\", DEMO_VERSION = \"{HOSTILE_ESCAPED}\" }}\n"),
    );
    let hook = Webhook::start();
    let mut outputs = Vec::new();
    let run = |args: &[&str], outputs: &mut Vec<(String, std::process::Output)>| {
        let mut a = args.to_vec();
        a.extend(["--env", "lab"]);
        let out = deckhand_env(&path, &a, &[("DECKHAND_WEBHOOK_URL", &hook.url)]);
        let code = out.status.code();
        outputs.push((args.join(" "), out));
        code
    };
    assert_eq!(
        run(
            &["deploy", "a000001", "--yes", "--timeout", "6s"],
            &mut outputs
        ),
        Some(1)
    );
    assert_eq!(
        run(
            &[
                "deploy",
                "a000001",
                "--yes",
                "--timeout",
                "6s",
                "--output",
                "json"
            ],
            &mut outputs
        ),
        Some(1)
    );

    // The host's own files: an audit record and a lock written by someone hostile.
    let state = sshd.state_dir();
    let mut audit = std::fs::OpenOptions::new()
        .append(true)
        .open(state.join("audit.jsonl"))
        .expect("audit log");
    std::io::Write::write_all(
        &mut audit,
        format!(
            "{{\"time\":\"2026-11-30T10:00:00Z\",\"actor\":\"eve{HOSTILE_ESCAPED}\",\"env\":\"lab\",\"host\":\"lab-1\",\"service\":\"{}\",\"action\":\"deploy\",\"from_sha\":null,\"to_sha\":\"a000001\",\"outcome\":\"failed\",\"duration_ms\":1,\"error\":\"boom <!channel> <https://evil.example|runbook> {HOSTILE_ESCAPED}\"}}\n",
            svc.name
        )
        .as_bytes(),
    )
    .expect("append");
    for args in [
        &["history"][..],
        &["history", "--output", "json"],
        &["alerts"],
        &["alerts", "--output", "json"],
        &["status"],
        &["status", "--output", "json"],
    ] {
        run(args, &mut outputs);
    }
    std::fs::create_dir_all(state.join("locks")).expect("locks dir");
    std::fs::write(
        state.join("locks").join(format!("{}.lock", svc.name)),
        format!(
            "{{\"token\":\"t\",\"actor\":\"mallory{HOSTILE_ESCAPED}\",\"action\":\"deploy\",\"since\":\"now\",\"pid\":1,\"machine\":\"m\"}}"
        ),
    )
    .expect("lock");
    run(&["lock"], &mut outputs);
    assert_eq!(
        run(&["deploy", "a000001", "--yes"], &mut outputs),
        Some(3),
        "locked"
    );

    let mut total = 0;
    let mut report = String::new();
    for (what, out) in &outputs {
        let n = raw_controls(out);
        total += n;
        report.push_str(&format!("{what}: {n} raw ESC/BEL bytes\n"));
    }
    assert_eq!(total, 0, "{report}");
    let failed = text(&outputs[0].1);
    assert!(
        failed.contains("\\x1b]0;owned\\x07"),
        "the log tail is shown, escaped: {failed}"
    );
    // The webhook got Slack's escaping: no mention, no disguised link, no raw controls.
    let messages: Vec<String> = hook
        .received()
        .iter()
        .filter_map(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect();
    let alert = messages
        .iter()
        .find(|m| m.contains("boom"))
        .unwrap_or_else(|| panic!("no alert about the hostile record: {messages:?}"));
    assert!(
        alert.contains("&lt;!channel&gt;") && !alert.contains("<!channel>"),
        "{alert}"
    );
    assert!(!alert.contains("<https://"), "{alert}");
    assert!(
        messages
            .iter()
            .all(|m| !m.contains('\u{1b}') && !m.contains('\u{7}')),
        "{messages:?}"
    );
    let locked = text(&outputs.last().expect("deploy").1);
    assert!(locked.contains("mallory\\x1b]0;owned\\x07"), "{locked}");
}

/// A webhook URL is a secret: the HTTP client's error names it, and it must not reach the log.
#[test]
fn an_unreachable_webhook_url_never_reaches_the_log_file() {
    let svc = TestService::new("hw");
    svc.push(&["a000001"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let state = tempfile::tempdir().expect("state");
    let url = "http://127.0.0.1:9/services/T0HOOK/B0HOOK/hooksecret4a4b4c";
    let out = deckhand_env(
        &path,
        &[
            "deploy",
            "a000001",
            "--yes",
            "--env",
            "lab",
            "--log-level",
            "debug",
        ],
        &[
            ("XDG_STATE_HOME", &state.path().display().to_string()),
            ("DECKHAND_WEBHOOK_URL", url),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut logs = String::new();
    for e in std::fs::read_dir(state.path().join("deckhand")).expect("log dir") {
        logs.push_str(&std::fs::read_to_string(e.expect("entry").path()).unwrap_or_default());
    }
    assert!(
        logs.contains("webhook notification failed"),
        "the failure was logged: {logs}"
    );
    for part in ["hooksecret4a4b4c", "B0HOOK"] {
        assert!(!logs.contains(part), "`{part}` in the log:\n{logs}");
        assert!(!text(&out).contains(part), "{}", text(&out));
    }
}

/// A `/health` that streams without end: the probe reads a bounded prefix and says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_health_body_without_end_is_cut_not_read_whole() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let counter = counter.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{\"status\":\"healthy\",\"pad\":\"",
                );
                let chunk = vec![b'x'; 64 * 1024];
                // Up to 10 GB, unless the reader stops.
                for _ in 0..160_000 {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                    counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let sshd = SshServer::start();
    let svc = TestService::new("hb");
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let cfg = deckhand::config::load(&path).expect("config");
    let host = deckhand::transport::Host::connect(&cfg.env("lab").expect("lab").hosts[0])
        .await
        .expect("connect");
    let started = Instant::now();
    let r = deckhand::state::probe_health(&host, port, "/health", Duration::from_secs(30)).await;
    let took = started.elapsed();
    let body = r.body.clone().unwrap_or_default();
    let error = r.error.clone().unwrap_or_default();
    assert!(error.contains("truncated"), "{r:?}");
    assert!(
        body.len() <= 1000 && body.ends_with("[truncated]"),
        "{body}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The server wrote what fits in the socket buffers past the cap, not gigabytes.
    let written = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(written < 64 * 1024 * 1024, "{written} bytes were sent");
    println!(
        "huge /health: probe returned in {} ms; {} KiB left the server before deckhand stopped reading (cap 64 KiB)",
        took.as_millis(),
        written / 1024,
    );
    host.close().await;
}

/// `image = "docker.io/…"`: Docker lists the tags as `…` without the prefix.
#[test]
fn a_docker_io_repository_has_a_history_and_prune_frees_it() {
    let svc = TestService::new("hd");
    let hub_repo = format!("docker.io/{}/demo", svc.name);
    let short = format!("{}/demo", svc.name);
    for sha in ["a000001", "a000002", "a000003"] {
        docker_ok(&[
            "tag",
            &format!("{DEMO_REPO}:{sha}"),
            &format!("{hub_repo}:{sha}"),
        ]);
    }
    let sshd = SshServer::start();
    let toml = svc.service_toml("").replace(
        &format!("image = \"{}\"", svc.repo),
        &format!("image = \"{hub_repo}\""),
    );
    let (_d, path) = write_config(&format!("{toml}\n{}", sshd.host_toml("lab", "lab-1")));
    let out = deckhand(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (_, v) = status_json(&path);
    let images = v["hosts"][0]["services"][0]["images"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let tags: Vec<&str> = images.iter().filter_map(|i| i["tag"].as_str()).collect();
    let cleanup = || {
        for sha in ["a000001", "a000002", "a000003"] {
            let _ = docker(&["rmi", &format!("{short}:{sha}")]);
        }
    };
    if tags.len() != 3 {
        cleanup();
        panic!("history of {hub_repo}: {tags:?} in {v:#}");
    }
    let out = deckhand(&path, &["prune", "--keep", "0", "--env", "lab", "--yes"]);
    let remaining: Vec<bool> = ["a000001", "a000002", "a000003"]
        .iter()
        .map(|sha| {
            docker(&["image", "inspect", &format!("{short}:{sha}")])
                .status
                .success()
        })
        .collect();
    cleanup();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // a000003 is newer than the live release, which prune keeps by its own rules.
    assert_eq!(
        remaining[..2],
        [false, true],
        "prune removes the older unused tag and keeps the live one: {}",
        text(&out)
    );
    assert!(text(&out).contains("reclaimed"), "{}", text(&out));
}

fn alerts_book(state: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(state.join("alerts.json")).expect("alerts.json");
    serde_json::from_str(&text).expect("book json")
}

/// Two monitors (a cron job and a console, say) at once share one book: one failed probe is
/// one failure, and neither loses the other's update. (A failure counts once per 4/5 of the
/// interval; a 5 minute interval keeps a loaded CI machine well inside one.)
#[test]
fn monitors_at_once_count_a_failed_probe_once_and_lose_no_update() {
    let a = TestService::new("ha");
    let b = TestService::new("hb");
    a.push(&["a000001"]);
    b.push(&["a000001"]);
    let sshd = SshServer::start();
    let host = sshd.host_toml("lab", "lab-1");
    let (_da, path_a) = write_config(&format!(
        "{}\n{host}\n[env.lab.alerts]\nhealth_failures = 3\ninterval = \"5m\"\n",
        a.service_toml("")
    ));
    let (_db, path_b) = write_config(&format!(
        "{}\n{host}\n[env.lab.alerts]\nhealth_failures = 3\ninterval = \"5m\"\n",
        b.service_toml("")
    ));
    for (p, s) in [(&path_a, &a), (&path_b, &b)] {
        let out = deckhand(p, &["deploy", "a000001", "--env", "lab", "--yes"]);
        assert_eq!(out.status.code(), Some(0), "{}: {}", s.name, text(&out));
    }
    // Service A's live color turns unhealthy.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", a.public_port)).expect("connect");
    std::io::Write::write_all(&mut s, b"POST /admin/unhealthy HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").expect("post");
    let _ = std::io::Read::read_to_string(&mut s, &mut String::new());

    // Four monitors at once: two watching A, two watching B.
    let spawn = |p: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
            .arg("--config")
            .arg(p)
            .args(["alerts", "--env", "lab", "--output", "json"])
            .env("XDG_STATE_HOME", sshd.dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn alerts")
    };
    let children = [
        spawn(&path_a),
        spawn(&path_a),
        spawn(&path_b),
        spawn(&path_b),
    ];
    let outs: Vec<std::process::Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    for o in &outs {
        let v: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)));
        assert!(v["hosts"][0]["error"].is_null(), "{v:#}");
    }
    let book = alerts_book(&sshd.state_dir());
    assert_eq!(
        book["health_failures"][&a.name], 1,
        "one failed probe, however many monitors saw it: {book:#}"
    );
    for s in [&a, &b] {
        assert!(
            book["alerts"].get(format!("health:{}", s.name)).is_some(),
            "{}'s alert was not lost: {book:#}",
            s.name
        );
    }
    assert_eq!(
        book["alerts"][format!("health:{}", a.name)]["state"],
        "pending"
    );

    // One more monitor of A right after: the same failure, within the same interval.
    let out = deckhand(&path_a, &["alerts", "--env", "lab", "--output", "json"]);
    assert!(out.status.code().is_some(), "{}", text(&out));
    let book = alerts_book(&sshd.state_dir());
    assert_eq!(book["health_failures"][&a.name], 1, "{book:#}");
}

/// A remote command that hangs (here: a FIFO where the alert book should be) fails with a
/// timeout that says so, instead of hanging deckhand.
#[test]
fn a_remote_command_that_hangs_times_out_and_says_so() {
    let svc = TestService::new("ht");
    svc.push(&["a000001"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let fifo = sshd.state_dir().join("alerts.json");
    let _ = std::fs::remove_file(&fifo);
    let mk = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(mk.success());
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .arg("--config")
        .arg(&path)
        .args(["alerts", "--env", "lab"])
        .env("DECKHAND_COMMAND_TIMEOUT", "3s")
        .env("XDG_STATE_HOME", sshd.dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(40);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = std::fs::remove_file(&fifo);
            panic!("`deckhand alerts` still hangs after 40 s on a command that never ends");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("output");
    let _ = std::fs::remove_file(&fifo);
    let t = text(&out);
    assert!(
        t.contains("did not finish within 3.0s") && t.contains("timed out"),
        "{t}"
    );
    println!(
        "hung remote command reported after {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The lock heartbeat keeps beating when one of its commands hangs: the first heartbeat's
/// `grep` on the host never returns (a wrapper on sshd's PATH), the next ones must still
/// refresh the lock, or a deploy longer than 30 s would look abandoned.
#[test]
fn a_hung_heartbeat_command_does_not_stop_the_heartbeat() {
    let svc = TestService::new("hh");
    svc.push(&["a000001"]);
    let wrappers = tempfile::tempdir().expect("wrappers");
    let marker = wrappers.path().join("hung-once");
    let grep = wrappers.path().join("grep");
    std::fs::write(
        &grep,
        format!(
            "#!/bin/sh\n# The first grep of a lock file (the first heartbeat) hangs; the rest are real.\ncase \"$*\" in *.lock*) if [ ! -e {m} ]; then echo $$ > {m}; exec sleep 600; fi;; esac\nexec /bin/grep \"$@\"\n",
            m = marker.display()
        ),
    )
    .expect("wrapper");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&grep)
        .status()
        .expect("chmod");
    let sshd = SshServer::start_with(&format!(
        "SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin\n",
        wrappers.path().display()
    ));
    // Slow to start (12 s): the deploy holds its lock long enough for several heartbeats.
    let (_d, path) = ssh_config(&svc, &sshd, "env = { DEMO_START_DELAY_MS = \"16000\" }\n");
    let lock = sshd
        .state_dir()
        .join("locks")
        .join(format!("{}.lock", svc.name));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .arg("--config")
        .arg(&path)
        .args([
            "deploy",
            "a000001",
            "--env",
            "lab",
            "--yes",
            "--timeout",
            "40s",
        ])
        .env("DECKHAND_COMMAND_TIMEOUT", "3s")
        .env("XDG_STATE_HOME", sshd.dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn deploy");
    let mut first_seen: Option<std::time::SystemTime> = None;
    let mut latest_beat = Duration::ZERO;
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        if let Ok(m) = std::fs::metadata(&lock).and_then(|m| m.modified()) {
            let first = *first_seen.get_or_insert(m);
            latest_beat = latest_beat.max(m.duration_since(first).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    // The hung command (the wrapper's pid, now `sleep`) is ours to end.
    let hung = std::fs::read_to_string(&marker).unwrap_or_default();
    if let Ok(pid) = hung.trim().parse::<u32>() {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
    assert!(
        !hung.is_empty(),
        "the first heartbeat went through the hanging wrapper"
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        latest_beat >= Duration::from_secs(8),
        "the lock was refreshed only {latest_beat:?} after it was taken: the heartbeat stalled on the hung command"
    );
}
