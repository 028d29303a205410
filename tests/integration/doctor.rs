//! `deckhand doctor` against real sshd and dockerd: a ready host, a refused key, a changed host
//! key, a deploy user without Docker socket access, a bad env file and an unknown repository.

use std::os::unix::fs::PermissionsExt;

use crate::harness::*;

fn checks_of(v: &serde_json::Value, host: &str) -> Vec<(String, String, String)> {
    v["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .filter(|h| h["host"] == host)
        .flat_map(|h| h["checks"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            (
                c["check"].as_str().unwrap_or("").to_string(),
                c["status"].as_str().unwrap_or("").to_string(),
                format!(
                    "{} | {}",
                    c["detail"].as_str().unwrap_or(""),
                    c["fix"].as_str().unwrap_or("")
                ),
            )
        })
        .collect()
}

fn doctor_json(path: &std::path::Path) -> (Option<i32>, serde_json::Value, String) {
    let out = deckhand(path, &["doctor", "--env", "lab", "--output", "json"]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code(), v, text(&out))
}

fn status_of<'a>(checks: &'a [(String, String, String)], id: &str) -> &'a (String, String, String) {
    checks
        .iter()
        .find(|c| c.0 == id)
        .unwrap_or_else(|| panic!("no {id} check in {checks:?}"))
}

