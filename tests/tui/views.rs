//! Snapshot tests of every view and dialog, drawn on ratatui's TestBackend at 80x24.

use std::time::Duration;

use crossterm::event::KeyCode;
use deckhand::release::plan::Action;
use deckhand::release::prune::{PruneItem, PrunePlan};
use deckhand::release::runner::{HostPlan, PlanError};
use deckhand::release::{DeployPlan, Event, Step};
use deckhand::state::Color;
use deckhand::tui::app::{App, Msg};
use deckhand::tui::model::{AlertRow, AlertState, HostUpdate, MonitorSnapshot};

use crate::fixtures::*;

pub fn rollback_plan() -> DeployPlan {
    DeployPlan {
        action: Action::Rollback,
        host: "dev-1".into(),
        service: "api".into(),
        from_color: Some(Color::Blue),
        from_sha: Some("a000003".into()),
        to_color: Color::Green,
        to_sha: "a000002".into(),
        image: "registry.example.com/acme/api:a000002".into(),
        reuse_existing: true,
        noop: false,
        finish_only: false,
        create_proxy: false,
        proxy_change: None,
        steps: vec![Step::Lock, Step::Start, Step::Health, Step::Switch],
        image_present: true,
        note: None,
    }
}

/// Only dev-1 answers in these tests; actions name the hosts the app chose.
fn plan_ready(app: &mut App, view: Vec<HostPlan>) {
    let id = match app.dialog() {
        Some(deckhand::tui::app::Dialog::Confirm(c)) => c.id(),
        _ => panic!("no confirm dialog"),
    };
    app.on_msg(Msg::Plan {
        id,
        result: Ok(view),
    });
}

