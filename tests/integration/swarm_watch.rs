//! The watch window on a Swarm (issue 16, as issue 13 on a droplet), on a one-node Swarm of
//! the test bed (test-support/src/swarm.rs; nodes do not matter here): a release whose pages
//! answer 500 while `/health` stays healthy is rolled back by the watch under keep-alive and
//! fresh clients, the old color losing no request; a release that passes its window keeps the
//! old color's replicas up until the window ends, then scales it to 0; a deckhand SIGKILLed
//! during the window leaves both colors up and the next deploy settles it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::swarm::{MANAGER, SwarmCluster};
use crate::harness::*;

/// One answer a client saw: when, status (0: no answer), color (or the error).
type Seen = (Instant, u16, String);

fn config(swarm: &SwarmCluster, svc: &TestService, extra: &str) -> (tempfile::TempDir, PathBuf) {
    // A first deploy pulls on the node: 20 s timed out on this machine under load.
    let service = svc
        .service_toml(extra)
        .replace("health_timeout = \"20s\"", "health_timeout = \"60s\"");
    write_config(&format!(
        "{service}\n{}name = \"mgr\"\n",
        swarm.swarm_env_toml("sw", 2)
    ))
}

/// The first release, GOOD_SHAS[0], deployed with `extra` flags; it must succeed.
fn first_deploy(swarm: &SwarmCluster, path: &std::path::Path, extra: &[&str]) {
    let mut args = vec!["deploy", GOOD_SHAS[0], "--env", "sw", "--yes"];
    args.extend_from_slice(extra);
    let out = deckhand(path, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "first deploy: {}\n{}",
        text(&out),
        swarm.diagnose()
    );
}

/// Clients on pages (`/` and `/version`, not `/health`) recording every answer: `fresh`
/// threads open a connection per request, `kept` threads keep one open (reopened only after
/// a failure, which is recorded).
struct Users {
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<(Vec<Seen>, u64)>>,
}

impl Users {
    fn start(addr: SocketAddr, fresh: usize, kept: usize) -> Users {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for t in 0..fresh + kept {
            let flag = stop.clone();
            let keep = t >= fresh;
            handles.push(std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut conn: Option<BufReader<TcpStream>> = None;
                let mut connections = 0u64;
                let mut i = t as u64;
                while !flag.load(Ordering::Relaxed) {
                    i += 1;
                    let path = if i.is_multiple_of(2) { "/" } else { "/version" };
                    let answer = if keep {
                        if conn.is_none() {
                            connections += 1;
                            conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                                .ok()
                                .map(|s| {
                                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                                    BufReader::new(s)
                                });
                        }
                        match conn.as_mut().map(|c| kept_get(c, path)) {
                            Some(Ok(a)) => Ok(a),
                            Some(Err(e)) => {
                                conn = None;
                                Err(e)
                            }
                            None => Err("connect failed".to_string()),
                        }
                    } else {
                        get_at(addr, path)
                    };
                    match answer {
                        Ok((code, color)) => seen.push((Instant::now(), code, color)),
                        Err(e) => seen.push((Instant::now(), 0, e)),
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                (seen, connections)
            }));
        }
        Users { stop, handles }
    }

    /// Every answer in time order, and the keep-alive connections opened.
    fn finish(self) -> (Vec<Seen>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        let mut connections = 0;
        for h in self.handles {
            let (s, c) = h.join().expect("client thread");
            all.extend(s);
            connections += c;
        }
        all.sort_by_key(|s| s.0);
        (all, connections)
    }
}

