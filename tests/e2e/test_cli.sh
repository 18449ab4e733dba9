#!/usr/bin/env bash
# test_cli.sh — the `forq` tool against real forqd processes: push (arguments
# and --file, with bad lines by FILE:LINE), priorities, a full queue, stats
# --json against what was pushed, status of a task, dead letters and their
# re-queue, SIGTERM with --drain-timeout 1 while slow tasks remain (each task
# one result line, the leftover ones unfinished), usage errors (exit 2), no
# queue (exit 3), a small `forq bench` whose figures must be sane, and a
# rate-limited one whose progress lines (one a second) must add up. Every
# forqd is stopped with SIGTERM and must exit 0; no /dev/shm/forq-e2e-cli-*
# may be left.
set -u
. "$(dirname "$0")/lib.sh"

T=20 # seconds any one forq command may take

# cli_shm VAR: a unique queue name for this test, removed at exit.
cli_shm() {
	local n="/forq-e2e-cli-$$-${#SHMS[@]}"
	SHMS+=("$n")
	printf -v "$1" '%s' "$n"
}

# run_forq OUT ERR ARGS...: runs forq with a time limit; sets RC.
run_forq() {
	local out=$1 err=$2
	shift 2
	timeout "$T" "$FORQ" "$@" >"$out" 2>"$err"
	RC=$?
}

# result_of ID FILE: the results line of task ID.
result_of() {
	grep "^{\"id\":$1," "$2"
}

# json_get FILE KEY.PATH: a value of a JSON object, printed by python3.
json_get() {
	python3 -c 'import json,sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v = v[k]
print(str(v).lower() if isinstance(v, bool) else v)' "$1" "$2"
}

# stat_is SHM KEY VALUE: `forq stats --json` has KEY = VALUE.
stat_is() {
	timeout "$T" "$FORQ" stats --shm-name "$1" --json >"$TMP/stat_is.json" 2>/dev/null &&
		[ "$(json_get "$TMP/stat_is.json" "$2")" = "$3" ]
}

is_ids() { # is_ids FILE N: N lines, each a task id
	[ "$(grep -c '^[0-9][0-9]*$' "$1")" -eq "$2" ] && [ "$(wc -l <"$1")" -eq "$2" ]
}

# --- usage and the missing queue (no forqd needed) ---
help_texts() {
	run_forq "$TMP/o" "$TMP/e"
	check "forq with no command: exit 2 (got $RC)" [ "$RC" -eq 2 ]
	run_forq "$TMP/o" "$TMP/e" --help
	check "forq --help: exit 0, lists the commands and exit codes" \
		sh -c "[ $RC -eq 0 ] && grep -q 'retry-dead' '$TMP/o' && grep -q '3  cannot open the queue' '$TMP/o'"
	run_forq "$TMP/o" "$TMP/e" push --help
	check "forq push --help lists --timeout with its default" grep -q -- '--timeout MS.*default: 5000' "$TMP/o"
	run_forq "$TMP/o" "$TMP/e" bench --help
	check "forq bench --help lists --payload-bytes with its default" \
		grep -q -- '--payload-bytes N.*default: 8' "$TMP/o"
}
part help_texts "forq --help and its commands' --help"
usage_case() { # usage_case WHAT EXPECTED-STDERR ARGS...
	local what=$1 msg=$2
	shift 2
	run_forq "$TMP/o" "$TMP/e" "$@"
	if [ "$RC" -eq 2 ] && grep -q -- "$msg" "$TMP/e"; then
		ok "usage error, exit 2: $what"
	else
		bad "usage error, exit 2: $what (got $RC: $(head -c 200 "$TMP/e"))"
	fi
}
usage_errors() {
	usage_case "unknown command" 'unknown command "frobnicate"' frobnicate
	usage_case "unknown flag" 'unknown flag "--bogus"' push --bogus 1+2
	usage_case "flag without its value" 'missing value' push 1+2 --timeout
	usage_case "bad priority" 'unknown priority "urgent" (use high, normal or low)' push --priority urgent 1+2
	usage_case "timeout not a number" '--timeout: expected a whole number' push --timeout soon 1+2
	usage_case "push with nothing to push" 'nothing to push' push
	usage_case "push with both arguments and --file" 'not both' push --file /dev/null 1+2
	usage_case "status without an id" 'expected one task ID' status
	usage_case "status with a bad id" '"abc" is not a task id' status abc
	usage_case "retry-dead without ids or --all" 'ID... or --all' retry-dead
	usage_case "stats with an argument" 'unexpected argument' stats extra
	usage_case "bench with 0 workers" '--workers: expected a whole number from 1' bench --workers 0
	usage_case "bench with a batch over 256" '--batch: expected a whole number' bench --batch 1000
}
part usage_errors "usage errors: exit 2"

