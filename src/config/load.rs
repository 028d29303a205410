//! Finding and parsing `deckhand.toml`; the checks live in `validate`.

use std::path::{Path, PathBuf};

use super::ConfigError;
use super::model::Config;
use super::raw::RawConfig;
use super::validate::Validator;

/// Where the config is looked for when `--config` is not given, in order.
pub fn discover(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let mut candidates = vec![PathBuf::from("deckhand.toml")];
    if let Some(dir) = xdg_config_home() {
        candidates.push(dir.join("deckhand").join("config.toml"));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or(ConfigError::NotFound {
            looked_at: candidates,
        })
}

fn xdg_config_home() -> Option<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME") {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")),
    }
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&text, path)
}

/// Validates config text; `path` is used for messages and to resolve relative paths.
pub fn load_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    Validator { text, path }.config(raw)
}

pub(super) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::HostTarget;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        load_str(text, Path::new("deckhand.toml"))
    }

    const GOOD: &str = r#"
[defaults]
user = "deploy"
identity_file = "/keys/id"

[[service]]
name = "api"
image = "registry.example.com/acme/api"
env = { NODE_ENV = "production" }

[env.dev]
hosts = ["local"]

[env.staging]
protected = true
hosts = ["deploy@203.0.113.10", "staging-api-2"]

