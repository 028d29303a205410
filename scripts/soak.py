#!/usr/bin/env python3
"""Soak: `deckhand alerts --watch` (status + monitoring) against 50 SSH hosts for 10 minutes.
The hosts are sshd instances on distinct loopback addresses 127.0.0.2 … 127.0.0.51 (one real
dockerd behind them). Every 30 s it samples the deckhand process (open file descriptors,
threads, resident memory, tokio tasks alive as deckhand logs them each cycle) and counts ssh
master processes, then says whether anything grew.

    python3 scripts/soak.py [--hosts 50] [--minutes 10] [--interval 5s]"""

import argparse
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lib as b  # noqa: E402


def masters(port):
    """ssh masters for the soak's sshd port only (other ssh on the machine is not ours)."""
    out = subprocess.run(["pgrep", "-c", "-f", f"^ssh .*-M -f -N.* -p {port} "], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


def proc_stats(pid, port):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    status = open(f"/proc/{pid}/status").read()
    field = lambda k: int(next(l.split()[1] for l in status.splitlines() if l.startswith(k)))  # noqa: E731
    return {"fds": fds, "threads": field("Threads:"), "rss_kib": field("VmRSS:"), "ssh_masters": masters(port)}


def alive_tasks(state):
    """The tokio task count of the last cycle, from deckhand's own log line."""
    found = None
    for path in sorted(glob.glob(os.path.join(state, "deckhand", "deckhand*.log"))):
        for line in open(path, errors="replace"):
            m = re.search(r"alerts cycle.*alive_tasks=(\d+)", line)
            if m:
                found = int(m.group(1))
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--interval", default="5s")
    a = ap.parse_args()
    b.require_binary()
    work = tempfile.mkdtemp(prefix="dhsoak")
    name = "soak"
    b.cleanup_service(name)
    port = b.free_port()
    servers = [b.Sshd(work, address=f"127.0.0.{i + 2}", port=port) for i in range(a.hosts)]
    public = b.free_port()
    cfg = os.path.join(work, "deckhand.toml")
    text = b.service_toml(name, f"{b.REGISTRY}/deckhand/demo", public)
    text += f'\n[env.dev]\nhosts = ["local"]\n\n[env.soak.alerts]\ninterval = "{a.interval}"\n'
    text += "\n".join(s.host_toml("soak", f"h{i + 1}") for i, s in enumerate(servers))
    open(cfg, "w").write(text)
    try:
        for sha in ("a000001", "a000002"):
            p, _ = b.deckhand(cfg, "deploy", sha, "--env", "dev", "--yes", state=work)
            if p.returncode != 0:
                raise SystemExit(p.stderr)
        proc = subprocess.Popen([b.BIN, "--config", cfg, "alerts", "--watch", "--env", "soak", "--output", "json"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                env=dict(os.environ, XDG_STATE_HOME=work))
        cycles, unreachable, cycle_ms = [0], [0], []

        def read():
            for line in proc.stdout:
                v = json.loads(line)
                cycles[0] += 1
                cycle_ms.append(v["cycle_ms"])
                unreachable[0] += sum(1 for h in v["hosts"] if not h["reachable"])

        threading.Thread(target=read, daemon=True).start()
        samples = []
        end = time.time() + a.minutes * 60
        while time.time() < end:
            time.sleep(30)
            s = proc_stats(proc.pid, port)
            s["tokio_tasks"] = alive_tasks(work)
            s["t"] = round(time.time() - (end - a.minutes * 60))
            s["cycles"] = cycles[0]
            samples.append(s)
            print(json.dumps(s), flush=True)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        warm = samples[1] if len(samples) > 1 else samples[0]
        last = samples[-1]
        print(f"\n{a.hosts} hosts, {a.minutes} min, {cycles[0]} cycles "
              f"(median {b.median(cycle_ms):.0f} ms), unreachable host-cycles {unreachable[0]}")
        for k in ("fds", "threads", "tokio_tasks", "rss_kib", "ssh_masters"):
            seen = [x[k] for x in samples if x[k] is not None]
            print(f"  {k:12s} after 1 min {str(warm[k]):>8}  at the end {str(last[k]):>8}  max {str(max(seen, default='-')):>8}")
        time.sleep(1)
        after = masters(port)
        print(f"  ssh masters left after exit: {after}")
    finally:
        for s in servers:
            s.stop()
        b.cleanup_service(name)


main()
