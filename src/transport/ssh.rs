//! The SSH link of a host: one native-mux master, forwards as unix sockets in a private directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openssh::{ForwardType, KnownHosts, Session, SessionBuilder, Socket};
use tempfile::TempDir;
use tokio::sync::Mutex;

use super::TransportError;
use crate::config::{HostSpec, HostTarget};

pub(crate) struct SshLink {
    pub session: Session,
    /// Holds the control socket and every forwarded socket; removing it cleans them all, which
    /// matters because ssh itself never unlinks forwarded unix sockets. (A kept master's
    /// control socket lives in its own directory, see `kept`.)
    dir: TempDir,
    tcp_forwards: Mutex<HashMap<u16, PathBuf>>,
    /// A kept master (`--keep-connection`): its directory, and whether this process found it
    /// running. Such a master is left running at close, without this process's forwards.
    pub kept: Option<(PathBuf, bool)>,
    /// Every forward this process asked for (local socket, remote end), cancelled at close.
    forwards: std::sync::Mutex<Vec<(PathBuf, Remote)>>,
}

#[derive(Clone)]
enum Remote {
    Unix(String),
    Tcp(u16),
}

fn builder(spec: &HostSpec, control_dir: &Path) -> SessionBuilder {
    let mut b = SessionBuilder::default();
    b.known_hosts_check(KnownHosts::Strict)
        .control_directory(control_dir)
        .connect_timeout(spec.connect_timeout)
        .server_alive_interval(Duration::from_secs(15));
    if let HostTarget::Ssh {
        user,
        port,
        identity_file,
        known_hosts,
        ..
    } = &spec.target
    {
        if let Some(u) = user {
            b.user(u.clone());
        }
        if let Some(p) = port {
            b.port(*p);
        }
        if let Some(k) = identity_file {
            b.keyfile(k);
        }
        if let Some(k) = known_hosts {
            b.user_known_hosts_file(k);
        }
    }
    b
}

