//! Long-lived `sh` sessions on an ssh host that run deckhand's remote commands, one round trip
//! each.
//!
//! A plain remote command is a new session channel through the ssh master (open, exec: two
//! round trips before its output) and, where the login shell is bash, a run of the user's
//! `~/.bashrc` on the host (Debian's bash sources it for ssh commands; a `pyenv init` there
//! costs a noticeable time per command). A shell here is started once, checks that `base64`
//! works, and then reads one line per command: `SEQ BASE64(command line) BASE64(stdin)|-`; an `sh -c`
//! script is sent once per shell on a line of its own (`D NAME BASE64(script)`, kept in a driver
//! variable) and named by the commands after it (`frame::command_lines`).
//! Each command runs in its own subshell (an `exit`, `cd` or `set` in it cannot reach the
//! driver; it never sees the driver's stdin), between begin and end markers on stdout and
//! stderr that carry a random per-shell nonce, the sequence number and the exit status. The
//! nonce reaches the host on stdin, not on a command line, so output cannot fake a marker.
//!
//! A shell's first command does not wait for the driver's `ready`: its line goes out as soon
//! as the channel stands, right behind the nonce (the driver reads stdin a line at a time, so
//! it waits in the pipe while the login shell's rc files run and `base64` is checked), and the
//! answer's framing finds its output after whatever came first. That first command costs the
//! channel's opening and its own round trip, not a third for `ready`. A host without `base64`
//! answers `nobase64` and exits before it reads the command's line: that command never ran and
//! goes through a plain exec, as does every later one. Output that ends before `ready` on a
//! channel that closed in order (its exit status came) proves the same; a channel cut before
//! `ready` (the master gone) may have run it, and is an error.
//!
//! Every property of a plain exec holds: the caller's time limit (a command that runs past it
//! drops its shell, which ends that channel; the next command uses or starts another; a first
//! command dropped while its shell started ends that shell too, so no later command reads its
//! answer), the output cap, the exit status, stderr kept apart, a command that cannot be
//! found. A command that arrives only partly (deckhand killed while sending it) is never run:
//! the driver runs a line only once it has all of it. Concurrent callers each get their own
//! shell (up to [`MAX_SHELLS`]), then fall back to plain exec, as does a host without `base64`.
//!
//! Round trips (`trips`): a command in a shell is one; one that opened its shell's channel
//! counts that channel too; one that found its shell's channel still opening (the one started
//! at connect) follows that opening in the chain: it waited for it, although the channel is
//! counted in no operation (it is opened whether or not a command comes).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use openssh::{Session, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use super::TransportError;
use super::host::ExecOutput;
use super::trips::{Trip, Trips};

mod frame;
use frame::{Scripts, command_lines, find, nonce, read_frame};

/// Shells kept per host: a release has at most this many remote commands in flight at once
/// (a step's check beside the ledger write, the lock heartbeat).
pub const MAX_SHELLS: usize = 3;

/// How long a shell's channel may take to open (its first command then bounds the rest).
const START_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Larger input goes through a plain exec: the driver reads its line a byte at a time.
const MAX_INLINE_STDIN: usize = 256 * 1024;

/// The driver. `$n` is the nonce (first line on stdin). A command line decodes to words quoted
/// for `sh`, evaluated in a subshell; its stdin is the decoded data or `/dev/null`.
const DRIVER: &str = r#"IFS= read -r n || exit 0
if [ "$(printf 'b2s=' | base64 -d 2>/dev/null)" != ok ]; then echo "$n:nobase64"; exit 0; fi
echo "$n:ready"
while IFS=' ' read -r q c i; do
if [ "$q" = D ]; then eval "s_$c=\$(printf '%s' \"\$i\" | base64 -d; echo x); s_$c=\${s_$c%x}"; continue; fi
printf '%s:B:%s\n' "$n" "$q"; printf '%s:B:%s\n' "$n" "$q" >&2
if [ "$i" = - ]; then (eval "$(printf '%s' "$c" | base64 -d)") </dev/null
else printf '%s' "$i" | base64 -d | (eval "$(printf '%s' "$c" | base64 -d)"); fi
s=$?
printf '\n%s:E:%s:%s\n' "$n" "$q" "$s" >&2; printf '\n%s:E:%s:%s\n' "$n" "$q" "$s"
done"#;

