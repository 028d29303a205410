//! Making sure an image is on a host: pull with registry credentials and progress.

use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;

use super::{Event, EventSink, ReleaseError};
use crate::transport::Host;

/// Returns true when the image had to be pulled.
pub async fn ensure_image(
    host: &Host,
    image: &str,
    events: &EventSink,
) -> Result<bool, ReleaseError> {
    if host.docker.inspect_image(image).await.is_ok() {
        return Ok(false);
    }
    let (repo, tag) = split_image(image);
    let creds = credentials_for(registry_of(repo));
    let mut stream = host.docker.create_image(
        Some(CreateImageOptions {
            from_image: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            ..Default::default()
        }),
        None,
        creds,
    );
    let mut last_status = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(err) = info.error_detail.and_then(|d| d.message) {
                    return Err(pull_error(host, image, &err));
                }
                let status = info.status.unwrap_or_default();
                let layer = info.id.unwrap_or_default();
                let (current, total) = info
                    .progress_detail
                    .map_or((None, None), |p| (p.current, p.total));
                // Progress bars are for downloads; other status lines only when they change.
                if current.is_some() || status != last_status {
                    events.emit(Event::PullProgress {
                        host: host.name().to_string(),
                        layer,
                        status: status.clone(),
                        current,
                        total,
                    });
                }
                last_status = status;
            }
            Err(e) => return Err(pull_error(host, image, &crate::util::error_chain(&e))),
        }
    }
    host.docker
        .inspect_image(image)
        .await
        .map_err(|e| pull_error(host, image, &format!("not present after the pull: {e}")))?;
    Ok(true)
}

fn pull_error(host: &Host, image: &str, detail: &str) -> ReleaseError {
    let lower = detail.to_ascii_lowercase();
    let hint = if lower.contains("not found") || lower.contains("manifest unknown") {
        " (is the SHA pushed? CI tags images with the full or short SHA; check the registry)"
    } else if lower.contains("connection refused")
        || lower.contains("no such host")
        || lower.contains("timeout")
    {
        " (the registry is unreachable from the host)"
    } else if lower.contains("unauthorized") || lower.contains("denied") {
        " (set DECKHAND_REGISTRY_USERNAME/DECKHAND_REGISTRY_PASSWORD, with DECKHAND_REGISTRY naming this registry, or `docker login` on this machine)"
    } else {
        ""
    };
    ReleaseError::Pull {
        host: host.name().to_string(),
        image: image.to_string(),
        detail: format!("{}{hint}", crate::sanitize::host_text(detail.trim())),
    }
}

/// `repo:tag` → (`repo`, `tag`); the tag is after the last `:` that follows the last `/`.
pub fn split_image(image: &str) -> (&str, &str) {
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (&image[..slash + i], &image[slash + i + 1..]),
        None => (image, "latest"),
    }
}

/// The registry host of a repository (`docker.io` when the first part is not a host).
pub fn registry_of(repo: &str) -> &str {
    match repo.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

/// Registry credentials for Docker's pull API: only this registry's (see
/// [`super::credentials`]).
pub fn credentials_for(registry: &str) -> Option<DockerCredentials> {
    let c = super::credentials::for_registry(registry)?;
    let serveraddress = if super::credentials::is_docker_hub(registry) {
        super::credentials::DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    };
    Some(if c.identity_token {
        DockerCredentials {
            identitytoken: Some(c.secret),
            serveraddress: Some(serveraddress),
            ..Default::default()
        }
    } else {
        DockerCredentials {
            username: Some(c.username),
            password: Some(c.secret),
            serveraddress: Some(serveraddress),
            ..Default::default()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split() {
        assert_eq!(
            split_image("127.0.0.1:5000/a/b:abc1234"),
            ("127.0.0.1:5000/a/b", "abc1234")
        );
        assert_eq!(
            split_image("nginx:stable-alpine"),
            ("nginx", "stable-alpine")
        );
        assert_eq!(split_image("reg:5000/a/b"), ("reg:5000/a/b", "latest"));
        assert_eq!(registry_of("127.0.0.1:5000/a/b"), "127.0.0.1:5000");
        assert_eq!(
            registry_of("registry.example.com/acme/api"),
            "registry.example.com"
        );
        assert_eq!(registry_of("acme/api"), "docker.io");
    }
}
