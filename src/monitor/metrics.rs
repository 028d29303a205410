//! Host metrics in one remote command per sample: CPU counters, memory, load, disk of `/` and of
//! Docker's data root. CPU utilisation is the delta of `/proc/stat` between two samples.

use serde::{Deserialize, Serialize};

use crate::state::DiskUse;
use crate::transport::{Host, TransportError};

/// The aggregate `cpu` line of `/proc/stat`, in jiffies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CpuCounters {
    pub total: u64,
    pub idle: u64,
}

impl CpuCounters {
    /// Busy share between two samples, in percent; `None` when no time passed or the counters
    /// went backwards (a reboot).
    pub fn percent_since(&self, earlier: &CpuCounters) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let idle = self.idle.checked_sub(earlier.idle)?;
        if total == 0 {
            return None;
        }
        Some(((total - idle.min(total)) as f64 * 100.0 / total as f64 * 10.0).round() / 10.0)
    }
}

pub fn parse_cpu_line(text: &str) -> Option<CpuCounters> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest is already in user)
    // Saturating: a host's counters are input, and an overflow must not panic.
    let idle = v[3].saturating_add(v.get(4).copied().unwrap_or(0));
    let total: u64 = v.iter().take(8).fold(0u64, |a, b| a.saturating_add(*b));
    Some(CpuCounters { total, idle })
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostMetrics {
    pub cpu: Option<CpuCounters>,
    pub cpu_percent: Option<f64>,
    pub mem_total_bytes: Option<u64>,
    pub mem_available_bytes: Option<u64>,
    pub mem_percent: Option<f64>,
    pub load_average: Option<[f64; 3]>,
    pub disk_root: Option<DiskUse>,
    pub disk_docker: Option<DiskUse>,
    /// The fuller of the two disks, which is what the disk alert watches.
    pub disk_percent: Option<f64>,
    pub containers: Vec<ContainerStats>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContainerStats {
    pub name: String,
    pub cpu_percent: Option<f64>,
    pub mem_bytes: Option<u64>,
    pub mem_limit_bytes: Option<u64>,
}

const SAMPLE: &str =
    r#"head -n 1 /proc/stat; cat /proc/meminfo /proc/loadavg; echo "--- df"; df -P -k / "$@""#;

/// One sample: a single remote command (one SSH round trip).
pub async fn sample(host: &Host, docker_root: Option<&str>) -> Result<HostMetrics, TransportError> {
    let mut args = vec!["-c", SAMPLE, "deckhand-sample"];
    if let Some(r) = docker_root {
        args.push(r);
    }
    let out = host.exec_ok("sh", &args, None).await?;
    Ok(parse_sample(&out.stdout_text()))
}

pub fn parse_sample(text: &str) -> HostMetrics {
    let (head, df) = text.split_once("--- df\n").unwrap_or((text, ""));
    let mut m = HostMetrics {
        cpu: parse_cpu_line(head),
        ..Default::default()
    };
    let (total, avail) = crate::state::parse_meminfo(head);
    m.mem_total_bytes = total;
    m.mem_available_bytes = avail;
    if let (Some(t), Some(a)) = (total, avail)
        && t > 0
    {
        m.mem_percent = Some(((t - a.min(t)) as f64 * 1000.0 / t as f64).round() / 10.0);
    }
    m.load_average = head.lines().last().and_then(|l| {
        let mut it = l.split_whitespace().map(|v| v.parse::<f64>().ok());
        Some([it.next()??, it.next()??, it.next()??])
    });
    let disks = crate::state::parse_df(df);
    m.disk_root = disks.first().cloned();
    m.disk_docker = disks.get(1).cloned();
    m.disk_percent = disks.iter().map(|d| d.percent).reduce(f64::max);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE_TEXT: &str = "cpu  100 0 100 800 0 0 0 0 0 0\nMemTotal: 1000 kB\nMemAvailable: 100 kB\n0.50 0.40 0.30 1/100 9\n--- df\nFilesystem 1024-blocks Used Available Capacity Mounted on\n/dev/vda 1000 950 50 95% /\n";

    #[test]
    fn a_sample_parses() {
        let m = parse_sample(SAMPLE_TEXT);
        assert_eq!(
            m.cpu,
            Some(CpuCounters {
                total: 1000,
                idle: 800
            })
        );
        assert_eq!(m.mem_percent, Some(90.0));
        assert_eq!(m.load_average, Some([0.5, 0.4, 0.3]));
        assert_eq!(m.disk_percent, Some(95.0));
    }

    #[test]
    fn cpu_percent_is_a_delta() {
        let a = CpuCounters {
            total: 1000,
            idle: 800,
        };
        let b = CpuCounters {
            total: 1100,
            idle: 810,
        };
        assert_eq!(b.percent_since(&a), Some(90.0));
        assert_eq!(a.percent_since(&a), None);
        assert_eq!(
            a.percent_since(&b),
            None,
            "counters going back (reboot) give no value"
        );
    }

    #[test]
    fn garbage_gives_no_values_not_a_panic() {
        let m = parse_sample("garbage\n--- df\nmore");
        assert!(m.cpu.is_none() && m.mem_percent.is_none() && m.disk_percent.is_none());
    }
}
