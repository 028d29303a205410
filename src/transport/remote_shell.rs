//! Long-lived `sh` sessions on an ssh host that run deckhand's remote commands, one round trip
//! each.
//!
//! A plain remote command is a new session channel through the ssh master (open, exec: two
//! round trips before its output) and, where the login shell is bash, a run of the user's
//! `~/.bashrc` on the host (Debian's bash sources it for ssh commands; a `pyenv init` there
//! costs a noticeable time per command). A shell here is started once, checks that `base64`
//! works, and then reads one line per command: `SEQ BASE64(command line) BASE64(stdin)|-`.
//! Each command runs in its own subshell (an `exit`, `cd` or `set` in it cannot reach the
//! driver; it never sees the driver's stdin), between begin and end markers on stdout and
//! stderr that carry a random per-shell nonce, the sequence number and the exit status. The
//! nonce reaches the host on stdin, not on a command line, so output cannot fake a marker.
//!
//! Every property of a plain exec holds: the caller's time limit (a command that runs past it
//! drops its shell, which ends that channel; the next command uses or starts another), the
//! output cap, the exit status, stderr kept apart, a command that cannot be found. A command
//! that arrives only partly (deckhand killed while sending it) is never run: the driver runs a
//! line only once it has all of it. Concurrent callers each get their own shell (up to
//! [`MAX_SHELLS`]), then fall back to plain exec, as does a host without `base64`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use openssh::{Session, Stdio};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use super::TransportError;
use super::host::{ExecOutput, MAX_COMMAND_OUTPUT};

/// Shells kept per host: a release has at most this many remote commands in flight at once
/// (a step's check beside the ledger write, the lock heartbeat).
pub const MAX_SHELLS: usize = 3;

/// How long a shell may take to start (the login shell's rc files run first).
const START_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Larger input goes through a plain exec: the driver reads its line a byte at a time.
const MAX_INLINE_STDIN: usize = 256 * 1024;

/// The driver. `$n` is the nonce (first line on stdin). A command line decodes to words quoted
/// for `sh`, evaluated in a subshell; its stdin is the decoded data or `/dev/null`.
const DRIVER: &str = r#"IFS= read -r n || exit 0
if [ "$(printf 'b2s=' | base64 -d 2>/dev/null)" != ok ]; then echo "$n:nobase64"; exit 0; fi
echo "$n:ready"
while IFS=' ' read -r q c i; do
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
    /// A handle on the host's master (resumed from its control socket: it never stops the
    /// master when dropped), owned here so a shell's channel can outlive one call.
    session: Arc<Session>,
    state: Mutex<State>,
    changed: Notify,
}

