//! An Ansible inventory as deckhand's host list, so the team keeps one inventory.
//!
//! `[env.NAME] ansible_inventory = "infrastructure/ansible/inventories/NAME.yml"` (with an
//! optional `ansible_group`, default: every host) makes deckhand read its hosts from the same
//! file Ansible uses. [`hosts_from_inventory`] is the pure part: text in, hosts out.
//!
//! Both inventory formats are read:
//! - YAML: `all` / `children` / `hosts` / `vars` nesting; top-level groups other than `all` are
//!   children of `all`.
//! - INI: `[group]`, `host key=value ...`, `[group:children]`, `[group:vars]`; hosts before the
//!   first section belong to `ungrouped`.
//!
//! Host patterns (`web[01:03].example.com`, `[a:c]`, a stride `[1:9:2]`) expand, and a
//! `host:port` name sets the port. Variables follow Ansible's precedence: `all`, then groups by
//! depth (parents before children; siblings by name), then the host's own variables.
//!
//! What deckhand takes from a host's variables:
//! - `address`: `ansible_host` (legacy `ansible_ssh_host`);
//! - `user`: `deckhand_user`, else `ansible_user` (legacy `ansible_ssh_user`);
//! - `port`: `deckhand_port`, else `ansible_port` (legacy `ansible_ssh_port`), else the pattern's;
//! - `identity_file`: `deckhand_identity_file`, else `ansible_ssh_private_key_file` (or
//!   `ansible_private_key_file`).
//!
//! The `deckhand_*` variables exist because Ansible and deckhand log in as different users on
//! the same droplet: Ansible as an admin with sudo, deckhand as the `deploy` user (docker group,
//! no sudo). Values are read literally: a Jinja template (`{{ ... }}`) in one of these variables
//! is an error, not something deckhand guesses at. Inventory plugins, scripts and directories
//! are not read, nor `group_vars/`/`host_vars/` files next to the inventory: put what deckhand
//! needs in the inventory file itself.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde_yaml_ng::Value;
use thiserror::Error;

/// One host of the inventory, as deckhand needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryHost {
    /// The inventory name (`inventory_hostname`).
    pub name: String,
    /// Where to connect (`ansible_host`); `None`: the name itself.
    pub address: Option<String>,
    /// SSH user (`deckhand_user`, else `ansible_user`).
    pub user: Option<String>,
    /// SSH port (`deckhand_port`, else `ansible_port`).
    pub port: Option<u16>,
    /// Private key (`deckhand_identity_file`, else `ansible_ssh_private_key_file`).
    pub identity_file: Option<String>,
}

/// What is wrong with an inventory, and where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InventoryError {
    /// The text is not YAML.
    #[error("malformed YAML inventory{}: {message}", at_line(*line, *column))]
    Yaml {
        /// 1-based line, when the parser knows it.
        line: Option<usize>,
        /// 1-based column, when the parser knows it.
        column: Option<usize>,
        /// The parser's message.
        message: String,
    },

    /// Valid YAML, but not an inventory.
    #[error("YAML inventory, at `{path}`: {message}")]
    Structure {
        /// Dotted path of the offending node, e.g. `all.children.api.hosts`.
        path: String,
        /// What was expected there.
        message: String,
    },

    /// A line of an INI inventory that cannot be read.
    #[error("INI inventory, line {line}: {message}")]
    Ini {
        /// 1-based line.
        line: usize,
        /// What is wrong with it.
        message: String,
    },

    /// The requested group does not exist.
    #[error("group `{group}` is not in the inventory; its groups are: {}", groups.join(", "))]
    GroupNotFound {
        /// The group asked for.
        group: String,
        /// The groups that exist, sorted.
        groups: Vec<String>,
    },

    /// The inventory, or the requested group, has no hosts.
    #[error("{}", no_hosts(group.as_deref()))]
    NoHosts {
        /// The group asked for (`None`: the whole inventory).
        group: Option<String>,
    },

    /// Groups that are their own ancestors.
    #[error("group `{group}` is its own ancestor through `children`: {}", cycle.join(" -> "))]
    Cycle {
        /// A group on the cycle.
        group: String,
        /// The cycle, starting and ending with `group`.
        cycle: Vec<String>,
    },

    /// A variable deckhand uses has a value it cannot use.
    #[error("host `{host}`: `{key}`: {message}")]
    Variable {
        /// The host the value applies to.
        host: String,
        /// The variable.
        key: String,
        /// What is wrong with the value.
        message: String,
    },
}

