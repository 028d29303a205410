//! deckhand's test harness, shared by the integration and console test crates (one crate,
//! compiled once): a real sshd on a loopback port with throw-away keys, the real local dockerd,
//! and per-test services with unique names so tests run in parallel without meeting.
//!
//! Nothing here skips: a missing dockerd, sshd or test image fails the test and says what to do.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The `deckhand` binary cargo built for the running test: `target/<profile>/deckhand`, next to
/// the `deps/` directory that holds the test executable (`DECKHAND_BIN` overrides it).
pub fn deckhand_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DECKHAND_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps");
    let bin = profile_dir.join("deckhand");
    assert!(
        bin.exists(),
        "{} is missing: run the tests through cargo (it builds the binary) or set DECKHAND_BIN",
        bin.display()
    );
    bin
}

pub const REGISTRY: &str = "127.0.0.1:5000";
pub const DEMO_REPO: &str = "127.0.0.1:5000/deckhand/demo";
pub const PROXY_IMAGE: &str = "127.0.0.1:5000/deckhand/haproxy:2.6";
/// The earlier proxy (nginx, switched by reload), for hosts set up with it.
pub const NGINX_PROXY_IMAGE: &str = "127.0.0.1:5000/deckhand/nginx:stable";
/// Good releases built by scripts/build-test-images.sh, oldest first.
pub const GOOD_SHAS: [&str; 7] = [
    "a000001", "a000002", "a000003", "a000004", "a000005", "a000006", "a000007",
];
pub const UNHEALTHY_SHA: &str = "bad0001";
pub const SLOW_SHA: &str = "5100001";
pub const EXITING_SHA: &str = "e000001";

pub fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `docker`: {e}. Install docker.io (apt-get install docker.io)")
        })
}

pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Fails loudly unless dockerd answers and the test images exist.
pub fn require_docker_and_images() {
    let out = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "dockerd does not answer: {}\nStart it: `bash scripts/test-services.sh` (installs nothing; needs docker.io)",
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "no docker client ({e}): apt-get install docker.io, then bash scripts/test-services.sh"
        ),
    }
    for image in [
        format!("{DEMO_REPO}:{}", GOOD_SHAS[0]),
        PROXY_IMAGE.to_string(),
    ] {
        let o = docker(&["image", "inspect", "--format", "{{.Id}}", &image]);
        assert!(
            o.status.success(),
            "test image {image} is missing: run `bash scripts/build-test-images.sh` (after scripts/test-services.sh)"
        );
    }
}

/// A port that is free now, from below the kernel's ephemeral range (32768-60999). A port the
/// kernel handed out (bind to port 0) could be handed out again, to Docker publishing another
/// test's app port on 127.0.0.1, before this test's proxy binds it ("address already in use",
/// seen in CI). Tests run in processes of their own, so the start is spread by pid and time.
pub fn free_port() -> u16 {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let start = std::process::id()
        .wrapping_mul(7919)
        .wrapping_add(nanos / 1000);
    for i in 0..SPAN {
        let n = start
            .wrapping_add(NEXT.fetch_add(1, Ordering::SeqCst))
            .wrapping_add(i);
        let Ok(port) = u16::try_from(LOW + n % SPAN) else {
            continue;
        };
        // Free on every address: the proxy publishes on 0.0.0.0.
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}-{}", LOW + SPAN)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique, valid service name for one test.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}{n}{:x}",
        std::process::id() % 10_000,
        nanos % 0xfff
    )
}

/// A real OpenSSH server on 127.0.0.1 with generated host and client keys. The client trusts
/// exactly its host key (strict checking). Killed on drop.
pub struct SshServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub client_key: PathBuf,
    pub known_hosts: PathBuf,
    child: Child,
}

