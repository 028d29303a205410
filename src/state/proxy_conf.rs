//! The proxy's complete `haproxy.cfg`: written by the release engine, read back by `status`.
//!
//! Both colors are servers of one backend; the live one is enabled, the other `disabled`. A
//! switch changes the running HAProxy's memory through its admin socket and writes this file
//! in the same exec, so a restarted proxy (container or host) serves what was live. Servers are
//! named by container name and re-resolved through Docker's DNS (`resolvers docker`), so a host
//! reboot that hands out new addresses still routes (within a second). `init-addr 127.0.0.1`:
//! HAProxy starts at once, without blocking on libc lookups (a name with no container is
//! forwarded by Docker's DNS to the host's resolvers, which can take many seconds), and every
//! server keeps an address family so the switch can set the container's address at run time;
//! deckhand sets the live one right after it starts a proxy. `hold nx` is long: a stopped color keeps its last address
//! (and stays switchable) instead of going into resolution maintenance.
//!
//! Each request is logged as `%Ts %s %ST %Ta %HP` (epoch, server, status, active time, path
//! without the query string, which may hold secrets) into an in-memory ring read by
//! `state::traffic` and the watch window; nothing goes to Docker's log.
//!
//! A canary (issue 13) has both servers enabled with weights, and a `# deckhand-canary:` line
//! naming the canary; the route line then names the stable color.

use std::sync::LazyLock;

use regex::Regex;

use super::Color;
use super::contract::{COLOR_HEADER, PROXY_BACKEND, PROXY_TIMINGS_RING, app_container};
use crate::config::Service;

/// What the proxy routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRoute {
    pub color: Color,
    pub sha: String,
}

/// Size of the timing ring: about 20 000 requests (25 bytes each), a full minute up to ~350
/// requests per second; above that `traffic` says how many seconds it covers.
pub const TIMINGS_RING_BYTES: usize = 524_288;

/// A canary: the share of requests the proxy sends to a second color.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Canary {
    pub color: Color,
    pub sha: String,
    /// 1..=99.
    pub percent: u8,
}

/// Renders the config that sends all traffic to `route.color`.
pub fn render(service: &Service, route: &ProxyRoute) -> String {
    render_with(service, route, None)
}

/// Renders the config of a canary: `canary.percent` % of requests to `canary.color`, the rest
/// to `stable.color`.
pub fn render_canary(service: &Service, stable: &ProxyRoute, canary: &Canary) -> String {
    render_with(service, stable, Some(canary))
}

fn render_with(service: &Service, route: &ProxyRoute, canary: Option<&Canary>) -> String {
    let server = |c: Color| {
        let tail = match canary {
            Some(k) if k.color == c => format!(" weight {}", k.percent),
            Some(k) => format!(" weight {}", 100 - k.percent),
            None if c == route.color => String::new(),
            None => " disabled".into(),
        };
        format!(
            "    server {c} {host}:{port} resolvers docker resolve-prefer ipv4 init-addr 127.0.0.1{tail}",
            host = app_container(service, c),
            port = service.app_port,
        )
    };
    let canary_line = canary.map_or(String::new(), |k| {
        format!(
            "# deckhand-canary: color={} sha={} percent={}\n",
            k.color, k.sha, k.percent
        )
    });
    format!(
        r#"# Written by deckhand. Do not edit: every switch rewrites this file and the running
# proxy's memory together (no reload).
# deckhand-route: service={service} color={color} sha={sha}
{canary_line}global
    stats socket /run/haproxy/admin.sock mode 600 level admin
    stats timeout 10s
    hard-stop-after 5s
    maxconn 4096

ring {ring}
    format raw
    size {ring_size}
    maxlen 128

resolvers docker
    nameserver docker 127.0.0.11:53
    hold valid 2s
    hold nx 24h
    hold timeout 24h
    hold refused 24h
    hold other 24h
    timeout resolve 1s
    timeout retry 1s

defaults
    mode http
    # Proxy and app share a bridge on one host: a connect that takes a second is to a color
    # whose container is gone (a stopped container keeps its last address, see `hold nx`).
    timeout connect 1s
    retries 2
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
    http-response set-header {header} %[srv_name]
{blue}
{green}
"#,
        service = service.name,
        color = route.color,
        sha = route.sha,
        header = COLOR_HEADER,
        ring = PROXY_TIMINGS_RING,
        ring_size = TIMINGS_RING_BYTES,
        backend = PROXY_BACKEND,
        blue = server(Color::Blue),
        green = server(Color::Green),
    )
}

static ROUTE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^# deckhand-route: service=(\S+) color=(blue|green) sha=(\S+)$")
        .expect("static regex")
});
static CANARY_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^# deckhand-canary: color=(blue|green) sha=(\S+) percent=(\d+)$")
        .expect("static regex")
});
static HAPROXY_SERVER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*server\s+(blue|green)\s+([A-Za-z0-9_.-]+?)-(blue|green):(\d+)(.*)$")
        .expect("static regex")
});
static NGINX_UPSTREAM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*server\s+([A-Za-z0-9_.-]+?)-(blue|green):(\d+)").expect("static regex")
});

/// Reads the live route from a config (HAProxy's, or the earlier nginx proxy's). The server
/// lines are the truth (they are what the proxy routes by); the comment only adds the SHA. A
/// config whose comment disagrees with its servers, e.g. after a hand edit, yields the
/// servers' color and no SHA. A HAProxy config with both or neither color enabled has no route.
pub fn parse(service: &Service, conf: &str) -> Option<(Color, Option<String>)> {
    let color = parse_haproxy(service, conf).or_else(|| parse_nginx(service, conf))?;
    let sha = ROUTE_LINE.captures(conf).and_then(|c| {
        (&c[1] == service.name.as_str() && Color::parse(&c[2]) == Some(color))
            .then(|| c[3].to_string())
    });
    Some((color, sha))
}

