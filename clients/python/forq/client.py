"""forq.Client: push tasks, look them up, read the queue's figures.

TCP (forqd --tcp, service/PROTOCOL.md) by default; HTTP (forqd --http, the
README's "HTTP API") when the address is an http:// URL.
"""

import http.client
import json
import threading
import time

from . import _wire
from .errors import (
    AuthError,
    ConnectionFailed,
    Draining,
    ForqError,
    NotFound,
    PayloadTooLarge,
    ProtocolError,
    QueueFull,
    ServerError,
    UnknownQueue,
)

PUT_CHUNK_TASKS = 512          # PUTs per write
PUT_CHUNK_BYTES = 256 << 10    # ... or this many bytes
PUT_WINDOW = 4                 # chunks written before their replies are read
HTTP_CHUNK_TASKS = 256         # forqd pushes a POST of at most 256 tasks atomically
HTTP_CHUNK_BYTES = 768 << 10   # its body limit is 1 MiB
FULL_BACKOFF_FIRST = 0.005
FULL_BACKOFF_MAX = 0.25


class Client:
    """A producer's connection to forqd.

    ``addr``: ``"host:port"`` or ``"tcp://host:port"`` for the TCP protocol,
    ``"http://host:port"`` for the HTTP API.  ``token``: the admin token, sent
    with ``AUTH`` (TCP; needed from non-loopback peers) or as a Bearer header
    (HTTP).  ``http``: over TCP, where ``get()`` looks tasks up (the TCP
    protocol has no lookup yet); default: the same host, port 8080.
    ``timeout``: seconds to wait for forqd on each request.

    One connection, opened at first use and again after it drops; a lock makes
    a Client usable from several threads (one request at a time).
    """

    def __init__(self, addr="127.0.0.1:7070", token=None, *, http=None, timeout=30.0):
        self.addr = _wire.parse_addr(addr)
        self.token = token
        self.timeout = timeout
        self._lock = threading.RLock()
        self._conn = None
        self._http = None
        self._http_used = False  # has the kept-alive HTTP connection served a request?
        self._http_capacity = None  # tasks per lane, for the size of a POST
        self._tcp_status = None  # does forqd's TCP side answer STATUS <id>? (probed once)
        if self.addr.scheme == "tcp":
            http_addr = http if http is not None else "http://%s:%d" % (
                "[%s]" % self.addr.host if ":" in self.addr.host else self.addr.host,
                _wire.DEFAULT_HTTP_PORT,
            )
            self._http_addr = _wire.parse_addr(http_addr)
            if self._http_addr.scheme == "tcp":
                raise ValueError("http=%r: expected an http:// URL" % (http,))
        else:
            self._http_addr = self.addr

    # ---- life ----

    def close(self):
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._http is not None:
                self._http.close()
                self._http = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "forq.Client(%r)" % str(self.addr)

    # ---- the API ----

    def push(self, payload, priority=None, *, timeout=0.0, delay=None, key=None, key_window=None,
             queue=None):
        """Enqueues one task; returns its id.

        payload: bytes, str (UTF-8) or any JSON value (its compact JSON text).
        priority: "high", "normal" (None) or "low".  timeout: seconds to keep
        trying while the lane is full (0: raise QueueFull at once).
        delay: seconds before it may start.  key: a unique key (str, 1 to 94
        bytes, no blanks): while a task holding it is pending, scheduled or
        running (or ended less than key_window seconds ago), that task's id
        is returned and nothing is pushed.  queue: the named queue (None:
        forqd's default one); one forqd serves none of that name: UnknownQueue."""
        try:
            return self.push_many([payload], priority, timeout=timeout, delay=delay, _key=key,
                                  _key_window=key_window, queue=queue)[0]
        except (QueueFull, Draining, PayloadTooLarge) as e:
            e.ids = None
            raise

    def push_many(self, payloads, priority=None, *, timeout=0.0, delay=None, _key=None,
                  _key_window=None, queue=None):
        """Enqueues many tasks, pipelined; returns their ids in order.

        When some are refused the exception (QueueFull, Draining,
        PayloadTooLarge) has ``ids``: the id of each payload that was taken,
        None for the others.  With a timeout, refusals for a full lane are
        tried again (those tasks then get later ids) until it runs out.
        delay: seconds before each may start (None: at once).  queue: the
        named queue (None: the default one; unknown: UnknownQueue, nothing
        pushed)."""
        prio = _wire.priority_word(priority)
        opts = _wire.put_options(delay, _key, _key_window)
        queue = _wire.queue_word(queue)
        blobs = [_wire.payload_bytes(p) for p in payloads]
        ids = [None] * len(blobs)
        todo = list(range(len(blobs)))
        deadline = time.monotonic() + timeout if timeout and timeout > 0 else None
        backoff = FULL_BACKOFF_FIRST
        while True:
            with self._lock:
                if self.addr.scheme == "tcp":
                    errs = self._tcp_put(prio, blobs, todo, ids, opts, queue)
                else:
                    errs = self._http_put(prio, blobs, todo, ids, opts, queue)
            if not errs:
                return ids
            full_only = all(isinstance(e, QueueFull) for e in errs.values())
            if full_only and deadline is not None and time.monotonic() < deadline:
                todo = sorted(errs)
                time.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
                backoff = min(backoff * 2, FULL_BACKOFF_MAX)
                continue
            first = errs[min(errs)]
            first.ids = ids
            if len(errs) > 1:
                first.args = ("%s (%d of %d tasks not taken)" % (first.args[0], len(errs), len(ids)),)
            raise first

    def get(self, task_id):
        """The task's state: a dict with ``id``, ``status`` (pending, running,
        retrying, done, failed, dead), ``attempts``, ``result`` (the result
        text when done, else None) and ``error`` (the reason, else None).
        Raises NotFound for an id forqd never gave or has forgotten (it keeps
        ``--recent`` finished tasks)."""
        task_id = int(task_id)
        if task_id <= 0:
            raise ValueError("task ids are positive integers")
        with self._lock:
            d = None
            if self.addr.scheme == "tcp" and self._tcp_status is not False:
                d = self._tcp_get(task_id)
            if d is None:
                try:
                    d = self._http_get(task_id)
                except NotFound:
                    # forqd's lookup reads the queue without locks and can miss
                    # a task that moves meanwhile (ring -> consumer): ask again.
                    time.sleep(0.002)
                    d = self._http_get(task_id)
        d.setdefault("result", None)
        d.setdefault("error", None)
        return d

    def stats(self, queue=None):
        """The queue's figures as a dict with the TCP ``STATS`` fields
        (service/PROTOCOL.md): pending, pending_high/normal/low, in_progress,
        retry_waiting, dead_letters, enqueued, done, failed, dead, retried,
        capacity, max_payload, accepting, ...  Over HTTP these names are
        filled from ``/stats`` and its other fields are kept as they are.
        queue: a named queue's (TCP only; None: the default queue)."""
        queue = _wire.queue_word(queue)
        with self._lock:
            if self.addr.scheme == "tcp":
                req = b"STATS %s\r\n" % queue.encode() if queue else b"STATS\r\n"
                line = self._tcp_request(req, lambda c: c.line())
                if line[:1] != b"{":
                    raise _wire.unexpected(line, "a JSON object")
                return _wire.json_line(line)
            if queue is not None:
                raise ValueError("stats(queue=...) needs a TCP address")
            return _flatten_http_stats(self._http_request("GET", "/stats"))

    def ping(self):
        """True when forqd answers (TCP PING, HTTP /healthz)."""
        with self._lock:
            if self.addr.scheme == "tcp":
                line = self._tcp_request(b"PING\r\n", lambda c: c.line())
                if line != b"PONG":
                    raise _wire.unexpected(line, "PONG")
                return True
            self._http_request("GET", "/healthz")
            return True

    # ---- TCP ----

    def _connect(self):
        if self._conn is None:
            conn = _wire.Conn(self.addr, self.timeout)
            try:
                if self.token:
                    conn.send(_wire.fmt_auth(self.token))
                    conn.ok()
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _drop(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _tcp_request(self, data, read, retry=True):
        """Sends data and reads its reply with read(conn); reconnects once if
        a connection kept from before had dropped."""
        if self._conn is not None and self._conn.stale():
            self._drop()
        fresh = self._conn is None
        conn = self._connect()
        try:
            conn.send(data)
            return read(conn)
        except ConnectionFailed:
            self._drop()
            if fresh or not retry:
                raise
        except (AuthError, ProtocolError):
            self._drop()  # forqd closes after these, or we lost the framing
            raise
        return self._tcp_request(data, read, retry=False)

    def _tcp_put(self, prio, blobs, todo, ids, opts, queue=None):
        """PUTs blobs[i] for i in todo, pipelined in chunks with a window of
        chunks in flight (forqd stops reading a client whose unread replies
        pass 1 MiB, so writing all before reading could deadlock).  Fills
        ids; returns {index: exception} for the refused ones."""
        errs = {}
        # Nothing is retried here once a PUT may have been taken: a resend
        # after a dropped connection could enqueue a task twice.
        if self._conn is not None and self._conn.stale():
            self._drop()
        conn = self._connect()
        if queue is not None:
            opts = opts + [("queue", queue)]
        head = prio.encode() + b"".join(b" %s=%s" % (k.encode(), v.encode()) for k, v in opts)
        inflight = []  # lists of indexes whose replies are still to read
        unknown = None
        i = 0
        try:
            while (i < len(todo) and unknown is None) or inflight:
                if i < len(todo) and unknown is None and len(inflight) < PUT_WINDOW:
                    parts, chunk, size = [], [], 0
                    while i < len(todo) and len(chunk) < PUT_CHUNK_TASKS and size < PUT_CHUNK_BYTES:
                        k = todo[i]
                        b = blobs[k]
                        parts.append(b"PUT %s %d\r\n%s\r\n" % (head, len(b), b))
                        size += len(b) + 24
                        chunk.append(k)
                        i += 1
                    conn.send(b"".join(parts))
                    inflight.append(chunk)
                    continue
                for k in inflight.pop(0):
                    line = conn.line()
                    if line[:3] == b"OK ":
                        try:
                            ids[k] = int(line[3:].split(b" ", 1)[0])  # "OK <id> duplicate" too
                            continue
                        except ValueError:
                            pass
                    err = _wire.err_of(line)
                    if isinstance(err, UnknownQueue):
                        unknown = err  # every PUT of the batch says so: read them all
                        continue
                    if err is None or not isinstance(err, (QueueFull, Draining, PayloadTooLarge)):
                        raise _wire.unexpected(line, "OK <id>")
                    errs[k] = err
        except (ForqError, OSError):
            self._drop()
            raise
        if unknown is not None:
            raise unknown
        return errs

    def _tcp_get(self, task_id):
        """STATUS <id> (a proposed TCP command): the dict, or None when forqd
        does not know the command (then HTTP is used from now on)."""

        def read(conn):
            return conn.line()

        line = self._tcp_request(b"STATUS %d\r\n" % task_id, read)
        if line[:1] == b"{":
            self._tcp_status = True
            return _wire.json_line(line)
        err = _wire.err_of(line)
        if err is not None and err.code == "unknown-command":
            self._tcp_status = False
            return None
        if err is not None and err.code in ("not-found", "unknown-task"):
            raise NotFound("unknown or forgotten task %d" % task_id, err.code)
        raise _wire.unexpected(line, "a JSON object")

    # ---- HTTP ----

    def _http_conn(self):
        if self._http is None:
            a = self._http_addr
            cls = http.client.HTTPSConnection if a.scheme == "https" else http.client.HTTPConnection
            self._http = cls(a.host, a.port, timeout=self.timeout)
        return self._http

    def _http_request(self, method, path, body=None, ok=(200,)):
        """One request on the kept-alive connection (reopened once if forqd
        had closed it); returns the decoded JSON body.  Errors become the
        package's exceptions."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            tok = self.token.decode() if isinstance(self.token, bytes) else self.token
            headers["Authorization"] = "Bearer " + tok.strip()
        url = self._http_addr.path + path
        for attempt in (0, 1):
            reused = self._http is not None and self._http_used
            conn = self._http_conn()
            try:
                conn.request(method, url, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self._http_used = True
                break
            except (http.client.HTTPException, OSError) as e:
                conn.close()
                self._http = None
                self._http_used = False
                # A kept-alive connection that forqd closed while idle (its
                # 10 s timeout) fails before the request is read: send again
                # on a new one. Anything else is an error.
                closed = isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError,
                                        ConnectionResetError))
                if attempt or not (reused and closed):
                    raise ConnectionFailed(
                        "cannot reach forqd at %s: %s" % (self._http_addr, e)
                    ) from e
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            self._http = None
            self._http_used = False
        try:
            doc = json.loads(data) if data else {}
        except ValueError:
            doc = {"error": data[:200].decode("utf-8", "replace")}
        if resp.status in ok:
            return doc
        msg = doc.get("error") if isinstance(doc, dict) else None
        msg = msg or "HTTP %d" % resp.status
        s = resp.status
        if s == 503:
            if "shutting down" in msg or "draining" in msg:
                raise Draining(msg, s)
            raise QueueFull(msg, s)
        if s in (401, 403):
            raise AuthError(msg, s)
        if s == 404:
            raise NotFound(msg, s)
        if s == 413:
            raise PayloadTooLarge(msg, s)
        if s >= 500:
            raise ServerError(msg, s)
        raise ProtocolError(msg, s)

    def _http_put(self, prio, blobs, todo, ids, opts, queue=None):
        errs = {}
        per_post = HTTP_CHUNK_TASKS
        if len(todo) > 1:
            # forqd refuses (400) a batch bigger than a lane: learn the size once.
            if self._http_capacity is None:
                cap = self._http_request("GET", "/stats").get("capacity")
                self._http_capacity = cap if isinstance(cap, int) and cap > 0 else HTTP_CHUNK_TASKS
            per_post = min(per_post, self._http_capacity)
        i = 0
        while i < len(todo):
            chunk, items, size = [], [], 0
            while i < len(todo) and len(chunk) < per_post and (not chunk or size < HTTP_CHUNK_BYTES):
                k = todo[i]
                try:
                    text = blobs[k].decode("utf-8")
                except UnicodeDecodeError:
                    raise ValueError(
                        "payload %d is not UTF-8: the HTTP API carries text; use TCP for bytes" % k
                    ) from None
                if "\0" in text:
                    raise ValueError("payload %d holds a NUL byte: the HTTP API refuses it; use TCP" % k)
                item = {"payload": text}
                if prio != "normal":
                    item["priority"] = prio
                for name, value in opts:
                    item[_wire.HTTP_OPTION[name]] = value if name == "key" else value + "ms"
                items.append(item)
                size += len(blobs[k]) + 32
                chunk.append(k)
                i += 1
            body = json.dumps(items, ensure_ascii=False).encode("utf-8")
            path = "/queues/%s/tasks" % queue if queue is not None else "/tasks"
            try:
                doc = self._http_request("POST", path, body, ok=(200, 202))
            except NotFound as e:
                raise UnknownQueue(e.args[0], e.args[1] if len(e.args) > 1 else 404) from None
            except (QueueFull, Draining, PayloadTooLarge) as e:
                # A POST of at most 256 tasks of one priority is all or nothing.
                for k in chunk:
                    errs[k] = e
                if isinstance(e, Draining):
                    for k in todo[i:]:
                        errs[k] = e
                    break
                continue
            got = doc.get("ids") if isinstance(doc, dict) else None
            if not isinstance(got, list) or len(got) != len(chunk):
                raise ProtocolError("POST /tasks answered %r" % (doc,), "bad-reply")
            for k, v in zip(chunk, got):
                ids[k] = int(v)
        return errs

    def _http_get(self, task_id):
        return self._http_request("GET", "/tasks/%d" % task_id)


def _flatten_http_stats(d):
    """/stats with the TCP STATS names added (pending etc. as plain numbers)."""
    out = dict(d)
    pend = d.get("pending")
    if isinstance(pend, dict):
        out["pending"] = pend.get("total", 0)
        for p in _wire.PRIORITIES:
            out["pending_" + p] = pend.get(p, 0)
    enq = d.get("enqueued")
    if isinstance(enq, dict):
        out["enqueued"] = enq.get("total", 0)
    if "draining" in d:
        out.setdefault("accepting", not d["draining"])
    remote = d.get("remote")
    if isinstance(remote, dict):
        out.setdefault("remote_workers", remote.get("workers_connected", 0))
        out.setdefault("leases", remote.get("leases_outstanding", 0))
        out.setdefault("connections", remote.get("connections", 0))
    return out
