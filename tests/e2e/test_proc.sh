#!/usr/bin/env bash
# test_proc.sh — proc: handlers (handlers/PROC.md) end to end, real children:
#   - examples/proc_sum.py (forq.serve) and examples/proc_sum.js (Node, when
#     node is here) on a few thousand tasks, every result checked;
#   - payloads with newlines, "\r" and NULs round-trip through a child that
#     echoes; a result over 64 KiB is cut to it;
#   - a child that crashes on a poison task: the poison ends dead after
#     --max-attempts (each time a crash), every other task is done once, the
#     child is restarted; a child that cannot start crash-loops with backoff;
#   - --task-timeout kills a hung child's whole group (a grandchild too) and
#     the task is retried; a RETRY reply is retried;
#   - kill -9 of the consumer, and of forqd, leaves no process of the
#     child's group; a drain stops the child;
#   - the child's stderr lines are in forqd's log with the queue and the
#     worker (rate-limited); forq's tokens are not in its environment.
set -u
. "$(dirname "$0")/lib.sh"
need_binaries "$FORQD"

# run_tasks DIR SECONDS FLAGS...: forqd on DIR/tasks.txt until it is done,
# results in DIR/results.jsonl, log in DIR/forqd.log, its queue's name in Q;
# EXIT_CODE as wait_exit sets it. Variables set on the call line reach forqd.
run_tasks() {
	local d=$1 secs=$2 pid
	shift 2
	new_shm Q
	"$FORQD" --shm-name "$Q" "$@" --tasks "$d/tasks.txt" --results "$d/results.jsonl" \
		--exit-when-done --http off --tcp off 2>"$d/forqd.log" &
	pid=$!
	PIDS+=("$pid")
	wait_exit "$pid" "$secs"
}

command -v python3 >/dev/null || skip_all "no python3"
PY=python3
CLIENTS=$FORQ_SRC/clients/python


# consumers_clean LOG: no consumer died, crash-looped or exited with an error.
consumers_clean() {
	! grep -E 'event=(worker_died|worker_crash_loop)|consumer (exited with status [1-9]|killed)' "$1"
}