no_queue() {
	run_forq "$TMP/o" "$TMP/e" stats --shm-name "/forq-e2e-cli-$$-none"
	check "no queue: exit 3 (got $RC)" [ "$RC" -eq 3 ]
	check "no queue: the message names it and asks for forqd" \
		grep -q "no queue named /forq-e2e-cli-$$-none (is forqd running?)" "$TMP/e"
	run_forq "$TMP/o" "$TMP/e" push --shm-name "/forq-e2e-cli-$$-none" 1+2
	check "push with no queue: exit 3 (got $RC)" [ "$RC" -eq 3 ]
}
part no_queue "forq without a queue: exit 3"

# --- forqd A: arithmetic, results to a file ---
arith_queue() {
	cli_shm QA
	RES="$TMP/results_a.jsonl"
	if start_forqd forqd_a --shm-name "$QA" --http off --tcp off --handler arith --workers 1 --results "$RES"; then
		PA=$FORQD_PID
		run_forq "$TMP/o" "$TMP/e" push --shm-name "$QA" 1+2
		check "push 1+2: exit 0 (got $RC)" [ "$RC" -eq 0 ]
		check "push 1+2 prints one id" is_ids "$TMP/o" 1
		ID1=$(head -n 1 "$TMP/o")
		wait_for 10 result_of "$ID1" "$RES" >/dev/null
		check "the result file has \"result\":\"3\" for task $ID1" \
			sh -c "grep '^{\"id\":$ID1,' '$RES' | grep -q '\"status\":\"done\",\"result\":\"3\"'"

		run_forq "$TMP/o" "$TMP/e" push --shm-name "$QA" '2*3' '(1+2)*4' '7/0'
		check "push of three arguments prints three ids" is_ids "$TMP/o" 3
		check "ids are in argument order" [ "$(sort -n "$TMP/o" | tr '\n' ' ')" = "$(tr '\n' ' ' <"$TMP/o")" ]
		mapfile -t IDS <"$TMP/o"
		wait_for 10 result_of "${IDS[2]}" "$RES" >/dev/null
		check "each argument's own result (6, 12, division by zero)" sh -c "
			grep '^{\"id\":${IDS[0]},' '$RES' | grep -q '\"result\":\"6\"' &&
			grep '^{\"id\":${IDS[1]},' '$RES' | grep -q '\"result\":\"12\"' &&
			grep '^{\"id\":${IDS[2]},' '$RES' | grep -q '\"status\":\"failed\",\"error\":\"division by zero\"'"

		run_forq "$TMP/o" "$TMP/e" status --shm-name "$QA" "$ID1"
		check "status of a finished task: done with its result" \
			sh -c "[ $RC -eq 0 ] && grep -q '^status  *done' '$TMP/o' && grep -q '^result  *3$' '$TMP/o'"
		run_forq "$TMP/o" "$TMP/e" status --shm-name "$QA" --json "${IDS[2]}"
		check "status --json of a failed task has its error" \
			[ "$(json_get "$TMP/o" status)/$(json_get "$TMP/o" error)" = "failed/division by zero" ]
		run_forq "$TMP/o" "$TMP/e" status --shm-name "$QA" 999999
		check "status of an unknown id: exit 1 with a reason (got $RC)" \
			sh -c "[ $RC -eq 1 ] && grep -q 'task 999999 is unknown' '$TMP/e'"

		# A tasks file: good lines, bad lines, comments, priorities.
		F="$TMP/tasks.txt"
		printf '%s\n' '10+1' 'priority=urgent 1+1' '# a comment' '' 'priority=high 20+2' \
			'priority=low' 'priority=low 30+3' '40+4' >"$F"
		run_forq "$TMP/o" "$TMP/e" push --shm-name "$QA" --file "$F"
		check "push --file with bad lines: exit 1 (got $RC)" [ "$RC" -eq 1 ]
		check "bad priority reported as FILE:2" grep -q "^$F:2: unknown priority \"urgent\"" "$TMP/e"
		check "empty payload reported as FILE:6" grep -q "^$F:6: empty payload after priority=low" "$TMP/e"
		check "the four good lines were pushed (four ids)" is_ids "$TMP/o" 4
		mapfile -t FIDS <"$TMP/o"
		wait_for 10 sh -c "for i in ${FIDS[*]}; do grep -q \"^{\\\"id\\\":\$i,\" '$RES' || exit 1; done"
		check "good lines done with their results and priorities" sh -c "
			grep '^{\"id\":${FIDS[0]},' '$RES' | grep -q '\"result\":\"11\".*\"priority\":\"normal\"' &&
			grep '^{\"id\":${FIDS[1]},' '$RES' | grep -q '\"result\":\"22\".*\"priority\":\"high\"' &&
			grep '^{\"id\":${FIDS[2]},' '$RES' | grep -q '\"result\":\"33\".*\"priority\":\"low\"' &&
			grep '^{\"id\":${FIDS[3]},' '$RES' | grep -q '\"result\":\"44\".*\"priority\":\"normal\"'"
		printf '50+5\n60+6\n' | timeout "$T" "$FORQ" push --shm-name "$QA" --file - >"$TMP/o" 2>"$TMP/e"
		check "push --file - reads stdin" is_ids "$TMP/o" 2
		run_forq "$TMP/o" "$TMP/e" push --shm-name "$QA" --priority low 2+2
		ID_LOW=$(cat "$TMP/o")
		wait_for 10 result_of "$ID_LOW" "$RES" >/dev/null
		check "push --priority low: the task runs as low" \
			sh -c "grep '^{\"id\":$ID_LOW,' '$RES' | grep -q '\"priority\":\"low\"'"

		# stats --json against what this test pushed: 1 + 3 + 4 + 2 + 1 = 11
		# tasks, one failed (7/0), all finished.
		wait_for 10 sh -c "[ \$(wc -l <'$RES') -ge 11 ]"
		run_forq "$TMP/o" "$TMP/e" stats --shm-name "$QA" --json
		check "stats --json: exit 0 and valid JSON" sh -c "[ $RC -eq 0 ] && python3 -m json.tool '$TMP/o' >/dev/null"
		check "stats --json: enqueued 11" [ "$(json_get "$TMP/o" enqueued)" = 11 ]
		check "stats --json: done 10, failed 1" \
			[ "$(json_get "$TMP/o" done)/$(json_get "$TMP/o" failed)" = "10/1" ]
		# By lane: high 20+2; low 30+3 and 2+2; normal the other 8, 7/0 among them.
		check "stats --json: by lane, high 1/1 done, low 2/2 done, normal 8 with 7 done, 1 failed" \
			[ "$(json_get "$TMP/o" lanes.high.enqueued)/$(json_get "$TMP/o" lanes.high.done)/$(json_get "$TMP/o" lanes.low.started)/$(json_get "$TMP/o" lanes.low.done)/$(json_get "$TMP/o" lanes.normal.enqueued)/$(json_get "$TMP/o" lanes.normal.done)/$(json_get "$TMP/o" lanes.normal.failed)" = "1/1/2/2/8/7/1" ]
		check "stats --json: nothing pending or in progress" \
			[ "$(json_get "$TMP/o" pending_total)/$(json_get "$TMP/o" in_progress)" = "0/0" ]
		check "stats --json: capacity 65536, accepting" \
			[ "$(json_get "$TMP/o" capacity)/$(json_get "$TMP/o" accepting)" = "65536/true" ]
		check "11 result lines in the file" [ "$(wc -l <"$RES")" -eq 11 ]
		run_forq "$TMP/o" "$TMP/e" stats --shm-name "$QA"
		check "stats (text) shows done 10 (by lane, then the total)" \
			grep -qE '^done +[0-9]+ +[0-9]+ +[0-9]+ +10$' "$TMP/o"
		stop_forqd "$PA"
		check "arith queue: forqd exits 0 after SIGTERM (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	else
		bad "forqd on $QA did not start (log: $(tail -n 3 "$FORQD_LOG"))"
	fi
}
part arith_queue "forqd A: arithmetic, results to a file"

