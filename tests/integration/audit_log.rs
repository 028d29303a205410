//! An audit log that loses nothing (issue 11): a cut-off line does not swallow the next record,
//! the file is private, every record carries the host-side identity, and two services deploying
//! at once on one host lose no line.

use std::os::unix::fs::PermissionsExt;

use crate::harness::*;

#[test]
fn a_cut_off_line_is_fenced_the_log_is_private_and_records_name_the_ssh_identity() {
    let svc = TestService::new("ac");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let log = sshd.state_dir().join("audit.jsonl");
    // A writer that died mid-line (disk full, killed): no newline at the end.
    let cut = r#"{"time":"2026-12-01T00:00:00Z","actor":"cut"#;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("audit log");
    std::io::Write::write_all(&mut f, cut.as_bytes()).expect("write");
    drop(f);
    let out = deckhand(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let body = std::fs::read_to_string(&log).expect("read");
    let lines: Vec<&str> = body.lines().collect();
    assert!(
        lines.contains(&cut),
        "the cut line stays on a line of its own:\n{body}"
    );
    let records: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| **l != cut)
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{body}")))
        .collect();
    assert_eq!(
        records.len(),
        4,
        "two deploys, started and success each:\n{body}"
    );
    let mode = std::fs::metadata(&log).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the audit log is private");

    let fingerprint = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(sshd.client_key.with_extension("pub"))
        .output()
        .expect("ssh-keygen");
    let fingerprint = String::from_utf8_lossy(&fingerprint.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    let last = records.last().expect("a record");
    assert!(
        last["ssh_client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1 ")),
        "the SSH client address, from sshd: {last:#}"
    );
    assert_eq!(last["ssh_key"], fingerprint.as_str(), "{last:#}");
    assert_eq!(last["host_user"], "root", "{last:#}");
}

#[test]
fn two_services_on_one_host_deploying_at_once_lose_no_audit_line() {
    // DECKHAND_AUDIT_ROUNDS makes this a soak (scripts/audit-soak.sh); CI runs a few rounds.
    let rounds: usize = std::env::var("DECKHAND_AUDIT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let a = TestService::new("aa");
    let b = TestService::new("ab");
    a.push(&["a000001", "a000002"]);
    b.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = write_config(&format!(
        "{}\n{}\n[env.dev]\nhosts = [\"local\"]\n\n{}",
        a.service_toml(""),
        b.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    ));
    for round in 0..rounds {
        let sha = ["a000001", "a000002"][round % 2];
        let spawn = |svc: &TestService| {
            std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
                .arg("--config")
                .arg(&path)
                .args([
                    "deploy",
                    sha,
                    "--env",
                    "lab",
                    "--yes",
                    "--service",
                    &svc.name,
                ])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        };
        let (pa, pb) = (spawn(&a), spawn(&b));
        for p in [pa, pb] {
            let out = p.wait_with_output().expect("wait");
            assert_eq!(out.status.code(), Some(0), "round {round}: {}", text(&out));
        }
    }
    let records = audit_records(&sshd.state_dir());
    for svc in [&a, &b] {
        let mine: Vec<_> = records
            .iter()
            .filter(|r| r["service"] == svc.name.as_str())
            .collect();
        assert_eq!(
            mine.len(),
            2 * rounds,
            "{}: started + success per deploy",
            svc.name
        );
        assert_eq!(
            mine.iter().filter(|r| r["outcome"] == "success").count(),
            rounds
        );
    }
    eprintln!(
        "audit under concurrency: {} rounds, {} records, all parsed",
        rounds,
        records.len()
    );
}
