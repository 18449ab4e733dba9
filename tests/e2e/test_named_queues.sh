#!/usr/bin/env bash
# test_named_queues.sh — one forqd serving several named queues from a config
# file (forqd --config): each queue its own shared-memory object, handler,
# consumers and sizes; every result line names its queue; one queue's poison
# task (a handler that kills its consumer), fullness or pause leaves the
# others' tasks and results untouched; the forq tool (--queue, pause NAME)
# and HTTP (/queues/{name}/tasks) reach each queue by name; a bad config is
# refused at start with the file and the line; with eight queues, /metrics
# has every per-queue family for each (queue label, promtool clean), /stats
# each under "queues", and a scrape stays cheap.
# Over TCP every queue is served too: PUT and GET_TASK(S) with queue=, forq
# worker --queue and forq.Worker(queues=) on two queues, ids unique across
# queues, STATS/PAUSE/RESUME/CANCEL by name, ERR unknown-queue.
# Parts (for ONLY=, see lib.sh): queues, controls, journal, bad_config,
# eight_queues_metrics, tcp.
. "$(dirname "$0")/lib.sh"

need_binaries "$FORQD" "$FORQ"
unset FORQ_ADMIN_TOKEN FORQ_WORKER_TOKEN

H() { echo "http://127.0.0.1:$HTTP_PORT"; }
# post PATH BODY: "CODE BODY" of a POST.
post() {
	curl -s -o "$TMP/body" -w '%{http_code}' -X POST --data-binary "$2" "$(H)$1"
	printf ' %s' "$(cat "$TMP/body")"
}
# qstat QUEUE KEY: one figure of `forq stats --queue QUEUE --json`.
qstat() {
	"$FORQ" stats --json --shm-name "$FORQD_SHM" --queue "$1" |
		python3 -c "import json,sys; print(json.load(sys.stdin)$2)"
}
# count QUEUE STATUS: result lines of that queue with that status.
count() { grep "\"queue\":\"$1\"" "$R" | grep -c "\"status\":\"$2\"" || true; }
# done_in QUEUE STATUS N: at least N result lines of that queue and status.
done_in() { [ "$(count "$1" "$2")" -ge "$3" ]; }

queues() {
	R=$TMP/q.jsonl
	seq 1 500 | sed 's/.*/&+1/' >"$TMP/arith.txt"
	for i in $(seq 1 300); do echo "{\"op\":\"sum\",\"args\":[$i,2]}"; done >"$TMP/json.txt"
	printf 'a\nb\nc\n' >"$TMP/poison.txt"
	cat >"$TMP/forqd.conf" <<CONF
# four queues: three handlers, and one with no consumers
results = $R
restart-backoff = 10

[queue default]
handler = arith
workers = 1
tasks = $TMP/arith.txt

[queue jsonq]
handler = json
workers = 2
tasks = $TMP/json.txt

[queue poison]
handler = exec:kill -KILL \$PPID
workers = 1
max-attempts = 2
tasks = $TMP/poison.txt

[queue tiny]
workers = 0
capacity = 4
CONF
	start_forqd queues --config "$TMP/forqd.conf" --drain-timeout 2 || { bad "forqd starts with four queues"; return; }
	local shm=$FORQD_SHM q
	for q in "" .jsonq .poison .tiny; do
		check "queue object $shm$q exists, 0600" \
			[ "$(stat -c %a "/dev/shm${shm}$q" 2>/dev/null)" = 600 ]
	done
	check "the log says each queue started" \
		bash -c "[ \$(grep -c 'event=started .*queue=' '$FORQD_LOG') = 4 ]"

	# Fullness of one queue: tiny takes 4, refuses the 5th; the others accept.
	for i in 1 2 3 4; do post /queues/tiny/tasks "{\"payload\":\"$i+1\"}" >/dev/null; done
	check "tiny full: its 5th push is 503 queue full" \
		bash -c "[[ '$(post /queues/tiny/tasks '{"payload":"5+1"}')' == '503 '*'queue full'* ]]"
	check "... while default takes a push (202)" \
		bash -c "[[ '$(post /tasks '{"payload":"1000+1"}')' == '202 '* ]]"
	check "... and jsonq takes one through /queues/jsonq/tasks (202)" \
		bash -c "[[ '$(post /queues/jsonq/tasks '{"payload":"{\"op\":\"sum\",\"args\":[1000,2]}"}')' == '202 '* ]]"
	check "an unknown queue: 404 with the reason" \
		bash -c "[[ '$(post /queues/nope/tasks '{"payload":"1"}')' == '404 {\"error\":\"unknown queue \\\"nope\\\"'* ]]"

	# forq push --queue and GET /queues/{name}/tasks/{id}.
	local id
	id=$("$FORQ" push --shm-name "$shm" --queue jsonq '{"op":"sum","args":[40,2]}')
	check "forq push --queue jsonq gives an id ($id)" [ -n "$id" ]
	check "GET /queues/jsonq/tasks/$id: done with 42" wait_for 10 \
		bash -c "curl -fsS '$(H)/queues/jsonq/tasks/$id' | grep -q '\"status\":\"done\".*\"result\":\"42\"'"
	"$FORQ" push --shm-name "$shm" --queue nope 1+1 2>"$TMP/err"
	local rc=$?
	check "forq push --queue nope: exit 2, unknown queue ($rc)" \
		bash -c "[ $rc = 2 ] && grep -q 'unknown queue \"nope\"' '$TMP/err'"

	check "every task of the files has its result" wait_for 60 \
		bash -c "$(declare -f count done_in); R='$R'
			 done_in default done 501 && done_in jsonq done 302 && done_in poison dead 3"
	check "poison: its 3 tasks dead after 2 crashes each, nothing else in it" \
		bash -c "[ $(count poison dead) = 3 ] && [ \$(grep -c '\"queue\":\"poison\"' '$R') = 3 ]"
	check "poison's crashes are its own (6), none in default or jsonq" \
		bash -c "[ $(qstat poison "['crashes']") = 6 ] && [ $(qstat default "['crashes']") = 0 ] &&
			 [ $(qstat jsonq "['crashes']") = 0 ]"
	python3 - "$R" >"$TMP/verify.txt" <<'PY'
