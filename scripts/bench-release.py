#!/usr/bin/env python3
"""Deploy and rollback durations on one SSH host with the image cached, median of several runs,
split into steps (connect+lock, start, health wait, switch, drain+stop), with requests served
and failed through the public port during them.

    python3 scripts/bench-release.py [--runs 5]"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lib as b  # noqa: E402

GROUPS = {
    "lock": ["lock"], "inspect+pull+create": ["inspect", "pull", "network", "create"],
    "start": ["start"], "health wait": ["health"], "switch+confirm": ["proxy", "switch", "confirm"],
    "drain": ["drain"], "stop old": ["stop_old"], "audit+unlock": ["audit", "unlock"],
}


def run(cfg, work, *args):
    p, total = b.deckhand(cfg, *args, "--env", "lab", "--yes", "--output", "json", state=work)
    if p.returncode != 0:
        raise SystemExit(f"{args} exited {p.returncode}: {p.stderr}")
    steps = {}
    for e in b.events(p.stdout):
        if e.get("event") == "step_finished":
            steps[e["step"]] = steps.get(e["step"], 0) + e["elapsed_ms"]
    return total, steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    b.require_binary()
    work = tempfile.mkdtemp(prefix="dhb")
    name = "benchrl"
    b.cleanup_service(name)
    sshd = b.Sshd(work)
    port = b.free_port()
    cfg = os.path.join(work, "deckhand.toml")
    open(cfg, "w").write(b.service_toml(name, f"{b.REGISTRY}/deckhand/demo", port) + "\n"
                         + sshd.host_toml("lab", "lab-1"))
    try:
        run(cfg, work, "deploy", "a000001")
        load = b.Load(port)
        results = {"deploy": [], "rollback": []}
        shas = ["a000002", "a000003", "a000004", "a000005", "a000006", "a000007"]
        for i in range(a.runs):
            results["deploy"].append(run(cfg, work, "deploy", shas[i % len(shas)]))
            results["rollback"].append(run(cfg, work, "rollback"))
            results["deploy"].append(run(cfg, work, "deploy", shas[i % len(shas)]))
        sent, failed = load.stop()
        for kind, rs in results.items():
            print(f"{kind}: median {b.median([t for t, _ in rs]):.2f} s over {len(rs)} runs "
                  f"(process start to exit)")
            for g, keys in GROUPS.items():
                ms = [sum(s.get(k, 0) for k in keys) for _, s in rs]
                print(f"  {g:22s} median {b.median(ms):6.0f} ms")
        print(f"requests through the public port meanwhile: {sent} sent, {failed} failed")
        if failed:
            print("  failures:", load.errors[:5])
            sys.exit(1)
    finally:
        sshd.stop()
        b.cleanup_service(name)


main()
