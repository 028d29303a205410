//! The model both inventory formats build, and Ansible's variable precedence over it.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use super::{InventoryError, InventoryHost};

pub(super) const ALL: &str = "all";
pub(super) const UNGROUPED: &str = "ungrouped";

/// A variable's value, as far as deckhand cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Var {
    Text(String),
    Integer(i64),
    Bool(bool),
    Null,
    /// A list, a mapping or a float: named for the error message.
    Other(&'static str),
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Text(text) => f.write_str(text),
            Self::Integer(n) => write!(f, "{n}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Null => f.write_str("null"),
            Self::Other(kind) => write!(f, "<{kind}>"),
        }
    }
}

pub(super) type Vars = Vec<(String, Var)>;

#[derive(Debug, Default)]
pub(super) struct Group {
    hosts: Vec<String>,
    children: Vec<String>,
    pub(super) vars: Vars,
}

#[derive(Debug, Default)]
pub(super) struct Inventory {
    /// Groups by name; `all` always exists.
    groups: HashMap<String, Group>,
    /// Hosts in the order the inventory first names them.
    host_order: Vec<String>,
    /// Each host's own variables, in the order they were set (later wins).
    host_vars: HashMap<String, Vars>,
}

impl Inventory {
    pub(super) fn new() -> Self {
        let mut inventory = Self::default();
        inventory.groups.insert(ALL.to_owned(), Group::default());
        inventory
    }

    pub(super) fn group_mut(&mut self, name: &str) -> &mut Group {
        self.groups.entry(name.to_owned()).or_default()
    }

    pub(super) fn add_child(&mut self, parent: &str, child: &str) {
        self.group_mut(child);
        let parent = self.group_mut(parent);
        if !parent.children.iter().any(|c| c == child) {
            parent.children.push(child.to_owned());
        }
    }

    pub(super) fn add_host(&mut self, group: &str, host: &str, vars: Vars) {
        if !self.host_vars.contains_key(host) {
            self.host_order.push(host.to_owned());
        }
        self.host_vars
            .entry(host.to_owned())
            .or_default()
            .extend(vars);
        let group = self.group_mut(group);
        if !group.hosts.iter().any(|h| h == host) {
            group.hosts.push(host.to_owned());
        }
    }

    /// Every group hangs under `all`; hosts in no group but `all` also belong to `ungrouped`.
    fn finish(mut self) -> Self {
        let mut names: Vec<String> = self.groups.keys().cloned().collect();
        names.sort();
        let mut has_parent: BTreeSet<String> = BTreeSet::new();
        for group in self.groups.values() {
            has_parent.extend(group.children.iter().cloned());
        }
        for name in names {
            if name != ALL && !has_parent.contains(&name) {
                self.add_child(ALL, &name);
            }
        }
        let grouped: BTreeSet<&String> = self
            .groups
            .iter()
            .filter(|(name, _)| name.as_str() != ALL)
            .flat_map(|(_, group)| group.hosts.iter())
            .collect();
        let loose: Vec<String> = self
            .host_order
            .iter()
            .filter(|h| !grouped.contains(h))
            .cloned()
            .collect();
        self.add_child(ALL, UNGROUPED);
        for host in loose {
            self.add_host(UNGROUPED, &host, Vec::new());
        }
        self
    }

    /// Depth of every group below `all` (the longest path), or the cycle that prevents it.
    fn depths(&self) -> Result<HashMap<String, usize>, InventoryError> {
        fn visit(
            inventory: &Inventory,
            name: &str,
            depth: usize,
            path: &mut Vec<String>,
            depths: &mut HashMap<String, usize>,
        ) -> Result<(), InventoryError> {
            if let Some(start) = path.iter().position(|p| p == name) {
                let mut cycle = path[start..].to_vec();
                cycle.push(name.to_owned());
                return Err(InventoryError::Cycle {
                    group: name.to_owned(),
                    cycle,
                });
            }
            if depths.get(name).is_some_and(|&known| known >= depth) && !path.is_empty() {
                return Ok(());
            }
            depths.insert(name.to_owned(), depth);
            path.push(name.to_owned());
            if let Some(group) = inventory.groups.get(name) {
                for child in &group.children {
                    visit(inventory, child, depth + 1, path, depths)?;
                }
            }
            path.pop();
            Ok(())
        }

        let mut depths = HashMap::new();
        visit(self, ALL, 0, &mut Vec::new(), &mut depths)?;
        // Groups that only sit on a cycle are not reachable from `all`: look for the cycle.
        let mut names: Vec<&String> = self.groups.keys().collect();
        names.sort();
        for name in names {
            if !depths.contains_key(name) {
                let mut scratch = HashMap::new();
                visit(self, name, 0, &mut Vec::new(), &mut scratch)?;
            }
        }
        Ok(depths)
    }

    /// `name` and every group below it.
    fn descendants(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![name.to_owned()];
        while let Some(current) = stack.pop() {
            if seen.insert(current.clone())
                && let Some(group) = self.groups.get(&current)
            {
                stack.extend(group.children.iter().cloned());
            }
        }
        seen
    }

