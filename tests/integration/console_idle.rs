//! The console at idle (issue 14): what a monitoring cycle of a host where nothing changes puts
//! on the wire, counted by a relay in front of the host's sshd (both directions, ssh framing
//! included) and by the host's own operation counters. Nothing here is timed.

use std::time::Duration;

use chrono::Utc;
use deckhand::config::{self, AlertThresholds};
use deckhand::monitor::notify::Notifier;
use deckhand::monitor::store::AlertBook;
use deckhand::monitor::{AlertState, HostMonitor, run_cycle};
use deckhand::transport::Host;

use crate::harness::*;

/// A book with this many entries of services that no longer exist (a host that ran many):
/// large enough that sending it once more is plain in the byte count.
const OLD_ENTRIES: usize = 2000;

/// An idle cycle sends neither the alert book (the console holds the generation on the host)
/// nor a commit of it (only that cycle's figures changed). Before, every cycle read the whole
/// book and wrote it back: two remote commands and twice the book's size on the wire. A book
/// another monitor changed is still read and acted on at the next cycle.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_cycle_neither_reads_the_alert_book_again_nor_writes_it_back() {
    let svc = TestService::new("idlebook");
    svc.tag_local(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let relay = LatencyRelay::start(sshd.port, Duration::ZERO);
    let (_dir, path) = write_config(&format!(
        "{}\n[env.dev]\nhosts = [\"local\"]\n\n{}",
        svc.service_toml(""),
        sshd.host_toml_via("lab", "lab-1", relay.port)
    ));
    let cfg = config::load(&path).expect("config");
    svc.lay_out_by_hand(
        &cfg.services[0],
        ("blue", "a000002"),
        Some(("green", "a000001")),
    );
    let spec = &cfg.env("lab").expect("lab").hosts[0];
    let book_file = sshd.state_dir().join("alerts.json");
    std::fs::create_dir_all(sshd.state_dir()).expect("state dir");
    let mut planted = AlertBook {
        generation: 7,
        ..Default::default()
    };
    for i in 0..OLD_ENTRIES {
        planted
            .health_counted_at
            .insert(format!("retired-service-{i:04}"), Utc::now());
    }
    let planted_text = serde_json::to_string(&planted).expect("book json");
    let book_size = planted_text.len() as u64;
    std::fs::write(&book_file, &planted_text).expect("plant the book");

    let host = Host::connect(spec).await.expect("connect");
    // Out of reach, so a busy test machine's CPU does not change a rule's state (a change
    // is committed, rightly).
    let thresholds = AlertThresholds {
        cpu_percent: 100.0,
        memory_percent: 100.0,
        disk_percent: 100.0,
        ..AlertThresholds::default()
    };
    let notifier = Notifier::to(None);
    let mut monitor = HostMonitor::default();
    let cycle = async |monitor: &mut HostMonitor| {
        run_cycle(
            &host,
            &cfg.services,
            &thresholds,
            monitor,
            &notifier,
            Utc::now(),
        )
        .await
    };
    let book_on_host = || -> AlertBook {
        serde_json::from_slice(&std::fs::read(&book_file).expect("book")).expect("book json")
    };
    // The first cycle reads the book and, its figures being new, writes it.
    let first = cycle(&mut monitor).await;
    assert_eq!(first.error, None);
    let written: AlertBook = book_on_host();
    assert_eq!(written.generation, 8, "the first cycle commits");
    assert_eq!(written.health_counted_at.len(), OLD_ENTRIES);

    // Idle cycles: nothing but the figures changes.
    for n in 2..=3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (bytes, trips) = (relay.bytes(), host.trips());
        let idle = cycle(&mut monitor).await;
        let (bytes, trips) = (relay.bytes() - bytes, host.trips().since(&trips));
        eprintln!("idle cycle {n}: {bytes} bytes on the wire (book {book_size}); {trips}");
        assert_eq!(idle.error, None);
        // Everything the cycle shows is still there.
        assert!(idle.metrics.cpu_percent.is_some(), "{:?}", idle.metrics);
        assert!(idle.metrics.mem_percent.is_some(), "{:?}", idle.metrics);
        assert!(
            idle.alerts.iter().any(|a| a.key.starts_with("health:")),
            "{:?}",
            idle.alerts
        );
        assert_eq!(
            trips.commands, 1,
            "one command (the read), no commit of an unchanged book: {trips}"
        );
        assert!(
            bytes < book_size / 2,
            "cycle {n} carried {bytes} bytes: the book ({book_size}) went over the wire again"
        );
        let on_host: AlertBook = book_on_host();
        assert_eq!(on_host.generation, 8, "not written again");
    }

    // Another monitor commits a firing CPU alert: the next cycle reads that book and
    // resolves the alert (CPU is never above 100%).
    let mut other = written.clone();
    other.generation = 9;
    let cpu = other.alerts.get_mut("cpu").expect("the cpu rule");
    cpu.state = AlertState::Firing;
    cpu.active_since = Some(Utc::now() - chrono::Duration::minutes(10));
    cpu.firing_since = Some(Utc::now() - chrono::Duration::minutes(5));
    std::fs::write(&book_file, serde_json::to_string(&other).expect("json")).expect("write");
    let bytes = relay.bytes();
    let after = cycle(&mut monitor).await;
    let bytes = relay.bytes() - bytes;
    eprintln!("cycle after another monitor's commit: {bytes} bytes");
    assert_eq!(after.error, None);
    let cpu = after.alerts.iter().find(|a| a.key == "cpu").expect("cpu");
    assert_eq!(cpu.state, AlertState::Resolved, "{cpu:?}");
    let on_host: AlertBook = book_on_host();
    assert_eq!(on_host.generation, 10, "the resolution is committed");
    assert_eq!(on_host.alerts["cpu"].state, AlertState::Resolved);
    assert_eq!(on_host.health_counted_at.len(), OLD_ENTRIES);
    host.close().await;
}

