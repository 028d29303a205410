//! The headless face: argument model, command dispatch, table and JSON output. It asks the
//! engine (`release::runner`) and prints; it knows nothing of the console.

mod action;
mod alerts;
mod args;
mod canary;
mod completions;
mod demo;
mod doctor;
mod history;
mod host_text;
mod init;
mod logs;
mod metrics;
pub mod output;
mod status;
mod swarm_status;

pub use args::{ActionArgs, Cli, Command, GlobalArgs, OutputFormat};

use color_eyre::eyre::Result;

use crate::config::{self, Config, Environment, Service};
use crate::exit;
use crate::session::{Session, SessionArgs};

/// What every command needs: the loaded config and the chosen environment and services.
pub struct Context {
    pub config: Config,
    pub env: Environment,
    pub services: Vec<Service>,
    pub global: GlobalArgs,
}

impl GlobalArgs {
    /// The clap-free part the core needs.
    pub fn session_args(&self) -> SessionArgs {
        SessionArgs {
            config: self.config.clone(),
            env: self.env.clone(),
            service: self.service.clone(),
            read_only: self.read_only,
        }
    }
}

impl Context {
    pub fn load(global: &GlobalArgs) -> Result<Context, config::ConfigError> {
        let s = Session::load(&global.session_args())?;
        Ok(Context {
            config: s.config,
            env: s.env,
            services: s.services,
            global: global.clone(),
        })
    }

    /// The session this context was loaded as.
    pub fn session(&self) -> Session {
        Session {
            config: self.config.clone(),
            env: self.env.clone(),
            services: self.services.clone(),
            read_only: self.global.read_only,
        }
    }
}

/// Work done before a face is chosen: `demo` writes and deploys its own config, then is shown
/// like any other environment (`command` becomes `None`).
pub async fn prepare(mut cli: Cli) -> Result<Cli> {
    if let Some(Command::Demo { port }) = cli.command {
        cli.global.config = Some(demo::run(port).await?);
        cli.global.env = Some("dev".into());
        cli.command = None;
    }
    Ok(cli)
}

/// Runs a parsed command line headless and returns the process exit code. With no command it
/// prints the status table (the console is `main`'s choice, on a terminal).
pub async fn run(cli: Cli) -> Result<i32> {
    // These need no config (init writes one).
    match &cli.command {
        Some(Command::Init(args)) => return init::run(&cli.global, args),
        Some(Command::Completions { shell }) => return completions::completions(*shell),
        Some(Command::Man { dir }) => return completions::man(dir.as_deref()),
        Some(Command::Complete { what }) => return Ok(completions::names(&cli.global, *what)),
        Some(Command::Disconnect) => {
            return match crate::transport::disconnect_all().await {
                Ok(n) => {
                    println!(
                        "stopped {n} kept ssh master{}",
                        if n == 1 { "" } else { "s" }
                    );
                    Ok(crate::exit::OK)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(crate::exit::USAGE)
                }
            };
        }
        _ => {}
    }
    let ctx = match Context::load(&cli.global) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(crate::exit::USAGE);
        }
    };
    // The flag (or DECKHAND_KEEP_CONNECTION) over the environment's `ssh.persist`; `=0` is off.
    if let Some(idle) = cli.global.keep_connection.or(ctx.env.ssh_persist)
        && !idle.is_zero()
    {
        crate::transport::keep_connections(idle);
    }
    let Some(command) = cli.command else {
        return status::run(&ctx, false).await;
    };
    match command {
        Command::Status { timings } => status::run(&ctx, timings).await,
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
        Command::Alerts { watch, listen } => alerts::run(&ctx, watch, listen).await,
        Command::Logs(args) => logs::run(&ctx, &args).await,
        Command::Doctor { hosts } => doctor::run(&ctx, &hosts).await,
        Command::Metrics => metrics::run(&ctx).await,
        Command::Init(_)
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Complete { .. }
        | Command::Disconnect => Ok(exit::OK),
        Command::Unlock { action, force } => action::unlock(&ctx, &action, force).await,
        Command::Demo { .. } => Ok(exit::OK),
    }
}
