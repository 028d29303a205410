//! The plumbing of a test Swarm: one bridge per cluster in the root namespace (its creation is
//! the cluster's lock on an address slot), a network namespace and veth per node, the FORWARD
//! rule that lets the nodes talk, and the teardown that removes all of it, also for a cluster
//! whose test process died without dropping it.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Names of everything a cluster creates start with this (bridge `dhsh<slot>`, namespaces
/// `dhsh<slot>n<i>`, veths `dhsh<slot>v<i>`, temp dir `/tmp/dhsh<slot>-<pid>-*`).
pub(super) const PREFIX: &str = "dhsh";
/// Concurrent clusters (one per test process) take different slots; a slot is a /24.
const SLOTS: u8 = 32;

pub(super) fn bridge(slot: u8) -> String {
    format!("{PREFIX}{slot}")
}

pub(super) fn netns(slot: u8, node: usize) -> String {
    format!("{PREFIX}{slot}n{node}")
}

pub(super) fn veth(slot: u8, node: usize) -> String {
    format!("{PREFIX}{slot}v{node}")
}

/// 10.252.<slot>.0/24: the bridge is .1, node i is .(10+i). Nothing else on the machine uses
/// 10.252/16 (the engine-restart test takes 10.231-247, the main dockerd 172.x).
pub(super) fn bridge_ip(slot: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 252, slot, 1)
}

pub(super) fn node_ip(slot: u8, node: usize) -> Ipv4Addr {
    let host = u8::try_from(10 + node).expect("at most 200 nodes");
    Ipv4Addr::new(10, 252, slot, host)
}

pub(super) fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {program} ({e}): install iproute2, iptables and util-linux (scripts/setup.sh does)"
            )
        })
}

pub(super) fn run_ok(program: &str, args: &[&str]) {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        crate::text_of(&out)
    );
}

/// The FORWARD rule of a cluster: the root namespace's FORWARD policy is DROP (the machine's
/// dockerd sets it) and bridged frames go through iptables (br_netfilter), so without it the
/// nodes could not reach each other.
fn forward_rule(op: &str, slot: u8) -> Output {
    let br = bridge(slot);
    run(
        "iptables",
        &[op, "FORWARD", "-i", &br, "-o", &br, "-j", "ACCEPT"],
    )
}

/// Takes the first free slot: creates its bridge (creating a link is atomic, so that is the
/// lock), labels it with our pid and `dir` (so a later run can clean up after a test process
/// that was killed) and lets bridged traffic through. A slot whose owner is dead is cleaned up
/// and taken.
pub(super) fn take_slot(make_dir: impl Fn(u8) -> PathBuf) -> (u8, PathBuf) {
    for slot in 0..SLOTS {
        let name = bridge(slot);
        let mut created = run("ip", &["link", "add", "name", &name, "type", "bridge"])
            .status
            .success();
        if !created && let Some(dir) = stale_owner(slot) {
            teardown(slot, dir.as_deref());
            created = run("ip", &["link", "add", "name", &name, "type", "bridge"])
                .status
                .success();
        }
        if !created {
            continue;
        }
        let dir = make_dir(slot);
        let alias = format!("pid={} dir={}", std::process::id(), dir.display());
        let addr = format!("{}/24", bridge_ip(slot));
        run_ok("ip", &["link", "set", "dev", &name, "alias", &alias]);
        run_ok("ip", &["addr", "add", &addr, "dev", &name]);
        run_ok("ip", &["link", "set", &name, "up"]);
        let out = forward_rule("-I", slot);
        assert!(
            out.status.success(),
            "iptables -I FORWARD for {name}: {}",
            crate::text_of(&out)
        );
        return (slot, dir);
    }
    panic!("no free Swarm test slot ({PREFIX}0..{PREFIX}{SLOTS} all in use by live test processes)")
}

