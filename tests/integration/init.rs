//! `deckhand init`, `deckhand completions` and `deckhand man`: the real binary, no config
//! needed, and what they write loads, passes doctor's config checks, or runs in a shell.

use std::path::Path;
use std::process::Command;

use crate::harness::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn init_from_terraform_outputs_writes_a_commented_config_that_loads_and_never_overwrites() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("deckhand.toml");
    let outputs =
        root().join("infrastructure/terraform/scripts/testdata/terraform-output.staging.json");
    let args = [
        "init",
        "--from-terraform",
        outputs.to_str().expect("utf-8"),
        "--image",
        "registry.example.com/acme/api",
    ];
    let out = deckhand(&path, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("environment `staging` with 2 host(s)"),
        "{}",
        text(&out)
    );
    let written = std::fs::read_to_string(&path).expect("written");
    assert!(
        written.starts_with("# deckhand.toml: written by `deckhand init`"),
        "{written}"
    );
    assert!(
        written.contains("protected = true"),
        "deckhand_protected: {written}"
    );
    assert!(
        !written.contains("postgres"),
        "sensitive outputs are not copied: {written}"
    );
    let cfg = deckhand::config::load(&path).expect("the written config loads");
    let env = cfg.env("staging").expect("staging");
    assert_eq!(env.hosts.len(), 2);
    assert_eq!(cfg.services[0].name, "api");

    let before = std::fs::read(&path).expect("read");
    let out = deckhand(&path, &args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "left as it was"
    );
}

#[test]
fn init_from_an_ansible_inventory_refers_to_it_and_passes_doctors_config_checks() {
    let sshd = SshServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let inv_dir = dir.path().join("ansible");
    std::fs::create_dir_all(&inv_dir).expect("dir");
    // The droplet as Ansible names it; its ssh port is dead here, so doctor stops at ssh, after
    // the config checks.
    std::fs::write(
        inv_dir.join("lab.yml"),
        format!(
            "all:\n  vars:\n    ansible_user: ops\n    deckhand_user: root\n  children:\n    api:\n      hosts:\n        lab-1:\n          ansible_host: 127.0.0.1\n          ansible_port: {}\n          deckhand_identity_file: {}\n",
            free_port(),
            sshd.client_key.display()
        ),
    )
    .expect("inventory");
    let path = dir.path().join("deckhand.toml");
    let inv = inv_dir.join("lab.yml");
    let out = deckhand(
        &path,
        &[
            "init",
            "--from-ansible",
            inv.to_str().expect("utf-8"),
            "--ansible-group",
            "api",
            "--image",
            "127.0.0.1:5000/acme/api",
            "--service",
            "api",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&path).expect("written");
    assert!(
        written.contains("ansible_inventory = \"ansible/lab.yml\""),
        "relative: {written}"
    );
    assert!(
        written.contains("#   lab-1  127.0.0.1  user root"),
        "{written}"
    );
    let cfg = deckhand::config::load(&path).expect("loads");
    assert_eq!(
        cfg.env("lab").expect("env named after the inventory").hosts[0].name,
        "lab-1"
    );

    let out = deckhand(&path, &["doctor", "--env", "lab", "--output", "json"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "the port is dead: {}",
        text(&out)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let config = v["config"].as_array().expect("config checks");
    assert!(!config.is_empty());
    assert!(config.iter().all(|c| c["status"] == "pass"), "{v:#}");
}

#[test]
fn init_from_named_hosts_checks_them_and_says_what_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("deckhand.toml");
    let out = deckhand(
        &path,
        &[
            "init",
            "--image",
            "acme/web",
            "staging-web-1",
            "deploy@203.0.113.9",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let cfg = deckhand::config::load(&path).expect("loads");
    let env = cfg.env("production").expect("default environment");
    assert!(env.protected, "production asks before acting");
    assert_eq!(env.hosts.len(), 2);
    assert_eq!(cfg.services[0].name, "web");

    let other = dir.path().join("other.toml");
    let out = deckhand(
        &other,
        &["init", "--image", "acme/web", "--", "-oProxyCommand=evil"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not an ssh destination"),
        "{}",
        text(&out)
    );
    assert!(!other.exists(), "nothing written");
    let out = deckhand(&other, &["init", "--image", "acme/web"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--from-ansible"), "{}", text(&out));
}

#[test]
fn completions_load_in_bash_and_the_man_page_names_every_command() {
    let nowhere = Path::new("/nonexistent/deckhand.toml");
    let out = deckhand(nowhere, &["completions", "bash"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "no config needed: {}",
        text(&out)
    );
    let script = String::from_utf8_lossy(&out.stdout).to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("deckhand.bash");
    std::fs::write(&file, &script).expect("write");
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p deckhand && COMP_WORDS=(deckhand lo) COMP_CWORD=1 COMP_LINE='deckhand lo' COMP_POINT=11 && _deckhand deckhand lo deckhand && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display()
        ))
        .output()
        .expect("bash");
    let said = text(&check);
    assert!(check.status.success(), "{said}");
    assert!(
        said.lines().any(|l| l == "logs"),
        "`deckhand lo<TAB>` completes to logs: {said}"
    );

    for (shell, marker) in [
        ("zsh", "#compdef deckhand"),
        ("fish", "complete -c deckhand"),
    ] {
        let out = deckhand(nowhere, &["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(s.contains(marker), "{shell}: {s}");
        assert!(s.contains("doctor"), "{shell}");
    }

    let out = deckhand(nowhere, &["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH deckhand"),
        "{page}"
    );
    for cmd in [
        "status",
        "deploy",
        "logs",
        "doctor",
        "init",
        "completions",
        "metrics",
    ] {
        assert!(page.contains(cmd), "{cmd} in the man page");
    }
    let mandir = dir.path().join("man1");
    let out = deckhand(nowhere, &["man", "--dir", mandir.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        !mandir.join("deckhand-__complete.1").exists(),
        "hidden commands get no page"
    );
    let logs = std::fs::read_to_string(mandir.join("deckhand-logs.1")).expect("deckhand-logs.1");
    assert!(
        logs.contains("\\-\\-grep") || logs.contains("--grep"),
        "{logs}"
    );
    if Path::new("/usr/bin/man").exists() {
        let render = Command::new("man")
            .arg("-l")
            .arg(mandir.join("deckhand.1"))
            .env("MANPAGER", "cat")
            .output()
            .expect("man");
        assert!(render.status.success(), "{}", text(&render));
    }
}
