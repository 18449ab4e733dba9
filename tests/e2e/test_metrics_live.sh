#!/usr/bin/env bash
# test_metrics_live.sh — forqd's HTTP side end to end: /metrics under load
# passes promtool (plus what promtool does not check); a real Prometheus
# scrapes it every second and sees forq_tasks_done_total grow; POST /shutdown
# is refused without the admin token (forqd keeps working), drains with it
# (exit 0, one result per accepted task) and with ?mode=now reports the
# unfinished tasks (or, with --keep-shm, leaves them in /dev/shm for a new
# forqd that finishes them); every bad request gets its code; the task API
# round trip; the refusal of a non-loopback listener without a token.
# Parts (for ONLY=, see lib.sh): metrics_load, admin_token, shutdown_now,
# keep_shm, bad_requests, beyond_loopback.
#
#   FORQD=build/service/forqd tests/e2e/test_metrics_live.sh
#
# Needs curl, python3 and Debian's prometheus (installed with apt-get when
# missing and run as root). Last line: "N passed, N failed".
set -u
. "$(dirname "$0")/lib.sh"

if ! command -v prometheus >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus \
		>/dev/null 2>&1
fi
for tool in curl python3 promtool prometheus; do
	if ! command -v $tool >/dev/null 2>&1; then
		bad "$tool is installed (apt-get install prometheus curl python3)"
		finish
	fi
done
if [ ! -x "$FORQD" ]; then
	bad "forqd exists at '$FORQD' (set FORQD=path/to/forqd)"
	finish
fi

# req METHOD URL [curl args...]: prints the status code; body in $TMP/body,
# headers in $TMP/headers.
req() {
	local m=$1 u=$2
	shift 2
	curl -sS -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' -X "$m" "$@" "$u" 2>>"$TMP/curl.err"
}

# metric URL NAME: the value of series NAME, or the sum of family NAME's series.
metric() {
	curl -fsS "$1/metrics" 2>/dev/null | sum_of "$2"
}
sum_of() {
	awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2; found = 1 }
		END { if (found) printf "%.0f\n", s }'
}

# done_over URL N: forq_tasks_done_total on URL/metrics is over N.
done_over() {
	local v
	v=$(metric "$1" forq_tasks_done_total)
	[ -n "$v" ] && [ "$v" -gt "$2" ]
}

# is_json_error: the last body is {"error": "..."}.
is_json_error() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not isinstance(d.get("error"), str) or not d["error"])' "$TMP/body" 2>/dev/null
}

# results_check FILE ACCEPTED STATUSES: one line per accepted task, ids
# unique, every status one of STATUSES (comma-separated); prints a summary.
results_check() {
	python3 - "$@" <<'EOF'
import collections, json, sys
path, accepted, allowed = sys.argv[1], int(sys.argv[2]), set(sys.argv[3].split(","))
rows = [json.loads(l) for l in open(path)]
ids = {r["id"] for r in rows}
st = collections.Counter(r["status"] for r in rows)
print(f"lines={len(rows)} ids={len(ids)} accepted={accepted} " +
      " ".join(f"{k}={v}" for k, v in sorted(st.items())))
sys.exit(not (len(rows) == accepted and len(ids) == len(rows) and set(st) <= allowed))
EOF
}

# pquery EXPR: the first sample's value on Prometheus at $PROM, or nothing.
pquery() {
	curl -fsS "$PROM/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
		python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null
}

# The admin token of parts admin_token and beyond_loopback.
TOKEN=t0k-$$-$RANDOM