struct Shell {
    _child: openssh::Child<Arc<Session>>,
    stdin: openssh::ChildStdin,
    stdout: openssh::ChildStdout,
    stderr: openssh::ChildStderr,
    nonce: String,
    seq: u64,
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
    pub(crate) fn start(host: &str, control_socket: &Path) -> Arc<Self> {
        let pool = Arc::new(Self {
            host: host.to_string(),
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
    /// caller waits for it), or a new one while fewer than [`MAX_SHELLS`] live. `None`: use a
    /// plain exec.
    async fn acquire(&self) -> Option<Lease<'_>> {
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
                    if sh.is_alive() {
                        found = Some(sh);
                        break;
                    }
                    // Its channel ended while it was idle (a cut link, a killed master).
                    s.live -= 1;
                    s.stats.dropped += 1;
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
            let shell = match next {
                Next::Use(sh) => *sh,
                Next::Start => {
                    // Counted back even when the caller gives up (its time limit) mid-start.
                    let slot = Slot {
                        pool: self,
                        waiting: false,
                    };
                    let sh = self.spawn_shell().await;
                    slot.done();
                    self.started(sh, false)?
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
            return Some(Lease {
                pool: self,
                shell: Some(shell),
            });
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

    async fn spawn_shell(&self) -> Option<Shell> {
        let started = tokio::time::timeout(START_LIMIT, Shell::spawn(&self.session)).await;
        match started.unwrap_or_else(|_| Err("it did not start in time".into())) {
            Ok(sh) => Some(sh),
            Err(why) => {
                tracing::info!(host = %self.host, %why, "no remote shell; commands run as plain ssh commands");
                None
            }
        }
    }

    /// Runs `program args` with `stdin` in a shell of the pool.
    pub(crate) async fn run(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, ShellError> {
        if stdin.is_some_and(|d| d.len() > MAX_INLINE_STDIN) {
            return Err(ShellError::NotRun);
        }
        let Some(mut lease) = self.acquire().await else {
            return Err(ShellError::NotRun);
        };
        let Some(shell) = lease.shell.as_mut() else {
            return Err(ShellError::NotRun);
        };
        let line = command_line(shell.seq, program, args, stdin);
        if shell.stdin.write_all(line.as_bytes()).await.is_err()
            || shell.stdin.flush().await.is_err()
        {
            // A line that did not get out whole is never run by the driver.
            return Err(ShellError::NotRun);
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
                // The master gone is reported as a plain exec through it would be.
                let detail = match self.session.check().await {
                    Err(gone) => crate::util::error_chain(&gone),
                    Ok(()) => format!("the remote shell ended before the command did: {e}"),
                };
                Err(ShellError::Failed(self.exec_error(program, detail)))
            }
        }
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
    async fn spawn(session: &Arc<Session>) -> Result<Shell, String> {
        let mut child = Session::arc_command(session.clone(), "sh")
            .arg("-c")
            .arg(DRIVER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|e| crate::util::error_chain(&e))?;
        let (Some(mut stdin), Some(mut stdout), Some(stderr)) = (
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
        // Whatever a login script prints comes before the answer.
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stdout.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the shell ended at start".into());
            }
            seen.extend_from_slice(&chunk[..n]);
            if find(&seen, format!("{nonce}:ready\n").as_bytes()).is_some() {
                break;
            }
            if find(&seen, format!("{nonce}:nobase64\n").as_bytes()).is_some() {
                return Err("`base64 -d` does not work on the host".into());
            }
            if seen.len() > 1024 * 1024 {
                return Err("the shell printed too much at start".into());
            }
        }
        Ok(Shell {
            _child: child,
            stdin,
            stdout,
            stderr,
            nonce,
            seq: 0,
        })
    }

    /// Whether the channel still stands: an idle shell prints nothing, so a pipe that is
    /// readable now has ended (or carries stray bytes of an earlier command's child, dropped).
    fn is_alive(&mut self) -> bool {
        use futures_util::FutureExt;
        let mut b = [0u8; 4096];
        for _ in 0..64 {
            match self.stdout.read(&mut b).now_or_never() {
                None => return true,
                Some(Ok(0) | Err(_)) => return false,
                Some(Ok(_)) => {}
            }
        }
        false
    }

    /// Reads the current command's output and status from both pipes.
    async fn answer(&mut self) -> std::io::Result<ExecOutput> {
        let seq = self.seq;
        self.seq += 1;
        let (out, err) = tokio::join!(
            read_frame(&mut self.stdout, &self.nonce, seq),
            read_frame(&mut self.stderr, &self.nonce, seq)
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

/// `SEQ BASE64(words) BASE64(stdin)|-` and a newline; the words quoted for `sh`.
fn command_line(seq: u64, program: &str, args: &[&str], stdin: Option<&[u8]>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut words = quote(program);
    for a in args {
        words.push(' ');
        words.push_str(&quote(a));
    }
    let input = stdin.map_or_else(|| "-".to_string(), |d| b64.encode(d));
    format!("{seq} {} {input}\n", b64.encode(words))
}

/// Single quotes, each `'` inside closed, escaped and reopened: nothing is expanded.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn nonce() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok();
    if !random {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        b[..8].copy_from_slice(&h.finish().to_le_bytes());
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("dh{hex}")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while from + needle.len() <= hay.len() {
        let i = from + hay[from..].iter().position(|&b| b == first)?;
        if hay.len() < i + needle.len() {
            return None;
        }
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// One command's bytes on one pipe: after `NONCE:B:SEQ\n`, up to `\nNONCE:E:SEQ:STATUS\n`.
/// Kept up to [`MAX_COMMAND_OUTPUT`] (then a marker), the rest read and dropped.
async fn read_frame<R: AsyncRead + Unpin>(
    pipe: &mut R,
    nonce: &str,
    seq: u64,
) -> std::io::Result<(Vec<u8>, i32)> {
    let begin = format!("{nonce}:B:{seq}\n").into_bytes();
    let end = format!("\n{nonce}:E:{seq}:").into_bytes();
    let mut window: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let eof = || {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the shell's output ended",
        )
    };
    // Before the begin marker: bytes of no command (dropped).
    loop {
        if let Some(i) = find(&window, &begin) {
            window.drain(..i + begin.len());
            break;
        }
        let keep = window.len().min(begin.len() - 1);
        window.drain(..window.len() - keep);
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Err(eof());
        }
        window.extend_from_slice(&chunk[..n]);
    }
    let mut body = Vec::new();
    let mut cut = false;
    let mut commit = |bytes: &[u8], body: &mut Vec<u8>| {
        let room = MAX_COMMAND_OUTPUT - body.len();
        if bytes.len() > room {
            body.extend_from_slice(&bytes[..room]);
            cut = true;
        } else if !cut {
            body.extend_from_slice(bytes);
        }
    };
    let status = loop {
        if let Some(i) = find(&window, &end) {
            let rest = &window[i + end.len()..];
            if let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                let status = String::from_utf8_lossy(&rest[..nl])
                    .trim()
                    .parse()
                    .unwrap_or(-1);
                commit(&window[..i], &mut body);
                break status;
            }
            if rest.len() > 16 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "an unreadable end marker",
                ));
            }
        } else {
            let keep = window.len().min(end.len() - 1);
            let upto = window.len() - keep;
            commit(&window[..upto], &mut body);
            window.drain(..upto);
        }
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Err(eof());
        }
        window.extend_from_slice(&chunk[..n]);
    };
    if cut {
        body.extend_from_slice(b"\n[truncated by deckhand]\n");
    }
    Ok((body, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frame(bytes: &[u8], nonce: &str, seq: u64) -> std::io::Result<(Vec<u8>, i32)> {
        let mut r: &[u8] = bytes;
        read_frame(&mut r, nonce, seq).await
    }

    #[tokio::test]
    async fn a_frame_is_cut_out_exactly_whatever_it_holds() {
        let n = "dhabc";
        // Stray bytes before, a fake marker with another nonce, one with the right nonce but
        // another sequence number, NUL bytes, no newline at the end of the output.
        let body = b"x\0y\ndhzzz:E:4:0\ndhabc:E:3:0 not quite\n\0tail";
        let mut s = b"junk dhabc:B:3\n".to_vec();
        s.extend_from_slice(b"dhabc:B:4\n");
        s.extend_from_slice(body);
        s.extend_from_slice(b"\ndhabc:E:4:7\n");
        let (out, status) = frame(&s, n, 4).await.expect("frame");
        assert_eq!(out, body);
        assert_eq!(status, 7);
        // Output that ends with a newline keeps it.
        let (out, _) = frame(b"dhabc:B:0\nline\n\ndhabc:E:0:0\n", n, 0)
            .await
            .expect("frame");
        assert_eq!(out, b"line\n");
        // Empty output.
        let (out, status) = frame(b"dhabc:B:0\n\ndhabc:E:0:0\n", n, 0)
            .await
            .expect("frame");
        assert!(out.is_empty());
        assert_eq!(status, 0);
        // Cut off before the end: an error, never a made-up answer.
        assert!(frame(b"dhabc:B:0\npartial", n, 0).await.is_err());
        assert!(
            frame(b"dhabc:B:0\npartial\ndhabc:E:0:", n, 0)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_huge_frame_is_capped_and_its_end_still_found() {
        let n = "dhabc";
        let mut s = b"dhabc:B:1\n".to_vec();
        s.extend(std::iter::repeat_n(b'z', MAX_COMMAND_OUTPUT + 777_777));
        s.extend_from_slice(b"\ndhabc:E:1:0\n");
        let (out, status) = frame(&s, n, 1).await.expect("frame");
        assert_eq!(status, 0);
        assert!(out.ends_with(b"\n[truncated by deckhand]\n"));
        assert_eq!(
            out.len(),
            MAX_COMMAND_OUTPUT + b"\n[truncated by deckhand]\n".len()
        );
    }

    #[test]
    fn words_are_quoted_so_nothing_expands() {
        assert_eq!(quote("it's $HOME `x`"), r"'it'\''s $HOME `x`'");
        let line = command_line(5, "sh", &["-c", "echo \"$1\"", "n", "a b"], None);
        assert!(line.starts_with("5 ") && line.ends_with(" -\n"), "{line}");
        let line = command_line(6, "cat", &[], Some(b""));
        assert_eq!(line.split(' ').count(), 3, "{line}");
    }
}
