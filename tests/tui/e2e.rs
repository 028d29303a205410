//! The real binary in tmux against the local engine: open the console, see the live color,
//! roll back through the dialog (focus on Cancel first), watch the steps finish and the live
//! color flip, quit with the terminal restored.

use std::process::Command;
use std::time::{Duration, Instant};

pub(crate) use deckhand_test_support as harness;

use harness::{
    GOOD_SHAS, LoadClient, SLOW_SHA, TestService, UNHEALTHY_SHA, audit_records, deckhand,
    deckhand_env, docker, docker_ok, public_get, text, write_config,
};

/// A tmux server of our own (its own socket), killed on drop.
pub(crate) struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    pub(crate) fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-u")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env("LANG", "C.UTF-8")
            .output()
            .unwrap_or_else(|e| panic!("cannot run tmux ({e}): apt-get install tmux"))
    }

    pub(crate) fn start(name: &str, width: u16, height: u16) -> Tmux {
        let t = Tmux {
            socket: format!("dh-{name}"),
            session: name.to_string(),
        };
        let out = t.cmd(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "sh",
        ]);
        assert!(out.status.success(), "tmux new-session: {}", text(&out));
        t
    }

    pub(crate) fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        let out = self.cmd(&args);
        assert!(out.status.success(), "tmux send-keys: {}", text(&out));
    }

    pub(crate) fn screen(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p", "-S", "-60", "-t", &self.session]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `ok`; panics with the last screen otherwise.
    pub(crate) fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if start.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// In the containers pane both titles share a line: which color's title carries LIVE?
pub(crate) fn live_in_pane(screen: &str) -> Option<&'static str> {
    let line = screen
        .lines()
        .find(|l| l.contains("blue") && l.contains("green") && l.contains("LIVE"))?;
    let (b, g, l) = (line.find("blue")?, line.find("green")?, line.find("LIVE")?);
    // Blue's block is on the left, green's on the right.
    Some(if l > g {
        "green"
    } else if l > b {
        "blue"
    } else {
        return None;
    })
}

/// A service with two releases deployed by the CLI (a000002 live in green, a000001 kept in
/// blue) and the console open on it in tmux.
struct Setup {
    tmux: Tmux,
    cfg: std::path::PathBuf,
    svc: TestService,
    /// The host's deckhand state directory (locks, audit log).
    host_state: std::path::PathBuf,
    _dirs: Vec<tempfile::TempDir>,
}

fn open_console(extra_shas: &[&str]) -> Setup {
    open_console_as(None, extra_shas)
}

/// `open_console`, with the console acting as `actor` (DECKHAND_ACTOR) when given.
fn open_console_as(actor: Option<&str>, extra_shas: &[&str]) -> Setup {
    harness::require_docker_and_images();
    let svc = TestService::new("tui");
    svc.tag_local(&GOOD_SHAS[..2]);
    svc.tag_local(extra_shas);
    let host_state = tempfile::tempdir().expect("tempdir");
    let (cfg_dir, cfg) = write_config(&format!(
        "[defaults]\nstate_dir = \"{}\"\n\n{}\n[env.dev]\nhosts = [\"local\"]\n",
        host_state.path().display(),
        svc.service_toml("")
    ));
    for sha in &GOOD_SHAS[..2] {
        let out = deckhand(&cfg, &["deploy", sha, "--yes"]);
        assert!(out.status.success(), "deploy {sha}: {}", text(&out));
    }
    let xdg = tempfile::tempdir().expect("tempdir");
    let tmux = Tmux::start(&svc.name, 100, 30);
    let command = format!(
        "{}XDG_STATE_HOME={} NO_COLOR=1 {} --config {}; echo EX\"\"ITED $?",
        actor.map_or(String::new(), |a| format!("DECKHAND_ACTOR={a} ")),
        xdg.path().display(),
        env!("CARGO_BIN_EXE_deckhand"),
        cfg.display()
    );
    tmux.send(&[&command, "Enter"]);
    // A one-host environment opens on that host: both colors on the first screen.
    tmux.wait_for(
        "the host view with green live on a000002",
        Duration::from_secs(30),
        |s| live_in_pane(s) == Some("green") && s.contains("a000002"),
    );
    Setup {
        tmux,
        cfg,
        svc,
        host_state: host_state.path().to_path_buf(),
        _dirs: vec![host_state, cfg_dir, xdg],
    }
}

fn live(cfg: &std::path::Path) -> (String, String) {
    let out = deckhand(cfg, &["status", "--output", "json"]);
    let status: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let svc = &status["hosts"][0]["services"][0];
    (
        svc["live_color"].as_str().unwrap_or("?").to_string(),
        svc["live_sha"].as_str().unwrap_or("?").to_string(),
    )
}

