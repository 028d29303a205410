#!/usr/bin/env python3
"""The fuller Swarm matrix (issue 16): deckhand on real multi-node Swarms of private dockerd
engines (test-support/src/swarm.rs), beyond the CI-sized cases in
tests/integration/swarm_cluster.rs. Prints figures:

- deploy and rollback durations under load (fresh-connection and keep-alive clients on the
  public port), requests sent / failed, per cluster size and replicas per color;
- node failure: a worker's dockerd killed (or the worker cut off the network) when a deploy
  step starts: the deploy's outcome (converged / stopped with the old release serving /
  BROKEN), requests failed meanwhile, how long until `status` showed the node down, and
  whether the deploy converges once the worker is back.

Each case is one run of an ignored test (tests/integration/swarm_matrix.rs), repeated --repeat
times. Run as root after scripts/setup.sh; one case at a time (the machine has 2 cores).

    python3 scripts/swarm-matrix.py                  # the default matrix, twice (~25 min)
    python3 scripts/swarm-matrix.py --repeat 1 --quick
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_case(test, env, log):
    """Runs one ignored matrix test; returns (passed, [MATRIX records])."""
    cmd = ["cargo", "nextest", "run", "--test", "integration", "--run-ignored", "only",
           "--no-capture", "--no-fail-fast", "-E", f"test(=swarm_matrix::{test})"]
    t = time.monotonic()
    p = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True)
    out = p.stdout + p.stderr
    log.write(f"=== {test} {env} exit {p.returncode} in {time.monotonic() - t:.0f}s\n{out}\n")
    log.flush()
    records = []
    for line in out.splitlines():
        if line.startswith("MATRIX "):
            try:
                records.append(json.loads(line[len("MATRIX "):]))
            except json.JSONDecodeError:
                pass
    return p.returncode == 0, records


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0] / 1000:.1f}"
    return (f"{min(values) / 1000:.1f} / {statistics.median(values) / 1000:.1f} / "
            f"{max(values) / 1000:.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2, help="runs per case (default 2)")
    ap.add_argument("--quick", action="store_true", help="3 nodes x 3 replicas only, kill at health only")
    ap.add_argument("--rounds", type=int, default=2, help="deploy+rollback rounds per deploy case")
    ap.add_argument("--log", default="/tmp/deckhand-swarm-matrix.log", help="full test output")
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("swarm-matrix: run as root (network namespaces, private dockerd engines)")
    print("swarm-matrix: building the tests", flush=True)
    subprocess.run(["cargo", "nextest", "run", "--test", "integration", "--no-run"], cwd=ROOT,
                   check=True, capture_output=True)

    sizes = [(3, 3)] if args.quick else [(3, 1), (3, 3), (3, 6), (5, 3)]
    faults = [("kill", "health")] if args.quick else [
        ("kill", "create"), ("kill", "health"), ("kill", "switch"), ("kill", "drain"),
        ("disconnect", "health"), ("disconnect", "switch")]

    deploys, failures, failed_runs = [], [], []
    with open(args.log, "w") as log:
        for nodes, replicas in sizes:
            for i in range(args.repeat):
                env = {"SWARM_NODES": str(nodes), "SWARM_REPLICAS": str(replicas),
                       "SWARM_ROUNDS": str(args.rounds)}
                ok, recs = run_case("swarm_matrix_deploys", env, log)
                print(f"  deploys {nodes} nodes x {replicas} replicas, run {i + 1}: "
                      f"{'ok' if ok else 'FAILED'} ({len(recs)} figures)", flush=True)
                if not ok:
                    failed_runs.append(f"deploys {env}")
                deploys.extend(recs)
        for fault, step in faults:
            for i in range(args.repeat):
                env = {"SWARM_FAULT": fault, "SWARM_STEP": step}
                ok, recs = run_case("swarm_matrix_node_failure", env, log)
                outcome = recs[0]["outcome"] if recs else "no figures"
                print(f"  node failure {fault} at {step}, run {i + 1}: {outcome}"
                      f"{'' if ok else ' (test FAILED)'}", flush=True)
                if not ok:
                    failed_runs.append(f"node failure {env}")
                failures.extend(recs)

    print("\nDeploy / rollback under load (seconds: min / median / max)")
    print(f"{'nodes':>5} {'repl':>4} {'first deploy':>18} {'deploy':>18} {'rollback':>18} "
          f"{'requests':>9} {'failed':>6}")
    for nodes, replicas in sizes:
        rs = [r for r in deploys if r["nodes"] == nodes and r["replicas"] == replicas]
        first = [r["ms"] for r in rs if r["case"] == "first_deploy"]
        dep = [r["ms"] for r in rs if r["case"] == "deploy"]
        rb = [r["ms"] for r in rs if r["case"] == "rollback"]
        sent = sum(r.get("fresh_sent", 0) + r.get("kept_sent", 0) for r in rs)
        failed = sum(r.get("fresh_failed", 0) + r.get("kept_failed", 0) for r in rs)
        print(f"{nodes:>5} {replicas:>4} {spread(first):>18} {spread(dep):>18} {spread(rb):>18} "
              f"{sent:>9} {failed:>6}")
    starts = [r["cluster_start_ms"] for r in deploys if "cluster_start_ms" in r]
    if starts:
        print(f"cluster start (s): {spread(starts)}")

    if failures:
        print("\nNode failure during a deploy (a worker; seconds: min / median / max)")
        print(f"{'fault':>10} {'at step':>8} {'outcomes':<32} {'deploy after':>16} "
              f"{'Swarm: down after':>18} {'status down':>11} {'sent':>6} {'failed':>6} {'recovered':>9}")
        for fault, step in faults:
            rs = [r for r in failures if r["fault"] == fault and r["step"] == step]
            if not rs:
                continue
            outcomes = {}
            for r in rs:
                outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
            o = ", ".join(f"{k} x{v}" for k, v in sorted(outcomes.items()))
            shown = sum(1 for r in rs if r["status_shows_down"])
            recovered = sum(1 for r in rs if r["recovered"])
            print(f"{fault:>10} {step:>8} {o:<32} {spread([r['deploy_ms_after_fault'] for r in rs]):>16} "
                  f"{spread([r['swarm_down_after_ms'] for r in rs]):>18} {f'{shown}/{len(rs)}':>11} "
                  f"{sum(r['sent'] for r in rs):>6} {sum(r['failed'] for r in rs):>6} "
                  f"{f'{recovered}/{len(rs)}':>9}")
        for r in failures:
            if r["failed"] or r["outcome"] != "converged" or not r["recovered"]:
                print(f"  {r['fault']} at {r['step']}: exit {r['exit']}, live {r['live']}, "
                      f"recovered {r['recovered']}, failures {r['failures']}, error {r.get('error')}")
    print(f"\nfull output: {args.log}")
    if failed_runs:
        print("FAILED runs: " + "; ".join(failed_runs))
        sys.exit(1)


if __name__ == "__main__":
    main()
