//! The real console in tmux over a real sshd: a container stopped (and started) by hand with
//! `docker` is shown within a second or so, although the environment's monitor runs only once
//! a minute. Only Docker's event stream can explain that.

use std::time::{Duration, Instant};

use crate::e2e::harness::{self, GOOD_SHAS, SshServer, TestService, deckhand, docker_ok, text};
use crate::e2e::{Tmux, quit};

/// How long a change made by hand may take to reach the screen (the issue asks for 1 s; the
/// rest is tmux's capture and a loaded test machine).
const SHOWN_WITHIN: Duration = Duration::from_millis(1500);

/// The state the green (right-hand) block of the containers pane shows.
fn green_state(screen: &str) -> Option<String> {
    let line = screen.lines().find(|l| l.matches("│state").count() == 2)?;
    let right = line.rsplit("│state").next()?;
    Some(right.trim().trim_end_matches('│').trim().to_string())
}

#[test]
fn a_container_stopped_by_hand_is_shown_within_a_second() {
    harness::require_docker_and_images();
    let svc = TestService::new("tuiev");
    svc.tag_local(&GOOD_SHAS[..2]);
    let sshd = SshServer::start();
    let (_cfg_dir, cfg) = harness::write_config(&format!(
        "{}\n{}\n[env.lab.alerts]\ninterval = \"60s\"\n",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    ));
    for sha in &GOOD_SHAS[..2] {
        let out = deckhand(&cfg, &["deploy", sha, "--env", "lab", "--yes"]);
        assert!(out.status.success(), "deploy {sha}: {}", text(&out));
    }
    let xdg = tempfile::tempdir().expect("tempdir");
    let tmux = Tmux::start(&svc.name, 160, 30);
    tmux.send(&[
        &format!(
            "XDG_STATE_HOME={} NO_COLOR=1 {} --config {} --env lab; echo EX\"\"ITED $?",
            xdg.path().display(),
            env!("CARGO_BIN_EXE_deckhand"),
            cfg.display()
        ),
        "Enter",
    ]);
    tmux.wait_for(
        "green running on the host view",
        Duration::from_secs(30),
        |s| green_state(s).is_some_and(|g| g.starts_with("running")),
    );
    // Past the console's first reads and its first monitor cycle: what follows is idle.
    std::thread::sleep(Duration::from_secs(3));
    let green = format!("{}-green", svc.name);
    // Stopped, started, stopped, started by hand: each shown within SHOWN_WITHIN of the docker
    // command's return. A console that reads the host every 2 s makes it now and then, never
    // four times in a row.
    let mut took = Vec::new();
    for (verb, shown) in [
        ("stop", "exited"),
        ("start", "running"),
        ("stop", "exited"),
        ("start", "running"),
    ] {
        let args: Vec<&str> = if verb == "stop" {
            vec![verb, "-t", "1", &green]
        } else {
            vec![verb, &green]
        };
        docker_ok(&args);
        let done = Instant::now();
        let s = tmux.wait_for(
            &format!("green {shown} after `docker {verb}`"),
            Duration::from_secs(20),
            |s| green_state(s).is_some_and(|g| g.starts_with(shown)),
        );
        let t = done.elapsed();
        took.push(t);
        assert!(
            t <= SHOWN_WITHIN,
            "`docker {verb} {green}` reached the screen after {t:?} (at most {SHOWN_WITHIN:?}; took so far {took:?}):\n{s}"
        );
        // Let the change settle (health, a second event) before the next one.
        std::thread::sleep(Duration::from_millis(1500));
    }
    eprintln!("shown after {took:?}");
    quit(&tmux);
}
