//! The long-lived remote shell behind `Host::exec` over ssh (`transport::remote_shell`), against
//! the harness's real sshd: framing with hostile output, stdin, the output cap, time limits,
//! concurrent callers, a master killed mid-command; and how many ssh sessions a rollback opens.

use std::time::{Duration, Instant};

use deckhand::transport::{Host, MAX_SHELLS, TransportError};

use crate::harness::*;

async fn connect(sshd: &SshServer) -> (Host, tempfile::TempDir) {
    let svc = TestService::new("rsh");
    let (dir, path) = ssh_config(&svc, sshd, "");
    let cfg = deckhand::config::load(&path).expect("config");
    let host = Host::connect(&cfg.env("lab").expect("lab").hosts[0])
        .await
        .expect("connect");
    (host, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_in_the_shell_keep_their_bytes_status_and_stderr() {
    let sshd = SshServer::start();
    let (host, _d) = connect(&sshd).await;
    // Output that looks like the driver's markers (any nonce, this sequence number), NUL bytes,
    // no newline at the end; stderr apart; the exit status.
    let script = r#"printf 'dh00:E:0:0\n\0:B:1\nx\0y'; printf 'err\0or' >&2; exit 3"#;
    for _ in 0..3 {
        let out = host
            .exec("sh", &["-c", script, "t"], None)
            .await
            .expect("exec");
        assert_eq!(out.stdout, b"dh00:E:0:0\n\0:B:1\nx\0y");
        assert_eq!(out.stderr, b"err\0or");
        assert_eq!(out.status, Some(3));
    }
    // Words with quotes, `$`, backquotes and newlines arrive as they were.
    let hostile = "it's $(touch /tmp/no) `id` \"$HOME\"\n\\ ; exit 9";
    let out = host
        .exec("sh", &["-c", r#"printf '%s' "$1""#, "t", hostile], None)
        .await
        .expect("exec");
    assert_eq!(out.stdout_text(), hostile);
    assert!(out.success());
    // Binary stdin, every byte value, newlines, and something that looks like a command line.
    let mut data: Vec<u8> = (0..=255u8).collect();
    data.extend_from_slice(b"\n7 ZWNobyBoaQ== -\n\0\n");
    let out = host.exec("cat", &[], Some(&data)).await.expect("cat");
    assert_eq!(out.stdout, data);
    let out = host.exec("cat", &[], Some(b"")).await.expect("cat");
    assert!(out.stdout.is_empty() && out.success());
    // No stdin: the command cannot read the driver's.
    let out = host
        .exec("sh", &["-c", "cat; echo done"], None)
        .await
        .expect("exec");
    assert_eq!(out.stdout_text(), "done\n");
    // A command that changes its shell (`exit`, `cd`, `set -e`, closing stdout) changes
    // nothing for the next one.
    let out = host
        .exec("sh", &["-c", "cd /; exec 1>&-; exit 0"], None)
        .await
        .expect("exec");
    assert!(out.success());
    let out = host.exec("pwd", &[], None).await.expect("pwd");
    assert!(out.success(), "{out:?}");
    // A program that is not there is the same error as through a plain exec.
    let e = host
        .exec("deckhand-no-such-program", &[], None)
        .await
        .expect_err("not found");
    assert!(e.to_string().contains("remote command not found"), "{e}");
    let stats = host.shell_stats().expect("an ssh host has shells");
    assert_eq!(
        stats.started, 1,
        "one shell ran them all one after another: {stats:?}"
    );
    assert!(stats.commands >= 10 && stats.plain == 0, "{stats:?}");
    host.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_output_is_cut_at_the_cap_and_the_shell_goes_on() {
    let sshd = SshServer::start();
    let (host, _d) = connect(&sshd).await;
    let out = host
        .exec(
            "sh",
            &["-c", "head -c 9000000 /dev/zero; echo tail >&2"],
            None,
        )
        .await
        .expect("exec");
    assert!(out.success());
    let marker = b"\n[truncated by deckhand]\n";
    assert_eq!(out.stdout.len(), 4 * 1024 * 1024 + marker.len());
    assert!(out.stdout.ends_with(marker));
    assert_eq!(out.stderr_text(), "tail");
    let out = host.exec("echo", &["next"], None).await.expect("echo");
    assert_eq!(out.stdout_text(), "next\n");
    assert_eq!(host.shell_stats().map(|s| s.started), Some(1));
    host.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_past_its_time_limit_ends_its_shell_and_the_next_one_works() {
    let sshd = SshServer::start();
    let (host, _d) = connect(&sshd).await;
    host.exec("true", &[], None).await.expect("warm");
    let t = Instant::now();
    let e = host
        .exec_within(
            Duration::from_secs(1),
            "sh",
            &["-c", "sleep 30", "deckhand-slow"],
            None,
        )
        .await
        .expect_err("timed out");
    assert!(matches!(e, TransportError::CommandTimeout { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    let stats = host.shell_stats().expect("stats");
    assert_eq!(stats.dropped, 1, "{stats:?}");
    // The next command gets a new shell, not the one still running `sleep`.
    let out = host.exec("echo", &["after"], None).await.expect("echo");
    assert_eq!(out.stdout_text(), "after\n");
    let stats = host.shell_stats().expect("stats");
    assert_eq!(stats.started, 2, "{stats:?}");
    host.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_each_get_their_own_answer() {
    let sshd = SshServer::start();
    let (host, _d) = connect(&sshd).await;
    let n = 8;
    let runs = (0..n).map(|i| {
        let host = &host;
        async move {
            let arg = format!("caller-{i}");
            let out = host
                .exec(
                    "sh",
                    &["-c", r#"sleep 0.3; echo "$1"; echo "e$1" >&2"#, "t", &arg],
                    None,
                )
                .await
                .expect("exec");
            (arg, out)
        }
    });
    for (arg, out) in futures_util::future::join_all(runs).await {
        assert_eq!(out.stdout_text(), format!("{arg}\n"));
        assert_eq!(out.stderr_text(), format!("e{arg}"));
    }
    let stats = host.shell_stats().expect("stats");
    assert!(stats.started <= MAX_SHELLS, "{stats:?}");
    assert_eq!(stats.commands + stats.plain, n, "{stats:?}");
    host.close().await;
}

/// An sshd whose sessions find `dir/bin` first in PATH, holding these scripts (name, body).
fn sshd_with_wrappers(dir: &std::path::Path, scripts: &[(&str, String)]) -> SshServer {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for (name, body) in scripts {
        std::fs::write(bin.join(name), body).expect("wrapper");
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    SshServer::start_with(&format!(
        "SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin\n",
        bin.display()
    ))
}

/// An `sh` that starts deckhand's shell driver only once the shell's first command's line has
/// come too (its first two lines on stdin: the nonce and that line), after `then` (shell
/// text: `exit 0` ends it there); every other `sh` runs as it is. Sending that line only after
/// the driver's `ready` never gets an answer from such a host.
fn gated_sh(then: &str) -> String {
    format!(
        "#!/bin/sh\ncase \"$2\" in\n\"IFS= read -r n\"*)\n\
         IFS= read -r nonce; IFS= read -r first\n{then}\n\
         {{ printf '%s\\n%s\\n' \"$nonce\" \"$first\"; exec cat; }} | exec /bin/sh \"$@\";;\n\
         esac\nexec /bin/sh \"$@\"\n"
    )
}

/// A command that appends a line to `log` (so how often it ran can be counted), prints on both
/// pipes and exits 4.
fn counted(log: &std::path::Path) -> [String; 4] {
    [
        "-c".into(),
        r#"echo ran >> "$1"; echo out; echo err >&2; exit 4"#.into(),
        "deckhand-counted".into(),
        log.display().to_string(),
    ]
}

fn runs(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .count()
}

async fn exec_counted(host: &Host, log: &std::path::Path) -> deckhand::transport::ExecOutput {
    let args = counted(log);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = host
        .exec_within(Duration::from_secs(15), "sh", &args, None)
        .await
        .expect("exec");
    assert_eq!(out.stdout_text(), "out\n", "{out:?}");
    assert_eq!(out.stderr_text(), "err", "{out:?}");
    assert_eq!(out.status, Some(4));
    out
}

/// The first command is sent behind the shell's nonce, without waiting for its `ready`: on a
/// host whose driver starts only once that line is there too, it runs in the shell, once,
/// with its output and status. Before, the command waited for a `ready` that never came and
/// ran out of time (the shell's start waited 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_command_goes_out_before_the_shell_is_ready() {
    let work = tempfile::tempdir().expect("tempdir");
    let sshd = sshd_with_wrappers(work.path(), &[("sh", gated_sh(""))]);
    let (host, _d) = connect(&sshd).await;
    let log = work.path().join("runs.log");
    exec_counted(&host, &log).await;
    assert_eq!(runs(&log), 1);
    exec_counted(&host, &log).await;
    assert_eq!(runs(&log), 2);
    let stats = host.shell_stats().expect("stats");
    assert_eq!(
        (stats.started, stats.commands, stats.plain),
        (1, 2, 0),
        "both ran in the one shell: {stats:?}"
    );
    host.close().await;
    // A first command that is not there is the error a plain exec gives, and the shell goes on.
    let (host, _d) = connect(&sshd).await;
    let e = host
        .exec_within(
            Duration::from_secs(15),
            "deckhand-no-such-program",
            &[],
            None,
        )
        .await
        .expect_err("not found");
    assert!(e.to_string().contains("remote command not found"), "{e}");
    let out = host.exec("echo", &["next"], None).await.expect("echo");
    assert_eq!(out.stdout_text(), "next\n");
    assert_eq!(host.shell_stats().map(|s| s.started), Some(1));
    host.close().await;
}

/// A host without a working `base64`: the driver says so and exits before it reads the first
/// command's line, which was already sent. That command runs once, as a plain exec, as does
/// every later one; no further shell is started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_base64_the_first_command_runs_once_as_a_plain_exec() {
    let work = tempfile::tempdir().expect("tempdir");
    let sshd = sshd_with_wrappers(
        work.path(),
        &[
            ("sh", gated_sh("")),
            ("base64", "#!/bin/sh\nexit 1\n".to_string()),
        ],
    );
    let (host, _d) = connect(&sshd).await;
    let log = work.path().join("runs.log");
    exec_counted(&host, &log).await;
    assert_eq!(runs(&log), 1, "the command ran once");
    exec_counted(&host, &log).await;
    assert_eq!(runs(&log), 2);
    let stats = host.shell_stats().expect("stats");
    assert_eq!(
        (stats.started, stats.commands, stats.plain, stats.live),
        (1, 0, 2, 0),
        "{stats:?}"
    );
    host.close().await;
}

/// A driver that ends before it answers (here: after its first command's line came): every
/// byte it printed came and the channel closed in order, so that command never ran; it runs
/// once, as a plain exec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_that_ends_at_start_runs_its_first_command_once_as_a_plain_exec() {
    let work = tempfile::tempdir().expect("tempdir");
    let sshd = sshd_with_wrappers(work.path(), &[("sh", gated_sh("exit 0"))]);
    let (host, _d) = connect(&sshd).await;
    let log = work.path().join("runs.log");
    exec_counted(&host, &log).await;
    assert_eq!(runs(&log), 1, "the command ran once");
    let stats = host.shell_stats().expect("stats");
    assert_eq!((stats.commands, stats.plain), (0, 1), "{stats:?}");
    host.close().await;
}

/// A first command that runs out of time while its shell is still starting (a slow login
/// here) ends that shell: the next command never reads the abandoned command's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_command_past_its_time_limit_during_the_start_leaves_nothing_behind() {
    let work = tempfile::tempdir().expect("tempdir");
    let slow =
        "#!/bin/sh\ncase \"$2\" in \"IFS= read -r n\"*) sleep 3;; esac\nexec /bin/sh \"$@\"\n";
    let sshd = sshd_with_wrappers(work.path(), &[("sh", slow.to_string())]);
    let (host, _d) = connect(&sshd).await;
    let e = host
        .exec_within(
            Duration::from_secs(1),
            "sh",
            &["-c", "echo first; echo first-err >&2", "deckhand-first"],
            None,
        )
        .await
        .expect_err("timed out");
    assert!(matches!(e, TransportError::CommandTimeout { .. }), "{e}");
    let stats = host.shell_stats().expect("stats");
    assert_eq!((stats.dropped, stats.live), (1, 0), "{stats:?}");
    for word in ["second", "third"] {
        let out = host
            .exec_within(Duration::from_secs(20), "echo", &[word], None)
            .await
            .expect("echo");
        assert_eq!(out.stdout_text(), format!("{word}\n"), "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
        assert_eq!(out.status, Some(0));
    }
    let stats = host.shell_stats().expect("stats");
    assert_eq!(
        (stats.started, stats.commands, stats.plain),
        (2, 2, 0),
        "a new shell ran the later ones: {stats:?}"
    );
    host.close().await;
}

fn master_pid(host: &Host) -> u32 {
    let sock = host.control_socket().expect("ssh host");
    let out = std::process::Command::new("ssh")
        .arg("-S")
        .arg(sock)
        .args(["-O", "check", "x"])
        .output()
        .expect("ssh -O check");
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    text.split("pid=")
        .nth(1)
        .and_then(|r| r.trim_end_matches([')', '\n', '\r']).trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_mid_command_is_an_error_not_a_hang() {
    let sshd = SshServer::start();
    let (host, _d) = connect(&sshd).await;
    host.exec("true", &[], None).await.expect("warm");
    let pid = master_pid(&host);
    let t = Instant::now();
    let (r, ()) = tokio::join!(host.exec("sleep", &["20"], None), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        signal(pid, "KILL");
    });
    let e = r.expect_err("the master is gone");
    assert!(matches!(e, TransportError::Exec { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // Later commands fail at once the way a plain exec through a dead master does.
    let e = host.exec("true", &[], None).await.expect_err("still gone");
    assert!(matches!(e, TransportError::Exec { .. }), "{e}");
    assert!(host.check_alive().await.is_err());
}

/// The master killed while the first command waits for its shell's start: the line was sent,
/// so the command may have run; an error, at once, not a plain exec that could run it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_while_the_first_command_waits_for_the_start_is_an_error() {
    let work = tempfile::tempdir().expect("tempdir");
    let slow =
        "#!/bin/sh\ncase \"$2\" in \"IFS= read -r n\"*) sleep 5;; esac\nexec /bin/sh \"$@\"\n";
    let sshd = sshd_with_wrappers(work.path(), &[("sh", slow.to_string())]);
    let (host, _d) = connect(&sshd).await;
    let pid = master_pid(&host);
    let t = Instant::now();
    let (r, ()) = tokio::join!(host.exec("echo", &["first"], None), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        signal(pid, "KILL");
    });
    let e = r.expect_err("the master is gone");
    assert!(matches!(e, TransportError::Exec { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let stats = host.shell_stats().expect("stats");
    assert_eq!((stats.commands, stats.plain), (0, 0), "{stats:?}");
}

/// Every session channel sshd runs a command for (one line each), through a ForceCommand that
/// logs and then runs what the client asked for.
fn counting_sshd(dir: &std::path::Path) -> (SshServer, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join("sessions.log");
    let wrapper = dir.join("count.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%.60s\\n' \"$(printf '%s' \"$SSH_ORIGINAL_COMMAND\" | tr '\\n' ' ')\" >> {}\nexec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
            log.display()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let sshd = SshServer::start_with(&format!("ForceCommand {}\n", wrapper.display()));
    (sshd, log)
}

fn sessions(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A rollback to a kept container used to open a new ssh session for every remote command (the
/// plan's ledger read, the lock, each check, the audit records, the ledger write, the unlock).
/// Through the remote shell it opens one (two when the lock's heartbeat meets another command).
#[test]
fn a_rollback_opens_at_most_a_few_ssh_sessions() {
    let work = tempfile::tempdir().expect("tempdir");
    let (sshd, log) = counting_sshd(work.path());
    let svc = TestService::new("rsc");
    svc.tag_local(&["a000001", "a000002"]);
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let cfg = deckhand::config::load(&path).expect("config");
    svc.lay_out_by_hand(
        &cfg.services[0],
        ("blue", "a000002"),
        Some(("green", "a000001")),
    );
    let out = deckhand(
        &path,
        &[
            "rollback", "a000001", "--env", "lab", "--yes", "--output", "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(svc.container_state("green").as_deref(), Some("running"));
    let s = sessions(&log);
    eprintln!("{} ssh sessions ran a command:\n{}", s.len(), s.join("\n"));
    // One shell; a second only if the lock's heartbeat fires while a command runs.
    assert!(
        s.len() <= 2,
        "{} ssh sessions ran a command during one rollback (at most 2 expected):\n{}",
        s.len(),
        s.join("\n")
    );
}

/// Every `sh` the host runs for deckhand (plain exec or inside a remote shell), logged by a
/// wrapper first in the session's PATH: its script's name (`$0`) and the script's start.
fn sh_logging_sshd(dir: &std::path::Path) -> (SshServer, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let log = dir.join("sh.log");
    std::fs::write(
        bin.join("sh"),
        format!(
            "#!/bin/sh\nprintf '%s %.30s\\n' \"$3\" \"$(printf '%s' \"$2\" | tr '\\n' ' ')\" >> {}\nexec /bin/sh \"$@\"\n",
            log.display()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(bin.join("sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let sshd = SshServer::start_with(&format!(
        "SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin\n",
        bin.display()
    ));
    (sshd, log)
}

/// A `--yes` rollback is planned from the read under its lock: the ledger (and the service)
/// are read once, not once to plan and again under the lock.
#[test]
fn a_yes_rollback_reads_the_ledger_once() {
    let work = tempfile::tempdir().expect("tempdir");
    let (sshd, log) = sh_logging_sshd(work.path());
    let svc = TestService::new("rsl");
    svc.tag_local(&["a000001", "a000002"]);
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let cfg = deckhand::config::load(&path).expect("config");
    svc.lay_out_by_hand(
        &cfg.services[0],
        ("blue", "a000002"),
        Some(("green", "a000001")),
    );
    let out = deckhand(
        &path,
        &[
            "rollback", "a000001", "--env", "lab", "--yes", "--output", "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(svc.container_state("green").as_deref(), Some("running"));
    let ran = sessions(&log);
    let reads: Vec<&String> = ran
        .iter()
        .filter(|l| l.starts_with("deckhand-ledger [ -f"))
        .collect();
    assert_eq!(
        reads.len(),
        1,
        "the ledger was read {} times:\n{}",
        reads.len(),
        ran.join("\n")
    );
    let locks = ran
        .iter()
        .filter(|l| l.starts_with("deckhand-lock umask"))
        .count();
    assert_eq!(locks, 1, "{}", ran.join("\n"));
}