# =====================================================================
# 1. /metrics under load: promtool, and what promtool does not check.
# =====================================================================
metrics_load() {
	new_shm Q1
	start_forqd load --shm-name "$Q1" --workers 2 --demo 5000 --results off --tcp off \
		--http 127.0.0.1:0
	check "forqd --demo 5000 serves HTTP on a free port (${HTTP_PORT:-none})" [ -n "$HTTP_PORT" ]
	[ -n "$HTTP_PORT" ] || return
	U1=http://127.0.0.1:$HTTP_PORT
	wait_for 10 done_over "$U1" 1000
	code=$(req GET "$U1/metrics")
	cp "$TMP/body" "$TMP/metrics1.txt"
	check "GET /metrics is 200 (got $code)" [ "$code" = 200 ]
	check "Content-Type is text/plain; version=0.0.4" \
		grep -qi '^content-type: text/plain; version=0.0.4; charset=utf-8' "$TMP/headers"
	promtool check metrics <"$TMP/metrics1.txt" >"$TMP/promtool.out" 2>&1
	code=$?
	check "promtool check metrics passes on live /metrics under load (exit $code)" [ "$code" -eq 0 ]
	[ "$code" -eq 0 ] || sed 's/^/    promtool: /' "$TMP/promtool.out" | head -20
	check "the exposition ends with a newline" [ "$(tail -c 1 "$TMP/metrics1.txt" | od -An -c | tr -d ' ')" = '\n' ]
	python3 - "$TMP/metrics1.txt" >"$TMP/expo_check.txt" 2>&1 <<'EOF'
import collections, re, sys
lines = open(sys.argv[1]).read().splitlines()
series, problems = collections.Counter(), []
types, samples = {}, collections.Counter()
hist = collections.defaultdict(dict)
for l in lines:
    if l.startswith("# TYPE "):
        _, _, name, t = l.split(" ", 3)
        types[name] = t
        continue
    if not l or l.startswith("#"):
        continue
    key, value = l.rsplit(" ", 1)
    series[key] += 1
    name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", key).group(0)
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    samples[base if base in types else name] += 1
    if name.endswith("_bucket"):
        le = re.search(r'le="([^"]*)"', key).group(1)
        hist[base][le] = float(value)
    elif name.endswith("_count") and base in types and types[base] == "histogram":
        hist[base]["count"] = float(value)
dups = [k for k, n in series.items() if n > 1]
if dups: problems.append(f"duplicated series: {dups[:5]}")
empty = [n for n in types if samples[n] == 0]
if empty: problems.append(f"families without samples: {empty}")
for h, b in hist.items():
    les = [(float(k), v) for k, v in b.items() if k not in ("count",)]
    les.sort()
    if "+Inf" not in b: problems.append(f"{h}: no +Inf bucket")
    elif b["+Inf"] != b.get("count"): problems.append(f"{h}: +Inf {b['+Inf']} != count {b.get('count')}")
    if any(les[i][1] > les[i + 1][1] for i in range(len(les) - 1)): problems.append(f"{h}: buckets not cumulative")
workers = {re.search(r'state="(\w+)"', k).group(1) for k in series if k.startswith("forq_workers{")}
if workers != {"starting", "running", "backoff", "stopped"}: problems.append(f"forq_workers states: {workers}")
cmds = [k for k in series if k.startswith("forq_tcp_commands_total{")]
if len(cmds) < 11: problems.append(f"forq_tcp_commands_total has {len(cmds)} series")
print(f"{len(types)} families, {len(series)} series")
for p in problems: print("problem:", p)
sys.exit(1 if problems else 0)
EOF
	check "no duplicated series, every family has samples, histograms end at +Inf = _count ($(head -n 1 "$TMP/expo_check.txt"))" \
		[ $? -eq 0 ]
	grep '^problem' "$TMP/expo_check.txt" | sed 's/^/    /'
	d1=$(sum_of forq_tasks_done_total <"$TMP/metrics1.txt")
	sleep 1.2
	d2=$(metric "$U1" forq_tasks_done_total)
	check "forq_tasks_done_total grows under load ($d1 -> $d2)" [ "${d2:-0}" -gt "${d1:-0}" ]

	# ---- a real Prometheus, scraping every second -----------------------------
	read -r prom_port < <(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: forqd
    static_configs:
      - targets: ["127.0.0.1:$HTTP_PORT"]
EOF
	prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/prom-data" \
		--web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$TMP/prometheus.log" 2>&1 &
	PIDS+=("$!")
	PROM=http://127.0.0.1:$prom_port
	first= last=
	end=$((SECONDS + 25))
	while [ $SECONDS -lt $end ]; do
		v=$(pquery 'sum(forq_tasks_done_total{job="forqd"})')
		if [ -n "$v" ]; then
			[ -z "$first" ] && first=$v
			last=$v
			[ "$last" != "$first" ] && break
		fi
		sleep 0.5
	done
	check "a real Prometheus scrapes forqd (first forq_tasks_done_total ${first:-none})" [ -n "$first" ]
	check "... and sees forq_tasks_done_total increase (${first:-none} -> ${last:-none})" \
		python3 -c 'import sys; sys.exit(not float(sys.argv[2] or 0) > float(sys.argv[1] or 0))' "${first:-0}" "${last:-0}"
	check "... its last scrape succeeded (up == 1)" [ "$(pquery 'up{job="forqd"}')" = 1 ]
	[ -n "$first" ] || sed 's/^/    prometheus: /' "$TMP/prometheus.log" | tail -10
	rate=$(pquery 'sum(rate(forq_tasks_done_total{job="forqd"}[5s]))')
	echo "    done rate seen by Prometheus: ${rate:-none}/s"

	# ---- no token set: POST /shutdown from loopback drains and exits 0 --------
	code=$(req POST "$U1/shutdown")
	check "POST /shutdown without a token set, from loopback: 202 (got $code)" [ "$code" = 202 ]
	check "... body says drain" grep -q '"mode":"drain"' "$TMP/body"
	wait_exit "$FORQD_PID" 40
	check "... forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	check "... after draining for POST /shutdown" grep -q 'event=draining reason="POST /shutdown"' "$TMP/load.log"
	check "... and removes its queue" [ ! -e "/dev/shm$Q1" ]
}
part metrics_load "/metrics under load: promtool, a real Prometheus, POST /shutdown drains"

# =====================================================================
# 2. Admin token: refusals keep forqd running; the right token drains.
# =====================================================================
admin_token() {
	# A tasks file that keeps coming: a FIFO fed at ~20,000 lines/s until forqd
	# stops reading, so the queue is busy for as long as the checks take.
	mkfifo "$TMP/feed"
	python3 - "$TMP/feed" 2>/dev/null <<'EOF' &
import sys, time
i = 0
with open(sys.argv[1], "w") as f:
    try:
        while True:
            f.write("".join(f"{i + k}*2+{k % 7}\n" for k in range(1000)))
            f.flush()
            i += 1000
            time.sleep(0.05)
    except (BrokenPipeError, OSError):
        pass
EOF
	PIDS+=("$!")
	new_shm Q2
	FORQ_ADMIN_TOKEN=$TOKEN start_forqd auth --shm-name "$Q2" --workers 2 --tasks "$TMP/feed" \
		--results "$TMP/auth.jsonl" --tcp off --http 127.0.0.1:0
	check "forqd with FORQ_ADMIN_TOKEN and a streaming tasks file starts (port ${HTTP_PORT:-none})" [ -n "$HTTP_PORT" ]
	[ -n "$HTTP_PORT" ] || return
	U2=http://127.0.0.1:$HTTP_PORT
	wait_for 10 done_over "$U2" 0

	code=$(req POST "$U2/shutdown")
	check "POST /shutdown without Authorization: 401 (got $code)" [ "$code" = 401 ]
	check "... with WWW-Authenticate: Bearer" grep -qi '^www-authenticate: Bearer' "$TMP/headers"
	check "... and a JSON error" is_json_error
	code=$(req POST "$U2/shutdown" -H "Authorization: Bearer wrong-$TOKEN")
	check "POST /shutdown with a wrong token: 401 (got $code)" [ "$code" = 401 ]
	code=$(req POST "$U2/shutdown?mode=now" -H "Authorization: Basic $TOKEN")
	check "POST /shutdown?mode=now with a non-Bearer header: 401 (got $code)" [ "$code" = 401 ]
	check "the token is never logged" bash -c "! grep -q -- '$TOKEN' '$TMP/auth.log'"
	a1=$(metric "$U2" forq_tasks_done_total)
	sleep 1
	a2=$(metric "$U2" forq_tasks_done_total)
	check "after the refusals forqd still runs" kill -0 "$FORQD_PID"
	check "... is not draining" [ "$(metric "$U2" forq_draining)" = 0 ]
	check "... and still processes tasks ($a1 -> $a2)" [ "${a2:-0}" -gt "${a1:-0}" ]
	check "... and still answers /readyz 200" [ "$(req GET "$U2/readyz")" = 200 ]
	check "the refusals are counted (forq_http_requests_total{code=\"401\"} 3)" \
		bash -c "curl -fsS $U2/metrics | grep -qx 'forq_http_requests_total{code=\"401\"} 3'"

	# A task through the API while it runs, then the right token.
	code=$(req POST "$U2/tasks" -d '{"payload":"6*7","priority":"high"}')
	api_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ids"][0])' "$TMP/body" 2>/dev/null)
	check "POST /tasks while busy: 202 with an id (got $code, id ${api_id:-none})" [ "$code" = 202 -a -n "$api_id" ]
	code=$(req POST "$U2/shutdown" -H "Authorization: Bearer $TOKEN")
	check "POST /shutdown with the right token: 202 (got $code)" [ "$code" = 202 ]
	wait_exit "$FORQD_PID" 60
	check "... forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	pushed=$(sed -n 's/.*event=tasks_file_read .*pushed=\([0-9]*\).*/\1/p' "$TMP/auth.log")
	accepted=$((${pushed:-0} + 1))
	summary=$(results_check "$TMP/auth.jsonl" "$accepted" done,failed)
	check "... nothing lost: one result per accepted task, all finished ($summary)" [ $? -eq 0 -a -n "$pushed" ]
	check "... the API task has its right result" \
		grep -q "\"id\":$api_id,.*\"task\":\"6\\*7\",\"status\":\"done\",\"result\":\"42\"" "$TMP/auth.jsonl"
	check "... no unfinished tasks reported" bash -c "! grep -q event=tasks_unfinished '$TMP/auth.log'"
	check "... and its queue is gone" [ ! -e "/dev/shm$Q2" ]
}
part admin_token "admin token: refusals keep forqd running; the right token drains"

# =====================================================================
# 3. ?mode=now: exit 0 at once, the unfinished tasks reported, none dropped.
# =====================================================================
shutdown_now() {
	awk 'BEGIN { for (i = 1; i <= 400; i++) print i "+1" }' >"$TMP/slow.txt"
	new_shm Q3
	start_forqd now --shm-name "$Q3" --workers 2 --handler 'exec:sleep 0.05; cat' --batch 1 \
		--tasks "$TMP/slow.txt" --results "$TMP/now.jsonl" --tcp off --http 127.0.0.1:0
	check "forqd with a slow handler starts (port ${HTTP_PORT:-none})" [ -n "$HTTP_PORT" ]
	[ -n "$HTTP_PORT" ] || return
	U3=http://127.0.0.1:$HTTP_PORT
	wait_for 15 grep -q '"status":"done"' "$TMP/now.jsonl"
	code=$(req POST "$U3/shutdown?mode=bogus")
	check "POST /shutdown?mode=bogus: 400 (got $code)" [ "$code" = 400 ]
	code=$(req POST "$U3/shutdown?mode=now")
	check "POST /shutdown?mode=now: 202 (got $code)" [ "$code" = 202 ]
	check "... body says now" grep -q '"mode":"now"' "$TMP/body"
	t0=$SECONDS
	wait_exit "$FORQD_PID" 30
	check "... forqd exits 0 (got $EXIT_CODE) without waiting for the queue ($((SECONDS - t0)) s)" \
		[ "$EXIT_CODE" -eq 0 -a $((SECONDS - t0)) -le 10 ]
	pushed=$(sed -n 's/.*event=tasks_file_read .*pushed=\([0-9]*\).*/\1/p' "$TMP/now.log")
	summary=$(results_check "$TMP/now.jsonl" "${pushed:-0}" done,unfinished)
	check "... none silently dropped: one result per accepted task ($summary)" [ $? -eq 0 -a "${pushed:-0}" -eq 400 ]
	check "... the rest are reported as status unfinished" grep -q '"status":"unfinished"' "$TMP/now.jsonl"
	check "... and logged as tasks_unfinished" grep -q 'event=tasks_unfinished count=[1-9]' "$TMP/now.log"
	check "... its queue is gone" [ ! -e "/dev/shm$Q3" ]
}
part shutdown_now "?mode=now: exit 0 at once, the unfinished tasks reported, none dropped"

# =====================================================================
# 3b. ?mode=now with --keep-shm: the unfinished tasks stay in /dev/shm and a
#     new forqd on the same name finishes them (none lost, none run twice).
# =====================================================================
keep_shm() {
	awk 'BEGIN { for (i = 1; i <= 200; i++) print "k" i }' >"$TMP/keep.txt"
	new_shm Q7
	start_forqd keep1 --shm-name "$Q7" --workers 2 --handler 'exec:sleep 0.05; cat' --batch 1 \
		--keep-shm --tasks "$TMP/keep.txt" --results "$TMP/keep1.jsonl" --tcp off --http 127.0.0.1:0
	check "forqd --keep-shm with a slow handler starts (port ${HTTP_PORT:-none})" [ -n "$HTTP_PORT" ]
	[ -n "$HTTP_PORT" ] || return
	check "... it pushes the 200 tasks" wait_for 15 grep -q 'event=tasks_file_read .*pushed=200' "$TMP/keep1.log"
	wait_for 15 grep -q '"status":"done"' "$TMP/keep1.jsonl"
	code=$(req POST "http://127.0.0.1:$HTTP_PORT/shutdown?mode=now")
	check "POST /shutdown?mode=now with --keep-shm: 202 (got $code)" [ "$code" = 202 ]
	wait_exit "$FORQD_PID" 30
	check "... forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	n1=$(wc -l <"$TMP/keep1.jsonl")
	kept=$(sed -n 's/.*event=queue_kept .*pending=\([0-9]*\).*/\1/p' "$TMP/keep1.log")
	check "... the queue stays in /dev/shm" [ -e "/dev/shm$Q7" ]
	check "... with the unfinished tasks in it ($n1 results written, ${kept:-?} kept, 200 pushed)" \
		[ "$n1" -lt 200 -a "$((n1 + ${kept:--1}))" -eq 200 ]
	check "... none of them written as unfinished" bash -c "! grep -q '\"status\":\"unfinished\"' '$TMP/keep1.jsonl'"
	start_forqd keep2 --shm-name "$Q7" --workers 2 --handler 'exec:sleep 0.05; cat' --batch 1 \
		--results "$TMP/keep2.jsonl" --tcp off --http 127.0.0.1:0
	check "a new forqd on the same --shm-name starts (port ${HTTP_PORT:-none})" [ -n "$HTTP_PORT" ]
	[ -n "$HTTP_PORT" ] || return
	check "... and recovers the queue (pending=${kept:-?})" \
		grep -q "event=queue_recovered name=$Q7 .*pending=${kept:-x} " "$TMP/keep2.log"
	check "... and finishes the kept tasks" \
		wait_for 60 bash -c "[ \$(cat '$TMP/keep1.jsonl' '$TMP/keep2.jsonl' | wc -l) -ge 200 ]"
	code=$(req POST "http://127.0.0.1:$HTTP_PORT/shutdown")
	wait_exit "$FORQD_PID" 30
	check "... then drains and exits 0 on POST /shutdown (got $code, $EXIT_CODE)" [ "$code" = 202 -a "$EXIT_CODE" -eq 0 ]
	python3 - "$TMP/keep1.jsonl" "$TMP/keep2.jsonl" >"$TMP/keep.check" 2>&1 <<'EOF'
import collections, json, sys
rows = [json.loads(l) for f in sys.argv[1:] for l in open(f)]
n = collections.Counter(r["task"] for r in rows)
want = {f"k{i}" for i in range(1, 201)}
bad = []
if set(n) != want: bad.append(f"lost: {sorted(want - set(n))[:5]} extra: {sorted(set(n) - want)[:5]}")
if any(v > 1 for v in n.values()): bad.append(f"twice: {[k for k, v in n.items() if v > 1][:5]}")
if len({r["id"] for r in rows}) != len(rows): bad.append("an id twice")
if any(r["status"] != "done" or r["result"] != r["task"] for r in rows): bad.append("not all done right")
print("ok" if not bad else "; ".join(bad), f"lines={len(rows)}")
EOF
	check "... every task done exactly once across both forqds ($(cat "$TMP/keep.check"))" \
		grep -q '^ok ' "$TMP/keep.check"
	check "... and the second forqd removes the queue" [ ! -e "/dev/shm$Q7" ]
	rm -f "/dev/shm$Q7"
}
part keep_shm "?mode=now with --keep-shm, then a new forqd finishes the tasks"

# =====================================================================
# 4. Each bad request gets its code; the task API round trip.
# =====================================================================
bad_requests() {
	new_shm Q4
	start_forqd api --shm-name "$Q4" --workers 1 --results off --tcp off --http 127.0.0.1:0
	check "forqd for the API checks starts (port ${HTTP_PORT:-none})" [ -n "$HTTP_PORT" ]
	[ -n "$HTTP_PORT" ] || return
	U4=http://127.0.0.1:$HTTP_PORT

	# Two oversize bodies: 1 MiB + 1 of JSON, and one payload of 1025 bytes.
	python3 -c 'import json; print(json.dumps({"payload": "1+" * 524288}))' >"$TMP/big.json"
	python3 -c 'import json; print(json.dumps({"payload": "1" * 1025}))' >"$TMP/bigpayload.json"
	# method|path|expected code|what|curl args
	while IFS='|' read -r m p want what args; do
		[ -z "$m" ] && continue
		eval "extra=($args)"
		code=$(req "$m" "$U4$p" "${extra[@]}")
		check "$what: $m $p -> $want (got $code)" [ "$code" = "$want" ]
		case $want in
		4*) check "... with a JSON {\"error\": ...} body" is_json_error ;;
		esac
		case $want in
		405) check "... and Allow: $(grep -i '^allow:' "$TMP/headers" | tr -d '\r' | cut -d' ' -f2-)" \
			grep -qi '^allow: ' "$TMP/headers" ;;
		esac
	done <<EOF
