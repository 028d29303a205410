//! Redaction of secrets in anything deckhand shows or writes: env vars, URLs, free text.
//!
//! One place decides what looks secret, so the CLI, the console, the logs and the audit log agree.
//! Two ways: by name (`DB_PASSWORD`, `API_TOKEN`, `X_PWD`, credentials inside URLs) and by value:
//! every value this process learnt is secret (the service's env file on the host, the registry
//! password, the webhook URL) is masked wherever it turns up, whatever it is called there.

use std::sync::{LazyLock, RwLock};

use regex::Regex;

pub const MASK: &str = "[redacted]";

const SECRET_WORDS: [&str; 9] = [
    // PASS covers PASSWORD, PASSWD, PASSPHRASE and the short DB_PASS, SMTP_PASS.
    "PASS",
    "PWD",
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
        r"(?i)(?P<name>[A-Z0-9_]*(PASS|PWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?)[A-Z0-9_]*)(?P<sep>\s*[=:]\s*)(?P<val>[^\s,;&]+)",
    )
    .expect("static regex")
});

/// Values known to be secret in this process, longest first (so a value that contains another
/// is masked whole).
static KNOWN_SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Shorter values cannot be masked by value without masking ordinary words and numbers
/// everywhere; they are still masked by name.
pub const MIN_SECRET_LEN: usize = 4;

fn maskable(value: &str) -> bool {
    let v = value.trim();
    v.chars().count() >= MIN_SECRET_LEN
        && v != MASK
        && !matches!(
            v.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "none" | "production" | "development" | "staging"
        )
        // Ports, counts and sizes: masking every `3000` would make errors unreadable.
        && !(v.len() < 6 && v.chars().all(|c| c.is_ascii_digit()))
}

/// Remembers a secret value: from now on it is masked in everything [`redact_text`] sees (the
/// log file, errors, audit records, alerts, webhook messages, the inspect view).
pub fn register_secret(value: &str) {
    let v = value.trim();
    if !maskable(v) {
        return;
    }
    let Ok(mut known) = KNOWN_SECRETS.write() else {
        return;
    };
    if !known.iter().any(|k| k == v) {
        known.push(v.to_string());
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// Remembers every value of `NAME=value` entries (an env file: all of it is secret).
pub fn register_env_values<S: AsRef<str>>(entries: &[S]) {
    for e in entries {
        if let Some((_, v)) = e.as_ref().split_once('=') {
            register_secret(v);
        }
    }
}

/// Remembers a URL that is itself a secret (a webhook: whoever has it may post), as written and
/// as HTTP clients print it, with its path and query (the secret part) on their own.
pub fn register_secret_url(url: &str) {
    register_secret(url);
    if let Ok(u) = reqwest::Url::parse(url.trim()) {
        register_secret(u.as_str());
        let path = u.path();
        if path.len() > 1 {
            register_secret(path);
            register_secret(&path[1..]);
        }
        if let Some(q) = u.query() {
            register_secret(q);
        }
    }
}

fn mask_known(text: &str) -> std::borrow::Cow<'_, str> {
    let Ok(known) = KNOWN_SECRETS.read() else {
        return text.into();
    };
    let mut out = std::borrow::Cow::Borrowed(text);
    for k in known.iter() {
        if out.contains(k.as_str()) {
            out = out.replace(k.as_str(), MASK).into();
        }
    }
    out
}

/// Redacts known secret values, credentials inside URLs and `NAME=value` pairs whose name looks
/// secret.
pub fn redact_text(text: &str) -> String {
    let known = mask_known(text);
    let step = URL_CREDENTIALS.replace_all(&known, format!("${{pre}}{MASK}@").as_str());
    INLINE_ASSIGNMENT
        .replace_all(&step, format!("${{name}}${{sep}}{MASK}").as_str())
        .into_owned()
}

/// The label on an app container naming the variables that came from the host's env file (names
/// only), so any process showing the container (a console that never read the file) knows
/// which values to mask.
pub const LABEL_SECRET_ENV: &str = "deckhand.secret-env";

/// Redacts a JSON document from the host (`docker inspect` of a container): `Env` entries whose
/// name looks secret or that the container's `deckhand.secret-env` label names, keys whose
/// name looks secret, and every such value wherever else it appears in the document (a
/// command line, a label), plus everything [`redact_text`] masks in any string.
pub fn redact_json(v: &mut serde_json::Value) {
    let named: Vec<String> = v
        .pointer("/Config/Labels")
        .and_then(|l| l.get(LABEL_SECRET_ENV))
        .and_then(serde_json::Value::as_str)
        .map(|s| s.split(',').map(|n| n.trim().to_string()).collect())
        .unwrap_or_default();
    let mut values = Vec::new();
    collect_env_secrets(v, &named, &mut values);
    values.retain(|s| maskable(s));
    values.sort_by_key(|s| std::cmp::Reverse(s.len()));
    mask_json(v, &named, &values);
}

fn env_entry_is_secret(name: &str, named: &[String]) -> bool {
    is_secret_name(name) || named.iter().any(|n| n == name)
}

fn collect_env_secrets(v: &serde_json::Value, named: &[String], out: &mut Vec<String>) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                if k == "Env" {
                    for e in val.as_array().into_iter().flatten() {
                        if let Some((n, value)) = e.as_str().and_then(|s| s.split_once('='))
                            && env_entry_is_secret(n, named)
                        {
                            out.push(value.to_string());
                        }
                    }
                } else {
                    collect_env_secrets(val, named, out);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|i| collect_env_secrets(i, named, out)),
        _ => {}
    }
}

