#!/usr/bin/env python3
"""deckhand over a slow link: `status` of one host and a rollback (cached release) at several
round-trip times, against `docker -H ssh://HOST ps -a` and `ssh HOST true` over the same link.

A LatencyRelay (scripts/bench_lib.py: delay each way, so RTT = 2 x delay) sits in front of a
loopback sshd; every RTT has its own environment whose host points at its relay. Runs are
interleaved (one of each kind per RTT per round) and medians printed. Round trips are derived,
not guessed: (median at RTT r - median at RTT 0) / r, for the whole command and for each step
of the rollback (from its step_finished events). A warm `status` (a kept ssh master,
`--keep-connection`) is measured too when the binary has that flag.

    python3 scripts/bench-latency.py [--runs 5] [--rtts 0,50,150] [--binary PATH]...
                                     [--skip-rollback] [--warm-rollback]

With several --binary (e.g. a build of the commit before a change and one after), each round
runs every binary, so they are compared under the same load.

Run as root after scripts/setup.sh (dockerd, registry, test images; the docker CLI is the
reference and is run on "the host" through ssh, as `docker -H ssh://` does)."""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lib as b  # noqa: E402

STEPS = ["lock", "inspect", "start", "health", "proxy", "switch", "confirm", "drain",
         "stop_old", "audit", "unlock"]


def ssh_home(work, sshd, relays):
    """A HOME whose ssh config reaches the sshd through every relay with strict host keys, for
    the docker CLI and plain ssh (both use the system ssh)."""
    home = tempfile.mkdtemp(prefix="home", dir=work)
    os.makedirs(os.path.join(home, ".ssh"), mode=0o700)
    kind, key = open(os.path.join(sshd.dir, "host_key.pub")).read().split()[:2]
    kh = os.path.join(home, ".ssh", "known_hosts")
    with open(kh, "w") as f:
        for port in relays.values():
            f.write(f"[127.0.0.1]:{port} {kind} {key}\n")
    with open(os.path.join(home, ".ssh", "config"), "w") as f:
        f.write(f"Host 127.0.0.1\n  User root\n  IdentityFile {sshd.dir}/client_key\n"
                f"  UserKnownHostsFile {kh}\n  StrictHostKeyChecking yes\n"
                "  ControlMaster no\n  ControlPath none\n")
    os.chmod(os.path.join(home, ".ssh", "config"), 0o600)
    # ssh reads the config of the passwd entry's home, not $HOME: a wrapper first in PATH
    # passes this one (the docker CLI runs `ssh` by name).
    bindir = os.path.join(home, "bin")
    os.makedirs(bindir)
    wrapper = os.path.join(bindir, "ssh")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec /usr/bin/ssh -F {home}/.ssh/config \"$@\"\n")
    os.chmod(wrapper, 0o755)
    return home, kh


FAILURES = []


