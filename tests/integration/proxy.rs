//! The proxy (HAProxy, switched in memory): in-flight requests across a switch, restarts,
//! config changes, failed updates, and hosts set up with the earlier nginx proxy.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;

/// A request on its own thread: its answer and how long it took.
type SlowRequest = std::thread::JoinHandle<(Result<(u16, String), String>, Duration)>;

fn deploy_ok(path: &std::path::Path, sha: &str) -> String {
    let out = deckhand(path, &["deploy", sha, "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "deploy {sha}: {}", text(&out));
    text(&out)
}

fn service_json(path: &std::path::Path) -> (Option<i32>, serde_json::Value) {
    let (code, v) = status_json(path);
    (code, v["hosts"][0]["services"][0].clone())
}

/// Waits until the public port answers 200 from `color` (after a restart).
fn wait_served_by(port: u16, color: &str, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        let last = public_get(port, "/");
        if matches!(&last, Ok((200, c)) if c == color) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{last:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_slow_request_in_flight_across_a_switch_completes() {
    let svc = TestService::new("sl");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    // Every answer but /health takes 3 s. A stop is a SIGKILL after 1 s, so the app's own
    // graceful shutdown cannot hide an old color stopped with a request in flight.
    let (_d, path) = ssh_config(
        &svc,
        &sshd,
        "env = { DEMO_RESPONSE_DELAY_MS = \"3000\" }\nstop_timeout = \"1s\"\n",
    );
    deploy_ok(&path, "a000001");

    // The slow request starts just before the switch (when the proxy step starts), so blue
    // serves it while green goes live.
    let slow: Arc<Mutex<Option<SlowRequest>>> = Arc::new(Mutex::new(None));
    let slot = slow.clone();
    let port = svc.public_port;
    let started = Instant::now();
    let code = deploy_interrupted_at(&path, "a000002", "proxy", move |_| {
        let h = std::thread::spawn(move || {
            let t = Instant::now();
            (public_get(port, "/"), t.elapsed())
        });
        *slot.lock().expect("slot") = Some(h);
    });
    let deploy_took = started.elapsed();
    assert_eq!(
        code,
        Some(Some(0)),
        "the deploy reached the proxy step and succeeded"
    );
    let handle = slow
        .lock()
        .expect("slot")
        .take()
        .expect("slow request started");
    let (answer, took) = handle.join().expect("slow request thread");
    eprintln!("slow request: {answer:?} in {took:?}; deploy took {deploy_took:?}");
    assert_eq!(
        answer,
        Ok((200, "blue".to_string())),
        "the request in flight on the old color completed"
    );
    assert!(
        took >= Duration::from_millis(2900),
        "it really was slow: {took:?}"
    );
    let (code, s) = service_json(&path);
    assert_eq!(code, Some(0), "{s:#}");
    assert_eq!(s["live_color"], "green");
    assert_eq!(svc.container_state("blue").as_deref(), Some("exited"));
}

#[test]
fn the_route_survives_a_proxy_restart_and_a_host_restart() {
    let svc = TestService::new("rs");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    deploy_ok(&path, "a000001");
    deploy_ok(&path, "a000002");
    let proxy = format!("{}-proxy", svc.name);
    let green = format!("{}-green", svc.name);

    // The proxy container restarts: it reads its config, which the switch mirrored.
    docker_ok(&["restart", "-t", "2", &proxy]);
    wait_served_by(svc.public_port, "green", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("after a proxy restart: {e}"));
    let (code, s) = service_json(&path);
    assert_eq!(code, Some(0), "{s:#}");
    assert_eq!(s["live_color"], "green");

    // A host restart: everything stops; the proxy comes back before the app (Docker starts
    // containers in no particular order), and finds it once Docker's DNS knows it.
    docker_ok(&["stop", "-t", "2", &proxy, &green]);
    docker_ok(&["start", &proxy]);
    std::thread::sleep(Duration::from_millis(500));
    docker_ok(&["start", &green]);
    wait_served_by(svc.public_port, "green", Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("after a host restart: {e}"));

    // And the next rollback still switches in memory.
    let out = deckhand(&path, &["rollback", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(public_get(svc.public_port, "/").expect("public").1, "blue");
}

#[test]
fn status_reports_per_color_traffic_from_the_proxy() {
    let svc = TestService::new("tr");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    deploy_ok(&path, "a000001");
    for _ in 0..20 {
        assert_eq!(public_get(svc.public_port, "/").expect("public").0, 200);
    }
    for _ in 0..5 {
        assert_eq!(public_get(svc.public_port, "/nope").expect("public").0, 404);
    }
    deploy_ok(&path, "a000002");
    for _ in 0..10 {
        assert_eq!(public_get(svc.public_port, "/").expect("public").0, 200);
    }
    let (code, s) = service_json(&path);
    assert_eq!(code, Some(0), "{s:#}");
    let t = &s["traffic"];
    assert_eq!(t["window_s"], 60, "{t:#}");
    let blue = &t["colors"]["blue"];
    let green = &t["colors"]["green"];
    // Blue: 20 × 200 and 5 × 404, plus deckhand's own confirm probes (200 on /health).
    assert!(blue["status_2xx"].as_u64().unwrap_or(0) >= 20, "{t:#}");
    assert_eq!(blue["status_4xx"], 5, "{t:#}");
    assert_eq!(blue["status_5xx"], 0, "{t:#}");
    assert_eq!(blue["in_rotation"], false, "{t:#}");
    assert!(green["status_2xx"].as_u64().unwrap_or(0) >= 10, "{t:#}");
    assert_eq!(green["in_rotation"], true, "{t:#}");
    assert_eq!(green["error_5xx_percent"], 0.0, "{t:#}");
    assert!(
        green["p50_ms"].is_u64() && green["p99_ms"].is_u64(),
        "{t:#}"
    );
    assert!(green["req_per_s"].as_f64().unwrap_or(0.0) > 0.0, "{t:#}");
}

/// The earlier proxy's config, as deckhand wrote it before HAProxy (abridged to what matters).
fn nginx_conf(service: &str, color: &str, sha: &str) -> String {
    format!(
        "# deckhand-route: service={service} color={color} sha={sha}\nworker_processes 1;\nerror_log /dev/stderr warn;\nevents {{ worker_connections 512; }}\nhttp {{\n  access_log off;\n  client_body_temp_path /tmp/nginx-client-body;\n  proxy_temp_path /tmp/nginx-proxy;\n  fastcgi_temp_path /tmp/nginx-fastcgi;\n  uwsgi_temp_path /tmp/nginx-uwsgi;\n  scgi_temp_path /tmp/nginx-scgi;\n  upstream deckhand_live {{\n    server {service}-{color}:3000 max_fails=0;\n    keepalive 32;\n  }}\n  server {{\n    listen 80 default_server;\n    location / {{\n      proxy_pass http://deckhand_live;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      add_header X-Deckhand-Color {color} always;\n    }}\n  }}\n}}\n"
    )
}

#[test]
fn a_host_set_up_with_the_nginx_proxy_is_reported_and_the_next_deploy_replaces_it() {
    let svc = TestService::new("ng");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    // What the earlier deckhand left: blue behind nginx.
    let net = format!("deckhand-{}", svc.name);
    let proxy = format!("{}-proxy", svc.name);
    docker_ok(&["network", "create", &net]);
    docker_ok(&["pull", "-q", &format!("{}:a000001", svc.repo)]);
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &format!("{}-blue", svc.name),
        "--network",
        &net,
        "-p",
        "127.0.0.1::3000",
        "--label",
        &format!("deckhand.service={}", svc.name),
        "--label",
        "deckhand.color=blue",
        "--label",
        "deckhand.sha=a000001",
        &format!("{}:a000001", svc.repo),
    ]);
    docker_ok(&[
        "create",
        "--name",
        &proxy,
        "--network",
        &net,
        "-p",
        &format!("{}:80", svc.public_port),
        "--label",
        &format!("deckhand.service={}", svc.name),
        "--label",
        "deckhand.role=proxy",
        NGINX_PROXY_IMAGE,
    ]);
    let f = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(f.path(), nginx_conf(&svc.name, "blue", "a000001")).expect("write");
    docker_ok(&[
        "cp",
        &f.path().display().to_string(),
        &format!("{proxy}:/etc/nginx/nginx.conf"),
    ]);
    docker_ok(&["start", &proxy]);
    wait_served_by(svc.public_port, "blue", Duration::from_secs(10)).expect("nginx serves");

    let (code, s) = service_json(&path);
    assert_eq!(code, Some(0), "it serves: {s:#}");
    assert_eq!(s["live_color"], "blue", "{s:#}");
    assert_eq!(s["proxy"]["kind"], "nginx", "{s:#}");
    let drift = s["proxy"]["drift"].as_str().unwrap_or("");
    assert!(
        drift.contains("earlier nginx proxy") && drift.contains("the next deploy replaces it"),
        "{s:#}"
    );
    let out = deckhand(&path, &["status", "--env", "lab"]);
    assert!(text(&out).contains("earlier nginx proxy"), "{}", text(&out));

    let load = LoadClient::start(svc.public_port);
    let t = deploy_ok(&path, "a000002");
    let report = load.finish();
    eprintln!(
        "nginx → HAProxy replacement: {} sent, {} failed while the proxy was replaced",
        report.sent, report.failed
    );
    assert!(t.contains("earlier nginx proxy"), "the plan said so: {t}");
    let (code, s) = service_json(&path);
    assert_eq!(code, Some(0), "{s:#}");
    assert_eq!(s["proxy"]["kind"], "haproxy", "{s:#}");
    assert_eq!(s["proxy"]["drift"], serde_json::Value::Null, "{s:#}");
    assert_eq!(s["live_sha"], "a000002");
    assert_eq!(public_get(svc.public_port, "/").expect("public").1, "green");
    assert_eq!(svc.container_state("blue").as_deref(), Some("exited"));
    // And from now on switches are in memory.
    let out = deckhand(&path, &["rollback", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(public_get(svc.public_port, "/").expect("public").1, "blue");
}

#[test]
fn a_changed_public_port_is_applied_by_the_next_deploy() {
    let svc = TestService::new("pp");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    deploy_ok(&path, "a000001");
    let new_port = free_port();
    let cfg = std::fs::read_to_string(&path).expect("cfg").replace(
        &format!("public_port = {}", svc.public_port),
        &format!("public_port = {new_port}"),
    );
    std::fs::write(&path, cfg).expect("cfg");
    let (_, s) = service_json(&path);
    assert!(
        s["proxy"]["drift"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("public_port = {new_port}"))),
        "{s:#}"
    );
    let t = deploy_ok(&path, "a000002");
    assert!(t.contains("point the load balancer at the new port"), "{t}");
    assert_eq!(
        public_get(new_port, "/").expect("new port"),
        (200, "green".into())
    );
    assert!(
        public_get(svc.public_port, "/").is_err(),
        "the old port is closed"
    );
    let (code, s) = service_json(&path);
    assert_eq!(code, Some(0), "{s:#}");
    assert_eq!(s["proxy"]["public_port"], new_port);
    assert_eq!(s["proxy"]["drift"], serde_json::Value::Null);
}

#[test]
fn a_failed_proxy_update_puts_the_previous_proxy_back_and_says_what_serves() {
    let svc = TestService::new("pf");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    deploy_ok(&path, "a000001");
    // An image that runs but is not deckhand's HAProxy (no admin socket, no helper).
    let cfg = std::fs::read_to_string(&path)
        .expect("cfg")
        .replace(PROXY_IMAGE, NGINX_PROXY_IMAGE);
    std::fs::write(&path, cfg).expect("cfg");
    let out = deckhand(&path, &["deploy", "a000002", "--env", "lab", "--yes"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("replacing the proxy"), "{t}");
    assert!(
        t.contains("the previous proxy was put back and serves as before"),
        "{t}"
    );
    assert_eq!(
        public_get(svc.public_port, "/").expect("served"),
        (200, "blue".into())
    );
    let (_, s) = service_json(&path);
    assert_eq!(s["live_color"], "blue", "{s:#}");
    assert_eq!(s["proxy"]["image"], PROXY_IMAGE, "{s:#}");
    assert_eq!(s["proxy"]["running"], true, "{s:#}");
    assert_ne!(svc.container_state("green").as_deref(), Some("running"));
}

#[test]
fn the_live_colors_5xx_share_fires_the_error_alert() {
    let svc = TestService::new("er");
    svc.push(&["a000001"]);
    let sshd = SshServer::start();
    let (_d, path) = write_config(&format!(
        "{}\n{}\n[env.lab.alerts]\nerror_percent = 20\nerror_for = \"0s\"\nerror_min_requests = 10\nhealth_failures = 100\n",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    ));
    deploy_ok(&path, "a000001");
    let key = format!("errors:{}", svc.name);
    let alerts = || {
        let out = deckhand(&path, &["alerts", "--env", "lab", "--output", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("alerts json ({e}): {}", text(&out)));
        let a = v["hosts"][0]["alerts"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["key"] == key).cloned())
            .unwrap_or_else(|| panic!("no alert {key} in {v:#}"));
        (out.status.code(), a)
    };
    for _ in 0..10 {
        assert_eq!(public_get(svc.public_port, "/").expect("public").0, 200);
    }
    let (_, a) = alerts();
    assert_eq!(a["state"], "inactive", "{a:#}");
    assert_eq!(a["rule"], format!("{} live color 5xx > 20%", svc.name));

    // The live app starts failing: its /health answers 503 through the proxy.
    post_ok(svc.public_port, "/admin/unhealthy");
    for _ in 0..30 {
        assert_eq!(
            public_get(svc.public_port, "/health").expect("public").0,
            503
        );
    }
    let (code, a) = alerts();
    assert_eq!(a["state"], "firing", "{a:#}");
    assert_eq!(code, Some(5), "{a:#}");
    let msg = a["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("blue answered") && msg.contains("5xx (30 of"),
        "{a:#}"
    );
    assert!(a["value"].as_f64().is_some_and(|v| v > 20.0), "{a:#}");
}

#[test]
fn a_proxy_with_no_color_in_rotation_is_a_problem_the_next_deploy_settles() {
    let svc = TestService::new("nr");
    svc.push(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (_d, path) = ssh_config(&svc, &sshd, "");
    deploy_ok(&path, "a000001");
    // Someone takes the live server out by hand on the admin socket.
    docker_ok(&[
        "exec",
        &format!("{}-proxy", svc.name),
        "deckhand-proxy",
        "cli",
        "set server app/blue state maint",
    ]);
    assert_eq!(public_get(svc.public_port, "/").expect("answers").0, 503);
    let (code, s) = service_json(&path);
    assert_eq!(code, Some(5), "{s:#}");
    assert!(
        s["problems"].to_string().contains("no color in rotation"),
        "{s:#}"
    );
    deploy_ok(&path, "a000002");
    let (code, s) = service_json(&path);
    assert_eq!(code, Some(0), "{s:#}");
    assert_eq!(
        public_get(svc.public_port, "/").expect("public"),
        (200, "green".into())
    );
}
