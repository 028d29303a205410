//! One connected host: Docker client, HTTP to its loopback ports, fixed commands.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bollard::models::SystemVersion;
use bollard::{API_DEFAULT_VERSION, Docker};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::docker_client::{Api, PooledSocket, negotiated};
use super::remote_shell::{ShellError, ShellPool, ShellStats};
use super::ssh::SshLink;
use super::trips::{TripCount, TripKind, Trips};
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
/// After [`Host::connect_early`] the reads open their own connections as they go out; the
/// requests that wait for the API version (a write such as the traffic read's exec) find
/// these open instead of opening a channel then.
const WARM_FOR_WRITES: usize = 2;

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
    link: Link,
    /// One HTTP client per port, reused with its keep-alive connections: a console probes the
    /// same ports every few seconds, and a release's read after its health wait.
    http_clients: std::sync::Mutex<std::collections::HashMap<u16, HttpEndpoint>>,
    /// Long-lived shells on an ssh host that run `exec`'s commands (`remote_shell`).
    shells: Option<Arc<ShellPool>>,
    /// Every remote operation of this host (see `trips`).
    trips: Trips,
    engine: Engine,
    /// Docker execs created ahead of the read that starts them (`spare_execs`).
    pub spare_execs: super::SpareExecs,
    /// The ports its containers were last seen on (`port_memory`).
    pub ports: super::PortMemory,
}

/// The engine's `/version`: read once per connection (host facts show it).
enum Engine {
    Local(Box<Option<SystemVersion>>),
    Ssh {
        /// `None` until the connect's `/version` request has answered (or failed).
        version: watch::Receiver<Option<Result<SystemVersion, String>>>,
        /// Through a kept master the API version was known from the last time.
        cached_api: bool,
        _fetch: AbortOnDrop,
    },
}

