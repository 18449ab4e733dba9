"""forqd's TCP protocol (service/PROTOCOL.md): addresses, one buffered
connection, reply parsing.  Blocking sockets; no threads of its own."""

import select
import socket
import struct
from urllib.parse import urlsplit

from .errors import ConnectionFailed, ProtocolError, from_err_word

DEFAULT_TCP_PORT = 7070
DEFAULT_HTTP_PORT = 8080
MAX_LINE = 1024          # forqd's request line limit, terminator included
REPLY_MAX_LINE = 1 << 20  # STATS lines are longer than requests; this is only a guard
# recv() size: under malloc's mmap threshold (128 KiB), or each call is an
# mmap, page faults and an munmap (0.7 us a task for forq.Worker's batches).
RECV_SIZE = 1 << 16

PRIORITIES = ("high", "normal", "low")


class Addr:
    """A parsed forqd address: scheme "tcp" or "http"/"https", host, port and,
    for HTTP, a base path."""

    __slots__ = ("scheme", "host", "port", "path")

    def __init__(self, scheme, host, port, path=""):
        self.scheme, self.host, self.port, self.path = scheme, host, port, path

    def hostport(self):
        h = "[%s]" % self.host if ":" in self.host else self.host
        return "%s:%d" % (h, self.port)

    def __str__(self):
        if self.scheme == "tcp":
            return "tcp://" + self.hostport()
        return "%s://%s%s" % (self.scheme, self.hostport(), self.path)


def parse_addr(addr):
    """"host:port", "tcp://host:port", "[::1]:7070", "http://host:port[/base]"."""
    if not isinstance(addr, str) or not addr:
        raise ValueError("forq address must be a non-empty string like 127.0.0.1:7070")
    text = addr if "://" in addr else "tcp://" + addr
    u = urlsplit(text)
    scheme = u.scheme.lower()
    if scheme not in ("tcp", "http", "https"):
        raise ValueError("forq address %r: scheme must be tcp, http or https" % addr)
    try:
        port = u.port
    except ValueError as e:
        raise ValueError("forq address %r: %s" % (addr, e)) from None
    if port is None:
        port = {"tcp": DEFAULT_TCP_PORT, "http": DEFAULT_HTTP_PORT, "https": 443}[scheme]
    host = u.hostname or "127.0.0.1"
    path = u.path.rstrip("/") if scheme != "tcp" else ""
    if scheme == "tcp" and (u.path not in ("", "/") or u.query):
        raise ValueError("forq address %r: a TCP address has no path" % addr)
    return Addr(scheme, host, port, path)


def payload_bytes(payload):
    """A task payload as bytes: bytes as they are, str in UTF-8, any other
    value as its compact JSON text (as forqd's HTTP API does)."""
    if payload.__class__ is bytes:
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    import json

    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# TCP PUT option -> POST /tasks field.
HTTP_OPTION = {"delay": "delay", "key": "key", "window": "key_window"}


def put_options(delay, key, key_window):
    """PUT's options as (name, value) text pairs: delay=MS, key=KEY, window=MS
    (the HTTP side sends the durations as "<ms>ms")."""
    opts = []
    if delay is not None:
        if not 0 <= delay <= 366 * 86400:
            raise ValueError("delay must be 0 to 366 days in seconds, not %r" % (delay,))
        opts.append(("delay", "%d" % round(delay * 1000)))
    if key is not None:
        if not isinstance(key, str) or not 1 <= len(key.encode()) <= 94 or any(c <= " " or c == "\x7f" for c in key):
            raise ValueError("key must be 1 to 94 bytes of text without blanks, not %r" % (key,))
        opts.append(("key", key))
    if key_window is not None:
        if key is None:
            raise ValueError("key_window goes with a key")
        if not 0 <= key_window <= 366 * 86400:
            raise ValueError("key_window must be 0 to 366 days in seconds, not %r" % (key_window,))
        opts.append(("window", "%d" % round(key_window * 1000)))
    return opts


QUEUES_MAX = 16  # names in one GET_TASKS queue= list (PROTO_QUEUES_MAX)


def queue_word(queue):
    """A queue name as forqd takes it (1 to 32 letters, digits, '_' or '-');
    None stays None (forqd's default queue)."""
    if queue is None:
        return None
    if not isinstance(queue, str) or not 1 <= len(queue) <= 32 or any(
        not (c.isascii() and (c.isalnum() or c in "_-")) for c in queue
    ):
        raise ValueError("a queue name is 1 to 32 letters, digits, '_' or '-', not %r" % (queue,))
    return queue


def queue_list(queues):
    """A worker's queues (a name or a list of names) as GET_TASKS's
    "A,B" text; None for forqd's default queue."""
    if queues is None:
        return None
    if isinstance(queues, str):
        queues = queues.split(",")
    names = [queue_word(q) for q in queues]
    if not 1 <= len(names) <= QUEUES_MAX:
        raise ValueError("a worker serves 1 to %d queues, not %d" % (QUEUES_MAX, len(names)))
    return ",".join(names)


