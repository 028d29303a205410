#!/usr/bin/env python3
"""One monitoring cycle over 10 SSH hosts (loopback sshd instances, one dockerd): wall time of a
cycle once connected, and bytes on the wire per host per cycle (counted by iptables on each
sshd's port). Runs `deckhand alerts --watch --output json` and reads its cycles.

    python3 scripts/bench-monitor.py [--hosts 10] [--cycles 6]"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lib as b  # noqa: E402

CHAIN = "DH_BENCH"


def ipt(*args, check=True):
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, check=check).stdout


def bytes_by_port(ports):
    out = ipt("-L", CHAIN, "-v", "-x", "-n")
    total = {p: 0 for p in ports}
    for line in out.splitlines():
        f = line.split()
        if len(f) < 2 or not f[1].isdigit():
            continue
        for p in ports:
            if f"spt:{p}" in line or f"dpt:{p}" in line:
                total[p] += int(f[1])
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--cycles", type=int, default=6)
    a = ap.parse_args()
    b.require_binary()
    work = tempfile.mkdtemp(prefix="dhb")
    name = "benchmo"
    b.cleanup_service(name)
    servers = [b.Sshd(work) for _ in range(a.hosts)]
    port = b.free_port()
    cfg = os.path.join(work, "deckhand.toml")
    text = b.service_toml(name, f"{b.REGISTRY}/deckhand/demo", port)
    text += '\n[env.dev]\nhosts = ["local"]\n\n[env.lab.alerts]\ninterval = "2s"\n'
    text += "\n".join(s.host_toml("lab", f"h{i + 1}") for i, s in enumerate(servers))
    open(cfg, "w").write(text)
    ipt("-N", CHAIN, check=False)
    ipt("-F", CHAIN)
    ipt("-I", "OUTPUT", "-j", CHAIN)
    for s in servers:
        ipt("-A", CHAIN, "-p", "tcp", "--dport", str(s.port))
        ipt("-A", CHAIN, "-p", "tcp", "--sport", str(s.port))
    ports = [s.port for s in servers]
    try:
        p, _ = b.deckhand(cfg, "deploy", "a000001", "--env", "dev", "--yes", state=work)
        p, _ = b.deckhand(cfg, "deploy", "a000002", "--env", "dev", "--yes", state=work)
        if p.returncode != 0:
            raise SystemExit(p.stderr)
        proc = subprocess.Popen([b.BIN, "--config", cfg, "alerts", "--watch", "--env", "lab", "--output", "json"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                env=dict(os.environ, XDG_STATE_HOME=work))
        cycles, per_cycle_bytes = [], []
        last = None
        for line in proc.stdout:
            v = json.loads(line)
            counts = bytes_by_port(ports)
            if last is not None:
                per_cycle_bytes.append({p: counts[p] - last[p] for p in ports})
            last = counts
            cycles.append(v)
            if len(cycles) >= a.cycles:
                break
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        unreachable = sum(1 for c in cycles for h in c["hosts"] if not h["reachable"])
        first, steady = cycles[0]["cycle_ms"], [c["cycle_ms"] for c in cycles[1:]]
        print(f"monitoring {a.hosts} SSH hosts (1 service each, both colors, /health probed):")
        print(f"  first cycle (connect included): {first} ms")
        print(f"  steady cycle: median {b.median(steady):.0f} ms (min {min(steady)}, max {max(steady)}) over {len(steady)}")
        # The counts between two outputs cover one cycle plus the idle wait (keep-alives).
        per_host = [x for d in per_cycle_bytes for x in d.values()]
        print(f"  bytes on the wire per host per cycle: median {b.median(per_host):.0f} "
              f"(min {min(per_host)}, max {max(per_host)})")
        print(f"  unreachable host-cycles: {unreachable}")
    finally:
        ipt("-D", "OUTPUT", "-j", CHAIN, check=False)
        ipt("-F", CHAIN, check=False)
        ipt("-X", CHAIN, check=False)
        for s in servers:
            s.stop()
        b.cleanup_service(name)


main()