# --- forqd B: no consumers, 4 tasks a lane: pending by priority, full queue ---
full_queue() {
	cli_shm QB
	if start_forqd forqd_b --shm-name "$QB" --http off --tcp off --workers 0 --capacity 4 --drain-timeout 1 --results off; then
		PB=$FORQD_PID
		run_forq "$TMP/o" "$TMP/e" push --shm-name "$QB" --priority high h1 h2
		mapfile -t HIDS <"$TMP/o"
		run_forq "$TMP/o" "$TMP/e" push --shm-name "$QB" --priority low l1
		run_forq "$TMP/o" "$TMP/e" push --shm-name "$QB" n1 n2 n3 n4 n5 n6 --timeout 300
		check "a full queue fails after --timeout: exit 1 (got $RC)" [ "$RC" -eq 1 ]
		check "a full queue says so" grep -q "queue full" "$TMP/e"
		check "what was pushed before the queue filled is printed (4 ids)" is_ids "$TMP/o" 4
		run_forq "$TMP/o" "$TMP/e" stats --shm-name "$QB" --json
		check "stats --json pending by priority: high 2, normal 4, low 1" \
			[ "$(json_get "$TMP/o" pending.high)/$(json_get "$TMP/o" pending.normal)/$(json_get "$TMP/o" pending.low)" = "2/4/1" ]
		check "stats --json: enqueued 7, done 0, capacity 4" \
			[ "$(json_get "$TMP/o" enqueued)/$(json_get "$TMP/o" done)/$(json_get "$TMP/o" capacity)" = "7/0/4" ]
		run_forq "$TMP/o" "$TMP/e" status --shm-name "$QB" "${HIDS[0]}"
		check "status of a queued task: pending" grep -q '^status  *pending' "$TMP/o"
		stop_forqd "$PB"
		check "idle queue: forqd exits 0 after SIGTERM (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	else
		bad "forqd on $QB did not start (log: $(tail -n 3 "$FORQD_LOG"))"
	fi
}
part full_queue "forqd B: no consumers, 4 tasks a lane: pending by priority, full queue"