def timed(cmd, env=None, must=True):
    """Runs cmd; a failure of a measured run is reported and left out of the medians (one slow
    or broken run must not lose the others), a failure of a setup step stops the benchmark."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        what = f"{' '.join(cmd[-6:])} exited {p.returncode} after {dt:.1f}s: {p.stderr[-800:]}"
        if must:
            raise SystemExit(what)
        FAILURES.append(what)
        print("FAILED (left out): " + what, file=sys.stderr)
        return None, p
    return dt, p


def add(xs, dt):
    if dt is not None:
        xs.append(dt)


def steps_of(stdout):
    steps = {}
    for e in b.events(stdout):
        if e.get("event") == "step_finished":
            steps[e["step"]] = steps.get(e["step"], 0) + e["elapsed_ms"]
    return steps


def has_flag(binary, flag, verb="status"):
    p = subprocess.run([binary, "--help"], capture_output=True, text=True)
    q = subprocess.run([binary, verb, "--help"], capture_output=True, text=True)
    return flag in p.stdout + q.stdout


def health_sequential(stdout):
    """The health step's own sequential round trips (its polls: the app's start, not the
    link's cost), to take out of a rollback's counted total."""
    for e in b.events(stdout):
        if e.get("event") == "step_finished" and e.get("step") == "health":
            return (e.get("trips") or {}).get("sequential", 0)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rtts", default="0,50,150")
    ap.add_argument("--binary", action="append",
                    help="deckhand binary to measure (repeat to compare builds in the same "
                         "interleaved rounds, e.g. before and after a change); default "
                         "target/release/deckhand")
    ap.add_argument("--skip-rollback", action="store_true")
    ap.add_argument("--warm-rollback", action="store_true",
                    help="also a rollback through a kept ssh master (--keep-connection)")
    a = ap.parse_args()
    binaries = a.binary or [b.BIN]
    for binary in binaries:
        if not os.path.exists(binary):
            raise SystemExit(f"{binary} missing: cargo build --release --bin deckhand")
    rtts = [int(x) for x in a.rtts.split(",")]
    if rtts[0] != 0:
        rtts.insert(0, 0)
    warm = {bn: has_flag(bn, "--keep-connection") for bn in binaries}
    # A binary with `status --timings` also says how many round trips it counted one after
    # another (its own accounting, printed on stderr): shown beside the derived figure.
    counts = {bn: has_flag(bn, "--timings") for bn in binaries}
    # And a rollback with --timings its whole run's (connect to the read after it).
    rb_counts = {bn: has_flag(bn, "--timings", "rollback") for bn in binaries}

    work = tempfile.mkdtemp(prefix="dhlat")
    name = f"benchlat{os.getpid() % 10000}"
    b.cleanup_service(name)
    sshd = b.Sshd(work)
    relays = {r: b.LatencyRelay(sshd.port, r / 2) for r in rtts if r}
    ports = {0: sshd.port, **{r: rl.port for r, rl in relays.items()}}
    home, kh = ssh_home(work, sshd, ports)
    public = b.free_port()
    text = b.service_toml(name, f"{b.REGISTRY}/deckhand/demo", public) + "\n"
    for r, port in ports.items():
        text += (f'[[env.rtt{r}.host]]\nname = "lab-1"\nssh = "root@127.0.0.1"\nport = {port}\n'
                 f'identity_file = "{sshd.dir}/client_key"\nknown_hosts = "{kh}"\n'
                 f'state_dir = "{sshd.dir}/state"\n\n')
    cfg = os.path.join(work, "deckhand.toml")
    open(cfg, "w").write(text)
    env = dict(os.environ, HOME=home, XDG_STATE_HOME=work,
               PATH=os.path.join(home, "bin") + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
    # The kept masters live under XDG_RUNTIME_DIR: a private one, removed at the end.
    env["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    os.chmod(env["XDG_RUNTIME_DIR"], 0o700)
    # On a shared, loaded machine a remote command can take longer than the default 30 s;
    # a timeout would turn a slow run into a failed one.
    env.setdefault("DECKHAND_COMMAND_TIMEOUT", "120s")

    def dh(binary, *args, must=True):
        return timed([binary, "--config", cfg, *args], env=env, must=must)

    def status_once(bn, r, times, seen):
        extra = ["--timings"] if counts[bn] else []
        dt, p = dh(bn, "status", "--env", f"rtt{r}", "--output", "json", *extra, must=False)
        add(times[r], dt)
        m = re.search(r"(\d+) sequential round trips", p.stderr)
        if dt is not None and m:
            seen.append(int(m.group(1)))

    def table():
        return {k: {r: [] for r in rtts}
                for k in ("status", "again", "warm", "rollback", "warm_rollback")}

    res = {bn: table() for bn in binaries}
    ref = {k: {r: [] for r in rtts} for k in ("docker", "ssh")}
    steps = {bn: {r: [] for r in rtts} for bn in binaries}
    counted = {bn: {r: [] for r in rtts} for bn in binaries}
    again = {bn: {r: [] for r in rtts} for bn in binaries}
    rb_counted = {bn: {r: [] for r in rtts} for bn in binaries}
    first = binaries[0]
    try:
        dh(first, "deploy", "a000001", "--env", "rtt0", "--yes")
        dh(first, "deploy", "a000002", "--env", "rtt0", "--yes")
        for i in range(a.runs):
            for r in rtts:
                port = ports[r]
                add(ref["ssh"][r], timed(["ssh", "-p", str(port), "127.0.0.1", "true"], env=env,
                                         must=False)[0])
                add(ref["docker"][r], timed(["docker", "-H", f"ssh://root@127.0.0.1:{port}", "ps",
                                             "-a"], env=env, must=False)[0])
                for bn in binaries:
                    # The second call finds the ports the first left (every rollback below
                    # and the deploy through rtt0 restart a color on a new port, so the
                    # first status of a round finds its memory stale, as after a
                    # colleague's deploy).
                    for key, seen in (("status", counted), ("again", again)):
                        status_once(bn, r, res[bn][key], seen[bn][r])
                    if warm[bn]:
                        dh(bn, "status", "--env", f"rtt{r}", "--keep-connection=2m", "--output",
                           "json", must=False)
                        add(res[bn]["warm"][r], dh(bn, "status", "--env", f"rtt{r}",
                                                   "--keep-connection=2m", "--output", "json",
                                                   must=False)[0])
                    if not a.skip_rollback:
                        extra = ["--timings"] if rb_counts[bn] else []
                        dt, p = dh(bn, "rollback", "--env", f"rtt{r}", "--yes", "--output", "json",
                                   *extra, must=False)
                        if dt is not None:
                            res[bn]["rollback"][r].append(dt)
                            steps[bn][r].append(steps_of(p.stdout))
                            m = re.search(r"(\d+) sequential round trips", p.stderr)
                            if m:
                                rb_counted[bn][r].append(int(m.group(1))
                                                         - health_sequential(p.stdout))
                        # Back to a000002 on the fast path: every rollback starts from one place.
                        dh(first, "deploy", "a000002", "--env", "rtt0", "--yes", "--lock-wait",
                           "60s", must=False)
                        if a.warm_rollback and warm[bn]:
                            # The master kept by the warm status above.
                            add(res[bn]["warm_rollback"][r], dh(
                                bn, "rollback", "--env", f"rtt{r}", "--yes", "--output", "json",
                                "--keep-connection=2m", must=False)[0])
                            dh(first, "deploy", "a000002", "--env", "rtt0", "--yes",
                               "--lock-wait", "60s", must=False)
            print(f"round {i + 1}/{a.runs} done", file=sys.stderr)
    finally:
        for bn in binaries:
            if warm[bn]:
                subprocess.run([bn, "--config", cfg, "disconnect"], env=env, capture_output=True)
        for rl in relays.values():
            rl.stop()
        sshd.stop()
        b.cleanup_service(name)

    if FAILURES:
        print(f"\n{len(FAILURES)} measured run(s) failed and are left out:")
        for f in FAILURES:
            print("  " + f.splitlines()[0][:300])
    print(f"\nmedians of {a.runs} interleaved runs, ms (RT: round trips beyond RTT 0, "
          "(t(r) - t(0)) / r)\n")
    rmed = {k: {r: b.median(v) * 1000 for r, v in d.items()} for k, d in ref.items()}

    def cell(m, r):
        return f"{m[r]:.0f}" + ("" if r == 0 else f" ({(m[r] - m[0]) / r:4.1f} RT)")

    print("| what | " + " | ".join(f"RTT {r} ms" for r in rtts) + " |")
    print("|---" * (len(rtts) + 1) + "|")
    print("| `ssh HOST true` | " + " | ".join(cell(rmed["ssh"], r) for r in rtts) + " |")
    print("| `docker -H ssh:// ps -a` | " + " | ".join(cell(rmed["docker"], r) for r in rtts) + " |")
    meds = {}
    for bn in binaries:
        label = os.path.basename(bn)
        med = {k: {r: b.median(v) * 1000 for r, v in d.items()} for k, d in res[bn].items()}
        meds[bn] = med
        print(f"| {label}: `status` (1 host) | " + " | ".join(cell(med["status"], r) for r in rtts) + " |")
        if counts[bn] and all(counted[bn][r] for r in rtts):
            print(f"| {label}: `status`, counted sequential RT (--timings) | "
                  + " | ".join(f"{b.median(counted[bn][r]):.0f}" for r in rtts) + " |")
        print(f"| {label}: `status` again (ports remembered) | "
              + " | ".join(cell(med["again"], r) for r in rtts) + " |")
        if counts[bn] and all(again[bn][r] for r in rtts):
            print(f"| {label}: `status` again, counted sequential RT (--timings) | "
                  + " | ".join(f"{b.median(again[bn][r]):.0f}" for r in rtts) + " |")
        if warm[bn]:
            print(f"| {label}: `status`, kept master | " + " | ".join(cell(med["warm"], r) for r in rtts) + " |")
        if not a.skip_rollback:
            print(f"| {label}: `rollback` (cached) | " + " | ".join(cell(med["rollback"], r) for r in rtts) + " |")
            if a.warm_rollback and warm[bn]:
                print(f"| {label}: `rollback`, kept master | " + " | ".join(cell(med["warm_rollback"], r) for r in rtts) + " |")
            if rb_counts[bn] and all(rb_counted[bn][r] for r in rtts):
                print(f"| {label}: `rollback`, counted sequential RT beyond the health wait (--timings) | "
                      + " | ".join(f"{b.median(rb_counted[bn][r]):.0f}" for r in rtts) + " |")
    for bn in binaries:
        label, med = os.path.basename(bn), meds[bn]
        for r in rtts[1:]:
            line = (f"\n{label} at RTT {r}: status / docker ps {med['status'][r] / rmed['docker'][r]:.2f}x"
                    f", again {med['again'][r] / rmed['docker'][r]:.2f}x")
            if warm[bn]:
                line += f", warm status / docker ps {med['warm'][r] / rmed['docker'][r]:.2f}x"
            if not a.skip_rollback:
                line += f", rollback - rollback at RTT 0: {med['rollback'][r] - med['rollback'][0]:.0f} ms"
                if a.warm_rollback and warm[bn]:
                    line += (", kept master: "
                             f"{med['warm_rollback'][r] - med['warm_rollback'][0]:.0f} ms")
            print(line, end="")
        print()
    if a.skip_rollback:
        return
    for bn in binaries:
        print(f"\n{os.path.basename(bn)}: rollback steps, median ms (round trips beyond RTT 0):\n")
        print("| step | " + " | ".join(f"RTT {r}" for r in rtts) + " |")
        print("|---" * (len(rtts) + 1) + "|")
        st = steps[bn]
        for s in STEPS:
            ms = {r: b.median([x.get(s, 0) for x in st[r]]) for r in rtts}
            if all(v == 0 for v in ms.values()):
                continue
            print(f"| {s} | " + " | ".join(
                f"{ms[r]:.0f}" + ("" if r == 0 else f" ({(ms[r] - ms[0]) / r:.1f})") for r in rtts) + " |")
        other = {r: meds[bn]["rollback"][r] - b.median([sum(x.values()) for x in st[r]]) for r in rtts}
        print("| connect, plan, exit (outside steps) | " + " | ".join(
            f"{other[r]:.0f}" + ("" if r == 0 else f" ({(other[r] - other[0]) / r:.1f})") for r in rtts) + " |")


main()
