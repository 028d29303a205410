#!/usr/bin/env python3
"""Throughput and peak memory of `deckhand logs`: one container that wrote LINES lines of SIZE
bytes (plus one 20 MB line), read back whole (`--since 1h`) from the local engine and over one
SSH host, median of several runs; peak RSS of the deckhand process (wait4).

    python3 scripts/bench-logs.py [--runs 3] [--lines 100000] [--size 200] [--bin PATH]"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lib as b  # noqa: E402

BUSYBOX = f"{b.REGISTRY}/deckhand/busybox:1"


def run(binary, cfg, env, state):
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "--config", cfg, "logs", "--env", env, "--color", "blue",
                          "--since", "1h"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, env={**os.environ, "XDG_STATE_HOME": state})
    lines = nbytes = 0
    for line in p.stdout:
        lines += 1
        nbytes += len(line)
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(f"deckhand logs --env {env} failed ({status})")
    return time.perf_counter() - t0, lines, nbytes, usage.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--bin", default=b.BIN)
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        raise SystemExit(f"{a.bin} missing: cargo build --release --bin deckhand (or --bin PATH)")
    work = tempfile.mkdtemp(prefix="dhb")
    name = "benchlogs"
    b.cleanup_service(name)
    sshd = b.Sshd(work)
    script = (f"l=$(head -c {a.size} /dev/zero | tr '\\0' x); i=0; while [ $i -lt {a.lines} ]; do "
              f"echo \"$i $l\"; i=$((i+1)); done; head -c 20000000 /dev/zero | tr '\\0' y; echo; "
              "echo bench-done; sleep 3600")
    b.docker("run", "-d", "--name", f"{name}-blue", "--log-opt", "max-size=512m",
             "--label", f"deckhand.service={name}", "--label", "deckhand.color=blue", BUSYBOX,
             "sh", "-c", script)
    cfg = os.path.join(work, "deckhand.toml")
    text = b.service_toml(name, f"{b.REGISTRY}/deckhand/demo", b.free_port())
    text += '\n[env.dev]\nhosts = ["local"]\n\n' + sshd.host_toml("one", "h1")
    open(cfg, "w").write(text)
    try:
        deadline = time.time() + 300
        while "bench-done" not in subprocess.run(["docker", "logs", "--tail", "2", f"{name}-blue"],
                                                  capture_output=True, text=True).stdout:
            if time.time() > deadline:
                raise SystemExit("the container did not finish writing")
            time.sleep(0.5)
        sent = a.lines * (a.size + 7) + 20_000_000
        print(f"logs of one container: {a.lines} lines of {a.size} B + one 20 MB line "
              f"(~{sent / 1e6:.0f} MB), {a.runs} runs each:")
        for env, label in (("dev", "local engine"), ("one", "1 SSH host")):
            results = [run(a.bin, cfg, env, work) for _ in range(a.runs)]
            t = b.median([r[0] for r in results])
            lines, nbytes = results[0][1], results[0][2]
            rss = max(r[3] for r in results) / 1024
            print(f"  {label:13s} median {t:6.2f} s  {lines / t:9.0f} lines/s  "
                  f"{nbytes / t / 1e6:6.1f} MB/s printed  peak RSS {rss:5.1f} MiB")
    finally:
        sshd.stop()
        b.cleanup_service(name)


main()
