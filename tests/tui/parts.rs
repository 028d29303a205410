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

#[test]
fn the_rollback_target_and_the_picker_marks_come_from_the_ledger() {
    use deckhand::release::ledger::{Ending, Ledger, Release};
    use deckhand::state::Color;
    let (mut app, _) = fleet_app();
    let rel = |sha: &str, color, hour: u32, ended| Release {
        sha: sha.into(),
        color,
        since: format!("2026-12-01T0{hour}:00:00Z"),
        by: "ana@laptop".into(),
        action: "deploy".into(),
        until: None,
        ended,
        healthy: true,
        reconciled: false,
    };
    // a000001 served well; a000002 (still in the kept green container) was rolled back from.
    let ledger = Ledger {
        releases: vec![
            rel("a000001", Color::Green, 1, Some(Ending::Replaced)),
            rel("a000002", Color::Green, 2, Some(Ending::RolledBack)),
            rel("a000003", Color::Blue, 3, None),
        ],
    };
    let mut snap = snapshot(host_status("dev-1", service_status("a000003", "a000002")));
    snap.ledgers.insert("api".into(), Ok(ledger));
    feed(&mut app, "dev-1", HostUpdate::Snapshot(Box::new(snap)));
    // The kept idle container is not the target: the ledger's last good release is, and its
    // container is gone (the rollback recreates it from the retained image).
    assert_eq!(
        app.hosts()[0].rollback_target("api"),
        Some((None, "a000001".to_string()))
    );
    let screen = render(&app, 120, 24);
    assert!(screen.contains("↺a000001"), "{screen}");
    assert!(!screen.contains("↺a000002"), "{screen}");

    app.on_key(key('d'));
    let screen = render(&app, 140, 30);
    let row = |sha: &str| {
        screen
            .lines()
            .find(|l| l.contains(sha) && l.contains(" MiB "))
            .unwrap_or_else(|| panic!("no picker row for {sha}:\n{screen}"))
            .to_string()
    };
    assert!(row("a000001").contains("✓ good"), "{screen}");
    assert!(row("a000002").contains("✗ backed out"), "{screen}");
    assert!(!row("a000003").contains("backed out"), "{screen}");
}