/// The connect's `/version` request runs beside the first reads; it dies with its host.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
        Self::bounded_connect(spec, true, true).await
    }

    /// Like [`connect`](Self::connect), but returns once the ssh link and the Docker forward
    /// stand, without waiting for the engine's first answer: reads sent at once go out beside
    /// the connect's `/version` request (one round trip less). Whether the engine answers is
    /// [`ready`](Self::ready), which the caller must ask before trusting its reads' errors.
    pub async fn connect_early(spec: &HostSpec) -> Result<Self, TransportError> {
        Self::bounded_connect(spec, false, false).await
    }

    /// Like [`connect_early`](Self::connect_early), for a caller whose first operation is a
    /// remote command (a release takes its lock first): the Docker connections its reads
    /// need next are opened beside `/version` while that command runs.
    pub async fn connect_for_command(spec: &HostSpec) -> Result<Self, TransportError> {
        Self::bounded_connect(spec, false, true).await
    }

    async fn bounded_connect(
        spec: &HostSpec,
        wait: bool,
        warm: bool,
    ) -> Result<Self, TransportError> {
        let budget = spec.connect_timeout + Duration::from_secs(5);
        let connect = async {
            let host = Self::connect_inner(spec, warm, warm && !wait).await?;
            if wait {
                host.ready().await?;
            }
            Ok(host)
        };
        match tokio::time::timeout(budget, connect).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout {
                host: spec.name.clone(),
                secs: budget.as_secs(),
                what: "connect",
            }),
        }
    }

    fn docker_error(spec: &HostSpec, detail: String) -> TransportError {
        TransportError::Docker {
            host: spec.name.clone(),
            socket: spec.docker_socket.clone(),
            detail,
        }
    }

    /// `warm`: open the connections a first burst of reads needs beside `/version` (a caller
    /// that waits for the version); a caller that reads at once opens them with its reads.
    /// `command_first`: the caller's first operation is a remote command, during which the
    /// warm connections open even when the API version is known (a kept master).
    async fn connect_inner(
        spec: &HostSpec,
        warm: bool,
        command_first: bool,
    ) -> Result<Self, TransportError> {
        let docker_err = |detail: String| Self::docker_error(spec, detail);
        let trips = Trips::new();
        let mut shells = None;
        let (docker, link, engine) = match &spec.target {
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
                (d, Link::Local, Engine::Local(Box::new(version)))
            }
            HostTarget::Ssh { .. } => {
                let link = SshLink::connect(spec).await?;
                // The first remote shell starts beside the /version request (in the background).
                shells = Some(ShellPool::start(
                    &spec.name,
                    link.session.control_socket(),
                    trips.clone(),
                ));
                let local = link
                    .forward_unix(&spec.name, "docker.sock", &spec.docker_socket)
                    .await?;
                let pool = PooledSocket::new(&local, trips.clone());
                let kept_dir = link.kept.as_ref().map(|(d, _)| d.clone());
                // Through a kept master the version negotiated last time is known: every
                // request goes out at once with it.
                let cached = kept_dir.as_deref().and_then(super::kept::cached_api);
                if let Some(api) = &cached {
                    pool.settle_api(Api::Known(negotiated(Some(api))));
                }
                let d = pool
                    .docker(DOCKER_REQUEST_TIMEOUT_SECS)
                    .map_err(|e| docker_err(e.to_string()))?;
                let (tx, rx) = watch::channel(None);
                let warm = match (&cached, warm) {
                    (Some(_), _) if command_first => WARM_CONNECTIONS,
                    (Some(_), _) => 0,
                    (None, true) => WARM_CONNECTIONS,
                    (None, false) => WARM_FOR_WRITES,
                };
                let fetch = tokio::spawn(fetch_version(
                    pool.clone(),
                    warm,
                    kept_dir.filter(|_| cached.is_none()),
                    tx,
                ));
                let engine = Engine::Ssh {
                    version: rx,
                    cached_api: cached.is_some(),
                    _fetch: AbortOnDrop(fetch),
                };
                (d, Link::Ssh(Box::new(link)), engine)
            }
        };
        Ok(Self {
            spec: spec.clone(),
            docker,
            link,
            http_clients: std::sync::Mutex::new(std::collections::HashMap::new()),
            shells,
            trips,
            engine,
            spare_execs: Default::default(),
            ports: super::PortMemory::load(spec),
        })
    }

    /// Whether the engine answers through the forward (a server that refuses stream-local
    /// forwarding, or a wrong `docker_socket`, is noticed here). [`connect`](Self::connect)
    /// has asked already; after [`connect_early`](Self::connect_early) it waits for the
    /// connect's `/version` request.
    pub async fn ready(&self) -> Result<(), TransportError> {
        match &self.engine {
            Engine::Local(_) => Ok(()),
            Engine::Ssh {
                cached_api: true, ..
            } => Ok(()),
            Engine::Ssh { version, .. } => {
                let mut rx = version.clone();
                match rx.wait_for(Option::is_some).await.as_deref() {
                    Ok(Some(Ok(_))) => Ok(()),
                    Ok(Some(Err(e))) => Err(Self::docker_error(&self.spec, e.clone())),
                    _ => Err(Self::docker_error(
                        &self.spec,
                        "the connect's /version request was cancelled".into(),
                    )),
                }
            }
        }
    }

    /// The engine's `/version` answer, read once per connection.
    pub async fn engine_version(&self) -> Option<SystemVersion> {
        match &self.engine {
            Engine::Local(v) => v.as_ref().clone(),
            Engine::Ssh { version, .. } => {
                let mut rx = version.clone();
                let v = rx.wait_for(Option::is_some).await.ok()?;
                v.as_ref()?.as_ref().ok().cloned()
            }
        }
    }

    /// The remote operations of this host so far (see [`TripCount`]); the difference of two
    /// snapshots is the cost of the work in between.
    pub fn trips(&self) -> TripCount {
        self.trips.snapshot()
    }

    /// Counts one remote operation that starts now (it ends when the guard is dropped).
    pub fn trip(&self, kind: TripKind, opens_channel: bool) -> super::trips::Trip {
        self.trips.begin(kind, opens_channel)
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
            .and_then(|m| m.get(&port).map(|e| e.with_timeout(timeout)))
        {
            return Ok(e);
        }
        let endpoint = match &self.link {
            Link::Local => {
                HttpEndpoint::direct(port, timeout, self.trips.clone()).map_err(build_err)?
            }
            Link::Ssh(link) => {
                let sock = link.forward_tcp(&self.spec.name, port).await?;
                HttpEndpoint::via_unix_socket(&sock, port, timeout, self.trips.clone())
                    .map_err(build_err)?
            }
        };
        if let Ok(mut m) = self.http_clients.lock() {
            m.insert(port, endpoint.clone());
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
        // Round-trip accounting: a plain ssh command opens a session channel first, a command
        // in a remote shell does not unless it opened or waited for the shell's channel
        // (`exec_unbounded` and `remote_shell` say which).
        let mut trip = self.trip(TripKind::Command, false);
        // The script's name ($0), not its text: `sh -c <script> deckhand-lock …`.
        let what = || match args {
            ["-c", _, name, ..] => format!("{program} ({name})"),
            _ => program.to_string(),
        };
        let started = std::time::Instant::now();
        let r =
            match tokio::time::timeout(limit, self.exec_unbounded(program, args, stdin, &mut trip))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(TransportError::CommandTimeout {
                    host: self.spec.name.clone(),
                    program: what(),
                    after: crate::util::format_duration(limit),
                }),
            };
        // The debug log shows every remote command and what it waited, so a slow step can be
        // taken apart on a real link.
        tracing::debug!(
            host = %self.spec.name,
            command = %what(),
            ms = started.elapsed().as_millis() as u64,
            ok = r.is_ok(),
            "remote command"
        );
        r
    }

    async fn exec_unbounded(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
        trip: &mut super::trips::Trip,
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
                    match pool.run(program, args, stdin, trip).await {
                        Ok(out) => return Ok(out),
                        Err(ShellError::Failed(e)) => return Err(e),
                        Err(ShellError::NotRun) => pool.count_plain(),
                    }
                }
                trip.opened_channel();
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
        // A spare exec nobody started (a release that failed before its read) would stay in
        // Docker's memory as long as its container lives: started detached, it runs its
        // read-only command and is gone.
        let spares = self.spare_execs.take_all();
        if !spares.is_empty() {
            let opts = bollard::exec::StartExecOptions {
                detach: true,
                ..Default::default()
            };
            let start_all = futures_util::future::join_all(
                spares
                    .iter()
                    .map(|id| self.docker.start_exec(id, Some(opts))),
            );
            let _ = tokio::time::timeout(Duration::from_secs(5), start_all).await;
        }
        // The shells' channels end before the master does.
        drop(self.shells);
        if let Link::Ssh(link) = self.link {
            link.close().await;
        }
    }
}

/// The connect's `/version` request (and, for a caller that waits for it, the warm
/// connections beside it). Its answer settles the API version if no read has yet.
async fn fetch_version(
    pool: PooledSocket,
    warm: usize,
    kept_dir: Option<std::path::PathBuf>,
    tx: watch::Sender<Option<Result<SystemVersion, String>>>,
) {
    let warming = pool.warm(warm);
    // Asked without a version prefix, so any engine answers.
    let (version, ()) = tokio::join!(pool.get("/version"), warming);
    let outcome = match version {
        Ok((200, body)) => serde_json::from_slice::<SystemVersion>(&body)
            .map_err(|e| format!("unreadable /version answer: {e}")),
        Ok((code, body)) => Err(format!(
            "/version answered {code}: {}",
            crate::sanitize::host_text(&String::from_utf8_lossy(&body))
        )),
        Err(e) => Err(e),
    };
    match &outcome {
        Ok(v) => {
            let api = negotiated(v.api_version.as_deref());
            pool.settle_api(Api::Known(api));
            if let Some(dir) = &kept_dir {
                super::kept::cache_api(dir, &api.to_string());
            }
        }
        Err(e) => pool.settle_api(Api::Failed(e.clone())),
    }
    let _ = tx.send(Some(outcome));
}
