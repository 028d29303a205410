//! Every parser that reads host data, fed hostile input: random bytes, near-valid documents and
//! a saved corpus (`tests/props/corpus/`, one file per nasty case seen or imagined). None may
//! panic, and whatever they hand on to a terminal must be free of control characters.
//!
//! Three layers:
//! - properties (`proptest!` below), run in CI at 256 cases each; failures are saved to
//!   `tests/props/hostile.proptest-regressions` and replayed first on every later run;
//! - the corpus, replayed through every parser on every run;
//! - `fuzz_every_host_parser` (ignored in CI): `scripts/fuzz.sh [CASES]` runs it with many more
//!   inputs and prints, per parser, how many inputs it tried and how many panicked.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

use deckhand::sanitize;

fn service() -> deckhand::config::Service {
    let cfg = deckhand::config::load_str(
        "[[service]]\nname=\"api\"\nimage=\"acme/api\"\n[env.dev]\nhosts=[\"local\"]\n",
        Path::new("t.toml"),
    )
    .expect("valid");
    cfg.services[0].clone()
}

/// Text with the characters hosts use against terminals mixed in.
fn hostile_text() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "\u{1b}]0;owned\u{7}",
        "\u{1b}[2J",
        "\u{1b}]52;c;b3duZWQ=\u{7}",
        "\u{9b}31m",
        "\u{202e}",
        "\r",
        "\n",
        "\t",
        "\u{0}",
        "\u{7f}",
        "<!channel>",
        "<https://evil|x>",
        "&",
        "DB_PASS=hunter2 ",
        "postgres://u:pw@db/x",
        "ü",
        "✓",
        "\\x1b",
        "plain ",
    ]);
    prop::collection::vec(prop_oneof![pieces.prop_map(String::from), ".{0,8}"], 0..24)
        .prop_map(|v| v.concat())
}

/// JSON-ish health bodies with hostile strings where the spec puts strings.
fn health_body() -> impl Strategy<Value = Vec<u8>> {
    (
        hostile_text(),
        hostile_text(),
        hostile_text(),
        prop::option::of(any::<f64>()),
    )
        .prop_map(|(status, key, value, uptime)| {
            serde_json::json!({"status": status, "uptime": uptime, "services": {key: value}, "version": "x"})
                .to_string()
                .into_bytes()
        })
}

