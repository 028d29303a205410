//! The one runner behind both faces: a console deploy and a CLI deploy notify the webhook and
//! write the audit log alike; Ctrl-C in the CLI stops before the next host.

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use deckhand::monitor::notify::Notifier;
use deckhand::release::EventSink;
use deckhand::session::{Session, SessionArgs};
use deckhand::transport::Host;
use deckhand::tui::app::{App, Effect, EnvInfo, Msg};
use tokio_util::sync::CancellationToken;

use crate::harness::*;

const ACTOR: &str = "runner-test@ci";

fn press(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// A console's deploy of `sha`, driven the way the console drives it: `:deploy SHA` in the
/// app state, the runner's plan for the dialog, Tab + Enter on the dialog, the runner's run.
async fn console_deploy(app: &mut App, host: &Arc<Host>, sha: &str, hook: &str) {
    let effects = app.command(&format!("deploy {sha}"));
    let [Effect::Plan { id, request }] = effects.as_slice() else {
        panic!("expected a plan effect, got {effects:?}");
    };
    let (id, request) = (*id, request.clone());
    let planned = deckhand::tui::tasks::plan(request, Ok(vec![host.clone()]))
        .await
        .unwrap_or_else(|e| panic!("console plan of {sha}: {e}"));
    app.on_msg(Msg::Plan {
        id,
        result: Ok(planned.plans().to_vec()),
    });
    press(app, KeyCode::Tab);
    let effects = press(app, KeyCode::Enter);
    assert!(
        matches!(effects.as_slice(), [Effect::Execute { id: x, .. }] if *x == id),
        "{effects:?}"
    );
    let report = deckhand::tui::tasks::execute(
        planned,
        CancellationToken::new(),
        EventSink::none(),
        Notifier::to(Some(hook.to_string())),
    )
    .await;
    assert!(report.succeeded(), "console deploy of {sha}: {report:#?}");
    app.on_msg(Msg::ActionDone {
        id,
        report: Arc::new(report),
    });
}

/// What two runs have in common once the service's name is taken out.
fn normalized(text: &str, service: &str) -> String {
    text.replace(service, "SERVICE")
}

fn audit_of(state: &std::path::Path, service: &str) -> Vec<Vec<String>> {
    audit_records(state)
        .iter()
        .filter(|r| r["service"] == service)
        .map(|r| {
            [
                "actor", "env", "host", "action", "from_sha", "to_sha", "outcome", "error",
                "details",
            ]
            .iter()
            .map(|k| normalized(&r[*k].to_string(), service))
            .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_console_deploy_and_a_cli_deploy_notify_and_audit_alike() {
    let hook = Webhook::start();
    let by_cli = TestService::new("rcli");
    let by_console = TestService::new("rcon");
    for s in [&by_cli, &by_console] {
        s.tag_local(&GOOD_SHAS[..2]);
    }
    let host_state = tempfile::tempdir().expect("tempdir");
    let (_d, cfg) = write_config(&format!(
        "[defaults]\nstate_dir = \"{}\"\n\n{}\n{}\n[env.dev]\nhosts = [\"local\"]\n",
        host_state.path().display(),
        by_cli.service_toml(""),
        by_console.service_toml("")
    ));

    // The CLI: two deploys (a first one, then a blue/green one).
    for sha in &GOOD_SHAS[..2] {
        let out = deckhand_env(
            &cfg,
            &["deploy", sha, "--service", &by_cli.name, "--yes"],
            &[
                ("DECKHAND_WEBHOOK_URL", &hook.url),
                ("DECKHAND_ACTOR", ACTOR),
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "CLI deploy {sha}: {}",
            text(&out)
        );
    }

    // The console: the same two deploys of the other service, through the same runner.
    let session = Session::load(&SessionArgs {
        config: Some(cfg.clone()),
        env: Some("dev".into()),
        service: Some(by_console.name.clone()),
        read_only: false,
    })
    .expect("session");
    let envs: Vec<EnvInfo> = session.config.envs.values().map(EnvInfo::from).collect();
    let mut app = App::new(envs, "dev", session.services.clone(), false);
    app.set_actor(ACTOR);
    let host = Arc::new(Host::connect(&session.env.hosts[0]).await.expect("local"));
    for sha in &GOOD_SHAS[..2] {
        console_deploy(&mut app, &host, sha, &hook.url).await;
    }

    // Webhook: the same messages, one per host outcome, from either face.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (cli, console) = loop {
        let got = hook.received();
        let pick = |s: &str| -> Vec<String> {
            got.iter()
                .filter(|b| b.contains(s))
                .map(|b| normalized(b, s))
                .collect()
        };
        let (a, b) = (pick(&by_cli.name), pick(&by_console.name));
        if (a.len() >= 2 && b.len() >= 2) || std::time::Instant::now() > deadline {
            break (a, b);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(cli.len(), 2, "the CLI notifies every deploy: {cli:#?}");
    assert_eq!(
        console, cli,
        "the console must notify exactly as the CLI does"
    );
    assert!(
        cli[1].contains("deploy of SERVICE in dev on local succeeded"),
        "{cli:#?}"
    );

    // Audit: the same records (times and durations aside).
    let a = audit_of(host_state.path(), &by_cli.name);
    let b = audit_of(host_state.path(), &by_console.name);
    assert_eq!(a.len(), 4, "started + success per deploy: {a:#?}");
    assert_eq!(b, a, "the console must audit exactly as the CLI does");
}

/// Ctrl-C while the first of two hosts finishes its deploy (after its switch, so that host
/// completes): the next host is not started at all. Before the runner the CLI went on to lock,
/// audit and plan on host 2.
#[test]
fn ctrl_c_in_the_cli_stops_before_the_next_host() {
    let svc = TestService::new("rcc");
    svc.push(&["a000001", "a000002"]);
    // Two hosts behind two sshd instances (the same engine underneath).
    let (s1, s2) = (SshServer::start(), SshServer::start());
    let (_d, path) = write_config(&format!(
        "{}\n{}\n{}",
        svc.service_toml(""),
        s1.host_toml("lab", "lab-1"),
        s2.host_toml("lab", "lab-2")
    ));
    let out = deckhand(
        &path,
        &[
            "deploy", "a000001", "--env", "lab", "--yes", "--host", "lab-1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let hook = Webhook::start();
    let code = deploy_interrupted_at_with_env(
        &path,
        "a000002",
        "drain",
        &[("DECKHAND_WEBHOOK_URL", &hook.url)],
        |child| {
            let ok = std::process::Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "kill -INT");
        },
    )
    .expect("lab-1 reached its drain step");
    assert_eq!(code, Some(1), "a cancelled run is not a success");
    // lab-1 finished its deploy (the switch was done); lab-2 was never touched.
    let (_, v) = status_json(&path);
    assert_eq!(v["hosts"][0]["services"][0]["live_sha"], "a000002", "{v:#}");
    let lab2 = s2.state_dir().join("audit.jsonl");
    let records = std::fs::read_to_string(&lab2).unwrap_or_default();
    assert!(
        records.trim().is_empty(),
        "lab-2 must not be locked, audited or planned after Ctrl-C: {records}"
    );
    let lab1 = audit_records(&s1.state_dir());
    assert_eq!(
        lab1.last().map(|r| r["outcome"].clone()),
        Some("success".into())
    );
    // The webhook hears lab-1's outcome and that the run stopped there.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hook.received().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = hook.received();
    assert!(
        got.iter().any(|b| b.contains("on lab-1 succeeded")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|b| b.contains("stopped by the operator after lab-1")),
        "{got:#?}"
    );
}
