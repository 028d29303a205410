//! The host's audit log: append-only JSON lines in `<state_dir>/audit.jsonl`.
//!
//! Every deploy, rollback, prune, lock and unlock is recorded with who, what, from and to, the
//! outcome and any error (redacted). A record is written when an action starts and another when
//! it ends, so an action whose process was killed still shows up (as started, never finished).

use serde::{Deserialize, Serialize};

use super::ReleaseError;
use crate::transport::Host;

/// How an action ended (or that it started). Unknown words from other versions read as
/// `Unknown` instead of failing the whole line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    Started,
    Success,
    Failed,
    Noop,
    Aborted,
    /// Not attempted: the host changed since the plan was confirmed, or a live lock.
    Refused,
    /// The watch after the switch saw a breach and switched back (issue 13).
    RolledBack,
    /// A canary passed its watch and keeps its share until `promote`.
    Canary,
    /// The watch could not finish: both colors run, the route is as the switch left it.
    WatchInterrupted,
    #[serde(other)]
    Unknown,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Noop => "noop",
            Self::Aborted => "aborted",
            Self::Refused => "refused",
            Self::RolledBack => "rolled_back",
            Self::Canary => "canary",
            Self::WatchInterrupted => "watch_interrupted",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for AuditOutcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl From<&str> for AuditOutcome {
    fn from(s: &str) -> Self {
        serde_json::from_value(serde_json::Value::String(s.to_string())).unwrap_or(Self::Unknown)
    }
}

impl From<AuditOutcome> for String {
    fn from(o: AuditOutcome) -> String {
        o.as_str().to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time: String,
    /// Who the client says it is (user@machine, the CI job): see `host_side` for who sshd saw.
    pub actor: String,
    pub env: String,
    pub host: String,
    pub service: String,
    pub action: String,
    pub from_sha: Option<String>,
    pub to_sha: Option<String>,
    pub outcome: AuditOutcome,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    #[serde(flatten)]
    pub extra: AuditExtra,
}

/// Fields beyond the basic record: lock actions, and what the host itself saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditExtra {
    /// The lock an unlock or take-over removed: whose it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<super::lock::LockInfo>,
    /// An unlock of a live lock (`--force`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    /// Written by the host, never by the client: `SSH_CONNECTION`'s client address and port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_client: Option<String>,
    /// Written by the host: the fingerprint of the key sshd authenticated (`ExposeAuthInfo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<String>,
    /// Written by the host: the Unix user the record was written as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_user: Option<String>,
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
            outcome: AuditOutcome::Started,
            duration_ms: None,
            error: None,
            details: None,
            extra: AuditExtra::default(),
        }
    }
}

/// The most a record may take on its line (before the host adds its identity, < 300 bytes):
/// a line that grows without bound (a huge error from a hostile host) would make the log
/// unreadable for the tools that tail it.
pub const MAX_RECORD_BYTES: usize = 8 * 1024;
const TRUNCATED: &str = "…[truncated]";

/// The record as one JSON line of at most [`MAX_RECORD_BYTES`] (with its newline): secrets
/// redacted, the longest free-text fields cut with a marker until it fits.
pub fn encode(record: &AuditRecord) -> Result<Vec<u8>, ReleaseError> {
    let mut r = record.clone();
    // Only the host states who it saw.
    r.extra.ssh_client = None;
    r.extra.ssh_key = None;
    r.extra.host_user = None;
    r.error = r.error.map(|e| crate::redact::redact_text(&e));
    r.details = r.details.map(|e| crate::redact::redact_text(&e));
    for _ in 0..8 {
        let mut line = serde_json::to_vec(&r).map_err(|e| ReleaseError::Refused(e.to_string()))?;
        if line.len() < MAX_RECORD_BYTES {
            line.push(b'\n');
            return Ok(line);
        }
        let excess = line.len() + 1 - MAX_RECORD_BYTES;
        // Cut the longest field; JSON escaping may make a cut worth less, hence the loop.
        let fields: [&mut String; 4] = [
            r.error.get_or_insert_with(String::new),
            r.details.get_or_insert_with(String::new),
            &mut r.actor,
            &mut r.env,
        ];
        if let Some(longest) = fields.into_iter().max_by_key(|f| f.len()) {
            let keep = longest.len().saturating_sub(excess + TRUNCATED.len() + 16);
            let mut cut = keep;
            while !longest.is_char_boundary(cut) {
                cut -= 1;
            }
            longest.truncate(cut);
            longest.push_str(TRUNCATED);
        }
        if r.error.as_deref() == Some("") {
            r.error = None;
        }
        if r.details.as_deref() == Some("") {
            r.details = None;
        }
    }
    Err(ReleaseError::Refused(
        "an audit record could not be made to fit its size bound".into(),
    ))
}