#[test]
fn fleet_80x24() {
    let (app, _) = fleet_app();
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn fleet_before_first_read() {
    let (app, _) = app();
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn fleet_stale_data_shows_its_age() {
    let (mut app, t0) = fleet_app();
    app.set_clock(t0 + Duration::from_secs(75), NOW);
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn fleet_read_only() {
    let (app, _) = fleet_app_with(true);
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn fleet_filter_input() {
    let (mut app, _) = fleet_app();
    app.on_key(key('/'));
    typed(&mut app, "dev-2");
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn host_containers_80x24() {
    let (mut app, _) = fleet_app();
    app.on_key(code(KeyCode::Enter));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn host_containers_120x30() {
    let (mut app, _) = fleet_app();
    app.on_key(code(KeyCode::Enter));
    insta::assert_snapshot!(render(&app, 120, 30));
}

#[test]
fn host_images() {
    let (mut app, _) = fleet_app();
    app.on_key(code(KeyCode::Enter));
    app.on_key(key('2'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn host_metrics_not_monitored_yet() {
    let (mut app, _) = fleet_app();
    app.on_key(code(KeyCode::Enter));
    app.on_key(key('3'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn host_metrics_with_a_monitor_snapshot() {
    let (mut app, _) = fleet_app();
    let mut snap = snapshot(host_status("dev-1", service_status("a000003", "a000002")));
    snap.monitor = Some(MonitorSnapshot {
        metrics: vec![("cpu".into(), "91 %".into())],
        alerts: vec![
            AlertRow {
                name: "cpu > 80 %".into(),
                state: AlertState::Pending {
                    fires_at: NOW + 170,
                },
                detail: "91 % for 2m10s".into(),
            },
            AlertRow {
                name: "health".into(),
                state: AlertState::Firing { since: NOW - 120 },
                detail: "green: 503".into(),
            },
        ],
    });
    feed(&mut app, "dev-1", HostUpdate::Snapshot(Box::new(snap)));
    app.on_key(code(KeyCode::Enter));
    app.on_key(key('3'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn host_audit_log() {
    let (mut app, _) = fleet_app();
    app.on_key(code(KeyCode::Enter));
    app.on_key(key('4'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn host_unreachable_says_why() {
    let (mut app, _) = fleet_app();
    app.on_key(key('j'));
    app.on_key(code(KeyCode::Enter));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn rollback_dialog_planning() {
    let (mut app, _) = fleet_app();
    app.on_key(key('r'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn rollback_dialog_focus_on_cancel() {
    let (mut app, _) = fleet_app();
    app.on_key(key('r'));
    plan_ready(&mut app, vec![HostPlan::Release(rollback_plan())]);
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn rollback_dialog_cannot_plan() {
    let (mut app, _) = fleet_app();
    app.on_key(key('r'));
    let id = match app.dialog() {
        Some(deckhand::tui::app::Dialog::Confirm(c)) => c.id(),
        _ => panic!("no dialog"),
    };
    app.on_msg(Msg::Plan {
        id,
        result: Err(std::sync::Arc::new(PlanError::NotConnected {
            host: "dev-2".into(),
            why: "ssh: connection timed out".into(),
        })),
    });
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn rollback_dialog_protected_environment() {
    let (mut app, _) = fleet_app();
    app.switch_env("staging");
    let snap = snapshot(host_status(
        "staging-1",
        service_status("a000003", "a000002"),
    ));
    feed(&mut app, "staging-1", HostUpdate::Snapshot(Box::new(snap)));
    app.on_key(key('r'));
    let mut p = rollback_plan();
    p.host = "staging-1".into();
    plan_ready(&mut app, vec![HostPlan::Release(p)]);
    typed(&mut app, "stag");
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn deploy_picker_filters_as_you_type() {
    let (mut app, _) = fleet_app();
    app.on_key(key('d'));
    insta::assert_snapshot!("deploy_picker_all", render(&app, 80, 24));
    typed(&mut app, "0002");
    insta::assert_snapshot!("deploy_picker_filtered", render(&app, 80, 24));
}

#[test]
fn deploy_dialog() {
    let (mut app, _) = fleet_app();
    app.on_key(key('d'));
    typed(&mut app, "a000001");
    app.on_key(code(KeyCode::Enter));
    let mut p = rollback_plan();
    p.action = Action::Deploy;
    p.to_sha = "a000001".into();
    p.reuse_existing = false;
    plan_ready(&mut app, vec![HostPlan::Release(p)]);
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn prune_dialog_shows_the_dry_run() {
    let (mut app, _) = fleet_app();
    app.on_key(key('p'));
    plan_ready(
        &mut app,
        vec![HostPlan::Prune(PrunePlan {
            host: "dev-1".into(),
            keep: 5,
            kept: vec!["a000003".into(), "a000002".into(), "stable".into()],
            remove: vec![PruneItem {
                tag: "a000001".into(),
                size_bytes: 12 * 1024 * 1024,
                created: "2026-11-21T10:00:00Z".into(),
            }],
            reclaim_bytes: 12 * 1024 * 1024,
        })],
    );
    insta::assert_snapshot!(render(&app, 80, 24));
}

/// A rollback whose health wait failed on dev-1 (dev-2 not attempted), ended.
pub fn started_with_a_failure() -> App {
    let (mut app, t0) = fleet_app();
    let id = started(&mut app);
    step_done(&mut app, id, Step::Lock, 40, "");
    ev(
        &mut app,
        id,
        Event::StepStarted {
            host: "dev-1".into(),
            step: Step::Health,
            detail: String::new(),
        },
    );
    ev(
        &mut app,
        id,
        Event::StepFailed {
            host: "dev-1".into(),
            step: Step::Health,
            error: "unhealthy".into(),
        },
    );
    app.set_clock(t0 + Duration::from_secs(30), NOW);
    app.on_msg(Msg::ActionDone {
        id,
        report: report_failed(deckhand::release::ReleaseError::Unhealthy {
            host: "dev-1".into(),
            color: "green".into(),
            sha: "bad0001".into(),
            live_note: "blue (a000003) still serves".into(),
            report: "  /health: 503 {\"status\":\"unhealthy\",\"services\":{\"database\":\"disconnected\"}}\n  last logs:\n    db: connection refused".into(),
        }),
    });
    app
}

fn started(app: &mut App) -> u64 {
    app.on_key(key('r'));
    plan_ready(app, vec![HostPlan::Release(rollback_plan())]);
    app.on_key(code(KeyCode::Tab));
    app.on_key(code(KeyCode::Enter));
    app.progress().values().next().expect("progress").id
}

fn ev(app: &mut App, id: u64, event: Event) {
    app.on_msg(Msg::Action { id, event });
}

fn step_done(app: &mut App, id: u64, step: Step, ms: u64, detail: &str) {
    ev(
        app,
        id,
        Event::StepStarted {
            host: "dev-1".into(),
            step,
            detail: String::new(),
        },
    );
    ev(
        app,
        id,
        Event::StepFinished {
            host: "dev-1".into(),
            step,
            elapsed_ms: ms,
            detail: detail.into(),
            trips: None,
        },
    );
}

#[test]
fn progress_running() {
    let (mut app, t0) = fleet_app();
    let id = started(&mut app);
    step_done(&mut app, id, Step::Lock, 40, "");
    step_done(
        &mut app,
        id,
        Step::Inspect,
        120,
        "dev-1: api a000003 (blue) → a000002 (green, restart the kept container)",
    );
    step_done(&mut app, id, Step::Start, 300, "");
    ev(
        &mut app,
        id,
        Event::StepStarted {
            host: "dev-1".into(),
            step: Step::Health,
            detail: String::new(),
        },
    );
    ev(
        &mut app,
        id,
        Event::HealthAttempt {
            host: "dev-1".into(),
            color: Color::Green,
            attempt: 3,
            healthy: false,
            detail: "connection refused".into(),
        },
    );
    app.set_clock(t0 + Duration::from_secs(5), NOW);
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn progress_done_and_failed() {
    let (mut app, t0) = fleet_app();
    let id = started(&mut app);
    for (s, ms) in [
        (Step::Lock, 40),
        (Step::Inspect, 100),
        (Step::Start, 300),
        (Step::Health, 1200),
        (Step::Switch, 80),
        (Step::Confirm, 30),
        (Step::Drain, 1000),
        (Step::StopOld, 400),
        (Step::Audit, 20),
        (Step::Unlock, 10),
    ] {
        step_done(&mut app, id, s, ms, "");
    }
    ev(
        &mut app,
        id,
        Event::Switched {
            host: "dev-1".into(),
            from: Some(Color::Blue),
            to: Color::Green,
        },
    );
    app.set_clock(t0 + Duration::from_secs(4), NOW);
    app.on_msg(Msg::ActionDone {
        id,
        report: report_done(
            "dev-1: api a000003 (blue) → a000002 (green, restart the kept container) in 3100 ms",
        ),
    });
    insta::assert_snapshot!("progress_done", render(&app, 80, 24));

    let app = started_with_a_failure();
    insta::assert_snapshot!("progress_failed", render(&app, 80, 24));
}

#[test]
fn abort_dialog_on_ctrl_c() {
    let (mut app, _) = fleet_app();
    started(&mut app);
    app.on_key(ctrl('c'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn logs_view() {
    let (mut app, _) = fleet_app();
    app.on_key(key('l'));
    let id = app.logs().expect("logs").id();
    app.on_msg(Msg::Logs {
        id,
        lines: (0..40)
            .map(|i| {
                format!(
                    "2026-11-22T10:00:{:02}.123456789Z GET /health 200 DATABASE_PASSWORD=hunter{i}",
                    i
                )
            })
            .collect(),
    });
    insta::assert_snapshot!("logs_follow", render(&app, 80, 24));
    app.on_key(key('t'));
    app.on_key(key('/'));
    typed(&mut app, "hunter1");
    insta::assert_snapshot!("logs_search", render(&app, 80, 24));
}

#[test]
fn inspect_view() {
    let (mut app, _) = fleet_app();
    app.on_key(key('i'));
    let id = app.text().expect("text").id();
    app.on_msg(Msg::Inspect {
        id,
        result: Ok(vec![
            "{".into(),
            "  \"Env\": [".into(),
            "    \"API_TOKEN=[redacted]\"".into(),
            "  ]".into(),
            "}".into(),
        ]),
    });
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn help_from_the_keymap() {
    let (mut app, _) = fleet_app();
    app.on_key(key('?'));
    insta::assert_snapshot!(render(&app, 80, 24));
}

#[test]
fn command_mode() {
    let (mut app, _) = fleet_app();
    app.on_key(key(':'));
    typed(&mut app, "env staging");
    insta::assert_snapshot!(render(&app, 80, 24));
}
