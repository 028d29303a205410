//! The console: snapshot tests of every view and dialog (TestBackend + insta), state
//! transitions, and an end-to-end run of the real binary in tmux against the local engine.

mod canary;
mod e2e;
mod fixtures;
mod state;
mod traffic_view;
mod views;
