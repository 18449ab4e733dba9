"""forq.Client against a real forqd: TCP and HTTP, and every error class."""

import socket
import threading

import pytest
from conftest import local_nonloopback_ip, wait_for

import forq
from forq import _wire


def raw_lease(addr, n):
    """Leases up to n tasks on a plain connection (a batch comes from one
    lane: asks again until n or none); returns [(id, payload)] and the
    connection (closing it gives them back)."""
    conn = _wire.Conn(_wire.parse_addr(addr), 5)
    out = []
    while len(out) < n:
        conn.send(b"GET_TASKS %d\r\n" % (n - len(out)))
        got = conn.tasks()
        if not got:
            break
        out += [(t[0], t[2]) for t in got]
    return out, conn


@pytest.mark.parametrize("scheme", ["tcp", "http"])
def test_push_stats_get(forqd, scheme):
    addr = forqd.tcp if scheme == "tcp" else forqd.http
    with forq.Client(addr, http=forqd.http) as c:
        assert c.ping()
        a = c.push(b"1+2")
        b = c.push("caf\u00e9", priority="high")
        d = c.push({"op": "sum", "args": [1, 2]}, priority="low")
        assert a < b < d
        st = c.stats()
        assert st["pending"] == 3
        assert (st["pending_high"], st["pending_normal"], st["pending_low"]) == (1, 1, 1)
        assert st["enqueued"] == 3 and st["accepting"] is True
        g = c.get(a)
        assert g["id"] == a and g["status"] == "pending" and g["result"] is None
        with pytest.raises(forq.NotFound):
            c.get(d + 1000)
    tasks, conn = raw_lease(forqd.tcp, 3)
    conn.close()
    assert sorted(p for _, p in tasks) == sorted([b"1+2", "caf\u00e9".encode(), b'{"op":"sum","args":[1,2]}'])


@pytest.mark.parametrize("scheme", ["tcp", "http"])
def test_push_delay_and_key(forqd, scheme):
    """A delayed task is scheduled; a key a live task holds returns it."""
    addr = forqd.tcp if scheme == "tcp" else forqd.http
    with forq.Client(addr, http=forqd.http) as c:
        a = c.push(b"6*7", delay=60)
        assert c.get(a)["status"] == "scheduled"
        assert c.stats()["scheduled"] == 1
        k = c.push(b"1+1", key="user:42", key_window=600)
        assert c.push(b"1+1", key="user:42") == k
        assert c.push(b"1+1", key="user:43") != k
        assert c.stats()["enqueued"] == 3
        with pytest.raises(ValueError):
            c.push(b"x", key="has blank")
        with pytest.raises(ValueError):
            c.push(b"x", key_window=5)


@pytest.mark.parametrize("scheme", ["tcp", "http"])
def test_push_many_pipelined(forqd_factory, scheme):
    f = forqd_factory(capacity=32768)
    addr = f.tcp if scheme == "tcp" else f.http
    n = 20000
    with forq.Client(addr) as c:
        ids = c.push_many(["%d+1" % i for i in range(n)])
        assert len(ids) == n and ids == sorted(ids) and len(set(ids)) == n
        assert c.stats()["pending"] == n
        more = c.push_many([b"x"] * 3, priority="high")
        assert more[0] > ids[-1]
        assert c.stats()["pending_high"] == 3


def test_binary_payload_over_tcp(forqd):
    payload = b"line one\nline two\r\n\x00\xff\x00 end"
    with forq.Client(forqd.tcp) as c:
        tid = c.push(payload)
    tasks, conn = raw_lease(forqd.tcp, 1)
    conn.close()
    assert tasks == [(tid, payload)]


def test_http_refuses_what_it_cannot_carry(forqd):
    with forq.Client(forqd.http) as c:
        with pytest.raises(ValueError, match="UTF-8"):
            c.push(b"\xff\xfe")
        with pytest.raises(ValueError, match="NUL"):
            c.push(b"a\x00b")


