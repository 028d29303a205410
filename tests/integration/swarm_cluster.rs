//! A real multi-node Swarm (test-support/src/swarm.rs): the test bed itself, then deckhand on it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::harness::swarm::{MANAGER, SwarmCluster};
use crate::harness::*;

/// One `GET /` on a fresh connection: the status code and the body.
fn get_body(addr: SocketAddr) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write {addr}: {e}"))?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)
        .map_err(|e| format!("read {addr}: {e}"))?;
    let code = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line from {addr}: {buf:?}"))?;
    let body = buf
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((code, body))
}

/// Retries `get_body` until it answers 200 (a task that just started may not listen yet).
fn wait_answer(addr: SocketAddr) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match get_body(addr) {
            Ok((200, body)) => return body,
            other => assert!(
                std::time::Instant::now() < deadline,
                "{addr} did not answer 200 within 30s: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_three_node_swarm_spreads_replicas_publishes_on_each_node_and_sees_a_killed_node_down() {
    let mut swarm = SwarmCluster::start(3);
    let states = swarm.node_states();
    assert_eq!(states.len(), 3, "{states:#?}");
    for s in &states {
        assert_eq!(s.status, "Ready", "{states:#?}");
        assert_eq!(s.availability, "Active", "{states:#?}");
    }
    let leader: Vec<_> = states
        .iter()
        .filter(|s| s.manager_status == "Leader")
        .collect();
    assert_eq!(leader.len(), 1, "{states:#?}");
    assert_eq!(leader[0].hostname, swarm.hostname(MANAGER));

    // One replica per node, published in host mode; each answers with its node's hostname
    // (a Swarm template), so each node's address is served by that node's own task, and every
    // node pulled the image from the registry through its relay.
    let port = free_port();
    let image = format!("{DEMO_REPO}:{}", GOOD_SHAS[0]);
    let name = unique_name("swc");
    swarm.docker_ok(
        MANAGER,
        &[
            "service",
            "create",
            "--detach",
            "--name",
            &name,
            "--replicas",
            "3",
            "--replicas-max-per-node",
            "1",
            "--env",
            "DEMO_VERSION={{.Node.Hostname}}",
            "--publish",
            &format!("mode=host,target=3000,published={port}"),
            &image,
        ],
    );
    for i in 0..swarm.len() {
        let body = wait_answer(swarm.node_addr(i, port));
        assert!(
            body.contains(swarm.hostname(i)),
            "{} answered for another node: {body:?}",
            swarm.node_ip(i)
        );
        let local = swarm.docker_ok(i, &["ps", "--format", "{{.Image}}"]);
        assert!(local.contains(&image), "{}: {local}", swarm.hostname(i));
    }

    // deckhand reaches the manager over ssh: what it forwards to 127.0.0.1 is the manager's
    // loopback, where the manager's task publishes too.
    let local = free_port();
    let mut forward = std::process::Command::new("ssh")
        .args([
            "-N",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
        ])
        .arg(format!(
            "UserKnownHostsFile={}",
            swarm.known_hosts().display()
        ))
        .arg("-i")
        .arg(swarm.client_key())
        .args(["-p", &swarm.ssh_port().to_string(), "-L"])
        .arg(format!("127.0.0.1:{local}:127.0.0.1:{port}"))
        .arg(swarm.ssh_destination())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ssh (openssh-client)");
    let body = wait_answer(SocketAddr::from(([127, 0, 0, 1], local)));
    let _ = forward.kill();
    let _ = forward.wait();
    assert!(body.contains(swarm.hostname(MANAGER)), "{body:?}");

    // A worker's dockerd killed: the manager sees it Down; back up, it is Ready again.
    swarm.kill_node_dockerd(2);
    // Its containers outlive it (their own containerd, as with Debian's containerd service),
    // and its published port still reaches its task (iptables, not dockerd).
    let body = wait_answer(swarm.node_addr(2, port));
    assert!(body.contains(swarm.hostname(2)), "{body:?}");
    swarm.wait_node_status(2, "Down", Duration::from_secs(60));
    swarm.restart_node(2);
    let states = swarm.node_states();
    assert!(
        states.iter().all(|s| s.status == "Ready"),
        "after the restart: {states:#?}"
    );
    // Its task is running again and answers on its address.
    let body = wait_answer(swarm.node_addr(2, port));
    assert!(body.contains(swarm.hostname(2)), "{body:?}");
}

/// Overlay networks (vxlan between the nodes' namespaces) carry traffic from a container on
/// the manager to tasks on the workers, addressed through Swarm's DNS (`tasks.<service>`,
/// endpoint mode dnsrr: service VIPs need IPVS, which this sandbox's kernel lacks).
#[test]
fn an_overlay_network_connects_containers_on_different_nodes() {
    let swarm = SwarmCluster::start(3);
    let net = unique_name("swov");
    swarm.docker_ok(
        MANAGER,
        &[
            "network",
            "create",
            "--driver",
            "overlay",
            "--attachable",
            &net,
        ],
    );
    let name = unique_name("swo");
    swarm.docker_ok(
        MANAGER,
        &[
            "service",
            "create",
            "--detach",
            "--name",
            &name,
            "--replicas",
            "2",
            "--endpoint-mode",
            "dnsrr",
            "--network",
            &net,
            "--constraint",
            "node.role==worker",
            "--replicas-max-per-node",
            "1",
            "--env",
            "DEMO_VERSION={{.Node.Hostname}}",
            &format!("{DEMO_REPO}:{}", GOOD_SHAS[0]),
        ],
    );
    swarm.load_local_image(MANAGER, BUSYBOX_IMAGE);
    // Ask the tasks by name from the manager until each worker's task has answered.
    let script = format!(
        "seen=''; for i in $(seq 60); do \
           for ip in $(nslookup tasks.{name} 127.0.0.11 2>/dev/null | awk '/^Address/ && !/127.0.0.11/ {{print $NF}}'); do \
             seen=\"$seen $(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 2 nc $ip 3000 | tail -n 1)\"; \
           done; \
           case \"$seen\" in *{a}*{b}*|*{b}*{a}*) echo \"$seen\"; exit 0;; esac; sleep 0.5; \
         done; echo \"$seen\"; exit 1",
        a = swarm.hostname(1),
        b = swarm.hostname(2),
    );
    let out = swarm.docker(
        MANAGER,
        &[
            "run",
            "--rm",
            "--network",
            &net,
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            &script,
        ],
    );
    assert!(
        out.status.success(),
        "both workers' tasks answer over the overlay: {}",
        text(&out)
    );
}

/// deckhand's config for `svc` on env `lab`, a Swarm through `swarm`'s manager.
pub(crate) fn swarm_config(
    svc: &TestService,
    swarm: &SwarmCluster,
    replicas: u32,
) -> (tempfile::TempDir, std::path::PathBuf) {
    // A first deploy pulls the image on every node before Swarm's health checks start: on 2
    // shared cores that took more than the droplet tests' 20 s (seen in the matrix).
    let service = svc
        .service_toml("")
        .replace("health_timeout = \"20s\"", "health_timeout = \"60s\"");
    assert!(service.contains("health_timeout = \"60s\""), "{service}");
    write_config(&format!(
        "{service}\n{}",
        swarm.swarm_env_toml("lab", replicas)
    ))
}

/// The state `status` gives node `hostname` ("ready", "down", ...).
pub(crate) fn node_state(v: &serde_json::Value, hostname: &str) -> Option<String> {
    v["hosts"][0]["swarm"]["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["hostname"] == hostname)
        .and_then(|n| n["state"].as_str())
        .map(str::to_string)
}

/// Deploys `sha` and asserts it went live (exit 0, `status` says so); the run's duration.
pub(crate) fn deploy_ok(
    path: &std::path::Path,
    swarm: &SwarmCluster,
    args: &[&str],
    sha: &str,
) -> Duration {
    let t = std::time::Instant::now();
    let mut all = args.to_vec();
    all.extend(["--env", "lab", "--yes"]);
    let out = deckhand(path, &all);
    let took = t.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}\n{}",
        text(&out),
        swarm.diagnose()
    );
    let (code, v) = status_json(path);
    assert_eq!(code, Some(0), "status after {args:?}: {v:#}");
    assert_eq!(v["hosts"][0]["services"][0]["live_sha"], sha, "{v:#}");
    took
}

