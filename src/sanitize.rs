//! Host-originated text made safe to show: container logs, `/health` answers, Docker's and
//! ssh's messages, audit records, lock holders, alert messages.
//!
//! A droplet is not trusted input. A log line holding `ESC]52;c;…BEL` writes the operator's
//! clipboard, `ESC]0;…BEL` retitles the terminal, `ESC[2J` wipes it, a carriage return hides
//! what came before it on the line, and Unicode bidi overrides make text read differently from
//! what it is. So every control character is shown visibly (`\x1b`, `\r`, `\u{202e}`) and never
//! emitted. The escapes use only printable ASCII, so sanitizing twice changes nothing more.
//!
//! The public API, used by the CLI, the console and `deckhand logs`:
//! - [`for_terminal`]: multi-line text (keeps `\n` and `\t`), e.g. a log tail in an error;
//! - [`for_terminal_line`]: one line or table cell (newlines and tabs shown as `\n`, `\t`);
//! - [`host_text`]: [`crate::redact::redact_text`] then [`for_terminal`], the one call for a
//!   host string that goes anywhere an operator reads;
//! - [`for_slack`]: a webhook message: redacted, sanitized, and escaped the way Slack wants
//!   (`&`, `<`, `>`), so a host string cannot mention `<!channel>` or disguise a link.

use std::borrow::Cow;
use std::fmt::Write;

/// Must this character be escaped? C0 controls and DEL, C1 controls (`U+009B` is a one-character
/// CSI on terminals that honour 8-bit controls), the bidi embeddings, overrides and isolates,
/// and the zero-width characters.
fn is_dangerous(c: char, keep_newlines: bool) -> bool {
    match c {
        '\n' | '\t' => !keep_newlines,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Zero-width characters hide text; the rest reorder it.
        '\u{200b}'..='\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}' => true,
        _ => false,
    }
}

fn escape(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

fn sanitize(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let Some(first) = text.find(|c| is_dangerous(c, keep_newlines)) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if is_dangerous(c, keep_newlines) {
            escape(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Multi-line host text for a terminal: every control character but `\n` and `\t` is shown
/// visibly instead of being emitted.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    sanitize(text, true)
}

/// One line (a table cell, a status word, a lock holder): newlines and tabs are escaped too, so
/// a host string cannot forge extra rows.
pub fn for_terminal_line(text: &str) -> Cow<'_, str> {
    sanitize(text, false)
}

/// Is this text free of anything [`for_terminal`] would escape?
pub fn is_terminal_safe(text: &str) -> bool {
    !text.chars().any(|c| is_dangerous(c, true))
}

/// A host string on its way to anything an operator reads: secrets masked, then controls
/// escaped.
pub fn host_text(text: &str) -> String {
    for_terminal(&crate::redact::redact_text(text)).into_owned()
}

/// Every string inside a value read from the host (an audit record, a lock file, an alert book)
/// passed through [`for_terminal`]. The value goes through JSON and back, so it works for any
/// serde type; a value that does not survive the trip is returned as it was.
pub fn strings_in<T: serde::Serialize + serde::de::DeserializeOwned>(value: T) -> T {
    let Ok(mut v) = serde_json::to_value(&value) else {
        return value;
    };
    if !clean_json(&mut v) {
        return value;
    }
    serde_json::from_value(v).unwrap_or(value)
}

/// Sanitizes every string in place; says whether anything changed.
fn clean_json(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => match for_terminal(s) {
            Cow::Borrowed(_) => false,
            Cow::Owned(o) => {
                *s = o;
                true
            }
        },
        Value::Array(items) => items.iter_mut().fold(false, |acc, i| clean_json(i) | acc),
        Value::Object(map) => {
            let mut changed = false;
            let dirty: Vec<String> = map
                .keys()
                .filter(|k| !is_terminal_safe(k))
                .cloned()
                .collect();
            for k in dirty {
                if let Some(val) = map.remove(&k) {
                    map.insert(for_terminal(&k).into_owned(), val);
                    changed = true;
                }
            }
            map.values_mut().fold(changed, |acc, i| clean_json(i) | acc)
        }
        _ => false,
    }
}

/// A webhook message for Slack (and compatible receivers): redacted, sanitized, and with `&`,
/// `<` and `>` escaped as Slack's message formatting asks. `<!channel>`, `<!here>`, `<@U123>`
/// and `<https://evil|innocent text>` from a host arrive as plain text.
pub fn for_slack(text: &str) -> String {
    let clean = host_text(text);
    let mut out = String::with_capacity(clean.len());
    for c in clean.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_are_shown_not_emitted() {
        let hostile = "a\x1b]0;owned\x07b\x1b[2Jc\x1b]52;c;aGk=\x07d\re\u{9b}31m\u{202e}x\u{7f}";
        let s = for_terminal(hostile);
        assert_eq!(
            s,
            "a\\x1b]0;owned\\x07b\\x1b[2Jc\\x1b]52;c;aGk=\\x07d\\re\\u{9b}31m\\u{202e}x\\x7f"
        );
        assert!(is_terminal_safe(&s));
        assert!(!s.bytes().any(|b| b == 0x1b || b == 0x07));
    }

    #[test]
    fn newlines_are_kept_in_text_and_escaped_in_lines() {
        assert_eq!(for_terminal("a\n\tb"), "a\n\tb");
        assert_eq!(for_terminal_line("a\n\tb"), "a\\n\\tb");
        assert!(matches!(for_terminal("plain ü ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn sanitizing_twice_changes_nothing_more() {
        let once = for_terminal_line("x\x1b[1m\ny").into_owned();
        assert_eq!(for_terminal_line(&once), once);
    }

    #[test]
    fn strings_inside_records_are_sanitized() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct R {
            actor: String,
            error: Option<String>,
            n: u32,
        }
        let r = strings_in(R {
            actor: "eve\x1b]0;owned\x07".into(),
            error: Some("line1\nline2\x1b[2J".into()),
            n: 3,
        });
        assert_eq!(r.actor, "eve\\x1b]0;owned\\x07");
        assert_eq!(r.error.as_deref(), Some("line1\nline2\\x1b[2J"));
        assert_eq!(r.n, 3);
    }

    #[test]
    fn slack_messages_cannot_mention_or_disguise_links() {
        let s = for_slack("<!channel> see <https://evil.example|the runbook> & \x1b[2J");
        assert_eq!(
            s,
            "&lt;!channel&gt; see &lt;https://evil.example|the runbook&gt; &amp; \\x1b[2J"
        );
    }
}