def test_get_done_result_over_tcp_and_http(forqd_factory):
    f = forqd_factory(workers=1, handler="arith")
    with forq.Client(f.tcp, http=f.http) as c:
        ok = c.push("6*7")
        bad = c.push("1/0")
        assert wait_for(lambda: c.get(bad)["status"] in ("failed", "dead"))
        assert wait_for(lambda: c.get(ok)["status"] == "done")
        assert c.get(ok)["result"] == "42" and c.get(ok)["error"] is None
        g = c.get(bad)
        assert g["status"] == "failed" and "division by zero" in g["error"]
    with forq.Client(f.http) as h:
        assert h.get(ok)["result"] == "42"


@pytest.mark.parametrize("scheme", ["tcp", "http"])
def test_queue_full(forqd_factory, scheme):
    f = forqd_factory(capacity=4)
    addr = f.tcp if scheme == "tcp" else f.http
    with forq.Client(addr) as c:
        taken = []
        with pytest.raises(forq.QueueFull) as ei:
            for i in range(1000):
                taken.append(c.push("t%d" % i))
        cap = len(taken)
        assert 1 <= cap < 1000
        assert ei.value.code in ("queue-full", 503)
        # other lanes still take tasks
        c.push("h", priority="high")
        # push_many says which were taken
        with pytest.raises(forq.QueueFull) as ei:
            c.push_many(["l%d" % i for i in range(cap + 3)], priority="low")
        ids = ei.value.ids
        assert len(ids) == cap + 3
        if scheme == "tcp":
            assert sum(i is not None for i in ids) == cap and ids[-1] is None
        # the connection is still usable
        assert c.stats()["pending"] >= cap + 1


def test_push_waits_for_room_with_timeout(forqd_factory):
    f = forqd_factory(capacity=2)
    with forq.Client(f.tcp) as c:
        with pytest.raises(forq.QueueFull):
            for i in range(100):
                c.push("x")

        def drain_soon():
            tasks, conn = raw_lease(f.tcp, 64)
            conn.send(b"".join(b"RESULT %d ok\r\n" % t for t, _ in tasks))
            conn.simple(len(tasks))
            conn.close()

        t = threading.Timer(0.3, drain_soon)
        t.start()
        ids = c.push_many(["y", "z"], timeout=10)
        t.join()
        assert all(isinstance(i, int) for i in ids)


def test_payload_too_large_keeps_connection(forqd_factory):
    f = forqd_factory(max_payload=16)
    with forq.Client(f.tcp) as c:
        with pytest.raises(forq.PayloadTooLarge):
            c.push(b"x" * 100)
        assert isinstance(c.push(b"small"), int)
        with pytest.raises(forq.PayloadTooLarge) as ei:
            c.push_many([b"a", b"y" * 100, b"b"])
        assert ei.value.ids[0] is not None and ei.value.ids[1] is None and ei.value.ids[2] is not None
    with forq.Client(f.http) as h:
        with pytest.raises(forq.PayloadTooLarge):
            h.push("z" * 100)


@pytest.mark.parametrize("scheme", ["tcp", "http"])
def test_draining(forqd_factory, scheme):
    f = forqd_factory(drain_timeout=30)
    addr = f.tcp if scheme == "tcp" else f.http
    with forq.Client(addr) as c:
        c.push("stays pending, so forqd drains until the timeout")
        f.signal()
        assert wait_for(lambda: c.stats()["accepting"] is False, 5)
        with pytest.raises(forq.Draining):
            c.push("late")
        with pytest.raises(forq.Draining) as ei:
            c.push_many(["a", "b"])
        assert ei.value.ids == [None, None]


def test_auth_on_loopback(forqd_factory):
    f = forqd_factory(token="s3cret-token-value")
    with forq.Client(f.tcp) as c:  # loopback peers need no AUTH
        assert isinstance(c.push("a"), int)
    with forq.Client(f.tcp, token="s3cret-token-value") as c:
        assert isinstance(c.push("b"), int)
    with forq.Client(f.tcp, token="wrong-token") as c:
        with pytest.raises(forq.AuthError):
            c.push("c")


def test_auth_beyond_loopback(forqd_factory):
    ip = local_nonloopback_ip()
    if ip is None:
        pytest.skip("no non-loopback IPv4 address on this host")
    f = forqd_factory(host=ip, token="s3cret-token-value")
    with forq.Client(f.tcp) as c:
        with pytest.raises(forq.AuthError):
            c.push("no token")
    with forq.Client(f.tcp, token="wrong-token") as c:
        with pytest.raises(forq.AuthError):
            c.stats()
    with forq.Client(f.tcp, token="s3cret-token-value") as c:
        tid = c.push("with token")
        assert c.stats()["pending"] == 1
        assert isinstance(tid, int)


