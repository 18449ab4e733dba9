"""lease_table.py PORT: fills forqd's TCP lease table (1,024 entries) from
one connection with GET_TASKS, never finishing a task, while more tasks
pend; then checks what a second connection gets: GET_TASK without WAIT is
NONE at once, a GET_TASK WAIT parks, and one RESULT on the first connection
frees an entry that serves the parked request with a task. Prints one line
per check, "ok ..." or "FAIL ...", for test_remote_workers.sh part
lease_table_full; exits 1 if a check failed."""
import select
import socket
import sys
import time

LEASE_MAX = 1024  # core's default lease_max (core/shm.c), which forqd keeps


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, line):
        self.s.sendall(line.encode() + b"\r\n")

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("forqd closed the connection")
            self.buf += d
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln.decode()

    def exactly(self, n):
        while len(self.buf) < n + 2:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("forqd closed the connection")
            self.buf += d
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def task(self, head):
        """The id of the TASK block whose first line is head."""
        w = head.split()
        if w[0] != "TASK":
            raise ValueError(f"expected TASK, got {head!r}")
        self.exactly(int(w[3]))
        return int(w[1])

    def quiet(self, secs):
        """Nothing arrives for secs seconds."""
        if self.buf:
            return False
        return not select.select([self.s], [], [], secs)[0]


def main():
    port = int(sys.argv[1])
    failed = 0

    def check(what, ok):
        nonlocal failed
        print(("ok   " if ok else "FAIL ") + what)
        failed += not ok

    a = Conn(port)
    ids = []
    for _ in range(4 * LEASE_MAX):  # GET_TASKS hands out at most batch_max
        a.send("GET_TASKS 64")
        w = a.line().split()
        if w[0] != "TASKS" or int(w[1]) == 0:
            break
        ids += [a.task(a.line()) for _ in range(int(w[1]))]
    check(f"one connection leases {LEASE_MAX} tasks, then TASKS 0 (leased {len(ids)})",
          len(ids) == LEASE_MAX)

    b = Conn(port)
    b.send("GET_TASK")
    got = b.line()
    check(f"with the table full, GET_TASK without WAIT is NONE at once (got {got!r})",
          got == "NONE")
    b.send("GET_TASK WAIT 20000")
    check("a GET_TASK WAIT parks while the table is full", b.quiet(0.5))
    t0 = time.monotonic()
    a.send(f"RESULT {ids[0]} done")
    got = a.line()
    check(f"RESULT for a leased task is OK (got {got!r})", got == "OK")
    try:
        head = b.line()
        tid = b.task(head)
        ms = (time.monotonic() - t0) * 1000
        check(f"the freed entry serves the parked GET_TASK WAIT with task {tid} "
              f"in {ms:.0f} ms (under 5 s)", tid not in ids and ms < 5000)
    except (OSError, ValueError, EOFError) as e:
        check(f"the freed entry serves the parked GET_TASK WAIT ({e})", False)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
