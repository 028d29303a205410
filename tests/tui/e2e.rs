//! The real binary in tmux against the local engine: open the console, see the live color,
//! roll back through the dialog (focus on Cancel first), watch the steps finish and the live
//! color flip, quit with the terminal restored.

use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../integration/harness.rs"]
mod harness;

use harness::{GOOD_SHAS, SLOW_SHA, TestService, deckhand, text, write_config};

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-u")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env("LANG", "C.UTF-8")
            .output()
            .unwrap_or_else(|e| panic!("cannot run tmux ({e}): apt-get install tmux"))
    }

    fn start(name: &str, width: u16, height: u16) -> Tmux {
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

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        let out = self.cmd(&args);
        assert!(out.status.success(), "tmux send-keys: {}", text(&out));
    }

    fn screen(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p", "-t", &self.session]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen satisfies `ok`; panics with the last screen otherwise.
    fn wait_for(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
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
fn live_in_pane(screen: &str) -> Option<&'static str> {
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
    _svc: TestService,
    _dirs: Vec<tempfile::TempDir>,
}

fn open_console(extra_shas: &[&str]) -> Setup {
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
        "XDG_STATE_HOME={} NO_COLOR=1 {} --config {}; echo EX\"\"ITED $?",
        xdg.path().display(),
        env!("CARGO_BIN_EXE_deckhand"),
        cfg.display()
    );
    tmux.send(&[&command, "Enter"]);
    tmux.wait_for(
        "the host list with green live",
        Duration::from_secs(30),
        |s| {
            s.lines()
                .any(|l| l.contains("local") && l.contains("green") && l.contains("a000002"))
        },
    );
    Setup {
        tmux,
        cfg,
        _svc: svc,
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

fn quit(tmux: &Tmux) {
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
    // The host list: the local host, green live on a000002.
    tmux.wait_for(
        "the host list with green live",
        Duration::from_secs(30),
        |s| {
            s.lines()
                .any(|l| l.contains("local") && l.contains("green") && l.contains("a000002"))
        },
    );
    tmux.send(&["Enter"]);
    let s = tmux.wait_for("the containers pane", Duration::from_secs(15), |s| {
        live_in_pane(s).is_some()
    });
    assert_eq!(live_in_pane(&s), Some("green"), "{s}");
    assert!(s.contains("rollback target"), "{s}");

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
    tmux.send(&[":"]);
    tmux.send(&["-l", &format!("deploy {SLOW_SHA}")]);
    tmux.send(&["Enter"]);
    let s = tmux.wait_for("the deploy plan", Duration::from_secs(30), |s| {
        s.contains(&format!("→ {SLOW_SHA} (blue)"))
    });
    assert!(s.contains("> Cancel <"), "{s}");
    tmux.send(&["Tab"]);
    tmux.send(&["Enter"]);
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