/// The canary a config describes, if it is one (both servers enabled and a canary line).
pub fn parse_canary(service: &Service, conf: &str) -> Option<Canary> {
    let c = CANARY_LINE.captures(conf)?;
    let canary = Canary {
        color: Color::parse(&c[1])?,
        sha: c[2].to_string(),
        percent: c[3].parse::<u8>().ok().filter(|p| (1..=99).contains(p))?,
    };
    (enabled_servers(service, conf).len() == 2).then_some(canary)
}

fn enabled_servers(service: &Service, conf: &str) -> Vec<Color> {
    HAPROXY_SERVER
        .captures_iter(conf)
        .filter(|c| &c[2] == service.name.as_str() && c[1] == c[3])
        .filter(|c| !c[5].split_whitespace().any(|w| w == "disabled"))
        .filter_map(|c| Color::parse(&c[1]))
        .collect()
}

fn parse_haproxy(service: &Service, conf: &str) -> Option<Color> {
    // A canary's route is its stable color.
    if let Some(k) = parse_canary(service, conf) {
        return Some(k.color.other());
    }
    let enabled: Vec<Color> = HAPROXY_SERVER
        .captures_iter(conf)
        .filter(|c| &c[2] == service.name.as_str() && c[1] == c[3])
        .filter(|c| !c[5].split_whitespace().any(|w| w == "disabled"))
        .filter_map(|c| Color::parse(&c[1]))
        .collect();
    match enabled.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

fn parse_nginx(service: &Service, conf: &str) -> Option<Color> {
    let upstream = NGINX_UPSTREAM
        .captures_iter(conf)
        .find(|c| &c[1] == service.name.as_str())?;
    Color::parse(&upstream[2])
}

/// Whether a config is the earlier nginx proxy's (`nginx.conf`), not HAProxy's.
pub fn is_nginx_conf(conf: &str) -> bool {
    conf.contains("upstream deckhand_live") || conf.contains("proxy_pass")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn svc() -> Service {
        let c = load_str(
            "[[service]]\nname=\"api\"\nimage=\"acme/api\"\n[env.dev]\nhosts=[\"local\"]\n",
            std::path::Path::new("t.toml"),
        )
        .expect("valid");
        c.services[0].clone()
    }

    #[test]
    fn render_then_parse_round_trips() {
        let s = svc();
        for color in Color::BOTH {
            let conf = render(
                &s,
                &ProxyRoute {
                    color,
                    sha: "abc1234".into(),
                },
            );
            assert!(conf.contains(&format!("server {color} api-{color}:3000 ")));
            assert!(conf.contains(&format!(
                "server {o} api-{o}:3000 resolvers docker resolve-prefer ipv4 init-addr 127.0.0.1 disabled",
                o = color.other()
            )));
            assert_eq!(parse(&s, &conf), Some((color, Some("abc1234".into()))));
        }
    }

    #[test]
    fn a_canary_keeps_the_stable_route_and_names_its_share() {
        let s = svc();
        let stable = ProxyRoute {
            color: Color::Blue,
            sha: "a000001".into(),
        };
        let k = Canary {
            color: Color::Green,
            sha: "a000002".into(),
            percent: 25,
        };
        let conf = render_canary(&s, &stable, &k);
        assert!(conf.contains("server green api-green:3000 resolvers docker resolve-prefer ipv4 init-addr 127.0.0.1 weight 25\n"));
        assert!(conf.contains("init-addr 127.0.0.1 weight 75\n"));
        assert!(!conf.contains("disabled"));
        assert_eq!(
            parse(&s, &conf),
            Some((Color::Blue, Some("a000001".into())))
        );
        assert_eq!(parse_canary(&s, &conf), Some(k));
        assert_eq!(parse_canary(&s, &render(&s, &stable)), None);
    }

    #[test]
    fn a_hand_edited_server_line_wins_over_the_comment() {
        let s = svc();
        let conf = render(
            &s,
            &ProxyRoute {
                color: Color::Blue,
                sha: "abc1234".into(),
            },
        );
        let swapped: String = conf
            .lines()
            .map(|l| {
                if l.contains("server blue") {
                    format!("{l} disabled\n")
                } else if l.contains("server green") {
                    format!("{}\n", l.replace(" disabled", ""))
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert_eq!(parse(&s, &swapped), Some((Color::Green, None)));
        let both = conf.replace(" disabled", "");
        assert_eq!(parse(&s, &both), None, "both enabled: no single route");
    }

    #[test]
    fn the_earlier_nginx_config_still_parses_and_is_recognised() {
        let s = svc();
        let nginx = "# deckhand-route: service=api color=green sha=abc1234\nhttp {\n  upstream deckhand_live {\n    server api-green:3000 max_fails=0;\n  }\n  server { location / { proxy_pass http://deckhand_live; } }\n}\n";
        assert_eq!(
            parse(&s, nginx),
            Some((Color::Green, Some("abc1234".into())))
        );
        assert!(is_nginx_conf(nginx));
        let ours = render(
            &s,
            &ProxyRoute {
                color: Color::Blue,
                sha: "x".into(),
            },
        );
        assert!(!is_nginx_conf(&ours));
    }

    #[test]
    fn foreign_configs_have_no_route() {
        assert_eq!(
            parse(&svc(), "events {}\nhttp { server { listen 80; } }"),
            None
        );
    }
}
