//! The host ports a host's containers were last seen published on, so a read can send its
//! `/health` probes beside the inspects that name the ports instead of after them (issue 14:
//! over a slow link that is two round trips of a status read's four).
//!
//! A remembered port is a guess, never an answer: a probe sent to it counts only if the inspect
//! that comes back with it names the same port for a running container (see
//! `state::read`); anything else is probed again. So a stale or tampered memory costs a wasted
//! probe, never a wrong health.
//!
//! A console keeps its hosts and so its memory; a CLI call starts with what the last call of
//! this user left for the same host spec (`$XDG_STATE_HOME/deckhand/ports/k<hash>`, mode
//! 0600) and writes it back when its host is closed or dropped, if it changed.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::config::HostSpec;

/// More than any host runs; a larger file is not ours to trust.
const MAX_ENTRIES: usize = 512;
const MAX_FILE_BYTES: u64 = 64 * 1024;

#[derive(Default)]
struct Known {
    ports: BTreeMap<String, u16>,
    changed: bool,
}

/// Container name → the host port its app port was published on at the last read.
#[derive(Default)]
pub struct PortMemory {
    /// `None`: kept in memory only (the local engine, or no state directory).
    file: Option<PathBuf>,
    known: Mutex<Known>,
}

impl PortMemory {
    /// What the last call left for `spec` (an ssh host), or an empty memory.
    pub(crate) fn load(spec: &HostSpec) -> Self {
        let file = super::kept::spec_key(spec)
            .map(|key| crate::logging::log_dir().join("ports").join(key));
        let ports = file.as_deref().map(read_file).unwrap_or_default();
        Self {
            file,
            known: Mutex::new(Known {
                ports,
                changed: false,
            }),
        }
    }

    /// The port `container` was last seen on.
    pub fn get(&self, container: &str) -> Option<u16> {
        self.known.lock().ok()?.ports.get(container).copied()
    }

    /// Records what a read found: `Some(port)` for a running container published on it,
    /// `None` for one that is stopped, gone or unpublished.
    pub fn set(&self, container: &str, port: Option<u16>) {
        let Ok(mut k) = self.known.lock() else {
            return;
        };
        let before = k.ports.get(container).copied();
        if before == port {
            return;
        }
        match port {
            Some(p) if k.ports.len() < MAX_ENTRIES || before.is_some() => {
                k.ports.insert(container.to_string(), p);
            }
            Some(_) => return,
            None => {
                k.ports.remove(container);
            }
        }
        k.changed = true;
    }

    /// Writes the memory back if a read changed it (best effort: a memory that cannot be
    /// written only makes the next call's read two round trips slower).
    pub(crate) fn save(&self) {
        let (Some(file), Ok(mut k)) = (&self.file, self.known.lock()) else {
            return;
        };
        if !k.changed {
            return;
        }
        let text: String = k
            .ports
            .iter()
            .map(|(name, port)| format!("{name} {port}\n"))
            .collect();
        if write_file(file, &text).is_ok() {
            k.changed = false;
        } else {
            tracing::debug!(file = %file.display(), "the remembered ports could not be written");
        }
    }
}

impl Drop for PortMemory {
    // A release run drops its hosts without `close`: what its read back found (a restarted
    // color has a new port) is kept for the next call all the same.
    fn drop(&mut self) {
        self.save();
    }
}

fn read_file(path: &std::path::Path) -> BTreeMap<String, u16> {
    let fits = std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() <= MAX_FILE_BYTES);
    if !fits {
        return BTreeMap::new();
    }
    std::fs::read_to_string(path)
        .map(|text| parse(&text))
        .unwrap_or_default()
}

fn parse(text: &str) -> BTreeMap<String, u16> {
    text.lines()
        .filter_map(|line| {
            let (name, port) = line.split_once(' ')?;
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            let port: u16 = port.trim().parse().ok().filter(|p| *p != 0)?;
            valid_name.then(|| (name.to_string(), port))
        })
        .take(MAX_ENTRIES)
        .collect()
}

fn write_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().ok_or(std::io::ErrorKind::NotFound)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // Written aside and renamed: a concurrent call reads the old file or the new one whole.
    let tmp = dir.join(format!(
        ".{}.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("ports"),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_file_keeps_only_well_formed_lines() {
        let m = parse(
            "web-blue 41000\nweb-green 0\nbad name 5\n../x 7\nweb-canary notaport\napi_1.x 65535\n",
        );
        assert_eq!(m.get("web-blue"), Some(&41000));
        assert_eq!(m.get("api_1.x"), Some(&65535));
        assert_eq!(m.len(), 2, "{m:?}");
    }

    #[test]
    fn a_change_is_written_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("ports").join("k1");
        let m = PortMemory {
            file: Some(file.clone()),
            known: Mutex::default(),
        };
        m.set("web-blue", Some(40001));
        m.set("web-green", Some(40002));
        m.set("web-green", None);
        m.save();
        assert_eq!(read_file(&file).get("web-blue"), Some(&40001));
        assert_eq!(read_file(&file).len(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
