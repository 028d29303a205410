use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "deckhand",
    version,
    about = "Blue/green releases of Docker services on a few droplets: a console and a CLI",
    after_help = "Exit codes: 0 ok, 1 action failed (previous release still serves), 2 usage or config error, 3 locked, 4 host unreachable, 5 unhealthy."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Config file (default: ./deckhand.toml, then $XDG_CONFIG_HOME/deckhand/config.toml)
    #[arg(long, global = true, env = "DECKHAND_CONFIG")]
    pub config: Option<PathBuf>,
    /// Environment to act on (default: dev, or the first one in the file)
    #[arg(long, global = true, env = "DECKHAND_ENV")]
    pub env: Option<String>,
    /// Limit to one service
    #[arg(long, global = true)]
    pub service: Option<String>,
    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Refuse anything that changes a host
    #[arg(long, global = true)]
    pub read_only: bool,
    /// Log level of the log file (error, warn, info, debug, trace)
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// What every host of the environment runs: colors, live one, images, health
    Status,
    /// Deploy a git SHA or image tag, blue/green, host by host
    Deploy {
        /// Git SHA (7-40 hex) or image tag
        reference: String,
        /// Replace the container even if this SHA already serves (e.g. after rotating secrets)
        #[arg(long)]
        force: bool,
        /// Send only this share of requests (1-99 %) to the new release, watched against the
        /// stable one; it stays in canary until `deckhand promote` (or `rollback` to abort)
        #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(1..=99))]
        canary: Option<u8>,
        #[command(flatten)]
        action: ActionArgs,
    },
    /// Send all traffic to the release in canary and stop the old color
    Promote {
        #[command(flatten)]
        action: ActionArgs,
    },
    /// Roll back to the previous release (the stopped color), or to a retained SHA
    Rollback {
        /// A retained SHA or tag; default: the previous release
        reference: Option<String>,
        #[command(flatten)]
        action: ActionArgs,
    },
    /// Remove old images, keeping the most recent, those in use and protected tags
    Prune {
        /// How many recent images to keep (default: the service's keep_images)
        #[arg(long)]
        keep: Option<usize>,
        /// Only show what would be removed and the bytes reclaimed
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        action: ActionArgs,
    },
    /// Releases one can roll back to, and the audit log, per host
    History {
        /// How many audit records to show per host
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
    /// Evaluate the alert rules on every host (exit 5 when any fires)
    Alerts {
        /// Keep watching, every interval of the environment's alert settings
        #[arg(long)]
        watch: bool,
    },
    /// Show who holds the deploy lock of each service on each host
    Lock {
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
    /// Bring up a local demo service (both colors, a few releases) and show it
    Demo {
        /// Public port of the demo's proxy
        #[arg(long, default_value_t = 3001)]
        port: u16,
    },
    /// Clear a deploy lock (after confirmation), e.g. one left by a killed process
    Unlock {
        #[command(flatten)]
        action: ActionArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ActionArgs {
    /// Do not ask for confirmation (for CI)
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Only these hosts (repeatable)
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Health timeout of the new release (overrides the service's health_timeout)
    #[arg(long, value_parser = parse_duration_arg)]
    pub timeout: Option<std::time::Duration>,
    /// Wait this long for another operator's lock instead of failing at once
    #[arg(long, value_parser = parse_duration_arg, default_value = "0s")]
    pub lock_wait: std::time::Duration,
    /// Watch the new release this long after the switch and switch back on a breach (default:
    /// the service's `watch` for deploy, none for rollback and promote; 0s turns it off)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    pub watch: Option<std::time::Duration>,
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::util::parse_duration(s)
}
