"""forq.Worker: a remote worker over forqd's TCP protocol.

One connection.  Each round trip carries the results of the batch just run
and the request for the next one (``GET_TASKS n WAIT ms``); replies come back
in request order, so the worker keeps a FIFO of the replies it expects.
A ticker thread pokes the hot loop when a batch has run FLUSH_EVERY (its
results so far go out) and sends ``TOUCH`` for the tasks still held every
third of forqd's lease timeout; writes to the socket are serialized by a
lock, and only the main loop reads.  The hot loop itself looks at one
attribute per task (``_poke``): no clock, no counter, no shared state.
"""

import logging
import random
import signal
import threading
import time
from collections import deque

from . import _wire
from ._handler import DONE, FAILED, RETRY, as_result, failure
from .errors import AuthError, ConnectionFailed, ForqError, ProtocolError, from_err_word

log = logging.getLogger("forq.worker")

BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
FLUSH_EVERY = 0.05      # results of a slow batch go out at least this often (s)
REPLY_SLACK = 30.0      # beyond WAIT: a silent forqd is a lost one (s)
BATCH_MAX = 4096

# Expected replies, in wire order.
_E_SIMPLE = 0   # (kind, n, what): n replies "OK" / "ERR <word>" (what: "result" or "touch")
_E_TASKS = 1    # (kind,): "TASKS k" and k TASK blocks
_E_BATCH = 2    # (kind, n): "RESULTS <applied> <not_leased>" for a batch of n
_E_BYE = 3      # (kind,): "BYE"


class _Results:
    """Results gathered between two writes: one part per result (the
    worker's hot loop appends framed DONE parts itself), the wire word and
    the text of an empty value per status.  Task ids are the bytes forqd
    sent (Conn.task_batch)."""

    _WORD = {DONE: b"RESULT", FAILED: b"FAIL", RETRY: b"RETRY"}
    _EMPTY = {DONE: b"", FAILED: b"failed", RETRY: b"retry"}

    def __init__(self):
        self.parts = []
        self.taken = 0  # results taken out since the counter was last reset

    def _take(self):
        parts = self.parts
        data = b"".join(parts)
        n = len(parts)
        parts.clear()    # in place: the hot loop holds this list
        self.taken += n  # after the clear: a reader of taken + len(parts) sees too few, never too many
        return data


class LineResults(_Results):
    """Results as the one-line RESULT/FAIL/RETRY commands, one "OK" each
    (for a forqd without ``RESULTS`` batches).

    A value is the rest of one line of at most 1,024 bytes: line ends become
    spaces and longer values are cut (as ``forq worker`` does with such a
    forqd).  FramedResults lifts both limits where forqd offers it."""

    framed = False

    def add(self, tid, status, data):
        word = self._WORD[status]
        if not data or len(data) > 900 or b"\n" in data or b"\r" in data:
            data = self._fit(word, tid, data, status)
        self.parts.append(b"%s %s %s\r\n" % (word, tid, data))

    def _fit(self, word, tid, data, status):
        data = data.replace(b"\r", b" ").replace(b"\n", b" ")
        room = _wire.MAX_LINE - 2 - len(b"%s %s " % (word, tid))
        data = data[:room]
        return data or self._EMPTY[status]

    def take(self):
        """(bytes to send, expectations) for what was added; resets."""
        n = len(self.parts)
        if not n:
            return b"", ()
        return self._take(), ((_E_SIMPLE, n, "result"),)


class FramedResults(_Results):
    """Results as one ``RESULTS <k>`` batch of length-prefixed frames, binary
    safe (tcp/PROTOCOL.md): ``RESULTS k\\r\\n`` then k times
    ``<RESULT|FAIL|RETRY> <id> <bytes>\\r\\n<value>\\r\\n``, one reply
    ``RESULTS <applied> <not_leased>`` for the batch."""

    framed = True
    DONE_FRAME = b"RESULT %s %d\r\n%s\r\n"  # % (id, len, value): the hot loop's

    def add(self, tid, status, data):
        if not data:
            data = self._EMPTY[status]
        self.parts.append(b"%s %s %d\r\n%s\r\n" % (self._WORD[status], tid, len(data), data))

    def take(self):
        n = len(self.parts)
        if not n:
            return b"", ()
        return b"RESULTS %d\r\n" % n + self._take(), ((_E_BATCH, n),)


