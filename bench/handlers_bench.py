"""handlers_bench.py: the engine of bench/handlers.sh (see there and bench/README.md).

One Python handler task (handlers_task.py) run through forq's exec: and proc:
handlers, forq.Worker, RQ, Celery and a bare persistent pipe, on this machine
in one run, every result checked; prints one markdown table.

Consumer rows fill the queue (or start filling it) and then time from the
first task finished to the last: (tasks - finished at the first sight) /
(last - first sight), the finished count polled every 5 ms.  So neither the
producer nor worker start-up is in a consumer row; the producer rows time
the enqueueing alone.  The sub-commands starting with "_" are the helper
processes this script starts.
"""

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time

_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_here, os.path.join(os.path.dirname(_here), "clients", "python")]

import handlers_task  # noqa: E402
from handlers_common import (BENCH_PY, PY, QUEUE, TASK_PY, NotAvailable, Procs,  # noqa: E402
                             RowError, alive, check_values, child_env, free_port, last_line,
                             log, measure, wait_port)
from handlers_redis import Redis, need_redis, row_celery, row_rq, rq_worker_main  # noqa: E402
from handlers_task import expected, payload  # noqa: E402

# (key, tasks, tasks with --quick, seconds allowed)
SIZES = {
    "exec-python": (400, 40, 120),
    "exec-cat": (3000, 200, 60),
    "rq-fork": (600, 100, 120),
    "rq-simple": (3000, 300, 60),
    "celery-delay": (4000, 300, 60),
    "celery-chunks": (64 * 1500, 64 * 50, 60),
    "proc": (300_000, 20_000, 90),
    "worker": (300_000, 20_000, 90),
    "worker-256": (300_000, 20_000, 90),
    "pipe-1": (300_000, 20_000, 60),
    "pipe-64": (400_000, 40_000, 60),
    "push-many": (200_000, 20_000, 60),
    "push": (20_000, 2_000, 60),
    "celery-apply": (5_000, 500, 60),
    "rq-enqueue": (5_000, 500, 60),
}
FAST_ROWS = ("proc", "worker", "worker-256", "pipe-1", "pipe-64", "push-many", "push")


# ---------------------------------------------------------------- forq rows