fn at_line(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!(" at line {line}, column {column}"),
        (Some(line), None) => format!(" at line {line}"),
        _ => String::new(),
    }
}

fn no_hosts(group: Option<&str>) -> String {
    match group {
        Some(group) => format!("group `{group}` has no hosts"),
        None => "the inventory has no hosts".to_owned(),
    }
}

/// The hosts of `group` (and of its descendants), or of the whole inventory, in the order the
/// inventory first names them. `text` is a YAML or INI inventory.
///
/// # Errors
/// Malformed YAML (with its line), an INI line that cannot be read, a structure that is not an
/// inventory, an unknown group (listing the groups that exist), a `children` cycle, no hosts,
/// or a connection variable deckhand cannot use (a port out of range, a Jinja template).
pub fn hosts_from_inventory(
    text: &str,
    group: Option<&str>,
) -> Result<Vec<InventoryHost>, InventoryError> {
    let inventory = if looks_like_ini(text) {
        parse_ini(text)?
    } else {
        match parse_yaml(text)? {
            // A single plain line such as `web-1:2222` is YAML for a string: an INI host.
            Parsed::Scalar => parse_ini(text)?,
            Parsed::Inventory(inventory) => inventory,
        }
    };
    inventory.select(group)
}

// ---------------------------------------------------------------------------------------------
// The model both formats build.

const ALL: &str = "all";
const UNGROUPED: &str = "ungrouped";

/// A variable's value, as far as deckhand cares.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Var {
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

type Vars = Vec<(String, Var)>;

#[derive(Debug, Default)]
struct Group {
    hosts: Vec<String>,
    children: Vec<String>,
    vars: Vars,
}

#[derive(Debug, Default)]
struct Inventory {
    /// Groups by name; `all` always exists.
    groups: HashMap<String, Group>,
    /// Hosts in the order the inventory first names them.
    host_order: Vec<String>,
    /// Each host's own variables, in the order they were set (later wins).
    host_vars: HashMap<String, Vars>,
}

impl Inventory {
    fn new() -> Self {
        let mut inventory = Self::default();
        inventory.groups.insert(ALL.to_owned(), Group::default());
        inventory
    }

    fn group_mut(&mut self, name: &str) -> &mut Group {
        self.groups.entry(name.to_owned()).or_default()
    }

    fn add_child(&mut self, parent: &str, child: &str) {
        self.group_mut(child);
        let parent = self.group_mut(parent);
        if !parent.children.iter().any(|c| c == child) {
            parent.children.push(child.to_owned());
        }
    }

