//! `prune` on a Swarm removes old images on every node (issue 16): a one-shot job, one task per
//! node, talks to each node's own engine through its `/var/run/docker.sock`. The test bed gives
//! every node its own mount namespace, so that path is the node's engine, never the machine's
//! dockerd; the tests below check that too.

use std::collections::BTreeSet;

use crate::harness::swarm::{MANAGER, SwarmCluster};
use crate::harness::*;
use crate::swarm_cluster::{deploy_ok, swarm_config};

/// The tags of `repo` node `i` holds.
fn node_tags(swarm: &SwarmCluster, i: usize, repo: &str) -> BTreeSet<String> {
    swarm
        .docker_ok(
            i,
            &[
                "images",
                repo,
                "--format",
                "{{.Tag}}",
                "--filter",
                "dangling=false",
            ],
        )
        .lines()
        .filter(|t| !t.is_empty() && *t != "<none>")
        .map(str::to_string)
        .collect()
}

/// `docker images --digests` of the repository on every node, for failure messages.
fn images_everywhere(swarm: &SwarmCluster, repo: &str) -> String {
    (0..swarm.len())
        .map(|i| {
            format!(
                "--- {}:\n{}\n{}",
                swarm.hostname(i),
                text(&swarm.docker(i, &["images", "--digests", repo])),
                text(&swarm.docker(
                    i,
                    &["ps", "-a", "--format", "{{.Image}} {{.Status}} {{.Names}}"]
                ))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn each_swarm_nodes_docker_socket_is_its_own_engine_not_the_machines() {
    let swarm = SwarmCluster::start(2);
    let machine = docker_ok(&["info", "--format", "{{.Name}}"]);
    for i in 0..swarm.len() {
        let out = swarm.docker_ok(
            i,
            &[
                "run",
                "--rm",
                "-v",
                "/var/run/docker.sock:/var/run/docker.sock",
                PROXY_IMAGE,
                "sh",
                "-c",
                "printf 'GET /info HTTP/1.0\\r\\n\\r\\n' | socat -t 10 - UNIX-CONNECT:/var/run/docker.sock",
            ],
        );
        assert!(
            out.contains(&format!("\"Name\":\"{}\"", swarm.hostname(i))),
            "{}'s /var/run/docker.sock is not its own engine: {out}",
            swarm.hostname(i)
        );
        assert!(
            !out.contains(&format!("\"Name\":\"{machine}\"")),
            "{} reached the machine's dockerd: {out}",
            swarm.hostname(i)
        );
    }
}

/// Seven releases on three nodes, `prune --keep 3` keeps both colors' releases (the live one
/// and the rollback target) and the three before them: the two oldest go from every node, not only the manager; an image a container on a worker still
/// runs is kept and said so; the machine's dockerd (whose socket is /var/run/docker.sock
/// outside the nodes' namespaces) keeps its tags of the same repository. Then a worker is
/// down during a prune: it is reported, and the prune finishes on the others.
#[test]
fn swarm_prune_removes_old_images_on_every_node_keeps_what_is_in_use_and_reports_a_down_node() {
    let mut swarm = SwarmCluster::start(3);
    let svc = TestService::new("swp");
    svc.push(&GOOD_SHAS);
    let (_d, path) = swarm_config(&svc, &swarm, 3);
    for sha in GOOD_SHAS {
        deploy_ok(&path, &swarm, &["deploy", sha], sha);
    }
    let before: Vec<BTreeSet<String>> = (0..swarm.len())
        .map(|i| node_tags(&swarm, i, &svc.repo))
        .collect();
    for (i, tags) in before.iter().enumerate() {
        assert!(
            tags.contains(GOOD_SHAS[0]) || i == MANAGER,
            "{} never pulled the first release: {tags:?}",
            swarm.hostname(i)
        );
    }

    // A container someone runs by hand on node 2 from the oldest release: Docker refuses to
    // remove its image without force, so it is kept and reported in use.
    let image = |sha: &str| format!("{}:{sha}", svc.repo);
    swarm.docker_ok(
        2,
        &[
            "run",
            "-d",
            "--name",
            "debug-old-release",
            &image(GOOD_SHAS[0]),
        ],
    );
    // The machine's dockerd has the same repository's old tags: a job that reached it through
    // /var/run/docker.sock would remove them.
    svc.tag_local(&GOOD_SHAS[..2]);

    // A wrong `node_docker_socket` (here the manager's socket, which every node can see on
    // this shared filesystem): each worker's task finds another node's engine behind it and
    // removes nothing; the prune fails and says how to fix it.
    let bad = std::fs::read_to_string(&path).expect("config")
        + &format!(
            "node_docker_socket = \"{}\"\n",
            swarm.manager_socket().display()
        );
    let (_bd, bad_path) = write_config(&bad);
    let out = deckhand(
        &bad_path,
        &["prune", "--keep", "3", "--env", "lab", "--yes"],
    );
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "wrong socket: {report}");
    assert!(
        report.contains("node1: removed nothing; FAILED the Docker socket mounted into its task is not this node's engine")
            && report.contains("swarm.node_docker_socket"),
        "{report}"
    );
    for (i, tags) in before.iter().enumerate().skip(1) {
        assert_eq!(
            &node_tags(&swarm, i, &svc.repo),
            tags,
            "{} was pruned through another engine's socket: {report}",
            swarm.hostname(i)
        );
    }

    let t = std::time::Instant::now();
    let out = deckhand(&path, &["prune", "--keep", "3", "--env", "lab", "--yes"]);
    eprintln!("prune on 3 nodes took {:?}", t.elapsed());
    let report = text(&out);
    let after: Vec<BTreeSet<String>> = (0..swarm.len())
        .map(|i| node_tags(&swarm, i, &svc.repo))
        .collect();
    let machine_kept = GOOD_SHAS[..2]
        .iter()
        .filter(|s| docker(&["image", "inspect", &image(s)]).status.success())
        .count();
    for s in &GOOD_SHAS[..2] {
        let _ = docker(&["rmi", &image(s)]);
    }
    assert_eq!(
        out.status.code(),
        Some(0),
        "prune: {report}\n{}",
        images_everywhere(&swarm, &svc.repo)
    );
    assert_eq!(
        machine_kept, 2,
        "the prune job removed images of the machine's dockerd: {report}"
    );
    let kept: BTreeSet<String> = GOOD_SHAS[2..].iter().map(|s| (*s).to_string()).collect();
    for i in 0..swarm.len() {
        let mut expect: BTreeSet<String> = before[i].intersection(&kept).cloned().collect();
        if i == 2 {
            expect.insert(GOOD_SHAS[0].to_string());
        }
        assert_eq!(
            after[i],
            expect,
            "{}: before {:?}\n{report}\n{}",
            swarm.hostname(i),
            before[i],
            images_everywhere(&swarm, &svc.repo)
        );
        assert!(
            report.contains(swarm.hostname(i)),
            "the report names every node: {report}"
        );
    }
    assert!(
        report.contains(&format!("{} in use", GOOD_SHAS[0])),
        "the image in use is reported: {report}"
    );
    // The job is gone once its results are read.
    let services = swarm.docker_ok(MANAGER, &["service", "ls", "--format", "{{.Name}}"]);
    assert!(
        !services.contains("prune"),
        "the prune job was left behind: {services}"
    );
    let audit = audit_records(&swarm.state_dir());
    let rec = audit
        .iter()
        .rev()
        .find(|r| r["action"] == "prune")
        .unwrap_or_else(|| panic!("no prune record: {audit:?}"));
    assert_eq!(rec["outcome"], "success", "{rec}");
    let details = rec["details"].as_str().unwrap_or_default();
    assert!(
        details.contains("node1") && details.contains(GOOD_SHAS[1]),
        "{rec}"
    );

    // A worker down during a prune: reported, not waited for; the others are pruned.
    swarm.kill_node_dockerd(1);
    swarm.wait_node_status(1, "Down", std::time::Duration::from_secs(60));
    let t = std::time::Instant::now();
    let out = deckhand(&path, &["prune", "--keep", "1", "--env", "lab", "--yes"]);
    let took = t.elapsed();
    let report = text(&out);
    eprintln!("prune with node1 down took {took:?}: {report}");
    assert_eq!(out.status.code(), Some(0), "prune: {report}");
    assert!(
        report.contains("node1") && report.contains("down"),
        "the down node is reported: {report}"
    );
    let left = node_tags(&swarm, MANAGER, &svc.repo);
    assert!(
        !left.contains(GOOD_SHAS[3]) && left.contains(GOOD_SHAS[4]) && left.contains(GOOD_SHAS[5]),
        "the manager was pruned to the live, the rollback target and one more: {left:?}\n{report}"
    );
}

/// `auto_prune = true` on a Swarm prunes after each deploy, as on droplets (before: the Swarm
/// deploy ignored it and every release stayed on the nodes).
#[test]
fn swarm_auto_prune_after_a_deploy_keeps_only_the_retained_releases() {
    let swarm = SwarmCluster::start(1);
    let svc = TestService::new("swap");
    let shas = &GOOD_SHAS[..4];
    svc.push(shas);
    let (_d, path) = swarm_config(&svc, &swarm, 1);
    let text_of = std::fs::read_to_string(&path).expect("config");
    let with_prune = text_of.replacen(
        "drain = \"10s\"\n",
        "drain = \"10s\"\nauto_prune = true\nkeep_images = 1\n",
        1,
    );
    assert_ne!(with_prune, text_of, "the service table was not found");
    std::fs::write(&path, with_prune).expect("config");
    for sha in &shas[..3] {
        deploy_ok(&path, &swarm, &["deploy", sha], sha);
    }
    let last = deckhand(&path, &["deploy", shas[3], "--env", "lab", "--yes"]);
    let last_out = text(&last);
    assert_eq!(last.status.code(), Some(0), "{last_out}");
    assert!(last_out.contains("prune"), "no prune step: {last_out}");
    // Both colors' releases (the live one and the rollback target, whose color is scaled to 0
    // with its spec kept) and the one most recent release besides them, as on droplets.
    let want: BTreeSet<String> = shas[1..].iter().map(|s| s.to_string()).collect();
    assert_eq!(
        node_tags(&swarm, MANAGER, &svc.repo),
        want,
        "{last_out}\n{}",
        images_everywhere(&swarm, &svc.repo)
    );
    let out = deckhand(&path, &["rollback", "--env", "lab", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (_, v) = status_json(&path);
    assert_eq!(v["hosts"][0]["services"][0]["live_sha"], shas[2], "{v:#}");
}
