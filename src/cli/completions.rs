//! `deckhand completions SHELL` and `deckhand man`: from clap's own generators, so they never
//! drift from the real arguments.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use color_eyre::eyre::{Result, WrapErr};

use super::args::{CompleteWhat, CompletionShell};
use super::{Cli, GlobalArgs};
use crate::exit;

/// clap's script, plus completion of `--env`, `--host` and `--service` values from the config
/// (through the hidden `deckhand __complete env|host|service`, which honours `--config` and,
/// for hosts, `--env` on the line being completed).
pub fn completions(shell: CompletionShell) -> Result<i32> {
    let generator = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(generator, &mut Cli::command(), "deckhand", &mut out);
    let script = String::from_utf8_lossy(&out).into_owned();
    write_stdout(with_names(shell, script).as_bytes())
}

const BASH_NAMES: &str = r#"
# Names from the config: environments, hosts and services.
_deckhand_with_names() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" i kind
    case "$prev" in
        --env) kind=env ;;
        --host) kind=host ;;
        --service) kind=service ;;
        *) _deckhand "$@"; return ;;
    esac
    local args=()
    for ((i = 1; i < COMP_CWORD - 1; i++)); do
        case "${COMP_WORDS[i]}" in
            --config|--env) args+=("${COMP_WORDS[i]}" "${COMP_WORDS[i+1]}") ;;
        esac
    done
    COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${args[@]}" __complete "$kind" 2>/dev/null)" -- "$cur"))
}
complete -F _deckhand_with_names -o bashdefault -o default deckhand
"#;

const ZSH_NAMES: &str = r#"
_deckhand_names() {
    local -a names args
    local i
    for ((i = 2; i < CURRENT - 1; i++)); do
        case "${words[i]}" in
            --config|--env) args+=("${words[i]}" "${words[i+1]}") ;;
        esac
    done
    names=(${(f)"$(${words[1]} $args __complete $1 2>/dev/null)"})
    compadd -a names
}
"#;

const FISH_NAMES: &str = r#"
# Names from the config: environments, hosts and services.
complete -c deckhand -l env -x -a '(deckhand __complete env 2>/dev/null)'
complete -c deckhand -l host -x -a '(deckhand __complete host 2>/dev/null)'
complete -c deckhand -l service -x -a '(deckhand __complete service 2>/dev/null)'
"#;

fn with_names(shell: CompletionShell, script: String) -> String {
    match shell {
        CompletionShell::Bash => script + BASH_NAMES,
        CompletionShell::Fish => script + FISH_NAMES,
        CompletionShell::Zsh => {
            let script = script
                .replace(":ENV:_default'", ":ENV:_deckhand_names env'")
                .replace(":SERVICE:_default'", ":SERVICE:_deckhand_names service'")
                .replace(":HOSTS:_default'", ":HOSTS:_deckhand_names host'");
            match script.split_once('\n') {
                Some((first, rest)) => format!("{first}\n{ZSH_NAMES}{rest}"),
                None => script,
            }
        }
    }
}

/// `deckhand __complete WHAT`: one name per line; nothing (and exit 0) when there is no
/// config, so a completion never prints an error into the command line.
pub fn names(global: &GlobalArgs, what: CompleteWhat) -> i32 {
    let Ok(cfg) =
        crate::config::discover(global.config.as_deref()).and_then(|p| crate::config::load(&p))
    else {
        return exit::OK;
    };
    let mut names: Vec<String> = match what {
        CompleteWhat::Env => cfg.envs.keys().cloned().collect(),
        CompleteWhat::Service => cfg.services.iter().map(|s| s.name.clone()).collect(),
        CompleteWhat::Host => cfg
            .envs
            .values()
            .filter(|e| global.env.as_ref().is_none_or(|n| &e.name == n))
            .flat_map(|e| e.hosts.iter().map(|h| h.name.clone()))
            .collect(),
    };
    names.sort();
    names.dedup();
    let mut out = std::io::stdout().lock();
    for n in names {
        if writeln!(out, "{n}").is_err() {
            break;
        }
    }
    exit::OK
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
    for sub in cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help" && !s.is_hide_set())
    {
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
