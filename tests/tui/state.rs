//! State transitions of the console: keys and messages in, state and effects out.

use std::time::Duration;

use crossterm::event::KeyCode;
use deckhand::release::plan::Target;
use deckhand::release::runner::{HostPlan, Verb};
use deckhand::release::{Event, Step};
use deckhand::state::Color;
use deckhand::tui::action::StepState;
use deckhand::tui::app::{Button, Dialog, Effect, LOG_CAPACITY, Msg, Pane, View};
use deckhand::tui::keymap;
use deckhand::tui::model::{HostUpdate, LATENCY_SAMPLES};

use crate::fixtures::*;
use crate::views::rollback_plan;

fn confirm(app: &deckhand::tui::app::App) -> &deckhand::tui::app::Confirm {
    match app.dialog() {
        Some(Dialog::Confirm(c)) => c,
        other => panic!("expected a confirm dialog, got {other:?}"),
    }
}

fn ready(app: &mut deckhand::tui::app::App) {
    let id = confirm(app).id();
    app.on_msg(Msg::Plan {
        id,
        result: Ok(vec![HostPlan::Release(rollback_plan())]),
    });
}

#[test]
fn rollback_asks_with_focus_on_cancel_and_enter_cancels() {
    let (mut app, _) = fleet_app();
    let effects = app.on_key(key('r'));
    assert!(matches!(
        effects.as_slice(),
        [Effect::Plan {
            request,
            ..
        }] if request.verb == Verb::Rollback { target: Target::Previous }
    ));
    ready(&mut app);
    assert_eq!(confirm(&app).focus(), Button::Cancel);
    assert!(confirm(&app).armed());
    let effects = app.on_key(code(KeyCode::Enter));
    assert!(effects.is_empty(), "Enter on Cancel does nothing but close");
    assert!(app.dialog().is_none());
    assert!(app.progress().is_empty());
}

#[test]
fn esc_always_cancels() {
    let (mut app, _) = fleet_app();
    app.on_key(key('r'));
    app.on_key(code(KeyCode::Esc));
    assert!(app.dialog().is_none());
    app.on_key(key('d'));
    typed(&mut app, "a0");
    assert!(matches!(app.dialog(), Some(Dialog::Picker(_))));
    app.on_key(code(KeyCode::Esc));
    assert!(app.dialog().is_none());
    app.on_key(key('r'));
    ready(&mut app);
    app.on_key(code(KeyCode::Tab));
    assert_eq!(confirm(&app).focus(), Button::Confirm);
    app.on_key(code(KeyCode::Esc));
    assert!(app.dialog().is_none() && app.progress().is_empty());
}

