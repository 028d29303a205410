//! Round trips as a structure, not a time (issue 14): how many remote waits come one after
//! another in a connect and in a status read over ssh, counted by the host's own accounting
//! (`deckhand::transport::trips`). A slower link multiplies exactly this number.
//!
//! The ssh connection goes through a relay that adds 50 ms each way (RTT 100 ms, well above Docker's own answer times here), so the order in which
//! operations end is the order a real link gives them (on bare loopback local work decides
//! it, and an operation may seem to wait for one it never needed). Nothing here is timed.

use deckhand::config;
use deckhand::state::{Color, status_of_host_timed};
use deckhand::transport::Host;

use crate::harness::*;

struct Bed {
    svc: TestService,
    _sshd: SshServer,
    _relay: LatencyRelay,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    cfg: config::Config,
}

fn bed(prefix: &str) -> Bed {
    let svc = TestService::new(prefix);
    svc.tag_local(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let relay = LatencyRelay::start(sshd.port, std::time::Duration::from_millis(50));
    let (dir, path) = write_config(&format!(
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
    Bed {
        svc,
        _sshd: sshd,
        _relay: relay,
        _dir: dir,
        path,
        cfg,
    }
}

/// The ssh handshake, then at most four round trips one after another: the inspects go out
/// with the connect's `/version` on new channels (2), then `/health` on a new forward (2);
/// the proxy's traffic exec is made beside them (2) and started (1). Before, the inspects
/// waited for `/version` (2 + 1 + 2 = 5) and the host facts' command started only after it.
/// Once a read has seen the colors' ports, the next call (a new process, a new connect)
/// probes them beside the inspects: the traffic exec's 3 are the chain.
#[tokio::test(flavor = "multi_thread")]
async fn a_status_of_one_host_waits_four_round_trips_after_the_handshake_and_three_once_it_knows_the_ports()
 {
    let Bed { cfg, .. } = &bed("rtst");
    let spec = &cfg.env("lab").expect("lab").hosts[0];
    // The fewest of a few reads: the count is a structure, but on a loaded machine a Docker
    // answer slower than the relay's delay can make one operation seem to wait for another
    // (only ever more, never fewer). Each read is a new connect, as each CLI call is.
    let first = status_of_host_timed(spec, &cfg.services).await;
    let first_trips = first.1.as_ref().expect("timings").trips;
    eprintln!("first read: {first_trips}");
    let mut seen = Vec::new();
    let (status, timings) = loop {
        let (status, timings) = status_of_host_timed(spec, &cfg.services).await;
        let n = timings.as_ref().map(|t| t.trips.sequential);
        seen.push(n);
        if n.is_some_and(|n| n <= 3) || seen.len() == 3 {
            break (status, timings);
        }
    };
    eprintln!("sequential round trips of each later read: {seen:?}");
    for status in [&first.0, &status] {
        assert!(status.reachable, "{:?}", status.error);
        assert_eq!(status.error, None);
        // Everything a status reads is still read.
        let s = &status.services[0];
        assert_eq!(s.live_color, Some(Color::Blue));
        let blue = s.color(Color::Blue).expect("blue");
        assert!(
            blue.health.as_ref().is_some_and(|h| h.is_healthy()),
            "{blue:?}"
        );
        let green = s.color(Color::Green).expect("green (kept, stopped)");
        assert!(
            green.health.is_none(),
            "a stopped color is not probed: {green:?}"
        );
        assert!(s.traffic.is_some(), "the proxy's traffic is read");
        assert!(s.proxy.upstream.is_some(), "the proxy's config is read");
        assert!(!s.images.is_empty());
        let facts = status.facts.as_ref().expect("facts");
        assert!(facts.docker_version.is_some(), "{facts:?}");
        assert!(facts.mem_total_bytes.is_some(), "{facts:?}");
        assert!(facts.disk_root.is_some(), "{facts:?}");
    }
    assert!(
        first_trips.sequential <= 4,
        "a first status read waits {} round trips one after another (at most 4): {first_trips}",
        first_trips.sequential
    );

    let t = timings.expect("timings of a reachable host").trips;
    eprintln!("status of one host, ports known: {t}");
    assert!(
        t.sequential <= 3,
        "a status read that knows the ports waits {} round trips one after another (at most 3): {t}",
        t.sequential
    );
    // Counted, not skipped: the inspects, images, archive, exec, /version; the facts' command;
    // the /health probe.
    assert!(t.docker >= 6, "{t}");
    assert_eq!(t.commands, 1, "host facts are one command: {t}");
    assert_eq!(t.http, 1, "one running color probed: {t}");
}

/// A connect costs the handshake and nothing the first read must wait for: a read sent right
/// after it goes out beside the connect's `/version` (at most 2 round trips: a new channel and
/// the request). Before, the connect waited for `/version` first (2, then the read's 1).
#[tokio::test(flavor = "multi_thread")]
async fn a_read_right_after_the_connect_does_not_wait_for_the_version() {
    let Bed { cfg, svc, .. } = &bed("rtcon");
    let spec = &cfg.env("lab").expect("lab").hosts[0];
    // The fewest of a few tries, as above: load can only add to the count.
    let mut tries = 0;
    let (host, t) = loop {
        tries += 1;
        let host = Host::connect_early(spec).await.expect("connect");
        let ins = host
            .docker
            .inspect_container(&format!("{}-blue", svc.name), None)
            .await
            .expect("inspect");
        assert_eq!(ins.state.and_then(|s| s.running), Some(true));
        host.ready().await.expect("the engine answered");
        let t = host.trips();
        if t.sequential <= 2 || tries == 3 {
            break (host, t);
        }
        host.close().await;
    };
    eprintln!("connect and one inspect: {t}");
    assert!(
        t.sequential <= 2,
        "connect + first read: {} sequential round trips (at most 2): {t}",
        t.sequential
    );
    // The version is still read, once, and known to the host facts.
    let v = host.engine_version().await.expect("engine version");
    assert!(v.api_version.is_some());
    // A write waits for the version (it is never sent unversioned): still one request.
    let before = host.trips();
    let _ = host
        .docker
        .create_exec(
            &format!("{}-blue", svc.name),
            bollard::models::ExecConfig {
                cmd: Some(vec!["true".into()]),
                ..Default::default()
            },
        )
        .await
        .expect("create exec");
    assert_eq!(host.trips().since(&before).docker, 1);
    host.close().await;

    // The waiting connect (release steps, the console) still answers only once the engine
    // has, and its first read then finds a warm connection: 2 + 1.
    let mut tries = 0;
    let t = loop {
        tries += 1;
        let host = Host::connect(spec).await.expect("connect");
        let _ = host
            .docker
            .inspect_container(&format!("{}-blue", svc.name), None)
            .await
            .expect("inspect");
        let t = host.trips();
        host.close().await;
        if t.sequential <= 3 || tries == 3 {
            break t;
        }
    };
    assert!(t.sequential <= 3, "{t}");
    assert_eq!(t.channels, 8, "/version and seven warm connections: {t}");
}

/// A warm `status` (a kept ssh master, `--keep-connection`): no handshake, and its one remote
/// command goes out behind its shell's nonce as soon as the shell's channel stands, so it
/// counts that channel's opening and its own round trip (2; it waited 3 before, for the
/// shell's `ready` too). The cold call before it left the colors' ports, so `/health` goes
/// out beside the inspects (2 each, on new channels; it waited for them before: 4); the chain's
/// 3 are the proxy's traffic exec, made (2) and started (1). The target is 3.
#[test]
fn a_warm_status_waits_at_most_three_round_trips() {
    let b = bed("rtwarm");
    let runtime = private_runtime_dir();
    let rt = runtime.path().display().to_string();
    // One state directory for every call, as a user's is: the ports one call saw are there
    // for the next.
    let state = tempfile::tempdir().expect("state dir");
    let st = state.path().display().to_string();
    let run = |args: &[&str]| {
        deckhand_env(
            &b.path,
            args,
            &[
                ("XDG_RUNTIME_DIR", rt.as_str()),
                ("XDG_STATE_HOME", st.as_str()),
            ],
        )
    };
    let status = [
        "status",
        "--env",
        "lab",
        "--output",
        "json",
        "--timings",
        "--keep-connection=1m",
    ];
    let cold = run(&status);
    assert_eq!(cold.status.code(), Some(0), "{}", text(&cold));
    // The fewest of a few warm reads, as above: load can only add to a count.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let out = run(&status);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let n: u64 = err
            .split(" sequential round trips")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {err:?}"));
        seen.push(n);
        if n <= 3 {
            break;
        }
    }
    let out = run(&["disconnect"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    eprintln!("sequential round trips of each warm read: {seen:?}");
    assert!(
        seen.iter().any(|&n| n <= 3),
        "a warm status waits {seen:?} round trips one after another (at most 3)"
    );
}

/// A wrong Docker socket is still a clear "cannot reach Docker" for the host, not a row of
/// read errors, although the reads went out before the engine answered.
#[tokio::test(flavor = "multi_thread")]
async fn a_status_through_a_wrong_docker_socket_says_so() {
    let svc = TestService::new("rtsock");
    let sshd = SshServer::start();
    let text = format!(
        "{}\n[env.dev]\nhosts = [\"local\"]\n\n{}docker_socket = \"/nonexistent/docker.sock\"\n",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    );
    let (_dir, path) = write_config(&text);
    let cfg = config::load(&path).expect("config");
    let spec = &cfg.env("lab").expect("lab").hosts[0];
    let (status, timings) = status_of_host_timed(spec, &cfg.services).await;
    assert!(!status.reachable);
    assert!(timings.is_none());
    let e = status.error.expect("error");
    assert!(e.contains("/nonexistent/docker.sock"), "{e}");
}

/// A rollback over the slow link, step by step: the switch is one round trip (its exec and
/// the drain's first read were created beside the lock check after the health wait; before,
/// each was a create and then a start); the drain's first read and the lock check before the
/// stop go out beside the confirm's request, so with nothing in flight the drain waits no
/// round trip of its own (it waited 1 before); the ledger is written beside the stop; the
/// read of what serves now goes out beside the audit record; and no exec is left behind in
/// the proxy (an exec created and never started stays in Docker's memory as long as the proxy
/// lives).
#[test]
fn a_rollback_switches_and_confirms_in_one_round_trip_each_drains_beside_the_confirm_and_leaves_no_exec_behind()
 {
    let Bed { svc, path, .. } = &bed("rtrb");
    // The fewest of up to three rollbacks (each goes back to the other release): the lock's
    // heartbeat runs beside the steps, and on a loaded machine one that starts after a
    // step's first answer adds to that step's chain (only ever more, never fewer). After the
    // first, the release to go to is named: the ledger rightly refuses a plain rollback to a
    // release that was just rolled back from.
    let mut fewest: std::collections::HashMap<String, u64> = Default::default();
    for attempt in 0..3 {
        let mut args = vec!["rollback", "--env", "lab", "--yes", "--output", "json"];
        if attempt > 0 {
            args.push(if attempt % 2 == 1 {
                "a000002"
            } else {
                "a000001"
            });
        }
        let out = deckhand(path, &args);
        assert!(out.status.success(), "{}", text(&out));
        let steps: std::collections::HashMap<String, serde_json::Value> =
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|e| e["event"] == "step_finished")
                .filter_map(|e| Some((e["step"].as_str()?.to_string(), e["trips"].clone())))
                .collect();
        for step in ["switch", "confirm", "drain", "stop_old", "audit"] {
            let n = steps
                .get(step)
                .and_then(|t| t["sequential"].as_u64())
                .unwrap_or_else(|| panic!("no round trips for {step}: {}", text(&out)));
            let f = fewest.entry(step.to_string()).or_insert(n);
            *f = (*f).min(n);
        }
        // The end record and the unlock (one command) beside the read of what serves:
        // inspects, the proxy's config and its traffic through the exec made during the stop.
        let audit = &steps["audit"];
        assert!(
            audit["docker"].as_u64() >= Some(3),
            "the read back goes with it: {audit}"
        );
        let live = if attempt % 2 == 0 { "green" } else { "blue" };
        assert_eq!(svc.container_state(live).as_deref(), Some("running"));
        let execs = docker_ok(&[
            "inspect",
            &format!("{}-proxy", svc.name),
            "--format",
            "{{json .ExecIDs}}",
        ]);
        assert_eq!(
            execs.trim(),
            "null",
            "execs never started are left in the proxy"
        );
        // A channel more for the read when the pool had fewer idle connections than it sends.
        if fewest["switch"] == 1
            && fewest["confirm"] == 1
            && fewest["drain"] == 0
            && fewest["stop_old"] == 1
            && fewest["audit"] <= 2
        {
            break;
        }
    }
    eprintln!("fewest round trips per step: {fewest:?}");
    assert_eq!(fewest["switch"], 1, "{fewest:?}");
    // The drain's first poll and the lock check before the stop go out beside the confirm's
    // request: with nothing in flight the drain waits no round trip of its own.
    assert_eq!(fewest["confirm"], 1, "{fewest:?}");
    assert_eq!(fewest["drain"], 0, "{fewest:?}");
    // The ledger is written beside the stop.
    assert_eq!(fewest["stop_old"], 1, "{fewest:?}");
    assert!(fewest["audit"] <= 2, "{fewest:?}");
}

/// A rollback restarts the kept color, and a restarted container gets a new host port: the
/// port the run's read back found is what the next call remembers, so its `status` probes
/// beside the inspects (a release run drops its hosts without closing them).
#[test]
fn a_rollback_leaves_the_restarted_colors_new_port_for_the_next_call() {
    let b = bed("rtpm");
    let state = tempfile::tempdir().expect("state dir");
    let st = state.path().display().to_string();
    let run = |args: &[&str]| deckhand_env(&b.path, args, &[("XDG_STATE_HOME", st.as_str())]);
    let remembered = |color: &str| -> Option<u16> {
        let dir = state.path().join("deckhand/ports");
        let name = format!("{}-{color}", b.svc.name);
        std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
            .find_map(|l| {
                let (n, p) = l.split_once(' ')?;
                (n == name).then(|| p.parse().ok()).flatten()
            })
    };
    let out = run(&["status", "--env", "lab", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let blue_before = remembered("blue").expect("status remembers blue's port");
    assert_eq!(remembered("green"), None, "green is stopped");
    let out = run(&["rollback", "--env", "lab", "--yes", "--output", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let port = docker_ok(&["port", &format!("{}-green", b.svc.name)]);
    let green_now: u16 = port
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("green's port: {port:?}"));
    assert_eq!(
        remembered("green"),
        Some(green_now),
        "the rollback's read back is remembered"
    );
    assert_eq!(
        remembered("blue"),
        None,
        "blue was stopped (was on {blue_before})"
    );
}