fn sshd_binary() -> PathBuf {
    for p in ["/usr/sbin/sshd", "/usr/bin/sshd"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("sshd not found: install openssh-server (apt-get install openssh-server)");
}

fn keygen(path: &Path) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "deckhand-test", "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen (openssh-client) must be installed");
    assert!(
        out.status.success(),
        "ssh-keygen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl SshServer {
    pub fn start() -> SshServer {
        Self::start_with("")
    }

    /// [`start`](Self::start) with extra `sshd_config` lines (e.g. `SetEnv PATH=…`).
    pub fn start_with(extra_config: &str) -> SshServer {
        let sshd = sshd_binary();
        // Privilege separation directory; missing on machines where sshd never ran.
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::Builder::new()
            .prefix("dhssh")
            .tempdir()
            .expect("tempdir");
        let host_key = dir.path().join("host_key");
        let client_key = dir.path().join("client_key");
        keygen(&host_key);
        keygen(&client_key);
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized).expect("authorized_keys");
        let port = free_port();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\nAuthorizedKeysFile {ak}\n\
                 StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nAllowTcpForwarding yes\n\
                 AllowStreamLocalForwarding yes\nExposeAuthInfo yes\nMaxSessions 200\nMaxStartups 200\nLogLevel ERROR\n{extra_config}",
                hk = host_key.display(),
                pid = dir.path().join("sshd.pid").display(),
                ak = authorized.display(),
            ),
        )
        .expect("sshd_config");
        let pubkey = std::fs::read_to_string(host_key.with_extension("pub")).expect("host pub key");
        let mut parts = pubkey.split_whitespace();
        let (kind, key) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {kind} {key}\n"))
            .expect("known_hosts");
        let child = Command::new(&sshd)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.path().join("sshd.log"))
                    .map_or_else(|_| Stdio::null(), Stdio::from),
            )
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", sshd.display()));
        let server = SshServer {
            dir,
            port,
            client_key,
            known_hosts,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on port {port} within 10s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// The long-form host table for deckhand.toml.
    pub fn host_toml(&self, env: &str, name: &str) -> String {
        format!(
            "[[env.{env}.host]]\nname = \"{name}\"\nssh = \"root@127.0.0.1\"\nport = {port}\nidentity_file = \"{key}\"\nknown_hosts = \"{kh}\"\nstate_dir = \"{state}\"\n",
            port = self.port,
            key = self.client_key.display(),
            kh = self.known_hosts.display(),
            state = self.dir.path().join("host-state").display(),
        )
    }

    /// The host's deckhand state directory (audit log, locks) as the test configured it.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("host-state")
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One service's worth of host objects, named uniquely, removed on drop.
pub struct TestService {
    pub name: String,
    /// Image repository of this test (tags copied from the demo images).
    pub repo: String,
    pub public_port: u16,
}

impl TestService {
    pub fn new(prefix: &str) -> TestService {
        require_docker_and_images();
        let name = unique_name(prefix);
        let repo = format!("{REGISTRY}/{name}/demo");
        TestService {
            public_port: free_port(),
            repo,
            name,
        }
    }

    /// Tags demo images into this test's repository (locally only).
    pub fn tag_local(&self, shas: &[&str]) {
        for sha in shas {
            docker_ok(&[
                "tag",
                &format!("{DEMO_REPO}:{sha}"),
                &format!("{}:{sha}", self.repo),
            ]);
        }
    }

    /// The `[[service]]` table for deckhand.toml; `extra` is appended inside the table.
    pub fn service_toml(&self, extra: &str) -> String {
        // No watch window unless a test asks for one (`watch = ...` in `extra`): the other
        // tests' deploys stay as fast as before the watch existed.
        let watch = if extra.lines().any(|l| l.trim_start().starts_with("watch ")) {
            ""
        } else {
            "watch = \"0s\"\n"
        };
        format!(
            "[[service]]\nname = \"{}\"\nimage = \"{}\"\napp_port = 3000\npublic_port = {}\nproxy_image = \"{PROXY_IMAGE}\"\nhealth_timeout = \"20s\"\ndrain = \"10s\"\n{watch}{extra}\n",
            self.name, self.repo, self.public_port
        )
    }

    /// Lays the service out by hand per the on-droplet contract (no release engine involved):
    /// network, `live` running, `idle` stopped, proxy routing to `live`.
    pub fn lay_out_by_hand(
        &self,
        service: &deckhand::config::Service,
        live: (&str, &str),
        idle: Option<(&str, &str)>,
    ) {
        let net = format!("deckhand-{}", self.name);
        docker_ok(&["network", "create", &net]);
        let run = |color: &str, sha: &str| {
            docker_ok(&[
                "create",
                "--name",
                &format!("{}-{color}", self.name),
                "--network",
                &net,
                "-p",
                "127.0.0.1::3000",
                "--label",
                &format!("deckhand.service={}", self.name),
                "--label",
                &format!("deckhand.color={color}"),
                "--label",
                &format!("deckhand.sha={sha}"),
                "--label",
                "deckhand.deployed-at=2026-11-20T10:00:00Z",
                "--label",
                "deckhand.deployed-by=tester@ci",
                &format!("{}:{sha}", self.repo),
            ]);
            docker_ok(&["start", &format!("{}-{color}", self.name)]);
        };
        run(live.0, live.1);
        if let Some((color, sha)) = idle {
            run(color, sha);
            docker_ok(&["stop", "-t", "5", &format!("{}-{color}", self.name)]);
        }
        let proxy = format!("{}-proxy", self.name);
        docker_ok(&[
            "create",
            "--name",
            &proxy,
            "--network",
            &net,
            "-p",
            &format!("127.0.0.1:{}:80", self.public_port),
            "--label",
            &format!("deckhand.service={}", self.name),
            "--label",
            "deckhand.role=proxy",
            PROXY_IMAGE,
        ]);
        let conf = deckhand::state::proxy_conf::render(
            service,
            &deckhand::state::proxy_conf::ProxyRoute {
                color: deckhand::state::Color::parse(live.0).expect("color"),
                sha: live.1.to_string(),
            },
        );
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(conf.as_bytes()).expect("write conf");
        docker_ok(&[
            "cp",
            &f.path().display().to_string(),
            &format!("{proxy}:/etc/haproxy/haproxy.cfg"),
        ]);
        docker_ok(&["start", &proxy]);
    }

    pub fn container_state(&self, color: &str) -> Option<String> {
        let o = docker(&[
            "inspect",
            "--format",
            "{{.State.Status}}",
            &format!("{}-{color}", self.name),
        ]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }
}

impl Drop for TestService {
    fn drop(&mut self) {
        let ids = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=deckhand.service={}", self.name),
        ]);
        let ids = String::from_utf8_lossy(&ids.stdout).to_string();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids);
            let _ = docker(&args);
        }
        for suffix in ["blue", "green", "proxy"] {
            let _ = docker(&["rm", "-f", &format!("{}-{suffix}", self.name)]);
        }
        let _ = docker(&["network", "rm", &format!("deckhand-{}", self.name)]);
        let tags = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}", &self.repo]);
        for t in String::from_utf8_lossy(&tags.stdout).split_whitespace() {
            let _ = docker(&["rmi", t]);
        }
    }
}