import json, sys
bad, per = 0, {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    q = r["queue"]
    per[q] = per.get(q, 0) + 1
    src = r.get("source", "")
    want = {"arith.txt": "default", "json.txt": "jsonq", "poison.txt": "poison"}
    for f, wq in want.items():
        if src.rsplit("/", 1)[-1].startswith(f + ":") and q != wq:
            bad += 1
    if q == "default" and r["status"] == "done":
        a, b = r["task"].split("+")
        bad += r["result"] != str(int(a) + int(b))
    if q == "jsonq" and r["status"] == "done":
        args = json.loads(r["task"])["args"]
        bad += r["result"] != str(sum(args))
print("bad=%d default=%d jsonq=%d poison=%d" % (bad, per.get("default", 0), per.get("jsonq", 0),
                                                per.get("poison", 0)))
PY
	check "every line names its queue, values right ($(cat "$TMP/verify.txt"))" \
		grep -q '^bad=0 default=501 jsonq=302 poison=3$' "$TMP/verify.txt"

	# Pause one queue: its pushes wait, the others run.
	check "forq pause jsonq: exit 0" "$FORQ" pause jsonq --shm-name "$shm"
	check "forqd logs queue_paused queue=jsonq" wait_for 5 \
		grep -q 'event=queue_paused queue=jsonq' "$FORQD_LOG"
	"$FORQ" push --shm-name "$shm" --queue jsonq '{"op":"sum","args":[7,7]}' >/dev/null
	"$FORQ" push --shm-name "$shm" 7+7 >/dev/null
	check "default runs its task while jsonq is paused" wait_for 10 \
		grep -q '"task":"7+7".*"queue":"default"' "$R"
	sleep 0.5
	check "... jsonq's waits: pending 1, no result" \
		bash -c "[ $(qstat jsonq "['pending_total']") = 1 ] && ! grep -q '\"args\":\[7,7\]' '$R'"
	check "forq resume jsonq: its task runs" bash -c "'$FORQ' resume jsonq --shm-name '$shm' >/dev/null"
	check "... and is done" wait_for 10 grep -q '"result":"14".*"queue":"jsonq"' "$R"

	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	check "tiny's 4 tasks reported unfinished, in queue tiny" \
		bash -c "[ $(count tiny unfinished) = 4 ]"
	check "no queue object left behind" \
		bash -c "! ls /dev/shm | grep -q '^${shm#/}'"
}

