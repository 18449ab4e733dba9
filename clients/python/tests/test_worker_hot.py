"""forq.Worker's hot path: task_batch's two parses, the ticker's flushes,
the kernel's socket timeout (against fakes and a real forqd)."""

import socket
import threading
import time

import pytest
from conftest import wait_for

import forq


def handler(payload):
    return payload.upper()


def start(worker):
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    return t


def fed_conn(*chunks):
    """A Conn with no socket: its reads take the chunks in turn."""
    from forq import _wire

    conn = _wire.Conn.__new__(_wire.Conn)
    conn.addr, conn.timeout, conn.buf, conn.pos = _wire.parse_addr("127.0.0.1:1"), 1.0, bytearray(), 0
    rest = list(chunks)

    def more():
        if not rest:
            raise forq.ConnectionFailed("no more")
        conn.buf += rest.pop(0)

    conn._more = more
    return conn


def test_task_batch_fast_path(monkeypatch):
    from forq import _wire

    conn = fed_conn(b"TASKS 3\r\nTASK 7 1 3\r\nabc\r\nTASK 8 2 0\r\n\r\nTASK 9 1 4\r\na\nb\x00\r\nPONG\r\n")
    monkeypatch.setattr(_wire.Conn, "_task_batch", lambda self, k: pytest.fail("exact parse used"))
    assert conn.task_batch() == [(b"7", b"abc"), (b"8", b""), (b"9", b"a\nb\x00")]
    assert conn.line() == b"PONG"


@pytest.mark.parametrize("chunks", [
    # a payload that holds "\r\n": the split cuts it short, the exact parse reads it
    [b"TASKS 3\r\nTASK 7 1 3\r\nabc\r\nTASK 8 1 6\r\nx\r\ny\r\n\r\nTASK 9 1 2\r\n\r\n\r\nPONG\r\n"],
    # bare LF line ends
    [b"TASKS 3\nTASK 7 1 3\nabc\nTASK 8 1 6\nx\r\ny\r\n\nTASK 9 1 2\n\r\n\nPONG\n"],
    # the batch in pieces, cut inside a header, a payload and a line end
    [b"TASKS 3\r\nTASK 7 1 3\r\nab", b"c\r\nTASK 8 1 6\r\nx\r\ny\r\n\r", b"\nTAS",
     b"K 9 1 2\r\n\r\n\r\nPONG\r\n"],
])
def test_task_batch_exact_parse(chunks):
    conn = fed_conn(*chunks)
    assert conn.task_batch() == [(b"7", b"abc"), (b"8", b"x\r\ny\r\n"), (b"9", b"\r\n")]
    assert conn.line() == b"PONG"


def test_task_batch_refuses_a_bad_block():
    with pytest.raises(forq.ProtocolError):
        fed_conn(b"TASKS 2\r\nTASK 7 1 3\r\nabc\r\nNOTASK 8 1 1\r\nx\r\n").task_batch()
    with pytest.raises(forq.ProtocolError):  # a length that does not end at a line end
        fed_conn(b"TASKS 1\r\nTASK 7 1 2\r\nabc\r\n").task_batch()


def test_results_of_a_slow_batch_go_out_while_it_runs(forqd_factory):
    """The ticker pokes the hot loop: results go out every FLUSH_EVERY, not
    when the whole batch has run."""
    f = forqd_factory()
    c = forq.Client(f.tcp)
    ids = c.push_many(["t%d" % i for i in range(8)])
    w = forq.Worker(f.tcp, lambda p: time.sleep(0.25) or p, batch=8, max_tasks=8)
    t = start(w)
    t0 = time.monotonic()
    assert wait_for(lambda: len(f.results()) >= 1, 10)
    assert time.monotonic() - t0 < 8 * 0.25 - 0.5  # well before the batch's end
    t.join(10)
    assert not t.is_alive() and w.done == 8
    assert set(f.wait_results(8)) == set(ids)


def test_a_silent_forqd_times_out():
    """The hot path's socket blocks with the kernel's timeout (SO_RCVTIMEO):
    a forqd that answers the hello and then nothing is a lost one."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    held = []

    def serve():
        conn, _ = srv.accept()
        held.append(conn)
        f = conn.makefile("rb")
        f.readline(), f.readline()  # STATS, RESULTS 0
        conn.sendall(b'{"lease_timeout_ms":30000}\r\nRESULTS 0 0\r\n')
        f.readline()  # GET_TASKS: never answered

    threading.Thread(target=serve, daemon=True).start()
    w = forq.Worker("127.0.0.1:%d" % srv.getsockname()[1], handler, reconnect=False, timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(forq.ConnectionFailed, match="no reply .* within 0.5s"):
        w.run()
    assert 0.4 < time.monotonic() - t0 < 5
    for c in held:
        c.close()
    srv.close()
