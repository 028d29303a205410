//! The Swarm proxy's `haproxy.cfg` and its runtime commands. Pure.
//!
//! As on a droplet both colors are servers of one backend and a switch changes admin states in
//! HAProxy's memory (no reload, no connection closed), mirrored to the file in the same exec.
//! A color here is N tasks, so each color is a `server-template` of [`slots`] servers named
//! `blue1..blueN` resolved from Swarm's DNS (`tasks.S-blue`: one A record per running task);
//! servers without a task stay in resolution maintenance. The live template is enabled, the
//! other `disabled`, and a `# deckhand-route:` line names the live color and SHA.
//!
//! `retries` with `option redispatch` and `retry-on conn-failure empty-response`, and no reuse
//! of idle server connections: a task that went away (its node died, Swarm rescheduled it)
//! before DNS said so costs a connect timeout and a retry on another task of the same color,
//! not a failed request (measured: a pooled connection to a dead node's task hung a request
//! past the client's 5 s timeout).
//!
//! A canary (issue 16, as issue 13 on a droplet) has both templates enabled, the canary's
//! servers at weight P and the stable's at 100 − P (each color runs the same number of tasks,
//! so the canary gets P % of requests), and a `# deckhand-canary:` line; the route line keeps
//! naming the stable color.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use super::names;
use crate::config::Service;
use crate::state::Color;
use crate::state::contract::{COLOR_HEADER, PROXY_BACKEND, PROXY_TIMINGS_RING};
use crate::state::proxy_conf::{Canary, TIMINGS_RING_BYTES};

/// Server slots per color: the replicas plus room for the extra tasks Swarm runs while it
/// replaces tasks of a failed node.
pub fn slots(replicas: u32) -> u32 {
    replicas.saturating_mul(2).max(replicas + 2).min(64)
}

/// The route a config file says: live color and SHA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub color: Color,
    pub sha: String,
}

/// The whole config; `route` is `None` before the first release (both templates disabled:
/// the proxy answers 503 until a color is switched in).
pub fn render(service: &Service, replicas: u32, route: Option<&Route>) -> String {
    render_with(service, replicas, route, None)
}

/// The config of a canary: `canary.percent` % of requests to the canary's color, the rest to
/// `stable`'s.
pub fn render_canary(service: &Service, replicas: u32, stable: &Route, canary: &Canary) -> String {
    render_with(service, replicas, Some(stable), Some(canary))
}

fn render_with(
    service: &Service,
    replicas: u32,
    route: Option<&Route>,
    canary: Option<&Canary>,
) -> String {
    let n = slots(replicas);
    let template = |c: Color| {
        let state = match canary {
            Some(k) if k.color == c => format!(" weight {}", k.percent),
            Some(k) => format!(" weight {}", 100 - k.percent),
            None if route.is_some_and(|r| r.color == c) => String::new(),
            None => " disabled".into(),
        };
        format!(
            "    server-template {c} 1-{n} tasks.{svc}:{port} resolvers swarm resolve-prefer ipv4 init-addr none{state}",
            svc = names::color_service(service, c),
            port = service.app_port,
        )
    };
    let canary_line = canary.map_or(String::new(), |k| {
        format!(
            "\n# deckhand-canary: color={} sha={} percent={}",
            k.color, k.sha, k.percent
        )
    });
    let route_line = route.map_or_else(
        || format!("# deckhand-route: service={} color=none", service.name),
        |r| {
            format!(
                "# deckhand-route: service={} color={} sha={}",
                service.name, r.color, r.sha
            )
        },
    );
    format!(
        r#"# Written by deckhand (Swarm). Do not edit: every switch rewrites this file and the
# running proxy's memory together (no reload).
{route_line}{canary_line}
global
    stats socket /run/haproxy/admin.sock mode 600 level admin
    stats timeout 10s
    hard-stop-after 5s
    maxconn 4096

ring {ring}
    format raw
    size {ring_size}
    maxlen 128

resolvers swarm
    nameserver swarm 127.0.0.11:53
    accepted_payload_size 8192
    hold valid 1s
    hold obsolete 2s
    hold nx 2s
    hold timeout 2s
    hold refused 2s
    hold other 2s
    timeout resolve 500ms
    timeout retry 500ms

defaults
    mode http
    timeout connect 1s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
    timeout client 65s
    timeout http-keep-alive 65s
    timeout server 60s
    timeout queue 10s
    option forwardfor

frontend public
    bind :80
    log ring@{ring} local0
    log-format "%Ts %s %ST %Ta %HP"
    default_backend {backend}

backend {backend}
    balance roundrobin
    # A new server connection per request: a pooled one to a task whose node just died would
    # hang a request until `timeout server`; a new one fails its connect within a second and
    # the request is retried on another task.
    http-reuse never
    http-response set-header {header} %[srv_name,regsub([0-9]+$,)]
{blue}
{green}
"#,
        ring = PROXY_TIMINGS_RING,
        ring_size = TIMINGS_RING_BYTES,
        backend = PROXY_BACKEND,
        header = COLOR_HEADER,
        blue = template(Color::Blue),
        green = template(Color::Green),
    )
}

static ROUTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^# deckhand-route: service=\S+ color=(blue|green) sha=([0-9A-Za-z_.-]+)\s*$")
        .expect("static regex")
});

static CANARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?m)^# deckhand-canary: color=(blue|green) sha=([0-9A-Za-z_.-]+) percent=(\d+)\s*$",
    )
    .expect("static regex")
});

/// The canary the file says, if one runs.
pub fn parse_canary(config: &str) -> Option<Canary> {
    let c = CANARY.captures(config)?;
    Some(Canary {
        color: Color::parse(c.get(1)?.as_str())?,
        sha: c.get(2)?.as_str().to_string(),
        percent: c
            .get(3)?
            .as_str()
            .parse::<u8>()
            .ok()
            .filter(|p| (1..=99).contains(p))?,
    })
}

/// The route the file says, if it names one.
pub fn parse_route(config: &str) -> Option<Route> {
    let c = ROUTE.captures(config)?;
    Some(Route {
        color: Color::parse(c.get(1)?.as_str())?,
        sha: c.get(2)?.as_str().to_string(),
    })
}

/// One color's servers in `show stat`, summed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColorStats {
    /// Servers with an address (a task resolved).
    pub resolved: Vec<String>,
    /// Of those, in rotation (not in admin maintenance or drain).
    pub in_rotation: usize,
    /// Servers in admin maintenance (`MAINT`, not `MAINT (resolution)`).
    pub admin_maint: usize,
    /// Requests on its servers and in their queues.
    pub in_flight: u64,
    pub req_tot: u64,
}

/// `show stat` for deckhand's backend, per color (servers `blue1..`, `green1..`).
pub fn parse_stat(text: &str) -> BTreeMap<Color, ColorStats> {
    let mut out: BTreeMap<Color, ColorStats> = BTreeMap::new();
    let mut header: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("# pxname,") {
            header = std::iter::once("pxname").chain(h.split(',')).collect();
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if header.is_empty() || fields.len() < 2 || fields[0] != PROXY_BACKEND {
            continue;
        }
        let Some(color) = Color::parse(fields[1].trim_end_matches(|c: char| c.is_ascii_digit()))
        else {
            continue;
        };
        if fields[1] == color.as_str() {
            continue; // not a template server
        }
        let get = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .and_then(|i| fields.get(i))
                .copied()
                .unwrap_or("")
        };
        let num = |name: &str| get(name).parse::<u64>().unwrap_or(0);
        let status = get("status");
        let addr = get("addr");
        let e = out.entry(color).or_default();
        let resolution_maint = status.contains("resolution");
        let admin_maint = status.starts_with("MAINT") && !resolution_maint;
        if admin_maint {
            e.admin_maint += 1;
        }
        if !addr.is_empty() && !resolution_maint {
            e.resolved.push(addr.to_string());
            if !status.starts_with("MAINT") && !status.starts_with("DRAIN") {
                e.in_rotation += 1;
            }
        }
        e.in_flight += num("scur") + num("qcur");
        e.req_tot += num("req_tot");
    }
    out
}