/// Writes a config file in a temp dir and returns both (keep the dir alive).
pub fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("deckhand.toml");
    std::fs::write(&path, text).expect("write config");
    (dir, path)
}

/// Runs the real `deckhand` binary.
pub fn deckhand(config: &Path, args: &[&str]) -> std::process::Output {
    let state = tempfile::tempdir().expect("state dir");
    Command::new(deckhand_bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("XDG_STATE_HOME", state.path())
        .stdin(Stdio::null())
        .output()
        .expect("run deckhand")
}

pub fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl TestService {
    /// Pushes demo images into this test's repository in the registry, then removes the local
    /// tags so a deploy has to pull them.
    pub fn push(&self, shas: &[&str]) {
        for sha in shas {
            let image = format!("{}:{sha}", self.repo);
            docker_ok(&["tag", &format!("{DEMO_REPO}:{sha}"), &image]);
            docker_ok(&["push", "-q", &image]);
            docker_ok(&["rmi", &image]);
        }
    }

    pub fn container_id(&self, color: &str) -> Option<String> {
        let o = docker(&[
            "inspect",
            "--format",
            "{{.Id}}",
            &format!("{}-{color}", self.name),
        ]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }
}

/// One request through the public port on a fresh connection: (status code, X-Deckhand-Color).
pub fn public_get(port: u16, path: &str) -> Result<(u16, String), String> {
    get_at(std::net::SocketAddr::from(([127, 0, 0, 1], port)), path)
}

/// One request on a fresh connection to `addr`: the status code and the color that answered.
pub fn get_at(addr: std::net::SocketAddr, path: &str) -> Result<(u16, String), String> {
    use std::io::Read;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| {
            format!(
                "no status line in {:?}",
                text.chars().take(80).collect::<String>()
            )
        })?;
    // Header names are case-insensitive; HAProxy sends them in lower case.
    let color = text
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("X-Deckhand-Color"))
                .map(|(_, v)| v)
        })
        .unwrap_or("")
        .trim()
        .to_string();
    Ok((code, color))
}

