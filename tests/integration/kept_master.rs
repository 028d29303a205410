//! `--keep-connection`: repeated CLI calls ride one ssh master that deckhand keeps, checks and
//! cleans up.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::harness::*;

struct Bed {
    _svc: TestService,
    sshd: SshServer,
    _dir: tempfile::TempDir,
    path: PathBuf,
    runtime: tempfile::TempDir,
}

fn bed(prefix: &str) -> Bed {
    let svc = TestService::new(prefix);
    svc.tag_local(&["a000001", "a000002"]);
    let sshd = SshServer::start();
    let (dir, path) = ssh_config(&svc, &sshd, "");
    let cfg = deckhand::config::load(&path).expect("config");
    svc.lay_out_by_hand(
        &cfg.services[0],
        ("blue", "a000002"),
        Some(("green", "a000001")),
    );
    let runtime = private_runtime_dir();
    Bed {
        _svc: svc,
        sshd,
        _dir: dir,
        path,
        runtime,
    }
}

impl Bed {
    fn run(&self, args: &[&str]) -> std::process::Output {
        let rt = self.runtime.path().display().to_string();
        deckhand_env(&self.path, args, &[("XDG_RUNTIME_DIR", rt.as_str())])
    }

    fn status(&self, keep: Option<&str>) -> std::process::Output {
        let flag = keep.map(|k| format!("--keep-connection={k}"));
        let mut args = vec!["status", "--env", "lab", "--output", "json"];
        if let Some(f) = &flag {
            args.push(f);
        }
        let out = self.run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["hosts"][0]["reachable"], true, "{v}");
        assert_eq!(v["hosts"][0]["services"][0]["live_color"], "blue", "{v}");
        out
    }

    fn masters(&self) -> Vec<String> {
        ssh_masters(self.sshd.port)
    }

    /// The one host directory under the kept masters' directory.
    fn host_dir(&self) -> PathBuf {
        let base = self.runtime.path().join("deckhand-ssh");
        let dirs: Vec<PathBuf> = std::fs::read_dir(&base)
            .expect("kept masters' directory")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        dirs[0].clone()
    }
}

fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kill9(pid: &str) {
    let _ = std::process::Command::new("kill")
        .args(["-9", pid])
        .status();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_master_is_reused_then_stopped_by_disconnect() {
    let b = bed("km");
    b.status(Some("5m"));
    let first = b.masters();
    assert_eq!(
        first.len(),
        1,
        "one master kept after the first call: {first:?}"
    );
    let base = b.runtime.path().join("deckhand-ssh");
    let mode = std::fs::metadata(&base).expect("base").permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the kept masters' directory is private");

    // The second call rides the same master: no new ssh connection, the same process.
    b.status(Some("5m"));
    assert_eq!(b.masters(), first, "the second status reused the master");
    // Without the flag a call has its own master and stops it; the kept one stays.
    b.status(None);
    assert_eq!(b.masters(), first);

    let out = b.run(&["disconnect"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("stopped 1 kept ssh master"),
        "{}",
        text(&out)
    );
    wait_until(
        "the master exits after disconnect",
        Duration::from_secs(10),
        || b.masters().is_empty(),
    );
    assert!(
        std::fs::read_dir(&base).expect("base").next().is_none(),
        "nothing left in {}",
        base.display()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_master_exits_after_its_idle_time() {
    let b = bed("kmidle");
    b.status(Some("2s"));
    assert_eq!(b.masters().len(), 1);
    // Generous: on a loaded machine the last channels of the call close late, and the idle
    // time counts from then.
    wait_until("the idle master exits", Duration::from_secs(60), || {
        b.masters().is_empty()
    });
    // Its record is stale now; the next call notices and connects afresh.
    b.status(Some("2s"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_or_foreign_control_socket_is_not_trusted() {
    let b = bed("kmstale");
    b.status(Some("5m"));
    let first = b.masters();
    assert_eq!(first.len(), 1);
    let dir = b.host_dir();

    // The master dies (killed, host rebooted): its socket file stays behind.
    kill9(&first[0]);
    wait_until("the killed master is gone", Duration::from_secs(5), || {
        b.masters().is_empty()
    });
    b.status(Some("5m"));
    let second = b.masters();
    assert_eq!(
        second.len(),
        1,
        "a new master replaced the dead one: {second:?}"
    );
    assert_ne!(second, first);

    // A socket that another user planted and recorded is never connected to.
    kill9(&second[0]);
    wait_until("the second master is gone", Duration::from_secs(5), || {
        b.masters().is_empty()
    });
    let planted = dir.join("planted.sock");
    let listener = std::os::unix::net::UnixListener::bind(&planted).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).expect("chown");
    std::fs::write(dir.join("control"), planted.display().to_string()).expect("record");
    b.status(Some("5m"));
    assert!(
        listener.accept().is_err(),
        "deckhand connected to a control socket it does not own"
    );
    assert_eq!(b.masters().len(), 1, "a new master of its own");

    // A kept masters' directory that others may enter is refused: no master is kept.
    let out = b.run(&["disconnect"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_until("disconnected", Duration::from_secs(10), || {
        b.masters().is_empty()
    });
    let base = b.runtime.path().join("deckhand-ssh");
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    b.status(Some("5m"));
    assert!(
        b.masters().is_empty(),
        "no master kept in an open directory"
    );
}

/// `[ssh] persist` keeps the master as the flag does; the flag (`=0`) turns it off for a call,
/// an environment's own `ssh.persist = "off"` wins over the global one, and a bad value is a
/// config error with its line (exit 2).
#[tokio::test(flavor = "multi_thread")]
async fn ssh_persist_in_the_config_keeps_the_master_and_the_flag_overrides_it() {
    let b = bed("kmcfg");
    let base = std::fs::read_to_string(&b.path).expect("config");
    let write = |extra: &str| std::fs::write(&b.path, format!("{base}\n{extra}")).expect("write");

    // The flag says off: nothing kept although the config says keep.
    write("[ssh]\npersist = \"5m\"\n");
    b.status(Some("0"));
    assert!(b.masters().is_empty(), "--keep-connection=0 wins");
    // The config alone keeps it, and the next call rides it.
    b.status(None);
    let first = b.masters();
    assert_eq!(first.len(), 1, "ssh.persist kept the master: {first:?}");
    b.status(None);
    assert_eq!(b.masters(), first, "the next call rode it");
    let out = b.run(&["disconnect"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    wait_until("disconnected", Duration::from_secs(10), || {
        b.masters().is_empty()
    });

    // The environment's own setting wins over [ssh].
    let lab_off = base.replace(
        "[[env.lab.host]]",
        "[env.lab.ssh]\npersist = \"off\"\n\n[[env.lab.host]]",
    );
    std::fs::write(&b.path, format!("{lab_off}\n[ssh]\npersist = \"5m\"\n")).expect("write");
    b.status(None);
    assert!(b.masters().is_empty(), "env.lab.ssh.persist = off wins");

    // A bad value: the file, the line and the field; exit 2, nothing connected.
    write("[ssh]\npersist = \"a while\"\n");
    let out = b.run(&["status", "--env", "lab"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = text(&out);
    let line = format!("{base}\n[ssh]\npersist = \"a while\"\n")
        .lines()
        .position(|l| l.starts_with("persist"))
        .expect("line")
        + 1;
    assert!(err.contains(&format!(":{line}: `ssh.persist`")), "{err}");
    assert!(b.masters().is_empty());
}