class Worker:
    """Runs fn on tasks leased from forqd over TCP.

    ``fn(payload: bytes) -> bytes | str | None``; raise ``forq.Retry`` for a
    transient failure, ``forq.Fail`` or any other exception for a permanent
    one (the same contract as ``forq.serve``).

    ``batch``: tasks per ``GET_TASKS``.  ``token``: sent with ``AUTH``.
    ``wait_ms``: how long one request waits on an empty queue.  ``max_tasks``:
    return after that many tasks.  ``reconnect``: on a lost connection, connect
    again with backoff (0.1 s doubling to 5 s) instead of raising.
    ``results``: "auto" (the framed form when forqd answers ``RESULTS 0``,
    else one line per result), "line" or "framed".  ``queues``: the named
    queues to serve, a list or "a,b" (up to 16, taken from in turn; None:
    forqd's default queue); a name forqd does not serve raises UnknownQueue
    from ``run()``.

    ``run()`` returns the number of tasks run.  In the main thread it handles
    SIGTERM and SIGINT: the first finishes every task already leased, sends
    the results and says ``EXIT``; a second one finishes only the task
    running, and the leased tasks not started go back to the queue.
    ``stop(now=False)`` does the same from another thread.
    """

    def __init__(self, addr, fn, batch=64, token=None, *, wait_ms=1000, max_tasks=None,
                 reconnect=True, results="auto", timeout=None, queues=None):
        self.addr = _wire.parse_addr(addr)
        if self.addr.scheme != "tcp":
            raise ValueError("forq.Worker speaks TCP: give host:port, not %s" % self.addr)
        if not callable(fn):
            raise TypeError("fn must be callable")
        if not 1 <= int(batch) <= BATCH_MAX:
            raise ValueError("batch must be 1..%d" % BATCH_MAX)
        if results not in ("auto", "line", "framed"):
            raise ValueError("results must be auto, line or framed")
        self.fn = fn
        self.queues = _wire.queue_list(queues)
        self._get_tail = b" queue=%s\r\n" % self.queues.encode() if self.queues else b"\r\n"
        self.batch = int(batch)
        self.token = token
        self.wait_ms = int(wait_ms)
        self.max_tasks = max_tasks
        self.reconnect = reconnect
        self.results = results
        self.timeout = timeout if timeout is not None else self.wait_ms / 1000.0 + REPLY_SLACK
        # counters
        self.done = 0
        self.failed = 0
        self.retried = 0
        self.lost = 0        # results forqd refused: the lease had moved on
        self.connects = 0
        # state shared with the heartbeat and with stop()
        self._stop = 0
        self._wake = threading.Event()
        self._wlock = threading.Lock()
        self._expect = deque()
        self._poke = 0       # set by stop() and the ticker: the hot loop looks once per task
        self._held = ()      # the batch running ([(id, payload)])
        self._enc = None     # its results: taken + len(parts) of its tasks have ended
        self._batch_t0 = None  # when the results of the batch running last went out
        self._conn = None

    # ---- control ----

    def stop(self, now=False):
        """Asks run() to return: after the tasks leased (now=False) or after
        the task running (now=True)."""
        self._stop = max(self._stop, 2 if now else 1)
        self._poke = 1
        self._wake.set()

    def _on_signal(self, signum, frame):
        self.stop(now=self._stop >= 1)

    @property
    def tasks_run(self):
        return self.done + self.failed + self.retried

    def run(self):
        restore = {}
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                restore[s] = signal.signal(s, self._on_signal)
        try:
            self._loop()
        finally:
            for s, h in restore.items():
                signal.signal(s, h)
        return self.tasks_run

    def _finished(self):
        return self._stop or (self.max_tasks is not None and self.tasks_run >= self.max_tasks)

    def _loop(self):
        backoff = BACKOFF_FIRST
        while not self._finished():
            before = self.tasks_run
            try:
                self._session()
            except AuthError:
                raise
            except (ConnectionFailed, ProtocolError) as e:
                if not self.reconnect or getattr(e, "fatal", False):
                    raise
                if self._finished():
                    return
                if self.tasks_run > before:
                    backoff = BACKOFF_FIRST
                log.warning("forq worker: %s; connecting again in %.1fs", e, backoff)
                self._wake.wait(backoff * (0.75 + random.random() / 2))
                backoff = min(backoff * 2, BACKOFF_MAX)

    # ---- one connection ----

    def _send(self, data, expect):
        """Queues the expected replies, then sends; under the write lock so
        that wire order and FIFO order agree with the heartbeat's TOUCHes."""
        with self._wlock:
            self._expect.extend(expect)
            self._conn.send(data)

    def _session(self):
        conn = _wire.Conn(self.addr, self.timeout)
        self._conn = conn
        self._expect.clear()
        self._held, self._enc, self._batch_t0 = (), None, None
        hb_stop = threading.Event()
        hb = None
        try:
            enc, lease_ms = self._hello(conn)
            self.connects += 1
            log.info("forq worker: connected to %s (%s results)", self.addr,
                     "framed" if enc.framed else "line")
            conn.blocking(self.timeout)  # the hot path: one syscall a send or a receive
            hb = threading.Thread(target=self._ticker, args=(hb_stop, lease_ms / 3000.0),
                                  name="forq-ticker", daemon=True)
            hb.start()
            self._work(conn, enc, hb_stop, hb)
        finally:
            hb_stop.set()
            if hb is not None:
                hb.join()
            conn.close()
            self._conn = None

    def _hello(self, conn):
        """AUTH, STATS (for the lease timeout) and the RESULTS probe, in one
        write.  Returns (encoder, lease timeout in ms)."""
        parts = []
        if self.token:
            parts.append(_wire.fmt_auth(self.token))
        parts.append(b"STATS\r\n")
        probe = self.results != "line"
        if probe:
            parts.append(b"RESULTS 0\r\n")
        conn.send(b"".join(parts))
        if self.token:
            conn.ok()
        lease_ms = int(_wire.json_line(conn.line()).get("lease_timeout_ms") or 0)
        framed = False
        if probe:
            line = conn.line()
            if line[:8] == b"RESULTS ":
                framed = True
            else:
                err = _wire.err_of(line)
                if err is None or err.code != "unknown-command":
                    raise _wire.unexpected(line, "RESULTS 0 0 or ERR unknown-command")
                if self.results == "framed":
                    e = ProtocolError("forqd at %s has no RESULTS batch form" % self.addr,
                                      "unknown-command")
                    e.fatal = True
                    raise e
        return (FramedResults() if framed else LineResults()), lease_ms

    def _want(self):
        if self.max_tasks is None:
            return self.batch
        return max(1, min(self.batch, self.max_tasks - self.tasks_run))

    def _get(self):
        return b"GET_TASKS %d WAIT %d%s" % (self._want(), self.wait_ms, self._get_tail)

    def _work(self, conn, enc, hb_stop, hb):
        self._send(self._get(), ((_E_TASKS,),))
        while True:
            tasks = self._replies(conn, until_tasks=True)
            if tasks and self._stop < 2:
                self._run_batch(enc, tasks)
            if self._finished():
                break
            data, exp = enc.take()
            self._send(data + self._get(), exp + ((_E_TASKS,),))
        # Goodbye: results of what ran, then EXIT (forqd gives back the rest).
        hb_stop.set()
        if hb is not None:
            hb.join()
        data, exp = enc.take()
        self._send(data + b"EXIT\r\n", exp + ((_E_BYE,),))
        self._replies(conn, until_tasks=False)

    def _run_batch(self, enc, tasks):
        """Runs fn on each (id, payload) of tasks, adding the results to
        enc.  The hot loop: a framed DONE result is one %-format and one
        append; the one look at shared state is ``_poke`` (a stop, or the
        ticker's word that the results so far are due: FLUSH_EVERY).  What
        ran is counted once per batch, from the results added."""
        fn = self.fn
        parts = enc.parts
        add = enc.add
        frame = enc.DONE_FRAME if enc.framed else None
        failed = retried = 0
        enc.taken = 0
        self._enc = enc
        self._held = tasks
        self._batch_t0 = time.monotonic()
        try:
            for tid, payload in tasks:
                if self._poke:
                    self._poke = 0  # first: a stop that comes after is seen at the next task
                    if self._stop >= 2:
                        break
                    data, exp = enc.take()
                    if data:
                        self._send(data, exp)
                    self._batch_t0 = time.monotonic()
                try:
                    r = fn(payload)
                    if r.__class__ is str:
                        r = r.encode("utf-8")
                    elif r.__class__ is not bytes:
                        r = as_result(r)
                except Exception as e:  # noqa: BLE001 - the contract: it fails the task
                    status, data = failure(e)
                    add(tid, status, data)
                    if status is FAILED:
                        failed += 1
                    else:
                        retried += 1
                else:
                    if frame is not None:
                        parts.append(frame % (tid, len(r), r))
                    else:
                        add(tid, DONE, r)
        finally:
            self._held, self._batch_t0 = (), None
            ran = enc.taken + len(parts)
            self.done += ran - failed - retried
            self.failed += failed
            self.retried += retried

    def _replies(self, conn, until_tasks):
        """Reads replies in FIFO order: until a TASKS batch (returned as a list
        of (id, attempt, payload)), or until BYE."""
        while True:
            with self._wlock:
                e = self._expect.popleft()
            kind = e[0]
            if kind == _E_SIMPLE:
                for word in conn.simple(e[1]):
                    self._refused(word, e[2])
            elif kind == _E_TASKS:
                tasks = conn.task_batch()
                if until_tasks:
                    return tasks
                # (not reached: no GET is outstanding when we say EXIT)
            elif kind == _E_BATCH:
                line = conn.line()
                w = line.split()
                if len(w) != 3 or w[0] != b"RESULTS":
                    raise _wire.unexpected(line, "RESULTS <applied> <not_leased>")
                lost = int(w[2])
                if lost:
                    self.lost += lost
                    log.warning("forq worker: %d results came after their lease ended", lost)
            elif kind == _E_BYE:
                line = conn.line()
                if line != b"BYE":
                    raise _wire.unexpected(line, "BYE")
                return None

    def _refused(self, word, what):
        if word == "not-leased":
            if what == "result":
                self.lost += 1
                log.warning("forq worker: a result came after its lease ended (not recorded)")
            return
        raise from_err_word(word)

    # ---- ticker: flushes and TOUCHes while a batch runs ----

    def _ticker(self, stop, touch_every):
        """Every FLUSH_EVERY: pokes the hot loop when the batch running has
        held its results that long.  Every touch_every seconds (a third of
        the lease timeout; 0: forqd gave none, no TOUCH): _touch_held."""
        next_touch = time.monotonic() + touch_every
        while not stop.wait(FLUSH_EVERY):
            t0 = self._batch_t0
            now = time.monotonic()
            if t0 is not None and now - t0 >= FLUSH_EVERY:
                self._poke = 1
            if touch_every and now >= next_touch:
                next_touch = now + touch_every
                if not self._touch_held():
                    return

    def _touch_held(self):
        """Sends TOUCH for the tasks of the batch running that have not
        ended (their results added, sent or not); False when the
        connection is gone.  (Read without a lock: a count that is one
        short touches one task more, which forqd takes.)"""
        tasks, enc = self._held, self._enc
        if not tasks or enc is None:
            return True
        rest = tasks[enc.taken + len(enc.parts):]
        if not rest:
            return True
        data = b"".join(b"TOUCH %s\r\n" % t[0] for t in rest)
        try:
            self._send(data, ((_E_SIMPLE, len(rest), "touch"),))
        except (ConnectionFailed, ForqError, AttributeError):
            return False
        return True
