//! Snapshots that keep style where it carries meaning: LIVE, the selection, ok and bad.

use crossterm::event::KeyCode;

use crate::fixtures::*;
use crate::views::started_with_a_failure;

#[test]
fn fleet_styled() {
    let (mut app, _) = fleet_app();
    insta::assert_snapshot!(render_styled(&mut app, 80, 12));
}

#[test]
fn host_containers_styled() {
    let (mut app, _) = fleet_app();
    app.on_key(code(KeyCode::Enter));
    insta::assert_snapshot!(render_styled(&mut app, 80, 12));
}

#[test]
fn progress_failed_styled() {
    let mut app = started_with_a_failure();
    insta::assert_snapshot!(render_styled(&mut app, 80, 20));
}