pub(crate) fn quit(tmux: &Tmux) {
    tmux.send(&["q"]);
    let s = tmux.wait_for("the console to exit", Duration::from_secs(60), |s| {
        s.contains("EXITED")
    });
    assert!(s.contains("EXITED 0"), "{s}");
}

#[test]
fn console_rolls_back_in_tmux() {
    let setup = open_console(&[]);
    let (tmux, cfg) = (&setup.tmux, &setup.cfg);
    // The host view straight away (one host): green live on a000002, blue the rollback target.
    let s = tmux.wait_for("the containers pane", Duration::from_secs(15), |s| {
        live_in_pane(s).is_some()
    });
    assert_eq!(live_in_pane(&s), Some("green"), "{s}");
    assert!(s.contains("rollback target"), "{s}");
    // The host list says the same in one row: live SHA and the rollback target beside it.
    tmux.send(&["Escape"]);
    tmux.wait_for("the host list row", Duration::from_secs(10), |s| {
        s.lines().any(|l| {
            l.contains("local")
                && l.contains("green")
                && l.contains("a000002")
                && l.contains("↺a000001")
        })
    });
    tmux.send(&["Enter"]);
    tmux.wait_for("the host view again", Duration::from_secs(10), |s| {
        live_in_pane(s) == Some("green")
    });

    // Rollback: the dialog names the previous release, and focus starts on Cancel.
    tmux.send(&["r"]);
    let s = tmux.wait_for("the rollback plan", Duration::from_secs(30), |s| {
        s.contains("to the previous release: a000001")
    });
    assert!(s.contains("> Cancel <"), "focus must start on Cancel:\n{s}");
    assert!(!s.contains("> Rollback <"), "{s}");
    assert!(s.contains("a000002 (green) → a000001 (blue)"), "{s}");
    assert!(s.contains("deckhand rollback --env dev --service"), "{s}");
    tmux.send(&["Tab"]);
    tmux.wait_for("focus on Rollback", Duration::from_secs(5), |s| {
        s.contains("> Rollback <")
    });
    tmux.send(&["Enter"]);

    // The step list runs to the end.
    let s = tmux.wait_for("the rollback to finish", Duration::from_secs(120), |s| {
        s.contains("done ✓") || s.contains("FAILED")
    });
    assert!(s.contains("done ✓"), "the rollback failed:\n{s}");
    for step in [
        "take the lock",
        "switch the proxy",
        "stop the old color",
        "release the lock",
    ] {
        assert!(
            s.lines().any(|l| l.contains(step) && l.contains('✓')),
            "step `{step}` not done:\n{s}"
        );
    }

    // The live color flipped, on screen and on the host.
    tmux.send(&["1"]);
    let s = tmux.wait_for("blue live", Duration::from_secs(15), |s| {
        live_in_pane(s) == Some("blue")
    });
    assert!(s.contains("a000001"), "{s}");
    assert_eq!(live(cfg), ("blue".to_string(), "a000001".to_string()));

    // Logs and inspect of the live container, from the real engine; Esc comes back.
    tmux.send(&["l"]);
    tmux.wait_for("the logs view", Duration::from_secs(15), |s| {
        s.contains("logs ") && s.contains("-blue on local") && s.contains("follow on")
    });
    tmux.send(&["Escape"]);
    tmux.wait_for("the host view again", Duration::from_secs(10), |s| {
        live_in_pane(s) == Some("blue")
    });
    tmux.send(&["i"]);
    let s = tmux.wait_for("the inspect view", Duration::from_secs(15), |s| {
        s.contains("secrets redacted") && s.contains("\"Config\"")
    });
    assert!(s.contains("{"), "{s}");
    tmux.send(&["Escape"]);
    quit(tmux);
}

#[test]
fn ctrl_c_aborts_a_deploy_and_the_old_color_keeps_serving() {
    let setup = open_console(&[SLOW_SHA]);
    let (tmux, cfg) = (&setup.tmux, &setup.cfg);
    // : command mode straight to the deploy dialog (the slow release never gets healthy).
    confirm_console_deploy(tmux, "the deploy plan", SLOW_SHA, "blue");
    tmux.wait_for("the health wait", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.contains("wait until healthy") && !l.contains('✓'))
    });
    // Ctrl-C asks first, focus on Cancel; then abort.
    tmux.send(&["C-c"]);
    let s = tmux.wait_for("the abort question", Duration::from_secs(10), |s| {
        s.contains("abort the action?")
    });
    assert!(s.contains("> Cancel <"), "{s}");
    tmux.send(&["Tab"]);
    tmux.send(&["Enter"]);
    let s = tmux.wait_for("the deploy to stop", Duration::from_secs(60), |s| {
        s.contains("FAILED") || s.contains("done ✓")
    });
    assert!(s.contains("FAILED"), "{s}");
    assert!(s.contains("aborted"), "the cause says it was aborted:\n{s}");
    // The old color kept serving.
    assert_eq!(live(cfg), ("green".to_string(), "a000002".to_string()));
    quit(tmux);
}