#[test]
fn a_ready_host_passes_and_a_bad_env_file_or_unknown_repository_fails_with_the_fix() {
    let svc = TestService::new("dr");
    svc.push(&["a000001"]);
    let sshd = SshServer::start();
    let secrets = tempfile::tempdir().expect("tempdir");
    let env_file = secrets.path().join("app.env");
    std::fs::write(&env_file, "DB_PASSWORD=x\n").expect("env file");
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let config = |image: &str| {
        format!(
            "{}\n{}",
            svc.service_toml(&format!("env_file = \"{}\"", env_file.display()))
                .replace(
                    &format!("image = \"{}\"", svc.repo),
                    &format!("image = \"{image}\"")
                ),
            sshd.host_toml("lab", "lab-1")
        )
    };
    let (_d, path) = write_config(&config(&svc.repo));

    let out = deckhand(&path, &["doctor", "--env", "lab"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    for label in [
        "config",
        "ssh and host key",
        "docker api",
        "docker socket",
        "state directory",
        "disk space",
        "clock",
        "registry",
        "proxy image",
        "env file",
    ] {
        assert!(
            t.lines().any(|l| l.contains(label) && l.contains(" ok ")),
            "{label} passes:\n{t}"
        );
    }
    let (code, v, t) = doctor_json(&path);
    assert_eq!(code, Some(0), "{t}");
    let checks = checks_of(&v, "lab-1");
    assert_eq!(checks.len(), 9, "{checks:?}");
    assert!(checks.iter().all(|c| c.1 == "pass"), "{checks:?}");
    assert!(
        status_of(&checks, "registry").2.contains("1 tag(s)"),
        "{checks:?}"
    );
    assert_eq!(v["config"][0]["status"], "pass");

    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, v, t) = doctor_json(&path);
    assert_eq!(code, Some(5), "{t}");
    let c = status_of(&checks_of(&v, "lab-1"), "env_file").clone();
    assert_eq!(c.1, "fail");
    assert!(
        c.2.contains("mode 644") && c.2.contains("chmod 600"),
        "{c:?}"
    );

    std::fs::remove_file(&env_file).expect("rm");
    let out = deckhand(&path, &["doctor", "--env", "lab"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(5), "{t}");
    assert!(t.contains("does not exist"), "{t}");
    assert!(
        t.contains("What to do:") && t.contains("install -m 0600"),
        "{t}"
    );

    std::fs::write(&env_file, "A=1\n").expect("env file");
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (_d2, path2) = write_config(&config(&format!("{REGISTRY}/{}/never-pushed", svc.name)));
    let (code, v, t) = doctor_json(&path2);
    assert_eq!(code, Some(5), "{t}");
    let c = status_of(&checks_of(&v, "lab-1"), "registry").clone();
    assert_eq!(c.1, "fail", "{c:?}");
    assert!(c.2.contains("not found") && c.2.contains("push"), "{c:?}");
}

#[test]
fn a_refused_key_and_a_changed_host_key_make_the_host_unreachable() {
    let svc = TestService::new("dk");
    let sshd = SshServer::start();
    let other = tempfile::tempdir().expect("tempdir");
    let key = other.path().join("k");
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(ok.success());
    let host = sshd.host_toml("lab", "lab-1").replace(
        &sshd.client_key.display().to_string(),
        &key.display().to_string(),
    );
    let (_d, path) = write_config(&format!("{}\n{host}", svc.service_toml("")));
    let (code, v, t) = doctor_json(&path);
    assert_eq!(code, Some(4), "{t}");
    assert_eq!(v["hosts"][0]["reachable"], false);
    let checks = checks_of(&v, "lab-1");
    let ssh = status_of(&checks, "ssh");
    assert_eq!(ssh.1, "fail");
    assert!(
        ssh.2.contains("refused the key") && ssh.2.contains("authorized_keys"),
        "{ssh:?}"
    );
    assert!(
        checks
            .iter()
            .filter(|c| c.0 != "ssh")
            .all(|c| c.1 == "skip"),
        "{checks:?}"
    );

    // The host presents a key that is not the one known_hosts has for it.
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
    let (_d2, path2) = write_config(&format!(
        "{}\n{}",
        svc.service_toml(""),
        sshd.host_toml("lab", "lab-1")
    ));
    let out = deckhand(&path2, &["doctor", "--env", "lab"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(4), "{t}");
    assert!(t.contains("host key is unknown or has changed"), "{t}");
    assert!(
        t.contains(&format!("ssh-keyscan -p {} 127.0.0.1", sshd.port)),
        "{t}"
    );
    assert!(t.contains("1 unreachable"), "{t}");
}

#[test]
fn a_deploy_user_without_docker_socket_access_is_told_how_to_fix_it() {
    let svc = TestService::new("du");
    svc.push(&["a000001"]);
    let sshd = SshServer::start();
    let user = TestUser::create(&[]);
    // sshd reads authorized_keys as the user.
    std::fs::set_permissions(sshd.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    // The state directory exists but is root's; the env file is root's, mode 0600.
    std::fs::create_dir_all(sshd.state_dir()).expect("state dir");
    let env_file = sshd.dir.path().join("app.env");
    std::fs::write(&env_file, "A=1\n").expect("env file");
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let host = sshd.host_toml("lab", "lab-1").replace(
        "ssh = \"root@127.0.0.1\"",
        &format!("ssh = \"{}@127.0.0.1\"", user.0),
    );
    let (_d, path) = write_config(&format!(
        "{}\n{host}",
        svc.service_toml(&format!("env_file = \"{}\"", env_file.display()))
    ));
    let (code, v, t) = doctor_json(&path);
    assert_eq!(code, Some(5), "a check failed, the host is reachable: {t}");
    assert_eq!(v["hosts"][0]["reachable"], true, "{v:#}");
    let checks = checks_of(&v, "lab-1");
    assert_eq!(status_of(&checks, "ssh").1, "pass", "{checks:?}");
    let sock = status_of(&checks, "docker_socket");
    assert_eq!(sock.1, "fail", "{checks:?}");
    assert!(
        sock.2.contains(&format!("usermod -aG docker {}", user.0)),
        "{sock:?}"
    );
    let state = status_of(&checks, "state_dir");
    assert_eq!(state.1, "fail", "{checks:?}");
    assert!(
        state.2.contains(&format!("install -d -o {}", user.0)),
        "{state:?}"
    );
    let env = status_of(&checks, "env_file");
    assert_eq!(env.1, "fail", "{checks:?}");
    assert!(
        env.2.contains("not readable by") && env.2.contains("chown"),
        "{env:?}"
    );
    // What does not need Docker still ran, over plain ssh.
    assert_eq!(status_of(&checks, "disk").1, "pass", "{checks:?}");
    assert_eq!(status_of(&checks, "clock").1, "pass", "{checks:?}");
    assert_eq!(status_of(&checks, "registry").1, "skip", "{checks:?}");
}