def capacity_for(payloads):
    """--capacity that holds all of payloads at once (and a warm-up task): a
    lane's ring gives 64 bytes a task, a record is 32 bytes and the payload
    padded to 8 (core/shm.c)."""
    rec = 32 + (max(len(p) for p in payloads) + 7) // 8 * 8
    return max(65536, (len(payloads) + 1) * ((rec + 63) // 64) + 1024)


class Forqd:
    """A private forqd on a free loopback port, with --results to a file."""

    def __init__(self, b, key, n, workers, handler=None, results=True, batch=64):
        self.b = b
        b.seq += 1  # a row that runs again gets a fresh queue and results file
        key = "%s-%d" % (key, b.seq)
        self.name = "/forq-hb-%s-%s" % (b.tag, key)
        self.port = free_port()
        self.results = os.path.join(b.tmp, key + ".jsonl")
        self.log = os.path.join(b.tmp, key + ".log")
        cmd = [b.forqd, "--shm-name", self.name, "--workers", str(workers),
               "--results", self.results if results else "off", "--http", "off",
               "--tcp", "127.0.0.1:%d" % self.port,
               "--capacity", str(capacity_for(b.payloads[:n])), "--max-payload", "256",
               "--batch", str(batch), "--no-recover", "--log-level", "warn"]
        if handler:
            cmd += ["--handler", handler]
        if not results:  # a producer row: what it queued is dropped at the end
            cmd += ["--drain-timeout", "0"]
        b.shm.append(self.name)
        with open(self.log, "wb") as f:
            self.p = b.procs.start(cmd, stdout=f, stderr=subprocess.STDOUT, env=child_env())
        wait_port(self.port, self.p, 10, self.log)
        import forq
        self.client = forq.Client("127.0.0.1:%d" % self.port)

    def finished(self):
        s = self.client.stats()
        return s["done"] + s["failed"] + s["dead"]

    def push_file(self, n):
        path = os.path.join(self.b.tmp, "tasks-%d.txt" % n)
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write("\n".join(self.b.payloads[:n]) + "\n")
        out = subprocess.run([self.b.forq, "push", "--shm-name", self.name, "--file", path,
                              "--timeout", "60000"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=120)
        ids = out.stdout.split()
        if out.returncode != 0 or len(ids) != n:
            raise RowError("forq push --file: exit %d, %d ids of %d: %s"
                           % (out.returncode, len(ids), n, out.stderr.decode()[-300:]))

    def stop(self):
        self.client.close()
        self.b.procs.stop(self.p, grace=30.0)
        if self.p.returncode not in (0, -signal.SIGKILL):
            raise RowError("forqd exited with status %d: %s" % (self.p.returncode, last_line(self.log)))

    def check(self, n, want):
        index = self.b.index
        pairs = []
        with open(self.results, "rb") as f:
            for line in f:
                r = json.loads(line)
                done = r["status"] == "done"
                pairs.append((index.get(r["task"], -1), done, r.get("result" if done else "error")))
        note = check_values(pairs, n, want)
        os.unlink(self.results)  # checked: its room goes back (a failed one stays for a look)
        return note


def row_forq_local(b, key, handler, want=expected):
    """Two local consumers. exec: rows pop one task at a time (--batch 1):
    with batches of 64 one consumer could hold the last 63 tasks alone."""
    n, limit = b.size(key)
    q = Forqd(b, key, n, 2, handler, batch=1 if handler.startswith("exec:") else 64)
    try:
        # forq push fills the queue while the two consumers take from it.
        failed = []

        def push():
            try:
                q.push_file(n)
            except Exception as e:  # noqa: BLE001 - reported by check() below
                failed.append(e)

        def check():
            if failed:
                raise failed[0]
            alive(q.p)()

        pusher = threading.Thread(target=push)
        pusher.start()
        try:
            rate, _ = measure(q.finished, n, limit, check, ready=lambda: not pusher.is_alive())
        finally:
            pusher.join()
    finally:
        q.stop()
    return n, rate, q.check(n, want)


def row_proc(b):
    key = "proc"
    try:
        return row_forq_local(b, key, "proc:exec %s %s serve" % (shlex.quote(PY), shlex.quote(TASK_PY)))
    except NotAvailable as e:
        raise NotAvailable("forqd refused the handler: %s" % e)


def row_worker(b, key, batch):
    """Two forq.Worker processes leasing `batch` tasks a GET_TASKS (forqd
    hands out at most its --batch a request: the same)."""
    n, limit = b.size(key)
    q = Forqd(b, key, n, 0, batch=batch)
    workers = []
    try:
        q.push_file(n)  # all queued before the workers connect
        for k in range(2):
            with open(os.path.join(b.tmp, "%s%d.log" % (key, k)), "wb") as f:
                workers.append(b.procs.start([PY, BENCH_PY, "_worker", "127.0.0.1:%d" % q.port,
                                              str(batch)],
                                             stdout=f, stderr=subprocess.STDOUT, env=child_env()))
        rate, _ = measure(q.finished, n, limit, alive(q.p, *workers))
    finally:
        for w in workers:
            b.procs.stop(w, grace=10.0)
        q.stop()
    return n, rate, q.check(n, expected)


# ---------------------------------------------------------------- the pipe ceiling

def row_pipe(b, key, per_write):
    n, limit = b.size(key)
    half = n // 2
    drivers = []

    def overdue():  # the reads below then end: "a pipe driver died"
        for d in drivers:
            if d.poll() is None:
                d.kill()

    timer = threading.Timer(limit + 30, overdue)
    timer.start()
    try:
        for first in (0, half):
            drivers.append(b.procs.start(
                [PY, BENCH_PY, "_pipe-driver", str(first), str(half if first == 0 else n - half),
                 str(per_write)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env()))
        for d in drivers:
            if d.stdout.readline().strip() != b"ready":
                raise RowError("a pipe driver did not start")
        for d in drivers:
            d.stdin.write(b"go\n")
            d.stdin.flush()
        reports = []
        for d in drivers:
            line = d.stdout.readline()  # bounded by the shell's timeout
            if not line:
                raise RowError("a pipe driver died")
            reports.append(json.loads(line))
    finally:
        timer.cancel()
        for d in drivers:
            b.procs.stop(d, grace=5.0)
    for r in reports:
        if r["error"]:
            raise RowError(r["error"])
    secs = max(r["t1"] for r in reports) - min(r["t0"] for r in reports)
    if secs > limit:
        raise RowError("took %.0f s, over the %d s allowed" % (secs, limit))
    return n, n / secs, "%d results, all right" % n


def pipe_driver(first, n, per_write):
    """One bare child fed through a pipe: frames pre-built, written per_write
    at a time by a thread while the main thread reads the replies; the replies
    are checked after the clock stops."""
    child = subprocess.Popen([PY, TASK_PY, "bare"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             bufsize=0)
    fin, fout = child.stdin.fileno(), child.stdout.fileno()

    def write_all(data):
        view = memoryview(data)
        while view:
            view = view[os.write(fin, view):]

    def frame(i):
        p = payload(i).encode()
        return b"TASK %d 1 %d\n%s\n" % (i + 1, len(p), p)

    write_all(frame(first))  # warm-up: the interpreter is up before the clock starts
    got = b""
    while got.count(b"\n") < 2:
        got += os.read(fout, 4096)
    frames = [frame(i) for i in range(first, first + n)]
    if per_write > 1:
        frames = [b"".join(frames[k:k + per_write]) for k in range(0, n, per_write)]
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    parts = []
    t0 = time.monotonic()

    def writer():
        for f in frames:
            write_all(f)
        os.close(fin)

    th = threading.Thread(target=writer)
    th.start()
    while True:
        d = os.read(fout, 1 << 16)
        if not d:
            break
        parts.append(d)
    t1 = time.monotonic()
    th.join()
    child.wait()
    error = None
    try:
        data = b"".join(parts)
        pairs, pos = [], 0
        while pos < len(data):
            nl = data.index(b"\n", pos)
            w = data[pos:nl].split()
            end = nl + 1 + int(w[2])
            pairs.append((int(w[1]) - 1 - first, w[0] == b"RESULT", data[nl + 1:end].decode()))
            pos = end + 1
        check_values(pairs, n, lambda i: expected(first + i))
    except (RowError, ValueError, IndexError) as e:
        error = str(e)
    print(json.dumps({"t0": t0, "t1": t1, "error": error}), flush=True)


def worker_main(addr, batch):
    import forq

    forq.Worker(addr, handlers_task.handle, batch=batch).run()


# ---------------------------------------------------------------- producers

def produce_main(kind, n, out):
    """Enqueues tasks 0..n-1 (after one warm-up task, not timed); prints
    {"seconds": ...}; with out, writes the ids there (Celery)."""
    payloads = [payload(i) for i in range(n)]
    ids = []
    if kind in ("celery", "celery-chunks"):
        import handlers_celery

        t = handlers_celery.sum_task
        if kind == "celery-chunks":
            t0 = time.monotonic()
            g = t.chunks([(p,) for p in payloads], 64).apply_async()
            secs = time.monotonic() - t0
            ids = [r.id for r in g.results]
        else:
            t.apply_async((payload(0),), queue="warmup")  # connects; another queue, never run
            t0 = time.monotonic()
            ids = [t.apply_async((p,)).id for p in payloads]
            secs = time.monotonic() - t0
    elif kind == "rq":
        import redis
        from rq import Queue

        q = Queue(QUEUE, connection=redis.Redis.from_url(out))
        q.enqueue(handlers_task.handle, payload(0))
        t0 = time.monotonic()
        for p in payloads:
            q.enqueue(handlers_task.handle, p)
        secs = time.monotonic() - t0
        out = None
    else:  # push, push-many: out is forqd's TCP address
        import forq

        c = forq.Client(out)
        c.push(payload(0))
        t0 = time.monotonic()
        if kind == "push-many":
            got = c.push_many(payloads)
        else:
            got = [c.push(p) for p in payloads]
        secs = time.monotonic() - t0
        if len(set(got)) != n or None in got:
            raise SystemExit("push: %d distinct ids for %d tasks" % (len(set(got)), n))
        out = None
    if out:
        with open(out, "w") as f:
            f.write("\n".join(ids) + "\n")
    print(json.dumps({"seconds": secs}))


def row_producer(b, key):
    n, limit = b.size(key)
    q = None
    env = child_env()
    if key in ("push-many", "push"):
        q = Forqd(b, key, n, 0, results=False)
        target = "127.0.0.1:%d" % q.port
    else:
        red = need_redis(b)
        target = red.url if key == "rq-enqueue" else os.path.join(b.tmp, key + ".ids")
        env = child_env(BENCH_REDIS=red.url)
    kind = {"push-many": "push-many", "push": "push", "celery-apply": "celery", "rq-enqueue": "rq"}[key]
    try:
        r = subprocess.run([PY, BENCH_PY, "_produce", kind, str(n), target], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=limit)
        if r.returncode != 0:
            raise RowError("producer exited %d: %s" % (r.returncode, r.stderr.decode()[-400:]))
        secs = json.loads(r.stdout)["seconds"]
        if q:
            depth = q.client.stats()["pending"]
        elif key == "celery-apply":
            depth = b.redis.r0.llen("celery")
        else:
            depth = b.redis.r0.llen("rq:queue:" + QUEUE)
    finally:
        if q:
            q.stop()
    # and the warm-up task, but for Celery's, which went to another queue
    if depth != n + (0 if key == "celery-apply" else 1):
        raise RowError("the queue holds %d tasks after %d pushed" % (depth, n))
    return n, n / secs, "%d tasks queued" % n


# ---------------------------------------------------------------- the run

class Bench:
    def __init__(self, a):
        self.a = a
        self.forqd, self.forq, self.tmp = a.forqd, a.forq, a.tmp
        self.procs = Procs(a.tmp)
        self.tag = os.path.basename(a.tmp.rstrip("/")).split(".")[-1]  # the shell cleans /dev/shm by it
        self.shm = []
        self.seq = 0
        self.rows = []
        self.redis = None
        self.redis_missing = None
        self.forqd_version = subprocess.run([a.forqd, "--version"], stdout=subprocess.PIPE,
                                            text=True).stdout.strip()
        nmax = max(v[1 if a.quick else 0] for v in SIZES.values())
        self.payloads = [payload(i) for i in range(nmax)]
        self.index = {p: i for i, p in enumerate(self.payloads)}

    def size(self, key):
        full, quick, limit = SIZES[key]
        return (quick if self.a.quick else full), limit

    def start_redis(self):
        missing = [m for m in ("redis", "rq", "celery") if not importable(m)]
        if missing:
            self.redis_missing = "%s has no %s (install python3-celery python3-rq python3-redis, " \
                "or scripts/deps.sh bench)" % (PY, ", ".join(missing))
        elif not which("redis-server"):
            self.redis_missing = "no redis-server on PATH (apt-get install redis-server)"
        else:
            try:
                self.redis = Redis(self)
            except (NotAvailable, RowError) as e:
                self.redis_missing = "redis-server did not start: %s" % e

    def add(self, key, label, fn, *args):
        """A row of the table, in the table's order."""
        if not self.a.only or key in self.a.only:
            self.rows.append({"key": key, "label": label, "tasks": None, "rate": None, "rates": [],
                              "status": "ok", "note": "", "_run": (fn, args)})

    def run_all(self):
        """Every row once, then the short rows again, --runs rounds in all:
        one run of each short row per round, so the rows a ratio compares
        see the same moments of a shared machine; the median is shown."""
        rounds = 1 if self.a.quick else max(1, self.a.runs)
        for k in range(rounds):
            for row in self.rows:
                if k == 0 or row["key"] in FAST_ROWS and row["status"] == "ok":
                    self.run_once(row, k + 1)
        for row in self.rows:
            del row["_run"]  # not for --json
            if row["status"] == "ok":
                row["rate"] = sorted(row["rates"])[len(row["rates"]) // 2]
                if len(row["rates"]) > 1:
                    row["note"] += "; median of %s" % ", ".join("%.0f" % r for r in row["rates"])

    def run_once(self, row, k):
        fn, args = row["_run"]
        log("%s%s: %s ..." % (row["key"], " (round %d)" % k if k > 1 else "", row["label"]))
        t = time.monotonic()
        try:
            row["tasks"], rate, row["note"] = fn(self, *args)
            row["rates"].append(rate)
        except NotAvailable as e:
            row["status"], row["note"] = "n/a", str(e)
        except Exception as e:  # noqa: BLE001 - a library's error fails the row, not the run
            row["status"], row["note"] = "failed", "%s: %s" % (type(e).__name__, e)
        log("  %s in %.1f s: %s%s" % (row["status"], time.monotonic() - t,
                                      "%.0f tasks/s; " % rate if row["status"] == "ok" else "",
                                      row["note"]))

    def cleanup(self):
        self.procs.stop_all()
        for name in self.shm:
            try:
                os.unlink("/dev/shm" + name)
            except OSError:
                pass


def importable(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def which(prog):
    return any(os.access(os.path.join(d, prog), os.X_OK)
               for d in os.environ.get("PATH", "").split(os.pathsep) if d)


def main_run(a):
    from handlers_report import report

    b = Bench(a)
    t = time.monotonic()
    try:
        b.start_redis()
        rq_v = version_of("rq")
        cel_v = version_of("celery")
        py_v = "%d.%d" % sys.version_info[:2]
        b.add("exec-python", "forq `exec:python3 h.py` (one interpreter start per task)",
              row_forq_local, "exec-python", "exec:%s %s" % (shlex.quote(PY), shlex.quote(TASK_PY)))
        b.add("exec-cat", "forq `exec:cat` (the floor of one process start per task; result = payload)",
              lambda b_, k: row_forq_local(b_, k, "exec:cat", lambda i: b_.payloads[i]), "exec-cat")
        b.add("rq-fork", "RQ%s, forking `Worker` (a fork per job)" % rq_v, row_rq, "rq-fork", False)
        b.add("rq-simple", "RQ%s, `SimpleWorker`" % rq_v, row_rq, "rq-simple", True)
        b.add("celery-delay", "Celery%s, Redis broker and results, `.delay`" % cel_v,
              row_celery, "celery-delay", False)
        b.add("celery-chunks", "Celery%s, Redis broker and results, `chunks(64)`" % cel_v,
              row_celery, "celery-chunks", True)
        b.add("proc", "forq `proc:python3 h.py` with `forq.serve`", row_proc)
        b.add("worker", "`forq.Worker` over TCP (`forqd --workers 0`, batch 64)", row_worker,
              "worker", 64)
        b.add("worker-256", "`forq.Worker(batch=256)` over TCP (`forqd --workers 0 --batch 256`)",
              row_worker, "worker-256", 256)
        b.add("pipe-1", "bare persistent pipe (Python %s), 1 task per write" % py_v,
              row_pipe, "pipe-1", 1)
        b.add("pipe-64", "bare persistent pipe (Python %s), 64 tasks per write" % py_v,
              row_pipe, "pipe-64", 64)
        b.add("push-many", "producer: forq `Client.push_many` (pipelined, TCP)",
              row_producer, "push-many")
        b.add("push", "producer: forq `Client.push` (one round trip each)", row_producer, "push")
        b.add("celery-apply", "producer: Celery `apply_async` (`.delay`)", row_producer, "celery-apply")
        b.add("rq-enqueue", "producer: RQ `queue.enqueue`", row_producer, "rq-enqueue")
        b.run_all()
    finally:
        b.cleanup()
    meta = {"seconds": time.monotonic() - t, "python": "%s (%s)" % (PY, sys.version.split()[0]),
            "redis": b.redis.version if b.redis else None,
            "forqd": b.forqd_version.replace("forqd ", ""),
            "quick": a.quick, "cpus": os.cpu_count()}
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"meta": meta, "rows": b.rows}, f, indent=1)
    sys.stdout.write(report(b.rows, meta))
    return 1 if any(r["status"] == "failed" for r in b.rows) else 0


def version_of(dist):
    try:
        from importlib.metadata import version

        return " " + version(dist)
    except Exception:  # noqa: BLE001
        return ""


def main():
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        cmd, args = sys.argv[1], sys.argv[2:]
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if cmd == "_pipe-driver":
            pipe_driver(int(args[0]), int(args[1]), int(args[2]))
        elif cmd == "_worker":
            worker_main(args[0], int(args[1]))
        elif cmd == "_rq-worker":
            rq_worker_main(args[0], "--simple" in args)
        elif cmd == "_produce":
            produce_main(args[0], int(args[1]), args[2] if len(args) > 2 else None)
        else:
            sys.exit("unknown helper %s" % cmd)
        return 0
    ap = argparse.ArgumentParser(description="run bench/handlers.sh instead")
    ap.add_argument("--forqd", required=True)
    ap.add_argument("--forq", required=True)
    ap.add_argument("--tmp", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", type=lambda s: s.split(","), default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if a.only:
        unknown = set(a.only) - set(SIZES)
        if unknown:
            ap.error("unknown rows %s (rows: %s)" % (",".join(sorted(unknown)), ",".join(SIZES)))
    own_tmp = a.tmp is None
    if own_tmp:
        a.tmp = tempfile.mkdtemp(prefix="forq-handlers.")

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        return main_run(a)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if own_tmp:
            subprocess.run(["rm", "-rf", a.tmp])


if __name__ == "__main__":
    sys.exit(main())