[[env.lab.host]]
name = "lab-1"
ssh = "root@127.0.0.1"
port = 2222
known_hosts = "/tmp/kh"
"#;

    #[test]
    fn ssh_persist_is_read_per_environment_over_the_global_one() {
        let text = format!(
            "{GOOD}\n[ssh]\npersist = \"10m\"\n\n[env.prod]\nhosts = [\"deploy@203.0.113.20\"]\nssh = {{ persist = \"off\" }}\n\n[env.ci]\nhosts = [\"ci-1\"]\nssh = {{ persist = \"90s\" }}\n"
        );
        let c = parse(&text).expect("valid");
        assert_eq!(
            c.env("dev").expect("dev").ssh_persist,
            Some(Duration::from_secs(600))
        );
        assert_eq!(c.env("prod").expect("prod").ssh_persist, None);
        assert_eq!(
            c.env("ci").expect("ci").ssh_persist,
            Some(Duration::from_secs(90))
        );
        // Not set anywhere: nothing is kept.
        assert_eq!(
            parse(GOOD)
                .expect("valid")
                .env("dev")
                .expect("dev")
                .ssh_persist,
            None
        );
    }

    #[test]
    fn a_bad_ssh_persist_names_the_file_line_and_field() {
        for (value, why) in [("forever", "not a duration"), ("48h", "outside 1s to 24h")] {
            let text = format!("{GOOD}\n[ssh]\npersist = \"{value}\"\n");
            let e = parse(&text).expect_err(value).to_string();
            let line = text
                .lines()
                .position(|l| l.starts_with("persist"))
                .expect("line")
                + 1;
            assert!(e.contains(&format!("deckhand.toml:{line}")), "{e}");
            assert!(e.contains("ssh.persist"), "{e}");
            assert!(e.contains(why), "{e}");
        }
        let text =
            format!("{GOOD}\n[env.ci]\nhosts = [\"ci-1\"]\nssh = {{ persist = \"soon\" }}\n");
        let e = parse(&text).expect_err("bad").to_string();
        assert!(e.contains("env.ci.ssh.persist"), "{e}");
        let text = format!("{GOOD}\n[ssh]\nkeep = \"1m\"\n");
        let e = parse(&text).expect_err("unknown key").to_string();
        assert!(e.contains("keep"), "{e}");
    }

    #[test]
    fn the_design_example_loads_with_defaults() {
        let c = parse(GOOD).expect("valid");
        let api = c.service("api").expect("api");
        assert_eq!(api.app_port, 3000);
        assert_eq!(api.public_port, 3001);
        assert_eq!(api.keep_images, 5);
        assert_eq!(api.health_timeout, Duration::from_secs(60));
        assert_eq!(api.env_file, "/etc/deckhand/api.env");
        assert_eq!(c.default_env(), Some("dev"));
        let staging = c.env("staging").expect("staging");
        assert!(staging.protected);
        assert_eq!(staging.hosts.len(), 2);
        match &staging.hosts[1].target {
            HostTarget::Ssh {
                destination,
                user,
                identity_file,
                ..
            } => {
                assert_eq!(destination, "staging-api-2");
                assert_eq!(user.as_deref(), Some("deploy"));
                assert_eq!(identity_file.as_deref(), Some(Path::new("/keys/id")));
            }
            HostTarget::Local => panic!("expected ssh"),
        }
        let lab = &c.env("lab").expect("lab").hosts[0];
        assert_eq!(lab.name, "lab-1");
        assert!(matches!(
            &lab.target,
            HostTarget::Ssh {
                port: Some(2222),
                ..
            }
        ));
        assert_eq!(
            c.env("dev").expect("dev").hosts[0].target,
            HostTarget::Local
        );
    }

    #[test]
    fn errors_name_file_line_field_and_fix() {
        let text = GOOD.replace("name = \"api\"\n", "name = \"api\"\napp_port = 0\n");
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("deckhand.toml:8: `service.api.app_port`"),
            "{e}"
        );
        assert!(e.contains("Fix: use a number from 1 to 65535"), "{e}");
    }

    #[test]
    fn typos_are_syntax_errors_with_a_position() {
        let text = GOOD.replace("name = \"api\"\n", "name = \"api\"\nhelth_path = \"/h\"\n");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.starts_with("deckhand.toml:8:"), "{e}");
        assert!(e.contains("helth_path"), "{e}");
    }

    #[test]
    fn secrets_in_the_file_are_refused() {
        let text = GOOD.replace("NODE_ENV = \"production\"", "DB_PASSWORD = \"hunter2\"");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("looks like a secret"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let text = GOOD.replace("NODE_ENV = \"production\"", "DB = \"postgres://a:b@c/d\"");
        assert!(
            parse(&text)
                .unwrap_err()
                .to_string()
                .contains("looks like a secret")
        );
    }

    #[test]
    fn an_image_with_a_tag_is_refused_with_the_reason() {
        let text = GOOD.replace("acme/api\"", "acme/api:latest\"");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("without a tag"), "{e}");
    }

    #[test]
    fn option_like_destinations_are_refused() {
        let text = GOOD.replace("\"staging-api-2\"", "\"-oProxyCommand=evil\"");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("not an ssh destination"), "{e}");
    }

    #[test]
    fn bad_durations_and_duplicate_ports() {
        let text = GOOD.replace(
            "name = \"api\"\n",
            "name = \"api\"\ndrain = \"5 minutes\"\n",
        );
        assert!(parse(&text).unwrap_err().to_string().contains("drain"));
        let text = format!("{GOOD}\n[[service]]\nname = \"web\"\nimage = \"acme/web\"\n");
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("already the public port of service `api`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_env_lists_known_ones() {
        let c = parse(GOOD).expect("valid");
        let e = c.env("prod").unwrap_err().to_string();
        assert!(e.contains("known: dev, lab, staging"), "{e}");
    }

    #[test]
    fn hosts_can_come_from_the_ansible_inventory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("inv.yml"),
            "all:\n  children:\n    api:\n      hosts:\n        api-1:\n          ansible_host: 203.0.113.7\n          ansible_user: ops\n          deckhand_user: deploy\n",
        )
        .expect("write");
        let text = "[[service]]\nname=\"api\"\nimage=\"acme/api\"\n[env.staging]\nansible_inventory = \"inv.yml\"\nansible_group = \"api\"\n";
        let c = load_str(text, &dir.path().join("deckhand.toml")).expect("valid");
        let h = &c.env("staging").expect("env").hosts[0];
        assert_eq!(h.name, "api-1");
        match &h.target {
            HostTarget::Ssh {
                destination, user, ..
            } => {
                assert_eq!(destination, "203.0.113.7");
                assert_eq!(user.as_deref(), Some("deploy"));
            }
            HostTarget::Local => panic!("ssh expected"),
        }
        let bad = text.replace("ansible_group = \"api\"", "ansible_group = \"web\"");
        let e = load_str(&bad, &dir.path().join("deckhand.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ansible_inventory"), "{e}");
        assert!(e.contains("api"), "lists the groups that exist: {e}");
    }

    #[test]
    fn the_shipped_example_and_inventories_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let c = load(&root.join("assets/deckhand.example.toml")).expect("example config is valid");
        assert!(!c.services.is_empty());
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
