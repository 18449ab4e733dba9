"""forq.serve and the example proc: handlers, driven through pipes with the
framing of handlers/PROC.md (forqd's side of proc: is not built yet: these
tests play forqd)."""

import os
import select
import shutil
import subprocess
import sys
import time

import pytest
from conftest import PKG_ROOT, REPO

CHILD = r"""
import sys, forq

def fn(p):
    if p == b"boom":
        raise ValueError("boom")
    if p == b"fail":
        raise forq.Fail("exactly this")
    if p == b"retry":
        raise forq.Retry("later")
    if p == b"none":
        return None
    if p == b"str":
        return "caf\u00e9"
    if p == b"int":
        return 42
    if p == b"bytearray":
        return bytearray(b"ba")
    if p == b"print":
        print("noise on stdout")
        return b"printed"
    if p == b"stdin":
        return repr(sys.stdin.read())
    if p == b"exit":
        raise SystemExit(3)
    if p.startswith(b"wait:"):  # blocks until the file exists
        import os, time
        while not os.path.exists(p[5:]):
            time.sleep(0.005)
        return b"waited"
    if p.startswith(b"sleep:"):
        import time
        time.sleep(int(p[6:]) / 1000)
        return b"slept"
    if p.startswith(b"big:"):
        return b"r" * int(p[4:])
    return p[::-1]

forq.serve(fn)
"""


class Child:
    """A proc: child on pipes; this side plays forqd."""

    def __init__(self, argv, env=None):
        e = dict(os.environ, PYTHONPATH=str(PKG_ROOT))
        e.update(env or {})
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=e, bufsize=0)

    def send(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def _read(self, n, timeout):
        out = b""
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.p.stdout], [], [], max(0, left))
            if not r:
                raise TimeoutError("no reply within %ss (got %r)" % (timeout, out[:200]))
            chunk = os.read(self.p.stdout.fileno(), n - len(out))
            if not chunk:
                raise EOFError("child closed stdout after %r" % out[:200])
            out += chunk
        return out

    def _line(self, timeout):
        line = b""
        while not line.endswith(b"\n"):
            line += self._read(1, timeout)
        return line

    def reply(self, timeout=10):
        """One reply frame: (word, id, body)."""
        head = self._line(timeout)
        word, tid, n = head.split()
        body = self._read(int(n), timeout)
        assert self._read(1, timeout) == b"\n", "body not followed by a line end"
        return word.decode(), int(tid), body

    def replies(self, n, timeout=10):
        return [self.reply(timeout) for _ in range(n)]

    def close(self, timeout=10):
        self.p.stdin.close()
        rc = self.p.wait(timeout)
        rest = self.p.stdout.read()
        err = self.p.stderr.read().decode(errors="replace")
        return rc, rest, err


def frame(tid, payload, attempt=1, eol=b"\n"):
    return b"TASK %d %d %d%s%s%s" % (tid, attempt, len(payload), eol, payload, eol)


@pytest.fixture
def child():
    c = Child([sys.executable, "-c", CHILD])
    yield c
    if c.p.poll() is None:
        c.p.kill()
        c.p.wait()


def test_every_outcome(child):
    cases = [
        (b"abc", ("RESULT", b"cba")),
        (b"", ("RESULT", b"")),
        (b"boom", ("FAIL", b"ValueError: boom")),
        (b"fail", ("FAIL", b"exactly this")),
        (b"retry", ("RETRY", b"later")),
        (b"none", ("RESULT", b"")),
        (b"str", ("RESULT", "caf\u00e9".encode())),
        (b"int", ("FAIL", b"TypeError: handler returned int (expected bytes, str or None)")),
        (b"bytearray", ("RESULT", b"ba")),
    ]
    child.send(b"".join(frame(i + 1, p) for i, (p, _) in enumerate(cases)))
    got = child.replies(len(cases))
    assert got == [(w, i + 1, b) for i, (_, (w, b)) in enumerate(cases)]
    rc, rest, err = child.close()
    assert rc == 0 and rest == b"" and err == ""


def test_binary_safe_and_pipelined(child):
    payloads = [b"a\nb", b"\x00\x00", b"\r\n", b"TASK 1 1 3\n", b"\xff" * 7, b"\n"] * 100
    child.send(b"".join(frame(1000 + i, p) for i, p in enumerate(payloads)))  # one write
    got = child.replies(len(payloads))
    assert got == [("RESULT", 1000 + i, p[::-1]) for i, p in enumerate(payloads)]
    assert child.close()[0] == 0


def test_replies_before_waiting_for_more_input(child):
    for i in range(3):  # forqd may wait for a reply before it writes again
        child.send(frame(i, b"x%d" % i))
        assert child.reply(timeout=5) == ("RESULT", i, b"%d" % i + b"x")
    assert child.close()[0] == 0


def test_replies_are_not_held_behind_a_long_task(child, tmp_path):
    """Replies go out in one write per batch, but at the latest when a task
    ends 2 ms or more after the last write: a reply waits at most that plus
    one task's run time (PROC.md), never for the whole batch."""
    flag = tmp_path / "go"
    child.send(frame(1, b"fast") + frame(2, b"sleep:20") + frame(3, b"wait:" + str(flag).encode())
               + frame(4, b"x"))
    # while task 3 still runs:
    assert child.replies(2, timeout=5) == [("RESULT", 1, b"tsaf"), ("RESULT", 2, b"slept")]
    flag.touch()
    assert child.replies(2) == [("RESULT", 3, b"waited"), ("RESULT", 4, b"x")]
    assert child.close()[0] == 0


