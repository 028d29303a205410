//! `promote`: finds the release in canary on the selected hosts and deploys it everywhere,
//! which sends all traffic to it and stops the old color (issue 13).

use color_eyre::eyre::Result;
use futures_util::future::join_all;

use super::{ActionArgs, Context};
use crate::exit;
use crate::state::read_service;
use crate::transport::Host;

pub async fn promote(ctx: &Context, args: &ActionArgs) -> Result<i32> {
    let service = match ctx.services.as_slice() {
        [s] => s.clone(),
        _ => {
            eprintln!("error: this config has several services; name one with --service");
            return Ok(exit::USAGE);
        }
    };
    let specs: Vec<_> = ctx
        .env
        .hosts
        .iter()
        .filter(|h| args.hosts.is_empty() || args.hosts.contains(&h.name))
        .cloned()
        .collect();
    let mut shas: Vec<(String, String, u8)> = Vec::new();
    // A watch that was interrupted (both colors run, one serves): promote finishes it.
    let mut unsettled: Option<String> = None;
    let svc = &service;
    for r in join_all(specs.iter().map(|s| async move {
        let h = Host::connect(s).await.map_err(|e| e.to_string())?;
        let st = if crate::swarm::is_swarm(&h) {
            crate::swarm::read_service(&h, svc)
                .await
                .map_err(|e| e.to_string())
        } else {
            read_service(&h, svc).await.map_err(|e| e.to_string())
        };
        h.close().await;
        st.map(|st| (s.name.clone(), st))
    }))
    .await
    {
        match r {
            Ok((host, st)) => match (st.canary, st.settling, st.live_sha) {
                (Some(k), _, _) => shas.push((host, k.sha, k.percent)),
                (None, Some(_), Some(live)) => unsettled = unsettled.or(Some(live)),
                _ => {}
            },
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(exit::UNREACHABLE);
            }
        }
    }
    if shas.is_empty()
        && let Some(live) = unsettled
    {
        eprintln!(
            "no canary; {live} serves after an interrupted watch: promoting it (the old color is stopped)"
        );
        return super::action::promote_to(ctx, &live, args).await;
    }
    let Some((_, sha, _)) = shas.first().cloned() else {
        eprintln!(
            "error: no canary of {} in {}: nothing to promote (start one with `deckhand deploy REF --canary PERCENT`)",
            service.name, ctx.env.name
        );
        return Ok(exit::USAGE);
    };
    if let Some((host, other, _)) = shas.iter().find(|(_, s, _)| *s != sha) {
        eprintln!(
            "error: the hosts run different canaries ({sha} on {}, {other} on {host}); promote one host at a time with --host",
            shas[0].0
        );
        return Ok(exit::USAGE);
    }
    for (host, _, p) in &shas {
        eprintln!("{host}: promoting canary {sha} ({p} %)");
    }
    super::action::promote_to(ctx, &sha, args).await
}