impl SshLink {
    pub async fn connect(spec: &HostSpec) -> Result<Self, TransportError> {
        let HostTarget::Ssh { destination, .. } = &spec.target else {
            return Err(TransportError::Other {
                host: spec.name.clone(),
                detail: "not an ssh host".into(),
            });
        };
        reap_orphans_once().await;
        // Unix socket paths are limited to 108 bytes and openssh appends ~40 characters, so the
        // directory must be short; one per host keeps masters independent.
        let dir = tempfile::Builder::new()
            .prefix("dh")
            .tempdir_in(short_tmp())
            .map_err(|e| TransportError::Other {
                host: spec.name.clone(),
                detail: format!("cannot create a socket directory: {e}"),
            })?;
        // Who owns the master: a later deckhand stops it if this process dies without closing.
        let _ = std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string());
        let mut kept = None;
        let mut b = builder(spec, dir.path());
        if let Some(idle) = super::kept::idle_time() {
            match super::kept::base_dir().and_then(|base| super::kept::host_dir(&base, spec)) {
                Ok(kdir) => {
                    if let Some(sock) = super::kept::recorded_socket(&kdir) {
                        // A resumed session never stops the master when dropped.
                        let session = Session::resume_mux(sock.into_boxed_path(), None);
                        if session.check().await.is_ok() {
                            tracing::info!(host = %spec.name, "reusing the kept ssh master");
                            return Ok(Self {
                                session,
                                dir,
                                tcp_forwards: Mutex::new(HashMap::new()),
                                kept: Some((kdir, true)),
                                forwards: std::sync::Mutex::new(Vec::new()),
                            });
                        }
                        tracing::info!(host = %spec.name, "the kept ssh master is gone; starting a new one");
                    }
                    super::kept::forget(&kdir);
                    b = builder(spec, &kdir);
                    let secs = usize::try_from(idle.as_secs()).unwrap_or(usize::MAX).max(1);
                    b.control_persist(openssh::ControlPersist::IdleFor(
                        std::num::NonZeroUsize::new(secs).unwrap_or(std::num::NonZeroUsize::MIN),
                    ));
                    kept = Some((kdir, false));
                }
                Err(why) => {
                    tracing::warn!(host = %spec.name, %why, "not keeping the ssh connection");
                }
            }
        }
        let session = match b.connect_mux(destination).await {
            Ok(s) => s,
            Err(e) => {
                let mut err = classify_connect_error(spec, &e);
                if let TransportError::HostKey { presented, .. } = &mut err {
                    *presented = presented_fingerprints(spec).await;
                }
                return Err(err);
            }
        };
        if let Some((kdir, _)) = &kept {
            super::kept::record_socket(kdir, session.control_socket());
        }
        Ok(Self {
            session,
            dir,
            tcp_forwards: Mutex::new(HashMap::new()),
            kept,
            forwards: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Forwards a local unix socket to a unix socket on the host (the Docker socket).
    pub async fn forward_unix(
        &self,
        host: &str,
        name: &str,
        remote: &str,
    ) -> Result<PathBuf, TransportError> {
        let local = self.dir.path().join(name);
        let _ = std::fs::remove_file(&local);
        self.session
            .request_port_forward(
                ForwardType::Local,
                Socket::UnixSocket {
                    path: local.as_path().into(),
                },
                Socket::UnixSocket {
                    path: Path::new(remote).into(),
                },
            )
            .await
            .map_err(|e| TransportError::Forward {
                host: host.to_string(),
                what: format!("the unix socket {remote}"),
                detail: e.to_string(),
            })?;
        if let Ok(mut f) = self.forwards.lock() {
            f.push((local.clone(), Remote::Unix(remote.to_string())));
        }
        Ok(local)
    }

    /// A local unix socket reaching `127.0.0.1:port` on the host, made once per port.
    pub async fn forward_tcp(&self, host: &str, port: u16) -> Result<PathBuf, TransportError> {
        let mut map = self.tcp_forwards.lock().await;
        if let Some(p) = map.get(&port) {
            return Ok(p.clone());
        }
        let local = self.dir.path().join(format!("p{port}.sock"));
        let _ = std::fs::remove_file(&local);
        self.session
            .request_port_forward(
                ForwardType::Local,
                Socket::UnixSocket {
                    path: local.as_path().into(),
                },
                Socket::TcpSocket {
                    host: "127.0.0.1".into(),
                    port,
                },
            )
            .await
            .map_err(|e| TransportError::Forward {
                host: host.to_string(),
                what: format!("TCP port {port}"),
                detail: e.to_string(),
            })?;
        map.insert(port, local.clone());
        if let Ok(mut f) = self.forwards.lock() {
            f.push((local.clone(), Remote::Tcp(port)));
        }
        Ok(local)
    }

    pub async fn close(self) {
        if self.kept.is_none() {
            let _ = self.session.close().await;
            drop(self.dir);
            return;
        }
        // A kept master outlives this process: it keeps no listener on a socket of ours.
        let forwards = self.forwards.lock().map(|f| f.clone()).unwrap_or_default();
        for (local, remote) in forwards {
            let remote = match &remote {
                Remote::Unix(p) => Socket::UnixSocket {
                    path: Path::new(p).into(),
                },
                Remote::Tcp(port) => Socket::TcpSocket {
                    host: "127.0.0.1".into(),
                    port: *port,
                },
            };
            let _ = self
                .session
                .close_port_forward(
                    ForwardType::Local,
                    Socket::UnixSocket {
                        path: local.as_path().into(),
                    },
                    remote,
                )
                .await;
        }
        let _ = self.session.detach();
        drop(self.dir);
    }
}

/// The fingerprints the host presents now, resolved the way ssh itself resolves the destination
/// (`ssh -G`: aliases, HostName, Port), so the operator can compare them out of band.
async fn presented_fingerprints(spec: &HostSpec) -> String {
    use tokio::process::Command;
    let HostTarget::Ssh {
        destination, port, ..
    } = &spec.target
    else {
        return "unknown".into();
    };
    let mut g = Command::new("ssh");
    g.arg("-G");
    if let Some(p) = port {
        g.arg("-p").arg(p.to_string());
    }
    let resolved = match g.arg("--").arg(destination).output().await {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => return "unknown (ssh -G failed)".into(),
    };
    let field = |k: &str| {
        resolved
            .lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
    };
    let (Some(hostname), Some(p)) = (field("hostname "), field("port ")) else {
        return "unknown".into();
    };
    let scan = Command::new("ssh-keyscan")
        .args(["-T", "5", "-p", &p, "--", &hostname])
        .output()
        .await;
    let Ok(scan) = scan else {
        return "unknown (ssh-keyscan missing)".into();
    };
    let mut keygen = match Command::new("ssh-keygen")
        .args(["-l", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return "unknown (ssh-keygen missing)".into(),
    };
    if let Some(mut stdin) = keygen.stdin.take() {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&scan.stdout).await;
    }
    match keygen.wait_with_output().await {
        Ok(o) if o.status.success() => {
            let fps: Vec<String> = String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.len() >= 2).then(|| format!("{} {}", f[1], f.last().unwrap_or(&"")))
                })
                .collect();
            if fps.is_empty() {
                "no key (the host did not answer a key scan)".into()
            } else {
                fps.join(", ")
            }
        }
        _ => "unknown".into(),
    }
}