/// What the pool did so far (for tests and the round-trip accounting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShellStats {
    /// Shells started (each one ssh session channel).
    pub started: usize,
    /// Commands that ran in a shell.
    pub commands: usize,
    /// Commands that went through a plain exec instead (busy pool, large input, no shell).
    pub plain: usize,
    /// Shells ended because a command did not finish in time or its shell broke.
    pub dropped: usize,
    /// Shells alive or starting now.
    pub live: usize,
}

#[derive(Default)]
struct State {
    idle: Vec<Shell>,
    live: usize,
    starting: usize,
    waiting: usize,
    /// No shell can be used on this host (no `base64`, or a shell could not start): plain exec.
    unusable: bool,
    stats: ShellStats,
}

pub(crate) struct ShellPool {
    host: String,
    /// The host's round-trip counters: where in the chain a shell's channel stood open.
    trips: Trips,
    /// A handle on the host's master (resumed from its control socket: it never stops the
    /// master when dropped), owned here so a shell's channel can outlive one call.
    session: Arc<Session>,
    state: Mutex<State>,
    changed: Notify,
}

struct Shell {
    /// Taken only to learn how a shell that never said `ready` ended.
    child: Option<openssh::Child<Arc<Session>>>,
    stdin: openssh::ChildStdin,
    stdout: openssh::ChildStdout,
    stderr: openssh::ChildStderr,
    nonce: String,
    seq: u64,
    /// The driver said `ready` (until then its first command's line may already wait in its
    /// stdin, and stdout starts with the login scripts' noise).
    ready: bool,
    /// Bytes read from stdout that belong to the next command's frame (read with `ready`).
    carry: Vec<u8>,
    /// The scripts its driver holds (`frame::command_lines`).
    scripts: Scripts,
    /// When its channel stood open, and the round-trip chain by then (see `trips`).
    opened_at: Instant,
    open_depth: u64,
}

/// How a shell's start went, from its stdout.
enum Start {
    Ready,
    /// `base64 -d` does not work: the driver exited without reading a command line.
    NoBase64,
    /// Its stdout ended without either answer.
    Ended,
}

/// An idle shell's channel, looked at without waiting.
enum Idle {
    Alive,
    /// Its channel ended (a cut link, a killed master).
    Dead,
    /// It ended (or will) without ever taking a command: no shell works on this host.
    NoShell,
}

/// A shell taken from the pool for one command; dropped without [`ShellPool::give_back`] (a
/// time limit, a broken shell) it ends that shell.
struct Lease<'a> {
    pool: &'a ShellPool,
    shell: Option<Shell>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if self.shell.take().is_some()
            && let Ok(mut s) = self.pool.state.lock()
        {
            s.live -= 1;
            s.stats.dropped += 1;
            drop(s);
            self.pool.changed.notify_waiters();
        }
    }
}

/// A start or a wait in progress, counted back if the caller is dropped during it.
struct Slot<'a> {
    pool: &'a ShellPool,
    /// A wait (else a start).
    waiting: bool,
}

impl Slot<'_> {
    /// The start finished: `ShellPool::started` does the counting.
    fn done(self) {
        std::mem::forget(self);
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.pool.state.lock() {
            if self.waiting {
                s.waiting -= 1;
            } else {
                s.starting -= 1;
                s.live -= 1;
            }
        }
        self.pool.changed.notify_waiters();
    }
}

/// Why a command could not run in a shell.
pub(crate) enum ShellError {
    /// Nothing reached the host: run it as a plain exec.
    NotRun,
    /// It may have run, and its answer was lost.
    Failed(TransportError),
}