def test_frames_split_anywhere(child):
    data = frame(1, b"hello\nworld") + frame(2, b"") + frame(3, b"\x00", eol=b"\r\n")
    for k in range(len(data)):
        child.send(data[k : k + 1])
        time.sleep(0.001)
    assert child.replies(3) == [("RESULT", 1, b"dlrow\nolleh"), ("RESULT", 2, b""),
                                ("RESULT", 3, b"\x00")]
    assert child.close()[0] == 0


def test_large_payload_and_result(child):
    big = os.urandom(1 << 20)
    child.send(frame(1, big) + frame(2, b"big:%d" % (3 << 20)))
    assert child.reply(timeout=30) == ("RESULT", 1, big[::-1])
    assert child.reply(timeout=30) == ("RESULT", 2, b"r" * (3 << 20))
    assert child.close()[0] == 0


def test_stdout_and_stdin_belong_to_the_framing(child):
    child.send(frame(1, b"print") + frame(2, b"stdin") + frame(3, b"ok"))
    assert child.replies(3) == [("RESULT", 1, b"printed"), ("RESULT", 2, b"''"), ("RESULT", 3, b"ko")]
    rc, rest, err = child.close()
    assert rc == 0 and rest == b"" and "noise on stdout" in err


def test_end_of_input(child):
    child.send(frame(1, b"a") + b"TASK 2 1 10\nabc")  # the second frame never completes
    assert child.reply() == ("RESULT", 1, b"a")
    rc, rest, err = child.close()
    assert rc == 0 and rest == b"" and "input ended inside a frame" in err


@pytest.mark.parametrize("bad", [b"HELLO\n", b"TASK 1 1\nx\n", b"TASK x 1 1\nx\n",
                                 b"TASK 1 1 1\nxy\n", b"A" * 300])
def test_bad_frames_end_the_child(child, bad):
    child.send(frame(1, b"ok") + bad)
    assert child.reply() == ("RESULT", 1, b"ko")
    rc, rest, err = child.close()
    assert rc == 1 and rest == b"" and "forq.serve:" in err


def test_a_systemexit_in_fn_ends_the_child(child):
    child.send(frame(1, b"a") + frame(2, b"exit") + frame(3, b"b"))
    rc, rest, err = child.close()
    assert rc == 3  # forqd sees a crash (task 2 is the one in hand)


def test_unknown_framing_version():
    c = Child([sys.executable, "-c", CHILD], env={"FORQ_PROC": "2"})
    rc, rest, err = c.close()
    assert rc == 2 and "framing" in err


# ---- the examples in examples/ follow the same framing ----

EXAMPLES = REPO / "examples"


def example(name):
    if name == "proc_sum.js":
        node = shutil.which("node") or shutil.which("nodejs")
        if not node:
            pytest.skip("no node")
        return [node, str(EXAMPLES / name)]
    if name == "proc_sum.py":
        return [sys.executable, str(EXAMPLES / name)]
    raise ValueError(name)


@pytest.mark.parametrize("name", ["proc_sum.py", "proc_sum.js"])
def test_sum_examples(name):
    c = Child(example(name))
    tasks = [b'{"op":"sum","args":[1,2,3,4,5,6,7,8,9,10]}', b'{"op":"sum","args":[0.5,1]}',
             b"not json", b'{"op":"sum","args":[]}']
    c.send(b"".join(frame(i + 1, t) for i, t in enumerate(tasks)))
    got = c.replies(len(tasks))
    assert got[0] == ("RESULT", 1, b"55") and got[1] == ("RESULT", 2, b"1.5")
    assert got[2][:2] == ("FAIL", 3)
    assert got[2][2].startswith(b"JSONDecodeError: ") or got[2][2].startswith(b"SyntaxError: ")
    assert got[3][0] == "FAIL" and b"args must be a non-empty array" in got[3][2]
    many = [b'{"args":[%d,1]}' % i for i in range(2000)]
    c.send(b"".join(frame(10 + i, t) for i, t in enumerate(many)))
    assert c.replies(len(many)) == [("RESULT", 10 + i, b"%d" % (i + 1)) for i in range(2000)]
    rc, rest, _ = c.close()
    assert rc == 0 and rest == b""


def test_shell_example():
    c = Child(["sh", str(EXAMPLES / "proc_filter.sh"), "tr", "a-z", "A-Z"])
    c.send(frame(1, b"hello\x00\nworld") + frame(2, b"") + frame(3, b"\xff\r\n"))
    assert c.replies(3) == [("RESULT", 1, b"HELLO\x00\nWORLD"), ("RESULT", 2, b""),
                            ("RESULT", 3, b"\xff\r\n")]
    assert c.close()[0] == 0
    c = Child(["sh", str(EXAMPLES / "proc_filter.sh"), "sh", "-c", "cat >/dev/null; echo why >&2; exit 3"])
    c.send(frame(7, b"x") + frame(8, b"y"))
    assert c.replies(2) == [("FAIL", 7, b"why"), ("FAIL", 8, b"why")]
    rc, _, err = c.close()
    assert rc == 0 and "why" in err
