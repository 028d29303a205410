//! Hand-made host states for the console's pure tests: no Docker, no terminal.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use deckhand::config::{self, Service};
use deckhand::release::audit::AuditRecord;
use deckhand::release::runner::{HostReport, HostResult, NotAttempted, RunReport};
use deckhand::state::{
    Color, ColorStatus, ContainerState, HealthReport, HostFacts, HostStatus, ImageInfo,
    ProxyStatus, ServiceStatus,
};
use deckhand::transport::TransportError;
use deckhand::tui::app::{App, EnvInfo, Msg};
use deckhand::tui::model::{HostDown, HostUpdate, Snapshot};
use deckhand::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// 2026-11-22T10:00:00Z: the fixed "now" of every test.
pub const NOW: i64 = 1_795_341_600;

pub fn service() -> Service {
    let text = r#"
[[service]]
name = "api"
image = "registry.example.com/acme/api"
app_port = 3000
public_port = 3001
proxy_image = "nginx:stable-alpine"

[env.dev]
hosts = ["local"]
"#;
    let cfg = config::load_str(text, Path::new("/tmp/deckhand.toml")).expect("fixture config");
    cfg.services[0].clone()
}

pub fn envs() -> Vec<EnvInfo> {
    vec![
        EnvInfo {
            name: "dev".into(),
            protected: false,
            read_only: false,
            hosts: vec!["dev-1".into(), "dev-2".into()],
        },
        EnvInfo {
            name: "staging".into(),
            protected: true,
            read_only: false,
            hosts: vec!["staging-1".into()],
        },
    ]
}

