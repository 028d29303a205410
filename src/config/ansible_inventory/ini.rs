//! The INI inventory format: `[group]`, `[group:children]`, `[group:vars]`, host lines.

use std::collections::{BTreeSet, HashMap};

use super::InventoryError;
use super::model::{ALL, Inventory, UNGROUPED, Var};
use super::patterns::{expand_host_pattern, with_port};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Hosts,
    Children,
    Vars,
}

pub(super) fn parse_ini(text: &str) -> Result<Inventory, InventoryError> {
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