#[test]
fn confirming_starts_the_action_and_shows_progress() {
    let (mut app, _) = fleet_app();
    app.on_key(key('r'));
    ready(&mut app);
    app.on_key(code(KeyCode::Right));
    let effects = app.on_key(code(KeyCode::Enter));
    let id = match effects.as_slice() {
        [Effect::Execute { id, request }] => {
            assert_eq!(request.service.name, "api");
            assert_eq!(request.hosts, ["dev-1".to_string(), "dev-2".to_string()]);
            *id
        }
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(app.view(), View::Host);
    assert_eq!(app.pane(), Pane::Progress);
    // Events become a step list.
    let host = "dev-1".to_string();
    app.on_msg(Msg::Action {
        id,
        event: Event::StepStarted {
            host: host.clone(),
            step: Step::Lock,
            detail: String::new(),
        },
    });
    app.on_msg(Msg::Action {
        id,
        event: Event::StepFinished {
            host: host.clone(),
            step: Step::Lock,
            elapsed_ms: 5,
            detail: String::new(),
            trips: None,
        },
    });
    app.on_msg(Msg::Action {
        id,
        event: Event::StepStarted {
            host: host.clone(),
            step: Step::Health,
            detail: String::new(),
        },
    });
    let p = app.current_progress().expect("progress");
    assert_eq!(p.steps.len(), 2);
    assert_eq!(p.steps[0].state, StepState::Done);
    assert_eq!(p.steps[1].state, StepState::Running);
    // One action per service at a time.
    assert!(app.on_key(key('r')).is_empty());
    assert!(app.dialog().is_none());
    assert!(app.message().unwrap_or("").contains("already running"));
    // The end: a step still open is marked failed on failure.
    app.on_msg(Msg::ActionDone {
        id,
        report: report_failed(deckhand::release::ReleaseError::Refused("boom".into())),
    });
    let p = app.current_progress().expect("progress");
    assert_eq!(p.steps[1].state, StepState::Failed);
    assert!(!p.running());
    // Now another action may start.
    assert_eq!(app.on_key(key('r')).len(), 1);
}

#[test]
fn protected_environment_wants_the_name_or_short_sha_typed() {
    let (mut app, _) = fleet_app();
    app.command("env staging");
    feed(
        &mut app,
        "staging-1",
        HostUpdate::Snapshot(Box::new(snapshot(host_status(
            "staging-1",
            service_status("a000003", "a000002"),
        )))),
    );
    app.on_key(key('r'));
    ready(&mut app);
    assert!(confirm(&app).protected());
    assert!(!confirm(&app).armed());
    app.on_key(code(KeyCode::Tab));
    assert!(
        app.on_key(code(KeyCode::Enter)).is_empty(),
        "not armed: nothing runs"
    );
    assert!(app.dialog().is_some());
    typed(&mut app, "dev");
    assert!(
        !confirm(&app).armed(),
        "another environment's name does not confirm"
    );
    for _ in 0..3 {
        app.on_key(code(KeyCode::Backspace));
    }
    typed(&mut app, "a000002");
    assert!(confirm(&app).armed(), "the short SHA confirms");
    for _ in 0..7 {
        app.on_key(code(KeyCode::Backspace));
    }
    typed(&mut app, "staging");
    assert!(confirm(&app).armed());
    assert_eq!(confirm(&app).focus(), Button::Confirm);
    let effects = app.on_key(code(KeyCode::Enter));
    assert!(matches!(effects.as_slice(), [Effect::Execute { .. }]));
}

#[test]
fn ctrl_c_during_an_action_asks_then_aborts() {
    let (mut app, _) = fleet_app();
    app.on_key(key('r'));
    ready(&mut app);
    app.on_key(code(KeyCode::Tab));
    app.on_key(code(KeyCode::Enter));
    let effects = app.on_key(ctrl('c'));
    assert!(effects.is_empty(), "Ctrl-C asks first");
    assert!(matches!(
        app.dialog(),
        Some(Dialog::Abort {
            focus: Button::Cancel,
            ..
        })
    ));
    app.on_key(code(KeyCode::Enter));
    assert!(app.dialog().is_none(), "Cancel keeps the action running");
    app.on_key(ctrl('c'));
    app.on_key(code(KeyCode::Left));
    let effects = app.on_key(code(KeyCode::Enter));
    assert!(matches!(effects.as_slice(), [Effect::Abort { .. }]));
    assert!(app.current_progress().expect("progress").abort_requested);
    // q while it runs asks too.
    app.on_key(key('q'));
    assert!(matches!(app.dialog(), Some(Dialog::QuitRunning { .. })));
    assert!(!app.quitting());
}

#[test]
fn quit_without_running_action() {
    let (mut app, _) = fleet_app();
    assert_eq!(app.on_key(key('q')), vec![Effect::Quit]);
    assert!(app.quitting());
}

#[test]
fn read_only_hides_and_refuses_actions() {
    let (mut app, _) = fleet_app_with(true);
    for c in ['d', 'r', 'p'] {
        assert!(app.on_key(key(c)).is_empty());
        assert!(app.dialog().is_none());
    }
    assert!(app.command("rollback").is_empty());
    assert!(app.dialog().is_none());
    let help: Vec<String> = keymap::help_lines(true)
        .into_iter()
        .flat_map(|(_, rows)| rows.into_iter().map(|(_, h)| h.to_string()))
        .collect();
    assert!(!help.iter().any(|h| h.contains("roll back")));
}

#[test]
fn help_is_generated_from_the_keymap() {
    let help = keymap::help_lines(false);
    let n: usize = help.iter().map(|(_, rows)| rows.len()).sum();
    assert_eq!(n, keymap::KEYMAP.len() + keymap::TYPING.len() + 1);
}

#[test]
fn messages_from_an_old_environment_are_ignored() {
    let (mut app, _) = fleet_app();
    let old = app.epoch();
    let effects = app.command("env staging");
    assert_eq!(
        effects,
        vec![Effect::SwitchEnv {
            env: "staging".into(),
            epoch: old + 1
        }]
    );
    assert_eq!(app.hosts().len(), 1);
    app.on_msg(Msg::Host {
        epoch: old,
        host: "staging-1".into(),
        update: HostUpdate::Down {
            why: std::sync::Arc::new(deckhand::tui::model::HostDown::Unreadable {
                detail: "late news from dev".into(),
            }),
            retry_in: Duration::from_secs(5),
        },
    });
    assert!(app.hosts()[0].snapshot.is_none());
    assert!(matches!(
        app.hosts()[0].conn,
        deckhand::tui::model::Conn::Connecting
    ));
    // [ and ] cycle environments.
    let effects = app.on_key(key('['));
    assert!(matches!(effects.as_slice(), [Effect::SwitchEnv { env, .. }] if env == "dev"));
}

#[test]
fn the_picker_offers_the_sha_live_in_dev_when_in_staging() {
    let (mut app, _) = fleet_app();
    app.command("env staging");
    feed(
        &mut app,
        "staging-1",
        HostUpdate::Snapshot(Box::new(snapshot(host_status(
            "staging-1",
            service_status("a000002", "a000001"),
        )))),
    );
    app.on_key(key('d'));
    let Some(Dialog::Picker(p)) = app.dialog() else {
        panic!("no picker");
    };
    let c = p
        .candidates()
        .iter()
        .find(|c| c.sha == "a000003")
        .expect("dev's live SHA");
    assert!(
        c.runs.iter().any(|r| r == "dev/dev-1 blue LIVE"),
        "{:?}",
        c.runs
    );
    typed(&mut app, "a000003");
    let effects = app.on_key(code(KeyCode::Enter));
    assert!(matches!(
        effects.as_slice(),
        [Effect::Plan { request, .. }] if request.verb == Verb::Deploy { reference: "a000003".into() } && request.env == "staging"
    ));
}

#[test]
fn logs_are_bounded_and_redacted() {
    let (mut app, _) = fleet_app();
    let effects = app.on_key(key('l'));
    assert!(
        matches!(effects.as_slice(), [Effect::Logs { container, .. }] if container == "api-blue")
    );
    let id = app.logs().expect("logs").id();
    let lines: Vec<String> = (0..LOG_CAPACITY + 10)
        .map(|i| format!("line {i} TOKEN=abc"))
        .collect();
    app.on_msg(Msg::Logs { id, lines });
    let l = app.logs().expect("logs");
    assert_eq!(l.lines().len(), LOG_CAPACITY);
    assert_eq!(l.dropped(), 10);
    assert!(!l.lines().iter().any(|x| x.text.contains("abc")));
    assert_eq!(app.on_key(code(KeyCode::Esc)), vec![Effect::StopLogs]);
    assert_eq!(app.view(), View::Host);
}

#[test]
fn latency_history_is_kept_and_bounded() {
    let (mut app, _) = fleet_app();
    for _ in 0..LATENCY_SAMPLES + 5 {
        feed(
            &mut app,
            "dev-1",
            HostUpdate::Snapshot(Box::new(snapshot(host_status(
                "dev-1",
                service_status("a000003", "a000002"),
            )))),
        );
    }
    let q = app.hosts()[0]
        .latency
        .get(&("api".to_string(), Color::Blue))
        .expect("samples");
    assert_eq!(q.len(), LATENCY_SAMPLES);
}

#[test]
fn stale_after_a_while() {
    let (mut app, t0) = fleet_app();
    assert!(app.hosts()[0].stale_age(app.now()).is_none());
    app.set_clock(t0 + Duration::from_secs(30), NOW);
    assert!(app.hosts()[0].stale_age(app.now()).is_some());
}

#[test]
fn inspect_redacts_secrets() {
    let mut v = serde_json::json!({
        "Config": {"Env": ["DATABASE_PASSWORD=hunter2", "NODE_ENV=production", "URL=postgres://u:pw@db/x"],
                   "Labels": {"deckhand.sha": "a000003", "api_token": "xyz"}}
    });
    deckhand::tui::redact_value(&mut v);
    let text = v.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains("xyz") && !text.contains(":pw@"),
        "{text}"
    );
    assert!(text.contains("NODE_ENV=production") && text.contains("a000003"));
}