fn at(secs_ago: i64) -> String {
    chrono::DateTime::from_timestamp(NOW - secs_ago, 0)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn health(latency_ms: u64) -> HealthReport {
    HealthReport {
        http_status: Some(200),
        status: Some("healthy".into()),
        latency_ms,
        uptime: Some(3600.0),
        services: BTreeMap::from([
            ("database".to_string(), "connected".to_string()),
            ("redis".to_string(), "connected".to_string()),
        ]),
        error: None,
        body: None,
    }
}

pub fn color(state: ContainerState, sha: &str, deployed_ago: i64) -> ColorStatus {
    ColorStatus {
        state,
        sha: Some(sha.into()),
        image: format!("registry.example.com/acme/api:{sha}"),
        container_id: format!("id{sha}"),
        deployed_at: Some(at(deployed_ago)),
        deployed_by: Some("ana@laptop".into()),
        started_at: Some(at(deployed_ago - 5)),
        finished_at: (state != ContainerState::Running).then(|| at(600)),
        exit_code: Some(0),
        docker_health: None,
        host_port: (state == ContainerState::Running).then_some(32768),
        health: (state == ContainerState::Running).then(|| health(3)),
    }
}

fn image(tag: &str, ago: i64, in_use: Option<Color>, protected: bool) -> ImageInfo {
    ImageInfo {
        tag: tag.into(),
        id: format!("sha256:{tag}"),
        created: at(ago),
        created_unix: NOW - ago,
        size_bytes: 12 * 1024 * 1024 + 1234,
        in_use_by: in_use,
        protected,
        also_tagged: Vec::new(),
    }
}

/// `api` with blue live on `live`, green stopped on `previous`.
pub fn service_status(live: &str, previous: &str) -> ServiceStatus {
    ServiceStatus {
        name: "api".into(),
        live_color: Some(Color::Blue),
        live_sha: Some(live.into()),
        proxy: ProxyStatus {
            exists: true,
            running: true,
            image: Some("nginx:stable-alpine".into()),
            public_port: Some(3001),
            upstream: Some("api-blue:3000".into()),
            kind: None,
            drift: None,
        },
        colors: BTreeMap::from([
            (
                Color::Blue,
                Some(color(ContainerState::Running, live, 3600)),
            ),
            (
                Color::Green,
                Some(color(ContainerState::Exited, previous, 7200)),
            ),
        ]),
        images: vec![
            image(live, 3700, Some(Color::Blue), false),
            image(previous, 7300, Some(Color::Green), false),
            image("a000001", 86_400, None, false),
            image("stable", 172_800, None, true),
        ],
        problems: Vec::new(),
        traffic: None,
        canary: None,
        settling: None,
    }
}

pub fn host_status(name: &str, svc: ServiceStatus) -> HostStatus {
    HostStatus {
        name: name.into(),
        reachable: true,
        error: None,
        facts: Some(HostFacts {
            docker_version: Some("20.10.24".into()),
            docker_api_version: Some("1.41".into()),
            docker_root: Some("/var/lib/docker".into()),
            mem_total_bytes: Some(2 * 1024 * 1024 * 1024),
            mem_available_bytes: Some(1024 * 1024 * 1024),
            disk_root: None,
            disk_docker: None,
            load_average: Some([0.1, 0.2, 0.3]),
        }),
        services: vec![svc],
        read_ms: 12,
        swarm: None,
    }
}

pub fn audit(n: usize) -> Vec<AuditRecord> {
    (0..n)
        .map(|i| AuditRecord {
            time: at(3600 * (n - i) as i64),
            actor: "ana@laptop".into(),
            env: "dev".into(),
            host: "dev-1".into(),
            service: "api".into(),
            action: if i % 2 == 0 { "deploy" } else { "rollback" }.into(),
            from_sha: Some(format!("a00000{i}")),
            to_sha: Some(format!("a00000{}", i + 1)),
            outcome: if i == 1 { "failed" } else { "success" }.into(),
            duration_ms: Some(4200),
            error: None,
            details: None,
            extra: Default::default(),
        })
        .collect()
}

pub fn snapshot(status: HostStatus) -> Snapshot {
    Snapshot {
        status,
        audit: Ok(audit(3)),
        locks: BTreeMap::from([("api".to_string(), Ok(None))]),
        ledgers: BTreeMap::from([("api".to_string(), Ok(Default::default()))]),
        monitor: None,
        fresh: None,
    }
}

/// A console on `dev` (two hosts), clock fixed, colors off (snapshots are text).
pub fn app() -> (App, Instant) {
    app_with(false)
}

/// [`app`], with `--read-only` as given.
pub fn app_with(read_only: bool) -> (App, Instant) {
    let mut app = App::new(envs(), "dev", vec![service()], read_only);
    app.set_theme(Theme { color: false });
    let t0 = Instant::now();
    app.set_clock(t0, NOW);
    (app, t0)
}

pub fn feed(app: &mut App, host: &str, update: HostUpdate) {
    let epoch = app.epoch();
    app.on_msg(Msg::Host {
        epoch,
        host: host.into(),
        update,
    });
}

/// dev-1 read with blue live (a000003) and green kept (a000002); dev-2 unreachable.
pub fn fleet_app() -> (App, Instant) {
    fleet_app_with(false)
}

/// [`fleet_app`], with `--read-only` as given.
pub fn fleet_app_with(read_only: bool) -> (App, Instant) {
    let (mut app, t0) = app_with(read_only);
    for lat in [3, 5, 4, 9, 3] {
        feed(
            &mut app,
            "dev-1",
            HostUpdate::Snapshot(Box::new(snapshot(host_status("dev-1", {
                let mut s = service_status("a000003", "a000002");
                if let Some(Some(b)) = s.colors.get_mut(&Color::Blue) {
                    b.health = Some(health(lat));
                }
                s
            })))),
        );
    }
    feed(
        &mut app,
        "dev-2",
        HostUpdate::Down {
            why: std::sync::Arc::new(HostDown::Connect(TransportError::Connect {
                host: "dev-2".into(),
                detail: "ssh: connect to host 203.0.113.7 port 22: Connection timed out".into(),
            })),
            retry_in: Duration::from_secs(5),
        },
    );
    app.set_clock(t0 + Duration::from_secs(2), NOW);
    (app, t0)
}

pub fn render(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    term.draw(|f| deckhand::tui::ui::draw(f, app))
        .expect("draw");
    term.backend().to_string()
}

pub fn key(c: char) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char(c),
        crossterm::event::KeyModifiers::NONE,
    )
}

