//! The shell half of `doctor`: one fixed script run on the host (values as positional
//! parameters), its output parsed, and the verdicts as pure functions of what it said.

use super::{Check, CheckId};

/// `$1` Docker socket, `$2` state directory, `$3` Docker's data root, then the env files.
/// (`touch`, not `: >`: a failed redirection of a special builtin ends a POSIX shell.)
pub const SCRIPT: &str = r#"s=$1; d=$2; r=$3; shift 3
echo "user=$(id -un)"
echo "groups=$(id -Gn)"
if [ -S "$s" ]; then echo "socket=$(stat -c '%U %G %a' "$s")"; else echo "socket=missing"; fi
if [ -r "$s" ] && [ -w "$s" ]; then echo "socket_rw=yes"; else echo "socket_rw=no"; fi
if mkdir -p "$d" 2>/dev/null && touch "$d/.deckhand-doctor.$$" 2>/dev/null; then rm -f "$d/.deckhand-doctor.$$"; echo "state=ok"; else echo "state=no"; fi
echo "state_owner=$(stat -c '%U %G %a' "$d" 2>/dev/null || echo missing)"
echo "time=$(date +%s.%N)"
df -P -k / "$r" 2>/dev/null | tail -n +2 | while read -r fs total used avail pct mnt; do echo "df=$mnt $used $avail"; done
for f in "$@"; do
  if [ -e "$f" ]; then m=$(stat -c '%a %U' "$f"); if [ -r "$f" ]; then echo "env=$m r $f"; else echo "env=$m - $f"; fi
  else echo "env=missing - - $f"; fi
done
"#;

/// What the script printed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Probe {
    pub user: String,
    pub groups: Vec<String>,
    /// Owner, group and mode of the socket; `None`: no socket at that path.
    pub socket: Option<(String, String, String)>,
    pub socket_rw: bool,
    pub state_writable: bool,
    pub state_owner: Option<String>,
    /// The host's clock (Unix seconds).
    pub time: Option<f64>,
    /// Mount point, the KiB df counts (used + available: blocks reserved for root are left
    /// out, as in df's and the disk alert's percentage) and the available KiB.
    pub disks: Vec<(String, u64, u64)>,
    pub env_files: Vec<EnvFile>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvFile {
    pub path: String,
    /// Octal mode and owner; `None`: missing.
    pub mode_owner: Option<(String, String)>,
    pub readable: bool,
}

pub fn parse(text: &str) -> Probe {
    let mut p = Probe::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "user" => p.user = v.trim().to_string(),
            "groups" => p.groups = v.split_whitespace().map(str::to_string).collect(),
            "socket" if v != "missing" => {
                let f: Vec<&str> = v.split_whitespace().collect();
                if let [u, g, m] = f.as_slice() {
                    p.socket = Some((u.to_string(), g.to_string(), m.to_string()));
                }
            }
            "socket_rw" => p.socket_rw = v == "yes",
            "state" => p.state_writable = v == "ok",
            "state_owner" if v != "missing" => p.state_owner = Some(v.to_string()),
            "time" => p.time = v.trim().parse().ok(),
            "df" => {
                let f: Vec<&str> = v.split_whitespace().collect();
                if let [mnt, used, avail] = f.as_slice()
                    && let (Ok(u), Ok(a)) = (used.parse::<u64>(), avail.parse())
                    && !p.disks.iter().any(|(m, _, _)| m == mnt)
                {
                    p.disks.push((mnt.to_string(), u.saturating_add(a), a));
                }
            }
            "env" => {
                let mut f = v.splitn(4, ' ');
                let (mode, owner, r, path) = (f.next(), f.next(), f.next(), f.next());
                if let (Some(mode), Some(owner), Some(r), Some(path)) = (mode, owner, r, path) {
                    p.env_files.push(EnvFile {
                        path: path.to_string(),
                        mode_owner: (mode != "missing")
                            .then(|| (mode.to_string(), owner.to_string())),
                        readable: r == "r",
                    });
                }
            }
            _ => {}
        }
    }
    p
}

