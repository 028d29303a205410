//! `deckhand completions SHELL` and `deckhand man`: from clap's own generators, so they never
//! drift from the real arguments.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use color_eyre::eyre::{Result, WrapErr};

use super::Cli;
use super::args::CompletionShell;
use crate::exit;

pub fn completions(shell: CompletionShell) -> Result<i32> {
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "deckhand", &mut out);
    write_stdout(&out)
}

pub fn man(dir: Option<&Path>) -> Result<i32> {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        return write_stdout(&out);
    };
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    let page = |name: String, cmd: clap::Command| -> Result<String> {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).title(&name).render(&mut out)?;
        let file = dir.join(format!("{name}.1"));
        std::fs::write(&file, out).wrap_err_with(|| format!("cannot write {}", file.display()))?;
        Ok(file.display().to_string())
    };
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("deckhand-{}", sub.get_name());
        written.push(page(
            name.clone(),
            sub.clone().display_name(name.clone()).bin_name(name),
        )?);
    }
    written.insert(0, page("deckhand".into(), cmd)?);
    for f in written {
        println!("{f}");
    }
    Ok(exit::OK)
}

fn write_stdout(bytes: &[u8]) -> Result<i32> {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe is the reader's choice, not an error.
    let _ = stdout.write_all(bytes).and_then(|()| stdout.flush());
    Ok(exit::OK)
}