# --- forqd C: one consumer, one task at a time: priority order ---
# Every task waits for a gate file: the first one holds the only consumer
# while three tasks of rising priority arrive, then the gate opens.
priority_order() {
	cli_shm QC
	RESC="$TMP/results_c.jsonl"
	GATE="$TMP/gate"
	if start_forqd forqd_c --shm-name "$QC" --http off --tcp off --workers 1 --batch 1 --results "$RESC" \
		--handler "exec:while [ ! -e '$GATE' ]; do sleep 0.02; done; cat"; then
		PC=$FORQD_PID
		run_forq "$TMP/o" "$TMP/e" push --shm-name "$QC" first
		IDC=$(cat "$TMP/o")
		wait_for 10 stat_is "$QC" in_progress 1
		run_forq "$TMP/o" "$TMP/e" status --shm-name "$QC" "$IDC"
		check "status of the task being run: running" grep -q '^status  *running' "$TMP/o"
		"$FORQ" push --shm-name "$QC" --priority low low >/dev/null
		"$FORQ" push --shm-name "$QC" normal >/dev/null
		"$FORQ" push --shm-name "$QC" --priority high high >/dev/null
		touch "$GATE"
		wait_for 10 sh -c "[ \$(wc -l <'$RESC') -ge 4 ]"
		order=$(sed -n 's/.*"task":"\([a-z]*\)".*/\1/p' "$RESC" | tr '\n' ' ')
		check "tasks run by priority: first high normal low (got: $order)" [ "$order" = "first high normal low " ]
		stop_forqd "$PC"
		check "priority queue: forqd exits 0 after SIGTERM (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	else
		bad "forqd on $QC did not start (log: $(tail -n 3 "$FORQD_LOG"))"
	fi
}
part priority_order "forqd C: one consumer, one task at a time: priority order"

