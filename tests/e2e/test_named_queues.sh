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
# Parts (for ONLY=, see lib.sh): queues, journal, bad_config, eight_queues_metrics.
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
	refused '[queue a]\nhandler = arith\n[queue b]\nhandler = nosuch\n' "$conf:3: queue \"b\": handler:"
	refused '[queue a]\ncapacity = 0\n' "$conf:2: --capacity"
	refused 'http\n' "$conf:1: expected \`key = value\`"
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
	if command -v promtool >/dev/null 2>&1; then
		check "promtool check metrics passes with eight queues" promtool check metrics <"$TMP/m8.txt"
	fi
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

part queues "four queues, three handlers: isolation, names on every surface, results"
part journal "a journal per queue: a reboot replays each into its own queue"
part bad_config "a bad config file: refused at start with the file and the line"
part eight_queues_metrics "eight queues: /metrics and /stats show each, a scrape stays cheap"
finish
