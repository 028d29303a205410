//! The console during a canary (issue 13): the header says so, both colors' error rates are
//! drawn side by side, `P` promotes and `A` aborts, each behind the confirm dialog.

use crossterm::event::KeyCode;
use deckhand::release::plan::Target;
use deckhand::release::runner::Verb;
use deckhand::state::proxy_conf::Canary;
use deckhand::state::{Color, ColorTraffic, ContainerState, ServiceTraffic};
use deckhand::tui::app::{Dialog, Effect};
use deckhand::tui::model::HostUpdate;

use crate::fixtures::*;

fn traffic(req: u64, errors: u64, p99: u64) -> ColorTraffic {
    ColorTraffic {
        in_rotation: true,
        requests: req,
        req_per_s: req as f64 / 60.0,
        status_2xx: req - errors,
        status_5xx: errors,
        error_5xx_percent: Some((errors as f64 * 1000.0 / req as f64).round() / 10.0),
        p50_ms: Some(3),
        p99_ms: Some(p99),
        ..Default::default()
    }
}

fn canary_app() -> deckhand::tui::app::App {
    let (mut app, _) = app();
    let mut s = service_status("a000003", "a000004");
    if let Some(Some(g)) = s.colors.get_mut(&Color::Green) {
        *g = color(ContainerState::Running, "a000004", 60);
    }
    s.canary = Some(Canary {
        color: Color::Green,
        sha: "a000004".into(),
        percent: 25,
    });
    s.settling = s.compute_settling();
    s.traffic = Some(ServiceTraffic {
        at: 1_800_000_000,
        window_s: 60,
        colors: [
            (Color::Blue, traffic(900, 9, 40)),
            (Color::Green, traffic(300, 30, 55)),
        ]
        .into(),
        unrouted: 0,
    });
    feed(
        &mut app,
        "dev-1",
        HostUpdate::Snapshot(Box::new(snapshot(host_status("dev-1", s)))),
    );
    app
}

#[test]
fn the_host_view_says_canary_and_shows_both_colors_error_rates() {
    let mut app = canary_app();
    app.on_key(code(KeyCode::Enter));
    let screen = render(&app, 120, 30);
    assert!(screen.contains("canary 25 % (green a000004)"), "{screen}");
    assert!(screen.contains("5xx 1%, p99 40ms"), "{screen}");
    assert!(screen.contains("5xx 10%, p99 55ms"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn promote_and_abort_keys_open_their_dialogs() {
    let mut app = canary_app();
    let effects = app.on_key(key('P'));
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Plan { request, .. }] if request.verb == Verb::Promote { reference: "a000004".into() }
        ),
        "{effects:?}"
    );
    match app.dialog() {
        Some(Dialog::Confirm(c)) => {
            assert_eq!(c.request().title(), "Promote canary a000004 of api in dev");
            assert!(c.request().equivalent().starts_with("deckhand promote"));
        }
        other => panic!("expected the promote dialog, got {other:?}"),
    }
    app.on_key(code(KeyCode::Esc));
    assert!(app.dialog().is_none());
    let effects = app.on_key(key('A'));
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Plan { request, .. }]
                if request.verb == Verb::Rollback { target: Target::Previous }
        ),
        "{effects:?}"
    );
}

#[test]
fn without_a_canary_promote_and_abort_say_so() {
    let (mut app, _) = fleet_app();
    assert!(app.on_key(key('P')).is_empty());
    assert!(app.dialog().is_none());
    assert!(app.message().is_some_and(|m| m.contains("no canary")));
    assert!(app.on_key(key('A')).is_empty());
    assert!(app.dialog().is_none());
}