/// A client hammering the public port from a thread until stopped: what a user sees.
pub struct LoadClient {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<LoadReport>>,
}

#[derive(Debug, Default)]
pub struct LoadReport {
    pub sent: u64,
    pub failed: u64,
    pub failures: Vec<String>,
    pub colors_seen: std::collections::BTreeSet<String>,
}

impl LoadClient {
    pub fn start(port: u16) -> LoadClient {
        Self::start_at(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
    }

    pub fn start_at(addr: std::net::SocketAddr) -> LoadClient {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut r = LoadReport::default();
            while !flag.load(Ordering::Relaxed) {
                r.sent += 1;
                match get_at(addr, "/") {
                    Ok((200, color)) => {
                        r.colors_seen.insert(color);
                    }
                    Ok((code, color)) => {
                        r.failed += 1;
                        r.failures.push(format!("HTTP {code} from `{color}`"));
                    }
                    Err(e) => {
                        r.failed += 1;
                        r.failures.push(e);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            r
        });
        LoadClient {
            stop,
            handle: Some(handle),
        }
    }

    pub fn finish(mut self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .map(|h| h.join().expect("load thread"))
            .unwrap_or_default()
    }
}

/// A config with one test service and the ssh host `lab-1` in env `lab` (and `local` in dev).
pub fn ssh_config(
    svc: &TestService,
    sshd: &SshServer,
    service_extra: &str,
) -> (tempfile::TempDir, PathBuf) {
    write_config(&format!(
        "{}\n[env.dev]\nhosts = [\"local\"]\n\n{}",
        svc.service_toml(service_extra),
        sshd.host_toml("lab", "lab-1")
    ))
}

/// Runs the real `deckhand` binary with extra environment variables.
pub fn deckhand_env(config: &Path, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let state = tempfile::tempdir().expect("state dir");
    let mut cmd = Command::new(deckhand_bin());
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env("XDG_STATE_HOME", state.path())
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run deckhand")
}

/// A tiny webhook receiver on loopback: collects the bodies of POSTs it gets.
pub struct Webhook {
    pub url: String,
    pub bodies: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Webhook {
    pub fn start() -> Webhook {
        use std::io::{BufRead, BufReader, Read};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                if let Ok(mut b) = sink.lock() {
                    b.push(String::from_utf8_lossy(&body).into_owned());
                }
                let mut s = reader.into_inner();
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        });
        Webhook { url, bodies }
    }

    pub fn received(&self) -> Vec<String> {
        self.bodies.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

/// `deckhand status --env lab --output json`: the exit code and the parsed document.
pub fn status_json(path: &Path) -> (Option<i32>, serde_json::Value) {
    let out = deckhand(path, &["status", "--env", "lab", "--output", "json"]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code(), v)
}

/// Runs `deckhand deploy SHA --output json` on env `lab` and calls `at_step` with the process
/// when `step` starts (to kill it, or to cut its connection). Returns `None` when the step was
/// never reached, else the exit code.
pub fn deploy_interrupted_at(
    path: &Path,
    sha: &str,
    step: &str,
    at_step: impl FnOnce(&mut Child),
) -> Option<Option<i32>> {
    use std::io::BufRead;
    let mut child = Command::new(deckhand_bin())
        .arg("--config")
        .arg(path)
        .args(["deploy", sha, "--env", "lab", "--yes", "--output", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn deploy");
    let stdout = child.stdout.take().expect("stdout");
    let needle = format!("\"step\":\"{step}\"");
    let mut at_step = Some(at_step);
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line.contains("\"event\":\"step_started\"")
            && line.contains(&needle)
            && let Some(f) = at_step.take()
        {
            f(&mut child);
        }
    }
    let status = child.wait().expect("wait");
    at_step.is_none().then_some(status.code())
}

/// The ssh masters deckhand runs for the sshd on `port` (they daemonize, so they are found by
/// their command line, not as children).
pub fn ssh_masters(port: u16) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", &format!("^ssh .*-M -f -N.* -p {port} ")])
        .output()
        .expect("pgrep (procps)");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The audit log of a host (`<state_dir>/audit.jsonl`), one JSON value per line.
pub fn audit_records(state_dir: &Path) -> Vec<serde_json::Value> {
    let path = state_dir.join("audit.jsonl");
    let body = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{body}")))
        .collect()
}

/// How many deploys have an outcome (anything but `started`) in the audit log.
pub fn ended_deploys(audit: &[serde_json::Value]) -> usize {
    audit
        .iter()
        .filter(|r| r["action"] == "deploy" && r["outcome"] != "started")
        .count()
}

/// `deckhand unlock --yes` on env `lab` succeeds (after an interrupted run left its lock).
pub fn unlock_ok(path: &Path, after: &str) {
    let out = deckhand(path, &["unlock", "--env", "lab", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "unlock after {after}: {}",
        text(&out)
    );
}

/// The same deploy run again converges: it exits 0, `status` exits 0 and `sha` is live.
pub fn redeploy_converges(path: &Path, sha: &str, after: &str) {
    let out = deckhand(path, &["deploy", sha, "--env", "lab", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "re-run after {after}: {}",
        text(&out)
    );
    let (code, v) = status_json(path);
    assert_eq!(code, Some(0), "after {after}: {v:#}");
    assert_eq!(
        v["hosts"][0]["services"][0]["live_sha"], sha,
        "after {after}"
    );
}

/// [`deploy_interrupted_at`] with extra environment variables for the deploy.
pub fn deploy_interrupted_at_with_env(
    path: &Path,
    sha: &str,
    step: &str,
    envs: &[(&str, &str)],
    at_step: impl FnOnce(&mut Child),
) -> Option<Option<i32>> {
    use std::io::BufRead;
    let mut cmd = Command::new(deckhand_bin());
    cmd.arg("--config")
        .arg(path)
        .args(["deploy", sha, "--env", "lab", "--yes", "--output", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn deploy");
    let stdout = child.stdout.take().expect("stdout");
    let needle = format!("\"step\":\"{step}\"");
    let mut at_step = Some(at_step);
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line.contains("\"event\":\"step_started\"")
            && line.contains(&needle)
            && let Some(f) = at_step.take()
        {
            f(&mut child);
        }
    }
    let status = child.wait().expect("wait");
    at_step.is_none().then_some(status.code())
}

/// Clients that keep their connections open, as browsers, HTTP/1.1 pools and load balancers
/// with backend keep-alive do: `conns` threads, each sending request after request on one
/// persistent connection. A request that fails on an open connection (closed under it, reset,
/// a bad status) is a failure; a connection the server closed cleanly *after* an answer that
/// said `Connection: close` is reopened and counted, not failed.
pub struct KeepAliveClients {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handles: Vec<std::thread::JoinHandle<KeepAliveReport>>,
}

#[derive(Debug, Default)]
pub struct KeepAliveReport {
    pub sent: u64,
    pub failed: u64,
    /// Connections opened (one per client at the start, plus reconnects).
    pub connections: u64,
    pub failures: Vec<String>,
    pub colors_seen: std::collections::BTreeSet<String>,
}

impl KeepAliveClients {
    pub fn start(port: u16, conns: usize) -> KeepAliveClients {
        Self::start_at(std::net::SocketAddr::from(([127, 0, 0, 1], port)), conns)
    }

    /// [`start`](Self::start) against any address (e.g. a Swarm node's published port).
    pub fn start_at(addr: std::net::SocketAddr, conns: usize) -> KeepAliveClients {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handles = (0..conns)
            .map(|_| {
                let flag = stop.clone();
                std::thread::spawn(move || keep_alive_loop(addr, &flag))
            })
            .collect();
        KeepAliveClients { stop, handles }
    }

    pub fn finish(self) -> KeepAliveReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = KeepAliveReport::default();
        for h in self.handles {
            let r = h.join().expect("keep-alive thread");
            total.sent += r.sent;
            total.failed += r.failed;
            total.connections += r.connections;
            total.failures.extend(r.failures);
            total.colors_seen.extend(r.colors_seen);
        }
        total
    }
}

fn keep_alive_loop(
    addr: std::net::SocketAddr,
    stop: &std::sync::atomic::AtomicBool,
) -> KeepAliveReport {
    use std::io::BufReader;
    let mut r = KeepAliveReport::default();
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            match TcpStream::connect(addr) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let _ = s.set_nodelay(true);
                    r.connections += 1;
                    conn = Some(BufReader::new(s));
                }
                Err(e) => {
                    r.sent += 1;
                    r.failed += 1;
                    r.failures.push(format!("connect: {e}"));
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        r.sent += 1;
        match keep_alive_request(c) {
            Ok((200, color, close)) => {
                r.colors_seen.insert(color);
                if close {
                    conn = None;
                }
            }
            Ok((code, color, _)) => {
                r.failed += 1;
                r.failures.push(format!("HTTP {code} from `{color}`"));
                conn = None;
            }
            Err(e) => {
                r.failed += 1;
                r.failures.push(e);
                conn = None;
            }
        }
        // Paced like the fresh-connection client: the point is requests at every instant of a
        // switch, not load (CI shares 2 cores).
        std::thread::sleep(Duration::from_millis(5));
    }
    r
}

/// One request on an open connection: status, color, and whether the server will close it.
fn keep_alive_request(
    c: &mut std::io::BufReader<TcpStream>,
) -> Result<(u16, String, bool), String> {
    use std::io::{BufRead, Read};
    c.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .map_err(|e| format!("write on a kept-alive connection: {e}"))?;
    let mut status = String::new();
    let n = c
        .read_line(&mut status)
        .map_err(|e| format!("read on a kept-alive connection: {e}"))?;
    if n == 0 {
        return Err("the kept-alive connection was closed under the request".into());
    }
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse::<u16>().ok())
        .ok_or_else(|| format!("no status line: {status:?}"))?;
    let (mut len, mut color, mut close) = (0usize, String::new(), false);
    loop {
        let mut line = String::new();
        c.read_line(&mut line)
            .map_err(|e| format!("read headers: {e}"))?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                len = v.parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("x-deckhand-color") {
                color = v.to_string();
            } else if k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close") {
                close = true;
            }
        }
    }
    let mut body = vec![0u8; len];
    c.read_exact(&mut body)
        .map_err(|e| format!("read body: {e}"))?;
    Ok((code, color, close))
}

// --- issue 17: logs, doctor, init, metrics -------------------------------------------------

/// Debian's static busybox on scratch (scripts/build-test-images.sh): a shell for containers
/// that print hostile or huge logs.
pub const BUSYBOX_IMAGE: &str = "127.0.0.1:5000/deckhand/busybox:1";

/// A container named like a color of `svc` (`S-blue`, `S-green`), labelled per the contract,
/// running `script` in busybox's sh. Removed with the service.
pub fn shell_color(svc: &TestService, color: &str, script: &str) {
    let o = docker(&["image", "inspect", "--format", "{{.Id}}", BUSYBOX_IMAGE]);
    assert!(
        o.status.success(),
        "test image {BUSYBOX_IMAGE} is missing: run `bash scripts/build-test-images.sh`"
    );
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &format!("{}-{color}", svc.name),
        "--log-opt",
        "max-size=64m",
        "--label",
        &format!("deckhand.service={}", svc.name),
        "--label",
        &format!("deckhand.color={color}"),
        "--label",
        "deckhand.sha=0000001",
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        script,
    ]);
}

