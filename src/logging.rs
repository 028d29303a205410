//! Tracing to a daily-rotated file, never to the terminal (the console owns it), with secrets
//! redacted in the writer itself so no call site can forget.

use std::io::Write;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LoggingError {
    #[error("cannot create the log directory {}: {source}", .dir.display())]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the log file in {}: {source}", .dir.display())]
    File {
        dir: PathBuf,
        #[source]
        source: tracing_appender::rolling::InitError,
    },
    #[error("`{level}` is not a log level (error, warn, info, debug, trace)")]
    Level {
        level: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
}

/// Where the log file goes: `$XDG_STATE_HOME/deckhand/`.
pub fn log_dir() -> PathBuf {
    let base = match std::env::var_os("XDG_STATE_HOME") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".local/state"))
            .unwrap_or_else(|| PathBuf::from("/tmp")),
    };
    base.join("deckhand")
}

/// Starts logging at `level`. Returns the guard that flushes on drop.
pub fn init(level: &str) -> Result<tracing_appender::non_blocking::WorkerGuard, LoggingError> {
    use tracing_subscriber::EnvFilter;
    let dir = log_dir();
    std::fs::create_dir_all(&dir).map_err(|source| LoggingError::Dir {
        dir: dir.clone(),
        source,
    })?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("deckhand")
        .filename_suffix("log")
        .max_log_files(7)
        .build(&dir)
        .map_err(|source| LoggingError::File {
            dir: dir.clone(),
            source,
        })?;
    let filter = EnvFilter::try_new(format!("deckhand={level},warn")).map_err(|source| {
        LoggingError::Level {
            level: level.to_string(),
            source,
        }
    })?;
    let (writer, guard) = tracing_appender::non_blocking(RedactingWriter(appender));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .init();
    Ok(guard)
}

/// Wraps the log file writer: every line is passed through [`crate::redact::redact_text`].
pub struct RedactingWriter<W>(pub W);

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0
            .write_all(crate::redact::redact_text(&text).as_bytes())?;
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
    fn the_log_writer_redacts() {
        let mut w = RedactingWriter(Vec::new());
        w.write_all(b"pull with DOCKER_PASSWORD=abc failed")
            .expect("write");
        let text = String::from_utf8_lossy(&w.0).into_owned();
        assert!(!text.contains("abc"), "{text}");
    }
}
