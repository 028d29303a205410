//! Registry credentials, each only for its own registry.
//!
//! Where they come from, first match wins:
//! 1. `DECKHAND_REGISTRY_USERNAME` / `DECKHAND_REGISTRY_PASSWORD`, for the registry named by
//!    `DECKHAND_REGISTRY` (a host, `host:port`, or `docker.io`). Without `DECKHAND_REGISTRY` they
//!    are for every registry except Docker Hub: a CI secret for the team's registry must not
//!    travel to Docker Hub when the proxy image is pulled.
//! 2. The operator's Docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`),
//!    as `docker login` leaves it: `credHelpers` for this registry, then `credsStore`, then
//!    `auths` (Docker Hub's key there is `https://index.docker.io/v1/`). A helper is the program
//!    `docker-credential-<name>` on `PATH`, asked with `get` and the server on stdin.
//!
//! Every secret found is registered with [`crate::redact`], so it is masked wherever it could
//! show up (errors, logs).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

pub const USERNAME_ENV: &str = "DECKHAND_REGISTRY_USERNAME";
pub const PASSWORD_ENV: &str = "DECKHAND_REGISTRY_PASSWORD";
pub const SCOPE_ENV: &str = "DECKHAND_REGISTRY";

/// Docker Hub's key in Docker's config and for its credential helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A credential helper gets this long (a desktop keychain may prompt; CI must not hang).
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    /// A password, or an identity (refresh) token when `identity_token` is set.
    pub secret: String,
    pub identity_token: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &crate::redact::MASK)
            .finish()
    }
}

/// Is this Docker Hub (any of its names)?
pub fn is_docker_hub(registry: &str) -> bool {
    let r = registry
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = r.split('/').next().unwrap_or(r);
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

/// Do two registry names mean the same registry? (`host[:port]`, Docker Hub by any name.)
pub fn same_registry(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s
            .trim()
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        s.split('/').next().unwrap_or(s).to_ascii_lowercase()
    };
    (is_docker_hub(a) && is_docker_hub(b)) || norm(a) == norm(b)
}

/// Credentials for `registry` from this process's environment and Docker config.
pub fn for_registry(registry: &str) -> Option<Credentials> {
    for_registry_with(registry, &|k| std::env::var(k).ok())
}

/// [`for_registry`] with the environment given (tests, and callers that carry their own).
pub fn for_registry_with(
    registry: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Credentials> {
    let found = from_env(registry, env).or_else(|| from_docker_config(registry, env))?;
    crate::redact::register_secret(&found.secret);
    Some(found)
}

fn from_env(registry: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<Credentials> {
    let (user, password) = (env(USERNAME_ENV)?, env(PASSWORD_ENV)?);
    let applies = match env(SCOPE_ENV).filter(|s| !s.trim().is_empty()) {
        Some(scope) => scope.split(',').any(|s| same_registry(s, registry)),
        None => !is_docker_hub(registry),
    };
    applies.then_some(Credentials {
        username: user,
        secret: password,
        identity_token: false,
    })
}

/// The keys `docker login` may have used for this registry in `auths`.
fn config_keys(registry: &str) -> Vec<String> {
    if is_docker_hub(registry) {
        return vec![
            DOCKER_HUB_KEY.to_string(),
            "index.docker.io".into(),
            "docker.io".into(),
            "https://index.docker.io/v1".into(),
            "registry-1.docker.io".into(),
        ];
    }
    vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ]
}

/// The server name a credential helper is asked about.
fn helper_server(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let dir = match env("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env("HOME")?).join(".docker"),
    };
    Some(dir.join("config.json"))
}

fn from_docker_config(registry: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<Credentials> {
    let text = std::fs::read_to_string(config_path(env)?).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let keys = config_keys(registry);
    let helper = v
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| keys.iter().any(|key| key == *k) || same_registry(k, registry))
                .and_then(|(_, name)| name.as_str())
        });
    if let Some(name) = helper {
        // A registry with its own helper uses only that helper, as Docker does.
        return run_helper(name, &helper_server(registry), env);
    }
    if let Some(store) = v.get("credsStore").and_then(|s| s.as_str())
        && let Some(c) = run_helper(store, &helper_server(registry), env)
    {
        return Some(c);
    }
    let auths = v.get("auths")?.as_object()?;
    let entry = keys.iter().find_map(|k| auths.get(k))?;
    if let Some(token) = entry.get("identitytoken").and_then(|t| t.as_str())
        && !token.is_empty()
    {
        return Some(Credentials {
            username: String::new(),
            secret: token.to_string(),
            identity_token: true,
        });
    }
    let auth = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some(Credentials {
        username: user.to_string(),
        secret: password.to_string(),
        identity_token: false,
    })
}

