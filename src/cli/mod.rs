//! The headless face: argument model, command dispatch, table and JSON output.

mod action;
mod alerts;
mod args;
mod canary;
mod demo;
mod history;
pub mod output;
mod status;

pub use args::{ActionArgs, Cli, Command, GlobalArgs, OutputFormat};

use std::path::PathBuf;

use color_eyre::eyre::{Result, WrapErr};

use crate::config::{self, Config, Environment, Service};
use crate::exit;

/// What every command needs: the loaded config and the chosen environment and services.
pub struct Context {
    pub config: Config,
    pub env: Environment,
    pub services: Vec<Service>,
    pub global: GlobalArgs,
}

impl Context {
    pub fn load(global: &GlobalArgs) -> Result<Context, config::ConfigError> {
        let path = config::discover(global.config.as_deref())?;
        let cfg = config::load(&path)?;
        let env_name = match &global.env {
            Some(e) => e.clone(),
            None => cfg.default_env().unwrap_or("dev").to_string(),
        };
        let env = cfg.env(&env_name)?.clone();
        let services = match &global.service {
            Some(s) => vec![cfg.service(s)?.clone()],
            None => cfg.services.clone(),
        };
        Ok(Context {
            config: cfg,
            env,
            services,
            global: global.clone(),
        })
    }
}

/// Runs a parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    let mut global = cli.global.clone();
    if let Some(Command::Demo { port }) = cli.command {
        // The demo writes its own config, then shows it like any other.
        global.config = Some(demo::run(port).await?);
        global.env = Some("dev".into());
        let ctx = Context::load(&global)?;
        if console_wanted() {
            return crate::tui::run(ctx).await;
        }
        return status::run(&ctx).await;
    }
    let ctx = match Context::load(&global) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(crate::exit::USAGE);
        }
    };
    let Some(command) = cli.command else {
        // `deckhand` alone: the console on a terminal, the status table otherwise.
        if console_wanted() {
            return crate::tui::run(ctx).await;
        }
        return status::run(&ctx).await;
    };
    match command {
        Command::Status => status::run(&ctx).await,
        Command::Deploy {
            reference,
            force,
            canary,
            action,
        } => action::deploy(&ctx, &reference, force, canary, &action).await,
        Command::Promote { action } => canary::promote(&ctx, &action).await,
        Command::Rollback { reference, action } => {
            action::rollback(&ctx, reference.as_deref(), &action).await
        }
        Command::Prune {
            keep,
            dry_run,
            action,
        } => action::prune(&ctx, keep, dry_run, &action).await,
        Command::History { limit, hosts } => history::history(&ctx, limit, &hosts).await,
        Command::Lock { hosts } => history::locks(&ctx, &hosts).await,
        Command::Alerts { watch } => alerts::run(&ctx, watch).await,
        Command::Unlock { action } => action::unlock(&ctx, &action).await,
        Command::Demo { .. } => Ok(exit::OK),
    }
}

/// The console needs a terminal on both ends; anything else gets the headless face.
fn console_wanted() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

/// Where the log file goes: `$XDG_STATE_HOME/deckhand/` (never the terminal the TUI owns).
pub fn log_dir() -> PathBuf {
    let base = match std::env::var_os("XDG_STATE_HOME") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".local/state"))
            .unwrap_or_else(|| PathBuf::from("/tmp")),
    };
    base.join("deckhand")
}

/// Sets up tracing to a daily-rotated file with secrets redacted in the writer itself, so no
/// call site can forget. Returns the guard that flushes on drop.
pub fn init_logging(level: &str) -> Result<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::EnvFilter;
    let dir = log_dir();
    std::fs::create_dir_all(&dir)
        .wrap_err_with(|| format!("cannot create the log directory {}", dir.display()))?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("deckhand")
        .filename_suffix("log")
        .max_log_files(7)
        .build(&dir)
        .wrap_err("cannot open the log file")?;
    let (writer, guard) = tracing_appender::non_blocking(output::RedactingWriter(appender));
    let filter = EnvFilter::try_new(format!("deckhand={level},warn")).wrap_err_with(|| {
        format!("`{level}` is not a log level (error, warn, info, debug, trace)")
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .init();
    Ok(guard)
}
