#!/usr/bin/env bash
# test_queue_controls.sh — pause, resume and purge of forqd's queue
# ("default") through every surface: the forq tool, HTTP POST
# /queues/default/..., TCP PAUSE/RESUME/PURGE. While paused nothing starts
# (local consumers or remote workers) for a window of ~1 s, pushes go on,
# and resume runs them all; the pause outlives kill -9 of forqd and its
# restart; a purge writes one "purged" record per dropped task and none of
# them runs; the admin token guards the controls once one is set; a bad
# queue name is refused on each surface with nothing changed. /metrics
# (promtool-clean when promtool is here), /stats, forq stats and the log
# show it all. A queued task is cancelled by id on each surface, once. Dead
# letters of a named queue are listed (GET /queues/NAME/dead, TCP DEAD) and
# re-queued (POST .../dead/retry, TCP RETRY_DEAD) with every result record
# checked.
# Parts (for ONLY=, see lib.sh): pause_resume, mid_batch, remote_wait, kill9,
# purge, dead_letters, cancel, cancel_running, token, bad_names.
. "$(dirname "$0")/lib.sh"

need_binaries "$FORQD" "$FORQ"
tcp_client_build
unset FORQ_ADMIN_TOKEN FORQ_WORKER_TOKEN

H() { echo "http://127.0.0.1:$HTTP_PORT"; }
# tcp_replies LINE...: sends the lines (CRLF-ended) and EXIT on one connection;
# prints the reply lines (without CR).
tcp_replies() {
	local l
	for l in "$@" EXIT; do printf '%s\r\n' "$l"; done |
		"$CLIENT" "127.0.0.1:$TCP_PORT" raw 1500 | tr -d '\r'
}
# tcp_says REPLY LINE...: one of the replies to the lines is REPLY.
tcp_says() {
	local want=$1
	shift
	tcp_replies "$@" | grep -qx -- "$want"
}
# post_body PATH BODY [TOKEN]: "CODE BODY" of a POST with a body.
post_body() {
	curl -s -o "$TMP/body" -w '%{http_code}' -X POST ${3:+-H "Authorization: Bearer $3"} \
		--data-binary "$2" "$(H)$1"
	printf ' %s' "$(cat "$TMP/body")"
}
# post PATH [TOKEN]: "CODE BODY" of a POST.
post() {
	curl -s -o "$TMP/body" -w '%{http_code}' -X POST ${2:+-H "Authorization: Bearer $2"} \
		"$(H)$1"
	printf ' %s' "$(cat "$TMP/body")"
}
stat_of() { curl -fsS "$(H)/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
pending() { stat_of "['pending']['total']"; }
metric() { curl -fsS "$(H)/metrics" | sed -n "s/^$1 //p"; }
lines() { [ -f "$1" ] && wc -l <"$1" || echo 0; }
# status_count FILE STATUS: result records of FILE with that status.
status_count() { grep -c "\"status\":\"$2\"" "$1" 2>/dev/null || true; }
push_cli() {
	local i args=()
	for i in $(seq "$1"); do args+=("$i+1"); done
	"$FORQ" push --shm-name "$FORQD_SHM" "${args[@]}" >>"$TMP/ids"
}

# ---- pause and resume, on each surface -------------------------------------
pause_resume() {
	local r=$TMP/pr.jsonl
	start_forqd pr --workers 2 --handler arith --results "$r" || { bad "forqd starts"; return; }
	check "forq pause default: exit 0" "$FORQ" pause default --shm-name "$FORQD_SHM"
	check "forqd logs queue_paused" wait_for 5 grep -q 'event=queue_paused queue=default' "$FORQD_LOG"
	check "/stats says paused" [ "$(stat_of "['paused']")" = True ]
	check "forq stats --json says paused" \
		bash -c "'$FORQ' stats --json --shm-name '$FORQD_SHM' | grep -q '\"paused\":true'"
	check "/metrics: forq_queue_paused{queue=\"default\"} 1" \
		[ "$(metric 'forq_queue_paused{queue="default"}')" = 1 ]
	push_cli 10
	check "HTTP POST /tasks is taken while paused (202)" \
		[ "$(curl -s -o /dev/null -w '%{http_code}' -d '[{"payload":"1+2"},{"payload":"2+2"}]' "$(H)/tasks")" = 202 ]
	check "TCP PUT is taken while paused" bash -c "'$CLIENT' 127.0.0.1:$TCP_PORT raw \
		< <(printf 'PUT 3\r\n5+5\r\nEXIT\r\n') | grep -q '^OK [0-9]'"
	check "TCP GET_TASK gets NONE while paused" [ "$(tcp_replies GET_TASK | head -1)" = NONE ]
	check "TCP GET_TASK WAIT 400 waits and gets NONE while paused" \
		[ "$(tcp_replies 'GET_TASK WAIT 400' | head -1)" = NONE ]
	sleep 1
	check "nothing started over ~1 s paused (started $(stat_of "['started']"), 13 pending)" \
		[ "$(stat_of "['started']")" = 0 -a "$(pending)" = 13 -a "$(lines "$r")" = 0 ]
	check "not stalled while paused with a backlog" [ "$(stat_of "['stalled']")" = False ]
	check "HTTP POST /queues/default/resume: 200 paused false" \
		[ "$(post /queues/default/resume)" = '200 {"queue":"default","paused":false}' ]
	check "all 13 tasks run once resumed" wait_for 10 \
		bash -c "[ \$(grep -c '\"status\":\"done\"' '$r') = 13 ]"
	check "forqd logs queue_resumed" wait_for 5 grep -q 'event=queue_resumed queue=default' \
		"$FORQD_LOG"
	check "HTTP POST /queues/default/pause: 200 paused true" \
		[ "$(post /queues/default/pause)" = '200 {"queue":"default","paused":true}' ]
	check "TCP RESUME default: OK" [ "$(tcp_replies 'RESUME default' | head -1)" = OK ]
	check "/stats says not paused" [ "$(stat_of "['paused']")" = False ]
	check "TCP PAUSE default: OK" [ "$(tcp_replies 'PAUSE default' | head -1)" = OK ]
	check "forq resume default: exit 0, queue runs" "$FORQ" resume default --shm-name "$FORQD_SHM"
	check "/metrics: forq_queue_paused{queue=\"default\"} 0" \
		[ "$(metric 'forq_queue_paused{queue="default"}')" = 0 ]
	if command -v promtool >/dev/null; then
		check "promtool check metrics passes" \
			bash -c "curl -fsS '$(H)/metrics' | promtool check metrics"
	else
		skip "promtool check metrics (promtool not installed)"
	fi
	check "the status page has the paused badge, fed by /stats's paused" \
		bash -c "curl -fsS '$(H)/' | grep -q 'id=\"paused\"' && curl -fsS '$(H)/app.js' | \
		grep -q 's.paused'"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

# ---- a pause in the middle of a consumer's batch ---------------------------
mid_batch() {
	local r=$TMP/mb.jsonl done
	start_forqd mb --workers 1 --batch 8 --handler 'exec:sleep 0.3' --results "$r" ||
		{ bad "forqd starts"; return; }
	push_cli 8
	check "the consumer starts its batch" wait_for 5 bash -c "[ \$(curl -fsS '$(H)/stats' | \
		grep -o '\"started\":[0-9]*' | head -1 | cut -d: -f2) -ge 1 ]"
	"$FORQ" pause default --shm-name "$FORQD_SHM" >/dev/null
	sleep 1.5
	done=$(lines "$r")
	check "paused mid-batch: the task running finished, the rest of the batch went back ($done done, $(pending) pending)" \
		[ "$done" -le 2 -a "$(pending)" = $((8 - done)) ]
	"$FORQ" resume default --shm-name "$FORQD_SHM" >/dev/null
	check "all 8 done after resume" wait_for 20 bash -c "[ \$(grep -c '\"status\":\"done\"' '$r') = 8 ]"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

# ---- resume wakes a remote worker parked in GET_TASK WAIT -------------------
remote_wait() {
	start_forqd rw --workers 0 --results off --drain-timeout 1 || { bad "forqd starts"; return; }
	"$FORQ" pause default --shm-name "$FORQD_SHM" >/dev/null
	push_cli 1
	printf 'GET_TASK WAIT 8000\r\n' | "$CLIENT" "127.0.0.1:$TCP_PORT" raw 3000 >"$TMP/rw.out" 2>&1 &
	local cpid=$!
	sleep 0.5
	check "resume (HTTP): 200" [ "$(post /queues/default/resume | cut -c1-3)" = 200 ]
	wait "$cpid"
	check "the parked GET_TASK WAIT 8000 got the task at the resume, not at its end" \
		grep -q '^TASK [0-9]* 1 3' "$TMP/rw.out"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

# ---- the pause survives kill -9 and a restart ------------------------------
kill9() {
	local r=$TMP/k9.jsonl shm
	start_forqd k9 --workers 2 --handler arith --results "$r" || { bad "forqd starts"; return; }
	shm=$FORQD_SHM
	check "TCP PAUSE default: OK" [ "$(tcp_replies 'PAUSE default' | head -1)" = OK ]
	push_cli 8
	kill -9 "$FORQD_PID"
	wait "$FORQD_PID" 2>/dev/null
	start_forqd k9 --shm-name "$shm" --workers 2 --handler arith --results "$r" ||
		{ bad "forqd restarts on the same queue"; return; }
	check "the restarted forqd logs the pause it found" \
		grep -q 'event=queue_paused queue=default reason=' "$FORQD_LOG"
	check "/stats says paused after kill -9 and restart" [ "$(stat_of "['paused']")" = True ]
	sleep 1
	check "nothing ran over ~1 s after the restart (8 pending, no result)" \
		[ "$(pending)" = 8 -a "$(lines "$r")" = 0 ]
	check "forq resume default: exit 0" "$FORQ" resume default --shm-name "$shm"
	check "the 8 tasks run once resumed" wait_for 10 \
		bash -c "[ \$(grep -c '\"status\":\"done\"' '$r') = 8 ]"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

# ---- purge on each surface -------------------------------------------------
purge() {
	local r=$TMP/pu.jsonl out rc
	: >"$TMP/ids"
	start_forqd pu --workers 2 --handler arith --results "$r" --keep-shm ||
		{ bad "forqd starts"; return; }
	"$FORQ" pause default --shm-name "$FORQD_SHM" >/dev/null
	push_cli 25
	out=$("$FORQ" purge default --shm-name "$FORQD_SHM")
	check "forq purge default says 25 dropped ($out)" [ "$out" = "queue default purged: 25 tasks dropped" ]
	check "25 purged records, one per task id pushed" bash -c "[ \$(grep -c '\"status\":\"purged\"' \
		'$r') = 25 ] && diff <(sort -n '$TMP/ids') <(grep -o '\"id\":[0-9]*' '$r' | cut -d: -f2 | sort -n)"
	check "each purged record says why" bash -c "! grep -v '\"error\":\"purged\"' '$r'"
	check "nothing pending after the purge" [ "$(pending)" = 0 ]
	check "GET /tasks/{id} says purged" \
		bash -c "curl -fsS '$(H)/tasks/$(head -1 "$TMP/ids")' | grep -q '\"status\":\"purged\"'"
	check "forqd logs queue_purged tasks=25" grep -q 'event=queue_purged queue=default tasks=25' \
		"$FORQD_LOG"
	push_cli 5
	check "HTTP POST /queues/default/purge: 200 purged 5" \
		[ "$(post /queues/default/purge)" = '200 {"queue":"default","purged":5}' ]
	push_cli 3
	check "TCP PURGE default: OK 3" [ "$(tcp_replies 'PURGE default' | head -1)" = 'OK 3' ]
	"$FORQ" resume default --shm-name "$FORQD_SHM" >/dev/null
	sleep 1
	check "none of the 33 purged tasks ran after resume (33 records, all purged)" \
		[ "$(lines "$r")" = 33 -a "$(status_count "$r" purged)" = 33 ]
	check "/metrics: forq_tasks_purged_total{queue=\"default\"} 33" \
		[ "$(metric 'forq_tasks_purged_total{queue="default"}')" = 33 ]
	check "/stats purged 33" [ "$(stat_of "['purged']")" = 33 ]
	push_cli 2
	check "the queue runs on after the purges (2 more done)" wait_for 10 \
		bash -c "[ \$(grep -c '\"status\":\"done\"' '$r') = 2 ]"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	"$FORQ" purge default --shm-name "$FORQD_SHM" >/dev/null 2>"$TMP/err"
	rc=$?
	check "forq purge with the queue kept but no forqd: exit 1 ($rc), says why" \
		bash -c "[ $rc = 1 ] && grep -q 'no forqd serves' '$TMP/err'"
}

# ---- the admin token -------------------------------------------------------
token() {
	local A=adm-secret-1 W=wrk-secret-2
	FORQ_ADMIN_TOKEN=$A FORQ_WORKER_TOKEN=$W start_forqd tok --workers 1 --handler arith \
		--results "$TMP/tok.jsonl" || { bad "forqd starts with tokens"; return; }
	"$FORQ" pause default --shm-name "$FORQD_SHM" >/dev/null
	push_cli 4
	check "purge without a token: 401" [ "$(post /queues/default/purge | cut -c1-3)" = 401 ]
	check "purge with a wrong token: 401" [ "$(post /queues/default/purge nope | cut -c1-3)" = 401 ]
	check "purge with the worker token: 403" [ "$(post /queues/default/purge "$W" | cut -c1-3)" = 403 ]
	check "resume with the worker token: 403" [ "$(post /queues/default/resume "$W" | cut -c1-3)" = 403 ]
	check "refused: still paused, 4 pending, no record" \
		[ "$(stat_of "['paused']")" = True -a "$(pending)" = 4 -a "$(lines "$TMP/tok.jsonl")" = 0 ]
	check "TCP PURGE without AUTH: ERR forbidden (the connection stays: PING -> PONG)" \
		[ "$(tcp_replies 'PURGE default' PING | head -2 | tr '\n' ' ')" = 'ERR forbidden PONG ' ]
	check "TCP PURGE after AUTH with the worker token: ERR forbidden" \
		tcp_says 'ERR forbidden' "AUTH $W" 'PURGE default'
	check "still 4 pending" [ "$(pending)" = 4 ]
	check "purge with the admin token: 200 purged 4" \
		[ "$(post /queues/default/purge "$A")" = '200 {"queue":"default","purged":4}' ]
	push_cli 2
	check "TCP PURGE after AUTH with the admin token: OK 2" tcp_says 'OK 2' "AUTH $A" 'PURGE default'
	check "dead-letter retry with the worker token: 403" \
		[ "$(post_body /dead/retry '{"all":true}' "$W" | cut -c1-3)" = 403 ]
	check "TCP RETRY_DEAD after AUTH with the worker token: ERR forbidden" \
		tcp_says 'ERR forbidden' "AUTH $W" 'RETRY_DEAD default ALL'
	check "dead-letter retry with the admin token: 200 (none to re-queue)" \
		[ "$(post_body /dead/retry '{"all":true}' "$A")" = '200 {"queue":"default","requeued":0}' ]
	check "resume with the admin token: 200" \
		[ "$(post /queues/default/resume "$A" | cut -c1-3)" = 200 ]
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

# ---- dead letters of a named queue: listed and re-queued on each surface ----
# dead_ids: the ids of the dead-letter JSON on stdin, on one line.
dead_ids() { python3 -c 'import json,sys; print(" ".join(str(d["id"]) for d in json.load(sys.stdin)["dead_letters"]))'; }
# records R ID: that task's result records, "status:result" each, in order.
records() {
	python3 - "$1" "$2" <<'PY'
import json, sys
print(" ".join(f'{r["status"]}:{r.get("result", r.get("error"))}:{r["queue"]}'
               for r in map(json.loads, open(sys.argv[1])) if r["id"] == int(sys.argv[2])))
PY
}
dead_letters() {
	local r=$TMP/dl.jsonl i out ids=()
	# flaky fails (exit 3) until $TMP/fixed exists, then echoes its payload.
	cat >"$TMP/flaky.sh" <<SH
#!/bin/sh
[ -e "$TMP/fixed" ] || { echo "not fixed yet" >&2; exit 3; }
cat
SH
	chmod +x "$TMP/flaky.sh"
	cat >"$TMP/dl.conf" <<CONF
results = $r
[queue default]
handler = arith
workers = 1
[queue flaky]
handler = exec:$TMP/flaky.sh
workers = 1
max-attempts = 1
CONF
	start_forqd dl --config "$TMP/dl.conf" || { bad "forqd starts with queue flaky"; return; }
	for i in 1 2 3 4; do
		out=$(curl -fsS -X POST -d "{\"payload\":\"p$i\"}" "$(H)/queues/flaky/tasks")
		ids+=("$(sed -n 's/.*"ids":\[\([0-9]*\)\].*/\1/p' <<<"$out")")
	done
	check "4 tasks pushed to flaky (${ids[*]})" [ "${#ids[3]}" -gt 0 ]
	check "each dies after its one attempt: 4 dead records" \
		wait_for 10 eval '[ "$(status_count "$r" dead)" = 4 ]'
	out=$(curl -s -w ' %{http_code}' "$(H)/queues/flaky/dead")
	check "GET /queues/flaky/dead: 200, the 4 ids oldest first" \
		eval '[ "${out##* }" = 200 ] && [ "$(dead_ids <<<"${out% *}")" = "${ids[*]}" ]'
	check "  ... each with its payload, 1 attempt, its error and when it died" python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["queue"] == "flaky", d
for i, l in enumerate(d["dead_letters"]):
    assert l["payload"] == f"p{i + 1}" and l["attempts"] == 1, l
    assert l["error"] == "exit status 3: not fixed yet" and l["priority"] == "normal", l
    assert l["died_at"].startswith("20") and l["died_at"].endswith("Z"), l' "${out% *}"
	check "TCP DEAD flaky: the same 4" \
		eval '[ "$(tcp_replies "DEAD flaky" | head -1 | dead_ids)" = "${ids[*]}" ]'
	check "GET /dead (the default queue): none" \
		[ "$(curl -s "$(H)/dead")" = '{"queue":"default","dead_letters":[]}' ]
	check "TCP DEAD (the default queue): none" \
		[ "$(tcp_replies DEAD | head -1)" = '{"queue":"default","dead_letters":[]}' ]
	# Refused, each with nothing re-queued.
	check "retry with an id that is no dead letter: 404, nothing re-queued" eval \
		'[ "$(post_body /queues/flaky/dead/retry "{\"ids\":[${ids[1]},42]}")" = "404 {\"error\":\"task 42 is no dead letter: nothing re-queued\"}" ]'
	check "retry with a bad body: 400 with the reason" eval \
		'[ "$(post_body /queues/flaky/dead/retry "{\"ids\":[0]}")" = "400 {\"error\":\"ids[0]: expected a task id (a whole number from 1)\"}" ]'
	check "retry in an unknown queue: 404" \
		[ "$(post_body /queues/nope/dead/retry '{"all":true}' | cut -c1-3)" = 404 ]
	check "GET of the retry route: 405" \
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$(H)/queues/flaky/dead/retry")" = 405 ]
	check "TCP RETRY_DEAD flaky 42: ERR not-dead" tcp_says 'ERR not-dead' "RETRY_DEAD flaky ${ids[1]} 42"
	check "TCP RETRY_DEAD nope ALL: ERR unknown-queue" tcp_says 'ERR unknown-queue' 'RETRY_DEAD nope ALL'
	check "TCP RETRY_DEAD flaky x: ERR bad-id" tcp_says 'ERR bad-id' 'RETRY_DEAD flaky x'
	check "after the refusals the 4 are still dead, none ran again" \
		eval '[ "$(curl -s "$(H)/queues/flaky/dead" | dead_ids)" = "${ids[*]}" ] && [ "$(lines "$r")" = 4 ]'
	# Fixed: one by HTTP, two by TCP, the last by HTTP's all.
	touch "$TMP/fixed"
	check "POST /queues/flaky/dead/retry one id: 200 requeued 1" \
		[ "$(post_body /queues/flaky/dead/retry "{\"ids\":[${ids[0]}]}")" = '200 {"queue":"flaky","requeued":1}' ]
	check "  ... it runs again and is done" wait_for 10 eval '[ "$(status_count "$r" done)" = 1 ]'
	check "TCP RETRY_DEAD flaky with two ids: OK 2" tcp_says 'OK 2' "RETRY_DEAD flaky ${ids[1]} ${ids[2]}"
	check "  ... both run again and are done" wait_for 10 eval '[ "$(status_count "$r" done)" = 3 ]'
	check "POST /queues/flaky/dead/retry all: 200 requeued 1 (the last)" \
		[ "$(post_body /queues/flaky/dead/retry '{"all":true}')" = '200 {"queue":"flaky","requeued":1}' ]
	check "  ... it runs again and is done" wait_for 10 eval '[ "$(status_count "$r" done)" = 4 ]'
	check "no dead letter left" [ "$(curl -s "$(H)/queues/flaky/dead" | dead_ids)" = "" ]
	for i in 0 1 2 3; do
		check "task ${ids[i]}: one dead record, then one done with its payload, in flaky" \
			[ "$(records "$r" "${ids[i]}")" = "dead:exit status 3: not fixed yet:flaky done:p$((i + 1)):flaky" ]
	done
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

# ---- cancel of a queued task by id, on each surface ------------------------
cancel() {
	local r=$TMP/ca.jsonl id rc
	: >"$TMP/ids"
	start_forqd ca --workers 0 --results "$r" --drain-timeout 1 || { bad "forqd starts"; return; }
	push_cli 5
	mapfile -t id <"$TMP/ids"
	check "forq cancel ${id[1]}: exit 0" "$FORQ" cancel --shm-name "$FORQD_SHM" "${id[1]}"
	check "HTTP POST /queues/default/tasks/${id[2]}/cancel: 200" \
		[ "$(post "/queues/default/tasks/${id[2]}/cancel")" = \
		"200 {\"queue\":\"default\",\"id\":${id[2]},\"status\":\"cancelled\"}" ]
	check "TCP CANCEL default ${id[3]}: OK" tcp_says OK "CANCEL default ${id[3]}"
	# A remote worker's task: the lease is revoked, its late RESULT refused.
	check "a task leased to a remote worker: CANCEL OK, then its RESULT gets ERR not-leased" \
		[ "$(tcp_replies GET_TASK "CANCEL default ${id[0]}" "RESULT ${id[0]} late" | sed -n 3,4p |
			tr '\n' ' ')" = 'OK ERR not-leased ' ]
	"$FORQ" cancel --shm-name "$FORQD_SHM" "${id[1]}" 2>"$TMP/err"
	rc=$?
	check "forq cancel of a cancelled task: exit 1 ($rc), not queued" \
		bash -c "[ $rc = 1 ] && grep -q 'is not queued' '$TMP/err'"
	check "HTTP cancel of a cancelled task: 404" \
		[ "$(post "/queues/default/tasks/${id[2]}/cancel" | cut -c1-3)" = 404 ]
	check "TCP CANCEL of a cancelled task: ERR not-queued" \
		tcp_says 'ERR not-queued' "CANCEL default ${id[3]}"
	check "4 cancelled records, one each, none run" bash -c "[ \$(grep -c '\"status\":\"cancelled\"' \
		'$r') = 4 ] && [ \$(wc -l <'$r') = 4 ]"
	check "GET /tasks/${id[1]} says cancelled" \
		bash -c "curl -fsS '$(H)/tasks/${id[1]}' | grep -q '\"status\":\"cancelled\"'"
	check "1 pending, /stats cancelled 4" \
		wait_for 5 bash -c "[ \"\$(curl -fsS '$(H)/stats' | python3 -c 'import json,sys; \
		s=json.load(sys.stdin); print(s[\"pending\"][\"total\"], s[\"cancelled\"])')\" = '1 4' ]"
	check "a remote worker is handed the one queued task only, no cancelled one" \
		bash -c "[ \"\$(printf 'GET_TASKS 10\r\nGET_TASKS 10\r\nEXIT\r\n' | '$CLIENT' 127.0.0.1:$TCP_PORT raw | \
		tr -d '\r' | grep -o '^TASK [0-9]*' | cut -d' ' -f2 | sort -n | tr '\n' ' ')\" = \
		'${id[4]} ' ]"
	check "/metrics: forq_tasks_cancelled_total{queue=\"default\"} 4" \
		[ "$(metric 'forq_tasks_cancelled_total{queue="default"}')" = 4 ]
	check "forqd logs task_cancelled" grep -q 'event=task_cancelled queue=default' "$FORQD_LOG"
	check "TCP CANCEL nope ${id[4]}: ERR unknown-queue" \
		tcp_says 'ERR unknown-queue' "CANCEL nope ${id[4]}"
	check "TCP CANCEL default x: ERR bad-id" tcp_says 'ERR bad-id' 'CANCEL default x'
	check "HTTP cancel in queue nope: 404 unknown queue" \
		bash -c "[[ '$(post "/queues/nope/tasks/${id[4]}/cancel")' == '404 {\"error\":\"unknown queue'* ]]"
	check "HTTP cancel of task abc: 400" \
		[ "$(post /queues/default/tasks/abc/cancel | cut -c1-3)" = 400 ]
	"$FORQ" cancel --shm-name "$FORQD_SHM" --queue nope "${id[4]}" 2>/dev/null
	rc=$?
	check "forq cancel --queue nope: exit 2 ($rc)" [ "$rc" = 2 ]
	check "after the refusals ${id[4]} is still queued (1 pending)" \
		wait_for 5 bash -c "[ \$(curl -fsS '$(H)/stats' | python3 -c 'import json,sys; \
		print(json.load(sys.stdin)[\"pending\"][\"total\"])') = 1 ]"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

# ---- cancel of a task a local consumer runs ---------------------------------
# The handler records the pid of each slow run and sleeps; a cancel through
# each surface stops it: one cancelled record, the handler process gone, the
# consumer back at once and the next task run.
cancel_running() {
	local r=$TMP/cr.jsonl pids=$TMP/cr.pids id via n=0
	: >"$pids"
	start_forqd cr --workers 1 --results "$r" \
		--handler "exec:read p; if [ \"\$p\" = slow ]; then echo \$\$ >>'$pids'; exec sleep 60; fi; echo \"ok \$p\"" ||
		{ bad "forqd starts"; return; }
	for via in forq http tcp; do
		n=$((n + 1))
		id=$("$FORQ" push --shm-name "$FORQD_SHM" slow)
		if ! wait_for 10 bash -c "[ \$(wc -l <'$pids') -ge $n ]"; then
			bad "$via: the slow task runs"
			continue
		fi
		local pid
		pid=$(sed -n "${n}p" "$pids")
		case $via in
		forq) check "forq cancel of running task $id: exit 0" \
			"$FORQ" cancel --shm-name "$FORQD_SHM" "$id" ;;
		http) check "HTTP cancel of running task $id: 200 cancelled" \
			[ "$(post "/queues/default/tasks/$id/cancel")" = \
			"200 {\"queue\":\"default\",\"id\":$id,\"status\":\"cancelled\"}" ] ;;
		tcp) check "TCP CANCEL default $id of a running task: OK" \
			tcp_says OK "CANCEL default $id" ;;
		esac
		check "$via: its handler process $pid is gone" wait_for 5 ended "$pid"
		check "$via: one cancelled record for task $id" wait_for 5 \
			bash -c "[ \$(grep -c '\"id\":$id,.*\"status\":\"cancelled\"' '$r') = 1 ]"
		check "$via: the consumer is back and runs the next task" wait_for 10 \
			bash -c "'$FORQ' push --shm-name '$FORQD_SHM' 'after-$via' >/dev/null &&
				 sleep 0.3 && grep -q '\"result\":\"ok after-$via' '$r'"
	done
	check "no task ran twice or failed: 3 cancelled, 3 done" \
		bash -c "[ \$(grep -c '\"status\":\"cancelled\"' '$r') = 3 ] &&
			 [ \$(grep -c '\"status\":\"done\"' '$r') -ge 3 ] &&
			 ! grep -q '\"status\":\"\(failed\|dead\)\"' '$r'"
	check "forqd logs the restart as a cancel, no crash" \
		bash -c "grep -q 'event=worker_restarting.*cancelled' '$FORQD_LOG' &&
			 ! grep -q 'event=worker_died' '$FORQD_LOG'"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

# ---- bad queue names and paths ---------------------------------------------
bad_names() {
	local rc
	start_forqd bn --workers 1 --handler arith --results off || { bad "forqd starts"; return; }
	check "HTTP POST /queues/nope/pause: 404 unknown queue" [ "$(post /queues/nope/pause)" = \
		'404 {"error":"unknown queue \"nope\" (forqd serves no queue of that name)"}' ]
	check "HTTP POST /queues/nope/purge: 404" [ "$(post /queues/nope/purge | cut -c1-3)" = 404 ]
	check "HTTP POST /queues/default/explode: 404 no such path" \
		[ "$(post /queues/default/explode | cut -c1-3)" = 404 ]
	check "HTTP GET /queues/default/pause: 405" \
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$(H)/queues/default/pause")" = 405 ]
	check "TCP PAUSE nope: ERR unknown-queue" tcp_says 'ERR unknown-queue' 'PAUSE nope'
	check "TCP PURGE without a name: ERR bad-args" tcp_says 'ERR bad-args' PURGE
	check "TCP PAUSE with two names: ERR bad-args" tcp_says 'ERR bad-args' 'PAUSE default x'
	"$FORQ" pause nope --shm-name "$FORQD_SHM" 2>"$TMP/err"
	rc=$?
	check "forq pause nope: exit 2 ($rc) with the reason" \
		bash -c "[ $rc = 2 ] && grep -q 'unknown queue \"nope\"' '$TMP/err'"
	"$FORQ" purge nope --shm-name "$FORQD_SHM" 2>/dev/null
	rc=$?
	check "forq purge nope: exit 2 ($rc)" [ "$rc" = 2 ]
	check "none of it paused the queue" [ "$(stat_of "['paused']")" = False ]
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

part pause_resume "paused: nothing starts, pushes go on; resume runs them; every surface"
part mid_batch "a pause mid-batch: the running task finishes, the batch's rest goes back"
part remote_wait "resume hands a task to a remote worker parked in GET_TASK WAIT"
part kill9 "the pause outlives kill -9 of forqd and its restart"
part purge "purge writes one purged record per dropped task, none runs; every surface"
part dead_letters "dead letters of a named queue: listed and re-queued over HTTP and TCP, every record"
part cancel "cancel of a queued task: one cancelled record, never run; a remote worker's revoked"
part cancel_running "cancel of a task a local consumer runs: stopped, one cancelled record, nothing left"
part token "the admin token guards the controls once set (HTTP 401/403, TCP ERR forbidden)"
part bad_names "unknown queue names and paths: 404, ERR unknown-queue, exit 2"
finish