# --- forqd D: a handler that always fails transiently -> dead letters ---
dead_letters() {
	cli_shm QD
	if start_forqd forqd_d --shm-name "$QD" --http off --tcp off --workers 1 --handler 'exec:sh -c "exit 3"' \
		--max-attempts 2 --retry-backoff 10 --results "$TMP/results_d.jsonl"; then
		PD=$FORQD_PID
		run_forq "$TMP/o" "$TMP/e" push --shm-name "$QD" doomed
		IDD=$(cat "$TMP/o")
		wait_for 10 sh -c "'$FORQ' dead --shm-name '$QD' | grep -q '^$IDD '"
		run_forq "$TMP/o" "$TMP/e" dead --shm-name "$QD"
		check "forq dead lists the task (id, priority, attempts, error, payload)" \
			grep -q "^$IDD  *normal  *2  *20[0-9-]*T[0-9:.]*Z  *\"exit status 3\"  *\"doomed\"$" "$TMP/o"
		run_forq "$TMP/o" "$TMP/e" dead --shm-name "$QD" --json
		check "forq dead --json has it" \
			[ "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["dead_letters"]; print(len(d), d[0]["id"], d[0]["payload"], d[0]["attempts"])' "$TMP/o")" = "1 $IDD doomed 2" ]
		run_forq "$TMP/o" "$TMP/e" status --shm-name "$QD" "$IDD"
		check "status of a dead task: dead, with its error" \
			sh -c "grep -q '^status  *dead' '$TMP/o' && grep -q '^error  *exit status 3' '$TMP/o'"
		run_forq "$TMP/o" "$TMP/e" retry-dead --shm-name "$QD" 424242
		check "retry-dead of an unknown id: exit 1 (got $RC)" \
			sh -c "[ $RC -eq 1 ] && grep -q 'no dead letter with id 424242' '$TMP/e'"
		run_forq "$TMP/o" "$TMP/e" retry-dead --shm-name "$QD" --all
		check "retry-dead --all re-queues it (exit $RC)" \
			sh -c "[ $RC -eq 0 ] && grep -q '^re-queued 1 dead letter$' '$TMP/o'"
		# It runs again, fails twice more and is dead again.
		wait_for 10 stat_is "$QD" dead 2
		run_forq "$TMP/o" "$TMP/e" stats --shm-name "$QD" --json
		check "after the re-queue it ran again: dead 2, retried 2, 1 dead letter" \
			[ "$(json_get "$TMP/o" dead)/$(json_get "$TMP/o" retried)/$(json_get "$TMP/o" dead_letters)" = "2/2/1" ]
		stop_forqd "$PD"
		check "dead-letter queue: forqd exits 0 after SIGTERM (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	else
		bad "forqd on $QD did not start (log: $(tail -n 3 "$FORQD_LOG"))"
	fi
}
part dead_letters "forqd D: a handler that always fails transiently -> dead letters"

