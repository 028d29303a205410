//! A canary's weights in the running proxy (memory) and its config file (disk), in one exec of
//! the proxy's helper, as a switch is: restarts keep the canary.

use crate::config::Service;
use crate::state::contract::{PROXY_BACKEND, PROXY_HELPER};
use crate::state::proxy_api;
use crate::state::proxy_conf::{self, Canary, ProxyRoute};
use crate::transport::Host;

/// Sends `canary.percent` % of new requests to the canary color, the rest to `stable`.
pub async fn set(
    host: &Host,
    service: &Service,
    stable: &ProxyRoute,
    canary: &Canary,
) -> Result<(), String> {
    let addr = super::super::proxy::container_addr(host, service, canary.color).await;
    let (k, s) = (canary.color, stable.color);
    let mut cmds = Vec::new();
    if let Some(a) = addr {
        cmds.push(format!(
            "set server {PROXY_BACKEND}/{k} addr {a} port {}",
            service.app_port
        ));
    }
    cmds.push(format!(
        "set server {PROXY_BACKEND}/{k} weight {}",
        canary.percent
    ));
    cmds.push(format!(
        "set server {PROXY_BACKEND}/{s} weight {}",
        100 - canary.percent
    ));
    cmds.push(format!("set server {PROXY_BACKEND}/{s} state ready"));
    cmds.push(format!("set server {PROXY_BACKEND}/{k} state ready"));
    cmds.push(proxy_api::stat_command());
    let conf = proxy_conf::render_canary(service, stable, canary);
    let (code, out) = proxy_api::exec(
        host,
        &service.proxy_container(),
        &[PROXY_HELPER, "apply", &conf, &cmds.join("; ")],
    )
    .await
    .map_err(|e| crate::util::error_chain(&e))?;
    let stats = proxy_api::parse_show_stat(&out);
    let both = [k, s]
        .iter()
        .all(|c| stats.get(c).is_some_and(proxy_api::ServerStat::in_rotation));
    match (code, both) {
        (0, true) => Ok(()),
        _ => Err(format!(
            "{PROXY_HELPER} apply of the canary exited {code}; HAProxy: {}",
            out.trim()
        )),
    }
}