    fn add_host(&mut self, group: &str, host: &str, vars: Vars) {
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

    fn select(self, group: Option<&str>) -> Result<Vec<InventoryHost>, InventoryError> {
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

// ---------------------------------------------------------------------------------------------
// Host patterns: `web[01:03].example.com`, `db-[a:c]`, `host:2222`.

/// Expands a host pattern into host names, each with the port its pattern names (if any).
fn expand_host_pattern(pattern: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let (name, port) = split_port(pattern);
    let names = expand_ranges(name)?;
    Ok(names.into_iter().map(|n| (n, port.clone())).collect())
}

/// `host:22` → (`host`, Some("22")). IPv6 addresses (several colons) keep their colons;
/// `[2001:db8::1]:22` is the way to give one a port.
fn split_port(pattern: &str) -> (&str, Option<String>) {
    let digits = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = pattern.strip_prefix('[')
        && let Some((address, tail)) = rest.split_once(']')
        && address.matches(':').count() > 1
    {
        let port = tail.strip_prefix(':').filter(digits);
        return (address, port.map(str::to_owned));
    }
    // Colons inside `[...]` ranges are not ports: look after the last `]` only.
    let tail_start = pattern.rfind(']').map_or(0, |i| i + 1);
    let tail = &pattern[tail_start..];
    if tail.matches(':').count() == 1
        && let Some((_, port)) = tail.split_once(':')
        && digits(&port)
    {
        let name_end = pattern.len() - port.len() - 1;
        return (&pattern[..name_end], Some(port.to_owned()));
    }
    (pattern, None)
}

/// A `host:port` name sets the host's `ansible_port`, as Ansible does; the host's explicit
/// variables come after it and win.
fn with_port(port: Option<String>, vars: &Vars) -> Vars {
    port.map(|p| ("ansible_port".to_owned(), Var::Text(p)))
        .into_iter()
        .chain(vars.iter().cloned())
        .collect()
}

fn expand_ranges(name: &str) -> Result<Vec<String>, String> {
    let Some(open) = name.find('[') else {
        return Ok(vec![name.to_owned()]);
    };
    let Some(close_rel) = name[open..].find(']') else {
        return Err(format!("`{name}`: `[` without `]`"));
    };
    let close = open + close_rel;
    let (head, range, tail) = (&name[..open], &name[open + 1..close], &name[close + 1..]);
    let parts: Vec<&str> = range.split(':').collect();
    let (start, end, stride) = match parts.as_slice() {
        [start, end] => (*start, *end, "1"),
        [start, end, stride] => (*start, *end, *stride),
        _ => {
            return Err(format!(
                "`{name}`: a range is [start:end] or [start:end:stride]"
            ));
        }
    };
    let stride: usize = stride
        .parse()
        .ok()
        .filter(|&s| s > 0)
        .ok_or_else(|| format!("`{name}`: stride `{stride}` is not a positive number"))?;

    let items: Vec<String> = if let (Ok(a), Ok(b)) = (start.parse::<u64>(), end.parse::<u64>()) {
        if a > b {
            return Err(format!("`{name}`: range start {a} is after its end {b}"));
        }
        if (b - a) / stride as u64 > MAX_PATTERN_HOSTS as u64 {
            return Err(format!(
                "`{name}`: the range names more than {MAX_PATTERN_HOSTS} hosts"
            ));
        }
        let width = if start.len() > 1 && start.starts_with('0') {
            start.len()
        } else {
            0
        };
        (a..=b)
            .step_by(stride)
            .map(|n| format!("{n:0width$}"))
            .collect()
    } else {
        let (Some(a), Some(b)) = (single_letter(start), single_letter(end)) else {
            return Err(format!(
                "`{name}`: range [{range}] is neither numeric nor single letters"
            ));
        };
        if a > b {
            return Err(format!(
                "`{name}`: range start `{a}` is after its end `{b}`"
            ));
        }
        (a..=b).step_by(stride).map(|c| c.to_string()).collect()
    };

    let rests = expand_ranges(tail)?;
    if items.len().saturating_mul(rests.len()) > MAX_PATTERN_HOSTS {
        return Err(format!(
            "`{name}`: the pattern names more than {MAX_PATTERN_HOSTS} hosts"
        ));
    }
    let mut out = Vec::with_capacity(items.len() * rests.len());
    for item in &items {
        for rest in &rests {
            out.push(format!("{head}{item}{rest}"));
        }
    }
    Ok(out)
}

/// More hosts than this from one pattern is a typo, not a fleet.
const MAX_PATTERN_HOSTS: usize = 10_000;

fn single_letter(s: &str) -> Option<char> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => Some(c),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// YAML.

/// INI if the first meaningful line is a section header or a host line; YAML otherwise.
fn looks_like_ini(text: &str) -> bool {
    let Some(first) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
    else {
        return false;
    };
    if first == "---"
        || first == "-"
        || first.starts_with("- ")
        || first.ends_with(':')
        || first.contains(": ")
        || first.starts_with('{')
    {
        return false;
    }
    // `[group]` (not a YAML flow sequence such as `[a, b]`) or `host key=value`.
    (first.starts_with('[') && first.ends_with(']') && !first.contains(','))
        || (!first.contains(':') || first.contains('='))
}

enum Parsed {
    Inventory(Inventory),
    Scalar,
}

fn parse_yaml(text: &str) -> Result<Parsed, InventoryError> {
    let mut value: Value = serde_yaml_ng::from_str(text).map_err(|err| {
        let location = err.location();
        InventoryError::Yaml {
            line: location.as_ref().map(serde_yaml_ng::Location::line),
            column: location.as_ref().map(serde_yaml_ng::Location::column),
            message: err.to_string(),
        }
    })?;
    value.apply_merge().map_err(|err| InventoryError::Yaml {
        line: None,
        column: None,
        message: err.to_string(),
    })?;

    let mut inventory = Inventory::new();
    match value {
        Value::Null => {}
        Value::String(_) | Value::Number(_) => return Ok(Parsed::Scalar),
        Value::Mapping(top) => {
            for (key, group) in &top {
                let name = key_name(key, "")?;
                yaml_group(&mut inventory, &name, group, &name)?;
            }
        }
        other => {
            return Err(InventoryError::Structure {
                path: "(top level)".to_owned(),
                message: format!(
                    "expected a mapping of groups (e.g. `all:`), found {}",
                    kind(&other)
                ),
            });
        }
    }
    Ok(Parsed::Inventory(inventory))
}

fn yaml_group(
    inventory: &mut Inventory,
    name: &str,
    value: &Value,
    path: &str,
) -> Result<(), InventoryError> {
    inventory.group_mut(name);
    let entries = match value {
        Value::Null => return Ok(()),
        Value::Mapping(entries) => entries,
        other => {
            return Err(InventoryError::Structure {
                path: path.to_owned(),
                message: format!(
                    "a group is a mapping with `hosts`, `children` and `vars`, found {}",
                    kind(other)
                ),
            });
        }
    };
    for (key, entry) in entries {
        let key = key_name(key, path)?;
        let here = format!("{path}.{key}");
        match key.as_str() {
            "hosts" => match entry {
                Value::Null => {}
                Value::Mapping(hosts) => {
                    for (host, vars) in hosts {
                        let pattern = key_name(host, &here)?;
                        let host_path = format!("{here}.{pattern}");
                        let vars = yaml_vars(vars, &host_path)?;
                        let expanded = expand_host_pattern(&pattern).map_err(|message| {
                            InventoryError::Structure {
                                path: host_path.clone(),
                                message,
                            }
                        })?;
                        for (host_name, port) in expanded {
                            inventory.add_host(name, &host_name, with_port(port, &vars));
                        }
                    }
                }
                other => {
                    return Err(InventoryError::Structure {
                        path: here,
                        message: format!(
                            "expected a mapping of host names (`host: {{vars}}` or `host:`), found {}",
                            kind(other)
                        ),
                    });
                }
            },
            "children" => match entry {
                Value::Null => {}
                Value::Mapping(children) => {
                    for (child, body) in children {
                        let child = key_name(child, &here)?;
                        inventory.add_child(name, &child);
                        yaml_group(inventory, &child, body, &format!("{here}.{child}"))?;
                    }
                }
                other => {
                    return Err(InventoryError::Structure {
                        path: here,
                        message: format!(
                            "expected a mapping of group names, found {}",
                            kind(other)
                        ),
                    });
                }
            },
            "vars" => {
                let vars = yaml_vars(entry, &here)?;
                inventory.group_mut(name).vars.extend(vars);
            }
            other => {
                return Err(InventoryError::Structure {
                    path: here.clone(),
                    message: format!(
                        "unexpected key `{other}`: a group has only `hosts`, `children` and `vars` (hosts go under `hosts:`)"
                    ),
                });
            }
        }
    }
    Ok(())
}

fn yaml_vars(value: &Value, path: &str) -> Result<Vars, InventoryError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Mapping(map) => map
            .iter()
            .map(|(key, value)| Ok((key_name(key, path)?, yaml_var(value))))
            .collect(),
        other => Err(InventoryError::Structure {
            path: path.to_owned(),
            message: format!("expected a mapping of variables, found {}", kind(other)),
        }),
    }
}

fn yaml_var(value: &Value) -> Var {
    match value {
        Value::Null => Var::Null,
        Value::Bool(b) => Var::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map_or(Var::Other("a non-integer number"), Var::Integer),
        Value::String(s) => Var::Text(s.clone()),
        Value::Tagged(tagged) => yaml_var(&tagged.value),
        Value::Sequence(_) => Var::Other("a list"),
        Value::Mapping(_) => Var::Other("a mapping"),
    }
}

fn key_name(key: &Value, path: &str) -> Result<String, InventoryError> {
    match key {
        Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(InventoryError::Structure {
            path: if path.is_empty() {
                "(top level)".to_owned()
            } else {
                path.to_owned()
            },
            message: format!("expected a name as key, found {}", kind(other)),
        }),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

// ---------------------------------------------------------------------------------------------
// INI.

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Hosts,
    Children,
    Vars,
}

fn parse_ini(text: &str) -> Result<Inventory, InventoryError> {
    let mut inventory = Inventory::new();
    let mut group = UNGROUPED.to_owned();
    let mut section = Section::Hosts;
    // Groups named in a `:children` or `:vars` section before (or without) being defined.
    let mut pending: HashMap<String, (usize, Section)> = HashMap::new();
    let mut defined: BTreeSet<String> = BTreeSet::from([ALL.to_owned(), UNGROUPED.to_owned()]);

    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let err = |message: String| InventoryError::Ini {
            line: line_no,
            message,
        };

        if let Some(header) = line.strip_prefix('[') {
            let (name, kind) = ini_header(header).map_err(err)?;
            group = name;
            section = kind;
            match kind {
                Section::Hosts | Section::Children => {
                    defined.insert(group.clone());
                    pending.remove(&group);
                    inventory.group_mut(&group);
                }
                Section::Vars => {
                    if !defined.contains(&group) {
                        pending
                            .entry(group.clone())
                            .or_insert((line_no, Section::Vars));
                    }
                    inventory.group_mut(&group);
                }
            }
            continue;
        }

        match section {
            Section::Hosts => {
                let tokens = split_ini_tokens(line).map_err(err)?;
                let Some((pattern, rest)) = tokens.split_first() else {
                    continue;
                };
                let mut vars = Vec::new();
                for token in rest {
                    let Some((key, value)) = token.split_once('=') else {
                        return Err(err(format!(
                            "`{token}` after host `{pattern}` is not key=value"
                        )));
                    };
                    if key.is_empty() {
                        return Err(err(format!("`{token}`: empty variable name")));
                    }
                    vars.push((key.to_owned(), Var::Text(value.to_owned())));
                }
                let expanded = expand_host_pattern(pattern).map_err(err)?;
                for (host, port) in expanded {
                    inventory.add_host(&group, &host, with_port(port, &vars));
                }
            }
            Section::Children => {
                let tokens = split_ini_tokens(line).map_err(err)?;
                let Some(child) = tokens.first() else {
                    continue;
                };
                if tokens.len() > 1 {
                    return Err(err(format!(
                        "a `[{group}:children]` line names one group, found `{line}`"
                    )));
                }
                if !defined.contains(child) {
                    pending
                        .entry(child.clone())
                        .or_insert((line_no, Section::Children));
                }
                inventory.add_child(&group, child);
            }
            Section::Vars => {
                let Some((key, value)) = line.split_once('=') else {
                    return Err(err(format!(
                        "`{line}` in `[{group}:vars]` is not key=value"
                    )));
                };
                let key = key.trim();
                if key.is_empty() {
                    return Err(err("empty variable name".to_owned()));
                }
                let value = unquote(value.trim());
                inventory
                    .group_mut(&group)
                    .vars
                    .push((key.to_owned(), Var::Text(value)));
            }
        }
    }

    undefined_groups(pending, &defined)?;
    Ok(inventory)
}

/// Groups named in `[x:children]` or `[x:vars]` but never defined are errors, as in Ansible.
fn undefined_groups(
    pending: HashMap<String, (usize, Section)>,
    defined: &BTreeSet<String>,
) -> Result<(), InventoryError> {
    let mut undefined: Vec<(usize, String, Section)> = pending
        .into_iter()
        .filter(|(name, _)| !defined.contains(name))
        .map(|(name, (line, section))| (line, name, section))
        .collect();
    undefined.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    if let Some((line, name, section)) = undefined.into_iter().next() {
        let message = if section == Section::Vars {
            format!("`[{name}:vars]` is for a group that is never defined (no `[{name}]` section)")
        } else {
            format!("group `{name}` is listed as a child but never defined (no `[{name}]` section)")
        };
        return Err(InventoryError::Ini { line, message });
    }
    Ok(())
}

/// `group]`, `group:children]` or `group:vars]` (the text after `[`) → the group and section.
fn ini_header(header: &str) -> Result<(String, Section), String> {
    let inside = header
        .split_once(']')
        .map(|(inside, rest)| (inside.trim(), rest.trim()))
        .filter(|(_, rest)| rest.is_empty() || rest.starts_with('#') || rest.starts_with(';'))
        .map(|(inside, _)| inside)
        .ok_or_else(|| format!("`[{header}` is not a section header like `[group]`"))?;
    let (name, kind) = match inside.split_once(':') {
        None => (inside, Section::Hosts),
        Some((name, "children")) => (name, Section::Children),
        Some((name, "vars")) => (name, Section::Vars),
        Some((_, other)) => {
            return Err(format!(
                "section suffix `:{other}`: only `:children` and `:vars` exist"
            ));
        }
    };
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("`{name}` is not a group name"));
    }
    Ok((name.to_owned(), kind))
}