/// `Some(dir)` when the slot's bridge belongs to a process that no longer runs (`dir` is the
/// cluster's temp dir, when the label names one). `None` when it is in use or being set up.
fn stale_owner(slot: u8) -> Option<Option<PathBuf>> {
    let alias = std::fs::read_to_string(format!("/sys/class/net/{}/ifalias", bridge(slot))).ok()?;
    let mut pid = None;
    let mut dir = None;
    for word in alias.split_whitespace() {
        if let Some(p) = word.strip_prefix("pid=") {
            pid = p.parse::<u32>().ok();
        } else if let Some(d) = word.strip_prefix("dir=") {
            dir = Some(PathBuf::from(d));
        }
    }
    // No label yet: its owner is between `link add` and `link set alias`.
    let pid = pid?;
    (!Path::new(&format!("/proc/{pid}")).exists()).then_some(dir)
}

/// Creates node `i`'s namespace, its veth into the cluster's bridge, and its address.
pub(super) fn add_node(slot: u8, i: usize) {
    let ns = netns(slot, i);
    let v = veth(slot, i);
    let addr = format!("{}/24", node_ip(slot, i));
    run_ok("ip", &["netns", "add", &ns]);
    run_ok(
        "ip",
        &[
            "link", "add", &v, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ],
    );
    run_ok("ip", &["link", "set", &v, "master", &bridge(slot), "up"]);
    run_ok("ip", &["-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
    run_ok("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
    run_ok("ip", &["-n", &ns, "link", "set", "lo", "up"]);
}

/// Processes whose command line mentions `dir` (dockerd, its containerd and shims, the relays,
/// sshd: everything the cluster started names its own temp dir).
fn processes_under(dir: &Path) -> Vec<u32> {
    let needle = dir.as_os_str().as_encoded_bytes();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

/// Children of `pid` (a containerd shim's children are the containers' init processes).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

pub(super) fn kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .output();
}

fn alive(pid: u32) -> bool {
    // A zombie has no cmdline left; it is gone for our purposes.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

/// Stops every process of the cluster (dockerd first, gently, so it stops its containers and
/// unmounts; then whatever is left, containers of a killed dockerd included), unmounts what is
/// left under `dir`, deletes the namespaces, the bridge and the FORWARD rule, and the dir.
pub(super) fn teardown(slot: u8, dir: Option<&Path>) {
    if let Some(dir) = dir {
        let dockerds: Vec<u32> = processes_under(dir)
            .into_iter()
            .filter(|p| {
                std::fs::read(format!("/proc/{p}/comm")).is_ok_and(|c| c.starts_with(b"dockerd"))
            })
            .collect();
        for p in &dockerds {
            kill(*p, "TERM");
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while dockerds.iter().any(|p| alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for _ in 0..3 {
            let left = processes_under(dir);
            if left.is_empty() {
                break;
            }
            for p in &left {
                let is_shim = std::fs::read(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.starts_with(b"containerd-shim"));
                if is_shim {
                    for c in children_of(*p) {
                        kill(c, "KILL");
                    }
                }
                kill(*p, "KILL");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        unmount_under(dir);
    }
    for ns in numbered(&run("ip", &["netns", "list"]), &format!("{PREFIX}{slot}n")) {
        let _ = run("ip", &["netns", "del", &ns]);
    }
    // The root end of a veth goes with its namespace, but asynchronously: delete it here so
    // the next cluster in this slot can create it again.
    let links = || {
        let out = run("ip", &["-o", "link", "show"]);
        let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split(": ").nth(1)?.split('@').next().map(str::to_string))
            .collect();
        names
            .into_iter()
            .filter(|n| {
                n == &bridge(slot)
                    || n.strip_prefix(&format!("{PREFIX}{slot}v"))
                        .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect::<Vec<_>>()
    };
    while forward_rule("-D", slot).status.success() {}
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = links();
        if left.is_empty() || Instant::now() > deadline {
            break;
        }
        for l in left.iter().filter(|l| **l != bridge(slot)) {
            let _ = run("ip", &["link", "del", l]);
        }
        // The bridge last: it is the slot's lock.
        if left.len() == 1 {
            let _ = run("ip", &["link", "del", &bridge(slot)]);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Lazily unmounts every mount point under `dir`, deepest first (overlay layers, netns bind
/// mounts of a dockerd that did not get to clean up).
fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = run("umount", &["-l", p]);
    }
}

/// Names in `ip netns list` output that are `prefix` followed by a number.
fn numbered(list: &Output, prefix: &str) -> Vec<String> {
    String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| {
            n.strip_prefix(prefix)
                .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
        .collect()
}
