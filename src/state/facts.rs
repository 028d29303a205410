//! Host facts: memory, load and disk use, read in one remote command beside the engine's info.

use super::model::{DiskUse, HostFacts};
use crate::transport::Host;

/// Host facts in one remote command (one SSH round trip), beside the engine's info. `df` is
/// asked for `/` and Docker's usual data root at once; another root (from the info) costs a
/// second `df` only on hosts that moved it.
const FACTS: &str = r#"cat /proc/meminfo /proc/loadavg; echo "--- df"; df -P -k / "$@""#;
const DEFAULT_DOCKER_ROOT: &str = "/var/lib/docker";

pub(crate) async fn read_facts(host: &Host) -> HostFacts {
    let mut facts = HostFacts::default();
    let run_facts = |root: &str| {
        let root = root.to_string();
        async move {
            host.exec("sh", &["-c", FACTS, "deckhand-facts", &root], None)
                .await
                .ok()
                .map(|o| o.stdout_text())
        }
    };
    // The connect's own `/version` request (it runs beside these reads).
    let version = host.engine_version();
    let (version, info, text) =
        tokio::join!(version, host.docker.info(), run_facts(DEFAULT_DOCKER_ROOT));
    if let Some(v) = version {
        facts.docker_version = v.version;
        facts.docker_api_version = v.api_version;
    }
    if let Ok(i) = info {
        facts.docker_root = i.docker_root_dir;
    }
    let text = match facts.docker_root.as_deref() {
        Some(root) if root != DEFAULT_DOCKER_ROOT => run_facts(root).await,
        _ => text,
    };
    if let Some(text) = text {
        let (proc_part, df_part) = text.split_once("--- df\n").unwrap_or((&text, ""));
        let (total, avail) = parse_meminfo(proc_part);
        facts.mem_total_bytes = total;
        facts.mem_available_bytes = avail;
        facts.load_average = proc_part.lines().last().and_then(parse_loadavg);
        let disks = parse_df(df_part);
        facts.disk_root = disks.first().cloned();
        facts.disk_docker = disks.get(1).cloned();
    }
    facts
}

pub fn parse_meminfo(text: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb.saturating_mul(1024))
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// `df -P -k` output, one entry per argument, in order.
pub fn parse_df(text: &str) -> Vec<DiskUse> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 6 {
                return None;
            }
            // Saturating: df's numbers are the host's, and an overflow must not panic.
            let total = f[1].parse::<u64>().ok()?.saturating_mul(1024);
            let used = f[2].parse::<u64>().ok()?.saturating_mul(1024);
            let avail = f[3].parse::<u64>().ok()?.saturating_mul(1024);
            // df's own percentage: used / (used + available), reserved blocks excluded.
            let denom = used.saturating_add(avail);
            let percent = if denom == 0 {
                0.0
            } else {
                used as f64 * 100.0 / denom as f64
            };
            Some(DiskUse {
                mount: f[5..].join(" "),
                total_bytes: total,
                used_bytes: used,
                percent: (percent * 10.0).round() / 10.0,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_output_parses() {
        let text = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 1000 250 750 25% /\noverlay 2000 1800 200 90% /var/lib/docker\n";
        let d = parse_df(text);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].mount, "/");
        assert_eq!(d[0].percent, 25.0);
        assert_eq!(d[1].used_bytes, 1800 * 1024);
        assert_eq!(d[1].percent, 90.0);
        assert!(parse_df("garbage\nmore garbage").is_empty());
    }

    #[test]
    fn meminfo_parses() {
        let (t, a) = parse_meminfo("MemTotal:  2048 kB\nMemFree: 10 kB\nMemAvailable:   1024 kB\n");
        assert_eq!(t, Some(2048 * 1024));
        assert_eq!(a, Some(1024 * 1024));
        assert_eq!(parse_meminfo(""), (None, None));
    }

    #[test]
    fn loadavg_parses() {
        assert_eq!(
            parse_loadavg("0.50 0.25 0.10 1/100 42"),
            Some([0.5, 0.25, 0.1])
        );
        assert_eq!(parse_loadavg("x"), None);
    }
}
