//! The host view draws each color's traffic through the proxy beside its health sparkline.

use crossterm::event::KeyCode;
use deckhand::state::{Color, ColorTraffic, ServiceTraffic};
use deckhand::tui::model::HostUpdate;

use crate::fixtures::*;

#[test]
fn host_view_shows_the_live_colors_request_rate_and_errors() {
    let (mut app, _) = app();
    for (i, lat) in [3u64, 5, 4, 9, 3].into_iter().enumerate() {
        let mut s = service_status("a000003", "a000002");
        if let Some(Some(b)) = s.colors.get_mut(&Color::Blue) {
            b.health = Some(health(lat));
        }
        s.traffic = Some(ServiceTraffic {
            at: 1_800_000_000,
            window_s: 60,
            colors: [
                (
                    Color::Blue,
                    ColorTraffic {
                        in_rotation: true,
                        requests: 600 * (i as u64 + 1),
                        req_per_s: 10.0 * (i as f64 + 1.0),
                        status_2xx: 600 * (i as u64 + 1) - 6,
                        status_5xx: 6,
                        error_5xx_percent: Some(1.0),
                        p50_ms: Some(3),
                        p99_ms: Some(41),
                        ..Default::default()
                    },
                ),
                (Color::Green, ColorTraffic::default()),
            ]
            .into(),
            unrouted: 0,
        });
        feed(
            &mut app,
            "dev-1",
            HostUpdate::Snapshot(Box::new(snapshot(host_status("dev-1", s)))),
        );
    }
    app.on_key(code(KeyCode::Enter));
    let screen = render(&app, 120, 30);
    assert!(screen.contains("50 req/s, 5xx 1%, p99 41ms"), "{screen}");
    insta::assert_snapshot!(screen);
}