// A fixed script; values arrive as positional parameters. Under an exclusive flock on the log
// (concurrent deckhands of other services write the same file), it ends a line that a killed or
// disk-full writer cut off, then writes the record in one printf, prefixed with what the host
// itself knows about the writer: sshd's SSH_CONNECTION, the authenticated key's fingerprint
// (SSH_USER_AUTH, with ExposeAuthInfo), the Unix user. Values are checked against a narrow
// alphabet so nothing needs escaping. A reserve file keeps room for the record when the disk
// is full: it is given up for the record and taken back once there is space again. The log is
// private (0600), or group-readable (0640) when the state directory is a setgid group
// directory (the deploy group).
pub(super) const APPEND: &str = r#"umask 077; d="$1"; f="$2"; r="$d/.audit-reserve"
mkdir -p "$d" || exit 1
mode=0600; [ -g "$d" ] && mode=0640
rec=$(cat); body=${rec#\{}
q() { if [ -n "$1" ]; then printf '"%s"' "$1"; else printf null; fi; }
c=""; [ -n "${SSH_CONNECTION:-}" ] && c=$(printf '%s' "$SSH_CONNECTION" | cut -d' ' -f1,2)
case "$c" in *[!0-9A-Fa-f.:\ ]*) c=invalid;; esac
k=""
if [ -n "${SSH_USER_AUTH:-}" ] && [ -r "$SSH_USER_AUTH" ] && command -v ssh-keygen >/dev/null 2>&1; then
  k=$(sed -n 's/^publickey //p' "$SSH_USER_AUTH" | head -n 1 | ssh-keygen -lf - 2>/dev/null | cut -d' ' -f2)
fi
case "$k" in SHA256:*) ;; *) k="";; esac
case "$k" in *[!A-Za-z0-9+/=:]*) k=invalid;; esac
u=$(id -un 2>/dev/null); case "$u" in *[!A-Za-z0-9._-]*) u=invalid;; esac
pre="{\"ssh_client\":$(q "$c"),\"ssh_key\":$(q "$k"),\"host_user\":$(q "$u"),"
w() {
  exec 9>>"$f" || return 1
  if command -v flock >/dev/null 2>&1; then flock -w 20 -x 9 || return 1; fi
  if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then printf '\n' >&9 || return 1; fi
  printf '%s%s\n' "$pre" "$body" >&9
}
if ! w 2>/dev/null; then exec 9>&-; rm -f "$r"; w || exit 1; fi
chmod "$mode" "$f" 2>/dev/null
[ -f "$r" ] || { head -c 65536 /dev/zero > "$r.t" 2>/dev/null && mv -f "$r.t" "$r"; } || rm -f "$r.t"
exit 0"#;

pub(super) fn audit_path(host: &Host) -> (String, String) {
    let dir = host.spec.state_dir.clone();
    let path = format!("{dir}/audit.jsonl");
    (dir, path)
}

/// Appends one record under the log's lock (see the script above).
pub async fn append(host: &Host, record: &AuditRecord) -> Result<(), ReleaseError> {
    let line = encode(record)?;
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

    #[test]
    fn records_are_bounded_with_a_marker_and_stay_json() {
        let mut r = AuditRecord::now("a@b", "dev", "h", "api", "deploy");
        r.error = Some("é".repeat(20_000));
        r.details = Some("x\"\\".repeat(3_000));
        let line = encode(&r).expect("fits");
        assert!(line.len() <= MAX_RECORD_BYTES, "{}", line.len());
        assert_eq!(line.last(), Some(&b'\n'));
        let back: AuditRecord = serde_json::from_slice(&line).expect("still JSON");
        assert!(back.error.expect("kept").ends_with(TRUNCATED));
        assert_eq!(back.action, "deploy");
    }

    #[test]
    fn outcomes_are_typed_and_unknown_words_still_parse() {
        let mut r = AuditRecord::now("a@b", "dev", "h", "api", "deploy");
        r.outcome = AuditOutcome::Aborted;
        let text = serde_json::to_string(&r).expect("json");
        assert!(text.contains("\"outcome\":\"aborted\""), "{text}");
        let future = text.replace("aborted", "paused");
        let back: AuditRecord = serde_json::from_str(&future).expect("parses");
        assert_eq!(back.outcome, AuditOutcome::Unknown);
        assert!(AuditOutcome::from("failed") == "failed");
    }

    #[test]
    fn the_host_side_identity_is_read_but_never_written_by_the_client() {
        let mut r = AuditRecord::now("a@b", "dev", "h", "api", "deploy");
        r.extra.ssh_client = Some("6.6.6.6 1".into());
        let text = String::from_utf8(encode(&r).expect("line")).expect("utf8");
        assert!(!text.contains("ssh_client"), "{text}");
        let host_line = format!(
            "{{\"ssh_client\":\"127.0.0.1 4000\",\"ssh_key\":\"SHA256:abc\",\"host_user\":\"deploy\",{}",
            &text[1..]
        );
        let back: AuditRecord = serde_json::from_str(host_line.trim()).expect("parses");
        assert_eq!(back.extra.ssh_client.as_deref(), Some("127.0.0.1 4000"));
        assert_eq!(back.extra.ssh_key.as_deref(), Some("SHA256:abc"));
    }
}
