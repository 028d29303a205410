//! Knobs from the environment.

use std::time::Duration;

pub const DEFAULT_PORT: u16 = 3000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `PORT`, default 3000.
    pub port: u16,
    /// `DEMO_VERSION`, default "dev".
    pub version: String,
    /// `DEMO_START_DELAY_MS`: sleep this long before binding the port ("slow to start").
    pub start_delay: Duration,
    /// `DEMO_UNHEALTHY=1`: `/health` answers 503 from the start.
    pub unhealthy: bool,
    /// `DEMO_EXIT_AFTER_MS`: the process exits with code 3 this long after it started.
    pub exit_after: Option<Duration>,
    /// `DEMO_RESPONSE_DELAY_MS`: every response except `/health` waits this long (draining tests).
    pub response_delay: Duration,
    /// `DEMO_PAGES_FAIL=1`: every path except `/health` and `/admin/*` answers 500 (a release
    /// that passes its health check and fails real requests: the watch window's tests).
    pub pages_fail: bool,
}

impl Config {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Only `PORT`, for `--healthcheck`, which must not fail on the other knobs.
    pub fn port_from_env() -> Result<u16, String> {
        port(&|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let version = match get("DEMO_VERSION") {
            Some(v) if !v.trim().is_empty() => v.trim().to_string(),
            _ => "dev".to_string(),
        };
        Ok(Config {
            port: port(&get)?,
            version,
            start_delay: millis(&get, "DEMO_START_DELAY_MS")?.unwrap_or_default(),
            unhealthy: flag(&get, "DEMO_UNHEALTHY")?,
            exit_after: millis(&get, "DEMO_EXIT_AFTER_MS")?,
            response_delay: millis(&get, "DEMO_RESPONSE_DELAY_MS")?.unwrap_or_default(),
            pages_fail: flag(&get, "DEMO_PAGES_FAIL")?,
        })
    }
}

fn port(get: &impl Fn(&str) -> Option<String>) -> Result<u16, String> {
    match get("PORT") {
        None => Ok(DEFAULT_PORT),
        Some(v) if v.trim().is_empty() => Ok(DEFAULT_PORT),
        Some(v) => v
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("PORT={v:?} is not a port number (0-65535)")),
    }
}

fn millis(get: &impl Fn(&str) -> Option<String>, name: &str) -> Result<Option<Duration>, String> {
    match get(name) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| format!("{name}={v:?} is not a number of milliseconds")),
    }
}

fn flag(get: &impl Fn(&str) -> Option<String>, name: &str) -> Result<bool, String> {
    let Some(v) = get(name) else {
        return Ok(false);
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "off" => Ok(false),
        "1" | "true" | "yes" | "on" => Ok(true),
        _ => Err(format!("{name}={v:?}: use 1 or 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(
            c,
            Config {
                port: 3000,
                version: "dev".into(),
                start_delay: Duration::ZERO,
                unhealthy: false,
                exit_after: None,
                response_delay: Duration::ZERO,
                pages_fail: false,
            }
        );
    }

    #[test]
    fn all_knobs() {
        let c = cfg(&[
            ("PORT", "8080"),
            ("DEMO_VERSION", "a000001"),
            ("DEMO_START_DELAY_MS", "600000"),
            ("DEMO_UNHEALTHY", "1"),
            ("DEMO_EXIT_AFTER_MS", "300"),
            ("DEMO_RESPONSE_DELAY_MS", " 250 "),
        ])
        .unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.version, "a000001");
        assert_eq!(c.start_delay, Duration::from_secs(600));
        assert!(c.unhealthy);
        assert_eq!(c.exit_after, Some(Duration::from_millis(300)));
        assert_eq!(c.response_delay, Duration::from_millis(250));
    }

    #[test]
    fn empty_values_mean_default() {
        let c = cfg(&[("PORT", ""), ("DEMO_VERSION", " "), ("DEMO_UNHEALTHY", "")]).unwrap();
        assert_eq!(
            (c.port, c.version.as_str(), c.unhealthy),
            (3000, "dev", false)
        );
    }

    #[test]
    fn bad_values_are_errors_that_name_the_variable() {
        assert!(cfg(&[("PORT", "70000")]).unwrap_err().contains("PORT"));
        assert!(
            cfg(&[("DEMO_EXIT_AFTER_MS", "soon")])
                .unwrap_err()
                .contains("DEMO_EXIT_AFTER_MS")
        );
        assert!(
            cfg(&[("DEMO_UNHEALTHY", "maybe")])
                .unwrap_err()
                .contains("DEMO_UNHEALTHY")
        );
    }
}
