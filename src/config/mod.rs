//! `deckhand.toml`: where it is found, what it may say, and the checked model the rest uses.

pub mod ansible_inventory;
mod error;
pub mod init;
mod load;
mod model;
mod raw;
mod validate;

pub use error::ConfigError;
pub use load::{discover, load, load_str};
pub use model::{
    AlertThresholds, Config, DEFAULT_PROXY_IMAGE, Defaults, Environment, HostSpec, HostTarget,
    Service, SwarmSpec, WatchSettings,
};