def priority_word(priority):
    if priority is None:
        return "normal"
    p = str(priority).lower()
    if p not in PRIORITIES:
        raise ValueError("priority must be high, normal or low, not %r" % (priority,))
    return p


def err_of(line):
    """The exception for an "ERR <word>" line (None for other lines)."""
    if line[:3] != b"ERR" or (len(line) > 3 and line[3:4] not in (b" ", b"\t")):
        return None
    word = line[4:].strip().decode("ascii", "replace") or "?"
    return from_err_word(word)


def unexpected(line, wanted):
    err = err_of(line)
    if err is not None:
        return err
    shown = line[:80].decode("ascii", "backslashreplace")
    return ProtocolError("unexpected reply %r (expected %s)" % (shown, wanted), "bad-reply")


def json_line(line):
    """A reply line holding one JSON object (STATS), as a dict."""
    import json

    if line[:1] == b"{":
        try:
            d = json.loads(line)
        except ValueError:
            d = None
        if isinstance(d, dict):
            return d
    raise unexpected(line, "a JSON object")


class Conn:
    """One TCP connection to forqd with a read buffer."""

    def __init__(self, addr, timeout=30.0):
        self.addr = addr
        try:
            self.sock = socket.create_connection((addr.host, addr.port), timeout=timeout)
        except OSError as e:
            raise ConnectionFailed(
                "cannot connect to forqd at %s: %s" % (addr.hostport(), e.strerror or e)
            ) from e
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.pos = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def stale(self):
        """True when forqd closed this connection, or sent what nobody asked
        for (an idle timeout's close, ``ERR too-many-connections``), while it
        was idle: cheap (a poll, no round trip), so a kept connection is
        checked before requests that must not be sent twice."""
        if self.pos < len(self.buf):
            return True
        try:
            r, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(r)

    def settimeout(self, t):
        self.sock.settimeout(t)
        self.timeout = t

    def blocking(self, timeout):
        """Makes the socket blocking with the kernel's timeouts (SO_RCVTIMEO,
        SO_SNDTIMEO) instead of Python's, which polls before every send and
        receive: a worker's round trip is then two syscalls, not four.  A
        system without them, or a timeout that is not above 0 (0 would mean
        none to the kernel), keeps Python's timeout."""
        if timeout is None or not timeout > 0:
            return
        sec = int(timeout)
        tv = struct.pack("ll", sec, max(int((timeout - sec) * 1e6), 0 if sec else 1))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
        except (OSError, AttributeError):
            return
        self.timeout = timeout
        self.sock.settimeout(None)

    def send(self, data):
        try:
            self.sock.sendall(data)
        except BlockingIOError as e:  # SO_SNDTIMEO (blocking())
            raise ConnectionFailed("forqd at %s took nothing for %ss" % (self.addr.hostport(), self.timeout)) from e
        except OSError as e:
            raise ConnectionFailed("lost forqd at %s: %s" % (self.addr.hostport(), e)) from e

    def _more(self):
        try:
            chunk = self.sock.recv(RECV_SIZE)
        except (socket.timeout, BlockingIOError) as e:  # the latter: SO_RCVTIMEO (blocking())
            raise ConnectionFailed(
                "no reply from forqd at %s within %ss" % (self.addr.hostport(), self.timeout)
            ) from e
        except OSError as e:
            raise ConnectionFailed("lost forqd at %s: %s" % (self.addr.hostport(), e)) from e
        if not chunk:
            raise ConnectionFailed("forqd at %s closed the connection" % self.addr.hostport())
        if self.pos:
            if self.pos == len(self.buf):
                self.buf.clear()
                self.pos = 0
            elif self.pos > 65536:
                del self.buf[: self.pos]
                self.pos = 0
        self.buf += chunk

    def line(self, limit=REPLY_MAX_LINE):
        """The next line, its "\\r\\n" or "\\n" removed."""
        while True:
            i = self.buf.find(b"\n", self.pos)
            if i >= 0:
                end = i - 1 if i > self.pos and self.buf[i - 1] == 13 else i
                out = bytes(self.buf[self.pos : end])
                self.pos = i + 1
                return out
            if len(self.buf) - self.pos > limit:
                raise ProtocolError("reply line over %d bytes" % limit, "bad-reply")
            self._more()

    def block(self, n):
        """n payload bytes and their "\\r\\n" (or "\\n")."""
        while len(self.buf) - self.pos < n + 2:
            if len(self.buf) - self.pos == n + 1 and self.buf[self.pos + n] == 10:
                break
            self._more()
        p = self.pos
        out = bytes(self.buf[p : p + n])
        if self.buf[p + n] == 10:
            self.pos = p + n + 1
        elif self.buf[p + n] == 13 and self.buf[p + n + 1] == 10:
            self.pos = p + n + 2
        else:
            raise ProtocolError("payload of %d bytes not followed by a line end" % n, "bad-reply")
        return out

    def ok(self):
        """Reads one "OK" (raises the ERR's exception otherwise)."""
        line = self.line()
        if line != b"OK":
            raise unexpected(line, "OK")

    def simple(self, n):
        """Reads n replies that are "OK" or "ERR <word>"; returns the list of
        the words of the ERR ones (empty when all were OK)."""
        want = 4 * n
        if len(self.buf) - self.pos >= want and self.buf[self.pos : self.pos + want] == b"OK\r\n" * n:
            self.pos += want  # the usual case: every one OK, no per-line work
            return []
        errs = []
        for _ in range(n):
            line = self.line()
            if line == b"OK":
                continue
            err = err_of(line)
            if err is None:
                raise unexpected(line, "OK or ERR")
            errs.append(err.code)
        return errs

    def _tasks_count(self):
        """Reads "TASKS k"; returns k."""
        line = self.line()
        if line[:6] != b"TASKS ":
            raise unexpected(line, "TASKS <k>")
        try:
            k = int(line[6:])
        except ValueError:
            raise unexpected(line, "TASKS <k>") from None
        return k

    def tasks(self):
        """Reads "TASKS k" and its k TASK blocks: [(id, attempt, payload)]."""
        return [self.task() for _ in range(self._tasks_count())]

    def task_batch(self):
        """Reads "TASKS k" and its k TASK blocks for a worker's hot loop:
        [(id, payload)], the id as the bytes of its digits (to be sent back
        as they are).  What has arrived is copied out as one bytes object and
        split there: no copy or decode per task beyond the payload's.

        The usual case, the whole batch here and no payload holding "\r\n",
        is one split at every "\r\n" and a check of each block: header
        "TASK <id> <attempt> <bytes>" and a payload of exactly <bytes>.  A
        payload that holds "\r\n" comes out of the split shorter than its
        length says, so the check fails there and the exact parse below
        reads the batch instead."""
        k = self._tasks_count()
        if not k:
            return []
        data = bytes(self.buf[self.pos :])
        parts = data.split(b"\r\n", 2 * k)
        if len(parts) > 2 * k:
            ps = parts[1 : 2 * k : 2]
            ids = []
            append = ids.append
            try:
                for h, payload in zip(parts[0 : 2 * k : 2], ps):
                    word, tid, _attempt, n = h.split(b" ")
                    if word != b"TASK" or int(n) != len(payload):
                        break
                    append(tid)
            except ValueError:
                pass
            if len(ids) == k:
                self.pos += len(data) - len(parts[-1])
                return list(zip(ids, ps))
        return self._task_batch(k)

    def _task_batch(self, k):
        """task_batch's exact parse, block by block, reading as needed."""
        out = []
        append = out.append
        while True:
            data = bytes(self.buf[self.pos :])
            end = len(data)
            p = 0
            try:
                while len(out) < k:
                    nl = data.find(b"\n", p)
                    if nl < 0:
                        break
                    word, tid, _attempt, n = data[p:nl].split()
                    if word != b"TASK":
                        raise ValueError
                    start = nl + 1
                    stop = start + int(n)
                    if data[stop : stop + 2] == b"\r\n":
                        append((tid, data[start:stop]))
                        p = stop + 2
                    elif stop + 2 <= end or stop + 1 == end and data[stop] != 13:
                        if data[stop] != 10:
                            raise ProtocolError("payload of %d bytes not followed by a line end"
                                                % int(n), "bad-reply")
                        append((tid, data[start:stop]))
                        p = stop + 1
                    else:
                        break  # not all here yet
            except ValueError:
                raise unexpected(data[p : data.find(b"\n", p)].rstrip(b"\r"),
                                 "TASK <id> <attempt> <bytes>") from None
            self.pos += p
            if len(out) == k:
                return out
            if len(self.buf) - self.pos > REPLY_MAX_LINE and data.find(b"\n", p) < 0:
                raise ProtocolError("reply line over %d bytes" % REPLY_MAX_LINE, "bad-reply")
            self._more()

    def task(self):
        """Reads one "TASK <id> <attempt> <bytes>" block."""
        line = self.line()
        w = line.split()
        if len(w) != 4 or w[0] != b"TASK":
            raise unexpected(line, "TASK <id> <attempt> <bytes>")
        try:
            tid, attempt, n = int(w[1]), int(w[2]), int(w[3])
        except ValueError:
            raise unexpected(line, "TASK <id> <attempt> <bytes>") from None
        return tid, attempt, self.block(n)


def fmt_put(prio, payload):
    return b"PUT %s %d\r\n%s\r\n" % (prio.encode(), len(payload), payload)


def fmt_auth(token):
    if isinstance(token, bytes):
        token = token.decode("utf-8")
    token = token.strip()
    if not token or "\n" in token or "\r" in token:
        raise ValueError("token must be one non-empty line")
    return b"AUTH " + token.encode("utf-8") + b"\r\n"
