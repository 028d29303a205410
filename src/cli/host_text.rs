//! The one place text that came from a host (log lines, error messages, labels) goes through
//! before this crate's new commands print it: a container must not be able to move the
//! cursor, retitle the terminal or hide text from an operator.
//!
//! Merge note: when the shared sanitizer (`src/sanitize.rs`) lands, [`clean`] becomes a call
//! to it; every caller in `logs`, `doctor`, `metrics` and `init` goes through here.

/// Control characters (C0 but tab, DEL, C1), and the Unicode controls that reorder or hide
/// text (bidi overrides and isolates, zero-width marks), shown as visible escapes: ESC becomes
/// `\x1b`, U+202E becomes `\u{202e}`. Everything else is kept.
pub(super) fn clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let n = u32::from(c);
        match c {
            '\t' => out.push(c),
            _ if n < 0x20 || (0x7f..=0x9f).contains(&n) => {
                out.push_str(&format!("\\x{n:02x}"));
            }
            '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}' => out.push_str(&format!("\\u{{{n:04x}}}")),
            _ => out.push(c),
        }
    }
    out
}

/// [`clean`] per line, for multi-line messages (an ssh error with its fix below it).
pub(super) fn clean_lines(text: &str) -> String {
    text.lines().map(clean).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::{clean, clean_lines};

    #[test]
    fn lines_stay_lines() {
        assert_eq!(clean_lines("a\x1b\n  b"), "a\\x1b\n  b");
    }

    #[test]
    fn controls_are_shown_never_emitted() {
        assert_eq!(clean("a\x1b[31mred\x1b[0m"), "a\\x1b[31mred\\x1b[0m");
        assert_eq!(clean("\x1b]0;owned\x07"), "\\x1b]0;owned\\x07");
        assert_eq!(clean("cr\rnl\n"), "cr\\x0dnl\\x0a");
        assert_eq!(clean("c1\u{9b}2J del\x7f"), "c1\\x9b2J del\\x7f");
        assert_eq!(clean("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(clean("tab\tstays, é stays"), "tab\tstays, é stays");
    }
}