impl ShellPool {
    /// A pool for the host behind `control_socket`, with its first shell starting in the
    /// background (the connect does not wait for it; the first command does, if it must).
    pub(crate) fn start(host: &str, control_socket: &Path, trips: Trips) -> Arc<Self> {
        let pool = Arc::new(Self {
            host: host.to_string(),
            trips,
            session: Arc::new(Session::resume_mux(control_socket.into(), None)),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        });
        if let Ok(mut s) = pool.state.lock() {
            s.live += 1;
            s.starting += 1;
        }
        let p = pool.clone();
        tokio::spawn(async move {
            let started = p.spawn_shell().await;
            p.started(started, true);
        });
        pool
    }

    pub(crate) fn stats(&self) -> ShellStats {
        self.state
            .lock()
            .map(|s| ShellStats {
                live: s.live,
                ..s.stats
            })
            .unwrap_or_default()
    }

    /// Counts a command that went through a plain exec.
    pub(crate) fn count_plain(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.stats.plain += 1;
        }
    }

    /// No shell works on this host: every later command is a plain exec.
    fn no_shell(&self, why: &str) {
        tracing::info!(host = %self.host, %why, "no remote shell; commands run as plain ssh commands");
        if let Ok(mut s) = self.state.lock() {
            s.unusable = true;
        }
    }

    /// Records a finished start: `keep` puts the shell in the idle list (else the caller uses it).
    fn started(&self, shell: Option<Shell>, keep: bool) -> Option<Shell> {
        let mut s = self.state.lock().ok()?;
        s.starting -= 1;
        let out = match shell {
            Some(sh) => {
                s.stats.started += 1;
                if keep {
                    s.idle.push(sh);
                    None
                } else {
                    Some(sh)
                }
            }
            None => {
                s.live -= 1;
                s.unusable = true;
                None
            }
        };
        drop(s);
        self.changed.notify_waiters();
        out
    }

    /// A shell of its own for one command: an idle one, one that is starting (when no other
    /// caller waits for it), or a new one while fewer than [`MAX_SHELLS`] live, and whether
    /// this caller opened its channel. `None`: use a plain exec.
    async fn acquire(&self) -> Option<(Lease<'_>, bool)> {
        enum Next {
            Use(Box<Shell>),
            Wait,
            Start,
        }
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let next = {
                let mut s = self.state.lock().ok()?;
                if s.unusable {
                    return None;
                }
                let mut found = None;
                while let Some(mut sh) = s.idle.pop() {
                    let idle = sh.check_idle();
                    if matches!(idle, Idle::Alive) {
                        found = Some(sh);
                        break;
                    }
                    // Its channel ended while it was idle (a cut link, a killed master), or
                    // it never became a shell.
                    s.live -= 1;
                    s.stats.dropped += 1;
                    if matches!(idle, Idle::NoShell) {
                        drop(s);
                        self.no_shell("the remote shell ended before it was ready");
                        self.changed.notify_waiters();
                        return None;
                    }
                }
                if let Some(sh) = found {
                    Next::Use(Box::new(sh))
                } else if s.starting > s.waiting {
                    s.waiting += 1;
                    Next::Wait
                } else if s.live < MAX_SHELLS {
                    s.live += 1;
                    s.starting += 1;
                    Next::Start
                } else {
                    return None;
                }
            };
            let (shell, opened) = match next {
                Next::Use(sh) => (*sh, false),
                Next::Start => {
                    // Counted back even when the caller gives up (its time limit) mid-start.
                    let slot = Slot {
                        pool: self,
                        waiting: false,
                    };
                    let sh = self.spawn_shell().await;
                    slot.done();
                    (self.started(sh, false)?, true)
                }
                Next::Wait => {
                    let _slot = Slot {
                        pool: self,
                        waiting: true,
                    };
                    changed.await;
                    continue;
                }
            };
            return Some((
                Lease {
                    pool: self,
                    shell: Some(shell),
                },
                opened,
            ));
        }
    }

    fn give_back(&self, mut lease: Lease<'_>) {
        if let (Some(sh), Ok(mut s)) = (lease.shell.take(), self.state.lock()) {
            s.idle.push(sh);
            s.stats.commands += 1;
            drop(s);
            self.changed.notify_waiters();
        }
    }

    /// Opens a shell's channel and sends its nonce; its `ready` is read with its first answer.
    async fn spawn_shell(&self) -> Option<Shell> {
        let depth = self.trips.snapshot().sequential;
        let started = tokio::time::timeout(START_LIMIT, Shell::open(&self.session, depth)).await;
        match started.unwrap_or_else(|_| Err("it did not start in time".into())) {
            Ok(sh) => Some(sh),
            Err(why) => {
                tracing::info!(host = %self.host, %why, "no remote shell; commands run as plain ssh commands");
                None
            }
        }
    }

    /// Runs `program args` with `stdin` in a shell of the pool; `trip` is its round trip.
    pub(crate) async fn run(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
        trip: &mut Trip,
    ) -> Result<ExecOutput, ShellError> {
        if stdin.is_some_and(|d| d.len() > MAX_INLINE_STDIN) {
            return Err(ShellError::NotRun);
        }
        let began = Instant::now();
        let Some((mut lease, opened)) = self.acquire().await else {
            return Err(ShellError::NotRun);
        };
        let Some(shell) = lease.shell.as_mut() else {
            return Err(ShellError::NotRun);
        };
        if opened {
            trip.opened_channel();
        } else if shell.opened_at > began {
            // It waited for the channel the connect began to open.
            trip.follows(shell.open_depth);
        }
        let line = command_lines(shell.seq, program, args, stdin, &mut shell.scripts);
        if shell.stdin.write_all(line.as_bytes()).await.is_err()
            || shell.stdin.flush().await.is_err()
        {
            // A line that did not get out whole is never run by the driver.
            return Err(ShellError::NotRun);
        }
        if !shell.ready {
            // The line went out behind the nonce; the driver's answer to that comes first.
            match shell.confirm().await {
                Ok(Start::Ready) => {}
                Ok(Start::NoBase64) => {
                    // The driver exited before it read the line.
                    self.no_shell("`base64 -d` does not work on the host");
                    trip.waited();
                    return Err(ShellError::NotRun);
                }
                Ok(Start::Ended) => {
                    if shell.ended_in_order().await {
                        // All of its output came, without `ready`: it never read the line.
                        self.no_shell("the remote shell ended at start");
                        trip.waited();
                        return Err(ShellError::NotRun);
                    }
                    drop(lease);
                    return Err(self.lost(program, "the remote shell ended at start").await);
                }
                Err(e) => {
                    drop(lease);
                    return Err(self.lost(program, e).await);
                }
            }
        }
        let result = shell.answer().await;
        match result {
            Ok(out) => {
                self.give_back(lease);
                if out.status == Some(127) && out.stdout.is_empty() && is_not_found(&out.stderr) {
                    // As a plain exec reports it (openssh's "remote command not found").
                    return Err(ShellError::Failed(self.exec_error(
                        program,
                        crate::util::error_chain(&openssh::Error::Remote(std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "remote command not found",
                        ))),
                    )));
                }
                Ok(out)
            }
            Err(e) => {
                drop(lease);
                Err(self.lost(program, e).await)
            }
        }
    }

    /// A command whose shell ended before its answer: it may have run.
    async fn lost(&self, program: &str, why: impl std::fmt::Display) -> ShellError {
        // The master gone is reported as a plain exec through it would be.
        let detail = match self.session.check().await {
            Err(gone) => crate::util::error_chain(&gone),
            Ok(()) => format!("the remote shell ended before the command did: {why}"),
        };
        ShellError::Failed(self.exec_error(program, detail))
    }

    fn exec_error(&self, program: &str, detail: String) -> TransportError {
        TransportError::Exec {
            host: self.host.clone(),
            program: program.to_string(),
            detail,
        }
    }
}

