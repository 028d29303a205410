//! `deckhand init`: a first, commented `deckhand.toml` from what already names the droplets (an
//! Ansible inventory, `terraform output -json`, or ssh hosts), checked with the loader before it
//! is written, and never written over an existing file.

use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::ConfigError;
use super::ansible_inventory::{InventoryError, InventoryHost, hosts_from_inventory};

#[derive(Debug, Error)]
pub enum InitError {
    #[error("{} already exists; deckhand init never overwrites a config.\n  Fix: move it away, or pass --config NEW_PATH", path.display())]
    Exists { path: PathBuf },

    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: {message}", path.display())]
    Terraform { path: PathBuf, message: String },

    #[error("{}: {source}", path.display())]
    Inventory {
        path: PathBuf,
        #[source]
        source: InventoryError,
    },

    #[error("the config deckhand init would write does not load (nothing was written): {source}")]
    Invalid {
        #[source]
        source: ConfigError,
    },

    #[error("{0}")]
    Usage(String),
}

/// Where the hosts come from.
#[derive(Debug, Clone)]
pub enum HostSource {
    /// The config refers to the inventory (one inventory for Ansible and deckhand).
    Ansible {
        /// As the config writes it: relative to the config's directory when inside it.
        reference: String,
        group: Option<String>,
        /// What the inventory holds now (written as a comment, for the reader).
        found: Vec<InventoryHost>,
    },
    Terraform {
        file: String,
        hosts: Vec<String>,
        protected: bool,
    },
    Named(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct InitPlan {
    pub env: String,
    pub protected: bool,
    pub service: String,
    pub image: String,
    pub proxy_image: Option<String>,
    pub app_port: u16,
    pub public_port: u16,
    pub source: HostSource,
}

/// `terraform output -json` → (environment output, `deckhand_hosts`, `deckhand_protected`).
/// Only these non-sensitive outputs are read; a sensitive one among them is refused.
pub fn terraform_hosts(
    text: &str,
    path: &Path,
) -> Result<(Option<String>, Vec<String>, bool), InitError> {
    let err = |message: String| InitError::Terraform {
        path: path.to_path_buf(),
        message,
    };
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        err(format!(
            "not `terraform output -json` (line {}): {e}",
            e.line()
        ))
    })?;
    let outputs = v
        .as_object()
        .ok_or_else(|| err("not a JSON object of Terraform outputs".into()))?;
    let value = |name: &str| -> Result<Option<&serde_json::Value>, InitError> {
        let Some(o) = outputs.get(name) else {
            return Ok(None);
        };
        if o.get("sensitive").and_then(serde_json::Value::as_bool) == Some(true) {
            return Err(err(format!(
                "output `{name}` is marked sensitive; refusing to copy it"
            )));
        }
        o.get("value").map(Some).ok_or_else(|| {
            err(format!(
                "output `{name}` has no `value`: use `terraform output -json`"
            ))
        })
    };
    let hosts = value("deckhand_hosts")?.ok_or_else(|| {
        let mut known: Vec<&str> = outputs.keys().map(String::as_str).collect();
        known.sort_unstable();
        err(format!(
            "no `deckhand_hosts` output (outputs: {}); the environments in infrastructure/terraform/environments define it",
            if known.is_empty() { "none".into() } else { known.join(", ") }
        ))
    })?;
    let hosts: Vec<String> = hosts
        .as_array()
        .filter(|a| !a.is_empty())
        .and_then(|a| a.iter().map(|h| h.as_str().map(str::to_string)).collect())
        .ok_or_else(|| {
            err("`deckhand_hosts` must be a non-empty list of \"user@ip\" strings".into())
        })?;
    let protected = value("deckhand_protected")?
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let env = value("environment")?
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    Ok((env, hosts, protected))
}

