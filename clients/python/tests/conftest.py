"""Fixtures: a real forqd on free ports and its own queue name.

FORQD names the binary (default: build/service/forqd under the repository
root).  Every forqd gets a unique --shm-name, ports picked free, a results file
in the test's tmp dir, and is stopped (SIGTERM, then SIGTERM again, then
SIGKILL) and its shared memory removed whatever the test did."""

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PKG_ROOT = HERE.parent                      # clients/python
REPO = PKG_ROOT.parent.parent
FORQD = Path(os.environ.get("FORQD") or REPO / "build" / "service" / "forqd")
if not FORQD.is_absolute():
    FORQD = REPO / FORQD

sys.path.insert(0, str(PKG_ROOT))

_seq = itertools.count(1)
EXIT_CANNOT_LISTEN = 5


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def local_nonloopback_ip():
    """An IPv4 address of this host that is not loopback, or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.123", 9))  # no packet is sent: it only picks a route
            ip = s.getsockname()[0]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((ip, 0))
        return None if ip.startswith("127.") else ip
    except OSError:
        return None


class Forqd:
    """One forqd process.  Flags go in as keyword arguments (capacity=4 is
    --capacity 4; a True value is a bare flag)."""

    def __init__(self, tmp_path, host="127.0.0.1", token=None, env=None, **flags):
        self.tmp = Path(tmp_path)
        self.host = host
        self.token = token
        self.flags = {"workers": 0, "handler": "noop", "drain-timeout": 2, "log-level": "warn"}
        self.flags.update({k.replace("_", "-"): v for k, v in flags.items()})
        if env is None:
            env = {k: v for k, v in os.environ.items() if k not in ("FORQ_ADMIN_TOKEN", "FORQ_TOKEN")}
        self.env = env
        self.shm = "/forq-pytest-%d-%d" % (os.getpid(), next(_seq))
        self.results_path = self.tmp / ("results-%s.jsonl" % self.shm.strip("/"))
        self.log_path = self.tmp / ("forqd-%s.log" % self.shm.strip("/"))
        self.proc = None
        self.tcp_port = self.http_port = None

    @property
    def tcp(self):
        return "%s:%d" % (self.host, self.tcp_port)

    @property
    def http(self):
        return "http://%s:%d" % (self.host, self.http_port)

    def argv(self):
        a = [str(FORQD), "--shm-name", self.shm, "--results", str(self.results_path),
             "--tcp", self.tcp, "--http", "%s:%d" % (self.host, self.http_port)]
        if self.token:
            tf = self.tmp / ("token-%s" % self.shm.strip("/"))
            tf.write_text(self.token + "\n")
            tf.chmod(0o600)
            a += ["--admin-token-file", str(tf)]
        for k, v in self.flags.items():
            if v is True:
                a.append("--" + k)
            elif v is not None and v is not False:
                a += ["--" + k, str(v)]
        return a

    def start(self, tcp_port=None, timeout=10.0):
        if not FORQD.exists():
            pytest.fail("no forqd at %s: build first (cmake -S . -B build && cmake --build build -j2) "
                        "or set FORQD" % FORQD)
        for attempt in range(5):
            self.tcp_port = tcp_port or free_port(self.host)
            self.http_port = free_port(self.host)
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=self.env)
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                rc = self.proc.poll()
                if rc is not None:
                    break
                try:
                    with socket.create_connection((self.host, self.tcp_port), timeout=1):
                        pass
                    with socket.create_connection((self.host, self.http_port), timeout=1):
                        return self
                except OSError:
                    time.sleep(0.02)
            rc = self.proc.poll()
            if rc == EXIT_CANNOT_LISTEN and tcp_port is None:
                continue  # a port taken meanwhile: pick others
            self.kill()
            pytest.fail("forqd did not start (exit %s): %s" % (rc, self.log()))
        pytest.fail("forqd could not listen: %s" % self.log())

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def stop(self, timeout=10.0):
        """Graceful stop (a drain of at most timeout seconds, then a second
        SIGTERM: stop now); returns forqd's exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)  # the second one: stop now
        try:
            return self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        shm = Path("/dev/shm") / self.shm.strip("/")
        try:
            shm.unlink()
        except FileNotFoundError:
            pass

    def results(self):
        """The results file: {id: the last record of that id}."""
        out = {}
        try:
            text = self.results_path.read_text(errors="surrogateescape")
        except FileNotFoundError:
            return out
        for line in text.splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill (README: readers skip those)
            out[r["id"]] = r
        return out

    def wait_results(self, n, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            r = self.results()
            if len(r) >= n or time.monotonic() > deadline:
                return r
            time.sleep(0.02)


@pytest.fixture
def forqd_factory(tmp_path):
    started = []

    def make(start=True, **kw):
        f = Forqd(tmp_path, **kw)
        started.append(f)
        return f.start() if start else f

    yield make
    for f in started:
        f.stop(timeout=0.3)
        f.kill()


@pytest.fixture
def forqd(forqd_factory):
    """A forqd with no local consumers (tasks wait for remote workers)."""
    return forqd_factory()


def wait_for(pred, timeout=10.0, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)
