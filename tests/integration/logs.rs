//! `deckhand logs` against real containers on the local engine and over real sshd.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

/// env `lab`: `here` (this machine's engine, no ssh) and `lab-1` (the same engine over sshd):
/// every container shows up once per host, which is what a two-droplet environment looks like.
fn two_hosts(
    svc: &TestService,
    sshd: &SshServer,
    extra: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    write_config(&format!(
        "{}\n[[env.lab.host]]\nname = \"here\"\nssh = \"local\"\n\n{}\n{extra}",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    ))
}

fn wait_for_log(container: &str, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = docker(&["logs", "--tail", "3", container]);
        if String::from_utf8_lossy(&out.stdout).contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{container} never printed {needle}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (time, host, color, text) of table lines.
fn table_rows(stdout: &str) -> Vec<(String, String, String, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let (head, text) = l.split_once(" | ")?;
            let mut f = head.split_whitespace();
            Some((
                f.next()?.to_string(),
                f.next()?.to_string(),
                f.next()?.to_string(),
                text.to_string(),
            ))
        })
        .collect()
}

#[test]
fn logs_of_both_colors_on_every_host_come_merged_in_time_order() {
    let svc = TestService::new("lg");
    let sshd = SshServer::start();
    shell_color(
        &svc,
        "blue",
        "for i in 1 2 3 4 5; do echo \"blue $i\"; sleep 0.2; done; echo blue-done; sleep 600",
    );
    shell_color(
        &svc,
        "green",
        "sleep 0.1; for i in 1 2 3 4 5; do echo \"green $i\" >&2; sleep 0.2; done; echo green-done; sleep 600",
    );
    wait_for_log(&format!("{}-blue", svc.name), "blue-done");
    wait_for_log(&format!("{}-green", svc.name), "green-done");
    let (_d, path) = two_hosts(&svc, &sshd, "");

    let out = deckhand(&path, &["logs", "--env", "lab", "--color", "both"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows = table_rows(&stdout);
    assert_eq!(rows.len(), 24, "6 lines x 2 colors x 2 hosts:\n{stdout}");
    let times: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    assert_eq!(times, sorted, "merged in time order:\n{stdout}");
    let per_host = |host: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r.1 == host)
            .map(|r| format!("{} {}", r.2, r.3))
            .collect()
    };
    let here = per_host("here");
    assert_eq!(
        here,
        per_host("lab-1"),
        "both hosts show the same merge:\n{stdout}"
    );
    for color in ["blue", "green"] {
        let own: Vec<&String> = here.iter().filter(|l| l.starts_with(color)).collect();
        let expected: Vec<String> = (1..=5)
            .map(|i| format!("{color} {color} {i}"))
            .chain([format!("{color} {color}-done")])
            .collect();
        assert_eq!(
            own,
            expected.iter().collect::<Vec<_>>(),
            "{color} in its own order"
        );
    }
    let first_green = here
        .iter()
        .position(|l| l.starts_with("green"))
        .expect("green");
    let last_blue = here
        .iter()
        .rposition(|l| l.starts_with("blue"))
        .expect("blue");
    assert!(
        first_green < last_blue,
        "interleaved, not one container after the other:\n{stdout}"
    );

    let out = deckhand(
        &path,
        &[
            "logs", "--env", "lab", "--color", "both", "--output", "json", "--host", "lab-1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let objs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(objs.len(), 12);
    assert!(
        objs.iter()
            .all(|o| o["host"] == "lab-1" && o["service"] == svc.name.as_str())
    );
    let green1 = objs
        .iter()
        .find(|o| o["line"] == "green 1")
        .expect("green 1");
    assert_eq!(green1["color"], "green");
    assert_eq!(green1["stream"], "stderr");
    assert_eq!(green1["container"], format!("{}-green", svc.name).as_str());
    assert_eq!(green1["cut_bytes"], 0);
    assert!(green1["time"].as_str().is_some_and(|t| t.ends_with('Z')));

    let out = deckhand(
        &path,
        &[
            "logs",
            "--env",
            "lab",
            "--color",
            "both",
            "--grep",
            "^blue [13]$",
        ],
    );
    let rows = table_rows(&String::from_utf8_lossy(&out.stdout));
    let texts: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    assert_eq!(
        texts,
        ["blue 1", "blue 1", "blue 3", "blue 3"],
        "{}",
        text(&out)
    );

    let out = deckhand(
        &path,
        &[
            "logs", "--env", "lab", "--color", "green", "--host", "here", "--tail", "2",
        ],
    );
    let rows = table_rows(&String::from_utf8_lossy(&out.stdout));
    let texts: Vec<&str> = rows.iter().map(|r| r.3.as_str()).collect();
    assert_eq!(texts, ["green 5", "green-done"], "{}", text(&out));

    let out = deckhand(&path, &["logs", "--env", "lab", "--grep", "("]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--grep"), "{}", text(&out));
    let out = deckhand(&path, &["logs", "--env", "lab", "--host", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("hosts: here, lab-1"), "{}", text(&out));
}

#[test]
fn the_live_color_is_read_from_the_proxy_and_a_dead_host_is_exit_4() {
    let svc = TestService::new("ll");
    svc.tag_local(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let dead = format!(
        "[[env.lab.host]]\nname = \"dead-1\"\nssh = \"root@127.0.0.1\"\nport = {}\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\n",
        free_port(),
        sshd.client_key.display(),
        sshd.known_hosts.display()
    );
    let (_d, path) = two_hosts(&svc, &sshd, &dead);
    let cfg = deckhand::config::load(&path).expect("config");
    svc.lay_out_by_hand(
        &cfg.services[0],
        ("green", "a000002"),
        Some(("blue", "a000001")),
    );
    wait_for_log(&format!("{}-green", svc.name), "listening");

    let out = deckhand(&path, &["logs", "--env", "lab"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    let rows = table_rows(&String::from_utf8_lossy(&out.stdout));
    assert!(!rows.is_empty(), "{t}");
    assert!(
        rows.iter().all(|r| r.2 == "green"),
        "only the live color: {t}"
    );
    assert!(
        rows.iter()
            .any(|r| r.3.contains("version a000002, healthy")),
        "{t}"
    );
    assert!(
        t.contains("warning: dead-1: "),
        "the dead host is named: {t}"
    );
}

#[test]
fn hostile_log_text_is_shown_escaped_and_a_huge_line_is_cut() {
    let svc = TestService::new("lh");
    let sshd = SshServer::start();
    shell_color(
        &svc,
        "blue",
        r"printf 'esc \033[31mred\033[0m title \033]0;owned\007 cr\rover bidi \342\200\256txt c1 \302\233 end\n'; head -c 3000000 /dev/zero | tr '\0' A; echo; echo after-the-huge-line; sleep 600",
    );
    wait_for_log(&format!("{}-blue", svc.name), "after-the-huge-line");
    let (_d, path) = two_hosts(&svc, &sshd, "");
    for format in ["table", "json"] {
        let out = deckhand(
            &path,
            &[
                // Docker's tail counts 16 KiB pieces of a long line as records: read by time.
                "logs", "--env", "lab", "--host", "lab-1", "--color", "blue", "--since", "10m",
                "--output", format,
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let bytes = &out.stdout;
        for (bad, what) in [(0x1b, "ESC"), (0x07, "BEL"), (b'\r', "CR")] {
            assert!(
                !bytes.contains(&bad),
                "{format}: a raw {what} reached the terminal"
            );
        }
        let s = String::from_utf8_lossy(bytes);
        assert!(
            !s.contains('\u{202e}') && !s.contains('\u{9b}'),
            "{format}: {s}"
        );
        let first = s
            .lines()
            .find(|l| l.contains("esc "))
            .expect("the hostile line");
        let want = if format == "json" {
            r#"esc \\x1b[31mred\\x1b[0m title \\x1b]0;owned\\x07 cr\\rover bidi \\u{202e}txt c1 \\u{9b} end"#
        } else {
            r"esc \x1b[31mred\x1b[0m title \x1b]0;owned\x07 cr\rover bidi \u{202e}txt c1 \u{9b} end"
        };
        assert!(first.contains(want), "{format}: {first}");
        let huge = s
            .lines()
            .find(|l| l.contains("AAAA"))
            .expect("the huge line");
        assert!(
            huge.len() < 8192 + 300,
            "{format}: cut at the cap, was {} bytes",
            huge.len()
        );
        let cut = 3_000_000 - 8192;
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(huge).expect("json");
            assert_eq!(v["cut_bytes"], cut);
        } else {
            assert!(
                huge.ends_with(&format!("… [{cut} more bytes cut]")),
                "{}",
                &huge[huge.len() - 60..]
            );
        }
        assert!(s.contains("after-the-huge-line"), "the next line survives");
    }
}

fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// 40 MB of 1 KB lines and one 20 MB line, read by a consumer that stops reading for 3 s: the
/// peak memory of deckhand stays far below what it was sent.
#[test]
fn memory_stays_bounded_when_a_host_floods_and_the_reader_is_slow() {
    let svc = TestService::new("lf");
    let sshd = SshServer::start();
    shell_color(
        &svc,
        "blue",
        r#"l=$(head -c 1000 /dev/zero | tr '\0' x); i=0; while [ $i -lt 40000 ]; do echo "$i $l"; i=$((i+1)); done; head -c 20000000 /dev/zero | tr '\0' y; echo; echo flood-done; sleep 600"#,
    );
    wait_for_log(&format!("{}-blue", svc.name), "flood-done");
    let (_d, path) = two_hosts(&svc, &sshd, "");
    let state = tempfile::tempdir().expect("state");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .arg("--config")
        .arg(&path)
        .args([
            "logs", "--env", "lab", "--host", "lab-1", "--color", "blue", "--since", "1h",
            "--follow",
        ])
        .env("XDG_STATE_HOME", state.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn deckhand logs");
    let pid = child.id();
    // A reader that does not read: the pipe fills, deckhand must stop taking from the host.
    std::thread::sleep(Duration::from_secs(3));
    let hwm_blocked = vm_hwm_kib(pid);
    let reader = BufReader::new(child.stdout.take().expect("stdout"));
    let (mut lines, mut bytes) = (0u64, 0u64);
    for line in reader.lines() {
        let line = line.expect("line");
        lines += 1;
        bytes += line.len() as u64 + 1;
        if line.ends_with("| flood-done") {
            break;
        }
    }
    let elapsed = started.elapsed();
    let hwm = vm_hwm_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    eprintln!(
        "logs flood: {lines} lines, {:.1} MB printed of ~60 MB sent, in {:.1}s (3s not reading); peak RSS {} MiB (while blocked: {} MiB)",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        hwm / 1024,
        hwm_blocked / 1024
    );
    assert_eq!(
        lines, 40_002,
        "every line arrived, in order, up to the marker"
    );
    assert!(hwm > 0, "VmHWM was read");
    assert!(
        hwm < 48 * 1024,
        "peak RSS {hwm} KiB: memory must not follow what the host sends"
    );
}

/// `logs --follow` of the live color during a deploy: the old color stops, the new one is
/// followed from then on (what an operator watching a release wants).
#[test]
fn following_the_live_color_survives_a_deploy() {
    use std::sync::{Arc, Mutex};
    let svc = TestService::new("lw");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let state = tempfile::tempdir().expect("state");
    let mut child = Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .arg("--config")
        .arg(&path)
        .args(["logs", "--env", "lab", "--follow"])
        .env("XDG_STATE_HOME", state.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                seen.lock().expect("lock").push(line);
            }
        }));
    }
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !seen
            .lock()
            .expect("lock")
            .iter()
            .any(|l| l.contains(needle))
        {
            assert!(
                Instant::now() < deadline,
                "never saw {needle}: {:#?}",
                seen.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("version a000001, healthy");
    let out = deckhand(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_for("the live color is");
    wait_for("version a000002, healthy");
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    for r in readers {
        let _ = r.join();
    }
    assert_eq!(status.code(), Some(0), "Ctrl-C ends a follow cleanly");
}
