//! `deckhand init`: asks `config::init` for a commented config and writes it (never over an
//! existing file). Needs no config to run.

use std::io::Read;
use std::path::PathBuf;

use color_eyre::eyre::Result;

use super::GlobalArgs;
use super::args::InitArgs;
use crate::config::init::{self, HostSource, InitError, InitPlan};
use crate::exit;

pub fn run(global: &GlobalArgs, args: &InitArgs) -> Result<i32> {
    let path = global
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("deckhand.toml"));
    match plan(global, args, &path).and_then(|p| {
        let text = init::render(
            &p,
            &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        init::write_new(&path, &text).map(|cfg| (p, cfg))
    }) {
        Ok((p, cfg)) => {
            let hosts = cfg.env(&p.env).map(|e| e.hosts.len()).unwrap_or(0);
            println!(
                "wrote {}: service `{}` ({}), environment `{}` with {hosts} host(s)",
                path.display(),
                p.service,
                p.image,
                p.env
            );
            println!(
                "next: `deckhand doctor --config {} --env {}`",
                path.display(),
                p.env
            );
            Ok(exit::OK)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(exit::USAGE)
        }
    }
}

fn plan(
    global: &GlobalArgs,
    args: &InitArgs,
    path: &std::path::Path,
) -> Result<InitPlan, InitError> {
    let mut env_hint = None;
    let mut protected = false;
    let source = if let Some(inv) = &args.from_ansible {
        // `inventories/staging.yml` → `staging`
        env_hint = inv
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| {
                !s.is_empty()
                    && s.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                    })
            })
            .map(str::to_string);
        init::ansible_source(inv, args.ansible_group.as_deref(), path)?
    } else if let Some(file) = &args.from_terraform {
        let text = if file.as_os_str() == "-" {
            let mut t = String::new();
            std::io::stdin()
                .read_to_string(&mut t)
                .map_err(|source| InitError::Read {
                    path: file.clone(),
                    source,
                })?;
            t
        } else {
            std::fs::read_to_string(file).map_err(|source| InitError::Read {
                path: file.clone(),
                source,
            })?
        };
        let (env, hosts, prot) = init::terraform_hosts(&text, file)?;
        env_hint = env;
        protected = prot;
        HostSource::Terraform {
            file: file.display().to_string(),
            hosts,
            protected: prot,
        }
    } else if !args.hosts.is_empty() {
        HostSource::Named(args.hosts.clone())
    } else {
        return Err(InitError::Usage(
            "say where the hosts come from: --from-ansible INVENTORY, --from-terraform OUTPUTS.json, or ssh hosts (e.g. `deckhand init --image REPO deploy@203.0.113.10`)".into(),
        ));
    };
    let env = global
        .env
        .clone()
        .or(env_hint)
        .unwrap_or_else(|| "production".to_string());
    // A production environment asks before acting unless the outputs said otherwise.
    if env == "production" || env == "prod" {
        protected = true;
    }
    Ok(InitPlan {
        service: global
            .service
            .clone()
            .unwrap_or_else(|| init::service_name_from_image(&args.image)),
        env,
        protected,
        image: args.image.clone(),
        proxy_image: args.proxy_image.clone(),
        app_port: args.app_port,
        public_port: args.public_port,
        source,
    })
}