#[test]
fn color_keys_choose_the_container() {
    let (mut app, _) = fleet_app();
    app.on_key(code(KeyCode::Enter));
    assert_eq!(
        app.current_color(),
        Color::Blue,
        "the live color by default"
    );
    app.on_key(key('g'));
    assert_eq!(app.current_color(), Color::Green);
    let effects = app.on_key(key('i'));
    assert!(
        matches!(effects.as_slice(), [Effect::Inspect { container, .. }] if container == "api-green")
    );
    app.on_key(code(KeyCode::Esc));
    let effects = app.on_key(key('s'));
    assert!(
        matches!(effects.as_slice(), [Effect::Shell { container, .. }] if container == "api-green")
    );
}

#[test]
fn the_picker_lists_tags_the_registry_has_and_no_host_pulled_yet() {
    let (mut app, _) = fleet_app();
    let effects = app.on_key(key('d'));
    let Some(Dialog::Picker(p)) = app.dialog() else {
        panic!("no picker");
    };
    let service = p.service().to_string();
    assert!(
        p.registry_note().contains("listing"),
        "{}",
        p.registry_note()
    );
    assert!(
        matches!(effects.as_slice(), [Effect::RegistryTags { service: s }] if *s == service),
        "{effects:?}"
    );
    app.on_msg(Msg::RegistryTags {
        service: service.clone(),
        result: Ok(vec!["a000003".into(), "f00ba47".into()]),
    });
    let Some(Dialog::Picker(p)) = app.dialog() else {
        panic!("no picker");
    };
    assert_eq!(p.registry_note(), "registry: 2 tag(s)");
    let fresh = p
        .candidates()
        .iter()
        .find(|c| c.sha == "f00ba47")
        .expect("registry-only tag");
    assert!(fresh.in_registry && fresh.runs.is_empty());
    let live = p
        .candidates()
        .iter()
        .find(|c| c.sha == "a000003")
        .expect("live tag");
    assert!(live.in_registry && !live.runs.is_empty());
    // A failed listing is said, and the host images are still offered.
    app.on_msg(Msg::RegistryTags {
        service,
        result: Err(std::sync::Arc::new(
            deckhand::release::registry::RegistryError::Request {
                registry: "127.0.0.1:5000".into(),
                detail: "connection refused".into(),
            },
        )),
    });
    let Some(Dialog::Picker(p)) = app.dialog() else {
        panic!("no picker");
    };
    assert!(p.registry_note().contains("connection refused"));
    assert!(p.candidates().iter().any(|c| c.sha == "a000003"));
}