/// A watcher of an idle host asks it nothing between monitoring cycles but `/health`: Docker
/// execs on the service's containers (deckhand's own traffic read in the proxy, a HEALTHCHECK,
/// an operator's `docker exec`) are no events it follows, so they trigger no re-read that would
/// exec again. A container stopped by hand is still shown at once, and re-read.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_watcher_reads_nothing_on_execs_and_shows_a_stop_at_once() {
    use deckhand::state::ContainerState;
    use deckhand::tui::tasks::{Bg, poll_host};
    use tokio::sync::{Notify, mpsc};
    use tokio_util::sync::CancellationToken;

    use crate::console_conn::{blue_state, host_update};

    let svc = TestService::new("idlewatch");
    svc.tag_local(&["a000001"]);
    let sshd = SshServer::start();
    let (_dir, path) = write_config(&format!(
        "{}\n{}",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    ));
    let out = deckhand(&path, &["deploy", "a000001", "--env", "lab", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    let cfg = config::load(&path).expect("config");
    let spec = cfg.env("lab").expect("lab").hosts[0].clone();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    // No monitoring cycle in the window (the first comes at an offset within the hour).
    let thresholds = AlertThresholds {
        interval: Duration::from_secs(3600),
        ..AlertThresholds::default()
    };
    tokio::spawn(poll_host(
        spec,
        cfg.services.clone(),
        thresholds,
        0,
        tx,
        cancel.clone(),
        std::sync::Arc::new(Notify::new()),
    ));
    let host = loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(Bg::Connected { host, .. })) => break host,
            Ok(Some(_)) => {}
            other => panic!("no connection: {:?}", other.is_ok()),
        }
    };
    host_update(&mut rx, Duration::from_secs(30), "blue running", |u| {
        blue_state(u) == Some(ContainerState::Running)
    })
    .await;
    // The deploy's last events (replayed from a second before the subscription) are re-read.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = host.trips();
    let proxy = format!("{}-proxy", svc.name);
    let blue = format!("{}-blue", svc.name);
    // The demo's HEALTHCHECK execs in blue every 2 s on its own.
    for _ in 0..3 {
        docker_ok(&["exec", &proxy, "sh", "-c", ":"]);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let idle = host.trips().since(&before);
    eprintln!("6 s idle with 3 execs by hand in the proxy: {idle}");
    assert_eq!(
        (idle.docker, idle.commands),
        (0, 0),
        "nothing but /health between cycles: {idle}"
    );
    assert!(idle.http >= 1, "the /health probes go on: {idle}");

    docker_ok(&["stop", "-t", "1", &blue]);
    let stopped = std::time::Instant::now();
    host_update(&mut rx, Duration::from_secs(2), "blue exited", |u| {
        blue_state(u) == Some(ContainerState::Exited)
    })
    .await;
    eprintln!(
        "the stop shown {:?} after docker stop returned",
        stopped.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reread = host.trips().since(&before);
    assert!(
        reread.docker > 0,
        "the stopped service is re-read: {reread}"
    );
    cancel.cancel();
}

/// A remote shell holds the `sh -c` scripts it ran: the console's cycle runs the same few
/// scripts every interval (the metrics read, the lock read, the book's commit), and each went
/// over the wire again with every command (base64, a third larger). Now only the first run of
/// a script in a shell carries it; the output, status and arguments are the same every time.
#[tokio::test(flavor = "multi_thread")]
async fn a_script_crosses_the_wire_once_per_remote_shell() {
    let sshd = SshServer::start();
    let relay = LatencyRelay::start(sshd.port, Duration::ZERO);
    let (_dir, path) = write_config(&format!(
        "[[service]]\nname = \"idlesh\"\nimage = \"r/x\"\napp_port = 3000\npublic_port = 3999\n\n{}",
        sshd.host_toml_via("lab", "lab-1", relay.port)
    ));
    let cfg = config::load(&path).expect("config");
    let host = Host::connect(&cfg.env("lab").expect("lab").hosts[0])
        .await
        .expect("connect");
    // 4 KB of script, as large as the biggest deckhand sends.
    let script = format!(
        "{}\nprintf '%s|%s\\n' \"$0\" \"$1\"; echo oops >&2; exit 3",
        ": padding line that the shell skips\n".repeat(110)
    );
    let mut carried = Vec::new();
    for i in 0..4 {
        let arg = format!("arg {i}");
        let bytes = relay.bytes();
        let out = host
            .exec("sh", &["-c", &script, "deckhand-test", &arg], None)
            .await
            .expect("exec");
        carried.push(relay.bytes() - bytes);
        assert_eq!(out.status, Some(3));
        assert_eq!(out.stdout_text(), format!("deckhand-test|{arg}\n"));
        assert_eq!(out.stderr_text(), "oops");
    }
    let stats = host.shell_stats().expect("shells");
    eprintln!(
        "bytes per run of a {} byte script: {carried:?}; {stats:?}",
        script.len()
    );
    assert_eq!(stats.plain, 0, "every run in a shell: {stats:?}");
    assert_eq!(stats.started, 1, "{stats:?}");
    assert!(
        carried[0] > script.len() as u64,
        "the first run carries the script: {carried:?}"
    );
    for (i, b) in carried.iter().enumerate().skip(1) {
        assert!(
            *b < script.len() as u64 / 4,
            "run {i} carried {b} bytes: the script went again ({carried:?})"
        );
    }
    host.close().await;
}
