//! `s` in the real console, in tmux, against a host over SSH: a shell in the selected container
//! through the host's existing SSH master and its configured Docker socket.

use std::time::Duration;

use crate::e2e::harness::{self, SshServer, TestService, deckhand, docker_ok, text, write_config};
use crate::e2e::{Tmux, live_in_pane, quit};

/// The demo with Debian's dash as /bin/sh (scripts/build-test-images.sh).
const SHELL_IMAGE: &str = "127.0.0.1:5000/deckhand/demo-shell:a0005e1";

#[test]
fn s_opens_a_shell_in_the_container_through_the_hosts_ssh_master() {
    harness::require_docker_and_images();
    let present = harness::docker(&["image", "inspect", "--format", "{{.Id}}", SHELL_IMAGE]);
    assert!(
        present.status.success(),
        "test image {SHELL_IMAGE} is missing: run `bash scripts/build-test-images.sh`"
    );
    let svc = TestService::new("tsh");
    docker_ok(&["tag", SHELL_IMAGE, &format!("{}:a0005e1", svc.repo)]);
    let sshd = SshServer::start();
    let (_d, cfg) = write_config(&format!(
        "{}\n{}",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    ));
    let out = deckhand(&cfg, &["deploy", "a0005e1", "--env", "lab", "--yes"]);
    assert!(out.status.success(), "deploy: {}", text(&out));

    let xdg = tempfile::tempdir().expect("tempdir");
    let tmux = Tmux::start(&svc.name, 150, 30);
    tmux.send(&[
        &format!(
            "XDG_STATE_HOME={} NO_COLOR=1 {} --config {} --env lab; echo EX\"\"ITED $?",
            xdg.path().display(),
            env!("CARGO_BIN_EXE_deckhand"),
            cfg.display()
        ),
        "Enter",
    ]);
    tmux.wait_for("the host view, blue live", Duration::from_secs(30), |s| {
        live_in_pane(s) == Some("blue")
    });
    tmux.send(&["s"]);
    // The command rides the master's control socket: no identity file, no port, no new login
    // (the test sshd accepts only the test key, which the command does not name).
    let s = tmux.wait_for("the shell", Duration::from_secs(20), |s| {
        s.contains("[deckhand] ssh -S ") && s.lines().any(|l| l.trim_end().ends_with('$'))
    });
    assert!(s.contains("'unix:///var/run/docker.sock'"), "{s}");
    assert!(!s.contains(" -i ") && !s.contains(" -p "), "{s}");
    tmux.send(&["-l", "read x < /proc/1/comm; echo SHELL-$x-$((6*7))"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("the shell's answer", Duration::from_secs(10), |s| {
        s.contains("SHELL-deckhand-demo-42")
    });
    tmux.send(&["-l", "exit"]);
    tmux.send(&["Enter"]);
    let s = tmux.wait_for("the console again", Duration::from_secs(15), |s| {
        live_in_pane(s) == Some("blue")
    });
    assert!(
        s.contains("closed"),
        "the footer says the shell closed:\n{s}"
    );
    quit(&tmux);
}

/// On a Swarm manager entry `s` goes into the live color's task: a Swarm color is a service,
/// its container is a task's (`S-blue.1.<id>`), and Docker execs only on the manager's node,
/// where this one-node Swarm runs it.
#[test]
fn s_on_a_swarm_manager_opens_a_shell_in_the_live_colors_task() {
    harness::require_docker_and_images();
    let present = harness::docker(&["image", "inspect", "--format", "{{.Id}}", SHELL_IMAGE]);
    assert!(
        present.status.success(),
        "test image {SHELL_IMAGE} is missing: run `bash scripts/build-test-images.sh`"
    );
    let swarm = harness::swarm::SwarmCluster::start(1);
    let svc = TestService::new("tss");
    let image = format!("{}:a0005e1", svc.repo);
    docker_ok(&["tag", SHELL_IMAGE, &image]);
    docker_ok(&["push", "-q", &image]);
    docker_ok(&["rmi", &image]);
    let service = svc
        .service_toml("")
        .replace("health_timeout = \"20s\"", "health_timeout = \"60s\"");
    let (_d, cfg) = write_config(&format!("{service}\n{}", swarm.swarm_env_toml("lab", 1)));
    let out = deckhand(&cfg, &["deploy", "a0005e1", "--env", "lab", "--yes"]);
    assert!(
        out.status.success(),
        "deploy: {}\n{}",
        text(&out),
        swarm.diagnose()
    );

    let xdg = tempfile::tempdir().expect("tempdir");
    let tmux = Tmux::start(&svc.name, 150, 30);
    tmux.send(&[
        &format!(
            "XDG_STATE_HOME={} NO_COLOR=1 {} --config {} --env lab; echo EX\"\"ITED $?",
            xdg.path().display(),
            env!("CARGO_BIN_EXE_deckhand"),
            cfg.display()
        ),
        "Enter",
    ]);
    tmux.wait_for("the host view, blue live", Duration::from_secs(40), |s| {
        live_in_pane(s) == Some("blue")
    });
    tmux.send(&["s"]);
    let s = tmux.wait_for("the shell", Duration::from_secs(20), |s| {
        s.contains("[deckhand] ssh -S ") && s.lines().any(|l| l.trim_end().ends_with('$'))
    });
    // Not the service's name (no container is called that): the task's container id.
    assert!(
        !s.contains(&format!("'{}-blue'", svc.name)),
        "exec into the service name:\n{s}"
    );
    tmux.send(&["-l", "read x < /proc/1/comm; echo SHELL-$x-$((6*7))"]);
    tmux.send(&["Enter"]);
    tmux.wait_for("the shell's answer", Duration::from_secs(10), |s| {
        s.contains("SHELL-deckhand-demo-42")
    });
    tmux.send(&["-l", "exit"]);
    tmux.send(&["Enter"]);
    let s = tmux.wait_for("the console again", Duration::from_secs(15), |s| {
        live_in_pane(s) == Some("blue")
    });
    assert!(
        s.contains("closed"),
        "the footer says the shell closed:\n{s}"
    );
    quit(&tmux);
}
