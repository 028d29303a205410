//! The proxy's complete `nginx.conf`: written by the release engine, read back by `status`.
//!
//! deckhand owns the whole file so any nginx image works (official, Alpine, Debian-based): temp
//! paths and logs are set explicitly. The `pid` directive is deliberately absent: a reload that
//! changes the pid path makes nginx delete its pid file, and the next `nginx -s reload` fails;
//! every image's compiled-in default is consistent with itself.

use std::sync::LazyLock;

use regex::Regex;

use super::Color;
use super::contract::COLOR_HEADER;
use crate::config::Service;

/// What the proxy routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRoute {
    pub color: Color,
    pub sha: String,
}

/// Renders the config that sends all traffic to `route.color`.
pub fn render(service: &Service, route: &ProxyRoute) -> String {
    let upstream = format!("{}-{}:{}", service.name, route.color, service.app_port);
    format!(
        r#"# Written by deckhand. Do not edit: the next deploy or rollback replaces this file.
# deckhand-route: service={service} color={color} sha={sha}
worker_processes auto;
error_log /dev/stderr warn;

events {{
    worker_connections 2048;
}}

http {{
    access_log off;
    client_body_temp_path /tmp/nginx-client-body;
    proxy_temp_path /tmp/nginx-proxy;
    fastcgi_temp_path /tmp/nginx-fastcgi;
    uwsgi_temp_path /tmp/nginx-uwsgi;
    scgi_temp_path /tmp/nginx-scgi;
    server_tokens off;
    keepalive_timeout 65s;

    upstream deckhand_live {{
        server {upstream} max_fails=0;
        keepalive 32;
    }}

    server {{
        listen 80 default_server;

        location / {{
            proxy_pass http://deckhand_live;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 5s;
            proxy_read_timeout 60s;
            proxy_next_upstream error timeout;
            add_header {header} {color} always;
            add_header X-Deckhand-Sha {sha} always;
        }}
    }}
}}
"#,
        service = service.name,
        color = route.color,
        sha = route.sha,
        header = COLOR_HEADER,
    )
}

static ROUTE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^# deckhand-route: service=(\S+) color=(blue|green) sha=(\S+)$")
        .expect("static regex")
});
static UPSTREAM_SERVER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^\s*server\s+([A-Za-z0-9_.-]+?)-(blue|green):(\d+)").expect("static regex")
});

/// Reads the live route from a config. The `upstream` line is the truth (it is what nginx
/// routes by); the comment only adds the SHA. A config whose comment disagrees with its
/// upstream, e.g. after a hand edit, yields the upstream's color and no SHA.
pub fn parse(service: &Service, conf: &str) -> Option<(Color, Option<String>)> {
    let upstream = UPSTREAM_SERVER
        .captures_iter(conf)
        .find(|c| &c[1] == service.name.as_str())?;
    let color = Color::parse(&upstream[2])?;
    let sha = ROUTE_LINE.captures(conf).and_then(|c| {
        (&c[1] == service.name.as_str() && Color::parse(&c[2]) == Some(color))
            .then(|| c[3].to_string())
    });
    Some((color, sha))
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
            assert!(conf.contains(&format!("server api-{color}:3000")));
            assert_eq!(parse(&s, &conf), Some((color, Some("abc1234".into()))));
        }
    }

    #[test]
    fn a_hand_edited_upstream_wins_over_the_comment() {
        let s = svc();
        let conf = render(
            &s,
            &ProxyRoute {
                color: Color::Blue,
                sha: "abc1234".into(),
            },
        )
        .replace("server api-blue:3000", "server api-green:3000");
        assert_eq!(parse(&s, &conf), Some((Color::Green, None)));
    }

    #[test]
    fn foreign_configs_have_no_route() {
        assert_eq!(
            parse(&svc(), "events {}\nhttp { server { listen 80; } }"),
            None
        );
    }
}
