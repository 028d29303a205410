#!/usr/bin/env python3
"""The switch, before (nginx: write the config, `nginx -t`, graceful reload) and after (HAProxy:
one exec that moves the live color in memory and mirrors it to disk), on one SSH host.

For each proxy: deploy two releases, then run CYCLES rollback+deploy pairs while
  - wrk -t2 -c8 keeps 8 connections alive through the public port (what browsers, HTTP/1.1
    pools and load balancers with backend keep-alive do), and
  - a client sends requests on fresh connections;
and print the switch step's time (median, p90; from the engine's step events), the time of
switch+confirm, requests served during the cycles, and failures of each kind.

    python3 scripts/bench-switch.py [--cycles 5] [--before BIN] [--after BIN]

BIN defaults: --after target/release/deckhand (or $DECKHAND_BIN); --before has no default: a
deckhand built from a commit before the HAProxy switch (e.g. main's target/debug/deckhand before
the merge). Without --before only the HAProxy figures are printed. Run as root after
scripts/setup.sh (dockerd, registry, test images, wrk)."""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lib as b  # noqa: E402


def run(binary, cfg, work, *args):
    p, total = b.deckhand(cfg, *args, "--env", "lab", "--yes", "--output", "json", state=work,
                          binary=binary)
    if p.returncode != 0:
        raise SystemExit(f"{args} exited {p.returncode}: {p.stderr[-2000:]}")
    steps = {}
    for e in b.events(p.stdout):
        if e.get("event") == "step_finished":
            steps[e["step"]] = steps.get(e["step"], 0) + e["elapsed_ms"]
    return total, steps


def wrk_summary(text):
    reqs = re.search(r"(\d+) requests in ([\d.]+)(\w+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = sum(int(x) for x in sock.groups()) if sock else 0
    return {
        "requests": int(reqs.group(1)) if reqs else 0,
        "socket_errors": errors,
        "socket_detail": sock.group(0) if sock else "Socket errors: none",
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def bench(label, binary, proxy_image, drain, cycles):
    work = tempfile.mkdtemp(prefix="dhsw")
    name = f"benchsw{label[:2]}"
    b.cleanup_service(name)
    sshd = b.Sshd(work)
    port = b.free_port()
    cfg = os.path.join(work, "deckhand.toml")
    open(cfg, "w").write(b.service_toml(name, f"{b.REGISTRY}/deckhand/demo", port,
                                        proxy_image=proxy_image, drain=drain)
                         + "\n" + sshd.host_toml("lab", "lab-1"))
    try:
        run(binary, cfg, work, "deploy", "a000001")
        run(binary, cfg, work, "deploy", "a000002")
        wrk = subprocess.Popen(["wrk", "-t2", "-c8", "-d3600s", f"http://127.0.0.1:{port}/"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        load = b.Load(port)
        time.sleep(1)
        switch, confirm, totals = [], [], []
        t0 = time.perf_counter()
        for _ in range(cycles):
            for args in (("rollback",), ("deploy", "a000002")):
                total, steps = run(binary, cfg, work, *args)
                switch.append(steps.get("switch", 0))
                confirm.append(steps.get("switch", 0) + steps.get("confirm", 0))
                totals.append(total)
        elapsed = time.perf_counter() - t0
        time.sleep(1)
        wrk.send_signal(signal.SIGINT)
        out, _ = wrk.communicate(timeout=30)
        sent, failed = load.stop()
        w = wrk_summary(out)
        n = len(switch)
        print(f"{label}: {n} switches ({cycles} rollback+deploy cycles) in {elapsed:.1f} s")
        print(f"  switch step          median {b.median(switch):6.0f} ms   p90 {percentile(switch, 90):6.0f} ms")
        print(f"  switch+confirm       median {b.median(confirm):6.0f} ms   p90 {percentile(confirm, 90):6.0f} ms")
        print(f"  whole action         median {b.median(totals):6.2f} s")
        print(f"  wrk -t2 -c8 keep-alive: {w['requests']} requests, "
              f"{w['socket_errors'] + w['non_2xx']} failed ({w['socket_detail']}; non-2xx {w['non_2xx']})")
        print(f"  fresh connections:      {sent} requests, {failed} failed"
              + (f" {load.errors[:3]}" if failed else ""))
        return w["socket_errors"] + w["non_2xx"] + failed
    finally:
        sshd.stop()
        b.cleanup_service(name)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--before", help="a deckhand binary from before the HAProxy switch (nginx)")
    ap.add_argument("--after", default=b.BIN, help="this deckhand (HAProxy)")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk (scripts/setup.sh installs it)")
    if not os.path.exists(a.after):
        raise SystemExit(f"{a.after} missing: cargo build --release --bin deckhand")
    if a.before:
        # The earlier engine waited a fixed drain; 1 s is what its tests used.
        bench("before (nginx reload)", a.before, b.NGINX_PROXY_IMAGE, "1s", a.cycles)
    failed = bench("after (HAProxy in memory)", a.after, b.PROXY_IMAGE, "10s", a.cycles)
    sys.exit(1 if failed else 0)


main()
