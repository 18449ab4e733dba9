#!/usr/bin/env bash
# test_forqd_basic.sh — forqd end to end: a tasks file of 10,000 arithmetic
# expressions with every result checked, bad lines by line number, SIGTERM in
# the middle of 1,000,000 tasks (exit 0, nothing lost, no shm left), an idle
# forqd near 0% CPU, a consumer killed and restarted, a consumer that dies on
# every task (restart backoff in /metrics, worker_crash_loop, /healthz still
# 200), the README's example program (the README's copy must be
# examples/producer.c), and the refusals of bad flags and of a second forqd.
# Parts (for ONLY=, see lib.sh): tasks_file, sigterm_midrun, silent_stdin,
# idle_cpu, killed_consumer, crash_loop, install_example, refusals,
# notify_socket, admin_token_env, help_text, idle_sigterm.
set -u
. "$(dirname "$0")/lib.sh"

# --- 10,000 expressions with known answers (integer arithmetic only) ---
tasks_file() {
	awk 'BEGIN {
		srand(42);
		for (i = 1; i <= 10000; i++) {
			a = int(rand() * 1000); b = int(rand() * 100) + 1; c = int(rand() * 50);
			k = i % 5;
			if (k == 0)      { e = a "*" b "+" c;        v = a * b + c }
			else if (k == 1) { e = "(" a "-" b ")*" c;   v = (a - b) * c }
			else if (k == 2) { e = a "%" b;              v = a % b }
			else if (k == 3) { e = (a * b) "/" b;        v = a }
			else             { e = "-(" a "+" c ")*-2";  v = (a + c) * 2 }
			pr = (i % 7 == 0) ? "priority=high " : (i % 11 == 0 ? "priority=low " : "");
			print pr e > "'"$TMP"'/tasks.txt";
			print e "\t" v > "'"$TMP"'/expected.tsv";
		}
	}'
	{
		cat "$TMP/tasks.txt"
		echo "# a comment, then a blank line"
		echo ""
		echo "priority=urgent 1+1"
		echo "1/0"
		echo "(2+"
	} >"$TMP/tasks_all.txt"

	new_shm Q1
	timeout 120 "$FORQD" --shm-name "$Q1" --tasks "$TMP/tasks_all.txt" --handler arith --workers 2 \
		--results "$TMP/results.jsonl" --exit-when-done --http off --tcp off 2>"$TMP/forqd1.log"
	code=$?
	check "forqd --exit-when-done exits 0 (got $code)" [ "$code" -eq 0 ]
	check "one result line per accepted task (10,002)" [ "$(wc -l <"$TMP/results.jsonl")" -eq 10002 ]
	check "the bad priority is reported with its file:line" \
		grep -q "tasks_all.txt:10003: unknown priority \\\\\"urgent" "$TMP/forqd1.log"
	check "bad lines do not stop the rest (1 bad line counted)" grep -q "bad_lines=1" "$TMP/forqd1.log"
	# Every result matches the independent computation.
	python3 - "$TMP/results.jsonl" "$TMP/expected.tsv" <<'EOF' >"$TMP/verify.txt" 2>&1
import json, sys
exp = {}
for line in open(sys.argv[2]):
    e, v = line.rstrip("\n").split("\t")
    exp.setdefault(e, set()).add(v)
ok = bad = 0
ids = set()
special = {"1/0": ("failed", "division by zero"), "(2+": ("failed", "unexpected end")}
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["id"] in ids:
        print("duplicate id", r["id"]); bad += 1
    ids.add(r["id"])
    t = r["task"]
    if t in special:
        st, msg = special[t]
        good = r["status"] == st and msg in r["error"]
    else:
        good = r["status"] == "done" and r["result"] in exp.get(t, ())
        good = good and r["attempts"] == 1 and r["source"].startswith(sys.argv[1].rsplit("/", 1)[0])
    if good:
        ok += 1
    else:
        bad += 1
        if bad < 5: print("wrong:", line.strip())