/// One request on a kept-alive connection: status and the color header.
fn kept_get(c: &mut BufReader<TcpStream>, path: &str) -> Result<(u16, String), String> {
    c.get_mut()
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut line = String::new();
    if c.read_line(&mut line).map_err(|e| format!("read: {e}"))? == 0 {
        return Err("closed by the server".into());
    }
    let code = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let (mut color, mut length) = (String::new(), 0usize);
    loop {
        let mut h = String::new();
        c.read_line(&mut h).map_err(|e| format!("read: {e}"))?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "x-deckhand-color" => color = v.trim().to_string(),
                "content-length" => length = v.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    c.read_exact(&mut body).map_err(|e| format!("body: {e}"))?;
    Ok((code, color))
}

/// Per color: (answers, answers that were not 200).
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

fn replicas(swarm: &SwarmCluster, svc: &TestService, color: &str) -> String {
    let name = format!("{}-{color}", svc.name);
    swarm
        .docker_ok(
            MANAGER,
            &[
                "service",
                "ls",
                "--filter",
                &format!("name={name}"),
                "--format",
                "{{.Name}} {{.Replicas}}",
            ],
        )
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_string))
        .unwrap_or_default()
}

/// Swarm stops tasks after a scale to 0 on its own time: waits for `want`.
fn wait_replicas(swarm: &SwarmCluster, svc: &TestService, color: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut now = replicas(swarm, svc, color);
    while now != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        now = replicas(swarm, svc, color);
    }
    assert_eq!(now, want, "{}-{color}\n{}", svc.name, swarm.diagnose());
}

