//! What one run of deckhand works on, whichever face shows it: the loaded config, the chosen
//! environment and services, and whether anything may change. No clap in here: the CLI fills
//! [`SessionArgs`] from its flags, tests and the console build it directly.

use std::path::PathBuf;

use thiserror::Error;

use crate::config::{self, Config, ConfigError, Environment, Service};
use crate::release::runner::{PlanError, Request, Verb};

/// The choices a session is opened with.
#[derive(Debug, Clone, Default)]
pub struct SessionArgs {
    /// The config file; discovered when `None`.
    pub config: Option<PathBuf>,
    /// The environment; the config's default (or `dev`) when `None`.
    pub env: Option<String>,
    /// Only this service; all of them when `None`.
    pub service: Option<String>,
    /// `--read-only`: nothing that changes a host may run.
    pub read_only: bool,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub config: Config,
    pub env: Environment,
    pub services: Vec<Service>,
    pub read_only: bool,
}

#[derive(Debug, Error)]
pub enum SessionError {
    #[error("this config has several services ({names}); name one with --service")]
    SeveralServices { names: String },
    #[error("the config defines no service")]
    NoService,
    #[error(transparent)]
    Plan(#[from] PlanError),
}

impl Session {
    pub fn load(args: &SessionArgs) -> Result<Session, ConfigError> {
        let path = config::discover(args.config.as_deref())?;
        let cfg = config::load(&path)?;
        let env_name = match &args.env {
            Some(e) => e.clone(),
            None => cfg.default_env().unwrap_or("dev").to_string(),
        };
        let env = cfg.env(&env_name)?.clone();
        let services = match &args.service {
            Some(s) => vec![cfg.service(s)?.clone()],
            None => cfg.services.clone(),
        };
        Ok(Session {
            config: cfg,
            env,
            services,
            read_only: args.read_only,
        })
    }

    /// Why nothing may change, if so.
    pub fn refusal(&self) -> Option<String> {
        if self.read_only {
            Some("--read-only is set".to_string())
        } else if self.env.read_only {
            Some(format!(
                "environment `{}` is read_only in {}",
                self.env.name,
                self.config.path.display()
            ))
        } else {
            None
        }
    }

    /// The one service an action names.
    pub fn one_service(&self) -> Result<&Service, SessionError> {
        match self.services.as_slice() {
            [s] => Ok(s),
            [] => Err(SessionError::NoService),
            many => Err(SessionError::SeveralServices {
                names: many
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// A request of this session's environment; it carries the session's refusal.
    pub fn request(
        &self,
        service: &Service,
        hosts: &[String],
        verb: Verb,
        actor: &str,
    ) -> Result<Request, SessionError> {
        let mut r = Request::new(&(&self.env).into(), service, hosts, verb, actor)?;
        r.read_only = self.refusal();
        Ok(r)
    }
}