#[test]
fn a_host_that_is_down_stays_down_while_the_poller_retries() {
    let (mut app, t0) = fleet_app();
    let down = |app: &deckhand::tui::app::App| {
        app.hosts()[1]
            .conn
            .down_text(app.now(), app.now_unix())
            .unwrap_or_else(|| format!("not down: {:?}", app.hosts()[1].conn))
    };
    // fleet_app marked dev-2 down at t0 with a retry in 5 s.
    let text = down(&app);
    assert!(
        text.starts_with("down since 10:00:00 UTC (0s ago)"),
        "{text}"
    );
    assert!(text.ends_with("next try in 3s"), "{text}");
    // The retry starts: still down, since the same time, saying it tries again.
    app.set_clock(t0 + Duration::from_secs(65), NOW + 65);
    feed(&mut app, "dev-2", HostUpdate::Connecting);
    let text = down(&app);
    assert!(
        text.starts_with("down since 10:00:00 UTC (1m ago)") && text.contains("attempt 2"),
        "{text}"
    );
    let screen = render(&app, 100, 24);
    assert!(screen.contains("down since 10:00:00 UTC"), "{screen}");
    assert!(!screen.contains("connecting"), "{screen}");
    // It answers: up again.
    feed(&mut app, "dev-2", HostUpdate::Connected);
    assert!(app.hosts()[1].conn.is_up());
}

#[test]
fn a_run_stopped_by_a_stale_lock_offers_to_take_it_over_behind_a_confirm_dialog() {
    let (mut app, _) = fleet_app();
    app.on_key(key('r'));
    ready(&mut app);
    app.on_key(code(KeyCode::Right));
    let id = match app.on_key(code(KeyCode::Enter)).as_slice() {
        [Effect::Execute { id, .. }] => *id,
        other => panic!("unexpected {other:?}"),
    };
    let effects = app.on_msg(Msg::ActionDone {
        id,
        report: report_failed(deckhand::release::ReleaseError::Locked {
            host: "dev-1".into(),
            service: "api".into(),
            holder: "ci@runner-7 (pid 4242, heartbeat 900s ago)".into(),
            hint: String::new(),
            takeover_possible: true,
        }),
    });
    // Nothing runs without a confirmation: the offer is a new plan for a confirm dialog.
    match effects.as_slice() {
        [Effect::Plan { request, .. }] => {
            assert!(request.take_over_stale);
            assert_eq!(request.hosts, ["dev-1".to_string(), "dev-2".to_string()]);
            assert!(
                request.equivalent().ends_with("--take-over-stale"),
                "{}",
                request.equivalent()
            );
        }
        other => panic!("expected a take-over offer, got {other:?}"),
    }
    assert!(matches!(app.dialog(), Some(Dialog::Confirm(_))));
    assert!(
        app.message().unwrap_or("").contains("stale"),
        "{:?}",
        app.message()
    );
    // Declined: nothing more happens.
    app.on_key(code(KeyCode::Esc));
    assert!(app.dialog().is_none());
}
