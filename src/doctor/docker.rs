//! The Docker half of `doctor`: API version, registry (from here and from the host), proxy
//! image.

use bollard::auth::DockerCredentials;

use super::{Check, CheckId};
use crate::config::Service;
use crate::release::pull::{credentials_for, registry_of, split_image};
use crate::release::registry::{RegistryError, list_tags};
use crate::transport::Host;

/// The oldest Docker API deckhand is tested with (Docker 20.10, Debian 12's docker.io).
const MIN_API: (u32, u32) = (1, 41);

pub async fn api_version(host: &Host) -> Check {
    match host.docker.version().await {
        Ok(v) => {
            let api = v.api_version.unwrap_or_default();
            let version = v.version.unwrap_or_default();
            let parsed = api
                .split_once('.')
                .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)));
            match parsed {
                Some(p) if p >= MIN_API => {
                    Check::pass(CheckId::DockerApi, format!("Docker {version}, API {api}"))
                }
                _ => Check::fail(
                    CheckId::DockerApi,
                    format!(
                        "Docker {version}, API {api}: older than API {}.{}",
                        MIN_API.0, MIN_API.1
                    ),
                    "upgrade Docker on the host to 20.10 or later",
                ),
            }
        }
        Err(e) => Check::fail(
            CheckId::DockerApi,
            crate::util::error_chain(&e),
            "check that dockerd runs on the host",
        ),
    }
}

pub async fn data_root(host: &Host) -> String {
    host.docker
        .info()
        .await
        .ok()
        .and_then(|i| i.docker_root_dir)
        .unwrap_or_else(|| "/var/lib/docker".to_string())
}

fn credentials(image: &str) -> Option<DockerCredentials> {
    credentials_for(registry_of(split_image(image).0))
}

/// The repository as this machine sees it (credentials, tags), then as the host's Docker sees
/// one of its tags (the host pulls, so it must reach the registry too).
pub async fn registry(host: &Host, s: &Service) -> Check {
    let id = CheckId::Registry;
    let registry = registry_of(&s.image).to_string();
    let tags = match list_tags(&s.image).await {
        Ok(t) => t,
        Err(e @ RegistryError::Denied { .. }) => {
            return Check::fail(
                id,
                format!("{}: {e}", s.name),
                format!(
                    "set DECKHAND_REGISTRY_USERNAME/DECKHAND_REGISTRY_PASSWORD, or `docker login {registry}` on this machine"
                ),
            );
        }
        Err(e @ RegistryError::NotFound { .. }) => {
            return Check::fail(
                id,
                format!("{}: {e}", s.name),
                format!(
                    "check `image` in the config, or push a first image to {}",
                    s.image
                ),
            );
        }
        Err(e) => {
            return Check::fail(
                id,
                format!("{}: {e}", s.name),
                format!(
                    "check that {registry} is reachable from this machine (DNS, proxy, firewall)"
                ),
            );
        }
    };
    let Some(tag) = tags.last() else {
        return Check::warn(
            id,
            format!("{}: {} exists but has no tags yet", s.name, s.image),
            "push an image (CI tags it with the git SHA) before the first deploy",
        );
    };
    let image = format!("{}:{tag}", s.image);
    match host
        .docker
        .inspect_registry_image(&image, credentials(&image))
        .await
    {
        Ok(_) => Check::pass(
            id,
            format!(
                "{}: {} has {} tag(s), visible with these credentials; the host reaches {registry}",
                s.name,
                s.image,
                tags.len()
            ),
        ),
        Err(e) => Check::fail(
            id,
            format!(
                "{}: this machine sees {} tag(s), but the host cannot read {image}: {}",
                s.name,
                tags.len(),
                crate::util::error_chain(&e)
            ),
            format!(
                "the host must reach {registry} (DNS, firewall, insecure-registries for plain HTTP)"
            ),
        ),
    }
}

pub async fn proxy_image(host: &Host, s: &Service) -> Check {
    let id = CheckId::ProxyImage;
    if host.docker.inspect_image(&s.proxy_image).await.is_ok() {
        return Check::pass(id, format!("{}: {} is on the host", s.name, s.proxy_image));
    }
    match host
        .docker
        .inspect_registry_image(&s.proxy_image, credentials(&s.proxy_image))
        .await
    {
        Ok(_) => Check::pass(
            id,
            format!(
                "{}: {} is not on the host yet, but pullable",
                s.name, s.proxy_image
            ),
        ),
        Err(e) => Check::fail(
            id,
            format!(
                "{}: {} is neither on the host nor pullable: {}",
                s.name,
                s.proxy_image,
                crate::util::error_chain(&e)
            ),
            "set proxy_image to an image the host can pull, or load it there (`docker load`)",
        ),
    }
}
