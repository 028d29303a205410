//! One connected host: Docker client, HTTP to its loopback ports, fixed commands.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bollard::models::SystemVersion;
use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use tokio::io::AsyncWriteExt;

use super::docker_client::PooledSocket;
use super::remote_shell::{ShellError, ShellPool, ShellStats};
use super::ssh::SshLink;
use super::{HttpEndpoint, TransportError};
use crate::config::{HostSpec, HostTarget};

/// Seconds bollard allows one Docker request; long pulls are bounded by the caller instead.
const DOCKER_REQUEST_TIMEOUT_SECS: u64 = 900;

/// How long one remote command may run. Every command deckhand runs is small (a lock file, an
/// audit tail, `df`); one that hangs (a stuck disk or NFS mount, a FIFO where a file should be)
/// must fail with a timeout instead of stalling the lock heartbeat or the console.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Overrides [`DEFAULT_COMMAND_TIMEOUT`] (a duration: `30s`, `2m`).
pub const COMMAND_TIMEOUT_ENV: &str = "DECKHAND_COMMAND_TIMEOUT";

/// The largest output deckhand keeps from one remote command (the audit tail, a lock file, the
/// env file, the alert book are all far smaller); more is cut, with a marker.
pub const MAX_COMMAND_OUTPUT: usize = 4 * 1024 * 1024;

/// Connections to the forwarded Docker socket opened at connect: as many as the first burst of
/// a status read sends at once (inspect of both colors and the proxy, its config file, the
/// images, the engine's info, the traffic exec), so none of them waits for a new channel.
const WARM_CONNECTIONS: usize = 7;

/// The API version both sides speak: the engine's, unless it is newer than bollard's.
fn negotiated(server: Option<&str>) -> ClientVersion {
    let parse = |v: &str| {
        let (a, b) = v.split_once('.')?;
        Some(ClientVersion {
            major_version: a.trim().parse().ok()?,
            minor_version: b.trim().parse().ok()?,
        })
    };
    match server.and_then(parse) {
        Some(v) if v < *API_DEFAULT_VERSION => v,
        _ => *API_DEFAULT_VERSION,
    }
}

fn command_timeout() -> Duration {
    std::env::var(COMMAND_TIMEOUT_ENV)
        .ok()
        .and_then(|v| crate::util::parse_duration(&v).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_COMMAND_TIMEOUT)
}

pub struct Host {
    pub spec: HostSpec,
    pub docker: Docker,
    /// The engine's `/version` answer from the connect (read once, reused by host facts).
    pub version: Option<SystemVersion>,
    link: Link,
    /// One HTTP client per (port, timeout), reused with its keep-alive connections: a console
    /// probes the same ports every few seconds.
    http_clients: std::sync::Mutex<std::collections::HashMap<(u16, Duration), HttpEndpoint>>,
    /// Long-lived shells on an ssh host that run `exec`'s commands (`remote_shell`).
    shells: Option<Arc<ShellPool>>,
}

enum Link {
    Local,
    Ssh(Box<SshLink>),
}

/// What a command on the host printed, and how it ended.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

/// Reads a pipe keeping at most [`MAX_COMMAND_OUTPUT`] bytes (then a marker); the rest is read
/// and dropped, so the command is not blocked writing and memory stays bounded.
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let Some(mut pipe) = pipe else {
        return Ok(Vec::new());
    };
    let mut kept = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut cut = false;
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        let room = MAX_COMMAND_OUTPUT - kept.len();
        if n > room {
            kept.extend_from_slice(&chunk[..room]);
            cut = true;
        } else if !cut {
            kept.extend_from_slice(&chunk[..n]);
        }
    }
    if cut {
        kept.extend_from_slice(b"\n[truncated by deckhand]\n");
    }
    Ok(kept)
}

