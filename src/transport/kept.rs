//! The opt-in kept ssh master (`--keep-connection`): like OpenSSH's ControlPersist, but owned by
//! deckhand. A CLI call started with it leaves its master running for an idle time; a later
//! deckhand for the same host spec finds the master's control socket and rides it, so a CI
//! loop or `watch deckhand status` pays the ssh handshake once.
//!
//! Where: `$XDG_RUNTIME_DIR/deckhand-ssh`, else `/tmp/deckhand-ssh-UID`, a directory of this user
//! with mode 0700 (refused otherwise: a socket anyone else could plant or reach is never used),
//! one subdirectory per host spec (a hash of destination, user, port, identity and known_hosts
//! file), holding the control socket's path (`control`) and the negotiated Docker API version
//! (`api`). A recorded socket is used only if it lies in that subdirectory, is a socket owned by
//! this user, and its master answers; anything else is removed and a new master started. The
//! master exits by itself after the idle time (ssh's `ControlPersist=N`); `deckhand disconnect`
//! stops them all now.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::config::{HostSpec, HostTarget};

static KEEP: OnceLock<Duration> = OnceLock::new();

/// The default idle time of `--keep-connection` without a value.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(600);

/// Turns kept masters on for this process (the CLI calls it once, before connecting).
pub fn keep_connections(idle: Duration) {
    let _ = KEEP.set(idle.max(Duration::from_secs(1)));
}

pub(crate) fn idle_time() -> Option<Duration> {
    KEEP.get().copied()
}

fn uid() -> u32 {
    // The owner of a directory this process creates is this process's effective user.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// The directory of kept masters, created 0700; `Err` when it exists but is not safe to use.
pub(crate) fn base_dir() -> Result<PathBuf, String> {
    let base = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() && Path::new(&d).join("deckhand-ssh").as_os_str().len() < 48 => {
            PathBuf::from(d).join("deckhand-ssh")
        }
        _ => PathBuf::from(format!("/tmp/deckhand-ssh-{}", uid())),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&base) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", base.display())),
    }
    check_private(&base)?;
    Ok(base)
}

/// A directory (not a link) of this user that nobody else may write or enter.
fn check_private(dir: &Path) -> Result<(), String> {
    let m = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !m.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    if m.uid() != uid() {
        return Err(format!(
            "{} belongs to another user (uid {})",
            dir.display(),
            m.uid()
        ));
    }
    if m.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} is open to other users (mode {:o}); it must be 0700",
            dir.display(),
            m.permissions().mode() & 0o777
        ));
    }
    Ok(())
}

/// The name that stands for one ssh host spec (what ssh would connect to, and as whom):
/// `k` and a stable hash, the same for the same spec in every call.
pub(crate) fn spec_key(spec: &HostSpec) -> Option<String> {
    use std::hash::{Hash, Hasher};
    let HostTarget::Ssh {
        destination,
        user,
        port,
        identity_file,
        known_hosts,
    } = &spec.target
    else {
        return None;
    };
    // FNV-1a over the fields' debug form: std's hasher is seeded per process.
    let key = format!("{destination:?}|{user:?}|{port:?}|{identity_file:?}|{known_hosts:?}");
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    key.hash(&mut h);
    Some(format!("k{:016x}", h.finish()))
}

/// The subdirectory of one host spec.
pub(crate) fn host_dir(base: &Path, spec: &HostSpec) -> Result<PathBuf, String> {
    let dir = base.join(spec_key(spec).ok_or("not an ssh host")?);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    check_private(&dir)?;
    Ok(dir)
}

struct Fnv(u64);
impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The control socket recorded in `dir`, if it is one deckhand may trust: inside `dir`, a
/// socket, owned by this user. Whether its master answers is the caller's check.
pub(crate) fn recorded_socket(dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let text = std::fs::read_to_string(dir.join("control")).ok()?;
    let path = PathBuf::from(text.trim());
    if !path.starts_with(dir) || path.components().any(|c| c.as_os_str() == "..") {
        return None;
    }
    let m = std::fs::symlink_metadata(&path).ok()?;
    (m.file_type().is_socket() && m.uid() == uid()).then_some(path)
}

/// Records the control socket of a new master (atomically: written beside, then renamed).
pub(crate) fn record_socket(dir: &Path, socket: &Path) {
    let tmp = dir.join(format!(".control.{}", std::process::id()));
    if std::fs::write(&tmp, socket.as_os_str().as_encoded_bytes()).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join("control"));
    }
}

/// Forgets a master that no longer answers (its socket, the record, the cached version).
pub(crate) fn forget(dir: &Path) {
    if let Some(sock) = recorded_socket(dir)
        && let Some(parent) = sock.parent()
        && parent != dir
        && parent.starts_with(dir)
    {
        let _ = std::fs::remove_dir_all(parent);
    }
    let _ = std::fs::remove_file(dir.join("control"));
    let _ = std::fs::remove_file(dir.join("api"));
}

/// The Docker API version negotiated through this master, if recorded.
pub(crate) fn cached_api(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join("api"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.len() < 16)
}

pub(crate) fn cache_api(dir: &Path, api: &str) {
    let tmp = dir.join(format!(".api.{}", std::process::id()));
    if std::fs::write(&tmp, api).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join("api"));
    }
}

/// Stops every kept master of this user (`deckhand disconnect`); returns how many were running.
pub async fn disconnect_all() -> Result<usize, String> {
    let base = base_dir()?;
    let mut stopped = 0;
    let entries = std::fs::read_dir(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    for e in entries.flatten() {
        let dir = e.path();
        let is_host_dir = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('k'));
        if !is_host_dir || check_private(&dir).is_err() {
            continue;
        }
        if let Some(sock) = recorded_socket(&dir) {
            let ok = tokio::process::Command::new("ssh")
                .arg("-S")
                .arg(&sock)
                .args(["-O", "exit", "deckhand-kept"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .await
                .is_ok_and(|s| s.success());
            if ok {
                stopped += 1;
            }
        }
        forget(&dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(stopped)
}
