#![forbid(unsafe_code)]
//! The binary's edge: parse the command line, start logging, pick the face (the console on a
//! terminal with no command, else headless), turn the outcome into an exit code.

use std::io::IsTerminal;

use clap::Parser;
use color_eyre::eyre::Result;

use deckhand::cli::{self, Cli};
use deckhand::session::Session;

fn main() -> Result<()> {
    color_eyre::install()?;
    let args = Cli::parse();
    let log_guard = match deckhand::logging::init(&args.global.log_level) {
        Ok(g) => Some(g),
        Err(e) => {
            // Logging is a help, not a reason to refuse an operator at 3 a.m.
            eprintln!("warning: logging disabled: {e}");
            None
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(face(args))?;
    drop(runtime);
    // process::exit skips destructors: flush the log first.
    drop(log_guard);
    std::process::exit(code);
}

async fn face(args: Cli) -> Result<i32> {
    let args = cli::prepare(args).await?;
    if args.command.is_none() && console_wanted() {
        return match Session::load(&args.global.session_args()) {
            Ok(session) => deckhand::tui::run(session).await,
            Err(e) => {
                eprintln!("error: {e}");
                Ok(deckhand::exit::USAGE)
            }
        };
    }
    cli::run(args).await
}

/// The console needs a terminal on both ends; anything else gets the headless face.
fn console_wanted() -> bool {
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}
