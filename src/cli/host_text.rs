//! The one place text that came from a host (log lines, error messages, labels) goes through
//! before the `logs`, `doctor`, `metrics` and `init` commands print it: a container must not be
//! able to move the cursor, retitle the terminal or hide text from an operator. The rules are
//! the core's ([`crate::sanitize`]), the same as every other command's.

use crate::sanitize;

/// One line or cell: every control character (newlines and tabs included), C1 controls and the
/// Unicode controls that reorder or hide text, shown as visible escapes (ESC becomes `\x1b`,
/// U+202E becomes `\u{202e}`).
pub(super) fn clean(text: &str) -> String {
    sanitize::for_terminal_line(text).into_owned()
}

/// Multi-line messages (an ssh error with its fix below it): the same, newlines kept.
pub(super) fn clean_lines(text: &str) -> String {
    sanitize::for_terminal(text).into_owned()
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
        assert_eq!(clean("cr\rnl\n"), "cr\\rnl\\n");
        assert_eq!(clean("c1\u{9b}2J del\x7f"), "c1\\u{9b}2J del\\x7f");
        assert_eq!(clean("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(clean("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(clean("tab\tgoes, é stays"), "tab\\tgoes, é stays");
    }
}
