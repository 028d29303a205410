//! The host's audit log: append-only JSON lines in `<state_dir>/audit.jsonl`.
//!
//! Every deploy, rollback, prune, lock and unlock is recorded with who, what, from and to, the
//! outcome and any error (redacted). A record is written when an action starts and another when
//! it ends, so an action whose process was killed still shows up (as started, never finished).

use serde::{Deserialize, Serialize};

use super::ReleaseError;
use crate::transport::Host;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time: String,
    pub actor: String,
    pub env: String,
    pub host: String,
    pub service: String,
    pub action: String,
    pub from_sha: Option<String>,
    pub to_sha: Option<String>,
    /// started | success | failed | noop | aborted
    pub outcome: String,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl AuditRecord {
    pub fn now(actor: &str, env: &str, host: &str, service: &str, action: &str) -> Self {
        Self {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            actor: actor.to_string(),
            env: env.to_string(),
            host: host.to_string(),
            service: service.to_string(),
            action: action.to_string(),
            from_sha: None,
            to_sha: None,
            outcome: "started".into(),
            duration_ms: None,
            error: None,
            details: None,
        }
    }
}

const APPEND: &str = r#"umask 022; mkdir -p "$1" && cat >> "$2""#;

fn audit_path(host: &Host) -> (String, String) {
    let dir = host.spec.state_dir.clone();
    let path = format!("{dir}/audit.jsonl");
    (dir, path)
}

/// Appends one record (one `write` of one line, so concurrent writers never interleave).
pub async fn append(host: &Host, record: &AuditRecord) -> Result<(), ReleaseError> {
    let mut r = record.clone();
    r.error = r.error.map(|e| crate::redact::redact_text(&e));
    r.details = r.details.map(|e| crate::redact::redact_text(&e));
    let mut line = serde_json::to_vec(&r).map_err(|e| ReleaseError::Refused(e.to_string()))?;
    line.push(b'\n');
    let (dir, path) = audit_path(host);
    host.exec_ok(
        "sh",
        &["-c", APPEND, "deckhand-audit", &dir, &path],
        Some(&line),
    )
    .await?;
    Ok(())
}

/// What reading the log found: the records, and the lines that were not records.
#[derive(Debug, Default)]
pub struct AuditLog {
    pub records: Vec<AuditRecord>,
    pub malformed: Vec<(usize, String)>,
}

/// Reads the last `limit` lines of the host's audit log.
pub async fn read(host: &Host, limit: usize) -> Result<AuditLog, ReleaseError> {
    let (_, path) = audit_path(host);
    let n = limit.to_string();
    let out = host
        .exec(
            "sh",
            &[
                "-c",
                r#"[ -f "$1" ] && tail -n "$2" "$1" || true"#,
                "deckhand-audit",
                &path,
                &n,
            ],
            None,
        )
        .await?;
    Ok(parse(&out.stdout_text()))
}

/// Parses audit lines; a malformed line is reported and skipped, the rest is kept.
pub fn parse(text: &str) -> AuditLog {
    let mut log = AuditLog::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<AuditRecord>(line) {
            // Written by whoever can write the host's file: shown, never emitted raw.
            Ok(r) => log.records.push(crate::sanitize::strings_in(r)),
            Err(e) => log.malformed.push((i + 1, e.to_string())),
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_lines_are_skipped_and_reported() {
        let good = serde_json::to_string(&AuditRecord::now("a@b", "dev", "h", "api", "deploy"))
            .expect("json");
        let text = format!("{good}\n{{not json\n\n{good}\n\u{0}\u{1}garbage\n");
        let log = parse(&text);
        assert_eq!(log.records.len(), 2);
        assert_eq!(log.malformed.len(), 2);
        assert_eq!(log.malformed[0].0, 2);
    }
}
