//! `deckhand demo`: a local demo service with both colors and a few releases, on this machine's
//! Docker engine, built here (no Docker Hub). The same engine as a real deploy does the work.

use std::path::PathBuf;
use std::sync::Arc;

use color_eyre::eyre::{Result, WrapErr, eyre};

use crate::config::{self, HostTarget};
use crate::release::{self, ActionOptions, EventSink, actor};
use crate::transport::Host;

const REGISTRY: &str = "127.0.0.1:5000";
/// Releases deployed by the demo, oldest first: the last is live, the one before the rollback
/// target, and the first only retained.
const RELEASES: [&str; 3] = ["a000001", "a000002", "a000003"];

fn demo_dir() -> PathBuf {
    crate::logging::log_dir().join("demo")
}

/// Writes the demo config and deploys the demo releases; returns the config path.
pub async fn run(public_port: u16) -> Result<PathBuf> {
    let image = format!("{REGISTRY}/deckhand/demo");
    let proxy = format!("{REGISTRY}/deckhand/haproxy:2.6");
    let text = format!(
        r#"# Written by `deckhand demo`: the demo service on this machine's Docker engine.
[[service]]
name = "demo"
image = "{image}"
app_port = 3000
public_port = {public_port}
proxy_image = "{proxy}"
health_timeout = "30s"
drain = "1s"
keep_images = 5
env = {{ DEMO_GREETING = "hello from deckhand" }}

[env.dev]
hosts = ["local"]
"#
    );
    let dir = demo_dir();
    std::fs::create_dir_all(&dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("deckhand.toml");
    std::fs::write(&path, text).wrap_err_with(|| format!("cannot write {}", path.display()))?;
    let cfg = config::load(&path)?;
    let env = cfg.env("dev")?;
    let service = cfg.service("demo")?.clone();
    let spec = env
        .hosts
        .iter()
        .find(|h| h.target == HostTarget::Local)
        .ok_or_else(|| eyre!("the demo environment has no local host"))?;
    let host = Arc::new(Host::connect(spec).await.map_err(|e| {
        eyre!("{e}\n  The demo needs Docker on this machine: run `bash scripts/setup.sh` first (as root).")
    })?);
    for sha in RELEASES {
        if host
            .docker
            .inspect_image(&format!("{image}:{sha}"))
            .await
            .is_err()
        {
            return Err(eyre!(
                "the demo image {image}:{sha} is not on this machine.\n  Build it (no Docker Hub needed): bash scripts/setup.sh"
            ));
        }
    }
    let opts = ActionOptions {
        env: "dev".into(),
        actor: actor::current(),
        lock_wait: std::time::Duration::from_secs(30),
        health_timeout: None,
        cancel: tokio_util::sync::CancellationToken::new(),
        watch: Some(std::time::Duration::ZERO),
        canary: None,
        take_over_stale: false,
    };
    for sha in RELEASES {
        eprintln!("demo: deploying {sha} ...");
        let outcome =
            release::deploy_on_host(host.clone(), &service, sha, &opts, &EventSink::none())
                .await
                .wrap_err_with(|| format!("deploying {sha}"))?;
        eprintln!(
            "demo:   {} in {} ms",
            outcome.plan.summary(),
            outcome.duration_ms
        );
    }
    if let Ok(h) = Arc::try_unwrap(host) {
        h.close().await;
    }
    eprintln!(
        "demo: ready. The service answers on http://127.0.0.1:{public_port}/ ; config: {}",
        path.display()
    );
    Ok(path)
}