pub fn code(c: crossterm::event::KeyCode) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::new(c, crossterm::event::KeyModifiers::NONE)
}

pub fn ctrl(c: char) -> crossterm::event::KeyEvent {
    crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char(c),
        crossterm::event::KeyModifiers::CONTROL,
    )
}

pub fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        app.on_key(key(c));
    }
}

/// The runner's report of a run that did everything on dev-1.
pub fn report_done(summary: &str) -> std::sync::Arc<RunReport> {
    std::sync::Arc::new(RunReport {
        trips: Vec::new(),
        title: "Roll back api in dev".into(),
        equivalent: "deckhand rollback --env dev --service api".into(),
        refused: None,
        hosts: vec![HostReport {
            host: "dev-1".into(),
            result: HostResult::Done {
                summary: summary.into(),
                duration_ms: 3100,
                outcome: None,
            },
            serves_now: None,
        }],
    })
}

/// The runner's report of a run that failed on dev-1 (dev-2 not attempted).
pub fn report_failed(e: deckhand::release::ReleaseError) -> std::sync::Arc<RunReport> {
    std::sync::Arc::new(RunReport {
        trips: Vec::new(),
        title: "Roll back api in dev".into(),
        equivalent: "deckhand rollback --env dev --service api".into(),
        refused: None,
        hosts: vec![
            HostReport {
                host: "dev-1".into(),
                result: HostResult::Failed {
                    error: std::sync::Arc::new(e.into()),
                },
                serves_now: None,
            },
            HostReport {
                host: "dev-2".into(),
                result: HostResult::NotAttempted {
                    why: NotAttempted::EarlierFailure,
                },
                serves_now: None,
            },
        ],
    })
}

/// The screen with the styles that carry meaning: every run of cells whose style is not the
/// default is written `«STYLE|text»` (STYLE: foreground, background, modifiers), so a snapshot
/// fails when LIVE stops being green and bold, the selection loses its reverse video, or a
/// failure stops being red. Colors on.
pub fn render_styled(app: &mut App, w: u16, h: u16) -> String {
    use ratatui::style::{Color as C, Modifier, Style};
    app.set_theme(Theme { color: true });
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    term.draw(|f| deckhand::tui::ui::draw(f, app))
        .expect("draw");
    app.set_theme(Theme { color: false });
    let buf = term.backend().buffer().clone();
    let name = |s: Style| {
        let mut parts = Vec::new();
        if let Some(fg) = s.fg.filter(|c| *c != C::Reset) {
            parts.push(format!("{fg:?}"));
        }
        if let Some(bg) = s.bg.filter(|c| *c != C::Reset) {
            parts.push(format!("on {bg:?}"));
        }
        for (m, label) in [
            (Modifier::BOLD, "bold"),
            (Modifier::DIM, "dim"),
            (Modifier::REVERSED, "reversed"),
            (Modifier::UNDERLINED, "underlined"),
        ] {
            if s.add_modifier.contains(m) {
                parts.push(label.to_string());
            }
        }
        parts.join(" ")
    };
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        let mut run: Option<(String, String)> = None;
        for x in 0..w {
            let cell = &buf[(x, y)];
            let style = name(cell.style());
            match &mut run {
                Some((s, text)) if *s == style => text.push_str(cell.symbol()),
                _ => {
                    if let Some((s, text)) = run.take() {
                        line.push_str(&if s.is_empty() {
                            text
                        } else {
                            format!("«{s}|{text}»")
                        });
                    }
                    run = Some((style, cell.symbol().to_string()));
                }
            }
        }
        if let Some((s, text)) = run {
            line.push_str(&if s.is_empty() {
                text
            } else {
                format!("«{s}|{text}»")
            });
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
