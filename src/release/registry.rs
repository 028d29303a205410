//! The image registry's own view of a repository (Registry HTTP API v2): which tags exist, so a
//! release manager can pick a SHA that no host has pulled yet. Read from this machine, with the
//! same credentials as pulls (environment, then the Docker config); token auth as Docker Hub,
//! GHCR and DigitalOcean's registry do it.

use std::time::Duration;

use serde::Deserialize;

use super::credentials::{self, Credentials};
use super::pull::registry_of;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry}: {detail}")]
    Request { registry: String, detail: String },
    #[error(
        "registry {registry}: access denied to {name} (HTTP {status}); set DECKHAND_REGISTRY_USERNAME/PASSWORD or `docker login {registry}`"
    )]
    Denied {
        registry: String,
        name: String,
        status: u16,
    },
    #[error("registry {registry}: {name} not found")]
    NotFound { registry: String, name: String },
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// Where the API of a repository's registry is, and the repository's name there.
pub fn endpoint(repo: &str) -> (String, String, String) {
    let registry = registry_of(repo).to_string();
    let name = match repo.split_once('/') {
        Some((first, rest)) if first == registry => rest.to_string(),
        _ => repo.to_string(),
    };
    let (api_host, name) = if registry == "docker.io" {
        let n = if name.contains('/') {
            name
        } else {
            format!("library/{name}")
        };
        ("registry-1.docker.io".to_string(), n)
    } else {
        (registry.clone(), name)
    };
    // Like Docker: plain HTTP only for registries on this machine's loopback.
    let host_only = api_host
        .rsplit_once(':')
        .map_or(api_host.as_str(), |(h, _)| h);
    let scheme = if matches!(host_only, "localhost" | "127.0.0.1" | "[::1]")
        || host_only.starts_with("127.")
    {
        "http"
    } else {
        "https"
    };
    (registry, format!("{scheme}://{api_host}"), name)
}

/// Lists the tags of a repository.
pub async fn list_tags(repo: &str) -> Result<Vec<String>, RegistryError> {
    list_tags_with(repo, &|k| std::env::var(k).ok()).await
}

/// The most of a tag list read (1000 tags are ~40 KB).
const MAX_TAG_LIST: usize = 1024 * 1024;

/// [`list_tags`] with the environment given (credentials, Docker config).
pub async fn list_tags_with(
    repo: &str,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> Result<Vec<String>, RegistryError> {
    let (registry, base, name) = endpoint(repo);
    let err = |detail: String| RegistryError::Request {
        registry: registry.clone(),
        detail,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| err(e.to_string()))?;
    let creds = credentials::for_registry_with(&registry, env).filter(|c| !c.identity_token);
    let url = format!("{base}/v2/{name}/tags/list?n=1000");
    let mut req = client.get(&url);
    if let Some(c) = &creds {
        req = req.basic_auth(&c.username, Some(&c.secret));
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| err(crate::util::error_chain(&e)))?;
    if resp.status().as_u16() == 401
        && let Some(challenge) = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
        && let Some(token) =
            bearer_token(&client, &base, &registry, &challenge, creds.as_ref()).await
    {
        resp = client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| err(crate::util::error_chain(&e)))?;
    }
    match resp.status().as_u16() {
        200 => {}
        401 | 403 => {
            return Err(RegistryError::Denied {
                registry,
                name,
                status: resp.status().as_u16(),
            });
        }
        404 => return Err(RegistryError::NotFound { registry, name }),
        s => return Err(err(format!("HTTP {s} listing the tags of {name}"))),
    }
    let (body, cut) = crate::state::health::read_capped(resp, MAX_TAG_LIST)
        .await
        .map_err(|e| err(crate::util::error_chain(&e)))?;
    if cut {
        return Err(err(format!(
            "the tag list of {name} is larger than {} KiB; not read",
            MAX_TAG_LIST / 1024
        )));
    }
    let list: TagList =
        serde_json::from_slice(&body).map_err(|e| err(format!("unexpected answer: {e}")))?;
    // A registry is a remote party too: only what Docker accepts as a tag is offered.
    let mut tags: Vec<String> = list
        .tags
        .unwrap_or_default()
        .into_iter()
        .filter(|t| is_valid_tag(t))
        .collect();
    tags.sort();
    Ok(tags)
}

/// Docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_tag(t: &str) -> bool {
    let mut chars = t.chars();
    t.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Follows a `Bearer realm="…",service="…",scope="…"` challenge. The registry names the realm,
