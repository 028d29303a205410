//! deckhand: blue/green releases of Docker services on a few droplets, as a console and a CLI.
//!
//! The layout follows the architecture (see `docs/architecture.md`): `config` reads and validates
//! `deckhand.toml`; `transport` reaches a host (local engine or SSH); `state` reads a host back
//! per the on-droplet contract; `release` changes it; `session` is what one run works on;
//! `release::runner` is the one loop both faces use; `cli` and `tui` only ask and show, and
//! never import each other.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod doctor;
pub mod exit;
pub mod logging;
pub mod logs;
pub mod monitor;
pub mod redact;
pub mod release;
pub mod sanitize;
pub mod session;
pub mod state;
pub mod swarm;
pub mod transport;
pub mod tui;
pub mod util;
