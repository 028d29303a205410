//! `deckhand status`: what each host runs, as a table or the documented JSON.

use color_eyre::eyre::Result;

use super::output::Table;
use super::{Context, OutputFormat};
use crate::exit;
use crate::state::{Color, EnvStatus, HostStatus, ServiceStatus, read_env_timed};
use crate::util::{format_age, format_bytes};

pub async fn run(ctx: &Context, timings: bool) -> Result<i32> {
    let (status, cost) = read_env_timed(&ctx.env, &ctx.services).await;
    if timings {
        // On stderr: the table and the documented JSON on stdout stay as they are.
        for (h, t) in status.hosts.iter().zip(&cost) {
            match t {
                Some(t) => eprintln!(
                    "{}: read in {} ms (connect {} ms), {}",
                    h.name, h.read_ms, t.connect_ms, t.trips
                ),
                None => eprintln!("{}: unreachable after {} ms", h.name, h.read_ms),
            }
        }
    }
    match ctx.global.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        // Labels, health answers and errors are the hosts' words: shown, never emitted raw.
        OutputFormat::Table => print!(
            "{}",
            crate::sanitize::for_terminal(&render_table(&status, chrono::Utc::now().timestamp()))
        ),
    }
    Ok(exit_code(&status))
}

/// 4 when a host is unreachable, 5 when a live color is unhealthy or missing, else 0.
pub fn exit_code(status: &EnvStatus) -> i32 {
    if status.hosts.iter().any(|h| !h.reachable) {
        exit::UNREACHABLE
    } else if status
        .hosts
        .iter()
        .any(|h| h.error.is_some() || h.services.iter().any(|s| !s.problems.is_empty()))
    {
        exit::UNHEALTHY
    } else {
        exit::OK
    }
}

pub fn render_table(status: &EnvStatus, now: i64) -> String {
    let mut out = format!(
        "env {}: {} host{}\n\n",
        status.env,
        status.hosts.len(),
        if status.hosts.len() == 1 { "" } else { "s" }
    );
    let mut t = Table::new([
        "HOST", "SERVICE", "LIVE", "BLUE", "GREEN", "PROXY", "VERDICT",
    ]);
    for h in &status.hosts {
        if !h.reachable {
            t.row([h.name.as_str(), "-", "-", "-", "-", "-", "UNREACHABLE"]);
            continue;
        }
        for s in &h.services {
            t.row([
                h.name.clone(),
                s.name.clone(),
                live_cell(s),
                color_cell(s, Color::Blue),
                color_cell(s, Color::Green),
                proxy_cell(s),
                if s.problems.is_empty() {
                    "ok".into()
                } else {
                    "PROBLEM".into()
                },
            ]);
        }
    }
    out.push_str(&t.render(""));
    for h in &status.hosts {
        for s in &h.services {
            out.push_str(&proxy_lines(&h.name, s));
        }
    }
    for h in &status.hosts {
        out.push_str(&host_details(h, now));
    }
    out
}

fn live_cell(s: &ServiceStatus) -> String {
    let live = match (s.live_color, &s.live_sha) {
        (Some(c), Some(sha)) => format!("{c} {}", short(sha)),
        (Some(c), None) => c.to_string(),
        _ => "-".into(),
    };
    match &s.settling {
        Some(n) => format!("{live}, {n}"),
        None => live,
    }
}

fn color_cell(s: &ServiceStatus, color: Color) -> String {
    let Some(c) = s.color(color) else {
        return "-".into();
    };
    let mut cell = format!(
        "{} {}",
        c.state.as_str(),
        c.sha.as_deref().map_or("?", short)
    );
    if let Some(h) = &c.health {
        cell.push_str(if h.is_healthy() {
            " healthy"
        } else {
            " UNHEALTHY"
        });
        if h.is_healthy() {
            cell.push_str(&format!(" {}ms", h.latency_ms));
        }
    }
    if s.live_color == Some(color.other()) && c.state.as_str() == "exited" {
        cell.push_str(" (rollback)");
    }
    cell
}