/// Zero downtime on a real multi-node Swarm: 3 replicas per color spread over 3 nodes, the
/// proxy on the manager; a deploy and a rollback while fresh-connection and keep-alive
/// clients hit the public port (published in host mode on the manager's address).
#[test]
fn deploy_and_rollback_on_a_three_node_swarm_under_load_fail_no_request() {
    let swarm = SwarmCluster::start(3);
    let svc = TestService::new("swd");
    svc.push(&GOOD_SHAS[..2]);
    let (_d, path) = swarm_config(&svc, &swarm, 3);
    let first = deploy_ok(&path, &swarm, &["deploy", GOOD_SHAS[0]], GOOD_SHAS[0]);

    let public = swarm.node_addr(MANAGER, svc.public_port);
    let fresh = LoadClient::start_at(public);
    let kept = KeepAliveClients::start_at(public, 4);
    let deploy = deploy_ok(&path, &swarm, &["deploy", GOOD_SHAS[1]], GOOD_SHAS[1]);
    let (_, v) = status_json(&path);
    let rollback = deploy_ok(&path, &swarm, &["rollback"], GOOD_SHAS[0]);
    let fresh = fresh.finish();
    let kept = kept.finish();
    eprintln!(
        "swarm 3 nodes x 3 replicas: first deploy {first:?}, deploy {deploy:?}, rollback {rollback:?}; \
         fresh connections {} sent {} failed, keep-alive {} sent {} failed ({} connections)",
        fresh.sent, fresh.failed, kept.sent, kept.failed, kept.connections
    );
    assert_eq!(fresh.failed, 0, "fresh connections: {:?}", fresh.failures);
    assert_eq!(kept.failed, 0, "keep-alive: {:?}", kept.failures);
    assert_eq!(
        fresh.colors_seen.len(),
        2,
        "both colors served: {:?}",
        fresh.colors_seen
    );

    // The new release ran on every node, as status reported it after the deploy.
    let svc_status = &v["hosts"][0]["swarm"]["services"][0];
    let live = svc_status["live_color"].as_str().unwrap_or_default();
    let color = &svc_status["colors"][live];
    assert_eq!(color["running"], 3, "{v:#}");
    let mut nodes: Vec<&str> = color["nodes"]
        .as_array()
        .map(|a| a.iter().filter_map(|n| n.as_str()).collect())
        .unwrap_or_default();
    nodes.sort_unstable();
    nodes.dedup();
    assert!(nodes.len() >= 2, "replicas spread over the nodes: {v:#}");
}

