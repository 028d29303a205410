//! The watch after the switch and canary releases (issue 13), against the real proxy: a
//! release that passes /health and fails its pages is rolled back under load within the
//! window; a canary gets its share, is promoted or aborted; a kill during the watch is
//! settled by the next action, a SIGTERM during it ends it cleanly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::*;

/// One answer a client saw: when, status, color.
type Seen = (Instant, u16, String);

/// Clients on fresh connections from two threads, recording every answer, on pages (not
/// /health): what users see during a watch.
struct Recorder {
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<Vec<Seen>>>,
}

impl Recorder {
    fn start(port: u16) -> Recorder {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..2)
            .map(|t| {
                let flag = stop.clone();
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let mut i = 0u64;
                    while !flag.load(Ordering::Relaxed) {
                        i += 1;
                        let path = if (t + i).is_multiple_of(2) {
                            "/"
                        } else {
                            "/version"
                        };
                        match public_get(port, path) {
                            Ok((code, color)) => seen.push((Instant::now(), code, color)),
                            Err(e) => seen.push((Instant::now(), 0, e)),
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    seen
                })
            })
            .collect();
        Recorder { stop, handles }
    }

    fn finish(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all: Vec<Seen> = self
            .handles
            .into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect();
        all.sort_by_key(|s| s.0);
        all
    }
}

fn by_color(seen: &[Seen]) -> BTreeMap<String, (u64, u64)> {
    let mut m: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (_, code, color) in seen {
        let e = m.entry(color.clone()).or_default();
        e.0 += 1;
        if *code != 200 {
            e.1 += 1;
        }
    }
    m
}

fn service_json(path: &std::path::Path) -> serde_json::Value {
    let (_, v) = status_json(path);
    v["hosts"][0]["services"][0].clone()
}

