//! What a run did, per host, as a value: the CLI prints it as a table, the console draws it.

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::release::{HostOutcome, ReleaseError};
use crate::state::Color;
use crate::util::format_duration;

/// Why one host's part failed.
#[derive(Debug, Error)]
pub enum HostError {
    #[error(transparent)]
    Release(#[from] ReleaseError),

    /// The host no longer is what the operator confirmed (another operator acted meanwhile).
    #[error(
        "{host}: the host changed after the plan was confirmed (confirmed: {confirmed}; now: {now}); nothing was done here.\n  Fix: look again and confirm the new plan"
    )]
    Changed {
        host: String,
        confirmed: String,
        now: String,
    },
}

impl HostError {
    /// The watch after the switch saw a breach and switched back (issue 13).
    pub fn is_rolled_back_by_watch(&self) -> bool {
        matches!(self, HostError::Release(ReleaseError::RolledBack { .. }))
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            HostError::Release(e) => e.exit_code(),
            HostError::Changed { .. } => crate::exit::ACTION_FAILED,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAttempted {
    /// An earlier host failed: the run stops at the first failure.
    EarlierFailure,
    /// The operator cancelled (Ctrl-C, the console's abort) before this host began.
    Cancelled,
    /// The request was refused as a whole (read-only).
    Refused,
}

#[derive(Debug, Clone)]
pub enum HostResult {
    Done {
        summary: String,
        duration_ms: u64,
        /// The release engine's outcome (steps and their times), for deploys and rollbacks.
        outcome: Option<Box<HostOutcome>>,
    },
    Failed {
        error: Arc<HostError>,
    },
    /// Stopped by the operator during this host's steps, before the switch.
    Aborted {
        error: Arc<HostError>,
    },
    NotAttempted {
        why: NotAttempted,
    },
}

/// What a host serves after the run, read back from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServesNow {
    Release {
        color: Color,
        sha: Option<String>,
        /// `canary 25 % (green a000002)` or `watch interrupted (…)` (issue 13).
        settling: Option<String>,
    },
    Nothing,
    Unknown(String),
}

impl std::fmt::Display for ServesNow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServesNow::Release {
                color,
                sha,
                settling,
            } => {
                match sha {
                    Some(sha) => write!(f, "{sha} ({color})")?,
                    None => write!(f, "{color}")?,
                }
                match settling {
                    Some(n) => write!(f, ", {n}"),
                    None => Ok(()),
                }
            }
            ServesNow::Nothing => write!(f, "nothing"),
            ServesNow::Unknown(why) => write!(f, "unknown: {why}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HostReport {
    pub host: String,
    pub result: HostResult,
    /// Deploys and rollbacks: what the host serves now.
    pub serves_now: Option<ServesNow>,
}

impl HostReport {
    /// `a000002 (green) in 4.2s`, `FAILED`, `not attempted`: the THIS RUN column.
    pub fn result_text(&self) -> String {
        match &self.result {
            HostResult::Done {
                summary,
                duration_ms,
                outcome,
            } => match outcome {
                Some(o) => format!(
                    "{} ({}){} in {}",
                    o.plan.to_sha,
                    o.plan.to_color,
                    o.canary.map_or(String::new(), |p| format!(" canary {p} %")),
                    format_duration(Duration::from_millis(*duration_ms))
                ),
                None => summary.clone(),
            },
            HostResult::Failed { error } if error.is_rolled_back_by_watch() => {
                "ROLLED BACK by the watch (see above)".to_string()
            }
            HostResult::Failed { .. } => "FAILED (see above)".to_string(),
            HostResult::Aborted { .. } => "ABORTED before the switch".to_string(),
            HostResult::NotAttempted {
                why: NotAttempted::Cancelled,
            } => "not attempted (cancelled)".to_string(),
            HostResult::NotAttempted { .. } => "not attempted".to_string(),
        }
    }
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub title: String,
    pub equivalent: String,
    /// Why nothing ran at all.
    pub refused: Option<String>,
    pub hosts: Vec<HostReport>,
    /// Each host's remote operations over the whole run, from its connect to the read after
    /// it (`deckhand deploy|rollback --timings`).
    pub trips: Vec<(String, crate::transport::TripCount)>,
}

impl RunReport {
    pub fn succeeded(&self) -> bool {
        self.refused.is_none()
            && self
                .hosts
                .iter()
                .all(|h| matches!(h.result, HostResult::Done { .. }))
    }

