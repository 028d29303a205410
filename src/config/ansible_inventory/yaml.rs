//! The YAML inventory format: `all` / `children` / `hosts` / `vars` nesting.

use serde_yaml_ng::Value;

use super::InventoryError;
use super::model::{Inventory, Var, Vars};
use super::patterns::{expand_host_pattern, with_port};

pub(super) enum Parsed {
    Inventory(Inventory),
    Scalar,
}

pub(super) fn parse_yaml(text: &str) -> Result<Parsed, InventoryError> {
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