print(f"ok={ok} bad={bad}")
EOF
	check "every one of the 10,002 results is correct ($(tail -n 1 "$TMP/verify.txt"))" \
		grep -q "^ok=10002 bad=0$" "$TMP/verify.txt"
	check "results carry FILE:LINE sources" grep -q '"source":"[^"]*tasks_all.txt:10004"' "$TMP/results.jsonl"
	check "high priority tasks are marked" grep -q '"priority":"high"' "$TMP/results.jsonl"
	check "no shared memory left after exit" [ ! -e "/dev/shm$Q1" ]
}
part tasks_file "10,000 expressions with known answers, bad lines by line number"

# --- SIGTERM in the middle of 1,000,000 tasks ---
sigterm_midrun() {
	awk 'BEGIN { for (i = 1; i <= 1000000; i++) print i "+" i }' >"$TMP/million.txt"
	new_shm Q2
	start_forqd forqd2 --shm-name "$Q2" --tasks "$TMP/million.txt" --handler arith --workers 2 \
		--results "$TMP/million.jsonl" --drain-timeout 60 --http off --tcp off
	wait_for 30 grep -qs . "$TMP/million.jsonl"
	before=$(wc -l <"$TMP/million.jsonl")
	stop_forqd "$FORQD_PID" 90
	check "SIGTERM mid-run: forqd exits 0 within the drain timeout (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	pushed=$(sed -n 's/.*event=tasks_file_read .*pushed=\([0-9]*\).*/\1/p' "$TMP/forqd2.log")
	lines=$(wc -l <"$TMP/million.jsonl")
	uniq_ids=$(grep -o '"id":[0-9]*' "$TMP/million.jsonl" | sort -u | wc -l)
	check "SIGTERM arrived mid-run ($before of ${pushed:-?} results written then)" [ "$before" -lt 1000000 ]
	check "SIGTERM mid-run: every accepted task has exactly one result ($lines lines, $uniq_ids ids, $pushed accepted)" \
		[ "$lines" -eq "${pushed:--1}" -a "$uniq_ids" -eq "$lines" ]
	check "SIGTERM mid-run: every result is done" [ "$(grep -c '"status":"done"' "$TMP/million.jsonl")" -eq "$lines" ]
	check "SIGTERM mid-run: no shared memory left" [ ! -e "/dev/shm$Q2" ]
}
part sigterm_midrun "SIGTERM in the middle of 1,000,000 tasks"

# --- --tasks - from a pipe that stays silent: SIGTERM still ends forqd ---
silent_stdin() {
	new_shm Q5
	mkfifo "$TMP/silent"
	sleep 60 >"$TMP/silent" & # a writer that never writes
	silent=$!
	PIDS+=("$silent")
	start_forqd stdin --shm-name "$Q5" --tasks - --workers 1 --results off --http off --tcp off \
		<"$TMP/silent"
	stop_forqd "$FORQD_PID" 15
	check "SIGTERM ends a forqd reading a silent stdin" [ "$EXIT_CODE" -ne 124 ]
	check "... and it exits 0" grep -q "event=exited code=0" "$TMP/stdin.log"
	kill "$silent" 2>/dev/null
}
part silent_stdin "--tasks - from a pipe that stays silent: SIGTERM still ends forqd"

# --- idle CPU, a consumer killed and restarted, libforq producer ---
# idle_forqd: the forqd on $Q3 (pid $idle_pid) that the parts from here on
# use, started by the first of them that runs.
idle_forqd() {
	[ -n "${idle_pid:-}" ] && return 0
	new_shm Q3
	if ! start_forqd forqd3 --shm-name "$Q3" --handler arith --workers 2 \
		--results "$TMP/idle.jsonl" --http off --tcp off; then
		bad "the idle forqd starts"
		return 1
	fi
	idle_pid=$FORQD_PID
}
idle_cpu() {
	idle_forqd || return
	sleep 1
	t0=$(proc_ticks "$idle_pid")
	sleep 3
	t1=$(proc_ticks "$idle_pid")
	hz=$(getconf CLK_TCK)
	# Generous bound: 3 processes over 3 s; 5% of one CPU is 15 ticks at 100 Hz.
	check "an idle forqd stays near 0% CPU ($((t1 - t0)) ticks in 3 s)" [ $((t1 - t0)) -le $((hz * 15 / 100)) ]
}
part idle_cpu "an idle forqd stays near 0% CPU"