bad_config() {
	local conf=$TMP/bad.conf out=$TMP/bad.out
	# refused CONFIG-TEXT WANT: forqd --config exits 2 and says WANT.
	refused() {
		printf '%b' "$1" >"$conf"
		new_shm Q
		timeout 20 "$FORQD" --config "$conf" --shm-name "$Q" --http off --tcp off >"$out" 2>&1
		local rc=$?
		printf '%s' "$2" >"$TMP/want"
		check "refused with exit 2 ($rc): $2" bash -c "[ $rc = 2 ] && grep -qFf '$TMP/want' '$out'"
		check "... and made no queue" bash -c "! ls /dev/shm | grep -q '^${Q#/}'"
	}
	refused 'workers = 1\n[queue a]\nhandler = arith\n\n[queue a]\n' "$conf:5: queue \"a\" is declared twice (first at line 2)"
	refused '[queue a]\nflavour = vanilla\n' "$conf:2: \"flavour\" is not a queue's key: unknown key"
	refused '[queue a]\nhandler = arith\n[queue b]\nhandler = nosuch\n' "$conf:4: queue \"b\": handler:"
	refused 'workers = 1\nhandler = nosuch\n' "$conf:2: queue \"default\": handler:"
	refused 'handler = nosuch\n[queue a]\nworkers = 1\n' "$conf:1: queue \"a\": handler:"
	refused '[queue a]\ncapacity = 0\n' "$conf:2: --capacity"
	refused 'http\n' "$conf:1: expected \`key = value\`"
	refused '[queue q182]\n[queue q258]\n' "$conf:2: queue \"q258\" would share its task ids with queue \"q182\" (line 1), their names hash alike: rename one"
}

# report_lines FILE: a script's "ok - WHAT" and "FAIL - WHAT" lines as
# checks; its other lines shown indented.
report_lines() {
	local l
	while IFS= read -r l; do
		case $l in
		"ok - "*) ok "${l#ok - }" ;;
		"FAIL - "*) bad "${l#FAIL - }" ;;
		*) echo "    $l" ;;
		esac
	done <"$1"
}