/// A throw-away user with a key login, in `groups` only (no `docker` unless named), removed
/// on drop.
pub struct TestUser(pub String);

impl TestUser {
    pub fn create(groups: &[&str]) -> TestUser {
        let name = format!("dh{}", unique_name("v").replace('-', ""));
        let name: String = name.chars().take(30).collect();
        let mut cmd = Command::new("useradd");
        cmd.args(["-M", "-s", "/bin/sh"]);
        if !groups.is_empty() {
            cmd.args(["-G", &groups.join(",")]);
        }
        let ok = cmd.arg(&name).status().unwrap_or_else(|e| {
            panic!("useradd ({e}): the test needs root and the passwd package")
        });
        assert!(ok.success(), "useradd {name} failed");
        // A `!` password means "locked" to sshd without PAM, even for key logins.
        let ok = Command::new("usermod")
            .args(["-p", "*", &name])
            .status()
            .expect("usermod");
        assert!(ok.success());
        TestUser(name)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).status();
    }
}

/// Runs `promtool check metrics` on `text`: (success, what promtool said).
pub fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("promtool ({e}): install Debian's prometheus package (scripts/setup.sh does)")
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    (out.status.success(), text_of(&out))
}

fn text_of(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Sends a signal (by name: TERM, HUP, STOP, CONT, ...) to a process.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("kill (procps)");
    assert!(ok.success(), "kill -{sig} {pid} failed");
}

