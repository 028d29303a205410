//! Plain-text tables and the redacting log writer.

use std::io::Write;

/// A left-aligned text table; the last column is not padded.
#[derive(Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(header: I) -> Self {
        Self {
            rows: vec![header.into_iter().map(Into::into).collect()],
        }
    }

    /// Cells are sanitized here, the one place every table passes: a host string cannot emit
    /// a terminal escape or forge a row.
    pub fn row<I: IntoIterator<Item = S>, S: Into<String>>(&mut self, cells: I) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| crate::sanitize::for_terminal_line(&c.into()).into_owned())
                .collect(),
        );
    }

    pub fn render(&self, indent: &str) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            out.push_str(indent);
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Wraps the log file writer: every line is passed through [`crate::redact::redact_text`] (by
/// name and by every secret value this process learnt) and [`crate::sanitize::for_terminal`]
/// (an operator reads the log with `tail -f`).
pub struct RedactingWriter<W>(pub W);

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0
            .write_all(crate::sanitize::host_text(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut t = Table::new(["A", "LONGER"]);
        t.row(["xyz", "1"]);
        assert_eq!(t.render(""), "A    LONGER\nxyz  1\n");
    }

    #[test]
    fn log_writer_redacts() {
        let mut w = RedactingWriter(Vec::new());
        w.write_all(b"pull with DOCKER_PASSWORD=abc failed")
            .expect("write");
        assert_eq!(
            String::from_utf8_lossy(&w.0),
            "pull with DOCKER_PASSWORD=[redacted] failed"
        );
    }
}