# --- forqd E: SIGTERM with --drain-timeout 1 while slow tasks remain ---
# 40 tasks of 0.2 s each on one consumer need 8 s: the drain stops after 1 s
# and the tasks left are written as unfinished, one line per task.
drain_timeout() {
	cli_shm QE
	RESE="$TMP/results_e.jsonl"
	if start_forqd forqd_e --shm-name "$QE" --http off --tcp off --workers 1 --batch 1 --drain-timeout 1 \
		--handler 'exec:sleep 0.2; cat' --results "$RESE"; then
		PE=$FORQD_PID
		run_forq "$TMP/o" "$TMP/e" push --shm-name "$QE" $(seq -f 'slow%g' 1 40)
		check "push of 40 slow tasks prints 40 ids" is_ids "$TMP/o" 40
		cp "$TMP/o" "$TMP/ids_e"
		wait_for 10 grep -q '"status":"done"' "$RESE"
		stop_forqd "$PE" 30
		check "SIGTERM with --drain-timeout 1 and tasks left: forqd exits 0 (got $EXIT_CODE)" \
			[ "$EXIT_CODE" -eq 0 ]
		python3 - "$RESE" "$TMP/ids_e" >"$TMP/drain.check" 2>&1 <<'EOF'
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
pushed = [int(l) for l in open(sys.argv[2])]
per_id = collections.Counter(r["id"] for r in rows)
st = collections.Counter(r["status"] for r in rows)
bad = []
if sorted(per_id) != sorted(pushed): bad.append("ids differ from the pushed ones")
if any(n != 1 for n in per_id.values()): bad.append("an id has several lines")
if set(st) - {"done", "unfinished"}: bad.append(f"statuses {dict(st)}")
if not st["done"] or not st["unfinished"]: bad.append("want both done and unfinished")
if any(r["status"] == "done" and r["result"] != r["task"] for r in rows):
    bad.append("a done result is not its payload")
print("ok" if not bad else "; ".join(bad), f"lines={len(rows)} pushed={len(pushed)}",
      " ".join(f"{k}={v}" for k, v in sorted(st.items())))
EOF
		check "... every pushed task has exactly one result line, the rest unfinished ($(cat "$TMP/drain.check"))" \
			grep -q '^ok ' "$TMP/drain.check"
		unf=$(grep -c '"status":"unfinished","error":"forqd stopped before it ran"' "$RESE")
		check "... the drain stopped at its timeout and logged the $unf unfinished" sh -c \
			"grep -q 'event=stopping reason=\"drain timeout\"' '$TMP/forqd_e.log' &&
			 grep -q 'event=tasks_unfinished count=$unf ' '$TMP/forqd_e.log'"
		check "... the queue is removed" [ ! -e "/dev/shm$QE" ]
	else
		bad "forqd on $QE did not start (log: $(tail -n 3 "$FORQD_LOG"))"
	fi
}
part drain_timeout "forqd E: SIGTERM with --drain-timeout 1 while slow tasks remain"

