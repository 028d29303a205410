//! Parsers that read what hosts, operators and files hand us never panic, whatever the input:
//! the config loader, the `/health` parser, the audit-log reader, the proxy route reader,
//! host metrics and env files. Property tests with arbitrary and near-valid inputs.

use std::path::Path;

mod hostile;

use proptest::prelude::*;

/// Config-looking text: fragments of real keys and values glued at random.
fn config_like() -> impl Strategy<Value = String> {
    let fragments = prop::sample::select(vec![
        "[[service]]\n",
        "name = \"api\"\n",
        "image = \"acme/api\"\n",
        "app_port = 3000\n",
        "public_port = -1\n",
        "[env.dev]\n",
        "hosts = [\"local\"]\n",
        "[[env.lab.host]]\n",
        "ssh = \"root@x\"\n",
        "port = 99999\n",
        "env = { A = \"b\" }\n",
        "drain = \"5x\"\n",
        "health_timeout = \"\"\n",
        "keep_images = 0\n",
        "[env.dev.alerts]\n",
        "cpu_percent = 1e9\n",
        "ansible_inventory = \"/nonexistent\"\n",
        "= \n",
        "\"\"\"\n",
        "[[\n",
        "\u{0}",
        "ü\n",
    ]);
    prop::collection::vec(fragments, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_config_loader_never_panics_on_arbitrary_text(text in ".{0,400}") {
        let _ = deckhand::config::load_str(&text, Path::new("fuzz.toml"));
    }

    #[test]
    fn the_config_loader_never_panics_on_near_valid_configs(text in config_like()) {
        if let Err(e) = deckhand::config::load_str(&text, Path::new("fuzz.toml")) {
            // Every error names the file.
            prop_assert!(e.to_string().contains("fuzz.toml"), "{e}");
        }
    }

    #[test]
    fn the_health_parser_never_panics(status in 0u16..1000, body in prop::collection::vec(any::<u8>(), 0..300)) {
        let r = deckhand::state::health::interpret(status, &body, 1);
        // Anything but a 200 with status "healthy" is an error with words.
        if status != 200 {
            prop_assert!(r.error.is_some());
        }
    }

    #[test]
    fn the_health_parser_reads_json_shaped_bodies(
        status in prop::sample::select(vec!["healthy", "unhealthy", "degraded", ""]),
        uptime in prop::option::of(any::<f64>()),
        db in prop::sample::select(vec!["connected", "disconnected", "{}", "3"]),
    ) {
        let body = serde_json::json!({"status": status, "uptime": uptime, "services": {"database": db}});
        let r = deckhand::state::health::interpret(200, body.to_string().as_bytes(), 1);
        prop_assert_eq!(r.is_healthy(), status == "healthy");
    }

    #[test]
    fn the_audit_reader_keeps_good_lines_and_skips_bad_ones(junk in prop::collection::vec(".{0,80}", 0..10)) {
        let good = serde_json::to_string(&deckhand::release::audit::AuditRecord::now("a@b", "dev", "h", "api", "deploy"))
            .expect("json");
        let mut text = String::new();
        for j in &junk {
            text.push_str(j);
            text.push('\n');
            text.push_str(&good);
            text.push('\n');
        }
        let log = deckhand::release::audit::parse(&text);
        prop_assert!(log.records.len() >= junk.len());
    }

    #[test]
    fn host_metrics_and_routes_never_panic(text in ".{0,600}") {
        let _ = deckhand::monitor::metrics::parse_sample(&text);
        let _ = deckhand::state::parse_df(&text);
        let _ = deckhand::state::parse_meminfo(&text);
        let _ = deckhand::release::container::parse_env_file(&text);
        let cfg = deckhand::config::load_str(
            "[[service]]\nname=\"api\"\nimage=\"acme/api\"\n[env.dev]\nhosts=[\"local\"]\n",
            Path::new("t.toml"),
        ).expect("valid");
        let _ = deckhand::state::proxy_conf::parse(&cfg.services[0], &text);
    }

    #[test]
    fn refs_that_pass_validation_are_safe_words(r in ".{0,140}") {
        if deckhand::release::plan::validate_ref(&r).is_ok() {
            prop_assert!(r.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
            prop_assert!(!r.starts_with('-') && !r.starts_with('.'));
        }
    }
}