pub fn socket_check(p: &Probe, socket: &str, docker_error: Option<&str>) -> Check {
    let Some((owner, group, mode)) = &p.socket else {
        return Check::fail(
            CheckId::DockerSocket,
            format!("no Docker socket at {socket}"),
            "install Docker on the host, or set docker_socket to where it listens",
        );
    };
    match (p.socket_rw, docker_error) {
        (true, None) => Check::pass(
            CheckId::DockerSocket,
            format!("{} may use {socket} ({owner}:{group} {mode})", p.user),
        ),
        (false, _) => Check::fail(
            CheckId::DockerSocket,
            format!(
                "{} may not use {socket} ({owner}:{group} mode {mode}; {} is in: {})",
                p.user,
                p.user,
                p.groups.join(" ")
            ),
            format!(
                "add the user to the socket's group: `sudo usermod -aG {group} {}` (then a new ssh login)",
                p.user
            ),
        ),
        (true, Some(e)) => Check::fail(
            CheckId::DockerSocket,
            format!(
                "{socket} is writable for {} but Docker does not answer: {e}",
                p.user
            ),
            "check that dockerd runs (`systemctl status docker`) and that sshd allows stream-local forwarding",
        ),
    }
}

pub fn state_check(p: &Probe, dir: &str) -> Check {
    if p.state_writable {
        return Check::pass(
            CheckId::StateDir,
            format!("{dir} is writable for {}", p.user),
        );
    }
    Check::fail(
        CheckId::StateDir,
        format!(
            "{} cannot write {dir} ({})",
            p.user,
            p.state_owner.as_deref().unwrap_or("it does not exist")
        ),
        format!(
            "`sudo install -d -o {} -m 0755 {dir}` (Ansible's deckhand role does this)",
            p.user
        ),
    )
}

/// Fails at the disk alert's threshold or under 1 GiB free; warns 10 points below it.
pub fn disk_check(p: &Probe, fail_percent: f64) -> Check {
    if p.disks.is_empty() {
        return Check::fail(
            CheckId::Disk,
            "df printed nothing",
            "check that `df -P` works on the host",
        );
    }
    let mut worst = Check::pass(CheckId::Disk, String::new());
    let mut parts = Vec::new();
    for (mnt, total, avail) in &p.disks {
        let used = if *total == 0 {
            0.0
        } else {
            (total - avail.min(total)) as f64 * 100.0 / *total as f64
        };
        parts.push(format!(
            "{mnt} {used:.0}% used, {} free",
            crate::util::format_bytes(avail * 1024)
        ));
        if used >= fail_percent || *avail < 1024 * 1024 {
            worst = Check::fail(
                CheckId::Disk,
                String::new(),
                format!("free space on {mnt}: `deckhand prune`, `docker system df` on the host"),
            );
        } else if used >= fail_percent - 10.0 && worst.status == super::Status::Pass {
            worst = Check::warn(
                CheckId::Disk,
                String::new(),
                "plan to free space (`deckhand prune`)",
            );
        }
    }
    worst.detail = parts.join("; ");
    worst
}

/// `skew`: host clock minus ours at the middle of the round trip; `uncertainty`: half of it.
pub fn clock_check(skew: f64, uncertainty: f64) -> Check {
    let detail = format!("host clock {skew:+.2}s against this machine (±{uncertainty:.2}s)");
    let fix = "run NTP on the host (`timedatectl set-ntp true`; chrony or systemd-timesyncd)";
    let off = (skew.abs() - uncertainty).max(0.0);
    if off > 10.0 {
        Check::fail(
            CheckId::Clock,
            format!("{detail}: lock ages and alert windows will be wrong"),
            fix,
        )
    } else if off > 2.0 {
        Check::warn(CheckId::Clock, detail, fix)
    } else {
        Check::pass(CheckId::Clock, detail)
    }
}

