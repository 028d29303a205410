//! The console's parts: clamped scrolling, ages computed when drawn, the keymap as the one
//! source of keys and hints, a one-host environment's first screen, acting on one host.

use std::time::Duration;

use crossterm::event::KeyCode;
use deckhand::tui::app::{App, Effect, View};
use deckhand::tui::keymap::{self, KEYMAP, Scope};
use deckhand::tui::model::{AlertRow, AlertState, HostUpdate, MonitorSnapshot};

use crate::fixtures::*;

#[test]
fn a_pane_scrolls_no_further_than_its_content() {
    let (mut app, _) = fleet_app();
    app.on_key(code(KeyCode::Enter));
    app.on_key(key('2'));
    for _ in 0..50 {
        app.on_key(key('j'));
    }
    // Four images: the last one is the furthest the pane goes.
    assert_eq!(app.nav().pane_scroll(), 3);
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("stable"),
        "the last image stays in view:\n{screen}"
    );
    for _ in 0..50 {
        app.on_key(key('k'));
    }
    assert_eq!(app.nav().pane_scroll(), 0);
}

#[test]
fn alert_ages_move_with_the_clock_between_monitor_cycles() {
    let (mut app, t0) = fleet_app();
    let mut snap = snapshot(host_status("dev-1", service_status("a000003", "a000002")));
    snap.monitor = Some(MonitorSnapshot {
        metrics: Vec::new(),
        alerts: vec![
            AlertRow {
                name: "health".into(),
                state: AlertState::Firing { since: NOW - 120 },
                detail: "green: 503".into(),
            },
            AlertRow {
                name: "cpu".into(),
                state: AlertState::Pending {
                    fires_at: NOW + 100,
                },
                detail: "91 %".into(),
            },
        ],
    });
    feed(&mut app, "dev-1", HostUpdate::Snapshot(Box::new(snap)));
    app.on_key(code(KeyCode::Enter));
    app.on_key(key('3'));
    let before = render(&app, 100, 24);
    assert!(
        before.contains("(2m ago)") && before.contains("fires in 1m40s"),
        "{before}"
    );
    // A minute later, no new monitor cycle yet: the ages on screen still move.
    app.set_clock(t0 + Duration::from_secs(62), NOW + 60);
    let after = render(&app, 100, 24);
    assert!(
        after.contains("(3m ago)") && after.contains("fires in 40.0s"),
        "{after}"
    );
}

#[test]
fn every_footer_hint_is_a_key_of_the_keymap_that_does_what_it_says() {
    for scope in [
        Scope::Fleet,
        Scope::Host,
        Scope::Logs,
        Scope::Text,
        Scope::Dialog,
        Scope::Picker,
    ] {
        let hints = keymap::hints(scope, false);
        assert!(!hints.is_empty(), "{scope:?} has a footer");
        for (keys, word) in &hints {
            let b = KEYMAP
                .iter()
                .find(|b| b.hint == Some(*word) && keymap::scopes_for(scope).contains(&b.scope))
                .unwrap_or_else(|| panic!("hint `{keys} {word}` is not in the keymap"));
            // The first key of the binding dispatches to the binding's action in this scope.
            let ev = match b.keys[0] {
                keymap::K::Char(c) => key(c),
                keymap::K::Ctrl(c) => ctrl(c),
                keymap::K::Code(c) => code(c),
            };
            let got = keymap::lookup(scope, &ev, false);
            assert!(got.is_some(), "`{keys}` does nothing in {scope:?}");
        }
    }
    // Read-only: no footer offers what read-only refuses.
    let ro = keymap::hints(Scope::Fleet, true);
    assert!(
        !ro.iter()
            .any(|(_, w)| matches!(*w, "deploy" | "rollback" | "prune")),
        "{ro:?}"
    );
}

#[test]
fn a_one_host_environment_opens_on_that_host() {
    let mut app = App::new(envs(), "staging", vec![service()], false);
    assert_eq!(app.view(), View::Host, "both colors on the first screen");
    app.switch_env("dev");
    assert_eq!(app.view(), View::Fleet, "two hosts: the host list");
    app.switch_env("staging");
    assert_eq!(app.view(), View::Host);
}

#[test]
fn an_action_can_target_the_selected_host_only() {
    let (mut app, _) = fleet_app();
    let effects = app.on_key(key('r'));
    let [Effect::Plan { request, .. }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert_eq!(request.hosts, ["dev-1", "dev-2"]);
    assert!(request.all_hosts);
    // Ctrl-A in the dialog: the selected host only, planned again.
    let effects = app.on_key(ctrl('a'));
    let [Effect::Plan { request, .. }] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert_eq!(request.hosts, ["dev-1"]);
    assert!(!request.all_hosts);
    assert_eq!(
        request.equivalent(),
        "deckhand rollback --env dev --service api --host dev-1"
    );
    let screen = render(&app, 80, 24);
    assert!(screen.contains("dev-1  (selected host only)"), "{screen}");
    // And back to every host.
    let effects = app.on_key(ctrl('a'));
    assert!(
        matches!(effects.as_slice(), [Effect::Plan { request, .. }] if request.all_hosts),
        "{effects:?}"
    );
}