fn deploy(path: &std::path::Path, args: &[&str]) -> (Option<i32>, String, Duration) {
    let mut a = vec!["deploy"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--env", "lab", "--yes"]);
    let t = Instant::now();
    let out = deckhand(path, &a);
    (out.status.code(), text(&out), t.elapsed())
}

#[test]
fn a_release_that_fails_its_pages_is_rolled_back_by_the_watch_under_load() {
    let svc = TestService::new("wr");
    svc.push(&["a000001", "fa15001"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "watch_min_requests = 20\n");
    let (code, out, _) = deploy(&path, &["a000001"]);
    assert_eq!(code, Some(0), "{out}");
    let hook = Webhook::start();

    let load = Recorder::start(svc.public_port);
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let out = deckhand_env(
        &path,
        &[
            "deploy", "fa15001", "--env", "lab", "--yes", "--watch", "10s",
        ],
        &[("DECKHAND_WEBHOOK_URL", hook.url.as_str())],
    );
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let seen = load.finish();
    let out_text = text(&out);
    assert_eq!(out.status.code(), Some(1), "{out_text}");
    for needle in [
        "rolled back automatically by the watch",
        "answered 5xx (limit 5 %)",
        "500×",
        "failing paths: /",
        "/version (",
        "page failed (DEMO_PAGES_FAIL)",
        "a000001 (blue) serves again",
    ] {
        assert!(out_text.contains(needle), "`{needle}` missing:\n{out_text}");
    }

    // Users: blue before and after, green only between the switch and the switch back.
    let colors = by_color(&seen);
    let (green, green_failed) = colors.get("green").copied().unwrap_or_default();
    let (blue, blue_failed) = colors.get("blue").copied().unwrap_or_default();
    assert!(green > 0, "the failing release took traffic: {colors:?}");
    assert_eq!(
        blue_failed, 0,
        "blue served every request it got: {colors:?}"
    );
    assert_eq!(
        green_failed, green,
        "green answered 500 to every page: {colors:?}"
    );
    assert!(
        colors.keys().all(|c| c == "blue" || c == "green"),
        "every request was answered by a color: {colors:?}"
    );
    let first_fail = seen
        .iter()
        .find(|s| s.2 == "green")
        .map(|s| s.0)
        .expect("green");
    let last_fail = seen
        .iter()
        .rev()
        .find(|s| s.2 == "green")
        .map(|s| s.0)
        .expect("green");
    let after: Vec<&Seen> = seen.iter().filter(|s| s.0 > last_fail).collect();
    assert!(!after.is_empty() && after.iter().all(|s| s.1 == 200 && s.2 == "blue"));
    let to_switch_back = last_fail - first_fail;
    eprintln!(
        "watch rollback: {green} requests answered by the failing release ({blue} by blue), \
         {:.0} ms from its first failing answer to the switch back; deploy took {:.1} s",
        to_switch_back.as_secs_f64() * 1000.0,
        took.as_secs_f64()
    );
    assert!(
        to_switch_back < Duration::from_secs(10),
        "rolled back within the window: {to_switch_back:?}"
    );

    // The host: blue serves, green stopped and kept; the audit log, webhook and alert know.
    assert_eq!(
        public_get(svc.public_port, "/").expect("public"),
        (200, "blue".into())
    );
    assert_eq!(svc.container_state("green").as_deref(), Some("exited"));
    let audit = audit_records(&sshd.state_dir());
    let last = audit.last().expect("audit");
    assert_eq!(last["outcome"], "rolled_back", "{last:#}");
    assert!(
        last["details"]
            .as_str()
            .is_some_and(|d| d.contains("rolled back automatically") && d.contains("/version")),
        "{last:#}"
    );
    let hooks = hook.received();
    assert!(
        hooks
            .iter()
            .any(|h| h.contains("FAILED") && h.contains("rolled back automatically")),
        "{hooks:?}"
    );
    let alerts = deckhand(&path, &["alerts", "--env", "lab"]);
    let alerts_text = text(&alerts);
    assert_eq!(alerts.status.code(), Some(5), "{alerts_text}");
    assert!(alerts_text.contains("rolled_back"), "{alerts_text}");
    let s = service_json(&path);
    assert_eq!(s["live_sha"], "a000001", "{s:#}");
    assert!(s["settling"].is_null(), "{s:#}");

    // The ledger: the failed release ended "rolled back automatically" and a000001 serves
    // again, so a plain rollback never goes *to* the release the watch backed out of (here
    // nothing served before a000001: it refuses).
    let h = deckhand(&path, &["history", "--env", "lab", "--output", "json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&h.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&h)));
    let entries: Vec<(String, String)> = v[0]["ledger"]
        .as_array()
        .unwrap_or_else(|| panic!("no ledger in history: {v:#}"))
        .iter()
        .map(|r| {
            (
                r["sha"].as_str().unwrap_or("").to_string(),
                r["ended"].as_str().unwrap_or("live").to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (
                "fa15001".to_string(),
                "rolled_back_automatically".to_string()
            ),
            ("a000001".to_string(), "live".to_string()),
        ],
        "{v:#}"
    );
    let rb = deckhand(&path, &["rollback", "--env", "lab", "--yes"]);
    let rb_text = text(&rb);
    assert_eq!(rb.status.code(), Some(2), "{rb_text}");
    assert!(!rb_text.contains("→ fa15001"), "{rb_text}");
    assert_eq!(
        public_get(svc.public_port, "/").expect("public"),
        (200, "blue".into())
    );
}

#[test]
fn a_canary_takes_its_share_survives_a_proxy_restart_and_is_promoted_or_aborted() {
    let svc = TestService::new("ca");
    svc.push(&["a000001", "a000002", "a000003"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    let (code, out, _) = deploy(&path, &["a000001"]);
    assert_eq!(code, Some(0), "{out}");

    let load = Recorder::start(svc.public_port);
    let (code, out, _) = deploy(&path, &["a000002", "--canary", "25", "--watch", "5s"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("stays at 25 %"), "{out}");
    // The share while it is in canary, after the deploy returned.
    let load_done = load.finish();
    let before = load_done.len();
    let load = Recorder::start(svc.public_port);
    std::thread::sleep(Duration::from_secs(4));
    let seen = load.finish();
    let colors = by_color(&seen);
    let (green, gf) = colors.get("green").copied().unwrap_or_default();
    let (blue, bf) = colors.get("blue").copied().unwrap_or_default();
    let share = green as f64 * 100.0 / (green + blue).max(1) as f64;
    eprintln!(
        "canary 25 %: {green} of {} requests to green ({share:.1} %)",
        green + blue
    );
    assert!(
        green + blue >= 200,
        "{colors:?} ({before} during the deploy)"
    );
    assert_eq!((gf, bf), (0, 0), "{colors:?}");
    assert!(
        (20.0..=30.0).contains(&share),
        "share {share} %: {colors:?}"
    );

    let (code, v) = status_json(&path);
    let s = v["hosts"][0]["services"][0].clone();
    assert_eq!(code, Some(0), "a canary is not a problem: {s:#}");
    assert_eq!(s["canary"]["percent"], 25, "{s:#}");
    assert_eq!(s["canary"]["color"], "green", "{s:#}");
    assert_eq!(s["live_color"], "blue", "{s:#}");
    assert!(
        s["settling"]
            .as_str()
            .is_some_and(|t| t.starts_with("canary 25 %")),
        "{s:#}"
    );
    let table = text(&deckhand(&path, &["status", "--env", "lab"]));
    assert!(table.contains("canary 25 %"), "{table}");

    // A proxy restart keeps the canary (the weights are on disk too).
    docker_ok(&["restart", &format!("{}-proxy", svc.name)]);
    let mut after_restart = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while after_restart.len() < 2 && Instant::now() < deadline {
        if let Ok((200, c)) = public_get(svc.public_port, "/") {
            after_restart.insert(c, ());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(after_restart.len(), 2, "both colors serve after a restart");

    // promote: all traffic to green, blue stopped.
    let out = deckhand(&path, &["promote", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for _ in 0..30 {
        assert_eq!(
            public_get(svc.public_port, "/").expect("public"),
            (200, "green".into())
        );
    }
    assert_eq!(svc.container_state("blue").as_deref(), Some("exited"));
    let s = service_json(&path);
    assert!(s["canary"].is_null() && s["settling"].is_null(), "{s:#}");
    assert_eq!(s["live_sha"], "a000002", "{s:#}");

    // A second canary, aborted by rollback: green alone serves, the canary is stopped.
    let (code, out, _) = deploy(&path, &["a000003", "--canary", "50", "--watch", "2s"]);
    assert_eq!(code, Some(0), "{out}");
    let out = deckhand(&path, &["rollback", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for _ in 0..30 {
        assert_eq!(
            public_get(svc.public_port, "/").expect("public"),
            (200, "green".into())
        );
    }
    assert_eq!(svc.container_state("blue").as_deref(), Some("exited"));
    let s = service_json(&path);
    assert!(s["canary"].is_null(), "{s:#}");
    assert_eq!(s["live_sha"], "a000002", "{s:#}");
    let audit = audit_records(&sshd.state_dir());
    assert!(audit.iter().any(|r| r["outcome"] == "canary"), "{audit:#?}");
}

#[test]
fn a_failing_canary_is_stopped_and_all_traffic_goes_back_to_stable() {
    let svc = TestService::new("cf");
    svc.push(&["a000001", "fa15001"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "watch_min_requests = 10\n");
    let (code, out, _) = deploy(&path, &["a000001"]);
    assert_eq!(code, Some(0), "{out}");
    let load = Recorder::start(svc.public_port);
    let (code, out, _) = deploy(&path, &["fa15001", "--canary", "30", "--watch", "10s"]);
    let seen = load.finish();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("against 0 % of the stable color's"), "{out}");
    let colors = by_color(&seen);
    assert_eq!(colors.get("blue").map(|c| c.1), Some(0), "{colors:?}");
    eprintln!("failing canary: {colors:?}");
    for _ in 0..30 {
        assert_eq!(
            public_get(svc.public_port, "/").expect("public"),
            (200, "blue".into())
        );
    }
    assert_eq!(svc.container_state("green").as_deref(), Some("exited"));
    assert!(service_json(&path)["canary"].is_null());
}

#[test]
fn a_deckhand_killed_during_the_watch_leaves_both_colors_and_the_next_deploy_settles() {
    let svc = TestService::new("wk");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "watch = \"60s\"\n");
    let (code, out, _) = deploy(&path, &["a000001", "--watch", "0s"]);
    assert_eq!(code, Some(0), "{out}");
    let reached = deploy_interrupted_at(&path, "a000002", "watch", |child| {
        std::thread::sleep(Duration::from_millis(1500));
        let _ = child.kill();
    });
    assert!(reached.is_some(), "the watch step was reached");
    // The route is as it was (green, switched before the watch) and blue is still warm.
    for _ in 0..20 {
        assert_eq!(
            public_get(svc.public_port, "/").expect("public"),
            (200, "green".into())
        );
    }
    assert_eq!(svc.container_state("blue").as_deref(), Some("running"));
    let s = service_json(&path);
    assert!(
        s["settling"]
            .as_str()
            .is_some_and(|t| t.starts_with("watch interrupted")),
        "{s:#}"
    );
    let table = text(&deckhand(&path, &["status", "--env", "lab"]));
    assert!(table.contains("watch interrupted"), "{table}");
    // The killed run's lock is stale: cleared, then the same deploy settles it.
    unlock_ok(&path, "a kill during the watch");
    let (code, out, _) = deploy(&path, &["a000002", "--watch", "0s"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(svc.container_state("blue").as_deref(), Some("exited"));
    assert!(service_json(&path)["settling"].is_null());
}

#[test]
fn a_breach_on_the_first_host_rolls_it_back_and_stops_the_environment_run() {
    // Two hosts behind two sshd instances (one engine underneath; host 2 is never reached).
    let svc = TestService::new("wm");
    svc.push(&["a000001", "fa15001"]);
    let (s1, s2) = (SshServer::start(), SshServer::start());
    let (_d, path) = write_config(&format!(
        "{}\n{}\n{}",
        svc.service_toml("watch_min_requests = 10\n"),
        s1.host_toml("lab", "lab-1"),
        s2.host_toml("lab", "lab-2")
    ));
    let out = deckhand(
        &path,
        &[
            "deploy", "a000001", "--env", "lab", "--yes", "--host", "lab-1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let load = Recorder::start(svc.public_port);
    let (code, t, _) = deploy(&path, &["fa15001", "--watch", "10s"]);
    let seen = load.finish();
    assert_eq!(code, Some(1), "{t}");
    let table: Vec<&str> = t.lines().skip_while(|l| !l.starts_with("HOST")).collect();
    assert!(
        table.iter().any(|l| l.starts_with("lab-1")
            && l.contains("ROLLED BACK by the watch")
            && l.contains("a000001 (blue)")),
        "{t}"
    );
    assert!(
        table
            .iter()
            .any(|l| l.starts_with("lab-2") && l.contains("not attempted")),
        "{t}"
    );
    assert!(
        !t.contains("[lab-2] ▸ take the lock"),
        "host 2 must not be touched: {t}"
    );
    assert_eq!(by_color(&seen).get("blue").map(|c| c.1), Some(0));
}

#[test]
fn rollback_waits_for_no_watch_unless_asked() {
    let svc = TestService::new("rw");
    svc.push(&["a000001", "fa15001"]);
    let sshd = SshServer::start();
    // The service watches for a minute: a rollback must not wait for it.
    let (_d, path) = ssh_config(&svc, &sshd, "watch = \"60s\"\n");
    let (code, out, _) = deploy(&path, &["a000001", "--watch", "0s"]);
    assert_eq!(code, Some(0), "{out}");
    // Unwatched, the failing release goes live and stays.
    let (code, out, _) = deploy(&path, &["fa15001", "--watch", "0s"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        public_get(svc.public_port, "/").expect("public"),
        (500, "green".into())
    );
    let t = Instant::now();
    let out = deckhand(&path, &["rollback", "--env", "lab", "--yes"]);
    let (rollback_out, took) = (text(&out), t.elapsed());
    assert_eq!(out.status.code(), Some(0), "{rollback_out}");
    assert!(
        !rollback_out.contains("watch the new color"),
        "{rollback_out}"
    );
    assert!(took < Duration::from_secs(30), "no watch window: {took:?}");
    assert_eq!(
        public_get(svc.public_port, "/").expect("public"),
        (200, "blue".into())
    );
    // Asked: the rollback is watched (a000001 answers its pages, so the window passes).
    let (code, out, _) = deploy(&path, &["fa15001", "--watch", "0s"]);
    assert_eq!(code, Some(0), "{out}");
    let out = deckhand(
        &path,
        &["rollback", "--env", "lab", "--yes", "--watch", "3s"],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("watch the new color") && t.contains("passed:"),
        "{t}"
    );
}

#[test]
fn sigterm_during_the_watch_ends_it_cleanly_and_nothing_is_left_for_the_next_deploy() {
    // A CI runner cancelling the job: SIGTERM, not SIGKILL. The run must end promptly on its
    // own terms (lock released, outcome on the record), with the new color serving and the old
    // one warm, and the next deploy must need no `unlock`.
    let svc = TestService::new("wt");
    svc.push(&["a000001", "a000002", "a000003"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "watch = \"60s\"\n");
    let (code, out, _) = deploy(&path, &["a000001", "--watch", "0s"]);
    assert_eq!(code, Some(0), "{out}");
    let load = Recorder::start(svc.public_port);
    let mut run = JsonRun::spawn(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
    assert!(run.wait_for_step("watch"), "the watch step was reached");
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Instant::now();
    signal(run.child.id(), "TERM");
    let (code, t) = run.finish();
    let ended_in = sent.elapsed();
    let seen = load.finish();
    assert!(
        ended_in < Duration::from_secs(10),
        "SIGTERM ended the watch in {ended_in:?}"
    );
    assert_ne!(code, Some(0), "an interrupted watch is not a success: {t}");
    assert!(code.is_some(), "not a death by signal: {t}");
    let lock = sshd
        .state_dir()
        .join("locks")
        .join(format!("{}.lock", svc.name));
    assert!(
        std::fs::symlink_metadata(&lock).is_err(),
        "the lock was released: {t}"
    );
    assert_eq!(
        public_get(svc.public_port, "/").expect("public"),
        (200, "green".into())
    );
    assert_eq!(svc.container_state("blue").as_deref(), Some("running"));
    let failed: Vec<_> = seen.iter().filter(|s| s.1 != 200).collect();
    assert!(
        failed.is_empty(),
        "failed answers: {:?}",
        &failed[..failed.len().min(5)]
    );
    let audit = audit_records(&sshd.state_dir());
    let last = audit.last().expect("audited");
    assert_eq!(last["action"], "deploy", "{last:#}");
    assert_ne!(
        last["outcome"], "started",
        "the end is on the record: {last:#}"
    );
    // No unlock needed: the next deploy settles the interrupted watch and goes on.
    let (code, out, _) = deploy(&path, &["a000003", "--watch", "0s"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        public_get(svc.public_port, "/version").expect("public").0,
        200
    );
    assert!(service_json(&path)["settling"].is_null());
}