impl Host {
    /// Connects within the host's connect timeout (ssh handshake, forward, first Docker call),
    /// so a dead host costs a bounded wait and its own error.
    pub async fn connect(spec: &HostSpec) -> Result<Self, TransportError> {
        let budget = spec.connect_timeout + Duration::from_secs(5);
        match tokio::time::timeout(budget, Self::connect_inner(spec)).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout {
                host: spec.name.clone(),
                secs: budget.as_secs(),
                what: "connect",
            }),
        }
    }

    async fn connect_inner(spec: &HostSpec) -> Result<Self, TransportError> {
        let docker_err = |detail: String| TransportError::Docker {
            host: spec.name.clone(),
            socket: spec.docker_socket.clone(),
            detail,
        };
        let mut shells = None;
        let (docker, link, version) = match &spec.target {
            HostTarget::Local => {
                let d = Docker::connect_with_unix(
                    &spec.docker_socket,
                    DOCKER_REQUEST_TIMEOUT_SECS,
                    API_DEFAULT_VERSION,
                )
                .map_err(|e| docker_err(e.to_string()))?;
                // Old engines (Debian's 20.10 speaks 1.41) need the version negotiated.
                let d = d
                    .negotiate_version()
                    .await
                    .map_err(|e| docker_err(crate::util::error_chain(&e)))?;
                let version = d.version().await.ok();
                (d, Link::Local, version)
            }
            HostTarget::Ssh { .. } => {
                let link = SshLink::connect(spec).await?;
                // The first remote shell starts beside the /version request (in the background).
                shells = Some(ShellPool::start(&spec.name, link.session.control_socket()));
                let local = link
                    .forward_unix(&spec.name, "docker.sock", &spec.docker_socket)
                    .await?;
                let pool = PooledSocket::new(&local);
                let kept_dir = link.kept.as_ref().map(|(d, _)| d.clone());
                // Through a kept master the version negotiated last time is known: the first
                // reads go out at once (the engine's own version comes with the host facts).
                if let Some(api) = kept_dir.as_deref().and_then(super::kept::cached_api) {
                    let d = pool
                        .docker(DOCKER_REQUEST_TIMEOUT_SECS, &negotiated(Some(&api)))
                        .map_err(|e| docker_err(e.to_string()))?;
                    return Ok(Self {
                        spec: spec.clone(),
                        docker: d,
                        version: None,
                        link: Link::Ssh(Box::new(link)),
                        http_clients: std::sync::Mutex::new(std::collections::HashMap::new()),
                        shells,
                    });
                }
                // One round trip for the version (asked without a version prefix, so any
                // engine answers), while the connections the first reads need are opened
                // beside it. A server that refuses stream-local forwarding is noticed here.
                let (version, ()) = tokio::join!(pool.get("/version"), pool.warm(WARM_CONNECTIONS));
                let version = match version {
                    Ok((200, body)) => serde_json::from_slice::<SystemVersion>(&body)
                        .map_err(|e| docker_err(format!("unreadable /version answer: {e}")))?,
                    Ok((code, body)) => {
                        return Err(docker_err(format!(
                            "/version answered {code}: {}",
                            crate::sanitize::host_text(&String::from_utf8_lossy(&body))
                        )));
                    }
                    Err(e) => return Err(docker_err(e)),
                };
                let api = negotiated(version.api_version.as_deref());
                if let Some(dir) = &kept_dir {
                    super::kept::cache_api(dir, &api.to_string());
                }
                let d = pool
                    .docker(DOCKER_REQUEST_TIMEOUT_SECS, &api)
                    .map_err(|e| docker_err(e.to_string()))?;
                (d, Link::Ssh(Box::new(link)), Some(version))
            }
        };
        Ok(Self {
            spec: spec.clone(),
            docker,
            version,
            link,
            http_clients: std::sync::Mutex::new(std::collections::HashMap::new()),
            shells,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn is_local(&self) -> bool {
        matches!(self.link, Link::Local)
    }

    /// HTTP to `127.0.0.1:port` on the host.
    pub async fn http(&self, port: u16, timeout: Duration) -> Result<HttpEndpoint, TransportError> {
        let build_err = |e: reqwest::Error| TransportError::Other {
            host: self.spec.name.clone(),
            detail: format!("cannot build an HTTP client: {e}"),
        };
        if let Some(e) = self
            .http_clients
            .lock()
            .ok()
            .and_then(|m| m.get(&(port, timeout)).cloned())
        {
            return Ok(e);
        }
        let endpoint = match &self.link {
            Link::Local => HttpEndpoint::direct(port, timeout).map_err(build_err)?,
            Link::Ssh(link) => {
                let sock = link.forward_tcp(&self.spec.name, port).await?;
                HttpEndpoint::via_unix_socket(&sock, port, timeout).map_err(build_err)?
            }
        };
        if let Ok(mut m) = self.http_clients.lock() {
            m.insert((port, timeout), endpoint.clone());
        }
        Ok(endpoint)
    }

    /// Runs a fixed program with arguments on the host. Arguments are passed as separate words
    /// (quoted for the remote shell by openssh), never spliced into a shell string. Bounded by
    /// the command timeout ([`DEFAULT_COMMAND_TIMEOUT`], `DECKHAND_COMMAND_TIMEOUT`); its output
    /// by [`MAX_COMMAND_OUTPUT`].
    pub async fn exec(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, TransportError> {
        self.exec_within(command_timeout(), program, args, stdin)
            .await
    }

    /// [`exec`](Self::exec) with an explicit time limit.
    pub async fn exec_within(
        &self,
        limit: Duration,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, TransportError> {
        match tokio::time::timeout(limit, self.exec_unbounded(program, args, stdin)).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::CommandTimeout {
                host: self.spec.name.clone(),
                // The script's name ($0), not its text: `sh -c <script> deckhand-lock …`.
                program: match args {
                    ["-c", _, name, ..] => format!("{program} ({name})"),
                    _ => program.to_string(),
                },
                after: crate::util::format_duration(limit),
            }),
        }
    }

    async fn exec_unbounded(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, TransportError> {
        let err = |detail: String| TransportError::Exec {
            host: self.spec.name.clone(),
            program: program.to_string(),
            detail,
        };
        match &self.link {
            Link::Local => {
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args)
                    .stdin(if stdin.is_some() {
                        Stdio::piped()
                    } else {
                        Stdio::null()
                    })
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true);
                let mut child = cmd.spawn().map_err(|e| err(e.to_string()))?;
                if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
                    pipe.write_all(data).await.map_err(|e| err(e.to_string()))?;
                    drop(pipe);
                }
                let (stdout, stderr, status) = tokio::join!(
                    read_capped(child.stdout.take()),
                    read_capped(child.stderr.take()),
                    child.wait()
                );
                Ok(ExecOutput {
                    status: status.map_err(|e| err(e.to_string()))?.code(),
                    stdout: stdout.map_err(|e| err(e.to_string()))?,
                    stderr: stderr.map_err(|e| err(e.to_string()))?,
                })
            }
            Link::Ssh(link) => {
                // One round trip in a long-lived shell; a plain exec when none is free.
                if let Some(pool) = &self.shells {
                    match pool.run(program, args, stdin).await {
                        Ok(out) => return Ok(out),
                        Err(ShellError::Failed(e)) => return Err(e),
                        Err(ShellError::NotRun) => pool.count_plain(),
                    }
                }
                let mut cmd = link.session.command(program);
                cmd.args(args)
                    .stdin(if stdin.is_some() {
                        openssh::Stdio::piped()
                    } else {
                        openssh::Stdio::null()
                    })
                    .stdout(openssh::Stdio::piped())
                    .stderr(openssh::Stdio::piped());
                let mut child = cmd
                    .spawn()
                    .await
                    .map_err(|e| err(crate::util::error_chain(&e)))?;
                if let (Some(data), Some(mut pipe)) = (stdin, child.stdin().take()) {
                    pipe.write_all(data).await.map_err(|e| err(e.to_string()))?;
                    pipe.shutdown().await.map_err(|e| err(e.to_string()))?;
                    drop(pipe);
                }
                let out_pipe = child.stdout().take();
                let err_pipe = child.stderr().take();
                let (stdout, stderr) = tokio::join!(read_capped(out_pipe), read_capped(err_pipe));
                let status = child
                    .wait()
                    .await
                    .map_err(|e| err(crate::util::error_chain(&e)))?;
                Ok(ExecOutput {
                    status: status.code(),
                    stdout: stdout.map_err(|e| err(e.to_string()))?,
                    stderr: stderr.map_err(|e| err(e.to_string()))?,
                })
            }
        }
    }

    /// Like [`exec`](Self::exec) but a non-zero exit is an error carrying stderr.
    pub async fn exec_ok(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, TransportError> {
        let out = self.exec(program, args, stdin).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(TransportError::Exec {
                host: self.spec.name.clone(),
                program: format!("{program} {}", args.join(" ")),
                detail: format!(
                    "exit {}: {}",
                    out.status
                        .map_or_else(|| "signal".into(), |c| c.to_string()),
                    crate::sanitize::host_text(&out.stderr_text())
                ),
            })
        }
    }

    /// What the host's remote shells did so far (`None` for the local engine).
    #[doc(hidden)]
    pub fn shell_stats(&self) -> Option<ShellStats> {
        self.shells.as_ref().map(|p| p.stats())
    }

    /// Whether the connection still stands: `ConnectionLost` when the ssh master is gone.
    pub async fn check_alive(&self) -> Result<(), TransportError> {
        match &self.link {
            Link::Local => Ok(()),
            Link::Ssh(link) => {
                link.session
                    .check()
                    .await
                    .map_err(|source| TransportError::ConnectionLost {
                        host: self.spec.name.clone(),
                        source,
                    })
            }
        }
    }

    /// The ssh master's control socket, through which an interactive ssh rides the existing
    /// connection (`None` for the local engine).
    pub fn control_socket(&self) -> Option<&std::path::Path> {
        match &self.link {
            Link::Local => None,
            Link::Ssh(link) => Some(link.session.control_socket()),
        }
    }

    /// Ends the SSH master and removes its sockets. Dropping a `Host` does the same, less politely.
    pub async fn close(self) {
        // The shells' channels end before the master does.
        drop(self.shells);
        if let Link::Ssh(link) = self.link {
            link.close().await;
        }
    }
}