# kill_listed FILE: the test's own cleanup of what a failing forqd left.
kill_listed() {
	local p
	for p in $(cat "$1" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
}

# A child written against the framing by hand (PROC.md), for the parts that
# need what forq.serve hides: the attempt, its own death, a grandchild.
#   argv[1]  a directory: "pids" gets "<its pid> <grandchild pid>" lines
#   payload  "poison": stderr line, exit 3;  "hang" on attempt 1: a
#            grandchild (sleep 300) in its group, then it sleeps;  "flaky" on
#            attempt 1: RETRY;  "spam": 1000 stderr lines;  "env": FORQ_*
#            and token variables as the result;  "big": 100000 bytes;
#            anything else: echoed.
cat >"$TMP/child.py" <<'EOF'
import os, subprocess, sys, time
d = sys.argv[1]
inp, out = sys.stdin.buffer, sys.stdout.buffer
bg = subprocess.Popen(["sleep", "300"])  # a grandchild in its group, for the kill parts
with open(os.path.join(d, "pids"), "a") as f:
    f.write("%d %d\n" % (os.getpid(), bg.pid))
sys.stderr.write("hello from the child\n")
sys.stderr.flush()
while True:
    h = inp.readline()
    if not h:
        break
    word, tid, att, n = h.split()
    body = inp.read(int(n))
    inp.read(1)
    word = b"RESULT"
    if body == b"poison":
        sys.stderr.write("poisoned: exiting\n")
        sys.stderr.flush()
        os._exit(3)
    elif body == b"hang" and att == b"1":
        g = subprocess.Popen(["sleep", "300"])
        with open(os.path.join(d, "hung"), "a") as f:
            f.write("%d %d\n" % (os.getpid(), g.pid))
        time.sleep(300)
    elif body == b"flaky" and att == b"1":
        word, body = b"RETRY", b"not yet"
    elif body == b"spam":
        sys.stderr.write("".join("spam line %d\n" % i for i in range(1000)))
        sys.stderr.flush()
    elif body == b"env":
        body = " ".join("%s=%s" % (k, os.environ.get(k, "-")) for k in
                        ("FORQ_ADMIN_TOKEN", "FORQ_TOKEN", "FORQ_WORKER_TOKEN", "NOTIFY_SOCKET",
                         "FORQ_PROC", "FORQ_QUEUE", "FORQ_WORKER")).encode()
    elif body == b"big":
        body = b"y" * 100000
    out.write(b"%s %s %d\n%s\n" % (word, tid, len(body), body))
    out.flush()
EOF

# check_results FILE N: FILE holds N result lines, one per id, each of a
# task made by sum_tasks done with the sum of its args (or failed, for the
# two bad lines).
check_results() {
	"$PY" - "$1" "$2" <<'EOF'
import json, sys
seen, bad = set(), []
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    if r["id"] in seen:
        bad.append("twice: %s" % line)
    seen.add(r["id"])
    if r["task"] == "not json":  # JSONDecodeError: ... (Python), SyntaxError: ... (Node)
        ok = r["status"] == "failed" and r["error"].split(":")[0] in ("JSONDecodeError", "SyntaxError")
    elif r["task"] == '{"args": []}':
        ok = r["status"] == "failed" and r["error"].endswith("args must be a non-empty array")
    else:
        ok = r["status"] == "done" and int(r["result"]) == sum(json.loads(r["task"])["args"])
    if not ok:
        bad.append(line)
print("results=%d bad=%d %s" % (len(seen), len(bad), "".join(bad[:3])))
sys.exit(0 if len(seen) == int(sys.argv[2]) and not bad else 1)
EOF
}

# sum_tasks N FILE: N sum tasks and the two bad lines.
sum_tasks() {
	"$PY" -c '
import sys
for i in range(int(sys.argv[1])):
    print("{\"op\": \"sum\", \"args\": [%d, %d, 7]}" % (i, 2 * i))
print("not json")
print("{\"args\": []}")' "$1" >"$2"
}

run_sum() { # run_sum NAME HANDLER
	local name=$1 handler=$2 D=$TMP/$1
	mkdir -p "$D"
	sum_tasks 3000 "$D/tasks.txt"
	run_tasks "$D" 120 --workers 2 --handler "$handler"
	check "$name: forqd finishes 3002 tasks and exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	check "$name: every result is right, each task once" check_results "$D/results.jsonl" 3002
	check "$name: the child never died" sh -c "! grep -E 'event=(proc_died|proc_crash_loop)' '$D/forqd.log'"
	check "$name: the consumers ran clean" consumers_clean "$D/forqd.log"
}

python_sum() { run_sum python_sum "proc:$PY $FORQ_SRC/examples/proc_sum.py"; }

node_sum() {
	if skip_unless "no node" command -v node; then
		run_sum node_sum "proc:node $FORQ_SRC/examples/proc_sum.js"
	else
		check "node_sum: proc_sum.js computes every sum" false
	fi
	skip_end
}

# put_all PORT FILE: pushes every payload of the Python list literal in FILE
# over TCP (binary PUT), prints their ids, one a line.
put_all() {
	"$PY" - "$1" "$2" <<'EOF'
import socket, sys
payloads = eval(open(sys.argv[2]).read())  # the test's own list
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
for p in payloads:
    s.sendall(b"PUT %d\r\n%s\r\n" % (len(p), p))
    line = f.readline().split()
    assert line[0] == b"OK", line
    print(int(line[1]))
EOF
}

binary() {
	local D=$TMP/binary
	mkdir -p "$D"
	cat >"$D/payloads.txt" <<'EOF'
[b"a\nb", b"\x00", b"nul\x00in\x00the middle", b"line1\r\nline2\n", b"\n", b"\r", b"\n\n\n",
 b"ends with newline\n", b"RESULT 1 5\nhello\n", b"TASK 9 9 9", b"x" * 1000,
 bytes(range(1, 128)), "grüße ☃".encode(), b"z" * 100000, b"q"]
EOF
	start_forqd binary --workers 2 --max-payload 200000 \
		--handler "proc:$PY -c 'import sys; sys.path.insert(0, \"$CLIENTS\"); import forq; forq.serve(lambda p: p)'" \
		--results "$D/results.jsonl" || { bad "binary: forqd starts"; return; }
	put_all "$TCP_PORT" "$D/payloads.txt" >"$D/ids" 2>"$D/put.err"
	check "binary: 15 payloads pushed over TCP" [ "$(wc -l <"$D/ids")" -eq 15 ]
	check "binary: 15 results" wait_for 20 sh -c "[ \$(wc -l <'$D/results.jsonl') -ge 15 ]"
	"$PY" - "$D/results.jsonl" >"$D/verify" 2>&1 <<'EOF'
import json, sys
bad = []
for line in open(sys.argv[1], encoding="utf-8"):
    r = json.loads(line)
    want = r["task"] if len(r["task"]) <= 65536 else r["task"][:65536]
    if r["status"] != "done" or r["result"] != want:
        bad.append("%d: %r -> %r" % (r["id"], r["task"][:60], r.get("result", r)))
print("bad=%d %s" % (len(bad), bad[:3]))
sys.exit(1 if bad else 0)
EOF
	check "binary: every payload comes back byte for byte, the 100000-byte one cut at 65536 ($(cat "$D/verify"))" \
		grep -q "^bad=0" "$D/verify"
	stop_forqd
	check "binary: forqd drains and exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

crash() {
	local D=$TMP/crash
	mkdir -p "$D"
	"$PY" -c '
for i in range(300):
    print("t%d" % i)
    if i == 150:
        print("poison")' >"$D/tasks.txt"
	run_tasks "$D" 60 --workers 2 --max-attempts 3 --retry-backoff 10 \
		--handler "proc:$PY $TMP/child.py $D"
	check "crash: forqd finishes and exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	check "crash: the poison is dead after 3 crashes, with the child's last stderr line" \
		grep -q '"task":"poison","status":"dead","error":"handler process died: exit status 3: poisoned: exiting","attempts":3' \
		"$D/results.jsonl"
	check "crash: the 300 other tasks are done, each once" \
		[ "$(grep -c '"status":"done"' "$D/results.jsonl")" -eq 300 -a "$(wc -l <"$D/results.jsonl")" -eq 301 ]
	check "crash: the log shows the child's 3 deaths (proc_died / proc_crash_loop)" \
		[ "$(grep -cE 'event=proc_(died|crash_loop) ' "$D/forqd.log")" -eq 3 ]
	check "crash: the consumers never died" consumers_clean "$D/forqd.log"
	# 2 starts, and a restart after each death but maybe the last (forqd may
	# stop while that consumer waits out its restart delay).
	check "crash: the child was restarted after its deaths ($(wc -l <"$D/pids") starts)" \
		[ "$(wc -l <"$D/pids")" -ge 3 -a "$(wc -l <"$D/pids")" -le 5 ]
	check "crash: no child and no grandchild outlives forqd" wait_for 3 all_ended "$D/pids"
	kill_listed "$D/pids"
}

crash_loop() {
	local D=$TMP/crash_loop
	mkdir -p "$D"
	start_forqd crash_loop --workers 1 --restart-backoff 50 --restart-backoff-max 400 \
		--drain-timeout 1 --handler "proc:exec nonexistent-command-xyz" --results "$D/r.jsonl" ||
		{ bad "crash_loop: forqd starts"; return; }
	check "crash_loop: a command that cannot run shows in the log at once" \
		wait_for 5 grep -q 'event=proc_died .*worker=0 .*reason="handler process died: exit status 127: .*nonexistent-command-xyz' "$FORQD_LOG"
	check "crash_loop: it keeps dying with a growing delay (proc_crash_loop, restart_in_ms=400)" \
		wait_for 10 grep -q 'event=proc_crash_loop .*restart_in_ms=400 ' "$FORQD_LOG"
	sleep 1
	local n1 n2
	n1=$(grep -cE 'event=proc_(died|crash_loop) ' "$FORQD_LOG")
	sleep 1.2
	n2=$(grep -cE 'event=proc_(died|crash_loop) ' "$FORQD_LOG")
	check "crash_loop: at most 4 restarts in 1.2 s once the delay is 400 ms (got $((n2 - n1)))" \
		[ $((n2 - n1)) -le 4 ]
	check "crash_loop: the consumer itself stays up" consumers_clean "$FORQD_LOG"
	stop_forqd
	check "crash_loop: forqd stops (got $EXIT_CODE)" [ "$EXIT_CODE" -ne 124 ]
}

timeout_retry() {
	local D=$TMP/timeout
	mkdir -p "$D"
	{ for i in $(seq 1 20); do echo "a$i"; done; echo hang; echo flaky; for i in $(seq 1 20); do echo "b$i"; done; } >"$D/tasks.txt"
	run_tasks "$D" 60 --workers 1 --task-timeout 1000 --retry-backoff 10 \
		--handler "proc:$PY $TMP/child.py $D"
	check "timeout: forqd finishes and exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	check "timeout: the hung task ran again and was done on its second delivery" \
		grep -q '"task":"hang","status":"done","result":"hang","attempts":2' "$D/results.jsonl"
	check "timeout: the log says the child was killed for it" \
		grep -q 'event=proc_timeout .*timeout_ms=1000 ' "$D/forqd.log"
	check "timeout: the hung child and the grandchild it started are gone" \
		wait_for 3 all_ended "$D/hung"
	check "timeout: a RETRY reply is retried (done on attempt 2)" \
		grep -q '"task":"flaky","status":"done","result":"flaky","attempts":2' "$D/results.jsonl"
	check "timeout: all 42 tasks are done" [ "$(grep -c '"status":"done"' "$D/results.jsonl")" -eq 42 ]
	check "timeout: the consumer ran clean" consumers_clean "$D/forqd.log"
	check "timeout: nothing of any child outlives forqd" wait_for 3 all_ended "$D/pids"
	kill_listed "$D/pids"
	kill_listed "$D/hung"
}

# consumer_of CHILD_PID: the consumer that started the child (the parent of
# its group leader: sh -c, or the child itself when sh exec'd it).
consumer_of() {
	local pg
	pg=$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f3)
	sed 's/.*) //' "/proc/$pg/stat" | cut -d' ' -f2
}

kill_consumer() {
	local D=$TMP/kill_consumer
	mkdir -p "$D"
	start_forqd kill_consumer --workers 1 --handler "proc:$PY $TMP/child.py $D" \
		--results "$D/r.jsonl" || { bad "kill_consumer: forqd starts"; return; }
	if ! wait_for 10 test -s "$D/pids"; then
		bad "kill_consumer: the child started"
		return
	fi
	local child consumer
	child=$(head -n 1 "$D/pids" | cut -d' ' -f1)
	consumer=$(consumer_of "$child")
	head -n 1 "$D/pids" >"$D/first"
	kill -9 "$consumer"
	check "kill_consumer: the child and its grandchild end within 3 s" wait_for 3 all_ended "$D/first"
	check "kill_consumer: the restarted consumer starts a new child" \
		wait_for 10 sh -c "[ \$(wc -l <'$D/pids') -ge 2 ]"
	sed -n 2p "$D/pids" >"$D/second"
	stop_forqd
	check "kill_consumer: forqd drains and exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	check "kill_consumer: the new child and its grandchild are gone after the drain" \
		wait_for 3 all_ended "$D/second"
	kill_listed "$D/pids"
}

kill_forqd() {
	local D=$TMP/kill_forqd
	mkdir -p "$D"
	start_forqd kill_forqd --workers 2 --handler "proc:$PY $TMP/child.py $D" \
		--results "$D/r.jsonl" || { bad "kill_forqd: forqd starts"; return; }
	if ! wait_for 10 sh -c "[ \$(cat '$D/pids' 2>/dev/null | wc -l) -ge 2 ]"; then
		bad "kill_forqd: both children started"
		return
	fi
	local consumers
	consumers=$(pgrep -P "$FORQD_PID" | tr '\n' ' ')
	kill -9 "$FORQD_PID"
	wait "$FORQD_PID" 2>/dev/null
	check "kill_forqd: both children and their grandchildren end within 3 s" \
		wait_for 3 all_ended "$D/pids"
	echo "$consumers" >"$D/consumers"
	check "kill_forqd: the consumers end too" wait_for 3 all_ended "$D/consumers"
	kill_listed "$D/pids"
}

stderr_log() {
	local D=$TMP/stderr
	mkdir -p "$D"
	printf 'spam\n' >"$D/tasks.txt"
	run_tasks "$D" 30 --workers 1 --handler "proc:$PY $TMP/child.py $D"
	check "stderr: the child's line is in forqd's log with the queue, the worker and the child" \
		grep -q "level=warn pid=[0-9]* event=proc_stderr queue=$Q worker=0 child=[0-9]* line=\"hello from the child\"" "$D/forqd.log"
	local n
	n=$(grep -c 'event=proc_stderr ' "$D/forqd.log")
	check "stderr: 1000 lines at once are rate-limited ($n logged, 100 a second at most)" \
		[ "$n" -ge 50 -a "$n" -le 202 ]
	check "stderr: what was dropped is counted" \
		grep -qE "event=proc_stderr_dropped queue=$Q worker=0 child=[0-9]+ count=[0-9]+" "$D/forqd.log"
	check "stderr: the consumer ran clean" consumers_clean "$D/forqd.log"
	kill_listed "$D/pids"
}

environment() {
	local D=$TMP/env
	mkdir -p "$D"
	printf 'env\nbig\n' >"$D/tasks.txt"
	FORQ_ADMIN_TOKEN=admin-token-for-the-proc-test-0123456789 FORQ_TOKEN=client-token-xyz \
		FORQ_WORKER_TOKEN=worker-token-xyz NOTIFY_SOCKET=/nonexistent/notify.sock \
		run_tasks "$D" 30 --workers 1 --handler "proc:$PY $TMP/child.py $D"
	check "env: forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	check "env: the consumer ran clean" consumers_clean "$D/forqd.log"
	check "env: no token and no NOTIFY_SOCKET in the child's environment; FORQ_PROC, FORQ_QUEUE and FORQ_WORKER set" \
		grep -q "\"result\":\"FORQ_ADMIN_TOKEN=- FORQ_TOKEN=- FORQ_WORKER_TOKEN=- NOTIFY_SOCKET=- FORQ_PROC=1 FORQ_QUEUE=$Q FORQ_WORKER=0\"" \
		"$D/results.jsonl"
	check "env: a 100000-byte result is cut at 64 KiB" \
		"$PY" -c 'import json, sys; r = [json.loads(l) for l in open(sys.argv[1]) if "\"task\":\"big\"" in l][0]; sys.exit(r["result"] != "y" * 65536)' "$D/results.jsonl"
	kill_listed "$D/pids"
}

part python_sum "examples/proc_sum.py (forq.serve) on 3002 tasks, every result checked"
part node_sum "examples/proc_sum.js (Node) on 3002 tasks, every result checked"
part binary "payloads with newlines and NULs round-trip; output cut at 64 KiB"
part crash "a child that crashes on a poison task: dead after --max-attempts, the rest done"
part crash_loop "a child that cannot start: backoff, the consumer stays up"
part timeout_retry "--task-timeout kills the hung child's group; the task is retried; RETRY replies"
part kill_consumer "kill -9 of the consumer leaves nothing of the child's group"
part kill_forqd "kill -9 of forqd leaves nothing of the children's groups"
part stderr_log "stderr lines in forqd's log, with the queue and the worker, rate-limited"
part environment "no tokens in the child's environment; its output is bounded"
finish