# The TCP side serves every queue: PUT queue=, GET_TASK(S) queue=A,B for
# remote workers (forq worker --queue, forq.Worker(queues=)), ids unique
# across the queues (RESULT names none), STATS/PAUSE/CANCEL by name, and an
# unknown queue refused with nothing changed.
tcp() {
	R=$TMP/tcp.jsonl
	cat >"$TMP/tcp.conf" <<CONF
results = $R
lease-timeout = 30

[queue default]
handler = arith
workers = 1

[queue remote]
workers = 0

[queue batch]
workers = 0
max-payload = 64
CONF
	start_forqd tcpq --config "$TMP/tcp.conf" || { bad "forqd starts with three queues"; return; }
	check "forqd logs that TCP serves the three queues" \
		grep -q "event=tcp_listening .*queues=3" "$FORQD_LOG"
	local py
	for py in /usr/bin/python3 python3; do "$py" -c 1 2>/dev/null && break; done
	PYTHONPATH="$FORQ_SRC/clients/python" "$py" - "$TCP_PORT" "$R" >"$TMP/tcp_a.out" 2>&1 <<'PY'
# Part A: the wire, one request at a time. Prints "ok - ..." or "FAIL - ...".
import json, socket, sys, time
port, results = int(sys.argv[1]), sys.argv[2]
def say(good, what):
    print(("ok - " if good else "FAIL - ") + what, flush=True)
class C:
    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rb")
    def send(self, b):
        self.s.sendall(b)
    def line(self):
        return self.f.readline().rstrip(b"\r\n").decode()
    def ask(self, b):
        self.send(b)
        return self.line()
    def task(self):
        head = self.line()
        if not head.startswith("TASK "):
            return head, None
        _, tid, att, n = head.split()
        data = self.f.read(int(n) + 2)[:-2]
        return int(tid), data.decode()
    def stats(self, q=None):
        return json.loads(self.ask(b"STATS %s\r\n" % q.encode() if q else b"STATS\r\n"))
def lines():
    out = []
    for l in open(results):
        out.append(json.loads(l))
    return out
def wait_result(tid, secs=10):
    end = time.time() + secs
    while time.time() < end:
        for r in lines():
            if r["id"] == tid:
                return r
        time.sleep(0.05)
    return None
SPAN = 10**12
a, b = C(), C()

# ids: the default queue's as before (small), the others' each in their range.
r0 = a.ask(b"PUT 3\r\n1+1\r\n")
r1 = a.ask(b"PUT queue=remote 3\r\n2+2\r\n")
r2 = a.ask(b"PUT high queue=batch 3\r\n3+3\r\n")
r3 = a.ask(b"PUT queue=remote 3\r\n4+4\r\n")
say(all(r.startswith("OK ") for r in (r0, r1, r2, r3)), "PUT to default, remote, batch: OK (%s)" % [r0, r1, r2, r3])
ids = [int(r.split()[1]) for r in (r0, r1, r2, r3)]
say(ids[0] < SPAN and ids[1] >= SPAN and ids[2] >= SPAN and ids[1] // SPAN != ids[2] // SPAN
    and ids[3] == ids[1] + 1 and len(set(ids)) == 4,
    "ids: default's below 10^12, remote's and batch's in ranges of their own (%s)" % ids)
say(wait_result(ids[0]) is not None and wait_result(ids[0])["queue"] == "default",
    "the default queue's task runs on its local consumer, its line says queue default")

# An unknown queue: ERR unknown-queue, nothing changes, the connection goes on.
before = {q: a.stats(q) for q in ("remote", "batch")}
before["default"] = a.stats()
for req in (b"PUT queue=nope 3\r\n5+5\r\n", b"GET_TASK queue=nope\r\n",
            b"GET_TASKS 4 WAIT 100 queue=remote,nope\r\n", b"STATS nope\r\n", b"PAUSE nope\r\n",
            b"PURGE nope\r\n", b"CANCEL nope %d\r\n" % ids[1]):
    r = a.ask(req)
    say(r == "ERR unknown-queue", "%r: ERR unknown-queue (%s)" % (req.split(b"\r\n")[0], r))
say(a.ask(b"PING\r\n") == "PONG", "... the connection still answers PING")
r = a.ask(b"PUT queue=batch 100\r\n" + b"x" * 100 + b"\r\n")
say(r == "ERR payload-too-large", "PUT queue=batch of 100 bytes: ERR payload-too-large, batch's "
    "max-payload 64 (%s)" % r)
after = {q: a.stats(q) for q in ("remote", "batch")}
after["default"] = a.stats()
keys = ("enqueued", "pending", "leases", "paused", "cancelled")
say(all(before[q][k] == after[q][k] for q in before for k in keys),
    "... and no queue changed (%s)" % {q: [after[q][k] for k in keys] for q in after})
say(after["remote"]["pending"] == 2 and after["batch"]["pending"] == 1,
    "STATS remote / STATS batch: each its own pending (2, 1)")

# GET_TASKS over two queues; RESULT of a task of the second queue finishes it there.
a.send(b"GET_TASKS 8 queue=batch,remote\r\n")
head = a.line()
got = dict(a.task() for _ in range(int(head.split()[1]))) if head.startswith("TASKS ") else {}
say(sorted(got) == sorted(ids[1:]), "GET_TASKS 8 queue=batch,remote: the three tasks (%s)" % head)
say(a.stats("batch")["leases"] == 1 and a.stats("remote")["leases"] == 2,
    "... leased in their own queues (batch 1, remote 2)")
say(a.ask(b"RESULT %d six\r\n" % ids[2]) == "OK", "RESULT of batch's task: OK")
r = wait_result(ids[2])
say(r is not None and r["queue"] == "batch" and r["status"] == "done" and r["result"] == "six",
    "... its line: queue batch, done, six (%s)" % r)
st = a.stats("batch")
say(st["done"] == 1 and st["leases"] == 0 and a.stats("remote")["done"] == 0,
    "... counted done in batch only")
a.send(b"RESULTS 2\r\nRESULT %d 1\r\n4\r\nFAIL %d 3\r\nbad\r\n" % (ids[1], ids[3]))
say(a.line() == "RESULTS 2 0", "a RESULTS batch of remote's two tasks: both applied")
r1, r3 = wait_result(ids[1]), wait_result(ids[3])
say(r1 and r3 and r1["queue"] == r3["queue"] == "remote" and r1["status"] == "done"
    and r3["status"] == "failed", "... lines in queue remote, done and failed")
say(a.ask(b"RESULT %d again\r\n" % ids[1]) == "ERR not-leased", "a second RESULT: ERR not-leased")

# CANCEL of a leased task of a named queue revokes the lease.
c = int(b.ask(b"PUT queue=remote 9\r\ncancel-me\r\n").split()[1])
a.send(b"GET_TASK queue=remote\r\n")
tid, payload = a.task()
say(tid == c and payload == "cancel-me", "a worker leases remote's task %s" % tid)
say(b.ask(b"CANCEL default %d\r\n" % c) == "ERR not-queued",
    "CANCEL default <remote's id>: ERR not-queued (the id is not default's)")
say(b.ask(b"CANCEL remote %d\r\n" % c) == "OK", "CANCEL remote <id>: OK")
say(a.ask(b"RESULT %d late\r\n" % c) == "ERR not-leased", "... the worker's late RESULT: ERR not-leased")
r = wait_result(c)
say(r is not None and r["status"] == "cancelled" and r["queue"] == "remote",
    "... one line, cancelled, queue remote (%s)" % r)
say(sum(1 for x in lines() if x["id"] == c) == 1, "... and only one")

# PAUSE and RESUME a named queue.
p = int(b.ask(b"PUT queue=batch 3\r\n7+7\r\n").split()[1])
say(b.ask(b"PAUSE batch\r\n") == "OK", "PAUSE batch: OK")
say(a.stats("batch")["paused"] and not a.stats("remote")["paused"], "... batch paused, remote not")
t0 = time.time()
say(a.ask(b"GET_TASK WAIT 300 queue=batch\r\n") == "NONE" and time.time() - t0 >= 0.25,
    "GET_TASK WAIT 300 queue=batch while paused: NONE")
say(b.ask(b"RESUME batch\r\n") == "OK", "RESUME batch: OK")
a.send(b"GET_TASK WAIT 5000 queue=batch\r\n")
tid, payload = a.task()
say(tid == p, "... a GET then takes its task")
say(a.ask(b"RESULT %d 14\r\n" % tid) == "OK", "... and answers it")
# A parked GET on one queue is served by a push to it, not held by the other.
a.send(b"GET_TASK WAIT 5000 queue=remote,batch\r\n")
time.sleep(0.2)
q = int(b.ask(b"PUT queue=batch 3\r\n8+8\r\n").split()[1])
tid, payload = a.task()
say(tid == q, "a parked GET on remote,batch gets batch's new task at once")
say(a.ask(b"RESULT %d 16\r\n" % tid) == "OK", "... answered")
a.ask(b"QUIT\r\n"); b.ask(b"QUIT\r\n")
PY
	report_lines "$TMP/tcp_a.out"
	check "part A's script ran to its end" grep -q "answered" "$TMP/tcp_a.out"

	# Remote workers serving both named queues: forq worker, then forq.Worker.
	"$FORQ" worker --connect "127.0.0.1:$TCP_PORT" --queue remote,nope --quiet >"$TMP/w0.out" 2>&1
	local rc=$?
	check "forq worker --queue remote,nope: exit 3, says which ($rc)" \
		bash -c "[ $rc = 3 ] && grep -q 'no queue named in --queue remote,nope' '$TMP/w0.out'"
	PYTHONPATH="$FORQ_SRC/clients/python" "$py" - "$TCP_PORT" "$R" "$FORQ" >"$TMP/tcp_b.out" 2>&1 <<'PY'
import json, subprocess, sys, time
import forq
port, results, forq_bin = sys.argv[1], sys.argv[2], sys.argv[3]
addr = "127.0.0.1:" + port
def say(good, what):
    print(("ok - " if good else "FAIL - ") + what, flush=True)
def by_id():
    return {r["id"]: r for r in map(json.loads, open(results))}
def check_round(name, pushed, secs=30):
    end = time.time() + secs
    while time.time() < end:
        got = by_id()
        if all(i in got for i in pushed):
            break
        time.sleep(0.1)
    got = by_id()
    wrong = [i for i, (q, task) in pushed.items()
             if i not in got or got[i]["queue"] != q or got[i]["status"] != "done"
             or got[i]["task"] != task
             or got[i]["result"] != str(sum(int(x) for x in task.split("+")))]
    say(not wrong, "%s: every result there, done, right value and queue (%d wrong of %d)"
        % (name, len(wrong), len(pushed)))
cl = forq.Client(addr)
def push_round(base):
    pushed = {}
    for q in ("remote", "batch"):
        tasks = ["%d+%d" % (base + i, 1 if q == "remote" else 2) for i in range(40)]
        for i, t in zip(cl.push_many(tasks, queue=q), tasks):
            pushed[i] = (q, t)
    return pushed
p1 = push_round(1000)
say(len(p1) == 80, "forq.Client.push_many(queue=) to remote and batch: 80 distinct ids")
w = subprocess.run([forq_bin, "worker", "--connect", addr, "--queue", "remote,batch",
                    "--batch", "8", "--max-tasks", "80", "--wait-ms", "200", "--quiet"],
                   timeout=60, capture_output=True, text=True)
say(w.returncode == 0, "forq worker --queue remote,batch --max-tasks 80: exit 0 (%d %s)"
    % (w.returncode, w.stderr[-300:]))
check_round("forq worker's 80 tasks of the two queues", p1)

p2 = push_round(5000)
seen = {"remote": 0, "batch": 0}
def fn(payload):
    a, b = payload.decode().split("+")
    seen["remote" if b == "1" else "batch"] += 1
    return str(int(a) + int(b))
n = forq.Worker(addr, fn, batch=4, queues=["remote", "batch"], max_tasks=80, wait_ms=200).run()
say(n == 80 and seen["remote"] == 40 and seen["batch"] == 40,
    "forq.Worker(queues=[remote, batch]) ran 80: 40 of each (%d, %s)" % (n, seen))
check_round("forq.Worker's 80 tasks of the two queues", p2)
try:
    cl.push("1+1", queue="nope")
    say(False, "push(queue='nope') raises UnknownQueue")
except forq.UnknownQueue:
    say(True, "push(queue='nope') raises UnknownQueue")
try:
    forq.Worker(addr, fn, queues="nope", reconnect=True, wait_ms=100).run()
    say(False, "Worker(queues='nope').run() raises UnknownQueue")
except forq.UnknownQueue:
    say(True, "Worker(queues='nope').run() raises UnknownQueue")
st = cl.stats("remote")
say(st["pending"] == 0 and st["leases"] == 0 and st["done"] >= 80, "STATS remote at the end: nothing pending or leased")
print("end of part B")
PY
	report_lines "$TMP/tcp_b.out"
	check "part B's script ran to its end" grep -q "end of part B" "$TMP/tcp_b.out"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

# The journal per queue: journal = DIR gives each queue DIR/NAME; a reboot
# (forqd and its consumers killed, every queue's shared memory gone) replays
# each queue's journal into its own queue.
journal() {
	local j=$TMP/jr/j r=$TMP/jr/r.jsonl
	mkdir -p "$TMP/jr"
	cat >"$TMP/jr.conf" <<CONF
journal = $j
results = $r
rate = 200          ; slow starts: most tasks are still queued at the kill

[queue default]
handler = arith

[queue other]
handler = json
CONF
	start_forqd jr/a --config "$TMP/jr.conf" --workers 1 ||
		{ bad "forqd starts with a journal per queue"; return; }
	local shm=$FORQD_SHM pid=$FORQD_PID i
	for i in $(seq 1 300); do echo "$i+1"; done >"$TMP/jr/a.txt"
	for i in $(seq 1 300); do echo "{\"op\":\"sum\",\"args\":[$i,5]}"; done >"$TMP/jr/b.txt"
	check "300 tasks pushed to each queue" \
		bash -c "'$FORQ' push --shm-name '$shm' --file '$TMP/jr/a.txt' | wc -l | grep -qx 300 &&
			 '$FORQ' push --shm-name '$shm' --queue other --file '$TMP/jr/b.txt' | wc -l | grep -qx 300"
	check "each queue journals in its own directory" \
		bash -c "ls '$j/default'/journal-*.log '$j/other'/journal-*.log >/dev/null"
	local kids
	kids=$(pgrep -P "$pid" | tr '\n' ' ')
	kill -9 "$pid" $kids 2>/dev/null
	wait "$pid" 2>/dev/null
	check "forqd and its consumers are gone" wait_for 10 all_ended <(echo "$pid $kids")
	rm -f "/dev/shm$shm" "/dev/shm$shm.other"
	start_forqd jr/b --config "$TMP/jr.conf" --shm-name "$shm" --workers 2 --rate 0 ||
		{ bad "forqd starts on the journals"; return; }
	check "both queues replay their journal" \
		bash -c "[ \$(grep -c 'event=journal_opened .*replay=[1-9]' '$FORQD_LOG') = 2 ]"
	check "every task of both queues has its result, in its queue" wait_for 30 python3 -c "
import json, sys
got = {}
for line in open('$r'):
    x = json.loads(line)
    if x['status'] != 'done': sys.exit(1)
    q = x['queue']
    v = json.loads(x['task'])['args'][0] if q == 'other' else int(x['task'].split('+')[0])
    want = v + 5 if q == 'other' else v + 1
    if x['result'] != str(want) or (q == 'other') != x['task'].startswith('{'): sys.exit(1)
    got.setdefault(q, set()).add(v)
sys.exit(got != {'default': set(range(1, 301)), 'other': set(range(1, 301))})"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

eight_queues_metrics() {
	local conf=$TMP/eight.conf names=default q i
	printf '[queue default]\nhandler = arith\nworkers = 1\n' >"$conf"
	for i in 1 2 3 4 5 6 7; do
		printf '[queue q%s]\nhandler = noop\nworkers = 1\ncapacity = %s\n' $i $((64 * i)) >>"$conf"
		names=$names,q$i
	done
	start_forqd eight --config "$conf" --tcp off --results off || { bad "forqd starts with eight queues"; return; }
	for q in default q1 q2 q3 q4 q5 q6 q7; do
		curl -fsS -o /dev/null -X POST --data-binary '{"payload":"1+1"}' "$(H)/queues/$q/tasks"
	done
	check "each queue runs its task" wait_for 10 bash -c "curl -fsS '$(H)/stats' | python3 -c '
import json, sys
q = json.load(sys.stdin)[\"queues\"]
sys.exit(not (len(q) == 8 and all(v[\"done\"] == 1 for v in q.values())))'"
	curl -fsS "$(H)/metrics" >"$TMP/m8.txt"
	skip_unless "no promtool" command -v promtool
	check "promtool check metrics passes with eight queues" promtool check metrics <"$TMP/m8.txt"
	skip_end
	check "forq_queue_capacity has each queue's own (q3: 192)" \
		grep -qx 'forq_queue_capacity{queue="q3"} 192' "$TMP/m8.txt"
	check "forq_tasks_done_total: one done in q7's normal lane" \
		grep -qx 'forq_tasks_done_total{queue="q7",priority="normal"} 1' "$TMP/m8.txt"
	python3 "$FORQ_SRC/tests/e2e/check_dashboard.py" metrics --url "$(H)/metrics" \
		--queues "$names" >"$TMP/m8.check" 2>&1
	check "check_dashboard.py metrics: every per-queue family labelled, for all eight ($(grep -c '^ok' "$TMP/m8.check") ok)" \
		bash -c "! grep -q '^not ok' '$TMP/m8.check' && grep -q 'has samples for each queue' '$TMP/m8.check'"
	# Cheap: forqd's own CPU time for 200 scrapes (about 1 ms each here,
	# Debug build; the bound is 10 ms each).
	local ms
	ms=$(python3 - "$(H)" <<'PY'
import re, sys, urllib.request
def cpu():
    t = urllib.request.urlopen(sys.argv[1] + "/metrics").read().decode()
    return float(re.search(r"^process_cpu_seconds_total (\S+)", t, re.M).group(1))
a = cpu()
for _ in range(200):
    urllib.request.urlopen(sys.argv[1] + "/metrics").read()
print(int((cpu() - a) * 1000))
PY
)
	check "200 scrapes of eight queues cost forqd under 2 s of CPU (${ms:-?} ms)" [ "${ms:-99999}" -lt 2000 ]
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

# Each control on a named queue, beside other queues with other handlers
# that it must leave alone: a delay, unique keys (a key is per queue), a
# purge, a rate limit, dead letters listed and re-queued by queue.
controls() {
	local r=$TMP/ct.jsonl shm id id2 dup t0 t1
	cat >"$TMP/ct.conf" <<CONF
results = $r

[queue default]
handler = arith
workers = 1

[queue b]
handler = json
workers = 1
rate = 2
rate-burst = 1

[queue c]
handler = exec:kill -KILL \$PPID
workers = 1
max-attempts = 1
CONF
	start_forqd ct --config "$TMP/ct.conf" || { bad "forqd starts with two queues"; return; }
	shm=$FORQD_SHM
	# A delay in b: not started before it is due; default runs meanwhile.
	t0=$(date +%s%N)
	id=$("$FORQ" push --shm-name "$shm" --queue b --delay 1500ms '{"op":"sum","args":[20,22]}')
	"$FORQ" push --shm-name "$shm" 2+2 >/dev/null
	check "default's task runs at once" wait_for 5 grep -q '"result":"4".*"queue":"default"' "$r"
	check "b's delayed task is scheduled, not run" \
		bash -c "[ $(qstat b "['scheduled']") = 1 ] && ! grep -q '\"id\":$id,' '$r'"
	check "b's delayed task runs once due" wait_for 10 grep -q "\"id\":$id,.*\"result\":\"42\".*\"queue\":\"b\"" "$r"
	t1=$(date +%s%N)
	check "... no sooner than 1.5 s after the push ($(((t1 - t0) / 1000000)) ms)" \
		[ $(((t1 - t0) / 1000000)) -ge 1500 ]
	# Unique keys are per queue: the same key in b twice is one task, in
	# default it is a task of its own.
	id=$("$FORQ" push --shm-name "$shm" --queue b --key k1 --delay 60s '{"op":"sum","args":[1]}')
	dup=$("$FORQ" push --shm-name "$shm" --queue b --key k1 --delay 60s '{"op":"sum","args":[2]}' 2>&1)
	id2=$("$FORQ" push --shm-name "$shm" --key k1 --delay 60s 5+5)
	check "key k1 twice in b: the first task's id ($id; got: $dup)" \
		bash -c "[[ '$dup' == *'$id'* ]]"
	check "key k1 in default: a task of its own ($id2)" bash -c "[ -n '$id2' ] && [ '$id2' != '$id' ]"
	# Purge b over HTTP: its 3 pending tasks and its scheduled keyed one are
	# dropped, not default's.
	curl -s -o /dev/null -X POST "$(H)/queues/b/pause"
	for i in 1 2 3; do "$FORQ" push --shm-name "$shm" --queue b "{\"op\":\"sum\",\"args\":[$i]}" >/dev/null; done
	check "POST /queues/b/purge: 200, 4 purged" \
		bash -c "[[ '$(post /queues/b/purge '')' == '200 {\"queue\":\"b\",\"purged\":4}' ]]"
	check "4 purged records, all in queue b" \
		bash -c "[ \$(grep '\"status\":\"purged\"' '$r' | grep -c '\"queue\":\"b\"') = 4 ] &&
			 [ \$(grep -c '\"status\":\"purged\"' '$r') = 4 ]"
	check "default's scheduled keyed task is still there" [ "$(qstat default "['scheduled']")" = 1 ]
	curl -s -o /dev/null -X POST "$(H)/queues/b/resume"
	# The rate limit is b's alone: 12 tasks in b take 5.5 s at 2/s (the first
	# at once), 200 in default do not wait for them.
	for i in $(seq 1 12); do echo "{\"op\":\"sum\",\"args\":[$i,100]}"; done >"$TMP/ct_b.txt"
	seq 1 200 | sed 's/.*/&+1000/' >"$TMP/ct_a.txt"
	t0=$(date +%s%N)
	"$FORQ" push --shm-name "$shm" --queue b --file "$TMP/ct_b.txt" >/dev/null
	"$FORQ" push --shm-name "$shm" --file "$TMP/ct_a.txt" >/dev/null
	check "default's 200 tasks are done while b is held to 2 a second" wait_for 10 \
		bash -c "[ \$(grep -c '\"result\":\"1[0-9][0-9][0-9]\"' '$r') = 200 ] &&
			 [ \$(grep -c '\"result\":\"1[01][0-9]\".*\"queue\":\"b\"' '$r') -lt 12 ]"
	check "b's 12 are done" wait_for 30 \
		bash -c "[ \$(grep -c '\"result\":\"1[01][0-9]\".*\"queue\":\"b\"' '$r') = 12 ]"
	t1=$(date +%s%N)
	check "... held to its rate: 12 at 2/s take 5.5 s, over 5 s seen ($(((t1 - t0) / 1000000)) ms)" \
		[ $(((t1 - t0) / 1000000)) -ge 5000 ]
	# Dead letters by queue: c's task kills its consumer, so it is dead after
	# its one attempt.
	"$FORQ" push --shm-name "$shm" --queue c poison-1 >/dev/null
	check "c's poison task is dead" wait_for 10 grep -q '"status":"dead".*"queue":"c"' "$r"
	check "forq dead --queue c lists it, forq dead (default) and --queue b do not" \
		bash -c "'$FORQ' dead --shm-name '$shm' --queue c | grep -q poison-1 &&
			 ! '$FORQ' dead --shm-name '$shm' | grep -q poison-1 &&
			 ! '$FORQ' dead --shm-name '$shm' --queue b | grep -q poison-1"
	check "forq retry-dead --queue c --all puts it back (and it dies again)" \
		bash -c "'$FORQ' retry-dead --shm-name '$shm' --queue c --all >/dev/null"
	check "... a second dead record in c" wait_for 10 \
		bash -c "[ \$(grep -c '\"status\":\"dead\".*\"queue\":\"c\"' '$r') = 2 ]"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

part queues "four queues, three handlers: isolation, names on every surface, results"
part controls "delay, keys, purge, rate and dead letters on a named queue, the other untouched"
part journal "a journal per queue: a reboot replays each into its own queue"
part bad_config "a bad config file: refused at start with the file and the line"
part eight_queues_metrics "eight queues: /metrics and /stats show each, a scrape stays cheap"
part tcp "TCP serves every queue: PUT and GET_TASK(S) queue=, remote workers on two queues, ids unique"
finish
