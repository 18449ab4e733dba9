"""The task every row of bench/handlers.sh runs, and the ways it is run.

The task: parse a small JSON document and sum its ten numbers.  Task i is

    {"op":"sum","id":i,"args":[10i, 10i+1, ..., 10i+9]}

and its result is the text of the sum, 100i + 45.  handle() is the one
function every row calls (Celery's task, RQ's job, forq.Worker's and
forq.serve's fn, the exec: script, the bare pipe child).

Run as a script, this file is a handler:

    python3 handlers_task.py          exec: one task on stdin, the result on stdout
    python3 handlers_task.py serve    proc: with forq.serve (forq from PYTHONPATH)
    python3 handlers_task.py bare     the pipe ceiling: the proc: framing
                                      (handlers/PROC.md) in a minimal loop, no forq

Only json, os and sys are imported before the mode is known, so the exec:
row pays the interpreter start and nothing of Celery, RQ or forq.
"""

import json
import os
import sys


def handle(payload):
    """The task: bytes or str (a JSON document) -> str (the sum of args)."""
    return str(sum(json.loads(payload)["args"]))


def payload(i):
    """Task i's payload (str)."""
    b = 10 * i
    return '{"op":"sum","id":%d,"args":[%s]}' % (i, ",".join(str(b + k) for k in range(10)))


def expected(i):
    """Task i's result (str)."""
    return str(100 * i + 45)


def _bare():
    """The bare persistent-pipe child: reads every whole TASK frame that has
    arrived, answers each with a RESULT frame, writes the replies in one
    write before it reads again.  No checks beyond what the framing needs:
    this is the ceiling forq.serve is measured against."""
    read, write = os.read, os.write
    buf = b""
    pos = 0
    while True:
        chunk = read(0, 1 << 16)
        if not chunk:
            return
        buf = buf[pos:] + chunk if pos < len(buf) else chunk
        pos = 0
        out = []
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            w = buf[pos:nl].split(b" ")
            start = nl + 1
            end = start + int(w[3])
            if end >= len(buf):
                break
            r = handle(buf[start:end]).encode()
            out.append(b"RESULT %s %d\n%s\n" % (w[1], len(r), r))
            pos = end + 1
        if out:
            data = memoryview(b"".join(out))
            while data:
                data = data[write(1, data):]


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "exec"
    if mode == "exec":
        sys.stdout.write(handle(sys.stdin.buffer.read()))
    elif mode == "serve":
        import forq

        forq.serve(handle)
    elif mode == "bare":
        _bare()
    else:
        sys.stderr.write("usage: handlers_task.py [exec|serve|bare]\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