pub fn env_file_check(p: &Probe, service: &str, path: &str) -> Check {
    let id = CheckId::EnvFile;
    let Some(f) = p.env_files.iter().find(|f| f.path == path) else {
        return Check::fail(
            id,
            format!("{service}: {path} was not examined"),
            "re-run doctor",
        );
    };
    let Some((mode, owner)) = &f.mode_owner else {
        return Check::fail(
            id,
            format!("{service}: {path} does not exist (secrets of the app come from it)"),
            format!(
                "create it with mode 0600 for {}: `sudo install -m 0600 -o {} /dev/null {path}` and fill it (Ansible writes it from the vault)",
                p.user, p.user
            ),
        );
    };
    if !matches!(mode.as_str(), "600" | "400") {
        return Check::fail(
            id,
            format!(
                "{service}: {path} has mode {mode} (owner {owner}): others may read the secrets"
            ),
            format!("`sudo chmod 600 {path}`"),
        );
    }
    if !f.readable {
        return Check::fail(
            id,
            format!(
                "{service}: {path} (mode {mode}, owner {owner}) is not readable by {}",
                p.user
            ),
            format!(
                "`sudo chown {} {path}`: deckhand reads it as the ssh user",
                p.user
            ),
        );
    }
    Check::pass(id, format!("{service}: {path} mode {mode}, owner {owner}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    const OUT: &str = "user=deploy\ngroups=deploy users\nsocket=root docker 660\nsocket_rw=no\nstate=no\nstate_owner=root root 755\ntime=1796112637.123\ndf=/ 1000000 50000\ndf=/ 1000000 50000\nenv=644 root r /etc/deckhand/api.env\nenv=missing - - /etc/deckhand/web env.env\n";

    #[test]
    fn the_script_output_parses() {
        let p = parse(OUT);
        assert_eq!(p.user, "deploy");
        assert_eq!(
            p.socket,
            Some(("root".into(), "docker".into(), "660".into()))
        );
        assert!(!p.socket_rw && !p.state_writable);
        assert_eq!(p.time, Some(1_796_112_637.123));
        assert_eq!(p.disks, [("/".to_string(), 1_050_000, 50_000)]);
        assert_eq!(p.env_files[1].path, "/etc/deckhand/web env.env");
        assert_eq!(p.env_files[1].mode_owner, None);
    }

    #[test]
    fn disk_use_is_dfs_percentage_without_the_reserved_blocks() {
        // This machine: 252 GiB of blocks, 45 used, 47 available to users (the rest reserved).
        // df and the disk alert say 49 %; counting the reserved blocks as used said 81 %.
        let p = parse("df=/ 47185920 49283072\n");
        let c = disk_check(&p, 90.0);
        assert_eq!(c.status, Status::Pass, "{c:?}");
        assert!(c.detail.contains("/ 49% used"), "{c:?}");
    }

    #[test]
    fn verdicts_say_what_to_do() {
        let p = parse(OUT);
        let s = socket_check(&p, "/var/run/docker.sock", Some("denied"));
        assert_eq!(s.status, Status::Fail);
        assert!(
            s.fix
                .as_deref()
                .unwrap_or("")
                .contains("usermod -aG docker deploy"),
            "{s:?}"
        );
        let st = state_check(&p, "/var/lib/deckhand");
        assert!(
            st.fix
                .as_deref()
                .unwrap_or("")
                .contains("install -d -o deploy"),
            "{st:?}"
        );
        assert_eq!(disk_check(&p, 90.0).status, Status::Fail, "95% used");
        let e = env_file_check(&p, "api", "/etc/deckhand/api.env");
        assert_eq!(e.status, Status::Fail);
        assert!(e.detail.contains("mode 644"), "{e:?}");
        let e = env_file_check(&p, "web", "/etc/deckhand/web env.env");
        assert!(e.detail.contains("does not exist"), "{e:?}");
    }

    #[test]
    fn clock_skew_beyond_the_round_trip_counts() {
        assert_eq!(clock_check(0.3, 0.05).status, Status::Pass);
        assert_eq!(clock_check(5.0, 0.05).status, Status::Warn);
        assert_eq!(clock_check(-120.0, 0.05).status, Status::Fail);
        assert_eq!(
            clock_check(11.0, 2.0).status,
            Status::Warn,
            "uncertainty is subtracted"
        );
    }
}
