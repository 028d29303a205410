#!/usr/bin/env python3
"""The console at idle over 1, 10 and 50 SSH hosts: bytes on the wire per host per minute (after
the initial load), the console's CPU and RSS, and the draw time of a 50-host frame.

Every host is a loopback sshd (bench_lib.Sshd) on the one dockerd, behind its own
bench_lib.LatencyRelay, whose byte counters are the host's wire bytes (both directions, SSH
framing included). One service is deployed once through the local engine (both colors: one
live, one kept), so every host shows the same service. The real binary runs as the console in
tmux (a pty of its own); CPU is utime+stime of the deckhand process (/proc/PID/stat) over the
idle window, the ssh masters' CPU is reported beside it. The frame time comes from
examples/console_frame.rs (ratatui TestBackend, 50 hosts, fleet and host views).

    python3 scripts/bench-console.py [--hosts 1,10,50] [--idle 60] [--delay-ms 0]
    DECKHAND_BIN=target/debug/deckhand python3 scripts/bench-console.py --hosts 1 --idle 30
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lib as b  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(f[11]) + int(f[12])  # utime, stime (fields 14 and 15)


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def ssh_masters(relay_ports):
    """Pids of the ssh processes that talk to our relays (the console's masters)."""
    out = []
    wanted = {str(p) for p in relay_ports}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0].endswith(b"ssh"):
            continue
        words = [a.decode(errors="replace") for a in argv]
        if any(w in wanted for w in words) or any(w.startswith("-p") and w[2:] in wanted for w in words):
            out.append(int(pid))
    return out


def tmux(sock, *args):
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True)


def run_one(n, a, work, cfg_base, name):
    servers = [b.Sshd(work) for _ in range(n)]
    relays = [b.LatencyRelay(s.port, a.delay_ms) for s in servers]
    cfg = os.path.join(work, f"console-{n}.toml")
    hosts = []
    for i, (s, r) in enumerate(zip(servers, relays)):
        # The known_hosts entry names the sshd's port; ssh checks the port it dials (the
        # relay's), so the entry is written for the relay.
        kh = os.path.join(s.dir, "known_hosts_relay")
        kind_key = open(os.path.join(s.dir, "host_key.pub")).read().split()[:2]
        open(kh, "w").write(f"[127.0.0.1]:{r.port} {kind_key[0]} {kind_key[1]}\n")
        hosts.append(s.host_toml("lab", f"h{i + 1:02d}").replace(f"port = {s.port}", f"port = {r.port}")
                     .replace(f'known_hosts = "{s.dir}/known_hosts"', f'known_hosts = "{kh}"'))
    text = cfg_base + f'\n[env.lab.alerts]\ninterval = "{a.interval}"\n\n' + "\n".join(hosts)
    open(cfg, "w").write(text)
    sock = f"dhbc{os.getpid()}-{n}"
    log_dir = os.path.join(work, f"state-{n}")
    os.makedirs(log_dir, exist_ok=True)
    cmd = f"XDG_STATE_HOME={log_dir} NO_COLOR=1 exec {b.BIN} --config {cfg} --env lab --log-level {a.log_level}"
    tmux(sock, "new-session", "-d", "-s", "bench", "-x", "160", "-y", "60", cmd)
    try:
        pid = int(tmux(sock, "list-panes", "-t", "bench", "-F", "#{pane_pid}").stdout.split()[0])
        # The initial load: every host has been read (bytes flowed through every relay) and
        # the warm-up has passed (first monitor cycles, /health clients, forwards).
        started = time.time()
        deadline = started + 240
        loaded = None
        while time.time() < deadline:
            head = tmux(sock, "capture-pane", "-p", "-t", "bench").stdout
            m = re.search(r"(\d+)/(\d+) up", head)
            if m and m.group(1) == m.group(2) == str(n) and all(r.bytes() > 0 for r in relays):
                loaded = time.time() - started
                break
            time.sleep(0.5)
        time.sleep(a.warmup)
        masters = ssh_masters([r.port for r in relays])
        before = [r.bytes() for r in relays]
        t0, c0 = time.monotonic(), cpu_ticks(pid)
        m0 = sum(cpu_ticks(p) for p in masters)
        time.sleep(a.idle)
        t1, c1 = time.monotonic(), cpu_ticks(pid)
        m1 = sum(cpu_ticks(p) for p in masters)
        after = [r.bytes() for r in relays]
        rss = rss_kib(pid)
        screen = tmux(sock, "capture-pane", "-p", "-t", "bench").stdout
        if a.show:
            print(screen, file=sys.stderr)
        minutes = (t1 - t0) / 60
        per_host = sorted((y - x) / minutes for x, y in zip(before, after))
        m = re.search(r"(\d+)/(\d+) up", screen)
        down = n - int(m.group(1)) if m else n
        return {
            "hosts": n,
            "bytes_min_median": b.median(per_host),
            "bytes_min_max": per_host[-1],
            "cpu_percent": (c1 - c0) / CLK_TCK / (t1 - t0) * 100,
            "ssh_cpu_percent": (m1 - m0) / CLK_TCK / (t1 - t0) * 100,
            "ssh_masters": len(masters),
            "rss_mib": rss / 1024,
            "down_rows": down,
            "loaded_s": loaded,
        }
    finally:
        tmux(sock, "send-keys", "-t", "bench", "q", "")
        time.sleep(1)
        tmux(sock, "kill-server")
        for r in relays:
            r.stop()
        for s in servers:
            s.stop()


