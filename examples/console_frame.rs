//! Draw time of the console with many hosts: the fleet view and a host view of an environment
//! of `--hosts` hosts (default 50), each with the console tests' service (blue live, green
//! kept, traffic, health), drawn `--frames` times on ratatui's TestBackend (the same `ui::draw`
//! the terminal gets). Prints median, p90 and max per view. scripts/bench-console.py runs it.
//!
//!     cargo run --release --example console_frame -- --hosts 50 --frames 200

use std::time::{Duration, Instant};

use deckhand::release::runner::EnvInfo;
use deckhand::state::{Color, ColorTraffic, ServiceTraffic};
use deckhand::tui::app::App;
use deckhand::tui::model::HostUpdate;
use deckhand::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

#[allow(dead_code)]
#[path = "../tests/tui/fixtures.rs"]
mod fixtures;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn traffic(live: Color) -> ServiceTraffic {
    let c = |on: bool| ColorTraffic {
        in_rotation: on,
        requests: if on { 1200 } else { 0 },
        req_per_s: if on { 20.0 } else { 0.0 },
        status_2xx: if on { 1190 } else { 0 },
        status_5xx: if on { 10 } else { 0 },
        error_5xx_percent: on.then_some(0.8),
        p50_ms: on.then_some(4),
        p99_ms: on.then_some(40),
        ..Default::default()
    };
    ServiceTraffic {
        at: 1,
        window_s: 60,
        colors: [(live, c(true)), (live.other(), c(false))].into(),
        unrouted: 0,
    }
}

fn time_frames(app: &App, frames: usize, w: u16, h: u16) -> Vec<Duration> {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
    (0..frames)
        .map(|_| {
            let t = Instant::now();
            term.draw(|f| deckhand::tui::ui::draw(f, app))
                .expect("draw");
            t.elapsed()
        })
        .collect()
}

fn report(what: &str, mut d: Vec<Duration>) {
    d.sort();
    let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: median {:.2} ms, p90 {:.2} ms, max {:.2} ms ({} frames)",
        at(0.5).as_secs_f64() * 1000.0,
        at(0.9).as_secs_f64() * 1000.0,
        d[d.len() - 1].as_secs_f64() * 1000.0,
        d.len()
    );
}

fn main() {
    let hosts = arg("--hosts", 50).max(1);
    let frames = arg("--frames", 200).max(1);
    let names: Vec<String> = (1..=hosts).map(|i| format!("droplet-{i:02}")).collect();
    let env = EnvInfo {
        name: "prod".into(),
        protected: true,
        read_only: false,
        hosts: names.clone(),
    };
    let mut app = App::new(vec![env], "prod", vec![fixtures::service()], false);
    app.set_theme(Theme { color: true });
    let t0 = Instant::now();
    app.set_clock(t0, fixtures::NOW);
    // A minute of samples per host, as a console that has run for a while holds them.
    for round in 0..12u64 {
        for name in &names {
            let mut svc = fixtures::service_status("a000003", "a000002");
            svc.traffic = Some(ServiceTraffic {
                at: round,
                ..traffic(Color::Blue)
            });
            if let Some(Some(b)) = svc.colors.get_mut(&Color::Blue) {
                b.health = Some(fixtures::health(3 + round % 5));
            }
            let snap = fixtures::snapshot(fixtures::host_status(name, svc));
            let epoch = app.epoch();
            app.on_msg(deckhand::tui::app::Msg::Host {
                epoch,
                host: name.clone(),
                update: HostUpdate::Snapshot(Box::new(snap)),
            });
        }
    }
    app.set_clock(t0 + Duration::from_secs(1), fixtures::NOW + 1);
    let (w, h) = (200, (hosts as u16).saturating_add(12).max(40));
    if std::env::args().any(|a| a == "--show") {
        let mut term = Terminal::new(TestBackend::new(w, h)).expect("test terminal");
        term.draw(|f| deckhand::tui::ui::draw(f, &app))
            .expect("draw");
        println!("{}", term.backend());
    }
    println!("{hosts} hosts, {w}x{h} cells:");
    report("fleet view", time_frames(&app, frames, w, h));
    app.on_key(fixtures::code(crossterm::event::KeyCode::Enter));
    report("host view", time_frames(&app, frames, w, h));
}