fn mask_json(v: &mut serde_json::Value, named: &[String], values: &[String]) {
    use serde_json::Value;
    let mask_str = |s: &str| {
        let mut t = s.to_string();
        for secret in values {
            if t.contains(secret.as_str()) {
                t = t.replace(secret.as_str(), MASK);
            }
        }
        redact_text(&t)
    };
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if k == "Env" {
                    for item in val.as_array_mut().into_iter().flatten() {
                        if let Value::String(s) = item {
                            *s = match s.split_once('=') {
                                Some((n, _)) if env_entry_is_secret(n, named) => {
                                    format!("{n}={MASK}")
                                }
                                _ => mask_str(&redact_env_entry(s)),
                            };
                        }
                    }
                } else if is_secret_name(k) && val.is_string() {
                    *val = Value::String(MASK.to_string());
                } else {
                    mask_json(val, named, values);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| mask_json(i, named, values)),
        Value::String(s) => *s = mask_str(s),
        _ => {}
    }
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
    fn short_password_names_are_secret_names() {
        for n in [
            "DB_PASS",
            "SMTP_PASS",
            "X_PWD",
            "MYSQL_ROOT_PASSWORD",
            "GPG_PASSPHRASE",
        ] {
            assert!(is_secret_name(n), "{n}");
            assert_eq!(
                redact_env_entry(&format!("{n}=v4lue")),
                format!("{n}={MASK}")
            );
        }
        assert_eq!(
            redact_text("login failed: SMTP_PASS=abc123 rejected"),
            "login failed: SMTP_PASS=[redacted] rejected"
        );
    }

    #[test]
    fn registered_values_are_masked_whatever_they_are_called() {
        register_env_values(&["OPAQUE=zq-unit-value-9931", "PORT=3000", "ON=true"]);
        register_secret_url("https://hooks.example.test/services/T0/B0/unitHookPath77");
        let s = redact_text(
            "conn zq-unit-value-9931 on 3000 true; for url (https://hooks.example.test/services/T0/B0/unitHookPath77)",
        );
        assert_eq!(s, "conn [redacted] on 3000 true; for url ([redacted])");
        assert!(!redact_text("path services/T0/B0/unitHookPath77").contains("unitHook"));
    }

    #[test]
    fn inspect_documents_mask_the_env_file_by_label_and_by_value() {
        let mut v = serde_json::json!({
            "Config": {
                "Env": ["DB_PASS=pw-one-xyz", "OPAQUE=opaque-two-xyz", "NODE_ENV=production"],
                "Labels": {"deckhand.secret-env": "DB_PASS,OPAQUE"},
                "Cmd": ["--password-file", "opaque-two-xyz"]
            },
            "HostConfig": {"ApiToken": "t"}
        });
        redact_json(&mut v);
        let text = v.to_string();
        assert!(
            !text.contains("pw-one-xyz") && !text.contains("opaque-two-xyz"),
            "{text}"
        );
        assert!(text.contains("NODE_ENV=production"), "{text}");
        assert!(text.contains("\"ApiToken\":\"[redacted]\""), "{text}");
    }

    #[test]
    fn inline_assignments_in_text_are_masked() {
        let s = redact_text("error: GITHUB_TOKEN=ghp_123 rejected");
        assert_eq!(s, "error: GITHUB_TOKEN=[redacted] rejected");
    }
}
