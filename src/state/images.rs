//! Image history of a service's repository: which tags exist, which are protected.

/// The tag part of `repo:tag` when `repo` is the given repository.
pub fn image_tag<'a>(repository: &str, repo_tag: &'a str) -> Option<&'a str> {
    repo_tag
        .strip_prefix(repository)
        .and_then(|rest| rest.strip_prefix(':'))
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
    }
}
