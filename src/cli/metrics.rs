//! `deckhand metrics`: the exposition of status and alerts, printed once (for node_exporter's
//! textfile collector from cron: `deckhand metrics > /var/lib/node_exporter/deckhand.prom.$$ &&
//! mv ...`). `alerts --watch --listen ADDR` serves the same text over HTTP.

use std::io::Write;

use color_eyre::eyre::Result;

use super::Context;
use super::host_text::clean;
use crate::exit;
use crate::monitor::{exposition, scrape};

pub async fn run(ctx: &Context) -> Result<i32> {
    let hosts = scrape::scrape_env(&ctx.env, &ctx.services).await;
    let text = exposition::render(&ctx.env.name, &hosts, &clean);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    for h in hosts.iter().filter(|h| !h.reachable) {
        eprintln!(
            "warning: {}: unreachable (deckhand_host_up 0)",
            clean(&h.host)
        );
    }
    Ok(if hosts.iter().all(|h| h.reachable) {
        exit::OK
    } else {
        exit::UNREACHABLE
    })
}

/// The exposition of one `alerts --watch` cycle, for the HTTP endpoint.
pub(super) fn render_cycle(env: &str, hosts: &[exposition::HostSample]) -> String {
    exposition::render(env, hosts, &clean)
}