# --- forq bench: a private forqd, sane figures ---
bench() {
	before=$(ls /dev/shm | grep -c '^forq-bench-')
	timeout 120 "$FORQ" bench --tasks 200000 --workers 1 --handler noop --json --quiet \
		>"$TMP/bench.json" 2>"$TMP/bench.err"
	RC=$?
	check "forq bench exits 0 (got $RC: $(tail -n 2 "$TMP/bench.err"))" [ "$RC" -eq 0 ]
	python3 - "$TMP/bench.json" >"$TMP/bench.check" 2>&1 <<'EOF'
import json, sys
b = json.load(open(sys.argv[1]))
bad = []
if b["tasks"] != 200000 or b["done"] != 200000: bad.append("tasks/done %s/%s" % (b["tasks"], b["done"]))
if not b["tasks_per_s"] > 0: bad.append("tasks_per_s %s" % b["tasks_per_s"])
if not 0 <= b["wait_p50_us"] <= b["wait_p99_us"] <= b["wait_p999_us"]: bad.append("wait percentiles out of order")
if not 0 <= b["run_p50_us"] <= b["run_p99_us"]: bad.append("run percentiles out of order")
if not b["cpu_ns_per_task"] > 0: bad.append("cpu_ns_per_task %s" % b["cpu_ns_per_task"])
if not b["peak_rss_kib"] > 0: bad.append("peak_rss_kib %s" % b["peak_rss_kib"])
if not 0 < b["private_kib"] < b["peak_rss_kib"]: bad.append("private_kib %s of %s" % (b["private_kib"], b["peak_rss_kib"]))
if not b["seconds"] > 0: bad.append("seconds %s" % b["seconds"])
if (b["workers"], b["batch"], b["payload_bytes"], b["handler"]) != (1, 64, 8, "noop"): bad.append("setup echoed wrong")
print("ok" if not bad else "; ".join(bad), "%.0f tasks/s" % b["tasks_per_s"])
EOF
	check "bench figures are sane ($(cat "$TMP/bench.check"))" grep -q '^ok ' "$TMP/bench.check"
	check "bench removed its queue" [ "$(ls /dev/shm | grep -c '^forq-bench-')" -le "$before" ]
}
part bench "forq bench: a private forqd, sane figures"

# --- forq bench --queues 3: three named queues, every task done, all removed ---
bench_queues() {
	before=$(ls /dev/shm | grep -c '^forq-bench-')
	timeout 120 "$FORQ" bench --tasks 90000 --workers 1 --queues 3 --handler noop --json --quiet \
		>"$TMP/benchq.json" 2>"$TMP/benchq.err"
	RC=$?
	check "forq bench --queues 3 exits 0 (got $RC: $(tail -n 2 "$TMP/benchq.err"))" [ "$RC" -eq 0 ]
	check "... all 90000 done in 3 queues" python3 -c "
import json, sys
b = json.load(open('$TMP/benchq.json'))
sys.exit(not (b['queues'] == 3 and b['done'] == 90000 and b['tasks_per_s'] > 0))"
	check "... no queue object or config file left" \
		bash -c "[ \$(ls /dev/shm | grep -c '^forq-bench-') -le $before ] &&
			 ! ls /tmp/forq-bench-*.conf >/dev/null 2>&1"
}
part bench_queues "forq bench --queues 3: named queues, round robin, cleaned up"

# --- forq bench --journal --fsync always: pipelined (a sync per 4096 tasks)
# and per batch, every task done, push-to-journaled percentiles in order ---
bench_journal() {
	local se
	for se in 4096 0; do
		timeout 120 "$FORQ" bench --tasks 40000 --workers 1 --handler noop --json --quiet \
			--journal "$TMP/bench_journal" --fsync always --sync-every $se \
			>"$TMP/benchj.json" 2>"$TMP/benchj.err"
		RC=$?
		check "forq bench --journal --sync-every $se exits 0 (got $RC: $(tail -n 2 "$TMP/benchj.err"))" \
			[ "$RC" -eq 0 ]
		check "... all 40000 done; durable p50 <= p99; syncs as asked" python3 -c "
import json, sys
b = json.load(open('$TMP/benchj.json'))
syncs = 40000 // 4096 + 1 if $se else 0
sys.exit(not (b['done'] == 40000 and b['sync_every'] == $se and b['syncs'] == syncs and
	      0 < b['durable_p50_us'] <= b['durable_p99_us'] < 60e6))"
	done
	"$FORQ" bench --tasks 10 --journal "$TMP/bench_journal" --sync-every -1 >/dev/null 2>"$TMP/benchj.err"
	RC=$?
	check "--sync-every -1 is refused (exit 2: $(cat "$TMP/benchj.err"))" [ "$RC" -eq 2 ]
}
part bench_journal "forq bench --journal --fsync always --sync-every 4096 and 0" bench_journal