GET|/nope|404|unknown path|
GET|/metrics/x|404|unknown path under a known one|
POST|/metrics|405|wrong method on a GET route|
DELETE|/stats|405|DELETE on a GET route|
GET|/shutdown|405|GET on a POST route|
GET|/tasks|405|GET on POST /tasks|
POST|/tasks|400|bad JSON|-d '{"payload":'
POST|/tasks|400|JSON that is not a task|-d '[1,2]'
POST|/tasks|400|missing payload|-d '{"priority":"high"}'
POST|/tasks|400|unknown priority|-d '{"payload":"1+1","priority":"urgent"}'
POST|/tasks|400|empty body|-d ''
POST|/tasks|413|body over 1 MiB|--data-binary @$TMP/big.json
POST|/tasks|413|payload over --max-payload|--data-binary @$TMP/bigpayload.json
GET|/tasks/999999999|404|unknown task id|
GET|/tasks/abc|400|bad task id|
GET|/tasks/0|400|task id 0|
EOF
	code=$(req GET "$U4/metrics")
	check "... each refused request was counted by code (404 and 405 series > 0)" \
		bash -c "grep -q '^forq_http_requests_total{code=\"404\"} [1-9]' '$TMP/body' && grep -q '^forq_http_requests_total{code=\"405\"} [1-9]' '$TMP/body'"

	code=$(req POST "$U4/tasks" -d '[{"payload":"6*7"},{"payload":"2+3","priority":"low"},{"payload":{"op":"x"}}]')
	ids=$(python3 -c 'import json,sys; print(*json.load(open(sys.argv[1]))["ids"])' "$TMP/body" 2>/dev/null)
	check "POST /tasks with 3 tasks: 202 with 3 ids (got $code, ids: $ids)" [ "$code" = 202 -a "$(echo $ids | wc -w)" = 3 ]
	read -r id1 id2 id3 <<<"$ids"
	# task_is ID REGEX: GET /tasks/ID answers 200 with a body matching REGEX.
	task_is() { [ "$(req GET "$U4/tasks/$1")" = 200 ] && grep -q "$2" "$TMP/body"; }
	check "GET /tasks/$id1 becomes done with the right result (6*7 = 42)" \
		wait_for 10 task_is "${id1:-0}" '"status":"done","attempts":1,"result":"42"'
	check "GET /tasks/$id2 becomes done with 5 (2+3)" wait_for 10 task_is "${id2:-0}" '"status":"done",.*"result":"5"'
	check "GET /tasks/$id3 (a JSON payload arith cannot read) ends failed with an error" \
		wait_for 10 task_is "${id3:-0}" '"status":"failed",.*"error":"'
	code=$(req HEAD "$U4/healthz" -I)
	check "HEAD /healthz: 200 (got $code)" [ "$code" = 200 ]
	code=$(req GET "$U4/stats")
	check "GET /stats: 200 JSON with done >= 2" \
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(not d["done"] >= 2)' "$TMP/body"
	stop_forqd
	check "the API forqd exits 0 on SIGTERM (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}
