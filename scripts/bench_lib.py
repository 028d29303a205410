"""Shared pieces of deckhand's benchmark scripts: throw-away sshd instances on loopback,
configs, running the real binary, a load client on the public port, medians.

Run as root after scripts/setup.sh (dockerd, registry and test images present)."""

import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DECKHAND_BIN", os.path.join(ROOT, "target", "release", "deckhand"))
REGISTRY = "127.0.0.1:5000"
PROXY_IMAGE = f"{REGISTRY}/deckhand/haproxy:2.6"
NGINX_PROXY_IMAGE = f"{REGISTRY}/deckhand/nginx:stable"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """A real OpenSSH server on 127.0.0.1 with throw-away keys; strict known_hosts."""

    def __init__(self, workdir, address="127.0.0.1", port=None):
        os.makedirs("/run/sshd", exist_ok=True)
        self.address = address
        self.dir = tempfile.mkdtemp(prefix="dhbench", dir=workdir)
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            os.path.join(self.dir, name)], check=True)
        shutil.copy(os.path.join(self.dir, "client_key.pub"), os.path.join(self.dir, "authorized_keys"))
        self.port = port or free_port()
        conf = os.path.join(self.dir, "sshd_config")
        with open(conf, "w") as f:
            f.write(f"Port {self.port}\nListenAddress {address}\nHostKey {self.dir}/host_key\n"
                    f"PidFile {self.dir}/sshd.pid\nAuthorizedKeysFile {self.dir}/authorized_keys\n"
                    "StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                    "UsePAM no\nAllowTcpForwarding yes\nAllowStreamLocalForwarding yes\n"
                    "MaxSessions 200\nMaxStartups 200\nLogLevel ERROR\n")
        kind, key = open(os.path.join(self.dir, "host_key.pub")).read().split()[:2]
        with open(os.path.join(self.dir, "known_hosts"), "w") as f:
            f.write(f"[{address}]:{self.port} {kind} {key}\n")
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection((address, self.port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("sshd did not start")
                time.sleep(0.02)

    def host_toml(self, env, name):
        return (f'[[env.{env}.host]]\nname = "{name}"\nssh = "root@{self.address}"\nport = {self.port}\n'
                f'identity_file = "{self.dir}/client_key"\nknown_hosts = "{self.dir}/known_hosts"\n'
                f'state_dir = "{self.dir}/state"\n')

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def service_toml(name, repo, public_port, extra="", proxy_image=PROXY_IMAGE, drain="1s"):
    return (f'[[service]]\nname = "{name}"\nimage = "{repo}"\napp_port = 3000\n'
            f'public_port = {public_port}\nproxy_image = "{proxy_image}"\n'
            f'health_timeout = "30s"\ndrain = "{drain}"\nwatch = "0s"\n{extra}\n')


def deckhand(config, *args, state=None, binary=None):
    env = dict(os.environ)
    if state:
        env["XDG_STATE_HOME"] = state
    t0 = time.perf_counter()
    p = subprocess.run([binary or BIN, "--config", config, *args], capture_output=True, text=True, env=env,
                       stdin=subprocess.DEVNULL)
    return p, time.perf_counter() - t0


def docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def cleanup_service(name):
    ids = docker("ps", "-aq", "--filter", f"label=deckhand.service={name}").split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    subprocess.run(["docker", "network", "rm", f"deckhand-{name}"], capture_output=True)


class Load:
    """Requests on fresh connections through the public port, from a thread."""

    def __init__(self, port):
        self.port, self.sent, self.failed, self.errors = port, 0, 0, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            self.sent += 1
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/", headers={"Connection": "close"})
                r = c.getresponse()
                r.read()
                c.close()
                if r.status != 200:
                    self.failed += 1
                    self.errors.append(f"HTTP {r.status}")
            except OSError as e:
                self.failed += 1
                self.errors.append(str(e))
            time.sleep(0.005)

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.sent, self.failed


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def require_binary():
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} missing: cargo build --release --bin deckhand")


def events(stdout):
    out = []
    for line in stdout.splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


class LatencyRelay:
    """A TCP relay on 127.0.0.1 that delays every chunk by `delay_ms` in each direction (so the
    round trip grows by twice that) and counts the bytes it carries. Needs no root and no
    kernel feature: put it in front of an sshd and point the host's `port` at `relay.port`.

    Order is kept per direction: each chunk is stamped when read and written once its time has
    come, so a burst costs one delay, not one per chunk (as on a real link)."""

    def __init__(self, target_port, delay_ms, target_host="127.0.0.1"):
        import queue
        self._queue = queue
        self.delay = delay_ms / 1000.0
        self.target = (target_host, target_port)
        self.up = 0  # client -> server bytes
        self.down = 0  # server -> client bytes
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = False
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def bytes(self):
        with self._lock:
            return self.up + self.down

    def _count(self, upward, n):
        with self._lock:
            if upward:
                self.up += n
            else:
                self.down += n

    def _accept(self):
        while not self._stop:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
            self._pipe(client, server, True)
            self._pipe(server, client, False)

    def _pipe(self, src, dst, upward):
        q = self._queue.Queue()

        def reader():
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                q.put((time.monotonic() + self.delay, data))
                if not data:
                    return

        def writer():
            while True:
                due, data = q.get()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                try:
                    dst.sendall(data)
                except OSError:
                    return
                self._count(upward, len(data))

        threading.Thread(target=reader, daemon=True).start()
        threading.Thread(target=writer, daemon=True).start()

    def stop(self):
        self._stop = True
        self._sock.close()
