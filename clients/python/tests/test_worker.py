"""forq.Worker against a real forqd with no local consumers (--workers 0)."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest import PKG_ROOT, local_nonloopback_ip, wait_for

import forq
from forq import worker as worker_mod


def handler(payload):
    if payload == b"fail":
        raise ValueError("bad input")
    if payload == b"fail-for-good":
        raise forq.Fail("no such thing")
    if payload == b"retry":
        raise forq.Retry("try later")
    if payload == b"none":
        return None
    if payload == b"text":
        return "caf\u00e9"
    return payload.upper()


def start(worker):
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    return t


def test_worker_completes_tasks(forqd_factory):
    f = forqd_factory(max_attempts=2, retry_backoff=10)
    c = forq.Client(f.tcp)
    n = 3000
    ids = c.push_many(["t%d" % i for i in range(n)])
    special = {name: c.push(name) for name in ("fail", "fail-for-good", "retry", "none", "text")}
    w = forq.Worker(f.tcp, handler, batch=64)
    t = start(w)
    res = f.wait_results(n + len(special))
    w.stop()
    t.join(10)
    assert not t.is_alive()
    assert len(res) == n + len(special)
    for i, tid in enumerate(ids):
        assert res[tid]["status"] == "done" and res[tid]["result"] == "T%d" % i
    assert res[special["fail"]]["status"] == "failed"
    assert res[special["fail"]]["error"] == "ValueError: bad input"
    assert res[special["fail-for-good"]]["error"] == "no such thing"
    assert res[special["retry"]]["status"] == "dead" and res[special["retry"]]["attempts"] == 2
    assert res[special["none"]]["status"] == "done" and res[special["none"]]["result"] == ""
    assert res[special["text"]]["result"] == "caf\u00e9"
    assert w.done == n + 2 and w.failed == 2 and w.retried == 2 and w.lost == 0
    st = c.stats()
    assert st["pending"] == 0 and st["in_progress"] == 0 and st["leases"] == 0


def test_worker_binary_payloads_and_line_results(forqd_factory):
    f = forqd_factory(max_payload=4096)
    seen = []

    def fn(p):
        seen.append(p)
        return p  # echo: the one-line RESULT form must make it fit

    c = forq.Client(f.tcp)
    payloads = [b"a\nb\r\nc", b"nul\x00inside", b"x" * 3000]
    ids = c.push_many(payloads)
    w = forq.Worker(f.tcp, fn, batch=8, max_tasks=3, results="line")
    assert w.run() == 3
    assert sorted(seen) == sorted(payloads)
    res = f.wait_results(3)
    assert res[ids[0]]["result"] == "a b  c"        # line ends become spaces
    assert res[ids[2]]["result"] == "x" * len(res[ids[2]]["result"])
    assert 900 < len(res[ids[2]]["result"]) < 1024  # cut to one protocol line


def test_touch_keeps_a_long_task(forqd_factory):
    f = forqd_factory(lease_timeout=1)

    def slow(p):
        time.sleep(2.5)
        return b"slept"

    c = forq.Client(f.tcp)
    tid = c.push("long")
    w = forq.Worker(f.tcp, slow, max_tasks=1)
    w.run()
    r = f.wait_results(1)[tid]
    assert r["status"] == "done" and r["result"] == "slept" and r["attempts"] == 1
    assert w.lost == 0


def test_without_touch_the_lease_expires(forqd_factory, monkeypatch):
    """The test of the test above: with the heartbeat off, forqd takes the
    task back after --lease-timeout and the late result is refused."""
    f = forqd_factory(lease_timeout=1)
    monkeypatch.setattr(worker_mod.Worker, "_touch_held", lambda self: True)
    c = forq.Client(f.tcp)
    c.push("long")
    w = forq.Worker(f.tcp, lambda p: time.sleep(2.5) or b"late", max_tasks=1)
    w.run()
    assert w.lost == 1


def test_reconnects_with_backoff(forqd_factory):
    f = forqd_factory(start=False)
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    tcp_port = port.getsockname()[1]
    port.close()
    w = forq.Worker("127.0.0.1:%d" % tcp_port, handler, wait_ms=200)
    t = start(w)
    time.sleep(0.5)  # refused a few times meanwhile
    f.start(tcp_port=tcp_port)
    ids = forq.Client(f.tcp).push_many(["a", "b"])
    assert len(f.wait_results(2)) == 2
    # forqd goes away and comes back (a new queue on the same port)
    f.stop(timeout=5)
    g = forqd_factory(start=False)
    g.start(tcp_port=tcp_port)
    forq.Client(g.tcp).push_many(["c", "d", "e"])
    assert len(g.wait_results(3)) == 3
    w.stop()
    t.join(10)
    assert not t.is_alive() and w.connects >= 2 and ids


WORKER_SCRIPT = r"""
import sys, time
import forq

def fn(p):
    time.sleep(0.2)
    sys.stderr.write("ran %s\n" % p.decode()); sys.stderr.flush()
    return p
