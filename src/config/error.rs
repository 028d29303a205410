use std::path::PathBuf;

use thiserror::Error;

/// What went wrong with a config file. Every variant names the file; validation errors name the
/// line, the field and what to do about it, because the reader is an operator, not a parser.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(
        "no config file found (looked at {}).\n  Fix: pass --config PATH, or copy assets/deckhand.example.toml to ./deckhand.toml",
        looked_at.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound { looked_at: Vec<PathBuf> },

    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },

    #[error("{}:{line}: `{field}`: {message}\n  Fix: {fix}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        field: String,
        message: String,
        fix: String,
    },

    #[error("{}: unknown environment `{name}`; known: {}", path.display(), known.join(", "))]
    UnknownEnv {
        path: PathBuf,
        name: String,
        known: Vec<String>,
    },

    #[error("{}: unknown service `{name}`; known: {}", path.display(), known.join(", "))]
    UnknownService {
        path: PathBuf,
        name: String,
        known: Vec<String>,
    },
}