part bad_requests "each bad request gets its code; the task API round trip"

# =====================================================================
# 5. Beyond loopback only with a token or --insecure.
# =====================================================================
beyond_loopback() {
	new_shm Q5
	timeout 20 "$FORQD" --shm-name "$Q5" --workers 1 --results off --tcp off --http 0.0.0.0:0 \
		2>"$TMP/wide.log"
	code=$?
	check "--http 0.0.0.0:0 without a token is refused with exit 5 (got $code)" [ "$code" -eq 5 ]
	check "... saying why" grep -q 'refusing to listen on 0.0.0.0:0 without an admin token' "$TMP/wide.log"
	check "... and leaves no queue" [ ! -e "/dev/shm$Q5" ]
	start_forqd wide2 --shm-name "$Q5" --workers 1 --results off --tcp off --http 0.0.0.0:0 --insecure
	check "--http 0.0.0.0:0 --insecure starts and answers on 127.0.0.1 (port ${HTTP_PORT:-none})" [ -n "$HTTP_PORT" ]
	if [ -n "$HTTP_PORT" ]; then
		code=$(req POST "http://127.0.0.1:$HTTP_PORT/shutdown")
		check "... and a loopback POST /shutdown stops it (202, got $code)" [ "$code" = 202 ]
		wait_exit "$FORQD_PID" 30
		check "... exit 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	fi
	new_shm Q6
	FORQ_ADMIN_TOKEN=$TOKEN start_forqd wide3 --shm-name "$Q6" --workers 1 --results off --tcp off \
		--http 0.0.0.0:0
	check "--http 0.0.0.0:0 with an admin token starts (port ${HTTP_PORT:-none})" [ -n "$HTTP_PORT" ]
	if [ -n "$HTTP_PORT" ]; then
		code=$(req POST "http://127.0.0.1:$HTTP_PORT/shutdown" -H "Authorization: Bearer $TOKEN")
		check "... and stops with the token (202, got $code)" [ "$code" = 202 ]
		wait_exit "$FORQD_PID" 30
		check "... exit 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	fi
}
part beyond_loopback "beyond loopback only with a token or --insecure"
finish