/// The color whose servers are in rotation, if exactly one color's are.
pub fn serving(stats: &BTreeMap<Color, ColorStats>) -> Option<Color> {
    let live: Vec<Color> = stats
        .iter()
        .filter(|(_, s)| s.in_rotation > 0)
        .map(|(c, _)| *c)
        .collect();
    match live.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// The runtime commands that put `to`'s servers in rotation and the other color's out, then
/// the stats, so the caller sees the result of the same exec.
pub fn switch_commands(to: Color, replicas: u32) -> String {
    let n = slots(replicas);
    let mut cmds = Vec::new();
    // A canary's weights go back to the file's default (1) for both colors.
    for c in Color::BOTH {
        for i in 1..=n {
            cmds.push(format!("set server {PROXY_BACKEND}/{c}{i} weight 1"));
        }
    }
    for i in 1..=n {
        cmds.push(format!("set server {PROXY_BACKEND}/{to}{i} state ready"));
    }
    for i in 1..=n {
        cmds.push(format!(
            "set server {PROXY_BACKEND}/{}{i} state maint",
            to.other()
        ));
    }
    cmds.push(stat_command());
    cmds.join("; ")
}

/// The runtime commands of a canary: both colors in rotation, the canary's servers at weight
/// P, the stable's at 100 − P; then the stats.
pub fn canary_commands(canary: &Canary, replicas: u32) -> String {
    let n = slots(replicas);
    let mut cmds = Vec::new();
    for (c, w) in [
        (canary.color.other(), 100 - canary.percent),
        (canary.color, canary.percent),
    ] {
        for i in 1..=n {
            cmds.push(format!("set server {PROXY_BACKEND}/{c}{i} weight {w}"));
            cmds.push(format!("set server {PROXY_BACKEND}/{c}{i} state ready"));
        }
    }
    cmds.push(stat_command());
    cmds.join("; ")
}

pub fn stat_command() -> String {
    format!("show stat {PROXY_BACKEND} 4 -1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> Service {
        crate::config::load_str(
            "[[service]]\nname = \"api\"\nimage = \"r/api\"\n\n[env.dev]\nhosts = [\"local\"]\n",
            std::path::Path::new("/tmp/deckhand.toml"),
        )
        .expect("config")
        .services
        .remove(0)
    }

    #[test]
    fn the_live_template_is_enabled_and_the_route_reads_back() {
        let s = service();
        let route = Route {
            color: Color::Green,
            sha: "a000002".into(),
        };
        let cfg = render(&s, 2, Some(&route));
        assert!(cfg.contains("server-template green 1-4 tasks.api-green:3000 resolvers swarm resolve-prefer ipv4 init-addr none\n"), "{cfg}");
        assert!(cfg.contains("server-template blue 1-4 tasks.api-blue:3000 resolvers swarm resolve-prefer ipv4 init-addr none disabled"), "{cfg}");
        assert_eq!(parse_route(&cfg), Some(route));
        assert_eq!(parse_route(&render(&s, 2, None)), None);
    }

    #[test]
    fn stats_are_summed_per_color_and_resolution_maintenance_is_no_server() {
        let text = "# pxname,svname,qcur,qmax,scur,smax,status,req_tot,addr\n\
app,blue1,0,0,2,2,no check,10,10.0.1.3:3000\n\
app,blue2,1,0,0,2,no check,5,10.0.1.4:3000\n\
app,blue3,0,0,0,0,MAINT (resolution),0,\n\
app,green1,0,0,0,0,MAINT,3,10.0.1.9:3000\n\
app,green2,0,0,0,0,MAINT (resolution),0,\n\
app,BACKEND,0,0,2,2,UP,15,\n";
        let st = parse_stat(text);
        let blue = &st[&Color::Blue];
        assert_eq!(blue.resolved.len(), 2);
        assert_eq!(blue.in_rotation, 2);
        assert_eq!(blue.in_flight, 3);
        assert_eq!(st[&Color::Green].in_rotation, 0);
        assert_eq!(st[&Color::Green].admin_maint, 1);
        assert_eq!(serving(&st), Some(Color::Blue));
    }

    #[test]
    fn a_canary_config_weighs_both_templates_and_reads_back() {
        let s = service();
        let stable = Route {
            color: Color::Blue,
            sha: "a000001".into(),
        };
        let k = Canary {
            color: Color::Green,
            sha: "a000002".into(),
            percent: 25,
        };
        let cfg = render_canary(&s, 2, &stable, &k);
        assert!(cfg.contains("server-template green 1-4 tasks.api-green:3000 resolvers swarm resolve-prefer ipv4 init-addr none weight 25\n"), "{cfg}");
        assert!(cfg.contains("server-template blue 1-4 tasks.api-blue:3000 resolvers swarm resolve-prefer ipv4 init-addr none weight 75\n"), "{cfg}");
        assert_eq!(parse_canary(&cfg), Some(k.clone()));
        assert_eq!(parse_route(&cfg), Some(stable.clone()));
        assert_eq!(parse_canary(&render(&s, 2, Some(&stable))), None);
        let c = canary_commands(&k, 1);
        assert!(c.contains("set server app/green3 weight 25; set server app/green3 state ready"));
        assert!(c.contains("set server app/blue1 weight 75"));
        assert!(switch_commands(Color::Green, 1).contains("set server app/blue2 weight 1"));
    }

    #[test]
    fn a_switch_names_every_slot_of_both_colors() {
        let c = switch_commands(Color::Green, 1);
        assert!(c.contains("set server app/green3 state ready"));
        assert!(c.contains("set server app/blue1 state maint"));
        assert!(c.ends_with("show stat app 4 -1"));
        assert_eq!(slots(1), 3);
        assert_eq!(slots(4), 8);
    }
}