/// The proxy's note (it differs from the config) and each color's traffic over the window.
fn proxy_lines(host: &str, s: &ServiceStatus) -> String {
    let mut out = String::new();
    if let Some(d) = &s.proxy.drift {
        out.push_str(&format!("{host} {}: {d}\n", s.name));
    }
    if let Some(t) = &s.traffic {
        let colors: Vec<String> = t
            .colors
            .iter()
            .filter(|(_, c)| c.in_rotation || c.requests > 0)
            .map(|(color, c)| {
                let ms = |v: Option<u64>| v.map_or("-".to_string(), |v| format!("{v}ms"));
                format!(
                    "{color} {} req/s, 2xx {} 4xx {} 5xx {}, p50 {} p99 {}",
                    c.req_per_s,
                    c.status_2xx,
                    c.status_4xx,
                    c.status_5xx,
                    ms(c.p50_ms),
                    ms(c.p99_ms)
                )
            })
            .collect();
        if !colors.is_empty() {
            out.push_str(&format!(
                "{host} {} traffic (last {}s): {}\n",
                s.name,
                t.window_s,
                colors.join("; ")
            ));
        }
    }
    out
}

fn proxy_cell(s: &ServiceStatus) -> String {
    if !s.proxy.exists {
        return "absent".into();
    }
    let state = if s.proxy.running {
        "running"
    } else {
        "STOPPED"
    };
    match s.proxy.public_port {
        Some(p) => format!("{state} :{p}"),
        None => state.into(),
    }
}

fn short(sha: &str) -> &str {
    if sha.len() > 12 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        &sha[..7]
    } else {
        sha
    }
}

fn host_details(h: &HostStatus, now: i64) -> String {
    let mut out = format!("\n{}", h.name);
    if !h.reachable {
        out.push_str(&format!(
            ": unreachable\n  {}\n",
            h.error
                .as_deref()
                .unwrap_or("unknown error")
                .replace('\n', "\n  ")
        ));
        return out;
    }
    if let Some(f) = &h.facts {
        let mut parts = Vec::new();
        if let Some(v) = &f.docker_version {
            parts.push(format!("docker {v}"));
        }
        if let (Some(t), Some(a)) = (f.mem_total_bytes, f.mem_available_bytes)
            && t > 0
        {
            parts.push(format!(
                "memory {:.0}% of {}",
                (t - a.min(t)) as f64 * 100.0 / t as f64,
                format_bytes(t)
            ));
        }
        if let Some(d) = &f.disk_root {
            parts.push(format!("disk / {:.0}%", d.percent));
        }
        if let Some(l) = f.load_average {
            parts.push(format!("load {:.2}", l[0]));
        }
        out.push_str(&format!(" ({})", parts.join(", ")));
    }
    out.push_str(&format!(", read in {}ms\n", h.read_ms));
    if let Some(e) = &h.error {
        out.push_str(&format!("  error: {e}\n"));
    }
    out.push_str(&super::swarm_status::render(h));
    for s in &h.services {
        out.push_str(&format!("  {}:\n", s.name));
        for p in &s.problems {
            out.push_str(&format!("    problem: {p}\n"));
        }
        for color in Color::BOTH {
            if let Some(c) = s.color(color) {
                let live = if s.live_color == Some(color) {
                    " LIVE"
                } else {
                    ""
                };
                let by = match (&c.deployed_by, &c.deployed_at) {
                    (Some(b), Some(a)) => format!(", deployed {a} by {b}"),
                    _ => String::new(),
                };
                let health = c
                    .health
                    .as_ref()
                    .map(|h| {
                        let deps: Vec<String> =
                            h.services.iter().map(|(k, v)| format!("{k} {v}")).collect();
                        if deps.is_empty() {
                            format!(", /health: {}", h.summary())
                        } else {
                            format!(", /health: {} [{}]", h.summary(), deps.join(", "))
                        }
                    })
                    .unwrap_or_default();
                out.push_str(&format!(
                    "    {color}{live}: {} {}{by}{health}\n",
                    c.state.as_str(),
                    c.image
                ));
            }
        }
        if !s.images.is_empty() {
            let mut t = Table::new(["IMAGE TAG", "AGE", "SIZE", "IN USE", "PROTECTED"]);
            for i in &s.images {
                t.row([
                    i.tag.clone(),
                    format_age(now - i.created_unix),
                    format_bytes(i.size_bytes),
                    i.in_use_by.map_or_else(|| "-".into(), |c| c.to_string()),
                    if i.protected {
                        "yes".into()
                    } else {
                        "-".into()
                    },
                ]);
            }
            out.push_str(&t.render("    "));
        }
    }
    out
}
