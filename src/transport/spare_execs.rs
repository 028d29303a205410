//! Docker execs created ahead of the read that starts them.
//!
//! Every proxy operation is a Docker exec: a create, then a start, two round trips one after
//! the other. Creating an exec runs nothing (it only names a command in a container), so a
//! release creates the exec of its next read beside a step it waits for anyway, and that read
//! then costs one round trip. Only read-only commands are kept here: whoever runs the same
//! command in the same container next starts the spare instead of creating one, and a spare
//! that cannot be started (its container was replaced) is simply not used.
//!
//! An exec that is never started stays in Docker's memory until its container is removed; a
//! release leaves none behind when it ends normally (its last read starts the last spare).

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct SpareExecs(Mutex<HashMap<String, Vec<String>>>);

fn key(container: &str, cmd: &[&str]) -> String {
    let mut k = container.to_string();
    for w in cmd {
        k.push('\0');
        k.push_str(w);
    }
    k
}

impl SpareExecs {
    /// Keeps the exec `id`, created in `container` to run `cmd`, for the next caller.
    pub fn put(&self, container: &str, cmd: &[&str], id: String) {
        if let Ok(mut m) = self.0.lock() {
            m.entry(key(container, cmd)).or_default().push(id);
        }
    }

    /// A spare exec of `cmd` in `container`, if one was created.
    pub fn take(&self, container: &str, cmd: &[&str]) -> Option<String> {
        let mut m = self.0.lock().ok()?;
        let k = key(container, cmd);
        let ids = m.get_mut(&k)?;
        let id = ids.pop();
        if ids.is_empty() {
            m.remove(&k);
        }
        id
    }

    /// Forgets every spare of `container` (it was replaced: its execs would run in the old one).
    pub fn forget(&self, container: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.retain(|k, _| k.split('\0').next() != Some(container));
        }
    }

    /// Every spare left (the connection is closing).
    pub fn take_all(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|mut m| m.drain().flat_map(|(_, ids)| ids).collect())
            .unwrap_or_default()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0
            .lock()
            .map(|m| m.values().map(Vec::len).sum())
            .unwrap_or(0)
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spare_is_given_once_to_the_same_command_in_the_same_container() {
        let s = SpareExecs::default();
        s.put("p", &["cli", "show stat"], "a".into());
        assert_eq!(s.take("p", &["cli", "show"]), None);
        assert_eq!(s.take("q", &["cli", "show stat"]), None);
        // Words are kept apart: "cli show" + "stat" is another command.
        assert_eq!(s.take("p", &["cli show", "stat"]), None);
        assert_eq!(s.take("p", &["cli", "show stat"]).as_deref(), Some("a"));
        assert_eq!(s.take("p", &["cli", "show stat"]), None);
        assert!(s.is_empty());
    }

    #[test]
    fn a_replaced_container_loses_its_spares() {
        let s = SpareExecs::default();
        s.put("p", &["x"], "a".into());
        s.put("p2", &["x"], "b".into());
        s.forget("p");
        assert_eq!(s.take("p", &["x"]), None);
        assert_eq!(s.len(), 1);
    }
}