/// A deploy or rollback of the real binary with `--output json`: events on stdout (read line by
/// line), the final error on stderr (collected to a file).
pub struct JsonRun {
    pub child: Child,
    pub lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl JsonRun {
    pub fn spawn(config: &Path, args: &[&str]) -> JsonRun {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr = dir.path().join("stderr");
        let mut child = Command::new(deckhand_bin())
            .arg("--config")
            .arg(config)
            .args(args)
            .args(["--output", "json"])
            .env("XDG_STATE_HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn deckhand");
        let out = child.stdout.take().expect("stdout");
        JsonRun {
            child,
            lines: std::io::BufRead::lines(std::io::BufReader::new(out)),
            stderr,
            _dir: dir,
        }
    }

    /// Reads events until `step` starts; false when the run ended first.
    pub fn wait_for_step(&mut self, step: &str) -> bool {
        let needle = format!("\"step\":\"{step}\"");
        for line in self.lines.by_ref() {
            let Ok(line) = line else { return false };
            if line.contains("\"event\":\"step_started\"") && line.contains(&needle) {
                return true;
            }
        }
        false
    }

    /// Waits for the end: the exit code and everything printed (events and the error).
    pub fn finish(mut self) -> (Option<i32>, String) {
        let mut all: Vec<String> = self.lines.by_ref().map_while(Result::ok).collect();
        let status = self.child.wait().expect("wait");
        all.push(std::fs::read_to_string(&self.stderr).unwrap_or_default());
        (status.code(), all.join("\n"))
    }
}

/// A small tmpfs mounted on a directory (root only), unmounted on drop: a full disk for
/// deckhand's state directory.
pub struct SmallDisk {
    pub dir: PathBuf,
}

impl SmallDisk {
    pub fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("mount (util-linux)");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs on {} (the test runs as root, as CI does): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk {
            dir: dir.to_path_buf(),
        }
    }