def frame_time(a):
    exe = os.environ.get("DECKHAND_FRAME_BIN")
    if not exe:
        for profile in ("release", "debug"):
            p = os.path.join(b.ROOT, "target", profile, "examples", "console_frame")
            if os.path.exists(p):
                exe = p
                break
    if not exe:
        return "examples/console_frame missing: cargo build --release --example console_frame"
    p = subprocess.run([exe, "--hosts", "50", "--frames", str(a.frames)], capture_output=True, text=True)
    return f"({os.path.relpath(exe, b.ROOT)})\n" + (p.stdout.strip() or p.stderr.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", default="1,10,50")
    ap.add_argument("--idle", type=float, default=60, help="seconds measured at idle")
    ap.add_argument("--warmup", type=float, default=20, help="seconds after the initial load")
    ap.add_argument("--delay-ms", type=float, default=0, help="relay delay each way")
    ap.add_argument("--interval", default="15s", help="the environment's alert interval")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--log-level", default="info", help="the console's log level (its log is kept in the work dir)")
    ap.add_argument("--show", action="store_true", help="print the console's screen at the end")
    a = ap.parse_args()
    b.require_binary()
    work = tempfile.mkdtemp(prefix="dhbc")
    name = f"benchco{os.getpid() % 10000}"
    b.cleanup_service(name)
    port = b.free_port()
    local_state = os.path.join(work, "local-state")
    base = (f'[defaults]\nstate_dir = "{local_state}"\n\n'
            + b.service_toml(name, f"{b.REGISTRY}/deckhand/demo", port)
            + '\n[env.dev]\nhosts = ["local"]\n')
    cfg0 = os.path.join(work, "deploy.toml")
    open(cfg0, "w").write(base)
    results = []
    try:
        for sha in ("a000001", "a000002"):
            p, _ = b.deckhand(cfg0, "deploy", sha, "--env", "dev", "--yes", state=work)
            if p.returncode != 0:
                raise SystemExit(p.stderr)
        for n in [int(x) for x in a.hosts.split(",")]:
            r = run_one(n, a, work, base, name)
            results.append(r)
            print(f"  {n} hosts: done", file=sys.stderr)
    finally:
        b.cleanup_service(name)
    print(f"console at idle ({os.path.relpath(b.BIN, b.ROOT)}; relay delay {a.delay_ms} ms each way; "
          f"alert interval {a.interval}; {a.idle:.0f} s measured after a {a.warmup:.0f} s warm-up)")
    print("| hosts | all up after | bytes/host/min median (max) | console CPU | ssh masters CPU | console RSS | down at the end |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        up = f"{r['loaded_s']:.0f} s" if r["loaded_s"] is not None else "never (240 s)"
        print(f"| {r['hosts']} | {up} | {r['bytes_min_median']:.0f} ({r['bytes_min_max']:.0f}) | "
              f"{r['cpu_percent']:.1f} % | {r['ssh_cpu_percent']:.1f} % ({r['ssh_masters']}) | "
              f"{r['rss_mib']:.1f} MiB | {r['down_rows']} |")
    print("draw time of a 50-host frame:", frame_time(a))


main()