/// so the password goes there only when the realm is the registry itself or, for Docker Hub,
/// Docker's own `auth.docker.io`; any other realm is asked for an anonymous token.
async fn bearer_token(
    client: &reqwest::Client,
    base: &str,
    registry: &str,
    challenge: &str,
    creds: Option<&Credentials>,
) -> Option<String> {
    let rest = challenge.strip_prefix("Bearer ")?;
    let mut realm = None;
    let mut query = Vec::new();
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        let v = v.trim_matches('"').to_string();
        match k {
            "realm" => realm = Some(v),
            "service" | "scope" => query.push((k.to_string(), v)),
            _ => {}
        }
    }
    let url = reqwest::Url::parse_with_params(&realm?, &query).ok()?;
    let origin = |u: &reqwest::Url| {
        (
            u.host_str().map(str::to_ascii_lowercase),
            u.port_or_known_default(),
        )
    };
    let trusted = reqwest::Url::parse(base).is_ok_and(|b| origin(&b) == origin(&url))
        || (credentials::is_docker_hub(registry)
            && url.scheme() == "https"
            && url.host_str() == Some("auth.docker.io"));
    let mut req = client.get(url.clone());
    match creds {
        Some(c) if trusted => req = req.basic_auth(&c.username, Some(&c.secret)),
        Some(_) => tracing::warn!(
            realm = %url.host_str().unwrap_or(""),
            registry,
            "token realm is on another host: asking it without the registry's credentials"
        ),
        None => {}
    }
    let t: Token = req.send().await.ok()?.json().await.ok()?;
    t.token.or(t.access_token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<String>>>;

    /// A real HTTP server on loopback: records each request's head, answers with `answer`.
    fn serve(answer: impl Fn(&str) -> String + Send + 'static) -> (u16, Seen) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let seen: Seen = Arc::default();
        let sink = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let mut r = BufReader::new(s);
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let reply = answer(&head);
                sink.lock().expect("lock").push(head);
                let _ = r.into_inner().write_all(reply.as_bytes());
            }
        });
        (port, seen)
    }

    fn reply(status: &str, extra: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
    }

    /// A registry whose token realm is `realm` (None: itself, at /token).
    fn registry(realm: Option<u16>) -> (u16, Seen) {
        let realm_port = Arc::new(Mutex::new(realm));
        let rp = realm_port.clone();
        let (port, seen) = serve(move |head| {
            if head.starts_with("GET /token") {
                return reply("200 OK", "", r#"{"token":"tok-1"}"#);
            }
            if head.contains("Bearer tok-1") {
                return reply("200 OK", "", "{\"tags\":[\"a000001\",\"x\\u001b[2J\"]}");
            }
            let realm = match *rp.lock().expect("lock") {
                Some(p) => format!("http://127.0.0.1:{p}/token"),
                None => String::new(),
            };
            reply(
                "401 Unauthorized",
                &format!(
                    "WWW-Authenticate: Bearer realm=\"{realm}\",service=\"reg\",scope=\"repository:acme/api:pull\"\r\n"
                ),
                "{}",
            )
        });
        if realm.is_none() {
            *realm_port.lock().expect("lock") = Some(port);
        }
        (port, seen)
    }

    fn env_for(registry: &str) -> impl Fn(&str) -> Option<String> + Sync {
        let registry = registry.to_string();
        move |k: &str| match k {
            "DECKHAND_REGISTRY_USERNAME" => Some("ci".into()),
            "DECKHAND_REGISTRY_PASSWORD" => Some("realm-pass-1".into()),
            "DECKHAND_REGISTRY" => Some(registry.clone()),
            "HOME" => Some("/nonexistent".into()),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_token_realm_on_another_host_gets_no_password() {
        let (realm_port, realm_seen) = serve(|_| reply("200 OK", "", r#"{"token":"tok-1"}"#));
        let (port, _) = registry(Some(realm_port));
        let reg = format!("127.0.0.1:{port}");
        let tags = list_tags_with(&format!("{reg}/acme/api"), &env_for(&reg))
            .await
            .expect("tags");
        assert_eq!(tags, ["a000001"], "a tag Docker would refuse is dropped");
        let heads = realm_seen.lock().expect("lock").join("\n");
        assert!(heads.contains("GET /token"), "{heads}");
        assert!(
            !heads.to_ascii_lowercase().contains("authorization"),
            "{heads}"
        );
    }

    #[tokio::test]
    async fn the_registrys_own_realm_gets_the_password() {
        let (port, seen) = registry(None);
        let reg = format!("127.0.0.1:{port}");
        list_tags_with(&format!("{reg}/acme/api"), &env_for(&reg))
            .await
            .expect("tags");
        let heads = seen.lock().expect("lock").join("\n");
        let token_req = heads
            .split("GET ")
            .find(|h| h.starts_with("/token"))
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(token_req.contains("authorization: basic"), "{heads}");
    }

    #[test]
    fn endpoints_follow_dockers_rules() {
        assert_eq!(
            endpoint("127.0.0.1:5000/acme/api"),
            (
                "127.0.0.1:5000".into(),
                "http://127.0.0.1:5000".into(),
                "acme/api".into()
            )
        );
        assert_eq!(
            endpoint("registry.digitalocean.com/acme/api"),
            (
                "registry.digitalocean.com".into(),
                "https://registry.digitalocean.com".into(),
                "acme/api".into()
            )
        );
        assert_eq!(
            endpoint("nginx"),
            (
                "docker.io".into(),
                "https://registry-1.docker.io".into(),
                "library/nginx".into()
            )
        );
    }
}
