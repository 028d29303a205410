//! The console's view of a host that accepts TCP and never speaks SSH: down since when, why,
//! and when the next try comes; never "connecting" forever.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deckhand::config::{AlertThresholds, HostSpec, HostTarget};
use deckhand::tui::model::{Conn, HostUpdate, HostView};
use deckhand::tui::tasks::{Bg, poll_host};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_host_that_never_speaks_ssh_shows_down_since_why_and_the_next_try() {
    // Accepts connections and holds them, silent: ssh waits for a banner that never comes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let sshd = SshServer::start(); // only for a key and a known_hosts file
    let spec = HostSpec {
        name: "mute-1".into(),
        target: HostTarget::Ssh {
            destination: "root@127.0.0.1".into(),
            user: None,
            port: Some(port),
            identity_file: Some(sshd.client_key.clone()),
            known_hosts: Some(sshd.known_hosts.clone()),
        },
        docker_socket: "/var/run/docker.sock".into(),
        state_dir: "/tmp/deckhand-mute".into(),
        connect_timeout: Duration::from_secs(1),
        swarm: None,
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    tokio::spawn(poll_host(
        spec,
        Vec::new(),
        AlertThresholds::default(),
        0,
        tx,
        cancel.clone(),
        Arc::new(Notify::new()),
    ));
    let mut view = HostView::new("mute-1");
    let started = Instant::now();
    let unix = chrono::Utc::now().timestamp();
    let mut seen_down = false;
    let mut retried_while_down = false;
    while started.elapsed() < Duration::from_secs(40) && !retried_while_down {
        let Ok(Some(bg)) = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await else {
            break;
        };
        let Bg::Msg(deckhand::tui::app::Msg::Host { update, .. }) = bg else {
            continue;
        };
        let retry = matches!(update, HostUpdate::Connecting) && seen_down;
        view.apply(update, Instant::now(), unix);
        if let Conn::Down { .. } = view.conn {
            if !seen_down {
                let text = view
                    .conn
                    .down_text(Instant::now(), unix)
                    .expect("down text");
                assert!(
                    text.starts_with("down since") && text.contains("next try in"),
                    "{text}"
                );
                let why = view
                    .down_reason()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                assert!(why.starts_with("mute-1: "), "the why names the host: {why}");
            }
            seen_down = true;
        }
        if retry {
            // The retry is under way: the host still reads down, saying it tries again.
            assert!(view.conn.is_down(), "{:?}", view.conn);
            let text = view
                .conn
                .down_text(Instant::now(), unix)
                .unwrap_or_default();
            assert!(text.contains("trying again now"), "{text}");
            retried_while_down = true;
        }
    }
    cancel.cancel();
    assert!(
        seen_down,
        "the host never showed as down within 40 s: {:?}",
        view.conn
    );
    assert!(retried_while_down, "no retry was seen: {:?}", view.conn);
}

/// Waits for the host update `ok` accepts; panics with what came instead.
pub(crate) async fn host_update(
    rx: &mut mpsc::UnboundedReceiver<Bg>,
    within: Duration,
    what: &str,
    ok: impl Fn(&HostUpdate) -> bool,
) -> HostUpdate {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let next = tokio::time::timeout_at(deadline, rx.recv()).await;
        let Ok(Some(bg)) = next else {
            panic!("no {what} within {within:?}; saw {seen:?}");
        };
        if let Bg::Msg(deckhand::tui::app::Msg::Host { update, .. }) = bg {
            if ok(&update) {
                return update;
            }
            seen.push(match &update {
                HostUpdate::Snapshot(_) => "snapshot".to_string(),
                other => format!("{other:?}").chars().take(120).collect(),
            });
        }
    }
}

pub(crate) fn blue_state(u: &HostUpdate) -> Option<deckhand::state::ContainerState> {
    let HostUpdate::Snapshot(s) = u else {
        return None;
    };
    s.status
        .services
        .first()?
        .color(deckhand::state::Color::Blue)
        .map(|c| c.state)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_ssh_master_shows_the_host_down_then_the_watcher_reconnects_and_follows_events() {
    use deckhand::state::ContainerState;
    let svc = TestService::new("ccut");
    svc.tag_local(&["a000001"]);
    let sshd = SshServer::start();
    let (_dir, path) = write_config(&format!(
        "{}\n{}",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    ));
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let cfg = deckhand::config::load(&path).expect("config");
    let spec = cfg.env("lab").expect("lab").hosts[0].clone();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    // A monitor once a minute: nothing but events (and the 5 s /health) can explain a change.
    let thresholds = AlertThresholds {
        interval: Duration::from_secs(60),
        ..AlertThresholds::default()
    };
    tokio::spawn(poll_host(
        spec,
        cfg.services.clone(),
        thresholds,
        0,
        tx,
        cancel.clone(),
        Arc::new(Notify::new()),
    ));
    host_update(&mut rx, Duration::from_secs(30), "blue running", |u| {
        blue_state(u) == Some(ContainerState::Running)
    })
    .await;

    // The ssh connection is cut under the event stream: the host reads down at once.
    let masters = ssh_masters(sshd.port);
    assert_eq!(masters.len(), 1, "one master for the watcher: {masters:?}");
    for pid in &masters {
        signal(pid.parse().expect("pid"), "KILL");
    }
    let cut = Instant::now();
    let down = host_update(&mut rx, Duration::from_secs(10), "the host down", |u| {
        matches!(u, HostUpdate::Down { .. })
    })
    .await;
    eprintln!("down {:?} after the cut: {down:?}", cut.elapsed());
    // It reconnects on its own, reads the host and follows its events again.
    host_update(&mut rx, Duration::from_secs(30), "connected again", |u| {
        matches!(u, HostUpdate::Connected)
    })
    .await;
    host_update(&mut rx, Duration::from_secs(30), "a snapshot", |u| {
        blue_state(u) == Some(ContainerState::Running)
    })
    .await;
    docker_ok(&["stop", "-t", "1", &format!("{}-blue", svc.name)]);
    let stopped = Instant::now();
    host_update(
        &mut rx,
        Duration::from_secs(3),
        "blue exited after docker stop",
        |u| blue_state(u) == Some(ContainerState::Exited),
    )
    .await;
    eprintln!(
        "the stop was seen {:?} after docker stop returned",
        stopped.elapsed()
    );
    cancel.cancel();
}
