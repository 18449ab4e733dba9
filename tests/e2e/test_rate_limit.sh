#!/usr/bin/env bash
# test_rate_limit.sh — forqd --rate: at most N task starts a second, shared by
# local consumers and remote workers (issue 15). Only lower bounds on time are
# checked (a slow machine only makes starts later), and bounds that catch a
# hang:
#   1. local: 2 consumers, --rate 40 --rate-burst 4, 80 tasks: no sooner than
#      the limit allows, every result right, the limit and the wait in
#      /metrics and /stats;
#   2. remote: a worker over TCP (GET_TASKS with WAIT) under --rate 20
#      --rate-burst 2 gets its 30 tasks no faster either, and is woken for
#      each next start (no push in between to wake it).
set -u
. "$(dirname "$0")/lib.sh"
need_binaries "$FORQD" "$FORQ"
command -v curl >/dev/null || skip_all "no curl"

local_consumers() {
	seq 1 80 | sed 's/$/+1/' >"$TMP/tasks.txt"
	local t0 t1
	t0=$(date +%s%N)
	start_forqd local --workers 2 --rate 40 --rate-burst 4 --tasks "$TMP/tasks.txt" \
		--results "$TMP/local.jsonl" || { bad "forqd --rate 40 starts"; return; }
	check "all 80 tasks are done" wait_for 30 sh -c "[ \$(grep -c '\"status\":\"done\"' '$TMP/local.jsonl') -eq 80 ]"
	t1=$(date +%s%N)
	local ms=$(((t1 - t0) / 1000000))
	check "  ... no sooner than 76 starts at 40 a second allow (took $ms ms, >= 1800)" [ "$ms" -ge 1800 ]
	check "  ... every result right" sh -c "! grep -v '\"result\":\"' '$TMP/local.jsonl' | grep -q ."
	curl -fsS "127.0.0.1:$HTTP_PORT/metrics" >"$TMP/metrics"
	check "forq_queue_rate_limit is 40" grep -qx 'forq_queue_rate_limit{queue="default"} 40' "$TMP/metrics"
	check "forq_queue_rate_limited_seconds_total is above 0" \
		awk '/^forq_queue_rate_limited_seconds_total\{queue="default"\} / { ok = $2 > 0 } END { exit !ok }' "$TMP/metrics"
	check "/stats says rate_limit 40" sh -c "curl -fsS 127.0.0.1:$HTTP_PORT/stats | grep -q '\"rate_limit\":40'"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}
part local_consumers "2 consumers under --rate 40"

remote_worker() {
	start_forqd remote --workers 0 --rate 20 --rate-burst 2 --results "$TMP/remote.jsonl" ||
		{ bad "forqd --workers 0 --rate 20 starts"; return; }
	seq 1 30 | sed 's/$/+1/' | "$FORQ" push --shm-name "$FORQD_SHM" --file - >/dev/null
	local t0 t1 ms
	t0=$(date +%s%N)
	timeout 60 "$FORQ" worker --connect "127.0.0.1:$TCP_PORT" --handler arith --max-tasks 30 \
		--quiet >"$TMP/worker.log" 2>&1
	local code=$?
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	check "the worker does its 30 tasks and exits 0 (got $code)" [ "$code" -eq 0 ]
	check "  ... no sooner than 28 starts at 20 a second allow (took $ms ms, >= 1250)" [ "$ms" -ge 1250 ]
	check "  ... all 30 results written" wait_for 5 sh -c "[ \$(grep -c '\"status\":\"done\"' '$TMP/remote.jsonl') -eq 30 ]"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}
part remote_worker "a remote worker under --rate 20"

finish
