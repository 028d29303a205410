//! The console: snapshot tests of every view and dialog (TestBackend + insta), state
//! transitions, and an end-to-end run of the real binary in tmux against the local engine.

mod canary;
mod e2e;
mod e2e_events;
mod e2e_shell;
mod fixtures;
mod parts;
mod state;
mod styled;
mod swarm_view;
mod traffic_view;
mod views;
