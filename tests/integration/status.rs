use std::time::Instant;

use deckhand::config;
use deckhand::state::{Color, ContainerState, status_of_host};

use crate::harness::*;

fn setup(
    prefix: &str,
) -> (
    TestService,
    SshServer,
    tempfile::TempDir,
    std::path::PathBuf,
    config::Config,
) {
    let svc = TestService::new(prefix);
    let sshd = SshServer::start();
    let text = format!(
        "{}\n[env.dev]\nhosts = [\"local\"]\n\n{}",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    );
    let (dir, path) = write_config(&text);
    let cfg = config::load(&path).expect("config");
    (svc, sshd, dir, path, cfg)
}

#[tokio::test(flavor = "multi_thread")]
async fn status_over_ssh_reads_a_host_laid_out_per_the_contract() {
    let (svc, _sshd, _dir, _path, cfg) = setup("st");
    svc.tag_local(&["a000001", "a000002", "a000003"]);
    let service = cfg.services[0].clone();
    svc.lay_out_by_hand(&service, ("blue", "a000003"), Some(("green", "a000002")));

    let started = Instant::now();
    let host = status_of_host(&cfg.env("lab").expect("lab").hosts[0], &cfg.services).await;
    eprintln!("one ssh host read in {:?}", started.elapsed());
    assert!(host.reachable, "{:?}", host.error);
    assert_eq!(host.error, None);
    let s = &host.services[0];
    assert_eq!(s.live_color, Some(Color::Blue));
    assert_eq!(s.live_sha.as_deref(), Some("a000003"));
    assert!(s.proxy.running);
    assert_eq!(s.proxy.public_port, Some(svc.public_port));
    let blue = s.color(Color::Blue).expect("blue");
    assert_eq!(blue.state, ContainerState::Running);
    assert_eq!(blue.deployed_by.as_deref(), Some("tester@ci"));
    let health = blue.health.as_ref().expect("blue probed");
    assert!(health.is_healthy(), "{health:?}");
    assert_eq!(
        health.services.get("database").map(String::as_str),
        Some("connected")
    );
    let green = s.color(Color::Green).expect("green");
    assert_eq!(green.state, ContainerState::Exited);
    assert_eq!(green.sha.as_deref(), Some("a000002"));
    assert!(green.health.is_none());
    let tags: Vec<&str> = s.images.iter().map(|i| i.tag.as_str()).collect();
    assert_eq!(tags, ["a000003", "a000002", "a000001"], "newest first");
    assert_eq!(s.images[0].in_use_by, Some(Color::Blue));
    assert_eq!(s.images[1].in_use_by, Some(Color::Green));
    assert_eq!(s.images[2].in_use_by, None);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let facts = host.facts.as_ref().expect("facts");
    assert!(facts.docker_version.is_some());
    assert!(facts.mem_total_bytes.unwrap_or(0) > 0);
    assert!(facts.disk_root.as_ref().is_some_and(|d| d.total_bytes > 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn status_cli_prints_table_and_json_over_local_and_ssh() {
    let (svc, _sshd, _dir, path, _cfg) = setup("sc");
    svc.tag_local(&["a000001", "a000002"]);
    let cfg = config::load(&path).expect("config");
    svc.lay_out_by_hand(
        &cfg.services[0],
        ("green", "a000002"),
        Some(("blue", "a000001")),
    );

    for env in ["dev", "lab"] {
        let out = deckhand(&path, &["status", "--env", env]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{t}");
        assert!(t.contains("green a000002"), "{t}");
        assert!(t.contains("exited a000001"), "{t}");
        assert!(t.contains("green LIVE: running"), "{t}");
        assert!(t.contains("database connected"), "{t}");

        let out = deckhand(&path, &["status", "--env", env, "--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["env"], env);
        let s = &v["hosts"][0]["services"][0];
        assert_eq!(s["live_color"], "green", "{v:#}");
        assert_eq!(s["live_sha"], "a000002");
        assert_eq!(s["colors"]["green"]["state"], "running");
        assert_eq!(s["colors"]["green"]["health"]["http_status"], 200);
        assert_eq!(s["colors"]["green"]["health"]["status"], "healthy");
        assert_eq!(s["colors"]["blue"]["state"], "exited");
        assert_eq!(s["colors"]["blue"]["health"], serde_json::Value::Null);
        assert_eq!(s["images"][0]["in_use_by"], "green");
        assert_eq!(v["hosts"][0]["reachable"], true);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unhealthy_live_color_makes_status_exit_5() {
    let (svc, _sshd, _dir, path, cfg) = setup("su");
    svc.tag_local(&["bad0001"]);
    svc.lay_out_by_hand(&cfg.services[0], ("blue", "bad0001"), None);
    let out = deckhand(&path, &["status", "--env", "lab"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(t.contains("live color blue is unhealthy: HTTP 503"), "{t}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_host_next_to_a_healthy_one() {
    let svc = TestService::new("ur");
    svc.tag_local(&["a000001"]);
    let sshd = SshServer::start();
    let dead_port = free_port();
    let text_cfg = format!(
        "{}\n{}\n[[env.lab.host]]\nname = \"dead-1\"\nssh = \"root@127.0.0.1\"\nport = {dead_port}\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\n",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1"),
        sshd.client_key.display(),
        sshd.known_hosts.display(),
    );
    let (_dir, path) = write_config(&text_cfg);
    let cfg = config::load(&path).expect("config");
    svc.lay_out_by_hand(&cfg.services[0], ("blue", "a000001"), None);

    let out = deckhand(&path, &["status", "--env", "lab", "--output", "json"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let hosts = v["hosts"].as_array().expect("hosts");
    let live = hosts.iter().find(|h| h["name"] == "lab-1").expect("lab-1");
    let dead = hosts
        .iter()
        .find(|h| h["name"] == "dead-1")
        .expect("dead-1");
    assert_eq!(live["reachable"], true);
    assert_eq!(live["services"][0]["live_color"], "blue");
    assert_eq!(dead["reachable"], false);
    let err = dead["error"].as_str().expect("error text");
    assert!(err.starts_with("dead-1: "), "{err}");
    assert!(err.contains("refused") || err.contains("ssh"), "{err}");

    let out = deckhand(&path, &["status", "--env", "lab"]);
    let t = text(&out);
    assert!(t.contains("UNREACHABLE"), "{t}");
    assert!(t.contains("dead-1: unreachable"), "{t}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_host_key_is_refused_with_the_fix() {
    let svc = TestService::new("hk");
    let sshd = SshServer::start();
    // Trust some other key for this host: a changed host key.
    let other = tempfile::tempdir().expect("tempdir");
    let key = other.path().join("k");
    std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
    let mut parts = pubkey.split_whitespace();
    std::fs::write(
        &sshd.known_hosts,
        format!(
            "[127.0.0.1]:{} {} {}\n",
            sshd.port,
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        ),
    )
    .expect("known_hosts");
    let (_dir, path) = write_config(&format!(
        "{}\n{}",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    ));
    let out = deckhand(&path, &["status", "--env", "lab"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(t.contains("host key is unknown or has changed"), "{t}");
    assert!(
        t.contains(&format!("ssh-keyscan -p {} 127.0.0.1", sshd.port)),
        "{t}"
    );

    // And an empty known_hosts: unknown key, also refused.
    std::fs::write(&sshd.known_hosts, "").expect("empty known_hosts");
    let out = deckhand(&path, &["status", "--env", "lab"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(t.contains("host key is unknown or has changed"), "{t}");
}

#[test]
fn a_broken_config_file_is_a_usage_error_naming_file_and_line() {
    let (_dir, path) = write_config(
        "[[service]]\nname = \"api\"\nimage = \"acme/api\"\npublic_port = 70000\n[env.dev]\nhosts = [\"local\"]\n",
    );
    let out = deckhand(&path, &["status"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains(&format!("{}:4: `service.api.public_port`", path.display())),
        "{t}"
    );
    assert!(t.contains("Fix:"), "{t}");

    let (_dir2, path2) = write_config("[[service]\nname = 1\n");
    let out = deckhand(&path2, &["status"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains(&format!("{}:1:", path2.display())), "{t}");

    let out = deckhand(
        std::path::Path::new("/nonexistent/deckhand.toml"),
        &["status"],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("/nonexistent/deckhand.toml"), "{t}");
}

/// Another operator's deploy removes and recreates a color while this one reads: a container
/// that vanishes between Docker's list and its inspect is not an error (seen in CI as "No such
/// container" when the console and the CLI deployed at once).
#[tokio::test(flavor = "multi_thread")]
async fn a_color_replaced_while_status_reads_is_not_an_error() {
    let (svc, _sshd, _d, _path, cfg) = setup("rp");
    let service = cfg.services[0].clone();
    let spec = cfg.envs["dev"].hosts[0].clone();
    let host = deckhand::transport::Host::connect(&spec)
        .await
        .expect("local engine");
    let name = format!("{}-green", svc.name);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (stop, name, service) = (stop.clone(), name.clone(), svc.name.clone());
        std::thread::spawn(move || {
            let mut replaced = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = docker(&["rm", "-f", &name]);
                docker_ok(&[
                    "create",
                    "--name",
                    &name,
                    "--label",
                    &format!("deckhand.service={service}"),
                    "--label",
                    "deckhand.color=green",
                    "--label",
                    "deckhand.sha=a000001",
                    &format!("{DEMO_REPO}:a000001"),
                ]);
                replaced += 1;
            }
            let _ = docker(&["rm", "-f", &name]);
            replaced
        })
    };
    let until = Instant::now() + std::time::Duration::from_secs(8);
    let (mut reads, mut seen) = (0u32, 0u32);
    while Instant::now() < until {
        let status = deckhand::state::read_service(&host, &service)
            .await
            .unwrap_or_else(|e| panic!("read {reads} failed while {name} was being replaced: {e}"));
        reads += 1;
        if status
            .colors
            .get(&Color::Green)
            .is_some_and(Option::is_some)
        {
            seen += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let replaced = churn.join().expect("churn thread");
    eprintln!("{reads} reads while {name} was replaced {replaced} times; present in {seen}");
    assert!(replaced > 5 && seen > 0, "the race was exercised");
    host.close().await;
}

/// A read probes the ports it remembers beside its inspects (issue 14), but a remembered port
/// is only a guess: an answer from it counts only for the running color the inspect finds on
/// that port. A memory that names a stopped color, or a port the color no longer has, costs a
/// wasted probe and never a wrong health.
#[tokio::test(flavor = "multi_thread")]
async fn a_remembered_port_that_is_wrong_never_gives_a_color_a_health() {
    let (svc, _sshd, _dir, _path, cfg) = setup("pm");
    svc.tag_local(&["a000002", "a000003"]);
    let service = cfg.services[0].clone();
    svc.lay_out_by_hand(&service, ("blue", "a000003"), Some(("green", "a000002")));
    let spec = cfg.env("lab").expect("lab").hosts[0].clone();
    let host = deckhand::transport::Host::connect(&spec)
        .await
        .expect("connect");
    let first = deckhand::state::read_service(&host, &service)
        .await
        .expect("read");
    let blue_port = first
        .color(Color::Blue)
        .and_then(|b| b.host_port)
        .expect("blue's port");
    let (blue, green) = (format!("{}-blue", svc.name), format!("{}-green", svc.name));
    assert_eq!(
        host.ports.get(&blue),
        Some(blue_port),
        "the read remembers it"
    );
    assert_eq!(host.ports.get(&green), None, "a stopped color has no port");

    // The stopped color "was" on the live color's port (a healthy answer comes from there),
    // and the live color "was" on a port nothing listens on (its probe fails).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    host.ports.set(&green, Some(blue_port));
    host.ports.set(&blue, Some(closed));
    let before = host.trips();
    let s = deckhand::state::read_service(&host, &service)
        .await
        .expect("read");
    let spent = host.trips().since(&before);
    let green_status = s.color(Color::Green).expect("green");
    assert_eq!(green_status.state, ContainerState::Exited);
    assert!(
        green_status.health.is_none(),
        "a stopped color got the answer of the port it was remembered on: {green_status:?}"
    );
    let blue_status = s.color(Color::Blue).expect("blue");
    assert!(
        blue_status.health.as_ref().is_some_and(|h| h.is_healthy()),
        "the live color's health came from a port it does not have: {blue_status:?}"
    );
    assert_eq!(
        spent.http, 3,
        "two wasted guesses and the real probe: {spent}"
    );
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert_eq!(host.ports.get(&blue), Some(blue_port), "corrected");
    assert_eq!(host.ports.get(&green), None, "corrected");
    host.close().await;
}