/// Splits a host line like a shell would: whitespace separates, quotes group, `#` starts a
/// comment at the beginning of a word. Quotes are removed.
fn split_ini_tokens(line: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => current.push(c),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    in_token = true;
                }
                '\\' => {
                    if let Some(next) = chars.next() {
                        current.push(next);
                        in_token = true;
                    }
                }
                '#' if !in_token => break,
                c if c.is_whitespace() => {
                    if in_token {
                        tokens.push(std::mem::take(&mut current));
                        in_token = false;
                    }
                }
                c => {
                    current.push(c);
                    in_token = true;
                }
            },
        }
    }
    if let Some(q) = quote {
        return Err(format!("unclosed quote {q} in `{line}`"));
    }
    if in_token {
        tokens.push(current);
    }
    Ok(tokens)
}

/// A `[group:vars]` value is literal, as Ansible reads it: no inline comments; quotes are
/// removed only when they enclose the whole value.
fn unquote(value: &str) -> String {
    for q in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            return value[1..value.len() - 1].to_owned();
        }
    }
    value.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: &str = include_str!("../../infrastructure/ansible/inventories/dev.yml");
    const STAGING: &str = include_str!("../../infrastructure/ansible/inventories/staging.yml");

    fn host(
        name: &str,
        address: Option<&str>,
        user: Option<&str>,
        port: Option<u16>,
    ) -> InventoryHost {
        InventoryHost {
            name: name.to_owned(),
            address: address.map(str::to_owned),
            user: user.map(str::to_owned),
            port,
            identity_file: None,
        }
    }

    fn names(hosts: &[InventoryHost]) -> Vec<&str> {
        hosts.iter().map(|h| h.name.as_str()).collect()
    }

    #[test]
    fn reads_the_real_dev_inventory() {
        let hosts = hosts_from_inventory(DEV, Some("api")).unwrap();
        assert_eq!(
            hosts,
            vec![host(
                "deckhand-dev-api-1",
                Some("203.0.113.20"),
                Some("deploy"),
                None
            )]
        );
        assert_eq!(hosts_from_inventory(DEV, None).unwrap(), hosts);
        assert_eq!(hosts_from_inventory(DEV, Some("dev")).unwrap(), hosts);
    }

    #[test]
    fn reads_the_real_staging_inventory() {
        let hosts = hosts_from_inventory(STAGING, Some("api")).unwrap();
        assert_eq!(
            hosts,
            vec![
                host(
                    "deckhand-staging-api-1",
                    Some("203.0.113.10"),
                    Some("deploy"),
                    None
                ),
                host(
                    "deckhand-staging-api-2",
                    Some("203.0.113.11"),
                    Some("deploy"),
                    None
                ),
            ]
        );
        let err = hosts_from_inventory(STAGING, Some("web")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "group `web` is not in the inventory; its groups are: all, api, staging, ungrouped"
        );
    }

    #[test]
    fn yaml_variables_follow_ansible_precedence() {
        let text = "
all:
  vars:
    ansible_user: root
    ansible_port: 22
    ansible_ssh_private_key_file: ~/.ssh/all
  children:
    prod:
      vars:
        ansible_user: ops
        ansible_port: 2200
      children:
        api:
          vars:
            ansible_user: deploy
          hosts:
            api-1:
              ansible_host: 10.0.0.1
            api-2:
              ansible_host: 10.0.0.2
              ansible_port: '2222'
              ansible_user: special
        db:
          hosts:
            db-1:
              ansible_host: 10.0.0.9
";
        let hosts = hosts_from_inventory(text, Some("prod")).unwrap();
        assert_eq!(names(&hosts), ["api-1", "api-2", "db-1"]);
        assert_eq!(hosts[0].user.as_deref(), Some("deploy"));
        assert_eq!(hosts[0].port, Some(2200));
        assert_eq!(hosts[0].identity_file.as_deref(), Some("~/.ssh/all"));
        assert_eq!(hosts[1].user.as_deref(), Some("special"));
        assert_eq!(hosts[1].port, Some(2222));
        assert_eq!(hosts[2].user.as_deref(), Some("ops"));
        assert_eq!(hosts[2].address.as_deref(), Some("10.0.0.9"));
        assert_eq!(
            names(&hosts_from_inventory(text, Some("db")).unwrap()),
            ["db-1"]
        );
    }

    #[test]
    fn deckhand_variables_override_ansible_ones() {
        let text = "
all:
  vars:
    ansible_user: ops
    deckhand_user: deploy
  hosts:
    web-1:
      ansible_ssh_host: 192.0.2.7
      ansible_ssh_port: 2201
      deckhand_port: 2202
      ansible_private_key_file: /keys/ops
      deckhand_identity_file: /keys/deploy
";
        let hosts = hosts_from_inventory(text, None).unwrap();
        assert_eq!(
            hosts,
            vec![InventoryHost {
                name: "web-1".to_owned(),
                address: Some("192.0.2.7".to_owned()),
                user: Some("deploy".to_owned()),
                port: Some(2202),
                identity_file: Some("/keys/deploy".to_owned()),
            }]
        );
    }

    #[test]
    fn top_level_groups_hang_under_all_and_patterns_expand() {
        let text = "
web:
  hosts:
    web[01:03].example.com:
    'other.example.com:2222':
  vars:
    ansible_user: www
ungrouped_box:
  hosts:
    db-[a:b]:
";
        let hosts = hosts_from_inventory(text, None).unwrap();
        assert_eq!(
            names(&hosts),
            [
                "web01.example.com",
                "web02.example.com",
                "web03.example.com",
                "other.example.com",
                "db-a",
                "db-b"
            ]
        );
        assert_eq!(hosts[3].port, Some(2222));
        assert_eq!(hosts[3].user.as_deref(), Some("www"));
        assert_eq!(hosts[4].user, None);
        assert_eq!(
            names(&hosts_from_inventory(text, Some("all")).unwrap()).len(),
            6
        );
    }

    #[test]
    fn a_host_in_several_groups_is_listed_once() {
        let text = "
all:
  children:
    a:
      hosts:
        h1:
        h2:
    b:
      hosts:
        h2:
        h3:
";
        assert_eq!(
            names(&hosts_from_inventory(text, None).unwrap()),
            ["h1", "h2", "h3"]
        );
    }

    #[test]
    fn malformed_yaml_names_the_line() {
        let text = "all:\n  hosts:\n    a: [\n  vars: {\n";
        let err = hosts_from_inventory(text, None).unwrap_err();
        match &err {
            InventoryError::Yaml { line, .. } => assert!(line.is_some(), "{err}"),
            other => panic!("expected a YAML error, got {other:?}"),
        }
        assert!(
            err.to_string()
                .starts_with("malformed YAML inventory at line "),
            "{err}"
        );
    }

    #[test]
    fn yaml_that_is_not_an_inventory_says_where() {
        let err = hosts_from_inventory("all:\n  hosts:\n    - web-1\n", None).unwrap_err();
        assert_eq!(
            err,
            InventoryError::Structure {
                path: "all.hosts".to_owned(),
                message:
                    "expected a mapping of host names (`host: {vars}` or `host:`), found a list"
                        .to_owned(),
            }
        );
        let err =
            hosts_from_inventory("all:\n  children:\n    api:\n      web-1:\n", None).unwrap_err();
        assert!(
            err.to_string().contains("at `all.children.api.web-1`"),
            "{err}"
        );
        let err = hosts_from_inventory("- a\n- b\n", None).unwrap_err();
        assert!(
            err.to_string().contains("expected a mapping of groups"),
            "{err}"
        );
    }

    #[test]
    fn unusable_values_are_errors_with_the_host() {
        let err = hosts_from_inventory("all:\n  hosts:\n    h:\n      ansible_port: 70000\n", None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "host `h`: `ansible_port`: `70000` is not a port (1-65535)"
        );
        let err = hosts_from_inventory(
            "all:\n  hosts:\n    h:\n      ansible_host: \"{{ lookup('env', 'IP') }}\"\n",
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("Jinja template"), "{err}");
        let err = hosts_from_inventory("all:\n  hosts:\n    h:\n      ansible_user: [a]\n", None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "host `h`: `ansible_user`: expected a string, found <a list>"
        );
    }

    #[test]
    fn no_hosts_is_an_error() {
        assert_eq!(
            hosts_from_inventory("", None).unwrap_err(),
            InventoryError::NoHosts { group: None }
        );
        assert_eq!(
            hosts_from_inventory("all:\n  children:\n    api:\n", Some("api"))
                .unwrap_err()
                .to_string(),
            "group `api` has no hosts"
        );
    }

    #[test]
    fn children_cycles_are_reported() {
        let text = "
all:
  children:
    a:
      children:
        b:
          children:
            a:
          hosts:
            h:
";
        let err = hosts_from_inventory(text, None).unwrap_err();
        assert!(matches!(err, InventoryError::Cycle { .. }), "{err}");
        assert!(err.to_string().contains("a -> b -> a"), "{err}");
    }

    const INI: &str = "