fn assert_report_is_safe(r: &deckhand::state::HealthReport) -> Result<(), String> {
    let mut fields: Vec<&str> = Vec::new();
    fields.extend(r.status.as_deref());
    fields.extend(r.error.as_deref());
    fields.extend(r.body.as_deref());
    for (k, v) in &r.services {
        fields.push(k);
        fields.push(v);
    }
    for f in fields {
        if !sanitize::is_terminal_safe(f) || f.contains('\n') {
            return Err(format!("unsafe field {f:?} in {r:?}"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/props/hostile.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_sanitizer_leaves_no_control_character_and_is_stable(text in hostile_text()) {
        let t = sanitize::for_terminal(&text);
        prop_assert!(sanitize::is_terminal_safe(&t), "{t:?}");
        prop_assert_eq!(sanitize::for_terminal(&t), t.clone());
        let line = sanitize::for_terminal_line(&text);
        prop_assert!(sanitize::is_terminal_safe(&line) && !line.contains('\n') && !line.contains('\t'));
        let slack = sanitize::for_slack(&text);
        prop_assert!(sanitize::is_terminal_safe(&slack));
        prop_assert!(!slack.contains('<') && !slack.contains('>'), "{slack}");
    }

    #[test]
    fn health_reports_carry_only_safe_strings(status in 0u16..600, body in health_body()) {
        let r = deckhand::state::health::interpret(status, &body, 1);
        prop_assert!(assert_report_is_safe(&r).is_ok(), "{:?}", assert_report_is_safe(&r));
        let shown = format!("{r:?}");
        prop_assert!(!shown.contains("hunter2"), "{}", shown);
    }

    #[test]
    fn health_reports_of_random_bytes_are_safe(status in 0u16..600, body in prop::collection::vec(any::<u8>(), 0..600)) {
        let r = deckhand::state::health::interpret(status, &body, 1);
        prop_assert!(assert_report_is_safe(&r).is_ok(), "{:?}", assert_report_is_safe(&r));
    }

    #[test]
    fn a_registered_secret_never_survives_redaction(
        secret in "[A-Za-z0-9]{6,20}",
        before in hostile_text(),
        after in hostile_text(),
    ) {
        prop_assume!(!"[redacted]".contains(secret.as_str()));
        deckhand::redact::register_secret(&secret);
        let out = deckhand::redact::redact_text(&format!("{before}{secret}{after}"));
        prop_assert!(!out.contains(secret.as_str()), "{out}");
    }

    #[test]
    fn audit_records_read_back_are_safe(actor in hostile_text(), error in hostile_text()) {
        let mut r = deckhand::release::audit::AuditRecord::now(&actor, "dev", "h", "api", "deploy");
        r.error = Some(error);
        let line = serde_json::to_string(&r).expect("json");
        let log = deckhand::release::audit::parse(&format!("{line}\n"));
        prop_assert_eq!(log.records.len(), 1);
        let back = &log.records[0];
        prop_assert!(sanitize::is_terminal_safe(&back.actor));
        prop_assert!(back.error.as_deref().is_some_and(sanitize::is_terminal_safe));
    }

    #[test]
    fn alert_books_never_panic_and_read_back_safe(text in ".{0,400}", msg in hostile_text()) {
        let _ = deckhand::monitor::store::AlertBook::parse(&text);
        let book = format!(
            r#"{{"generation":3,"alerts":{{"cpu":{{"key":"cpu","rule":"r","state":"firing","message":{},"value":null,"active_since":null,"firing_since":null,"resolved_at":null}}}}}}"#,
            serde_json::to_string(&msg).expect("json")
        );
        let b = deckhand::monitor::store::AlertBook::parse(&book);
        prop_assert_eq!(b.generation, 3);
        prop_assert!(b.alerts.values().all(|a| sanitize::is_terminal_safe(&a.message)));
    }

    #[test]
    fn docker_names_never_panic_and_round_trip(
        text in ".{0,80}",
        repo in "([a-z0-9]{1,8}\\.[a-z]{2,3}(:[0-9]{2,5})?/)?[a-z0-9]{1,10}(/[a-z0-9]{1,10}){0,2}",
        tag in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}",
    ) {
        let _ = deckhand::state::image_tag(&text, &text);
        let _ = deckhand::state::normalize_repository(&text);
        let _ = deckhand::release::pull::split_image(&text);
        let _ = deckhand::release::pull::registry_of(&text);
        let _ = deckhand::release::registry::is_valid_tag(&text);
        let full = format!("{repo}:{tag}");
        prop_assert_eq!(deckhand::state::image_tag(&repo, &full), Some(tag.as_str()));
        prop_assert_eq!(
            deckhand::release::pull::split_image(&full),
            (repo.as_str(), tag.as_str())
        );
        prop_assert!(deckhand::release::registry::is_valid_tag(&tag));
    }

    #[test]
    fn env_files_yield_only_name_value_entries(text in ".{0,400}") {
        for e in deckhand::release::container::parse_env_file(&text) {
            prop_assert!(e.contains('='), "{e:?}");
        }
    }
}

/// Every parser over one input; a panic propagates.
fn every_parser(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let service = service();
    for status in [200u16, 503] {
        let r = deckhand::state::health::interpret(status, bytes, 1);
        if let Err(e) = assert_report_is_safe(&r) {
            panic!("{e}");
        }
    }
    let _ = deckhand::monitor::metrics::parse_sample(&text);
    let _ = deckhand::monitor::metrics::parse_cpu_line(&text);
    let _ = deckhand::state::parse_df(&text);
    let _ = deckhand::state::parse_meminfo(&text);
    let _ = deckhand::state::proxy_conf::parse(&service, &text);
    let log = deckhand::release::audit::parse(&text);
    for r in &log.records {
        assert!(sanitize::is_terminal_safe(&r.actor), "{r:?}");
    }
    let _ = deckhand::release::container::parse_env_file(&text);
    let book = deckhand::monitor::store::AlertBook::parse(&text);
    assert!(
        book.alerts
            .values()
            .all(|a| sanitize::is_terminal_safe(&a.message))
    );
    for line in text.lines() {
        let _ = deckhand::state::image_tag("docker.io/acme/api", line);
        let _ = deckhand::state::normalize_repository(line);
        let _ = deckhand::release::pull::split_image(line);
        let _ = deckhand::state::ContainerState::parse(line);
    }
    let clean = sanitize::for_terminal(&text);
    assert!(sanitize::is_terminal_safe(&clean));
    let _ = deckhand::redact::redact_text(&text);
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/props/corpus");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.expect("entry").path();
            (
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                std::fs::read(&p).expect("corpus file"),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_saved_corpus_goes_through_every_parser() {
    let corpus = corpus();
    assert!(
        corpus.len() >= 10,
        "the corpus is missing: {}",
        corpus.len()
    );
    for (name, bytes) in corpus {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| every_parser(&bytes))) {
            panic!("corpus file {name}: {e:?}");
        }
    }
}

/// Every generator at a small size in the suite; the long run is `scripts/fuzz.sh [CASES]`.
/// Prints inputs tried and panics per generator.
#[test]
fn fuzz_every_host_parser() {
    let cases: u32 = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2_000);
    let generators: Vec<(&str, BoxedStrategy<Vec<u8>>)> = vec![
        (
            "random bytes",
            prop::collection::vec(any::<u8>(), 0..2048).boxed(),
        ),
        (
            "hostile text",
            hostile_text().prop_map(String::into_bytes).boxed(),
        ),
        ("health JSON", health_body().boxed()),
        (
            "corpus, mutated",
            (
                prop::sample::select(corpus()),
                prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..16),
            )
                .prop_map(|((_, mut bytes), edits)| {
                    for (at, b) in edits {
                        if bytes.is_empty() {
                            bytes.push(b);
                        } else {
                            let i = at.index(bytes.len());
                            bytes[i] = b;
                        }
                    }
                    bytes
                })
                .boxed(),
        ),
    ];
    let mut total_panics = 0u64;
    // Panics are counted, not printed one by one.
    std::panic::set_hook(Box::new(|_| {}));
    for (name, strategy) in generators {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let mut tried = 0u64;
        let mut panics = 0u64;
        let mut first: Option<Vec<u8>> = None;
        for _ in 0..cases {
            let Ok(tree) = strategy.new_tree(&mut runner) else {
                continue;
            };
            let input = proptest::strategy::ValueTree::current(&tree);
            tried += 1;
            if catch_unwind(AssertUnwindSafe(|| every_parser(&input))).is_err() {
                panics += 1;
                first.get_or_insert(input);
            }
        }
        println!("fuzz: {name}: {tried} inputs tried, {panics} panics");
        if let Some(f) = first {
            println!(
                "fuzz: {name}: first panicking input: {:?}",
                String::from_utf8_lossy(&f)
            );
        }
        total_panics += panics;
    }
    let _ = std::panic::take_hook();
    assert_eq!(total_panics, 0, "parsers panicked");
}
