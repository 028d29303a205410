//! Redaction of secrets in anything deckhand shows or writes: env vars, URLs, free text.
//!
//! One place decides what looks secret, so the CLI, the console, the logs and the audit log agree.

use std::sync::LazyLock;

use regex::Regex;

pub const MASK: &str = "[redacted]";

const SECRET_WORDS: [&str; 9] = [
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
    "DSN",
];

/// Does a variable or label name look like it holds a secret?
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| upper.contains(w))
}

static URL_CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    // scheme://user:password@host  -> keep user, hide password
    Regex::new(r"(?P<pre>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)@")
        .expect("static regex")
});

static INLINE_ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?P<name>[A-Z0-9_]*(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?)[A-Z0-9_]*)(?P<sep>\s*[=:]\s*)(?P<val>[^\s,;&]+)",
    )
    .expect("static regex")
});

/// Redacts credentials inside URLs and `NAME=value` pairs whose name looks secret.
pub fn redact_text(text: &str) -> String {
    let step = URL_CREDENTIALS.replace_all(text, format!("${{pre}}{MASK}@").as_str());
    INLINE_ASSIGNMENT
        .replace_all(&step, format!("${{name}}${{sep}}{MASK}").as_str())
        .into_owned()
}

/// Redacts one `NAME=value` environment entry.
pub fn redact_env_entry(entry: &str) -> String {
    match entry.split_once('=') {
        Some((name, _)) if is_secret_name(name) => format!("{name}={MASK}"),
        Some((name, value)) => format!("{name}={}", redact_text(value)),
        None => entry.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_password() {
        let s = redact_text("connect postgres://app:s3cr3t@db:5432/app failed");
        assert_eq!(s, "connect postgres://app:[redacted]@db:5432/app failed");
        assert!(!s.contains("s3cr3t"));
    }

    #[test]
    fn secret_env_entries_are_masked() {
        assert_eq!(
            redact_env_entry("DB_PASSWORD=hunter2"),
            "DB_PASSWORD=[redacted]"
        );
        assert_eq!(redact_env_entry("API_KEY=abc"), "API_KEY=[redacted]");
        assert_eq!(
            redact_env_entry("NODE_ENV=production"),
            "NODE_ENV=production"
        );
        assert_eq!(
            redact_env_entry("DATABASE_URL=postgres://u:p@h/db"),
            "DATABASE_URL=postgres://u:[redacted]@h/db"
        );
    }

    #[test]
    fn inline_assignments_in_text_are_masked() {
        let s = redact_text("error: GITHUB_TOKEN=ghp_123 rejected");
        assert_eq!(s, "error: GITHUB_TOKEN=[redacted] rejected");
    }
}