    /// The groups a host belongs to, directly or through a child group.
    fn groups_of(&self, host: &str) -> BTreeSet<String> {
        let mut parents: HashMap<&str, Vec<&str>> = HashMap::new();
        for (name, group) in &self.groups {
            for child in &group.children {
                parents
                    .entry(child.as_str())
                    .or_default()
                    .push(name.as_str());
            }
        }
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&str> = self
            .groups
            .iter()
            .filter(|(_, group)| group.hosts.iter().any(|h| h == host))
            .map(|(name, _)| name.as_str())
            .collect();
        stack.push(ALL);
        while let Some(current) = stack.pop() {
            if seen.insert(current.to_owned())
                && let Some(up) = parents.get(current)
            {
                stack.extend(up.iter().copied());
            }
        }
        seen
    }

    pub(super) fn select(self, group: Option<&str>) -> Result<Vec<InventoryHost>, InventoryError> {
        let inventory = self.finish();
        let depths = inventory.depths()?;

        let members: Option<BTreeSet<String>> = match group {
            None => None,
            Some(name) => {
                if !inventory.groups.contains_key(name) {
                    let mut groups: Vec<String> = inventory.groups.keys().cloned().collect();
                    groups.sort();
                    return Err(InventoryError::GroupNotFound {
                        group: name.to_owned(),
                        groups,
                    });
                }
                let groups = inventory.descendants(name);
                Some(
                    groups
                        .iter()
                        .filter_map(|g| inventory.groups.get(g))
                        .flat_map(|g| g.hosts.iter().cloned())
                        .collect(),
                )
            }
        };

        let mut hosts = Vec::new();
        for name in &inventory.host_order {
            if members.as_ref().is_some_and(|m| !m.contains(name)) {
                continue;
            }
            hosts.push(inventory.resolve(name, &depths)?);
        }
        if hosts.is_empty() {
            return Err(InventoryError::NoHosts {
                group: group.map(str::to_owned),
            });
        }
        Ok(hosts)
    }

    /// The host's effective variables, then the connection settings deckhand reads.
    fn resolve(
        &self,
        host: &str,
        depths: &HashMap<String, usize>,
    ) -> Result<InventoryHost, InventoryError> {
        let mut groups: Vec<(usize, String)> = self
            .groups_of(host)
            .into_iter()
            .map(|g| (depths.get(&g).copied().unwrap_or(0), g))
            .collect();
        groups.sort();

        let mut vars: HashMap<&str, &Var> = HashMap::new();
        for (_, name) in &groups {
            if let Some(group) = self.groups.get(name) {
                for (key, value) in &group.vars {
                    vars.insert(key.as_str(), value);
                }
            }
        }
        if let Some(own) = self.host_vars.get(host) {
            for (key, value) in own {
                vars.insert(key.as_str(), value);
            }
        }

        let pick =
            |keys: &[&'static str]| -> Result<Option<(&'static str, String)>, InventoryError> {
                for &key in keys {
                    match vars.get(key) {
                        None | Some(Var::Null) => {}
                        Some(Var::Text(text)) if text.contains("{{") || text.contains("{%") => {
                            return Err(InventoryError::Variable {
                                host: host.to_owned(),
                                key: key.to_owned(),
                                message: format!(
                                    "`{text}` is a Jinja template; deckhand reads inventories literally: put the value itself in the inventory"
                                ),
                            });
                        }
                        Some(Var::Text(text)) if text.trim().is_empty() => {}
                        Some(Var::Text(text)) => return Ok(Some((key, text.trim().to_owned()))),
                        Some(Var::Integer(n)) => return Ok(Some((key, n.to_string()))),
                        Some(other) => {
                            return Err(InventoryError::Variable {
                                host: host.to_owned(),
                                key: key.to_owned(),
                                message: format!("expected a string, found {other}"),
                            });
                        }
                    }
                }
                Ok(None)
            };

        let address = pick(&["ansible_host", "ansible_ssh_host"])?.map(|(_, v)| v);
        let user = pick(&["deckhand_user", "ansible_user", "ansible_ssh_user"])?.map(|(_, v)| v);
        let identity_file = pick(&[
            "deckhand_identity_file",
            "ansible_ssh_private_key_file",
            "ansible_private_key_file",
        ])?
        .map(|(_, v)| v);
        let port = match pick(&["deckhand_port", "ansible_port", "ansible_ssh_port"])? {
            None => None,
            Some((key, value)) => match value.parse::<u16>() {
                Ok(port) if port > 0 => Some(port),
                _ => {
                    return Err(InventoryError::Variable {
                        host: host.to_owned(),
                        key: key.to_owned(),
                        message: format!("`{value}` is not a port (1-65535)"),
                    });
                }
            },
        };

        Ok(InventoryHost {
            name: host.to_owned(),
            address,
            user,
            port,
            identity_file,
        })
    }
}
