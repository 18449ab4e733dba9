"""forq.serve: a persistent ``proc:`` handler in one function.

forqd (``--handler proc:CMD``) starts CMD once per consumer and streams tasks
to its stdin; the child answers on its stdout.  The framing is in
handlers/PROC.md; in short, with every line ending in "\\n":

    forqd -> child   TASK <id> <attempt> <len>\\n<len payload bytes>\\n
    child -> forqd   RESULT <id> <len>\\n<len bytes>\\n     done, the bytes are the result
                     FAIL <id> <len>\\n<len bytes>\\n       failed for good, the bytes are the reason
                     RETRY <id> <len>\\n<len bytes>\\n      transient failure, try again later

serve() reads every frame that has arrived, runs fn on each, and writes the
replies in one write before it waits for more input (and at least every
``flush_every`` seconds while a batch runs), so that forqd can pipeline.
"""

import os
import sys
import time

from ._handler import DONE, FAILED, RETRY, run_handler

PROTOCOL = "1"
READ_SIZE = 1 << 16
MAX_HEADER = 128          # "TASK <20 digits> <10 digits> <20 digits>" and room to spare
FLUSH_EVERY = 0.002

_WORD = {DONE: b"RESULT", FAILED: b"FAIL", RETRY: b"RETRY"}


class FrameError(Exception):
    """The input does not follow the framing (forqd restarts the child)."""


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _take_stdio():
    """Moves the frames off fds 0 and 1: returns private copies of them, and
    points fd 1 at stderr (so that print() in fn goes to forqd's log instead of
    corrupting the replies) and fd 0 at /dev/null."""
    try:
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError):
        pass
    in_fd = os.dup(0)   # not inheritable: children fn starts do not hold the pipes
    out_fd = os.dup(1)
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except (AttributeError, ValueError):
        pass
    return in_fd, out_fd


def serve(fn, *, in_fd=None, out_fd=None, flush_every=FLUSH_EVERY):
    """Serves tasks to fn until forqd closes the input; then returns.

    fn(payload: bytes) -> bytes | str | None is the task's result; raising
    forq.Retry asks for a retry, forq.Fail or any other exception fails the
    task with the message as the reason (the same contract as forq.Worker).

    in_fd / out_fd: the descriptors of the frames (default: stdin and stdout,
    which serve then keeps to itself, see _take_stdio).
    """
    v = os.environ.get("FORQ_PROC")
    if v is not None and v != PROTOCOL:
        sys.stderr.write("forq.serve: forqd speaks proc: framing %r, this helper %r\n" % (v, PROTOCOL))
        sys.exit(2)
    if in_fd is None and out_fd is None:
        in_fd, out_fd = _take_stdio()
    elif in_fd is None or out_fd is None:
        raise ValueError("give both in_fd and out_fd, or neither")
    try:
        _loop(fn, in_fd, out_fd, flush_every)
    except FrameError as e:
        sys.stderr.write("forq.serve: %s\n" % e)
        sys.stderr.flush()
        sys.exit(1)
    except BrokenPipeError:
        pass  # forqd went away: nobody to answer


def _loop(fn, in_fd, out_fd, flush_every):
    clock = time.monotonic
    buf = b""
    pos = 0
    out = []
    last = clock()
    while True:
        # Every whole frame that has arrived.
        try:
            while True:
                nl = buf.find(b"\n", pos, pos + MAX_HEADER)
                if nl < 0:
                    if len(buf) - pos >= MAX_HEADER:
                        raise FrameError("bad frame header %r" % buf[pos : pos + 40])
                    break
                w = buf[pos:nl].split()
                if len(w) != 4 or w[0] != b"TASK" or not w[1].isdigit() or not w[3].isdigit():
                    raise FrameError("bad frame header %r (expected TASK <id> <attempt> <len>)"
                                     % buf[pos:nl][:60])
                start = nl + 1
                end = start + int(w[3])
                if len(buf) <= end:
                    break
                term = buf[end]
                if term == 10:
                    after = end + 1
                elif term == 13:
                    if len(buf) <= end + 1:
                        break
                    if buf[end + 1] != 10:
                        raise FrameError("task %s: payload not followed by a line end" % w[1].decode())
                    after = end + 2
                else:
                    raise FrameError("task %s: payload not followed by a line end" % w[1].decode())
                status, data = run_handler(fn, buf[start:end])
                out.append(b"%s %s %d\n" % (_WORD[status], w[1], len(data)))
                out.append(data)
                out.append(b"\n")
                pos = after
                if flush_every is not None:
                    now = clock()
                    if now - last >= flush_every:
                        _write_all(out_fd, b"".join(out))
                        out.clear()
                        last = now
        except FrameError:
            if out:  # the tasks before the bad frame are answered
                _write_all(out_fd, b"".join(out))
            raise
        # Nothing whole left: answer before waiting for more.
        if out:
            _write_all(out_fd, b"".join(out))
            out.clear()
        last = clock()
        chunk = os.read(in_fd, READ_SIZE if len(buf) - pos < READ_SIZE else 4 * READ_SIZE)
        if not chunk:
            if pos < len(buf):
                sys.stderr.write("forq.serve: input ended inside a frame (%d bytes dropped)\n"
                                 % (len(buf) - pos))
            return
        buf = buf[pos:] + chunk if pos < len(buf) else chunk
        pos = 0
