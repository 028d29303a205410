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