    /// The error that stopped the run, if one did.
    pub fn failure(&self) -> Option<&HostError> {
        self.hosts.iter().find_map(|h| match &h.result {
            HostResult::Failed { error } | HostResult::Aborted { error } => Some(error.as_ref()),
            _ => None,
        })
    }

    /// The host whose stale lock stopped the run, and whose lock it is: a run that may be
    /// offered again taking the lock over.
    pub fn stale_lock(&self) -> Option<(&str, &str)> {
        self.hosts.iter().find_map(|h| match &h.result {
            HostResult::Failed { error } => match error.as_ref() {
                HostError::Release(ReleaseError::Locked {
                    takeover_possible: true,
                    holder,
                    ..
                }) => Some((h.host.as_str(), holder.as_str())),
                _ => None,
            },
            _ => None,
        })
    }

    /// The operator stopped the run between hosts.
    pub fn cancelled(&self) -> bool {
        self.hosts.iter().any(|h| {
            matches!(
                h.result,
                HostResult::NotAttempted {
                    why: NotAttempted::Cancelled
                }
            )
        })
    }

    pub fn exit_code(&self) -> i32 {
        if self.refused.is_some() {
            return crate::exit::USAGE;
        }
        if let Some(e) = self.failure() {
            return e.exit_code();
        }
        if self.cancelled() {
            return crate::exit::ACTION_FAILED;
        }
        crate::exit::OK
    }

    /// Hosts by result, for one-paragraph summaries.
    pub fn names(&self, pick: impl Fn(&HostResult) -> bool) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|h| pick(&h.result))
            .map(|h| h.host.as_str())
            .collect()
    }

    /// The outcome in a few lines: what was done, what failed and why, what was not attempted.
    pub fn summary(&self) -> String {
        if let Some(r) = &self.refused {
            return format!("refused: {r}");
        }
        let mut out = Vec::new();
        for h in &self.hosts {
            match &h.result {
                HostResult::Done { summary, .. } => out.push(summary.clone()),
                HostResult::Failed { error } | HostResult::Aborted { error } => {
                    out.push(error.to_string());
                }
                HostResult::NotAttempted { .. } => {}
            }
        }
        let cancelled = self.names(|r| {
            matches!(
                r,
                HostResult::NotAttempted {
                    why: NotAttempted::Cancelled
                }
            )
        });
        if !cancelled.is_empty() {
            out.push(format!(
                "aborted by the operator; not attempted (unchanged): {}",
                cancelled.join(", ")
            ));
        }
        let skipped = self.names(|r| {
            matches!(
                r,
                HostResult::NotAttempted {
                    why: NotAttempted::EarlierFailure
                }
            )
        });
        if !skipped.is_empty() {
            out.push(format!("not attempted (unchanged): {}", skipped.join(", ")));
        }
        out.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, result: HostResult) -> HostReport {
        HostReport {
            host: name.into(),
            result,
            serves_now: None,
        }
    }

    fn report(hosts: Vec<HostReport>) -> RunReport {
        RunReport {
            trips: Vec::new(),
            title: "t".into(),
            equivalent: "e".into(),
            refused: None,
            hosts,
        }
    }

    fn done() -> HostResult {
        HostResult::Done {
            summary: "h: done".into(),
            duration_ms: 1,
            outcome: None,
        }
    }

    #[test]
    fn the_exit_code_says_how_the_run_ended() {
        assert_eq!(report(vec![host("a", done())]).exit_code(), crate::exit::OK);
        let locked = HostResult::Failed {
            error: Arc::new(
                ReleaseError::Locked {
                    host: "b".into(),
                    service: "api".into(),
                    holder: "x".into(),
                    hint: String::new(),
                    takeover_possible: false,
                }
                .into(),
            ),
        };
        let r = report(vec![
            host("a", done()),
            host("b", locked),
            host(
                "c",
                HostResult::NotAttempted {
                    why: NotAttempted::EarlierFailure,
                },
            ),
        ]);
        assert_eq!(r.exit_code(), crate::exit::LOCKED);
        assert!(!r.succeeded());
        assert!(
            r.summary().ends_with("not attempted (unchanged): c"),
            "{}",
            r.summary()
        );
        let cancelled = report(vec![
            host("a", done()),
            host(
                "b",
                HostResult::NotAttempted {
                    why: NotAttempted::Cancelled,
                },
            ),
        ]);
        assert!(cancelled.cancelled());
        assert_eq!(cancelled.exit_code(), crate::exit::ACTION_FAILED);
        let mut refused = report(Vec::new());
        refused.refused = Some("--read-only is set".into());
        assert_eq!(refused.exit_code(), crate::exit::USAGE);
    }
}
