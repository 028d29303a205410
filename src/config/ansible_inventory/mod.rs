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

mod ini;
mod model;
mod patterns;
#[cfg(test)]
mod tests;
mod yaml;

use thiserror::Error;

use ini::parse_ini;
#[cfg(test)]
use patterns::{expand_ranges, split_port};
use yaml::{Parsed, parse_yaml};

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