/// Node failure: a worker's dockerd is killed while a deploy waits for the new release's
/// tasks. The deploy converges (Swarm reschedules onto the nodes left) or stops with the old
/// release serving; `status` shows the node down; with the node back, the deploy converges.
#[test]
fn a_worker_dockerd_killed_during_a_deploy_leaves_a_release_serving_and_status_shows_it_down() {
    let mut swarm = SwarmCluster::start(3);
    let svc = TestService::new("swk");
    svc.push(&GOOD_SHAS[..2]);
    let (_d, path) = swarm_config(&svc, &swarm, 3);
    deploy_ok(&path, &swarm, &["deploy", GOOD_SHAS[0]], GOOD_SHAS[0]);

    let public = swarm.node_addr(MANAGER, svc.public_port);
    let load = LoadClient::start_at(public);
    let worker = 2;
    let mut run = JsonRun::spawn(&path, &["deploy", GOOD_SHAS[1], "--env", "lab", "--yes"]);
    assert!(
        run.wait_for_step("health"),
        "the deploy reached the health wait"
    );
    swarm.kill_node_dockerd(worker);
    let t = std::time::Instant::now();
    let (code, out) = run.finish();
    let took = t.elapsed();
    let load = load.finish();

    // Whatever the outcome, one release serves, and it is the one status calls live.
    let (_, v) = status_json(&path);
    let live = v["hosts"][0]["services"][0]["live_sha"].clone();
    let expected = if code == Some(0) {
        GOOD_SHAS[1]
    } else {
        GOOD_SHAS[0]
    };
    assert_eq!(live, expected, "deploy exit {code:?}: {out}\n{v:#}");
    let (answer, _) = get_at(public, "/").unwrap_or_else(|e| panic!("public port: {e}"));
    assert_eq!(answer, 200, "the public port serves after the node failure");

    // status shows the node down (Swarm needs a few heartbeats to call it).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let v = loop {
        let (_, v) = status_json(&path);
        if node_state(&v, swarm.hostname(worker)).as_deref() == Some("down") {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "status never showed {} down: {v:#}",
            swarm.hostname(worker)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "node failure during the health wait: deploy exit {code:?} after {took:?} more, live {live}, \
         {} sent {} failed while it ran; nodes {}",
        load.sent, load.failed, v["hosts"][0]["swarm"]["nodes"]
    );
    assert_eq!(
        load.failed, 0,
        "the old release served throughout: {:?}",
        load.failures
    );

    // The node back: the same deploy converges.
    swarm.restart_node(worker);
    deploy_ok(&path, &swarm, &["deploy", GOOD_SHAS[1]], GOOD_SHAS[1]);
}