const OWNER_FILE: &str = "owner.pid";

/// Stops ssh masters left by deckhand processes that died without closing them (SIGKILL, a
/// crash): with ControlPersist they would live forever. Once per process, before connecting.
async fn reap_orphans_once() {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async { reap_orphans(&short_tmp()).await })
        .await;
}

pub(crate) async fn reap_orphans(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let dir = e.path();
        let is_ours = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("dh"))
            && dir.is_dir();
        if !is_ours {
            continue;
        }
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        // openssh keeps the control socket at `.ssh-connection*/master`.
        let sockets: Vec<PathBuf> = files
            .flatten()
            .map(|f| f.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(".ssh-connection"))
            })
            .map(|p| if p.is_dir() { p.join("master") } else { p })
            .filter(|p| p.exists())
            .collect();
        if sockets.is_empty() {
            continue;
        }
        // Only a directory whose owner is known to be dead is touched: without the owner file
        // it may belong to a live process (or another tool).
        let Some(owner) = std::fs::read_to_string(dir.join(OWNER_FILE))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        for sock in &sockets {
            let _ = tokio::process::Command::new("ssh")
                .arg("-S")
                .arg(sock)
                .args(["-O", "exit", "deckhand-orphan"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .await;
        }
        tracing::info!(dir = %dir.display(), "stopped the ssh master of a deckhand that died");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn short_tmp() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() && Path::new(&d).join("x").as_os_str().len() < 40 => {
            PathBuf::from(d)
        }
        _ => PathBuf::from("/tmp"),
    }
}

fn classify_connect_error(spec: &HostSpec, e: &openssh::Error) -> TransportError {
    let detail = crate::util::error_chain(e);
    let host = spec.name.clone();
    let lower = detail.to_ascii_lowercase();
    if lower.contains("host key verification failed")
        || lower.contains("remote host identification has changed")
        || lower.contains("no matching host key")
        || lower.contains("host key is known")
    {
        let (dest, port, kh) = match &spec.target {
            HostTarget::Ssh {
                destination,
                port,
                known_hosts,
                ..
            } => (destination.clone(), *port, known_hosts.clone()),
            HostTarget::Local => (host.clone(), None, None),
        };
        let bare = dest.rsplit('@').next().unwrap_or(&dest).to_string();
        let keyscan_args = match port {
            Some(p) => format!("-p {p} {bare}"),
            None => bare.clone(),
        };
        let known_hosts = kh.map_or_else(
            || "~/.ssh/known_hosts".to_string(),
            |p| p.display().to_string(),
        );
        let entry = match port {
            Some(p) => format!("[{bare}]:{p}"),
            None => bare,
        };
        let remove_hint =
            if lower.contains("has changed") || lower.contains("identification has changed") {
                format!(" after removing the old entry: `ssh-keygen -R '{entry}' -f {known_hosts}`")
            } else {
                String::new()
            };
        return TransportError::HostKey {
            host,
            detail: last_meaningful_line(&detail),
            presented: "unknown (could not scan the host)".into(),
            keyscan_args,
            known_hosts,
            remove_hint,
        };
    }
    if lower.contains("timed out") || lower.contains("timeout") {
        return TransportError::Timeout {
            host,
            secs: spec.connect_timeout.as_secs(),
            what: "ssh connect",
        };
    }
    TransportError::Connect {
        host,
        detail: last_meaningful_line(&detail),
    }
}

/// ssh prints banners and warnings before the reason; the reason is what an operator needs.
fn last_meaningful_line(detail: &str) -> String {
    let lines: Vec<&str> = detail
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("@@@"))
        .collect();
    if lines.len() <= 3 {
        lines.join(" ")
    } else {
        lines[lines.len() - 3..].join(" ")
    }
}
