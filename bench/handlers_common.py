"""What the rows of bench/handlers.sh share: the paths, the processes it
starts, the clock of a consumer row and the check of its results."""

import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable
TASK_PY = os.path.join(HERE, "handlers_task.py")
BENCH_PY = os.path.join(HERE, "handlers_bench.py")  # also the helper processes' program
POLL = 0.005
QUEUE = "bench"  # RQ's queue


class RowError(Exception):
    """The row ran and failed (a check, a timeout, a crash)."""


class NotAvailable(Exception):
    """The row cannot run here (a package or a handler kind missing)."""


def child_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [HERE, os.path.join(ROOT, "clients", "python")]
        + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update(extra)
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, seconds, log):
    """Until 127.0.0.1:port accepts; NotAvailable with the log's last line when
    proc exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NotAvailable(last_line(log) or "exited with status %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RowError("nothing listens on port %d after %d s" % (port, seconds))


def last_line(path):
    try:
        with open(path, "rb") as f:
            lines = [x for x in f.read().decode(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


class Procs:
    """Every process this script starts, each the leader of its own process
    group; the group ids go to TMP/pgids too, for the shell's trap."""

    def __init__(self, tmp):
        self.live = []
        self.pgids = os.path.join(tmp, "pgids")

    def start(self, cmd, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.live.append(p)
        with open(self.pgids, "a") as f:
            f.write("%d\n" % p.pid)
        return p

    def stop(self, p, sig=signal.SIGTERM, grace=15.0):
        """sig to p (it stops its own children as it would under a user), then
        after at most grace seconds SIGKILL to what is left of its group."""
        if p.poll() is None:
            try:
                p.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        p.wait()
        if p in self.live:
            self.live.remove(p)

    def stop_all(self):
        for p in list(self.live):
            self.stop(p, grace=5.0)


def measure(count, n, seconds, check=None, ready=None):
    """Polls count() until it reaches n; returns (tasks/s, seconds measured).
    check() may raise (a process died); the clock starts at the first poll
    that sees a task finished and ready() true (the producer done), or, when
    the producer is done only once (almost) all are, at the first task."""
    deadline = time.monotonic() + seconds
    t0 = c0 = tf = cf = None
    while True:
        c = count()
        t = time.monotonic()
        if tf is None and c > 0:
            tf, cf = t, c
        if t0 is None and c > 0 and (ready is None or ready()):
            t0, c0 = t, c
        if c >= n:
            break
        if t > deadline:
            raise RowError("%d of %d tasks finished in %d s" % (c, n, seconds))
        if check:
            check()
        time.sleep(POLL)
    if c0 >= n or t - t0 < 0.05:
        t0, c0 = tf, cf  # the consumers kept up with the producer: time them from the start
    if c0 >= n or t - t0 < 0.05:
        raise RowError("finished too fast to time: give it more tasks")
    return (n - c0) / (t - t0), t - t0


def alive(*procs):
    def check():
        for p in procs:
            if p.poll() is not None:
                raise RowError("%s exited with status %d" % (p.args[0] if isinstance(p.args, list)
                                                              else p.args, p.returncode))
    return check


def check_values(pairs, n, want):
    """pairs: (index, status_ok, value) for every result seen. Checks that
    each of 0..n-1 came exactly once, done, with want(i). Returns a note."""
    seen = bytearray(n)
    bad = dup = 0
    first = None
    for i, ok, v in pairs:
        if not 0 <= i < n:
            bad += 1
            first = first or "a result for unknown task %r" % i
            continue
        if seen[i]:
            dup += 1
            first = first or "task %d answered twice" % i
            continue
        seen[i] = 1
        if not ok:
            bad += 1
            first = first or "task %d did not succeed: %r" % (i, v)
        elif v != want(i):
            bad += 1
            first = first or "task %d: got %r, want %r" % (i, v, want(i))
    missing = n - sum(seen)
    if bad or dup or missing:
        raise RowError("check failed: %d wrong, %d twice, %d missing (%s)"
                       % (bad, dup, missing, first or "no result"))
    return "%d results, all right" % n


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()