# --- forq bench without --quiet: a progress line a second, then the summary ---
# 250,000 tasks at --rate 100000 take 2.5 s to push: at least two progress
# lines on stderr while it runs, then the text summary on stdout.
bench_progress() {
	before=$(ls /dev/shm | grep -c '^forq-bench-')
	timeout 120 "$FORQ" bench --tasks 250000 --rate 100000 --workers 1 --batch 64 --payload-bytes 8 \
		--handler noop >"$TMP/bench_rate.out" 2>"$TMP/bench_rate.err"
	RC=$?
	check "forq bench --rate 100000 exits 0 (got $RC: $(tail -n 1 "$TMP/bench_rate.err"))" [ "$RC" -eq 0 ]
	python3 - "$TMP/bench_rate.err" "$TMP/bench_rate.out" >"$TMP/progress.check" 2>&1 <<'EOF'
import re, sys
err, out = open(sys.argv[1]).read(), open(sys.argv[2]).read()
N = 250000
pat = re.compile(r"^forq bench: (\d+) pushed, (\d+) of (\d+) done, (\d+) tasks/s$")
rows = [tuple(map(int, m.groups())) for m in map(pat.match, err.splitlines()) if m]
bad = []
if len(rows) < 2: bad.append(f"{len(rows)} progress lines")
prev_p = prev_d = 0
for p, d, n, r in rows:
    if n != N: bad.append(f"total {n}")
    if not d <= p <= N: bad.append(f"{d} done of {p} pushed")
    if p < prev_p or d < prev_d: bad.append("counts went back")
    # a line comes >= 1 s after the last: its rate is at most what finished since
    if r > d - prev_d + 1: bad.append(f"{r} tasks/s with {d - prev_d} done since the last line")
    prev_p, prev_d = p, d
if rows and not 0 < rows[0][0] < N: bad.append(f"first line: {rows[0][0]} pushed (the push lasts 2.5 s)")
if not any(r > 0 for *_, r in rows): bad.append("no line with a rate")
if not re.search(r"^tasks +250000 \(done 250000, failed 0, dead 0\)$", out, re.M): bad.append("no tasks line")
if not re.search(r"^rate +100000 tasks/s asked$", out, re.M): bad.append("no rate line")
m = re.search(r"^throughput +(\d+) tasks/s \(([\d.]+) s from first push to last done; pushing took ([\d.]+) s\)$", out, re.M)
if not m: bad.append("no throughput line")
else:
    tps, secs, push = int(m[1]), float(m[2]), float(m[3])
    if not 2.4 <= push <= secs: bad.append(f"pushing took {push} s of {secs} s")
    if not 0 < tps <= 101000: bad.append(f"throughput {tps} tasks/s at a rate of 100000")
print("ok" if not bad else "; ".join(bad), f"{len(rows)} progress lines;",
      " | ".join(f"{p} pushed {d} done {r}/s" for p, d, n, r in rows))
EOF
	check "bench progress: a line a second, counts and rates consistent, then the summary ($(cat "$TMP/progress.check"))" \
		grep -q '^ok ' "$TMP/progress.check"
	check "the rate-limited bench removed its queue too" \
		[ "$(ls /dev/shm | grep -c '^forq-bench-')" -le "$before" ]
}
part bench_progress "forq bench without --quiet: a progress line a second, then the summary"

left=$(ls /dev/shm | grep -c "^forq-e2e-cli-$$-")
check "no /dev/shm/forq-e2e-cli-$$-* left" [ "$left" -eq 0 ]
finish
