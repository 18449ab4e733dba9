"""The rows of bench/handlers.sh that need Redis: RQ and Celery consumers.
A row that finds no Redis (or no python3-rq, python3-celery) is not
available, not failed."""

import json
import os
import subprocess

import handlers_task
from handlers_common import (BENCH_PY, HERE, PY, QUEUE, NotAvailable, RowError, alive,
                             check_values, child_env, free_port, measure, wait_port)
from handlers_task import expected


class Redis:
    def __init__(self, b):
        self.port = free_port()
        self.url = "redis://127.0.0.1:%d" % self.port
        log = os.path.join(b.tmp, "redis.log")
        with open(log, "wb") as f:
            self.p = b.procs.start(["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                                    "--save", "", "--appendonly", "no", "--daemonize", "no",
                                    "--dir", b.tmp], stdout=f, stderr=subprocess.STDOUT)
        wait_port(self.port, self.p, 10, log)
        import redis

        self.r0 = redis.Redis(port=self.port, db=0)
        self.r1 = redis.Redis(port=self.port, db=1)
        self.version = self.r0.info()["redis_version"]


def need_redis(b):
    if b.redis is None:
        raise NotAvailable(b.redis_missing)
    b.redis.r0.flushall()
    return b.redis


def row_rq(b, key, simple):
    red = need_redis(b)
    from rq import Queue
    from rq.job import Job

    n, limit = b.size(key)
    q = Queue(QUEUE, connection=red.r0)
    jobs = q.enqueue_many([Queue.prepare_data(handlers_task.handle, (p,), result_ttl=3600)
                           for p in b.payloads[:n]])
    ids = [j.id for j in jobs]
    workers = []
    try:
        for k in range(2):
            with open(os.path.join(b.tmp, "%s%d.log" % (key, k)), "wb") as f:
                workers.append(b.procs.start(
                    [PY, BENCH_PY, "_rq-worker", red.url] + (["--simple"] if simple else []),
                    stdout=f, stderr=subprocess.STDOUT, env=child_env()))
        done_key, failed_key = "rq:finished:" + QUEUE, "rq:failed:" + QUEUE

        def finished():
            return red.r0.zcard(done_key) + red.r0.zcard(failed_key)

        def check():  # burst workers exit when the queue is empty
            if all(w.poll() is not None for w in workers) and finished() < n:
                raise RowError("the RQ workers exited with %d of %d jobs finished (see %s)"
                               % (finished(), n, os.path.join(b.tmp, key + "0.log")))

        rate, _ = measure(finished, n, limit, check)
    finally:
        for w in workers:
            b.procs.stop(w, grace=10.0)
    pairs = []
    for k in range(0, n, 1000):
        for i, j in enumerate(Job.fetch_many(ids[k:k + 1000], connection=red.r0), k):
            pairs.append((i, j is not None and j.get_status() == "finished", j and j.result))
    return n, rate, check_values(pairs, n, expected)


def row_celery(b, key, chunked):
    red = need_redis(b)
    n, limit = b.size(key)
    ids_file = os.path.join(b.tmp, key + ".ids")
    fill = subprocess.run([PY, BENCH_PY, "_produce", "celery-chunks" if chunked else "celery",
                           str(n), ids_file], env=child_env(BENCH_REDIS=red.url),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if fill.returncode != 0:
        raise RowError("filling Celery's queue: %s" % fill.stderr.decode()[-400:])
    with open(ids_file) as f:
        ids = f.read().split()
    per = 64 if chunked else 1
    with open(os.path.join(b.tmp, key + ".log"), "wb") as f:
        w = b.procs.start([PY, "-m", "celery", "-A", "handlers_celery", "worker", "-P", "prefork",
                           "-c", "2", "--loglevel", "WARNING", "--without-gossip",
                           "--without-mingle", "--without-heartbeat",
                           "-n", "bench%d@127.0.0.1" % os.getpid()],
                          cwd=HERE, stdout=f, stderr=subprocess.STDOUT,
                          env=child_env(BENCH_REDIS=red.url))
    try:
        rate, _ = measure(lambda: min(n, red.r1.dbsize() * per), n, limit, alive(w))
    finally:
        b.procs.stop(w, grace=15.0)
    pairs = []
    for k in range(0, len(ids), 1000):
        metas = red.r1.mget(["celery-task-meta-" + t for t in ids[k:k + 1000]])
        for c, m in enumerate(metas, k):
            m = json.loads(m) if m else {}
            ok = m.get("status") == "SUCCESS"
            vals = (m.get("result") if chunked else [m.get("result")]) or []
            if len(vals) != per:
                vals = [None] * per
            for j, v in enumerate(vals):
                pairs.append((c * per + j, ok, v))
    return n, rate, check_values(pairs, n, expected)


def rq_worker_main(url, simple):
    import redis
    from rq import Queue, SimpleWorker, Worker

    conn = redis.Redis.from_url(url)
    cls = SimpleWorker if simple else Worker
    cls([Queue(QUEUE, connection=conn)], connection=conn).work(burst=True, logging_level="WARNING")
