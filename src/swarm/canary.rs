//! A canary on a Swarm (issue 16, as issue 13 on a droplet): the share between the two colors'
//! `server-template`s as HAProxy weights, in the proxy's memory and its file on the manager in
//! one exec (a restarted proxy task keeps the share). Promote is a deploy of the canary's SHA
//! (a full switch); a rollback during a canary is the planner's "finish" back to the stable
//! color; both go through `deploy`.

use std::time::Duration;

use super::proxy::ProxyHandle;
use super::{SwarmError, haproxy, names};
use crate::config::Service;
use crate::release::DeployPlan;
use crate::state::ServiceStatus;
use crate::state::contract::PROXY_HELPER;
use crate::state::proxy_api;
use crate::state::proxy_conf::Canary;
use crate::transport::Host;

fn perr(host: &Host, message: impl Into<String>) -> SwarmError {
    SwarmError::Proxy {
        host: host.name().to_string(),
        message: message.into(),
    }
}

/// Why a canary cannot start here, if it cannot.
pub fn refusal(percent: Option<u8>, plan: &DeployPlan, status: &ServiceStatus) -> Option<String> {
    percent?;
    if plan.from_color.is_none() || status.live_color.is_none() || plan.finish_only || plan.noop {
        return Some(
            "a canary needs a live release to share traffic with and a new one to share it; deploy without --canary first"
                .into(),
        );
    }
    if !status.proxy.exists || !status.proxy.running || status.proxy.drift.is_some() {
        return Some(
            "the proxy service must be (re)created first, which sends all traffic to one color; deploy without --canary".into(),
        );
    }
    None
}

/// Gives `canary.percent` % of requests to the canary's color and the rest to `stable`, once
/// the proxy has resolved the canary's tasks; checks in the same exec's stats that both colors
/// are in rotation.
pub async fn set(
    host: &Host,
    service: &Service,
    proxy: &ProxyHandle,
    replicas: u32,
    stable: &haproxy::Route,
    canary: &Canary,
) -> Result<(), SwarmError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, out) = proxy_api::cli(host, &proxy.container, &haproxy::stat_command())
            .await
            .map_err(|e| SwarmError::docker(host.name(), "exec in the proxy", e))?;
        let st = haproxy::parse_stat(&out);
        if st
            .get(&canary.color)
            .is_some_and(|c| !c.resolved.is_empty())
        {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(perr(
                host,
                format!(
                    "the proxy has not resolved any task of {} after 10s",
                    names::color_service(service, canary.color)
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let config = haproxy::render_canary(service, replicas, stable, canary);
    let commands = haproxy::canary_commands(canary, replicas);
    let (code, out) = proxy_api::exec(
        host,
        &proxy.container,
        &[PROXY_HELPER, "apply", &config, &commands],
    )
    .await
    .map_err(|e| SwarmError::docker(host.name(), "exec the canary's weights in the proxy", e))?;
    let st = haproxy::parse_stat(&out);
    let both = [canary.color, stable.color]
        .iter()
        .all(|c| st.get(c).is_some_and(|s| s.in_rotation > 0));
    if code != 0 || !both {
        return Err(perr(
            host,
            format!(
                "{PROXY_HELPER} apply of the canary exited {code} (both colors in rotation: {both}): {}",
                out.trim()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::plan::Action;
    use crate::state::{Color, ProxyStatus};
    use std::collections::BTreeMap;

    fn plan(from: Option<Color>, noop: bool) -> DeployPlan {
        DeployPlan {
            action: Action::Deploy,
            host: "mgr".into(),
            service: "api".into(),
            from_color: from,
            from_sha: from.map(|_| "a000001".into()),
            to_color: Color::Green,
            to_sha: "a000002".into(),
            image: "r/api:a000002".into(),
            reuse_existing: false,
            noop,
            finish_only: false,
            create_proxy: false,
            proxy_change: None,
            steps: Vec::new(),
            image_present: true,
            note: None,
        }
    }

    fn status(proxy_running: bool, drift: Option<&str>) -> ServiceStatus {
        ServiceStatus {
            name: "api".into(),
            live_color: Some(Color::Blue),
            live_sha: Some("a000001".into()),
            proxy: ProxyStatus {
                exists: true,
                running: proxy_running,
                image: None,
                public_port: None,
                upstream: None,
                kind: None,
                drift: drift.map(str::to_string),
            },
            colors: BTreeMap::new(),
            images: Vec::new(),
            problems: Vec::new(),
            traffic: None,
            canary: None,
            settling: None,
        }
    }

    #[test]
    fn a_canary_needs_a_live_release_a_new_one_and_a_proxy_that_stays() {
        let live = Some(Color::Blue);
        assert_eq!(refusal(None, &plan(None, false), &status(true, None)), None);
        assert_eq!(
            refusal(Some(25), &plan(live, false), &status(true, None)),
            None
        );
        for (p, st) in [
            (plan(None, false), status(true, None)),
            (plan(live, true), status(true, None)),
            (plan(live, false), status(false, None)),
            (plan(live, false), status(true, Some("the proxy runs x"))),
        ] {
            assert!(refusal(Some(25), &p, &st).is_some(), "{p:?}");
        }
    }
}