killed_consumer() {
	idle_forqd || return
	victim=$(pgrep -P "$idle_pid" | head -n 1)
	kill -9 "$victim"
	check "a killed consumer is restarted" wait_for 10 grep -q "event=worker_died worker=[0-9]* child=$victim" "$TMP/forqd3.log"
	check "the restarted consumer runs" wait_for 10 bash -c "[ \$(pgrep -P $idle_pid | wc -l) -eq 2 ]"
}
part killed_consumer "a consumer of the idle forqd killed and restarted"

# --- a consumer that dies on every task: restart backoff, forqd stays up ---
# The handler kills its consumer ($PPID of the handler's shell) on every task,
# so the one consumer crash-loops: restarts at once, then after 600 ms, then
# after 1000 ms (the cap), ...
crash_loop() {
	new_shm Q6
	printf '%s\n' 1+1 2+2 3+3 4+4 5+5 >"$TMP/loop.txt"
	start_forqd loop --shm-name "$Q6" --tasks "$TMP/loop.txt" --workers 1 --batch 1 \
		--handler 'exec:kill -9 $PPID' --max-attempts 1000 --retry-backoff 1 \
		--restart-backoff 300 --restart-backoff-max 1000 --drain-timeout 1 \
		--results "$TMP/loop.jsonl" --http 127.0.0.1:0 --tcp off
	lpid=$FORQD_PID
	LU=http://127.0.0.1:$HTTP_PORT
	# backoff_seen: /metrics shows a consumer in backoff now.
	backoff_seen() { curl -fsS "$LU/metrics" 2>/dev/null | grep -Eq '^forq_workers\{queue="default",state="backoff"\} [1-9]'; }
	check "a crash-looping consumer shows in /metrics as forq_workers{state=\"backoff\"} >= 1" \
		wait_for 20 backoff_seen
	check "the log says event=worker_crash_loop" wait_for 20 grep -q 'event=worker_crash_loop' "$TMP/loop.log"
	check "... with the restart delay doubled up to its cap (restart_in_ms=1000)" \
		wait_for 20 grep -q 'event=worker_crash_loop .*restart_in_ms=1000 ' "$TMP/loop.log"
	check "... the consumer died of the handler's SIGKILL" \
		grep -q 'event=worker_crash_loop .*killed by signal 9' "$TMP/loop.log"
	restarts=$(curl -fsS "$LU/metrics" 2>/dev/null | awk '$1 == "forq_worker_restarts_total{queue=\"default\"}" { print $2 }')
	check "forq_worker_restarts_total counts the restarts (${restarts:-none} >= 3)" [ "${restarts:-0}" -ge 3 ]
	check "forqd stays responsive while its consumer crash-loops: GET /healthz 200" \
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$LU/healthz")" = 200 ]
	check "... and its process runs" kill -0 "$lpid"
	stop_forqd "$lpid" 30
	check "SIGTERM ends the crash-looping forqd with exit 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}
part crash_loop "a consumer that dies on every task: restart backoff, forqd stays up"