# staging, INI flavour
loose.example.com

[api]
api-1 ansible_host=203.0.113.10 ansible_user=deploy
api-2 ansible_host=203.0.113.11 ansible_port=2222 # second host
api-[3:4] ansible_host=203.0.113.12

[db]
db-1:5432

[staging:children]
api
db

[staging:vars]
ansible_user = ops
ansible_ssh_private_key_file = \"/home/me/.ssh/staging key\"

[api:vars]
deckhand_user=deploy
";

    #[test]
    fn reads_ini_inventories() {
        let hosts = hosts_from_inventory(INI, Some("staging")).unwrap();
        assert_eq!(names(&hosts), ["api-1", "api-2", "api-3", "api-4", "db-1"]);
        assert_eq!(hosts[1].port, Some(2222));
        assert_eq!(hosts[1].user.as_deref(), Some("deploy"));
        assert_eq!(hosts[4].user.as_deref(), Some("ops"));
        assert_eq!(hosts[4].port, Some(5432));
        assert_eq!(
            hosts[4].identity_file.as_deref(),
            Some("/home/me/.ssh/staging key")
        );
        assert_eq!(hosts[2].address.as_deref(), Some("203.0.113.12"));

        let all = hosts_from_inventory(INI, None).unwrap();
        assert_eq!(
            all.first().map(|h| h.name.as_str()),
            Some("loose.example.com")
        );
        assert_eq!(
            names(&hosts_from_inventory(INI, Some("ungrouped")).unwrap()),
            ["loose.example.com"]
        );
    }

    #[test]
    fn ini_errors_name_the_line() {
        let err = hosts_from_inventory("[api]\nh1 ansible_host\n", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "INI inventory, line 2: `ansible_host` after host `h1` is not key=value"
        );
        let err = hosts_from_inventory("[api]\nh1\n[all:children]\napi\nweb\n", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "INI inventory, line 5: group `web` is listed as a child but never defined (no `[web]` section)"
        );
        let err = hosts_from_inventory("[api]\nh1\n[api:hosts]\n", None).unwrap_err();
        assert!(
            err.to_string().starts_with("INI inventory, line 3:"),
            "{err}"
        );
        let err = hosts_from_inventory("[web:vars]\nx=1\n[api]\nh1\n", None).unwrap_err();
        assert!(err.to_string().contains("never defined"), "{err}");
        let err = hosts_from_inventory("[api]\nh1 ansible_host=\"1.2.3.4\n", None).unwrap_err();
        assert!(err.to_string().contains("unclosed quote"), "{err}");
    }

    #[test]
    fn ini_children_defined_after_use_are_fine() {
        let text = "[prod:children]\napi\n\n[api]\nh1 ansible_host=192.0.2.1\n";
        let hosts = hosts_from_inventory(text, Some("prod")).unwrap();
        assert_eq!(hosts, vec![host("h1", Some("192.0.2.1"), None, None)]);
    }

    #[test]
    fn host_patterns() {
        assert_eq!(split_port("web:22"), ("web", Some("22".to_owned())));
        assert_eq!(split_port("web[1:3]"), ("web[1:3]", None));
        assert_eq!(
            split_port("web[1:3]:2222"),
            ("web[1:3]", Some("2222".to_owned()))
        );
        assert_eq!(split_port("2001:db8::1"), ("2001:db8::1", None));
        assert_eq!(
            split_port("[2001:db8::1]:22"),
            ("2001:db8::1", Some("22".to_owned()))
        );
        assert_eq!(
            expand_ranges("n[08:10].x").unwrap(),
            ["n08.x", "n09.x", "n10.x"]
        );
        assert_eq!(expand_ranges("n[1:7:3]").unwrap(), ["n1", "n4", "n7"]);
        assert_eq!(
            expand_ranges("r[a:b]-[1:2]").unwrap(),
            ["ra-1", "ra-2", "rb-1", "rb-2"]
        );
        assert!(expand_ranges("n[3:1]").is_err());
        assert!(expand_ranges("n[1:2").is_err());
        assert!(expand_ranges("n[a:10]").is_err());
        assert!(expand_ranges("n[1:3:0]").is_err());
        assert!(expand_ranges("n[1:5000]-[1:5000]").is_err());
    }

    #[test]
    fn format_detection() {
        assert!(looks_like_ini("[api]\nh1\n"));
        assert!(looks_like_ini("# c\nh1 ansible_host=1.2.3.4\n"));
        assert!(looks_like_ini("h1\n"));
        assert!(!looks_like_ini("---\nall:\n"));
        assert!(!looks_like_ini("all:\n  hosts:\n"));
        assert!(!looks_like_ini("{all: {hosts: {h: null}}}\n"));
        assert!(!looks_like_ini("- a\n"));
        assert!(!looks_like_ini(""));
    }
}