def test_connection_failed():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(forq.ConnectionFailed):
            forq.Client("127.0.0.1:%d" % port).push("x")
        with pytest.raises(forq.ConnectionFailed):
            forq.Client("http://127.0.0.1:%d" % port).push("x")


def test_reconnects_after_forqd_restart(forqd_factory):
    f = forqd_factory()
    port = f.tcp_port
    c = forq.Client(f.tcp)
    c.push("a")
    f.stop()
    g = forqd_factory(start=False)
    g.start(tcp_port=port)
    assert c.stats()["pending"] == 0  # a new queue, through a new connection
    assert isinstance(c.push("b"), int)
    c.close()


def fake_server(reply):
    """A listener that answers anything with the bytes `reply`."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        conn, _ = srv.accept()
        conn.recv(4096)
        conn.sendall(reply)
        conn.close()
        srv.close()

    threading.Thread(target=serve, daemon=True).start()
    return "127.0.0.1:%d" % srv.getsockname()[1]


def test_protocol_error_on_garbage():
    with pytest.raises(forq.ProtocolError):
        forq.Client(fake_server(b"HELLO THERE\r\n")).push("x")
    with pytest.raises(forq.ProtocolError) as ei:
        forq.Client(fake_server(b"ERR bad-args\r\n")).push("x")
    assert ei.value.code == "bad-args"
    with pytest.raises(forq.ProtocolError):
        forq.Client(fake_server(b"{not json\r\n")).stats()


def test_errors_are_forq_errors():
    for cls in (forq.QueueFull, forq.Draining, forq.AuthError, forq.ProtocolError,
                forq.PayloadTooLarge, forq.NotFound, forq.ConnectionFailed, forq.ServerError):
        assert issubclass(cls, forq.ForqError)
    assert not issubclass(forq.Retry, forq.ForqError)


def test_bad_arguments():
    with pytest.raises(ValueError):
        forq.Client("ftp://x:1")
    with pytest.raises(ValueError):
        forq.Client("127.0.0.1:7070").push("x", priority="urgent")


def test_http_keepalive_closed_by_forqd_is_reopened(forqd):
    with forq.Client(forqd.http) as c:
        a = c.push("a")
        c._http.sock.shutdown(socket.SHUT_RDWR)  # as forqd's idle timeout would close it
        b = c.push("b")
        assert b == a + 1 and c.stats()["pending"] == 2


def named_queues_forqd(forqd_factory, tmp_path):
    """A forqd serving the queues default and mail (no local consumers)."""
    conf = tmp_path / "queues.conf"
    conf.write_text("[queue default]\n\n[queue mail]\n")
    return forqd_factory(config=str(conf))


@pytest.mark.parametrize("scheme", ["tcp", "http"])
def test_push_to_named_queue(forqd_factory, tmp_path, scheme):
    """push/push_many(queue=) reach that queue, ids unique across queues; an
    unknown queue raises UnknownQueue and pushes nothing."""
    f = named_queues_forqd(forqd_factory, tmp_path)
    addr = f.tcp if scheme == "tcp" else f.http
    with forq.Client(addr, http=f.http) as c:
        a = c.push(b"1+1")
        m = c.push(b"2+2", queue="mail")
        ms = c.push_many([b"3+3", b"4+4"], queue="mail", delay=0)
        assert a < 10**12 <= m and ms == [m + 1, m + 2]
        with pytest.raises(forq.UnknownQueue):
            c.push(b"x", queue="nope")
        with pytest.raises(forq.UnknownQueue):
            c.push_many([b"x", b"y"], queue="nope")
        with pytest.raises(ValueError):
            c.push(b"x", queue="a b")
    with forq.Client(f.tcp) as c:
        assert c.stats("mail")["pending"] == 3 and c.stats("mail")["enqueued"] == 3
        assert c.stats()["pending"] == 1 and c.stats("default")["enqueued"] == 1
        with pytest.raises(forq.UnknownQueue):
            c.stats("nope")
        assert c.ping()  # the connection goes on after ERR unknown-queue
    assert f.stop() == 0
