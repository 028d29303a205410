//! The image registry's own view of a repository (Registry HTTP API v2): which tags exist, so a
//! release manager can pick a SHA that no host has pulled yet. Read from this machine, with the
//! same credentials as pulls (environment, then the Docker config); token auth as Docker Hub,
//! GHCR and DigitalOcean's registry do it.

use std::time::Duration;

use serde::Deserialize;

use super::pull::{credentials_for_registry, registry_of};

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
    let (registry, base, name) = endpoint(repo);
    let err = |detail: String| RegistryError::Request {
        registry: registry.clone(),
        detail,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| err(e.to_string()))?;
    let creds = credentials_for_registry(&registry);
    let url = format!("{base}/v2/{name}/tags/list?n=1000");
    let mut req = client.get(&url);
    if let Some((u, p)) = &creds {
        req = req.basic_auth(u, Some(p));
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
        && let Some(token) = bearer_token(&client, &challenge, creds.as_ref()).await
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
    let list: TagList = resp
        .json()
        .await
        .map_err(|e| err(format!("unexpected answer: {e}")))?;
    let mut tags = list.tags.unwrap_or_default();
    tags.sort();
    Ok(tags)
}

/// Follows a `Bearer realm="…",service="…",scope="…"` challenge.
async fn bearer_token(
    client: &reqwest::Client,
    challenge: &str,
    creds: Option<&(String, String)>,
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
    let mut req = client.get(url);
    if let Some((u, p)) = creds {
        req = req.basic_auth(u, Some(p));
    }
    let t: Token = req.send().await.ok()?.json().await.ok()?;
    t.token.or(t.access_token)
}

#[cfg(test)]
mod tests {
    use super::*;

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