/// The state the console's watcher last read for node `name`, from a snapshot.
fn watched_node_state(u: &deckhand::tui::model::HostUpdate, name: &str) -> Option<String> {
    let deckhand::tui::model::HostUpdate::Snapshot(s) = u else {
        return None;
    };
    s.status
        .swarm
        .as_ref()?
        .nodes
        .iter()
        .find(|n| n.hostname == name)
        .map(|n| n.state.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_a_worker_going_down_without_waiting_for_its_resync() {
    // The manager's Docker events say nothing about another node, so a console that waited for
    // events (and its 5-minute resync) would show a dead worker as ready for minutes.
    use std::sync::Arc;
    use tokio::sync::{Notify, mpsc};
    let mut swarm = SwarmCluster::start(2);
    let svc = TestService::new("swc");
    let (_d, path) = write_config(&format!(
        "{}\n{}name = \"mgr\"\n",
        svc.service_toml(""),
        swarm.swarm_env_toml("sw", 1)
    ));
    let cfg = deckhand::config::load(&path).expect("config");
    let spec = cfg.env("sw").expect("sw").hosts[0].clone();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cancel = tokio_util::sync::CancellationToken::new();
    let thresholds = deckhand::config::AlertThresholds {
        interval: Duration::from_secs(60),
        ..deckhand::config::AlertThresholds::default()
    };
    tokio::spawn(deckhand::tui::tasks::poll_host(
        spec,
        cfg.services.clone(),
        thresholds,
        0,
        tx,
        cancel.clone(),
        Arc::new(Notify::new()),
    ));
    let worker = swarm.hostname(1).to_string();
    crate::console_conn::host_update(&mut rx, Duration::from_secs(60), "the worker ready", |u| {
        watched_node_state(u, &worker).as_deref() == Some("ready")
    })
    .await;
    swarm.kill_node_dockerd(1);
    // Swarm itself calls a node down after its heartbeat period (10-16 s here).
    let u = crate::console_conn::host_update(
        &mut rx,
        Duration::from_secs(60),
        "the worker down",
        |u| watched_node_state(u, &worker).is_some_and(|s| s != "ready"),
    )
    .await;
    eprintln!(
        "the console shows {worker} as {:?}",
        watched_node_state(&u, &worker)
    );
    cancel.cancel();
}
