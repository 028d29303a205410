//! The Swarm part of `deckhand status` (issue 16): the nodes, and per service and color the
//! replicas desired/running, on which nodes, and the tasks' last errors.

use super::output::Table;
use crate::state::{Color, HostStatus};

pub fn render(h: &HostStatus) -> String {
    let Some(sw) = &h.swarm else {
        return String::new();
    };
    let mut out = format!("  swarm through {} ({}):\n", h.name, sw.manager_node);
    let mut t = Table::new(["NODE", "ROLE", "STATE", "AVAILABILITY", "ADDRESS", "NOTE"]);
    for n in &sw.nodes {
        t.row([
            n.hostname.clone(),
            if n.leader {
                format!("{} (leader)", n.role)
            } else {
                n.role.clone()
            },
            if n.is_ready() {
                n.state.clone()
            } else {
                n.state.to_uppercase()
            },
            n.availability.clone(),
            n.addr.clone().unwrap_or_else(|| "-".into()),
            n.message.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    out.push_str(&t.render("    "));
    let mut t = Table::new(["SERVICE", "COLOR", "SHA", "REPLICAS", "NODES"]);
    let mut errors = String::new();
    for s in &sw.services {
        for color in Color::BOTH {
            let Some(c) = s.colors.get(&color).and_then(Option::as_ref) else {
                continue;
            };
            let live = if s.live_color == Some(color) {
                " LIVE"
            } else {
                ""
            };
            t.row([
                c.service.clone(),
                format!("{color}{live}"),
                c.sha.clone().unwrap_or_else(|| "?".into()),
                format!("{}/{}", c.running, c.desired),
                if c.nodes.is_empty() {
                    "-".into()
                } else {
                    c.nodes.join(", ")
                },
            ]);
            for e in &c.task_errors {
                errors.push_str(&format!(
                    "    {} task {} on {}: {} (wants {}){}\n",
                    c.service,
                    e.slot.map_or_else(|| "?".into(), |s| s.to_string()),
                    e.node.as_deref().unwrap_or("?"),
                    e.state,
                    e.desired,
                    e.error
                        .as_ref()
                        .map_or_else(String::new, |m| format!(": {m}"))
                ));
            }
        }
        t.row([
            format!("{}-proxy", s.name),
            "proxy".into(),
            "-".into(),
            if s.proxy_running { "1/1" } else { "0/1" }.to_string(),
            s.proxy_node.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    out.push_str(&t.render("    "));
    out.push_str(&errors);
    out
}