/// Runs `docker-credential-<name> get` (found on the given `PATH`) for `server`.
fn run_helper(
    name: &str,
    server: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Credentials> {
    // A helper name is a word, never a path.
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        tracing::warn!(
            helper = name,
            "ignoring a credential helper name that is not a word"
        );
        return None;
    }
    let program = format!("docker-credential-{name}");
    let path = env("PATH").unwrap_or_default();
    let Some(bin) = std::env::split_paths(&path)
        .map(|d| d.join(&program))
        .find(|p| p.is_file())
    else {
        tracing::warn!(helper = %program, "credential helper not found on PATH");
        return None;
    };
    let mut child = Command::new(&bin)
        .arg("get")
        .env("PATH", &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let deadline = Instant::now() + HELPER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(helper = %program, "credential helper did not answer in time");
                return None;
            }
        }
    };
    let mut out = String::new();
    child
        .stdout
        .take()?
        .take(64 * 1024)
        .read_to_string(&mut out)
        .ok()?;
    if !status.success() {
        // "credentials not found in native keychain": not logged in to this registry.
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let username = v.get("Username")?.as_str()?.to_string();
    let secret = v.get("Secret")?.as_str()?.to_string();
    Some(Credentials {
        identity_token: username == "<token>",
        username,
        secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn environment_credentials_stay_off_docker_hub_and_out_of_other_scopes() {
        let base = vec![
            (USERNAME_ENV, "ci".to_string()),
            (PASSWORD_ENV, "pw-env-1".to_string()),
            ("HOME", "/nonexistent".to_string()),
        ];
        let e = env(&base);
        assert!(for_registry_with("registry.example.com", &e).is_some());
        assert!(
            for_registry_with("docker.io", &e).is_none(),
            "not Docker Hub"
        );
        let mut scoped = base.clone();
        scoped.push((SCOPE_ENV, "registry.example.com".to_string()));
        let e = env(&scoped);
        assert!(for_registry_with("registry.example.com", &e).is_some());
        assert!(for_registry_with("ghcr.io", &e).is_none());
    }

    #[test]
    fn docker_hubs_key_helpers_and_stores_are_read() {
        let dir = tempfile::tempdir().expect("dir");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        let helper = bin.join("docker-credential-unitfake");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread s\ncase \"$s\" in\n  ghcr.io) echo '{\"Username\":\"gh\",\"Secret\":\"helper-secret-1\"}';;\n  https://index.docker.io/v1/) echo '{\"Username\":\"<token>\",\"Secret\":\"hub-token-1\"}';;\n  *) echo 'credentials not found' >&2; exit 1;;\nesac\n",
        )
        .expect("helper");
        std::process::Command::new("chmod")
            .args(["+x"])
            .arg(&helper)
            .status()
            .expect("chmod");
        let hub_auth = base64::engine::general_purpose::STANDARD.encode("hubuser:hub-pass-1");
        std::fs::write(
            dir.path().join("config.json"),
            format!(
                r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{hub_auth}"}}}}, "credHelpers": {{"ghcr.io": "unitfake"}}}}"#
            ),
        )
        .expect("config");
        let e = env(&[
            ("DOCKER_CONFIG", dir.path().display().to_string()),
            ("PATH", bin.display().to_string()),
        ]);
        let hub = for_registry_with("docker.io", &e).expect("hub from auths");
        assert_eq!(
            (hub.username.as_str(), hub.secret.as_str()),
            ("hubuser", "hub-pass-1")
        );
        let gh = for_registry_with("ghcr.io", &e).expect("from the helper");
        assert_eq!(
            (gh.username.as_str(), gh.secret.as_str()),
            ("gh", "helper-secret-1")
        );
        assert!(for_registry_with("quay.io", &e).is_none());

        // With a store, the store answers for Docker Hub (an identity token).
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {"https://index.docker.io/v1/": {}}, "credsStore": "unitfake"}"#,
        )
        .expect("config");
        let hub = for_registry_with("index.docker.io", &e).expect("hub from the store");
        assert!(hub.identity_token);
        assert_eq!(hub.secret, "hub-token-1");
        assert!(!format!("{hub:?}").contains("hub-token-1"));
    }
}
