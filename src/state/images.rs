//! Image history of a service's repository: which tags exist, which are protected.

/// The tag part of `repo:tag` when `repo` is the given repository. Docker Hub's names are
/// compared the way Docker prints them: `docker.io/acme/api` and `index.docker.io/acme/api`
/// are listed as `acme/api`, and `docker.io/library/nginx` as `nginx`.
pub fn image_tag<'a>(repository: &str, repo_tag: &'a str) -> Option<&'a str> {
    let (repo, tag) = split_repo_tag(repo_tag)?;
    (normalize_repository(repo) == normalize_repository(repository)).then_some(tag)
}

/// `repo:tag` split at the tag's colon (the one after the last `/`, so a registry port is not
/// taken for a tag); `None` without a tag or for a digest reference.
fn split_repo_tag(repo_tag: &str) -> Option<(&str, &str)> {
    if repo_tag.contains('@') {
        return None;
    }
    let slash = repo_tag.rfind('/').map_or(0, |i| i + 1);
    let colon = repo_tag[slash..].rfind(':')? + slash;
    Some((&repo_tag[..colon], &repo_tag[colon + 1..]))
}

/// A repository name in Docker's short ("familiar") form: Docker Hub's registry prefixes and
/// the `library/` namespace of official images dropped.
pub fn normalize_repository(repo: &str) -> &str {
    let mut r = repo;
    for prefix in ["docker.io/", "index.docker.io/", "registry-1.docker.io/"] {
        if let Some(rest) = r.strip_prefix(prefix) {
            r = rest;
            break;
        }
    }
    // `library/x` is Docker Hub's official `x`.
    match r.strip_prefix("library/") {
        Some(rest) if !rest.contains('/') => rest,
        _ => r,
    }
}

/// Does `tag` match one of the protected patterns? Patterns may use `*` as a wildcard; the
/// pattern `v*` is read as semver tags (`v1.2.3`), not every tag that starts with v.
pub fn is_protected_tag(tag: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        if p == "v*" {
            is_semver_tag(tag)
        } else {
            glob_match(p, tag)
        }
    })
}

fn is_semver_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix('v') else {
        return false;
    };
    let core = rest.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    (1..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats() -> Vec<String> {
        vec![
            "latest".into(),
            "stable".into(),
            "v*".into(),
            "release-*".into(),
        ]
    }

    #[test]
    fn protected_tags() {
        let p = pats();
        assert!(is_protected_tag("latest", &p));
        assert!(is_protected_tag("stable", &p));
        assert!(is_protected_tag("v1.2.3", &p));
        assert!(is_protected_tag("v2", &p));
        assert!(is_protected_tag("release-2026", &p));
        assert!(!is_protected_tag("a1b2c3d", &p));
        assert!(!is_protected_tag("very-old", &p));
        assert!(!is_protected_tag("latest2", &p));
    }

    #[test]
    fn tags_of_a_repository() {
        assert_eq!(
            image_tag("reg:5000/acme/api", "reg:5000/acme/api:abc1234"),
            Some("abc1234")
        );
        assert_eq!(
            image_tag("reg:5000/acme/api", "reg:5000/acme/api2:abc"),
            None
        );
        assert_eq!(image_tag("reg:5000/acme/api", "reg:5000/acme/api"), None);
        assert_eq!(
            image_tag("reg:5000/acme/api", "reg:5000/acme/api@sha256:ab"),
            None
        );
    }

    #[test]
    fn docker_hub_names_are_normalised() {
        for repo in ["docker.io/acme/api", "index.docker.io/acme/api", "acme/api"] {
            assert_eq!(
                image_tag(repo, "acme/api:abc1234"),
                Some("abc1234"),
                "{repo}"
            );
            assert_eq!(
                image_tag(repo, "docker.io/acme/api:abc1234"),
                Some("abc1234")
            );
        }
        for repo in [
            "docker.io/library/nginx",
            "library/nginx",
            "nginx",
            "docker.io/nginx",
        ] {
            assert_eq!(image_tag(repo, "nginx:stable"), Some("stable"), "{repo}");
        }
        assert_eq!(image_tag("docker.io/acme/api", "other.io/acme/api:x"), None);
        assert_eq!(image_tag("docker.io/acme/api", "acme/api2:x"), None);
    }
}