n = forq.Worker(sys.argv[1], fn, batch=int(sys.argv[2])).run()
sys.stderr.write("exit after %d\n" % n)
"""


def run_worker_process(addr, batch):
    env = dict(os.environ, PYTHONPATH=str(PKG_ROOT))
    return subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, addr, str(batch)], env=env,
                            stderr=subprocess.PIPE, text=True)


def test_sigterm_finishes_what_it_holds(forqd_factory):
    f = forqd_factory()
    c = forq.Client(f.tcp)
    ids = c.push_many(["t%d" % i for i in range(40)])
    p = run_worker_process(f.tcp, 5)
    assert wait_for(lambda: len(f.results()) >= 1, 10)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=10)
    assert p.returncode == 0, err
    res = f.results()
    ran = [l for l in err.splitlines() if l.startswith("ran ")]
    assert len(res) == len(ran) and len(ran) % 5 == 0   # whole batches: all it held
    assert all(res[i]["status"] == "done" and res[i]["attempts"] == 1 for i in res)
    st = c.stats()
    assert st["in_progress"] == 0 and st["leases"] == 0
    assert st["pending"] == 40 - len(res)
    assert set(res) <= set(ids)


def test_second_sigterm_gives_back_the_rest(forqd_factory):
    f = forqd_factory()
    c = forq.Client(f.tcp)
    c.push_many(["t%d" % i for i in range(40)])
    p = run_worker_process(f.tcp, 20)
    assert wait_for(lambda: len(f.results()) >= 1, 10)
    p.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=10)
    assert p.returncode == 0, err
    res = f.results()
    assert 1 <= len(res) < 20   # stopped inside its batch of 20
    st = c.stats()
    assert st["in_progress"] == 0 and st["leases"] == 0
    # the leased tasks it did not start are back in the queue
    assert wait_for(lambda: c.stats()["pending"] + c.stats()["retry_waiting"] == 40 - len(res), 5)


def test_worker_auth(forqd_factory):
    ip = local_nonloopback_ip()
    if ip is None:
        pytest.skip("no non-loopback IPv4 address on this host")
    f = forqd_factory(host=ip, token="s3cret-token-value")
    forq.Client(f.tcp, token="s3cret-token-value").push_many(["a", "b", "c"])
    with pytest.raises(forq.AuthError):
        forq.Worker(f.tcp, handler).run()
    with pytest.raises(forq.AuthError):
        forq.Worker(f.tcp, handler, token="wrong-token").run()
    w = forq.Worker(f.tcp, handler, token="s3cret-token-value", max_tasks=3)
    assert w.run() == 3
    assert {r["result"] for r in f.wait_results(3).values()} == {"A", "B", "C"}


def test_worker_framed_results_through_forqd(forqd_factory):
    """The default Worker finds forqd's RESULTS batch form: results and
    reasons with line ends and NULs reach the results file intact, and one
    over 64 KiB is cut to it without upsetting what follows."""
    f = forqd_factory(max_payload=4096)
    big = b"y" * 70000

    def fn(p):
        if p == b"fail":
            raise forq.Fail("line one\nline two\x00end")
        if p == b"big":
            return big
        return p + b"\r\n\x00tail\n"

    c = forq.Client(f.tcp)
    payloads = [b"a\nb\r\nc", b"nul\x00inside", b"x" * 3000, b"fail", b"big", b"after"]
    ids = c.push_many(payloads)
    w = forq.Worker(f.tcp, fn, batch=4, max_tasks=len(payloads))
    assert w.run() == len(payloads)
    assert w.lost == 0
    res = f.wait_results(len(payloads))
    for tid, p in zip(ids, payloads):
        if p in (b"fail", b"big"):
            continue
        assert res[tid]["status"] == "done"
        assert res[tid]["result"].encode("latin-1") == p + b"\r\n\x00tail\n"
    assert res[ids[3]]["status"] == "failed"
    assert res[ids[3]]["error"] == "line one\nline two\x00end"
    assert res[ids[4]]["result"] == "y" * 65536
    st = c.stats()
    assert st["in_progress"] == 0 and st["leases"] == 0


def raw(f):
    s = socket.create_connection(("127.0.0.1", f.tcp_port), timeout=5)
    return s, s.makefile("rb")


def test_results_batch_wire_form(forqd_factory):
    """RESULTS 0 is the probe; a batch gets one reply that counts the items
    forqd did not hold; a malformed item closes the connection."""
    f = forqd_factory()
    c = forq.Client(f.tcp)
    ids = c.push_many([b"p1", b"p2"])
    s, r = raw(f)
    s.sendall(b"results 0\r\nGET_TASKS 2\r\n")
    assert r.readline() == b"RESULTS 0 0\r\n"
    assert r.readline() == b"TASKS 2\r\n"
    got = []
    for _ in range(2):
        tid = int(r.readline().split()[1])
        r.readline()
        got.append(tid)
    assert sorted(got) == sorted(ids)
    # Items split across writes, a bare LF, an id not leased, an empty value.
    batch = (b"RESULTS 3\r\nRESULT %d 5\r\nA\r\nB\x00\r\n" % got[0] +
             b"RESULT 999999 0\n\nRETRY %d 2\nhm\n" % got[1] + b"PING\r\n")
    for i in range(0, len(batch), 3):
        s.sendall(batch[i:i + 3])
        time.sleep(0.001)
    assert r.readline() == b"RESULTS 2 1\r\n"
    assert r.readline() == b"PONG\r\n"
    res = f.wait_results(1)
    assert res[got[0]]["result"] == "A\r\nB\x00"
    s.sendall(b"RESULTS 1\r\nRESULT 12 x\r\nPING\r\n")
    assert r.readline() == b"ERR bad-length\r\n"
    assert r.readline() == b""  # closed: the framing is lost
    s.close()
    s, r = raw(f)
    s.sendall(b"RESULTS 65537\r\n")
    assert r.readline() == b"ERR bad-count\r\n"
    assert r.readline() == b""
    s.close()


# ---- the batched RESULTS form against a fake server (the framing and the fallback) ----


class FakeForqd:
    """Speaks just enough of the protocol (as forqd does since RESULTS): STATS, RESULTS 0 (the
    probe), GET_TASKS (three tasks once, then none), RESULTS k batches, EXIT."""

    def __init__(self, framed=True):
        self.framed = framed
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.addr = "127.0.0.1:%d" % self.srv.getsockname()[1]
        self.frames = []
        self.lines = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.srv.accept()
        f = conn.makefile("rb")
        w = conn.makefile("wb", buffering=0)
        given = False
        while True:
            line = f.readline()
            if not line:
                break
            words = line.split()
            self.lines.append(line)
            if words[0] == b"STATS":
                w.write(b'{"pending":0,"lease_timeout_ms":30000}\r\n')
            elif words[0] == b"RESULTS":
                if not self.framed:
                    w.write(b"ERR unknown-command\r\n")
                    continue
                k = int(words[1])
                for _ in range(k):
                    st, tid, n = f.readline().split()
                    data = f.read(int(n))
                    assert f.read(2) == b"\r\n"
                    self.frames.append((st, int(tid), data))
                w.write(b"RESULTS %d 0\r\n" % k)
            elif words[0] in (b"RESULT", b"FAIL", b"RETRY"):
                w.write(b"OK\r\n")
            elif words[0] == b"GET_TASKS":
                if given:
                    w.write(b"TASKS 0\r\n")
                    continue
                given = True
                w.write(b"TASKS 3\r\nTASK 1 1 4\r\na\nb\x00\r\nTASK 2 1 4\r\nfail\r\nTASK 3 1 5\r\nretry\r\n")
            elif words[0] == b"EXIT":
                w.write(b"BYE\r\n")
                break
        conn.close()
        self.srv.close()


def test_framed_results_when_forqd_offers_them():
    fake = FakeForqd(framed=True)
    w = forq.Worker(fake.addr, lambda p: p + b"\n\x00!" if p != b"fail" and p != b"retry" else handler(p),
                    max_tasks=3)
    assert w.run() == 3
    fake.thread.join(5)
    assert fake.frames == [(b"RESULT", 1, b"a\nb\x00\n\x00!"), (b"FAIL", 2, b"ValueError: bad input"),
                           (b"RETRY", 3, b"try later")]


def test_line_results_when_forqd_does_not():
    fake = FakeForqd(framed=False)
    w = forq.Worker(fake.addr, handler, max_tasks=3)
    assert w.run() == 3
    fake.thread.join(5)
    assert fake.frames == []
    assert b"RESULT 1 A B\x00\r\n" in fake.lines and b"FAIL 2 ValueError: bad input\r\n" in fake.lines
    with pytest.raises(forq.ProtocolError):
        forq.Worker(FakeForqd(framed=False).addr, handler, results="framed").run()


def test_worker_serves_named_queues(forqd_factory, tmp_path):
    """Worker(queues=) takes from both queues (a result line names each
    task's queue); a queue forqd does not serve raises UnknownQueue."""
    conf = tmp_path / "queues.conf"
    conf.write_text("[queue default]\n\n[queue mail]\n\n[queue other]\n")
    f = forqd_factory(config=str(conf))
    c = forq.Client(f.tcp)
    mail = c.push_many(["m%d" % i for i in range(50)], queue="mail")
    other = c.push_many(["o%d" % i for i in range(50)], queue="other")
    plain = c.push("d")
    w = forq.Worker(f.tcp, handler, batch=8, queues="mail,other", max_tasks=100, wait_ms=200)
    assert w.run() == 100
    res = f.wait_results(100)
    for q, ids, p in (("mail", mail, "M"), ("other", other, "O")):
        for i, tid in enumerate(ids):
            assert res[tid]["queue"] == q and res[tid]["result"] == "%s%d" % (p, i)
    assert plain not in res and c.stats()["pending"] == 1  # default: not asked for
    with pytest.raises(forq.UnknownQueue):
        forq.Worker(f.tcp, handler, queues=["mail", "nope"], wait_ms=100).run()
    with pytest.raises(ValueError):
        forq.Worker(f.tcp, handler, queues=[])
    assert f.stop() == 0
