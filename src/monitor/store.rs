//! Alert state kept on the host (`<state_dir>/alerts.json`), so a cron job running
//! `deckhand alerts` every minute, the console and a second operator all see the same pending
//! and firing alerts: the droplet stays the source of truth.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::metrics::CpuCounters;
use super::rules::Alert;
use crate::transport::{Host, TransportError};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AlertBook {
    #[serde(default)]
    pub alerts: BTreeMap<String, Alert>,
    /// The last CPU counters and when they were read, for the next delta.
    #[serde(default)]
    pub cpu: Option<(CpuCounters, DateTime<Utc>)>,
    /// Consecutive failed health checks of each service's live color.
    #[serde(default)]
    pub health_failures: BTreeMap<String, u32>,
}

impl AlertBook {
    /// A book that does not parse is replaced, not fatal: alerts start over, which is safe.
    pub fn parse(text: &str) -> AlertBook {
        serde_json::from_str(text).unwrap_or_default()
    }
}

const WRITE: &str = r#"umask 022; mkdir -p "$1" && cat > "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2""#;

pub fn book_path(host: &Host) -> String {
    format!("{}/alerts.json", host.spec.state_dir)
}

/// Replaces the book atomically (write, then rename).
pub async fn write(host: &Host, book: &AlertBook) -> Result<(), TransportError> {
    let body = serde_json::to_vec(book).map_err(|e| TransportError::Other {
        host: host.name().to_string(),
        detail: e.to_string(),
    })?;
    host.exec_ok(
        "sh",
        &[
            "-c",
            WRITE,
            "deckhand-alerts",
            &host.spec.state_dir,
            &book_path(host),
        ],
        Some(&body),
    )
    .await?;
    Ok(())
}
