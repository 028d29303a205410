//! Secrets never shown: a service whose host env file is full of secrets, deployed and looked at
//! through every face deckhand has; none of them may print a secret.

use std::sync::Arc;

use crate::harness::*;

/// Everything in the env file is secret, whatever its name; so are the registry password and the
/// webhook URL's path.
const SECRETS: [&str; 9] = [
    "hunter2-db-secret",
    "s3cr3t-url-pass",
    "tok_9f8e7d6c5b4a",
    "regpass-secret-123",
    "dbpass-secret-77",
    "smtp-secret-88",
    "xpwd-secret-99",
    "opaque-value-secret-66",
    "hookpath-secret-55",
];

#[tokio::test(flavor = "multi_thread")]
async fn no_output_shows_a_secret() {
    let svc = TestService::new("sx");
    svc.push(&["a000001", "a000002", UNHEALTHY_SHA]);
    let sshd = SshServer::start();
    let env_file = sshd.dir.path().join("app.env");
    std::fs::write(
        &env_file,
        "# written by ansible\nDB_PASSWORD=hunter2-db-secret\nDATABASE_URL=postgres://app:s3cr3t-url-pass@db:5432/app\nexport API_TOKEN=\"tok_9f8e7d6c5b4a\"\nDB_PASS=dbpass-secret-77\nSMTP_PASS=smtp-secret-88\nX_PWD=xpwd-secret-99\nOPAQUE=opaque-value-secret-66\n",
    )
    .expect("env file");
    let (_d, path) = ssh_config(
        &svc,
        &sshd,
        &format!(
            "env_file = \"{}\"\nenv = {{ PLAIN = \"visible-value\" }}\n",
            env_file.display()
        ),
    );
    let state = tempfile::tempdir().expect("state");
    let state_s = state.path().display().to_string();
    let hook = Webhook::start();
    let hook_url = format!("{}/services/T0/hookpath-secret-55", hook.url);
    let env = [
        ("XDG_STATE_HOME", state_s.as_str()),
        ("DECKHAND_REGISTRY_USERNAME", "ci"),
        ("DECKHAND_REGISTRY_PASSWORD", "regpass-secret-123"),
        ("DECKHAND_WEBHOOK_URL", hook_url.as_str()),
    ];
    let mut outputs = Vec::new();
    let mut run = |args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--env", "lab", "--log-level", "trace"]);
        let out = deckhand_env(&path, &a, &env);
        outputs.push((args.join(" "), text(&out)));
        out.status.code()
    };
    assert_eq!(run(&["deploy", "a000001", "--yes"]), Some(0));
    assert_eq!(
        run(&["deploy", "a000002", "--yes", "--output", "json"]),
        Some(0)
    );
    assert_eq!(
        run(&["deploy", UNHEALTHY_SHA, "--yes", "--timeout", "3s"]),
        Some(1)
    );
    for args in [
        &["status"][..],
        &["status", "--output", "json"],
        &["history"],
        &["history", "--output", "json"],
        &["alerts", "--output", "json"],
        &["lock"],
        &["prune", "--dry-run"],
    ] {
        run(args);
    }

    // The app really got its secrets (so this test can fail): Docker itself shows them.
    let raw = docker_ok(&["inspect", &format!("{}-green", svc.name)]);
    assert!(
        raw.contains("hunter2-db-secret") && raw.contains("tok_9f8e7d6c5b4a"),
        "secrets were passed"
    );
    assert!(raw.contains("PLAIN=visible-value") && raw.contains("dbpass-secret-77"));

    // The console's inspect view.
    let cfg = deckhand::config::load(&path).expect("config");
    let host = deckhand::transport::Host::connect(&cfg.env("lab").expect("lab").hosts[0])
        .await
        .expect("connect");
    let lines = deckhand::tui::tasks::inspect(Arc::new(host), format!("{}-green", svc.name))
        .await
        .expect("inspect");
    let inspect = lines.join("\n");
    assert!(
        inspect.contains("PLAIN=visible-value"),
        "inspect shows the env: {inspect}"
    );
    assert!(inspect.contains("DB_PASSWORD=[redacted]"), "{inspect}");
    assert!(inspect.contains("OPAQUE=[redacted]"), "{inspect}");
    outputs.push(("console inspect".into(), inspect));
    let bodies = hook.received();
    assert!(!bodies.is_empty(), "the webhook was told about the deploys");
    outputs.push(("webhook".into(), bodies.join("\n")));

    // The log files and the host's audit log.
    for entry in walk(state.path())
        .into_iter()
        .chain(walk(&sshd.state_dir()))
    {
        outputs.push((
            entry.display().to_string(),
            std::fs::read_to_string(&entry).unwrap_or_default(),
        ));
    }
    assert!(
        outputs
            .iter()
            .any(|(name, text)| name.ends_with(".log") && text.contains("release event")),
        "the debug log (every engine event) was written and searched"
    );
    for (name, text) in &outputs {
        for s in SECRETS {
            assert!(!text.contains(s), "`{s}` shown by {name}:\n{text}");
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
