//! deckhand-demo: a tiny HTTP service for deckhand's tests and demo.
//!
//! `GET /health` answers the spec's JSON (200 healthy / 503 unhealthy), `GET /` and
//! `GET /version` say which release this is, `POST /admin/{healthy,unhealthy}` flip health at
//! run time. Environment knobs make it slow to start, unhealthy or crash, for the failure paths
//! (see `config.rs`). `--healthcheck` is the Docker HEALTHCHECK of the `FROM scratch` image.

#![forbid(unsafe_code)]

mod app;
mod config;
mod healthcheck;
mod http;
mod server;
mod timefmt;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::app::App;
use crate::config::Config;
use crate::server::Shutdown;

/// In-flight requests get this long after SIGTERM (below Docker's default 10 s stop timeout,
/// so a clean drain still ends in exit 0 rather than SIGKILL).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);

/// One line per event on stdout (`docker logs`), prefixed with the time.
pub fn log(msg: &str) {
    if cfg!(test) {
        // Captured by the test harness (which a raw stdout handle would bypass).
        println!("{} deckhand-demo: {msg}", timefmt::now_rfc3339());
        return;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{} deckhand-demo: {msg}", timefmt::now_rfc3339());
    let _ = out.flush();
}

const USAGE: &str = "usage: deckhand-demo [--healthcheck | --version | --help]

Serves HTTP on 0.0.0.0:$PORT (default 3000): GET /health, GET /, GET /version,
POST /admin/unhealthy, POST /admin/healthy.

Environment: PORT, DEMO_VERSION (default dev), DEMO_START_DELAY_MS, DEMO_UNHEALTHY=1,
DEMO_EXIT_AFTER_MS (exit code 3), DEMO_RESPONSE_DELAY_MS (all but /health).

--healthcheck  GET http://127.0.0.1:$PORT/health; exit 0 on 200, else 1 (2 s timeout)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] => run(),
        ["--healthcheck"] => healthcheck::run(),
        ["--version" | "-V"] => {
            let v = std::env::var("DEMO_VERSION").unwrap_or_else(|_| "dev".into());
            println!("deckhand-demo {v} ({})", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["--help" | "-h"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> ExitCode {
    let cfg = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("deckhand-demo: {e}");
            return ExitCode::from(2);
        }
    };
    let shutdown = Arc::new(Shutdown::new());
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("deckhand-demo: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sd = Arc::clone(&shutdown);
    thread::spawn(move || {
        for sig in signals.forever() {
            let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
            if sd.request() {
                log(&format!(
                    "received {name}: no longer accepting, finishing requests in flight"
                ));
            } else {
                log(&format!("received {name} again: exiting now"));
                std::process::exit(1);
            }
        }
    });
    if let Some(after) = cfg.exit_after {
        thread::spawn(move || {
            thread::sleep(after);
            log(&format!(
                "exiting with code 3: DEMO_EXIT_AFTER_MS={}",
                after.as_millis()
            ));
            eprintln!(
                "deckhand-demo: DEMO_EXIT_AFTER_MS={} elapsed, exiting with code 3 (simulated crash)",
                after.as_millis()
            );
            std::process::exit(3);
        });
    }

    log(&format!(
        "starting version {} (pid {}, port {}{}{}{}{})",
        cfg.version,
        std::process::id(),
        cfg.port,
        knob(", start delay", cfg.start_delay),
        if cfg.unhealthy { ", unhealthy" } else { "" },
        cfg.exit_after
            .map(|d| knob(", exit after", d))
            .unwrap_or_default(),
        knob(", response delay", cfg.response_delay),
    ));
    if cfg.pages_fail {
        log("pages answer 500, /health stays healthy (DEMO_PAGES_FAIL)");
    }
    if !cfg.start_delay.is_zero() {
        log(&format!(
            "waiting {} ms before listening (DEMO_START_DELAY_MS)",
            cfg.start_delay.as_millis()
        ));
        if shutdown.wait_timeout(cfg.start_delay) {
            log("stopped before listening; exit 0");
            return ExitCode::SUCCESS;
        }
    }
    let addr = SocketAddr::from(([0, 0, 0, 0], cfg.port));
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("deckhand-demo: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut app = App::new(cfg.version.clone(), !cfg.unhealthy, cfg.response_delay);
    app.pages_fail = cfg.pages_fail;
    let app = Arc::new(app);
    log(&format!(
        "listening on {addr}, version {}, {}",
        cfg.version,
        if app.is_healthy() {
            "healthy"
        } else {
            "unhealthy"
        }
    ));
    match server::serve(listener, app, shutdown, DRAIN_TIMEOUT) {
        Ok(d) if d.abandoned == 0 => {
            log(&format!(
                "stopped after draining in {} ms; exit 0",
                d.took.as_millis()
            ));
            ExitCode::SUCCESS
        }
        Ok(d) => {
            log(&format!(
                "stopped; {} connection(s) still busy after {} s drain timeout; exit 0",
                d.abandoned,
                d.took.as_secs()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("deckhand-demo: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn knob(label: &str, d: Duration) -> String {
    if d.is_zero() {
        String::new()
    } else {
        format!("{label} {} ms", d.as_millis())
    }
}