# cmake --install puts the binaries, both libraries, the header and forq.pc
# where C users expect them; the README's example builds with pkg-config.
install_example() {
	cmake --install "${FORQ_BUILD:-build}" --prefix "$TMP/prefix" >"$TMP/install.log" 2>&1
	for f in bin/forqd bin/forq include/forq.h; do
		check "cmake --install puts $f" [ -e "$TMP/prefix/$f" ]
	done
	pc=$(find "$TMP/prefix" -name forq.pc | head -n 1)
	check "cmake --install puts forq.pc, libforq.so and libforq.a" \
		bash -c "[ -n '$pc' ] && ls '$TMP'/prefix/lib*/libforq.so* '$TMP'/prefix/lib*/libforq.a >/dev/null 2>&1 || ls '$TMP'/prefix/lib/*/libforq.so* '$TMP'/prefix/lib/*/libforq.a >/dev/null 2>&1"
	so=$(ls "$(dirname "$(dirname "$pc")")"/libforq.so 2>/dev/null)
	if skip_unless "no nm" command -v nm && skip_unless "no libforq.so installed" test -n "$so"; then
		nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ {print $3}' | sort >"$TMP/exported"
		grep -oE '\bforq_[a-z_0-9]+\(' "$FORQ_SRC/core/include/forq.h" | tr -d '(' | sort -u >"$TMP/declared"
	fi
	check "libforq.so exports exactly the functions of forq.h" cmp -s "$TMP/exported" "$TMP/declared"
	check "... which are not nothing" [ "$(wc -l <"$TMP/declared")" -ge 10 ]
	skip_end
	# The README shows examples/producer.c without its header comment: the code
	# block after the line naming it must be the file from its first line of code
	# on, line for line.
	awk '/`examples\/producer\.c`/ { seen = 1; next }
		seen && !inb && /^```c$/ { inb = 1; next }
		inb && /^```$/ { exit }
		inb { print }' "$FORQ_SRC/README.md" >"$TMP/readme_producer.c"
	awk 'NR == 1 && /^\/\*/ { head = 1 }
		head { if (/\*\//) head = 0; next }
		{ print }' "$FORQ_SRC/examples/producer.c" >"$TMP/file_producer.c"
	check "the README has the example's code block ($(wc -l <"$TMP/readme_producer.c") lines)" \
		[ "$(wc -l <"$TMP/readme_producer.c")" -ge 20 ]
	check "the README's example is examples/producer.c (less its header comment), exactly" \
		cmp -s "$TMP/readme_producer.c" "$TMP/file_producer.c"
	cmp -s "$TMP/readme_producer.c" "$TMP/file_producer.c" ||
		diff -u "$TMP/file_producer.c" "$TMP/readme_producer.c" | head -n 20 | sed 's/^/      /'
	PKG_CONFIG_PATH=$(dirname "$pc") cc -std=c11 -Wall -Wextra -Werror ${FORQ_CFLAGS:-} "$FORQ_SRC/examples/producer.c" \
		$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs forq) -o "$TMP/producer" 2>"$TMP/cc.log"
	check "the README example program builds with pkg-config against the installed libforq" [ -x "$TMP/producer" ]
	export LD_LIBRARY_PATH=$(dirname "$(dirname "$pc")")
	idle_forqd || return
	"$TMP/producer" "$Q3" 500 >"$TMP/producer.out" 2>&1
	check "the example program pushes 500 tasks" grep -q "pushed 500 tasks" "$TMP/producer.out"
	check "forqd computes all 500 (i*i+1)" wait_for 20 bash -c "[ \$(grep -c '\"status\":\"done\"' '$TMP/idle.jsonl') -eq 500 ]"
	check "a result of the example is right (250*250+1 = 62501)" grep -q '"task":"250\*250+1","status":"done","result":"62501"' "$TMP/idle.jsonl"
}
part install_example "cmake --install, libforq.so's exports, the README's example built and run"

# --- refusals ---
refusals() {
	idle_forqd || return
	new_shm Q4
	"$FORQD" --shm-name "$Q3" --http off --tcp off --workers 1 2>"$TMP/second.log"
	code=$?
	check "a second forqd on the same name refuses to start (exit 3, got $code)" [ "$code" -eq 3 ]
	check "... and says who owns it" grep -q "owned by another forqd (pid $idle_pid)" "$TMP/second.log"
	check "the first forqd keeps running" kill -0 "$idle_pid"
	"$FORQD" --workers x 2>"$TMP/e1.log"
	check "a bad number is a usage error (exit 2)" [ $? -eq 2 ]
	check "... naming the flag" grep -q -- '--workers: expected a whole number' "$TMP/e1.log"
	"$FORQD" --handler nope --shm-name "$Q4" 2>"$TMP/e2.log"
	check "an unknown handler is a usage error (exit 2)" [ $? -eq 2 ]
	check "... listing the handlers" grep -q 'use noop, arith, json, exec:CMD or proc:CMD' "$TMP/e2.log"
	"$FORQD" --bogus 2>"$TMP/e3.log"
	check "an unknown flag is a usage error (exit 2)" [ $? -eq 2 ]
	"$FORQD" --exit-when-done 2>"$TMP/e4.log"
	check "--exit-when-done without --tasks is refused" [ $? -eq 2 ]
	check "no queue is left by the refused starts" [ ! -e "/dev/shm$Q4" ]
}
part refusals "a second forqd on a queue, bad flags: refused"

# systemd readiness: with NOTIFY_SOCKET set, READY=1 once serving, STOPPING=1
# on SIGTERM, and the variable is not passed on to handlers.
notify_socket() {
	if skip_unless "no python3" command -v python3; then
		new_shm Q8
		printf 'x\n' >"$TMP/notify_task.txt"
		# The notify socket: prints the first two messages it gets.
		python3 - "$TMP/notify.sock" >"$TMP/notify.out" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
print("first:", s.recv(100).decode(), flush=True)
print("then:", s.recv(100).decode(), flush=True)
PY
		local sock_pid=$!
		PIDS+=("$sock_pid")
		wait_for 10 test -S "$TMP/notify.sock"
		NOTIFY_SOCKET=$TMP/notify.sock start_forqd notify --shm-name "$Q8" --workers 1 \
			--http off --tcp off --handler exec:env --tasks "$TMP/notify_task.txt" \
			--results "$TMP/notify.jsonl"
		wait_for 20 grep -qs done "$TMP/notify.jsonl"
		stop_forqd "$FORQD_PID" 30
		local code=$EXIT_CODE
		wait_exit "$sock_pid" 10
		echo "exit: $code" >>"$TMP/notify.out"
	fi
	check "NOTIFY_SOCKET: READY=1 first" grep -qx 'first: READY=1' "$TMP/notify.out"
	check "... STOPPING=1 on SIGTERM, exit 0" \
		bash -c "grep -qx 'then: STOPPING=1' '$TMP/notify.out' && grep -qx 'exit: 0' '$TMP/notify.out'"
	check "... and a handler's environment has no NOTIFY_SOCKET" \
		bash -c "grep -q '\"status\":\"done\".*PATH=' '$TMP/notify.jsonl' && ! grep -q NOTIFY_SOCKET '$TMP/notify.jsonl'"
}
part notify_socket "systemd's readiness protocol on NOTIFY_SOCKET"

# The admin token is read once and unset: a handler's environment never has it.
admin_token_env() {
	new_shm Q7
	printf 'x\n' >"$TMP/env_task.txt"
	FORQ_ADMIN_TOKEN=secret-token-not-for-children timeout 60 "$FORQD" --shm-name "$Q7" \
		--handler 'exec:env' --tasks "$TMP/env_task.txt" --exit-when-done --workers 1 --http off \
		--tcp off --results "$TMP/env.jsonl" 2>"$TMP/env.log"
	check "an exec: handler ran and printed its environment" grep -q '"status":"done".*PATH=' "$TMP/env.jsonl"
	check "... without the admin token in it" bash -c "! grep -q 'secret-token-not-for-children' '$TMP/env.jsonl'"
}
part admin_token_env "no admin token in a handler's environment"

help_text() {
	"$FORQD" --help >"$TMP/help.txt"
	check "--help lists every flag with its default" bash -c "grep -q -- '--capacity N' '$TMP/help.txt' && grep -q 'default: 65536' '$TMP/help.txt' && [ \$(grep -c -- '  --' '$TMP/help.txt') -ge 25 ]"
}
part help_text "forqd --help"

idle_sigterm() {
	idle_forqd || return
	stop_forqd "$idle_pid" 60
	check "forqd exits 0 on SIGTERM when idle (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	check "no shared memory left" [ ! -e "/dev/shm$Q3" ]
}
part idle_sigterm "the idle forqd: SIGTERM, exit 0, no shared memory left"
finish
