//! Registry credentials against a real registry that wants a password (Debian's docker-registry
//! with htpasswd auth, started by the test on its own port) and a Docker credential helper.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;

const USER: &str = "dh15";
const PASSWORD: &str = "helper-pass-42";

/// A private registry on 127.0.0.1:PORT; killed and removed on drop.
struct PrivateRegistry {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

impl PrivateRegistry {
    fn start() -> PrivateRegistry {
        let dir = tempfile::tempdir().expect("registry dir");
        // bcrypt through the system's crypt(3) (libxcrypt), as htpasswd -B would write it.
        let hash = Command::new("perl")
            .args([
                "-e",
                &format!("print crypt('{PASSWORD}', '$2y$05$deckhandtestsaltsalt15')"),
            ])
            .output()
            .expect("perl (for a bcrypt hash)");
        let hash = String::from_utf8_lossy(&hash.stdout).to_string();
        assert!(
            hash.starts_with("$2y$05$"),
            "crypt(3) without bcrypt: {hash}"
        );
        std::fs::write(dir.path().join("htpasswd"), format!("{USER}:{hash}\n")).expect("htpasswd");
        let port = free_port();
        std::fs::write(
            dir.path().join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: deckhand-test\n    path: {ht}\n",
                root = dir.path().join("data").display(),
                ht = dir.path().join("htpasswd").display(),
            ),
        )
        .expect("registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (apt-get install docker-registry)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the registry did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        PrivateRegistry { dir, port, child }
    }

    /// Pushes a demo image with `docker login` in a config of its own (never the machine's).
    fn push(&self, image: &str, from: &str) {
        let cfg = self.dir.path().join("pusher");
        std::fs::create_dir_all(&cfg).expect("pusher config");
        let mut login = Command::new("docker")
            .arg("--config")
            .arg(&cfg)
            .args(["login", "-u", USER, "--password-stdin"])
            .arg(format!("127.0.0.1:{}", self.port))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker login");
        std::io::Write::write_all(login.stdin.as_mut().expect("stdin"), PASSWORD.as_bytes())
            .expect("password");
        let out = login.wait_with_output().expect("login");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        docker_ok(&["tag", from, image]);
        let out = Command::new("docker")
            .arg("--config")
            .arg(&cfg)
            .args(["push", "-q", image])
            .output()
            .expect("push");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        docker_ok(&["rmi", image]);
    }
}

impl Drop for PrivateRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_credential_helper_answers_for_its_registry_and_other_registries_credentials_stay_home() {
    let registry = PrivateRegistry::start();
    let svc = TestService::new("hc");
    let repo = format!("127.0.0.1:{}/{}/demo", registry.port, svc.name);
    registry.push(&format!("{repo}:a000001"), &format!("{DEMO_REPO}:a000001"));

    // The operator's Docker config names a helper for this registry; the helper logs who asked.
    let home = tempfile::tempdir().expect("docker config");
    let bin = home.path().join("bin");
    std::fs::create_dir(&bin).expect("bin");
    let asked = home.path().join("asked");
    let helper = bin.join("docker-credential-dh15test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread -r server\necho \"$server\" >> {asked}\ncase \"$server\" in\n  127.0.0.1:{port}) echo '{{\"ServerURL\":\"127.0.0.1:{port}\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}';;\n  *) echo 'credentials not found in native keychain'; exit 1;;\nesac\n",
            asked = asked.display(),
            port = registry.port,
        ),
    )
    .expect("helper");
    Command::new("chmod")
        .arg("+x")
        .arg(&helper)
        .status()
        .expect("chmod");
    std::fs::write(
        home.path().join("config.json"),
        format!(
            r#"{{"auths": {{}}, "credHelpers": {{"127.0.0.1:{}": "dh15test"}}}}"#,
            registry.port
        ),
    )
    .expect("config.json");

    let sshd = SshServer::start();
    let toml = svc.service_toml("").replace(
        &format!("image = \"{}\"", svc.repo),
        &format!("image = \"{repo}\""),
    );
    let (_d, path) = write_config(&format!("{toml}\n{}", sshd.host_toml("lab", "lab-1")));
    let path_var = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = deckhand_env(
        &path,
        &["deploy", "a000001", "--env", "lab", "--yes"],
        &[
            ("DOCKER_CONFIG", &home.path().display().to_string()),
            ("PATH", &path_var),
            // CI credentials for another registry: they must not be offered to this one.
            ("DECKHAND_REGISTRY", "registry.example.com"),
            ("DECKHAND_REGISTRY_USERNAME", "ci"),
            ("DECKHAND_REGISTRY_PASSWORD", "other-registry-pass-7"),
        ],
    );
    let _ = docker(&["rmi", &format!("{repo}:a000001")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let asked = std::fs::read_to_string(&asked).unwrap_or_default();
    let this = format!("127.0.0.1:{}", registry.port);
    assert!(
        !asked.trim().is_empty() && asked.lines().all(|l| l == this),
        "the helper was asked about this registry only: {asked}"
    );
    assert!(!text(&out).contains(PASSWORD));
}
