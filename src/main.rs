#![forbid(unsafe_code)]

use clap::Parser;
use color_eyre::eyre::Result;

use deckhand::cli::{self, Cli};

fn main() -> Result<()> {
    color_eyre::install()?;
    let args = Cli::parse();
    let _log_guard = match cli::init_logging(&args.global.log_level) {
        Ok(g) => Some(g),
        Err(e) => {
            // Logging is a help, not a reason to refuse an operator at 3 a.m.
            eprintln!("warning: logging disabled: {e:#}");
            None
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(cli::run(args))?;
    drop(runtime);
    // process::exit skips destructors: flush the log first.
    drop(_log_guard);
    std::process::exit(code);
}