    /// Fills the filesystem until no data block is left.
    pub fn fill(&self) {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k"])
            .arg(format!("of={}", self.dir.join("filler").display()))
            .stderr(Stdio::null())
            .status();
        let probe = std::fs::write(self.dir.join("probe"), b"x");
        assert!(probe.is_err(), "the disk is not full");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A multi-node Docker Swarm of private engines (issue 16): see [`swarm::SwarmCluster`].
pub mod swarm;

/// A TCP relay on loopback that delays every byte by `delay` each way (RTT = 2 × delay), as
/// scripts/bench_lib.py's `LatencyRelay` does for the benchmarks: for tests in which the
/// link's round trips, not local work, must decide the order of events (round-trip counts).
/// It counts the bytes it carried (both directions, ssh framing included): the wire cost.
pub struct LatencyRelay {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    carried: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl LatencyRelay {
    pub fn start(target: u16, delay: Duration) -> LatencyRelay {
        use std::sync::Arc;
        use std::sync::atomic::AtomicBool;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let port = listener.local_addr().expect("relay addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let carried = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = carried.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    if let (Ok(from), Ok(to)) = (from, to) {
                        relay_one_way(from, to, delay, count.clone());
                    }
                }
            }
        });
        LatencyRelay {
            port,
            stop,
            carried,
        }
    }

    /// Bytes carried so far, both directions.
    pub fn bytes(&self) -> u64 {
        self.carried.load(Ordering::SeqCst)
    }
}

