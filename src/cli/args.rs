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
    /// Keep each host's ssh master running for IDLE (default 10m) after this command, and ride
    /// one a previous command kept: repeated calls (a CI loop, `watch deckhand status`) skip
    /// the ssh handshake. `deckhand disconnect` stops them. Not used by the console.
    #[arg(
        long,
        global = true,
        env = "DECKHAND_KEEP_CONNECTION",
        value_name = "IDLE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "10m",
        value_parser = parse_duration_arg
    )]
    pub keep_connection: Option<std::time::Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// What every host of the environment runs: colors, live one, images, health
    Status {
        /// Also print, on stderr, each host's connect time and the round trips of its read
        /// (sequential, and the operations by kind)
        #[arg(long)]
        timings: bool,
    },
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
        /// With --watch: serve the metrics exposition at http://ADDR/metrics (e.g. 127.0.0.1:9717)
        #[arg(long, value_name = "ADDR", requires = "watch")]
        listen: Option<std::net::SocketAddr>,
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
        /// Remove it even if its holder still heartbeats (audited with both identities)
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        action: ActionArgs,
    },
    /// The service's logs on every host, merged in time order, prefixed by host and color
    Logs(LogsArgs),
    /// Check every host before a first deploy: ssh, Docker, state directory, disk, clock,
    /// registry, proxy image, env file (exit 4 unreachable, 5 a check failed)
    Doctor {
        /// Only these hosts (repeatable)
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
    /// Write a commented deckhand.toml (at --config, default ./deckhand.toml) from an Ansible
    /// inventory, Terraform outputs or ssh hosts; never overwrites
    Init(InitArgs),
    /// Print a shell completion script (bash, zsh, fish)
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print the man page (roff), or write one page per command into a directory
    Man {
        /// Write deckhand.1 and deckhand-COMMAND.1 here instead (e.g. /usr/local/share/man/man1)
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the Prometheus text exposition of status and alerts, once (for a textfile collector)
    Metrics,
    /// Stop the ssh masters that --keep-connection kept running
    Disconnect,
    /// Names from the config for shell completion (used by the completion scripts)
    #[command(name = "__complete", hide = true)]
    Complete {
        #[arg(value_enum)]
        what: CompleteWhat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompleteWhat {
    Env,
    Host,
    Service,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogColor {
    /// The color the proxy serves
    Live,
    Blue,
    Green,
    /// Blue and green
    Both,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Only these hosts (repeatable)
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Which color's container
    #[arg(long, value_enum, default_value_t = LogColor::Live)]
    pub color: LogColor,
    /// Only lines newer than this (e.g. 10m, 1h)
    #[arg(long, value_parser = parse_duration_arg)]
    pub since: Option<std::time::Duration>,
    /// The last N lines of each container (default 100; 0 with --follow: only new lines)
    #[arg(long)]
    pub tail: Option<usize>,
    /// Keep printing new lines until Ctrl-C
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only lines matching this regular expression
    #[arg(long, value_name = "REGEX")]
    pub grep: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Hosts from this Ansible inventory (YAML or INI); the config refers to it
    #[arg(long, value_name = "INVENTORY", conflicts_with_all = ["from_terraform", "hosts"])]
    pub from_ansible: Option<PathBuf>,
    /// With --from-ansible: only this group's hosts
    #[arg(long, requires = "from_ansible")]
    pub ansible_group: Option<String>,
    /// Hosts from `terraform output -json` saved to this file (`-`: stdin)
    #[arg(long, value_name = "OUTPUTS.json", conflicts_with = "hosts")]
    pub from_terraform: Option<PathBuf>,
    /// Image repository of the service (tags are git SHAs), e.g. registry.example.com/acme/api
    #[arg(long)]
    pub image: String,
    /// Host port the proxy publishes (the load balancer's target)
    #[arg(long, default_value_t = 3001)]
    pub public_port: u16,
    /// The proxy's image (default nginx:stable-alpine)
    #[arg(long)]
    pub proxy_image: Option<String>,
    /// Port inside the app container
    #[arg(long, default_value_t = 3000)]
    pub app_port: u16,
    /// SSH destinations or ~/.ssh/config aliases (`local`: this machine's Docker)
    pub hosts: Vec<String>,
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
    /// Take over a stale lock (no heartbeat, or its process is gone); audited with whose it was
    #[arg(long)]
    pub take_over_stale: bool,
    /// Also print, on stderr, each host's round trips over the whole run (connect, plan,
    /// steps, the read after it): sequential, and the operations by kind
    #[arg(long)]
    pub timings: bool,
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    crate::util::parse_duration(s)
}
