//! The fleet view of a Swarm environment (issue 16): the manager's nodes, a down one marked,
//! and each color's replicas with their nodes, under the host table.

use std::collections::BTreeMap;

use deckhand::state::Color;
use deckhand::swarm::{NodeStatus, SwarmColor, SwarmService, SwarmStatus};
use deckhand::tui::model::HostUpdate;

use crate::fixtures::*;

fn node(name: &str, role: &str, state: &str) -> NodeStatus {
    NodeStatus {
        id: format!("id-{name}"),
        hostname: name.into(),
        role: role.into(),
        availability: "active".into(),
        state: state.into(),
        leader: role == "manager",
        addr: None,
        message: (state == "down").then(|| "heartbeat failure".into()),
    }
}

fn color(svc: &str, sha: &str, desired: u32, nodes: &[&str]) -> SwarmColor {
    SwarmColor {
        service: svc.into(),
        sha: Some(sha.into()),
        image: None,
        desired,
        running: u32::try_from(nodes.len()).unwrap_or(0),
        nodes: nodes.iter().map(|n| (*n).to_string()).collect(),
        task_errors: Vec::new(),
    }
}

#[test]
fn the_fleet_view_shows_a_swarms_nodes_and_the_replicas_of_each_color() {
    let (mut app, t0) = app();
    let mut status = host_status("dev-1", service_status("a000003", "a000002"));
    status.swarm = Some(SwarmStatus {
        manager_node: "node0".into(),
        nodes: vec![
            node("node0", "manager", "ready"),
            node("node1", "worker", "ready"),
            node("node2", "worker", "down"),
        ],
        services: vec![SwarmService {
            name: "api".into(),
            live_color: Some(Color::Blue),
            proxy_running: true,
            proxy_node: Some("node0".into()),
            colors: BTreeMap::from([
                (
                    Color::Blue,
                    Some(color("api-blue", "a000003", 3, &["node0", "node1"])),
                ),
                (Color::Green, Some(color("api-green", "a000002", 0, &[]))),
            ]),
        }],
    });
    feed(
        &mut app,
        "dev-1",
        HostUpdate::Snapshot(Box::new(snapshot(status))),
    );
    app.set_clock(t0 + std::time::Duration::from_secs(1), NOW);
    let screen = render(&app, 110, 24);
    assert!(
        screen.contains("dev-1 nodes: node0 mgr ready · node1 wkr ready · NODE2 WKR DOWN"),
        "{screen}"
    );
    assert!(screen.contains("api blue 2/3 on node0, node1"), "{screen}");
    // A color scaled to zero (kept for a rollback) is not a line of its own.
    assert!(!screen.contains("api green"), "{screen}");
}
