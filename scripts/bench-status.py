#!/usr/bin/env python3
"""Time from process start to a complete `deckhand status` of 1 and of 10 SSH hosts (loopback
sshd instances, one real dockerd), median of several runs; plus `local` for comparison.

    python3 scripts/bench-status.py [--runs 7]"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lib as b  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    b.require_binary()
    work = tempfile.mkdtemp(prefix="dhb")
    name = "benchst"
    b.cleanup_service(name)
    servers = [b.Sshd(work) for _ in range(10)]
    port = b.free_port()
    svc = b.service_toml(name, f"{b.REGISTRY}/deckhand/demo", port)
    cfg = os.path.join(work, "deckhand.toml")
    text = svc + '\n[env.dev]\nhosts = ["local"]\n\n' + servers[0].host_toml("one", "h1")
    text += "\n".join(s.host_toml("ten", f"h{i + 1}") for i, s in enumerate(servers))
    open(cfg, "w").write(text)
    try:
        p, _ = b.deckhand(cfg, "deploy", "a000001", "--env", "dev", "--yes", state=work)
        p, _ = b.deckhand(cfg, "deploy", "a000002", "--env", "dev", "--yes", state=work)
        if p.returncode != 0:
            raise SystemExit(p.stderr)
        print(f"status of one service (both colors, /health probed, 10 images), {a.runs} runs each:")
        for env, label in (("dev", "local engine"), ("one", "1 SSH host"), ("ten", "10 SSH hosts")):
            times = []
            for _ in range(a.runs):
                p, t = b.deckhand(cfg, "status", "--env", env, "--output", "json", state=work)
                if p.returncode != 0:
                    raise SystemExit(f"status --env {env} exited {p.returncode}: {p.stdout}{p.stderr}")
                times.append(t)
            print(f"  {label:13s} median {b.median(times) * 1000:7.0f} ms   "
                  f"min {min(times) * 1000:6.0f} ms   max {max(times) * 1000:6.0f} ms")
    finally:
        for s in servers:
            s.stop()
        b.cleanup_service(name)


main()