fn ledger(path: &Path) -> Vec<(String, String)> {
    let h = deckhand(path, &["history", "--env", "sw", "--output", "json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&h.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&h)));
    v[0]["ledger"]
        .as_array()
        .unwrap_or_else(|| panic!("no ledger in history: {v:#}"))
        .iter()
        .map(|r| {
            (
                r["sha"].as_str().unwrap_or("").to_string(),
                r["ended"].as_str().unwrap_or("live").to_string(),
            )
        })
        .collect()
}

#[test]
fn swarm_a_release_that_fails_its_pages_is_rolled_back_by_the_watch_under_load() {
    let swarm = SwarmCluster::start(1);
    let svc = TestService::new("swr");
    svc.push(&[GOOD_SHAS[0], "fa15001"]);
    let (_d, path) = config(&swarm, &svc, "watch_min_requests = 20\n");
    let public = swarm.node_addr(MANAGER, svc.public_port);
    first_deploy(&swarm, &path, &[]);
    let hook = Webhook::start();

    let users = Users::start(public, 2, 4);
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let out = deckhand_env(
        &path,
        &[
            "deploy", "fa15001", "--env", "sw", "--yes", "--watch", "30s",
        ],
        &[("DECKHAND_WEBHOOK_URL", hook.url.as_str())],
    );
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let (seen, connections) = users.finish();
    let out_text = text(&out);
    // Today's code has no watch on a Swarm: exit 0 with fa15001 serving.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{out_text}\n{}",
        swarm.diagnose()
    );
    for needle in [
        "rolled back automatically by the watch",
        "answered 5xx (limit 5 %)",
        "500×",
        "failing paths: /",
        "/version (",
        "page failed (DEMO_PAGES_FAIL)",
        &format!("{} (blue) serves again", GOOD_SHAS[0]),
    ] {
        assert!(out_text.contains(needle), "`{needle}` missing:\n{out_text}");
    }

    // Users: blue before and after, green only between the switch and the switch back.
    let colors = by_color(&seen);
    let (green, green_failed) = colors.get("green").copied().unwrap_or_default();
    let (blue, blue_failed) = colors.get("blue").copied().unwrap_or_default();
    assert!(green > 0, "the failing release took traffic: {colors:?}");
    assert_eq!(blue_failed, 0, "blue failed a request: {colors:?}");
    assert_eq!(
        green_failed, green,
        "green answered 500 to every page: {colors:?}"
    );
    assert!(
        colors.keys().all(|c| c == "blue" || c == "green"),
        "every request was answered by a color: {colors:?}"
    );
    assert_eq!(connections, 4, "a kept-alive connection was closed");
    let first = seen.iter().find(|s| s.2 == "green").map(|s| s.0);
    let last = seen.iter().rev().find(|s| s.2 == "green").map(|s| s.0);
    let (Some(first), Some(last)) = (first, last) else {
        unreachable!("green answered")
    };
    let after: Vec<&Seen> = seen.iter().filter(|s| s.0 > last).collect();
    assert!(
        !after.is_empty() && after.iter().all(|s| s.1 == 200 && s.2 == "blue"),
        "blue alone after the switch back"
    );
    eprintln!(
        "swarm watch rollback: the failing release answered {green} requests ({blue} by blue, \
         {} in all), {:.0} ms from its first failing answer to the switch back; deploy took {:.1} s",
        seen.len(),
        (last - first).as_secs_f64() * 1000.0,
        took.as_secs_f64()
    );
    assert!(
        last - first < Duration::from_secs(30),
        "rolled back within the window"
    );

    // The Swarm: blue keeps its 2 replicas, green scaled to 0 with its spec kept.
    wait_replicas(&swarm, &svc, "green", "0/0");
    assert_eq!(
        replicas(&swarm, &svc, "blue"),
        "2/2",
        "{}",
        swarm.diagnose()
    );
    assert_eq!(get_at(public, "/"), Ok((200, "blue".into())));

    // Audit, webhook, alert and ledger, in the manager's state directory as on a droplet.
    let audit = audit_records(&swarm.state_dir());
    let rec = audit.last().expect("audit");
    assert_eq!(rec["outcome"], "rolled_back", "{rec:#}");
    assert!(
        rec["details"]
            .as_str()
            .is_some_and(|d| d.contains("rolled back automatically") && d.contains("/version")),
        "{rec:#}"
    );
    let hooks = hook.received();
    assert!(
        hooks
            .iter()
            .any(|h| h.contains("FAILED") && h.contains("rolled back automatically")),
        "{hooks:?}"
    );
    let alerts = deckhand(&path, &["alerts", "--env", "sw"]);
    assert!(text(&alerts).contains("rolled_back"), "{}", text(&alerts));
    assert_eq!(
        ledger(&path),
        [
            (
                "fa15001".to_string(),
                "rolled_back_automatically".to_string()
            ),
            (GOOD_SHAS[0].to_string(), "live".to_string()),
        ]
    );

    // The same release as a 30 % canary: compared with blue, it breaches; blue alone serves
    // again and green goes back to 0 (today: refused, exit 2).
    let users = Users::start(public, 2, 2);
    let out = deckhand(
        &path,
        &[
            "deploy", "fa15001", "--canary", "30", "--watch", "30s", "--env", "sw", "--yes",
        ],
    );
    let (seen, connections) = users.finish();
    let out_text = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{out_text}\n{}",
        swarm.diagnose()
    );
    assert!(
        out_text.contains("the stable color answered")
            && out_text.contains(&format!("{} (blue) serves again", GOOD_SHAS[0])),
        "{out_text}"
    );
    let colors = by_color(&seen);
    let (green, green_failed) = colors.get("green").copied().unwrap_or_default();
    let (blue, blue_failed) = colors.get("blue").copied().unwrap_or_default();
    assert!(
        green > 0 && green_failed == green && blue > 0 && blue_failed == 0,
        "{colors:?}"
    );
    assert!(
        colors.keys().all(|c| c == "blue" || c == "green"),
        "{colors:?}"
    );
    assert_eq!(connections, 2, "a kept-alive connection was closed");
    eprintln!("swarm failing canary: {colors:?}");
    wait_replicas(&swarm, &svc, "green", "0/0");
    let s = service_json(&path);
    assert!(s["settling"].is_null() && s["canary"].is_null(), "{s:#}");
    assert_eq!(
        audit_records(&swarm.state_dir()).last().expect("audit")["outcome"],
        "rolled_back"
    );
    assert_eq!(
        ledger(&path),
        [
            (
                "fa15001".to_string(),
                "rolled_back_automatically".to_string()
            ),
            (
                "fa15001".to_string(),
                "rolled_back_automatically".to_string()
            ),
            (GOOD_SHAS[0].to_string(), "live".to_string()),
        ]
    );
}

