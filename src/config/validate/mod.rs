//! Validating the raw file into the checked model: every error names the file, the line, the
//! field and the fix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use toml::Spanned;

mod hosts;
mod swarm;

use super::ConfigError;
use super::load::line_col;
use super::model::{AlertThresholds, Config, Defaults, Environment, Service};
use super::raw::{RawAlerts, RawConfig, RawEnv, RawService, RawSsh};
use crate::util::parse_duration;
use hosts::{HostDefaults, expand_home};

static SERVICE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9-]{0,39}$").expect("static regex"));
static ENV_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9_-]{0,39}$").expect("static regex"));
static VAR_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("static regex"));
// OCI distribution: host[:port]/path components, lowercase, no tag or digest.
static REPOSITORY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^([a-zA-Z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$",
    )
    .expect("static regex")
});
static IMAGE_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([a-zA-Z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$")
        .expect("static regex")
});
static HOST_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_.@:\[\]-]{1,253}$").expect("static regex"));

pub(super) struct Validator<'a> {
    pub(super) text: &'a str,
    pub(super) path: &'a Path,
}

impl Validator<'_> {
    fn line<T>(&self, s: &Spanned<T>) -> usize {
        line_col(self.text, s.span().start).0
    }

    fn invalid<T>(
        &self,
        at: &Spanned<T>,
        field: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: self.line(at),
            field: field.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    fn invalid_at_line(
        &self,
        line: usize,
        field: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            field: field.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    pub(super) fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let connect_timeout = match &raw.defaults.connect_timeout {
            Some(s) => self.duration(s, "defaults.connect_timeout")?,
            None => Duration::from_secs(10),
        };
        let defaults = Defaults {
            user: raw.defaults.user.as_ref().map(|s| s.get_ref().clone()),
            identity_file: raw
                .defaults
                .identity_file
                .as_ref()
                .map(|s| expand_home(s.get_ref())),
            known_hosts: raw
                .defaults
                .known_hosts
                .as_ref()
                .map(|s| expand_home(s.get_ref())),
            connect_timeout,
        };
        let default_socket = raw
            .defaults
            .docker_socket
            .as_ref()
            .map(|s| s.get_ref().clone());
        let default_state_dir = raw.defaults.state_dir.as_ref().map(|s| s.get_ref().clone());

        if raw.service.is_empty() {
            return Err(self.invalid_at_line(
                1,
                "service",
                "no [[service]] is defined",
                "add a [[service]] table with at least `name` and `image` (see assets/deckhand.example.toml)",
            ));
        }
        let mut services = Vec::new();
        let mut names = BTreeSet::new();
        let mut ports: BTreeMap<u16, String> = BTreeMap::new();
        for s in raw.service {
            let svc = self.service(&s)?;
            if !names.insert(svc.name.clone()) {
                return Err(self.invalid(
                    &s.get_ref().name,
                    "service.name",
                    format!("service `{}` is defined twice", svc.name),
                    "give each [[service]] a unique name",
                ));
            }
            if let Some(other) = ports.insert(svc.public_port, svc.name.clone()) {
                return Err(self.invalid(
                    &s,
                    format!("service.{}.public_port", svc.name),
                    format!(
                        "port {} is already the public port of service `{other}`",
                        svc.public_port
                    ),
                    "each service's proxy needs its own public port on the host",
                ));
            }
            services.push(svc);
        }

        if raw.env.is_empty() {
            return Err(self.invalid_at_line(
                1,
                "env",
                "no environment is defined",
                "add e.g. `[env.dev]` with `hosts = [\"local\"]`",
            ));
        }
        let persist = self.ssh_persist(raw.ssh.as_ref(), "ssh.persist")?;
        let mut envs = BTreeMap::new();
        for (name, env) in raw.env {
            let ctx = HostDefaults {
                defaults: &defaults,
                docker_socket: default_socket.as_deref(),
                state_dir: default_state_dir.as_deref(),
            };
            let mut e = self.environment(&name, &env, &ctx)?;
            e.ssh_persist = match self.ssh_persist(
                env.get_ref().ssh.as_ref(),
                &format!("env.{name}.ssh.persist"),
            )? {
                Some(own) => own,
                None => persist.flatten(),
            };
            envs.insert(name, e);
        }
        Ok(Config {
            path: self.path.to_path_buf(),
            defaults,
            services,
            envs,
        })
    }

    fn duration(&self, s: &Spanned<String>, field: &str) -> Result<Duration, ConfigError> {
        parse_duration(s.get_ref()).map_err(|m| {
            self.invalid(
                s,
                field,
                m,
                "write a duration such as \"500ms\", \"30s\", \"5m\"",
            )
        })
    }

    /// `persist = "10m"` (an idle time of 1 s to 24 h) or `"off"`: `Some(None)` for off,
    /// `None` when not set.
    fn ssh_persist(
        &self,
        ssh: Option<&RawSsh>,
        field: &str,
    ) -> Result<Option<Option<Duration>>, ConfigError> {
        let Some(v) = ssh.and_then(|s| s.persist.as_ref()) else {
            return Ok(None);
        };
        let text = v.get_ref().trim();
        if matches!(text, "off" | "no" | "false" | "0") {
            return Ok(Some(None));
        }
        let fix = "write an idle time such as \"10m\" or \"1h\" (1s to 24h), or \"off\"";
        let d = parse_duration(text).map_err(|m| self.invalid(v, field, m, fix))?;
        if d < Duration::from_secs(1) || d > Duration::from_secs(24 * 3600) {
            return Err(self.invalid(v, field, format!("{text} is outside 1s to 24h"), fix));
        }
        Ok(Some(Some(d)))
    }

    fn port(&self, p: &Spanned<i64>, field: &str) -> Result<u16, ConfigError> {
        u16::try_from(*p.get_ref())
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| {
                self.invalid(
                    p,
                    field,
                    format!("{} is not a TCP port", p.get_ref()),
                    "use a number from 1 to 65535",
                )
            })
    }

    fn service(&self, s: &Spanned<RawService>) -> Result<Service, ConfigError> {
        let r = s.get_ref();
        let name = r.name.get_ref().clone();
        if !SERVICE_NAME.is_match(&name) {
            return Err(self.invalid(
                &r.name,
                "service.name",
                format!("`{name}` is not a valid service name"),
                "use lowercase letters, digits and `-` (it becomes part of container names), at most 40 characters",
            ));
        }
        let f = |field: &str| format!("service.{name}.{field}");
        let image = r.image.get_ref().clone();
        if !REPOSITORY.is_match(&image) {
            let fix = if image.contains('@')
                || image.rsplit('/').next().is_some_and(|l| l.contains(':'))
            {
                "give the repository without a tag or digest: tags are the git SHAs you deploy"
            } else {
                "use an image repository such as registry.example.com/acme/api (lowercase)"
            };
            return Err(self.invalid(
                &r.image,
                f("image"),
                format!("`{image}` is not an image repository"),
                fix,
            ));
        }
        let app_port = match &r.app_port {
            Some(p) => self.port(p, &f("app_port"))?,
            None => 3000,
        };
        let public_port = match &r.public_port {
            Some(p) => self.port(p, &f("public_port"))?,
            None => 3001,
        };
        let health_path = match &r.health_path {
            Some(p)
                if !p.get_ref().starts_with('/') || p.get_ref().contains(char::is_whitespace) =>
            {
                return Err(self.invalid(
                    p,
                    f("health_path"),
                    format!("`{}` is not an HTTP path", p.get_ref()),
                    "start it with `/`, e.g. \"/health\"",
                ));
            }
            Some(p) => p.get_ref().clone(),
            None => "/health".to_string(),
        };
        let proxy_image = match &r.proxy_image {
            Some(p) if !IMAGE_REF.is_match(p.get_ref()) => {
                return Err(self.invalid(
                    p,
                    f("proxy_image"),
                    format!("`{}` is not an image reference", p.get_ref()),
                    "use deckhand's HAProxy image (built from infrastructure/docker/haproxy), e.g. \"127.0.0.1:5000/deckhand/haproxy:2.6\"",
                ));
            }
            Some(p) => p.get_ref().clone(),
            None => crate::config::DEFAULT_PROXY_IMAGE.to_string(),
        };
        let keep_images = match &r.keep_images {
            Some(k) if *k.get_ref() < 1 || *k.get_ref() > 1000 => {
                return Err(self.invalid(
                    k,
                    f("keep_images"),
                    format!("{} images is not a retention count", k.get_ref()),
                    "keep at least 1 image (the default is 5)",
                ));
            }
            Some(k) => usize::try_from(*k.get_ref()).unwrap_or(5),
            None => 5,
        };
        let health_timeout = match &r.health_timeout {
            Some(d) => self.duration(d, &f("health_timeout"))?,
            None => Duration::from_secs(60),
        };
        if health_timeout.is_zero() {
            return Err(self.invalid(
                s,
                f("health_timeout"),
                "a zero health timeout can never pass",
                "use e.g. \"60s\"",
            ));
        }
        let drain = match &r.drain {
            Some(d) => self.duration(d, &f("drain"))?,
            // The longest wait for in-flight requests on the old color; usually it ends sooner.
            None => Duration::from_secs(30),
        };
        let stop_timeout = match &r.stop_timeout {
            Some(d) => self.duration(d, &f("stop_timeout"))?,
            None => Duration::from_secs(10),
        };
        let protected_tags = match &r.protected_tags {
            Some(t) => t.get_ref().clone(),
            None => vec!["latest".into(), "stable".into(), "v*".into()],
        };
        let mut env = BTreeMap::new();
        for (k, v) in &r.env {
            if !VAR_NAME.is_match(k) {
                return Err(self.invalid(
                    v,
                    f(&format!("env.{k}")),
                    format!("`{k}` is not an environment variable name"),
                    "use letters, digits and `_`, not starting with a digit",
                ));
            }
            if crate::redact::is_secret_name(k)
                || crate::redact::redact_text(v.get_ref()) != *v.get_ref()
            {
                return Err(self.invalid(
                    v,
                    f(&format!("env.{k}")),
                    format!("`{k}` looks like a secret, and secrets never go in the config file"),
                    format!(
                        "remove it here and put it in the service's env file on the host ({})",
                        r.env_file.as_ref().map_or_else(
                            || format!("/etc/deckhand/{name}.env"),
                            |p| p.get_ref().clone()
                        )
                    ),
                ));
            }
            env.insert(k.clone(), v.get_ref().clone());
        }
        let env_file = match &r.env_file {
            Some(p) if !p.get_ref().starts_with('/') => {
                return Err(self.invalid(
                    p,
                    f("env_file"),
                    format!("`{}` is not an absolute path", p.get_ref()),
                    "give the path on the host, e.g. \"/etc/deckhand/api.env\"",
                ));
            }
            Some(p) => p.get_ref().clone(),
            None => format!("/etc/deckhand/{name}.env"),
        };
        let watch = self.watch_settings(r, &f)?;
        Ok(Service {
            name,
            image,
            app_port,
            health_path,
            public_port,
            proxy_image,
            keep_images,
            health_timeout,
            drain,
            stop_timeout,
            protected_tags,
            env,
            env_file,
            auto_prune: r.auto_prune.unwrap_or(false),
            watch,
        })
    }

    /// `watch`, `watch_max_error_percent`, `watch_min_requests`, `watch_max_p99` (issue 13).
    fn watch_settings(
        &self,
        r: &RawService,
        f: &dyn Fn(&str) -> String,
    ) -> Result<crate::config::WatchSettings, ConfigError> {
        let mut w = crate::config::WatchSettings::default();
        if let Some(d) = &r.watch {
            w.window = self.duration(d, &f("watch"))?;
        }
        if let Some(p) = &r.watch_max_error_percent {
            let v = *p.get_ref();
            if !(0.0..=100.0).contains(&v) {
                return Err(self.invalid(
                    p,
                    f("watch_max_error_percent"),
                    format!("{v} is not a percentage"),
                    "use a number from 0 to 100 (the default is 5)",
                ));
            }
            w.max_error_percent = v;
        }
        if let Some(n) = &r.watch_min_requests {
            w.min_requests = u64::try_from(*n.get_ref()).map_err(|_| {
                self.invalid(
                    n,
                    f("watch_min_requests"),
                    format!("{} is not a request count", n.get_ref()),
                    "use 1 or more (the default is 20)",
                )
            })?;
        }
        if let Some(d) = &r.watch_max_p99 {
            w.max_p99 = self.duration(d, &f("watch_max_p99"))?;
        }
        Ok(w)
    }

    fn environment(
        &self,
        name: &str,
        env: &Spanned<RawEnv>,
        ctx: &HostDefaults<'_>,
    ) -> Result<Environment, ConfigError> {
        if !ENV_NAME.is_match(name) {
            return Err(self.invalid(
                env,
                format!("env.{name}"),
                format!("`{name}` is not a valid environment name"),
                "use lowercase letters, digits, `-` and `_`",
            ));
        }
        let r = env.get_ref();
        let mut hosts = Vec::new();
        if let Some(sw) = &r.swarm {
            hosts.push(self.swarm_manager(name, sw, r, ctx)?);
        }
        for h in &r.hosts {
            hosts.push(self.short_host(name, h, ctx)?);
        }
        for h in &r.host {
            hosts.push(self.long_host(name, h, ctx)?);
        }
        if let Some(inv) = &r.ansible_inventory {
            hosts.extend(self.inventory_hosts(name, inv, r.ansible_group.as_ref(), ctx)?);
        }
        if hosts.is_empty() {
            return Err(self.invalid(
                env,
                format!("env.{name}.hosts"),
                format!("environment `{name}` has no hosts"),
                "add hosts = [\"local\"] or ssh destinations such as \"deploy@203.0.113.10\"",
            ));
        }
        let mut seen = BTreeSet::new();
        for h in &hosts {
            if !seen.insert(h.name.clone()) {
                return Err(self.invalid(
                    env,
                    format!("env.{name}.hosts"),
                    format!("host `{}` appears twice", h.name),
                    "list each host once",
                ));
            }
        }
        let alerts = match &r.alerts {
            Some(a) => self.alerts(name, a.get_ref())?,
            None => AlertThresholds::default(),
        };
        Ok(Environment {
            name: name.to_string(),
            protected: r.protected,
            read_only: r.read_only,
            hosts,
            alerts,
            ssh_persist: None,
        })
    }

    fn alerts(&self, env: &str, r: &RawAlerts) -> Result<AlertThresholds, ConfigError> {
        let mut a = AlertThresholds::default();
        let pct =
            |v: &Option<Spanned<f64>>, field: &str, into: &mut f64| -> Result<(), ConfigError> {
                if let Some(p) = v {
                    let x = *p.get_ref();
                    if !(0.0..=100.0).contains(&x) {
                        return Err(self.invalid(
                            p,
                            format!("env.{env}.alerts.{field}"),
                            format!("{x} is not a percentage"),
                            "use a number from 0 to 100",
                        ));
                    }
                    *into = x;
                }
                Ok(())
            };
        pct(&r.cpu_percent, "cpu_percent", &mut a.cpu_percent)?;
        pct(&r.memory_percent, "memory_percent", &mut a.memory_percent)?;
        pct(&r.disk_percent, "disk_percent", &mut a.disk_percent)?;
        pct(&r.error_percent, "error_percent", &mut a.error_percent)?;
        if let Some(n) = &r.error_min_requests {
            a.error_min_requests = u64::try_from(*n.get_ref()).map_err(|_| {
                self.invalid(
                    n,
                    format!("env.{env}.alerts.error_min_requests"),
                    format!("{} is not a number of requests", n.get_ref()),
                    "use a whole number, 0 or more (default 10)",
                )
            })?;
        }
        for (v, field, into) in [
            (&r.error_for, "error_for", &mut a.error_for),
            (&r.cpu_for, "cpu_for", &mut a.cpu_for),
            (&r.memory_for, "memory_for", &mut a.memory_for),
            (&r.disk_for, "disk_for", &mut a.disk_for),
            (&r.keep_resolved, "keep_resolved", &mut a.keep_resolved),
            (&r.interval, "interval", &mut a.interval),
        ] {
            if let Some(d) = v {
                *into = self.duration(d, &format!("env.{env}.alerts.{field}"))?;
            }
        }
        if a.interval < Duration::from_secs(1) {
            a.interval = Duration::from_secs(1);
        }
        if let Some(n) = &r.health_failures {
            a.health_failures = u32::try_from(*n.get_ref())
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    self.invalid(
                        n,
                        format!("env.{env}.alerts.health_failures"),
                        format!("{} is not a count of failures", n.get_ref()),
                        "use a whole number of at least 1 (default 3)",
                    )
                })?;
        }
        Ok(a)
    }
}