/// Release tags whose deploy holds the lock for as long as the test wants: copies of the
/// always-unhealthy demo image (`bad0001`, `DEMO_UNHEALTHY=1`), so the deploy sits in "wait
/// until healthy" until the test flips the new container with `POST /admin/healthy`
/// ([`let_it_become_healthy`]). The test decides when the holder finishes; no sleeps, no races.
const GATED_SHAS: [&str; 2] = ["6a7e001", "6a7e002"];

/// The lock file of the service on the (local) host, parsed, once it names `action`.
fn wait_for_lock(setup: &Setup, action: &str) -> serde_json::Value {
    let path = setup
        .host_state
        .join("locks")
        .join(format!("{}.lock", setup.svc.name));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = std::fs::read_to_string(&path).unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
            && v["action"] == action
        {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "the lock of {} never named `{action}` within 30s; the lock file holds {body:?}\nthe console:\n{}",
            setup.svc.name,
            setup.tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `color` runs the gated release `sha`, then makes it healthy (`/admin/healthy`
/// on its published app port), which lets the deploy that holds the lock go on.
fn let_it_become_healthy(setup: &Setup, color: &str, sha: &str) {
    use std::io::{Read, Write};
    let name = format!("{}-{color}", setup.svc.name);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "could not make {name} ({sha}) healthy within 30s: {last}\nthe console:\n{}",
            setup.tmux.screen()
        );
        let labels = docker(&[
            "inspect",
            "--format",
            "{{index .Config.Labels \"deckhand.sha\"}} {{.State.Running}}",
            &name,
        ]);
        let labels = text(&labels);
        if labels.trim() != format!("{sha} true") {
            last = format!("{name}: {}", labels.trim());
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let port = docker(&["port", &name, "3000/tcp"]);
        let port = String::from_utf8_lossy(&port.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("127.0.0.1:")?.trim().parse::<u16>().ok());
        let Some(port) = port else {
            last = format!("{name} publishes no app port yet");
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let answer = std::net::TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(
                b"POST /admin/healthy HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            let mut buf = String::new();
            s.read_to_string(&mut buf)?;
            Ok(buf)
        });
        match answer {
            Ok(a) if a.starts_with("HTTP/1.1 200") => return,
            Ok(a) => last = format!("POST /admin/healthy: {:?}", a.lines().next()),
            Err(e) => last = format!("POST /admin/healthy: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Opens the deploy dialog for `sha` with `:deploy`, checks the plan names the color and that
/// focus starts on Cancel, then confirms.
fn confirm_console_deploy(tmux: &Tmux, what: &str, sha: &str, color: &str) {
    tmux.send(&[":"]);
    tmux.send(&["-l", &format!("deploy {sha}")]);
    tmux.send(&["Enter"]);
    let s = tmux.wait_for(what, Duration::from_secs(30), |s| {
        s.contains(&format!("→ {sha} ({color})"))
    });
    assert!(s.contains("> Cancel <"), "{s}");
    tmux.send(&["Tab"]);
    tmux.send(&["Enter"]);
}

/// The progress pane's title says the console's deploy of `sha` ended (either way); the title
/// of an earlier action's progress, still on screen until the new one starts, does not count.
fn deploy_ended(screen: &str, sha: &str) -> bool {
    let title = format!("Deploy {sha} of ");
    screen
        .lines()
        .any(|l| l.contains(&title) && (l.contains("done ✓") || l.contains("FAILED")))
}

/// Fault matrix: "console and CLI deploying at the same time". Both take the same per-service
/// host lock, so whichever holds it proceeds and the other is refused with who, since when and
/// doing what, in both orders; the public port serves throughout, `status` shows one live
/// release and the audit log one complete `started`/`success` pair per winner, nothing from the
/// losers. The loser's deploy succeeds once the lock is free.
#[test]
fn console_and_cli_deploying_at_once_exactly_one_proceeds() {
    const CONSOLE: &str = "console-op@tmux";
    const CLI: &str = "ci-job@pipeline";
    let started = Instant::now();
    let setup = open_console_as(Some(CONSOLE), &[GOOD_SHAS[2]]);
    let (tmux, cfg, svc) = (&setup.tmux, &setup.cfg, &setup.svc);
    for gated in GATED_SHAS {
        docker_ok(&[
            "tag",
            &format!("{}:{UNHEALTHY_SHA}", harness::DEMO_REPO),
            &format!("{}:{gated}", svc.repo),
        ]);
    }
    let audit_before = audit_records(&setup.host_state).len();
    let load = LoadClient::start(svc.public_port);
    let cli_deploy = |sha: &str| {
        deckhand_env(
            cfg,
            &["deploy", sha, "--env", "dev", "--yes"],
            &[("DECKHAND_ACTOR", CLI)],
        )
    };

    // 1. The console deploys first and holds the lock (its new blue waits to become healthy).
    confirm_console_deploy(tmux, "the console's deploy plan", GATED_SHAS[0], "blue");
    let lock = wait_for_lock(&setup, &format!("deploy {}", GATED_SHAS[0]));
    assert_eq!(
        lock["actor"],
        CONSOLE,
        "{lock}\nthe console:\n{}",
        tmux.screen()
    );

    // The CLI's deploy meanwhile is refused at once: exit 3, naming the console's lock.
    let out = cli_deploy(GOOD_SHAS[2]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "the CLI must be refused:\n{t}");
    let holder = format!(
        "local: {} is locked by {CONSOLE} since {} doing deploy {}",
        svc.name,
        lock["since"].as_str().unwrap_or("?"),
        GATED_SHAS[0]
    );
    assert!(t.contains(&holder), "expected `{holder}` in:\n{t}");
    // Nothing moved: the old color still serves, and the console is still deploying.
    assert_eq!(
        public_get(svc.public_port, "/"),
        Ok((200, "green".to_string())),
        "green must still serve; the console:\n{}",
        tmux.screen()
    );
    let s = tmux.screen();
    assert!(
        !s.contains("FAILED"),
        "the console's deploy must go on:\n{s}"
    );

    // Let the console's deploy finish: it wins.
    let_it_become_healthy(&setup, "blue", GATED_SHAS[0]);
    let s = tmux.wait_for(
        "the console's deploy to finish",
        Duration::from_secs(60),
        |s| deploy_ended(s, GATED_SHAS[0]),
    );
    assert!(s.contains("done ✓"), "the console's deploy failed:\n{s}");
    assert_eq!(
        live(cfg),
        ("blue".to_string(), GATED_SHAS[0].to_string()),
        "the console's release must be live:\n{s}"
    );

    // 2. The reverse: the CLI deploys and holds the lock (its new green waits).
    let cli_state = tempfile::tempdir().expect("tempdir");
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_deckhand"))
        .arg("--config")
        .arg(cfg)
        // A long health timeout: the gate, not the clock, decides when it finishes.
        .args([
            "deploy",
            GATED_SHAS[1],
            "--env",
            "dev",
            "--yes",
            "--timeout",
            "60s",
        ])
        .env("DECKHAND_ACTOR", CLI)
        .env("XDG_STATE_HOME", cli_state.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the CLI's deploy");
    let lock = wait_for_lock(&setup, &format!("deploy {}", GATED_SHAS[1]));
    assert_eq!(
        lock["actor"],
        CLI,
        "{lock}\nthe console:\n{}",
        tmux.screen()
    );

    // The console shows who holds the lock; its deploy meanwhile is refused, saying by whom.
    tmux.wait_for(
        "the CLI's lock in the header",
        Duration::from_secs(15),
        |s| s.contains(&format!("locked: {CLI} deploy {}", GATED_SHAS[1])),
    );
    confirm_console_deploy(tmux, "the console's second plan", GOOD_SHAS[2], "green");
    let s = tmux.wait_for(
        "the console's deploy to end",
        Duration::from_secs(30),
        |s| deploy_ended(s, GOOD_SHAS[2]),
    );
    assert!(s.contains("FAILED"), "the console must be refused:\n{s}");
    let holder = format!(
        "local: {} is locked by {CLI} since {} doing deploy {}",
        svc.name,
        lock["since"].as_str().unwrap_or("?"),
        GATED_SHAS[1]
    );
    // Joined, in case the pane wraps the cause.
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains(&holder), "expected `{holder}` in:\n{s}");
    assert!(
        s.lines()
            .any(|l| l.contains("take the lock") && l.contains('✗')),
        "the lock step must be the one that failed:\n{s}"
    );
    assert_eq!(
        public_get(svc.public_port, "/"),
        Ok((200, "blue".to_string())),
        "blue must still serve; the console:\n{s}"
    );

    // Let the CLI's deploy finish: it wins.
    let_it_become_healthy(&setup, "green", GATED_SHAS[1]);
    let out = cli.wait_with_output().expect("the CLI's deploy");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the CLI's deploy must win:\n{}\nthe console:\n{}",
        text(&out),
        tmux.screen()
    );

    // `status`: exactly one live release, nothing wrong.
    let out = deckhand(cfg, &["status", "--output", "json"]);
    let status: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s0 = &status["hosts"][0]["services"][0];
    assert_eq!(s0["live_color"], "green", "{s0:#}");
    assert_eq!(s0["live_sha"], GATED_SHAS[1], "{s0:#}");
    assert_eq!(s0["colors"]["blue"]["state"], "exited", "{s0:#}");
    assert_eq!(s0["colors"]["green"]["state"], "running", "{s0:#}");

    // The audit log: one complete pair per winner, nothing at all from the losers (a refused
    // lock comes before the `started` record, so nothing is left half-done).
    let records = audit_records(&setup.host_state);
    let ours: Vec<_> = records[audit_before..]
        .iter()
        .map(|r| {
            (
                r["actor"].as_str().unwrap_or("?").to_string(),
                r["to_sha"].as_str().unwrap_or("?").to_string(),
                r["outcome"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    let pair = |actor: &str, sha: &str| {
        ["started", "success"].map(|o| (actor.to_string(), sha.to_string(), o.to_string()))
    };
    let mut expected = pair(CONSOLE, GATED_SHAS[0]).to_vec();
    expected.extend(pair(CLI, GATED_SHAS[1]));
    assert_eq!(ours, expected, "{records:#?}");

    // The loser's deploy goes through once the lock is free.
    let out = cli_deploy(GOOD_SHAS[2]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "the retry must deploy:\n{t}");
    assert_eq!(
        live(cfg),
        ("blue".to_string(), GOOD_SHAS[2].to_string()),
        "{t}"
    );

    // Nobody was served a failed request, through three switches.
    let report = load.finish();
    assert_eq!(report.failed, 0, "{report:?}");
    assert!(report.sent > 0, "{report:?}");
    assert_eq!(
        report.colors_seen.len(),
        2,
        "traffic moved between colors: {report:?}"
    );
    eprintln!(
        "console/CLI lock race: {} requests sent, {} failed, colors {:?}, {:.1}s",
        report.sent,
        report.failed,
        report.colors_seen,
        started.elapsed().as_secs_f64()
    );
    quit(tmux);
}

/// SIGTERM (a supervisor, `timeout`) or SIGHUP (the terminal window closed) while the console
/// runs a deploy: the console leaves with the terminal put back, and the deploy aborts before
/// its switch (new container stopped, lock released, audit `aborted`); the old color serves.
#[test]
fn sigterm_leaves_the_console_restores_the_terminal_and_aborts_the_deploy() {
    let setup = open_console(&[SLOW_SHA]);
    let (tmux, cfg) = (&setup.tmux, &setup.cfg);
    confirm_console_deploy(tmux, "the deploy plan", SLOW_SHA, "blue");
    let lock = wait_for_lock(&setup, &format!("deploy {SLOW_SHA}"));
    tmux.wait_for("the health wait", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.contains("wait until healthy") && !l.contains('✓'))
    });
    let pid = lock["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .expect("the lock names the console's pid");
    harness::signal(pid, "TERM");
    let s = tmux.wait_for("the console to exit", Duration::from_secs(120), |s| {
        s.contains("EXITED")
    });
    assert!(s.contains("EXITED 1"), "{s}");
    assert!(s.contains("SIGTERM: left the console"), "{s}");
    // The main screen is back (the console's alternate screen is gone).
    assert!(!s.contains("wait until healthy"), "{s}");
    let lock_path = setup
        .host_state
        .join("locks")
        .join(format!("{}.lock", setup.svc.name));
    assert!(
        std::fs::symlink_metadata(&lock_path).is_err(),
        "the lock was released"
    );
    assert_ne!(
        setup.svc.container_state("blue").as_deref(),
        Some("running"),
        "the new container was stopped"
    );
    let audit = audit_records(&setup.host_state);
    assert_eq!(
        audit.last().map(|r| r["outcome"].clone()),
        Some("aborted".into()),
        "{audit:?}"
    );
    assert_eq!(live(cfg), ("green".to_string(), "a000002".to_string()));
}