/// Reads as bytes come and writes each chunk `delay` after it was read (the delays of
/// consecutive chunks overlap, as on a link: the relay adds latency, not a bandwidth limit).
fn relay_one_way(
    mut from: TcpStream,
    mut to: TcpStream,
    delay: Duration,
    carried: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use std::io::Read;
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send((Instant::now() + delay, Vec::new()));
                    break;
                }
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    std::thread::spawn(move || {
        while let Ok((due, bytes)) = rx.recv() {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if bytes.is_empty() {
                let _ = to.shutdown(std::net::Shutdown::Write);
                break;
            }
            if to.write_all(&bytes).is_err() {
                break;
            }
            carried.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        }
    });
}

impl Drop for LatencyRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

impl SshServer {
    /// The host's entry as [`SshServer::host_toml`] writes it, reached through another port
    /// (a relay in front of this sshd), whose host key is trusted as well.
    pub fn host_toml_via(&self, env: &str, name: &str, port: u16) -> String {
        let known = std::fs::read_to_string(&self.known_hosts).expect("known_hosts");
        let key = known
            .lines()
            .next()
            .and_then(|l| l.split_once(' '))
            .map(|(_, k)| k.to_string())
            .expect("a host key line");
        let line = format!("[127.0.0.1]:{port} {key}\n");
        if !known.contains(&line) {
            std::fs::write(&self.known_hosts, format!("{known}{line}")).expect("known_hosts");
        }
        self.host_toml(env, name).replace(
            &format!("port = {}\n", self.port),
            &format!("port = {port}\n"),
        )
    }
}

/// A POST of `path` through `port` on loopback (the demo app's `/admin/...` switches); it
/// must answer 200.
pub fn post_ok(port: u16, path: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("post");
    let mut buf = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut buf);
    assert!(buf.starts_with("HTTP/1.1 200"), "{buf}");
}

/// A private runtime directory (0700 under /tmp), as a login session has: kept ssh masters
/// live there.
pub fn private_runtime_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let runtime = tempfile::Builder::new()
        .prefix("rt")
        .tempdir_in("/tmp")
        .expect("runtime dir");
    std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    runtime
}
