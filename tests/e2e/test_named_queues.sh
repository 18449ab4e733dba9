#!/usr/bin/env bash
# test_named_queues.sh — one forqd serving several named queues from a config
# file (forqd --config): each queue its own shared-memory object, handler,
# consumers and sizes; every result line names its queue; one queue's poison
# task (a handler that kills its consumer), fullness or pause leaves the
# others' tasks and results untouched; the forq tool (--queue, pause NAME)
# and HTTP (/queues/{name}/tasks) reach each queue by name; a bad config is
# refused at start with the file and the line.
# Parts (for ONLY=, see lib.sh): queues, bad_config.
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
	refused '[queue q182]\n[queue q258]\n' "$conf:2: queue \"q258\" would share its task ids with queue \"q182\" (line 1), their names hash alike: rename one"
}

part queues "four queues, three handlers: isolation, names on every surface, results"
part bad_config "a bad config file: refused at start with the file and the line"
finish