#[test]
fn swarm_a_release_that_passes_its_window_keeps_the_old_replicas_up_until_it_ends() {
    let swarm = SwarmCluster::start(1);
    let svc = TestService::new("swp");
    svc.push(&GOOD_SHAS[..2]);
    // The service's own window (no --watch): 8 s.
    let (_d, path) = config(&swarm, &svc, "watch = \"8s\"\n");
    let public = swarm.node_addr(MANAGER, svc.public_port);
    first_deploy(&swarm, &path, &[]);

    let users = Users::start(public, 2, 4);
    let deploy = {
        let path = path.clone();
        std::thread::spawn(move || {
            let t = Instant::now();
            let out = deckhand(&path, &["deploy", GOOD_SHAS[1], "--env", "sw", "--yes"]);
            (out, t.elapsed())
        })
    };
    // Well into the window (5 s after green first answered) blue still has both replicas
    // (today: scaled to 0 right after the drain).
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut first_green: Option<Instant> = None;
    let mut seen_in_window = false;
    while Instant::now() < deadline && !deploy.is_finished() {
        if get_at(public, "/").is_ok_and(|r| r.1 == "green") {
            let since = *first_green.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(5) {
                seen_in_window = replicas(&swarm, &svc, "blue") == "2/2";
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (out, took) = deploy.join().expect("deploy thread");
    let (seen, connections) = users.finish();
    let out_text = text(&out);
    assert_eq!(out.status.code(), Some(0), "{out_text}");
    assert!(
        seen_in_window,
        "blue kept 2/2 replicas while green served in the window:\n{out_text}"
    );
    assert!(out_text.contains("passed: "), "{out_text}");
    // The window ran its length before the old color went (today: no watch step at all).
    assert!(took >= Duration::from_secs(8), "{took:?}\n{out_text}");
    let colors = by_color(&seen);
    assert!(
        colors
            .iter()
            .all(|(c, (_, failed))| *failed == 0 && (c == "blue" || c == "green")),
        "every request answered 200 by a color: {colors:?}"
    );
    assert_eq!(connections, 4, "a kept-alive connection was closed");
    eprintln!("swarm passing watch: deploy {took:?}, answers {colors:?}");

    wait_replicas(&swarm, &svc, "blue", "0/0");
    assert_eq!(
        replicas(&swarm, &svc, "green"),
        "2/2",
        "{}",
        swarm.diagnose()
    );
    let audit = audit_records(&swarm.state_dir());
    assert_eq!(audit.last().expect("audit")["outcome"], "success");
    assert_eq!(
        ledger(&path),
        [
            (GOOD_SHAS[0].to_string(), "replaced".to_string()),
            (GOOD_SHAS[1].to_string(), "live".to_string()),
        ]
    );
}

fn service_json(path: &Path) -> serde_json::Value {
    let out = deckhand(path, &["status", "--env", "sw", "--output", "json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    v["hosts"][0]["services"][0].clone()
}

/// The share of page requests (fresh and kept-alive connections) the canary's color answered
/// over `for_`.
fn measure_share(
    addr: SocketAddr,
    canary: &str,
    for_: Duration,
) -> (f64, BTreeMap<String, (u64, u64)>) {
    let users = Users::start(addr, 2, 2);
    std::thread::sleep(for_);
    let (seen, _) = users.finish();
    let colors = by_color(&seen);
    let total: u64 = colors.values().map(|c| c.0).sum();
    let k = colors.get(canary).map_or(0, |c| c.0);
    (k as f64 * 100.0 / total.max(1) as f64, colors)
}

#[test]
fn swarm_a_canary_takes_its_share_survives_a_proxy_restart_is_promoted_and_aborted() {
    let swarm = SwarmCluster::start(1);
    let svc = TestService::new("swk");
    svc.push(&GOOD_SHAS[..3]);
    let (_d, path) = config(&swarm, &svc, "");
    let public = swarm.node_addr(MANAGER, svc.public_port);
    first_deploy(&swarm, &path, &[]);
    // Users all along: nothing below may fail a request or close a kept-alive connection.
    let users = Users::start(public, 1, 3);

    // Today's code refuses a canary on a Swarm (exit 2).
    let out = deckhand(
        &path,
        &[
            "deploy",
            GOOD_SHAS[1],
            "--canary",
            "25",
            "--watch",
            "3s",
            "--env",
            "sw",
            "--yes",
        ],
    );
    let out_text = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{out_text}\n{}",
        swarm.diagnose()
    );
    assert!(out_text.contains("stays at 25 %"), "{out_text}");
    let s = service_json(&path);
    assert!(
        s["settling"]
            .as_str()
            .is_some_and(|t| t.starts_with("canary 25 % (green")),
        "{s:#}"
    );
    assert_eq!(s["live_sha"], GOOD_SHAS[0], "{s:#}");
    assert_eq!(replicas(&swarm, &svc, "blue"), "2/2");
    assert_eq!(replicas(&swarm, &svc, "green"), "2/2");
    let (share, colors) = measure_share(public, "green", Duration::from_secs(4));
    eprintln!("swarm canary 25 %: {share:.1} % to green, {colors:?}");
    assert!(
        (share - 25.0).abs() <= 5.0,
        "share {share:.1} %: {colors:?}"
    );

    // The proxy's task is replaced (its container removed): the new task starts from the file
    // on the manager, with the same share.
    let proxy = swarm.docker_ok(
        MANAGER,
        &[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={}-proxy", svc.name),
        ],
    );
    let proxy = proxy.trim().to_string();
    assert!(!proxy.is_empty(), "{}", swarm.diagnose());
    let (mut seen, connections) = users.finish();
    assert_eq!(
        connections, 3,
        "a kept-alive connection was closed by the canary"
    );
    swarm.docker_ok(MANAGER, &["rm", "-f", &proxy]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while get_at(public, "/").map(|r| r.0) != Ok(200) {
        assert!(
            Instant::now() < deadline,
            "the proxy came back\n{}",
            swarm.diagnose()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (share, colors) = measure_share(public, "green", Duration::from_secs(4));
    eprintln!("swarm canary 25 % after a proxy restart: {share:.1} % to green, {colors:?}");
    assert!(
        (share - 25.0).abs() <= 5.0,
        "share {share:.1} %: {colors:?}"
    );
    let users = Users::start(public, 1, 3);

    // promote: all traffic to green, blue scaled to 0.
    let out = deckhand(&path, &["promote", "--env", "sw", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for _ in 0..30 {
        assert_eq!(get_at(public, "/"), Ok((200, "green".into())));
    }
    wait_replicas(&swarm, &svc, "blue", "0/0");
    let s = service_json(&path);
    assert!(s["canary"].is_null() && s["settling"].is_null(), "{s:#}");
    assert_eq!(s["live_sha"], GOOD_SHAS[1], "{s:#}");

    // A second canary (blue), aborted by a rollback: green alone again, blue back to 0.
    let out = deckhand(
        &path,
        &[
            "deploy",
            GOOD_SHAS[2],
            "--canary",
            "30",
            "--watch",
            "2s",
            "--env",
            "sw",
            "--yes",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (share, colors) = measure_share(public, "blue", Duration::from_secs(3));
    assert!(
        (share - 30.0).abs() <= 5.0,
        "share {share:.1} %: {colors:?}"
    );
    let out = deckhand(&path, &["rollback", "--env", "sw", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for _ in 0..30 {
        assert_eq!(get_at(public, "/"), Ok((200, "green".into())));
    }
    wait_replicas(&swarm, &svc, "blue", "0/0");
    let (later, connections) = users.finish();
    assert_eq!(connections, 3, "a kept-alive connection was closed");
    seen.extend(later);
    let colors = by_color(&seen);
    assert!(
        colors
            .iter()
            .all(|(c, (_, failed))| *failed == 0 && (c == "blue" || c == "green")),
        "every request answered 200 by a color: {colors:?}"
    );
    eprintln!("swarm canary, promote, abort: answers {colors:?}");
    let s = service_json(&path);
    assert!(s["settling"].is_null(), "{s:#}");
    assert_eq!(s["live_sha"], GOOD_SHAS[1], "{s:#}");

    let audit = audit_records(&swarm.state_dir());
    let ends: Vec<(String, String)> = audit
        .iter()
        .filter(|r| r["outcome"] != "started")
        .map(|r| {
            (
                r["action"].as_str().unwrap_or("").to_string(),
                r["outcome"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        ends,
        [
            ("deploy", "success"),
            ("deploy", "canary"),
            ("deploy", "success"),
            ("deploy", "canary"),
            ("rollback", "success"),
        ]
        .map(|(a, o)| (a.to_string(), o.to_string())),
        "{audit:#?}"
    );
    assert_eq!(
        ledger(&path),
        [
            (GOOD_SHAS[0].to_string(), "replaced".to_string()),
            (GOOD_SHAS[1].to_string(), "live".to_string()),
        ]
    );
}

#[test]
fn swarm_a_deckhand_killed_during_the_watch_leaves_both_colors_and_the_next_deploy_settles() {
    let swarm = SwarmCluster::start(1);
    let svc = TestService::new("swx");
    svc.push(&GOOD_SHAS[..2]);
    let (_d, path) = config(&swarm, &svc, "watch = \"60s\"\n");
    let public = swarm.node_addr(MANAGER, svc.public_port);
    first_deploy(&swarm, &path, &["--watch", "0s"]);

    // Users through the kill and the settling deploy: none of it may fail a request.
    let users = Users::start(public, 2, 4);
    let mut run = JsonRun::spawn(&path, &["deploy", GOOD_SHAS[1], "--env", "sw", "--yes"]);
    assert!(
        run.wait_for_step("watch"),
        "the watch step was reached\n{}",
        swarm.diagnose()
    );
    std::thread::sleep(Duration::from_millis(2000));
    run.child.kill().expect("SIGKILL deckhand");
    let (code, t) = run.finish();
    assert_eq!(code, None, "died by the signal: {t}");
    let killed_at = Instant::now();

    // Nothing more changed: green serves, blue keeps its replicas, the proxy's file names green.
    for _ in 0..20 {
        assert_eq!(get_at(public, "/"), Ok((200, "green".into())));
    }
    assert_eq!(
        replicas(&swarm, &svc, "blue"),
        "2/2",
        "{}",
        swarm.diagnose()
    );
    assert_eq!(
        replicas(&swarm, &svc, "green"),
        "2/2",
        "{}",
        swarm.diagnose()
    );
    let out = deckhand(&path, &["status", "--env", "sw", "--output", "json"]);
    // Both colors healthy is no problem for `status` (exit 5 is for one): exit 0.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = service_json(&path);
    assert_eq!(
        s["settling"], "watch interrupted (green serves, blue warm)",
        "{s:#}"
    );
    assert_eq!(s["live_sha"], GOOD_SHAS[1], "{s:#}");
    let table = deckhand(&path, &["status", "--env", "sw"]);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table));
    assert!(
        text(&table).contains("watch interrupted"),
        "{}",
        text(&table)
    );

    // The killed run's lock is dead, as on a droplet: the next deploy is refused (exit 3,
    // naming the take-over), touching nothing; with --take-over-stale it settles it.
    let lock = swarm
        .state_dir()
        .join("locks")
        .join(format!("{}.lock", svc.name));
    assert!(
        std::fs::symlink_metadata(&lock).is_ok(),
        "the killed run's lock is left"
    );
    let out = deckhand(
        &path,
        &[
            "deploy",
            GOOD_SHAS[1],
            "--env",
            "sw",
            "--yes",
            "--watch",
            "0s",
        ],
    );
    let out_text = text(&out);
    assert_eq!(out.status.code(), Some(3), "{out_text}");
    assert!(
        out_text.contains("its process is gone") && out_text.contains("--take-over-stale"),
        "{out_text}"
    );
    assert_eq!(
        replicas(&swarm, &svc, "blue"),
        "2/2",
        "{}",
        swarm.diagnose()
    );
    let green_tasks = || {
        swarm.docker_ok(
            MANAGER,
            &[
                "service",
                "ps",
                "-q",
                "--filter",
                "desired-state=running",
                &format!("{}-green", svc.name),
            ],
        )
    };
    let green_before = green_tasks();
    let t = Instant::now();
    let out = deckhand(
        &path,
        &[
            "deploy",
            GOOD_SHAS[1],
            "--env",
            "sw",
            "--yes",
            "--watch",
            "0s",
            "--take-over-stale",
        ],
    );
    let settled_in = t.elapsed();
    let out_text = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{out_text}\n{}",
        swarm.diagnose()
    );
    // It finishes what the killed run began: the old color goes, the serving tasks stay.
    assert!(
        out_text.contains("stop the other color, which still runs"),
        "{out_text}"
    );
    wait_replicas(&swarm, &svc, "blue", "0/0");
    assert_eq!(
        replicas(&swarm, &svc, "green"),
        "2/2",
        "{}",
        swarm.diagnose()
    );
    assert_eq!(
        green_tasks(),
        green_before,
        "green's tasks were not replaced"
    );
    std::thread::sleep(Duration::from_millis(500));
    let (seen, connections) = users.finish();
    for _ in 0..20 {
        assert_eq!(get_at(public, "/"), Ok((200, "green".into())));
    }
    let s = service_json(&path);
    assert!(s["settling"].is_null(), "{s:#}");
    assert_eq!(s["live_sha"], GOOD_SHAS[1], "{s:#}");
    assert!(
        std::fs::symlink_metadata(&lock).is_err(),
        "the settling run released the lock"
    );

    let colors = by_color(&seen);
    assert!(
        colors
            .iter()
            .all(|(c, (_, failed))| *failed == 0 && (c == "blue" || c == "green")),
        "every request answered 200 by a color: {colors:?}"
    );
    assert_eq!(connections, 4, "a kept-alive connection was closed");
    let after_kill = seen.iter().filter(|s| s.0 > killed_at).count();
    assert!(after_kill > 0, "users were served after the kill");
    eprintln!(
        "swarm kill during the watch: settled in {:.1} s; answers {colors:?} ({after_kill} after the kill)",
        settled_in.as_secs_f64()
    );

    // Audit: the killed deploy's `started` without an end, then the take-over and the settling
    // deploy's records.
    let audit = audit_records(&swarm.state_dir());
    let rows: Vec<(String, String, String)> = audit
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or("").to_string(),
                r["outcome"].as_str().unwrap_or("").to_string(),
                r["to_sha"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want = [
        ("deploy", "started", GOOD_SHAS[0]),
        ("deploy", "success", GOOD_SHAS[0]),
        ("deploy", "started", GOOD_SHAS[1]),
        ("take_over_lock", "success", ""),
        ("deploy", "started", GOOD_SHAS[1]),
        ("deploy", "success", GOOD_SHAS[1]),
    ]
    .map(|(a, o, s)| (a.to_string(), o.to_string(), s.to_string()));
    assert_eq!(rows, want, "{audit:#?}");
    assert!(
        audit[3]["details"]
            .as_str()
            .is_some_and(|d| d.contains("took over the dead lock")),
        "{:#}",
        audit[3]
    );
    assert_eq!(
        ledger(&path),
        [
            (GOOD_SHAS[0].to_string(), "replaced".to_string()),
            (GOOD_SHAS[1].to_string(), "live".to_string()),
        ]
    );
}