/// Reads an inventory now (to fail early, and to list its hosts in a comment) and says how the
/// config at `config_path` should refer to it.
pub fn ansible_source(
    inventory: &Path,
    group: Option<&str>,
    config_path: &Path,
) -> Result<HostSource, InitError> {
    let text = std::fs::read_to_string(inventory).map_err(|source| InitError::Read {
        path: inventory.to_path_buf(),
        source,
    })?;
    let found = hosts_from_inventory(&text, group).map_err(|source| InitError::Inventory {
        path: inventory.to_path_buf(),
        source,
    })?;
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let inv = abs(inventory);
    let dir = config_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| abs(Path::new(".")), abs);
    let reference = inv
        .strip_prefix(&dir)
        .map_or_else(|_| inv.display().to_string(), |r| r.display().to_string());
    Ok(HostSource::Ansible {
        reference,
        group: group.map(str::to_string),
        found,
    })
}

/// The service name when none is given: the image repository's last component.
pub fn service_name_from_image(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-');
    if name.is_empty() {
        "app".into()
    } else {
        name.chars().take(40).collect()
    }
}

fn quoted(s: &str) -> String {
    // TOML basic strings accept JSON's escapes.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

pub fn render(plan: &InitPlan, written_at: &str) -> String {
    let from = match &plan.source {
        HostSource::Ansible { reference, .. } => format!("the Ansible inventory {reference}"),
        HostSource::Terraform { file, .. } => format!("Terraform outputs ({file})"),
        HostSource::Named(_) => "hosts named on the command line".to_string(),
    };
    let mut t = format!(
        r#"# deckhand.toml: written by `deckhand init` at {written_at} from {from}.
# Check it before a first deploy: `deckhand doctor --env {env}`. Every key: docs/cli.md and
# assets/deckhand.example.toml.

[defaults]
# Used by every ssh host that does not set its own; your ~/.ssh/config applies as well.
# user = "deploy"
# identity_file = "~/.ssh/id_ed25519"
# known_hosts = "~/.ssh/known_hosts"
# connect_timeout = "10s"

[[service]]
name = {name}
image = {image}   # the repository; tags are the git SHAs you deploy
app_port = {app_port}            # the port inside the app container
public_port = {public_port}         # the host port the proxy publishes (the load balancer's target)
health_path = "/health"     # answers 200 with {{"status": "healthy"}} when ready
{proxy_image}
# keep_images = 5           # prune keeps this many recent images, plus those in use
# health_timeout = "60s"
# drain = "5s"
# protected_tags = ["latest", "stable", "v*"]
# env = {{ NODE_ENV = "production" }}   # clear variables only: secrets never go here
# env_file = "/etc/deckhand/{svc}.env"   # on the host, mode 0600: the app's secrets

[env.{env}]
"#,
        env = plan.env,
        name = quoted(&plan.service),
        svc = plan.service,
        image = quoted(&plan.image),
        proxy_image = match &plan.proxy_image {
            Some(p) => format!("proxy_image = {}", quoted(p)),
            None => "# proxy_image = \"nginx:stable-alpine\"".to_string(),
        },
        app_port = plan.app_port,
        public_port = plan.public_port,
    );
    if plan.protected {
        t.push_str("protected = true            # the console asks for the environment's name before an action\n");
    } else {
        t.push_str("# protected = true          # the console asks for the environment's name before an action\n");
    }
    match &plan.source {
        HostSource::Ansible {
            reference,
            group,
            found,
        } => {
            t.push_str("# The hosts come from the inventory Ansible uses, read at every run:\n");
            t.push_str(&format!("ansible_inventory = {}\n", quoted(reference)));
            match group {
                Some(g) => t.push_str(&format!("ansible_group = {}\n", quoted(g))),
                None => t.push_str(
                    "# ansible_group = \"api\"     # only this group (default: every host)\n",
                ),
            }
            t.push_str(
                "# It names these hosts now (deckhand_user / ansible_user is the ssh user):\n",
            );
            for h in found {
                t.push_str(&format!(
                    "#   {}  {}{}{}\n",
                    h.name,
                    h.address.as_deref().unwrap_or("(the name)"),
                    h.user
                        .as_deref()
                        .map(|u| format!("  user {u}"))
                        .unwrap_or_default(),
                    h.port.map(|p| format!("  port {p}")).unwrap_or_default(),
                ));
            }
        }
        HostSource::Terraform { hosts, file, .. } => {
            t.push_str(&format!(
                "# From `deckhand_hosts` in {file}; after a `terraform apply` that replaces droplets,\n# update this list (or generate an Ansible inventory and use ansible_inventory).\n"
            ));
            t.push_str(&hosts_line(hosts));
        }
        HostSource::Named(hosts) => {
            t.push_str("# ssh destinations or ~/.ssh/config aliases; \"local\" is this machine's Docker.\n");
            t.push_str(&hosts_line(hosts));
        }
    }
    t.push_str(
        r#"
# Alert thresholds of this environment (the defaults shown):
# [env.ENV.alerts]
# cpu_percent = 80
# cpu_for = "5m"
# memory_percent = 85
# memory_for = "5m"
# disk_percent = 90
# health_failures = 3
# interval = "15s"
"#
        .replace("ENV", &plan.env)
        .as_str(),
    );
    t
}

fn hosts_line(hosts: &[String]) -> String {
    let items: Vec<String> = hosts.iter().map(|h| quoted(h)).collect();
    format!("hosts = [{}]\n", items.join(", "))
}

/// Checks `text` with the loader as if it were at `path`, then creates the file; an existing
/// file is never replaced (the create itself refuses, so a race cannot clobber one either).
pub fn write_new(path: &Path, text: &str) -> Result<super::Config, InitError> {
    if path.exists() {
        return Err(InitError::Exists {
            path: path.to_path_buf(),
        });
    }
    let config = super::load_str(text, path).map_err(|source| InitError::Invalid { source })?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                InitError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                InitError::Write {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|source| InitError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(source: HostSource) -> InitPlan {
        InitPlan {
            env: "staging".into(),
            protected: true,
            service: "api".into(),
            image: "registry.example.com/acme/api".into(),
            proxy_image: None,
            app_port: 3000,
            public_port: 3001,
            source,
        }
    }

    #[test]
    fn the_shipped_terraform_output_becomes_a_config_that_loads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let file =
            root.join("infrastructure/terraform/scripts/testdata/terraform-output.staging.json");
        let text = std::fs::read_to_string(&file).expect("testdata");
        let (env, hosts, protected) = terraform_hosts(&text, &file).expect("outputs");
        assert_eq!(env.as_deref(), Some("staging"));
        assert!(protected);
        assert!(hosts.iter().all(|h| h.starts_with("deploy@")), "{hosts:?}");
        let mut p = plan(HostSource::Terraform {
            file: "out.json".into(),
            hosts: hosts.clone(),
            protected,
        });
        p.env = env.unwrap_or_default();
        let out = render(&p, "now");
        let cfg = crate::config::load_str(&out, Path::new("deckhand.toml")).expect("loads");
        let e = cfg.env("staging").expect("env");
        assert!(e.protected);
        assert_eq!(e.hosts.len(), hosts.len());
    }

    #[test]
    fn sensitive_or_missing_outputs_are_refused() {
        let p = Path::new("o.json");
        let e = terraform_hosts(
            r#"{"deckhand_hosts": {"sensitive": true, "value": ["deploy@1.2.3.4"]}}"#,
            p,
        )
        .unwrap_err();
        assert!(e.to_string().contains("sensitive"), "{e}");
        let e = terraform_hosts(r#"{"vpc_id": {"value": "x"}}"#, p).unwrap_err();
        assert!(e.to_string().contains("outputs: vpc_id"), "{e}");
        assert!(terraform_hosts("[1]", p).is_err());
    }

    #[test]
    fn service_names_come_from_the_repository() {
        assert_eq!(
            service_name_from_image("registry.example.com/acme/api"),
            "api"
        );
        assert_eq!(service_name_from_image("127.0.0.1:5000/a/My_App"), "my-app");
    }

    #[test]
    fn an_existing_file_is_never_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("deckhand.toml");
        std::fs::write(&path, "keep me").expect("write");
        let text = render(&plan(HostSource::Named(vec!["web-1".into()])), "now");
        let e = write_new(&path, &text).unwrap_err();
        assert!(matches!(e, InitError::Exists { .. }), "{e}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "keep me");
    }
}