fn is_not_found(stderr: &[u8]) -> bool {
    let t = String::from_utf8_lossy(stderr);
    t.contains("not found") || t.contains("No such file")
}

impl Shell {
    /// Opens the channel and sends the nonce, without waiting for the driver's answer.
    /// `depth`: the round-trip chain when the opening began.
    async fn open(session: &Arc<Session>, depth: u64) -> Result<Shell, String> {
        let mut child = Session::arc_command(session.clone(), "sh")
            .arg("-c")
            .arg(DRIVER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| crate::util::error_chain(&e))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) = (
            child.stdin().take(),
            child.stdout().take(),
            child.stderr().take(),
        ) else {
            return Err("the shell's pipes are missing".into());
        };
        let nonce = nonce();
        stdin
            .write_all(format!("{nonce}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        stdin.flush().await.map_err(|e| e.to_string())?;
        Ok(Shell {
            child: Some(child),
            stdin,
            stdout,
            stderr,
            nonce,
            seq: 0,
            ready: false,
            carry: Vec::new(),
            scripts: Scripts::default(),
            opened_at: Instant::now(),
            open_depth: depth + 1,
        })
    }

    /// Looks for the driver's answer to the nonce in what stdout gave so far; whatever a
    /// login script printed before it is dropped, what follows `ready` kept for the frame.
    fn scan_start(&mut self) -> Option<Start> {
        let ready = format!("{}:ready\n", self.nonce).into_bytes();
        let nobase64 = format!("{}:nobase64\n", self.nonce).into_bytes();
        if let Some(i) = find(&self.carry, &ready) {
            self.carry.drain(..i + ready.len());
            self.ready = true;
            return Some(Start::Ready);
        }
        if find(&self.carry, &nobase64).is_some() {
            return Some(Start::NoBase64);
        }
        // Only the start of a marker still to come is worth keeping.
        let keep = self.carry.len().min(nobase64.len() - 1);
        self.carry.drain(..self.carry.len() - keep);
        None
    }

    /// Reads stdout up to the driver's answer to the nonce.
    async fn confirm(&mut self) -> std::io::Result<Start> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(start) = self.scan_start() {
                return Ok(start);
            }
            let n = self.stdout.read(&mut chunk).await?;
            if n == 0 {
                return Ok(Start::Ended);
            }
            self.carry.extend_from_slice(&chunk[..n]);
        }
    }

    /// After its stdout ended: whether the channel closed in order (the master passed on the
    /// remote exit status), so every byte the driver printed has come.
    async fn ended_in_order(&mut self) -> bool {
        match self.child.take() {
            Some(child) => child.wait().await.is_ok(),
            None => false,
        }
    }

    /// Whether an idle shell's channel still stands. A ready shell prints nothing while idle,
    /// so a pipe that is readable now has ended (or carries stray bytes of an earlier command's
    /// child, dropped); one not ready yet may be printing its login noise and `ready`.
    fn check_idle(&mut self) -> Idle {
        use futures_util::FutureExt;
        let mut b = [0u8; 4096];
        for _ in 0..64 {
            match self.stdout.read(&mut b).now_or_never() {
                None => return Idle::Alive,
                Some(Ok(0) | Err(_)) if self.ready => return Idle::Dead,
                Some(Ok(0) | Err(_)) => return Idle::NoShell,
                Some(Ok(n)) if !self.ready => {
                    self.carry.extend_from_slice(&b[..n]);
                    if matches!(self.scan_start(), Some(Start::NoBase64)) {
                        return Idle::NoShell;
                    }
                }
                Some(Ok(_)) => {}
            }
        }
        if self.ready { Idle::Dead } else { Idle::Alive }
    }

    /// Reads the current command's output and status from both pipes.
    async fn answer(&mut self) -> std::io::Result<ExecOutput> {
        let seq = self.seq;
        self.seq += 1;
        let carry = std::mem::take(&mut self.carry);
        let (out, err) = tokio::join!(
            read_frame(&mut self.stdout, &self.nonce, seq, carry),
            read_frame(&mut self.stderr, &self.nonce, seq, Vec::new())
        );
        let (stdout, status) = out?;
        let (stderr, _) = err?;
        Ok(ExecOutput {
            status: Some(status),
            stdout,
            stderr,
        })
    }
}
