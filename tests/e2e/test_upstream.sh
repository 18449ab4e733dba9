#!/usr/bin/env bash
# test_upstream.sh — forqd on a NATS JetStream stream (forqd --upstream,
# issue 17), on a real 3-node nats-server cluster with JetStream on
# 127.0.0.1 (each node its own store under $TMP, random free ports):
#   two_hosts   two forqd hosts share one R3 stream; 20,000 tasks pushed with
#               forq push --upstream --file; kill -9 of one host mid-run
#               loses nothing: every task has a right result across both
#               results files (at-least-once: duplicates counted, allowed),
#               the stream ends empty, /metrics and /readyz say connected,
#               the stream's pending and ack-pending gauges rise and end 0
#   in_progress tasks that wait longer than AckWait in the local ring are
#               not redelivered (InProgress): each runs once
#   poison      a task whose handler always fails is tried --max-attempts
#               times, each retry given back to the stream (Nak), ends
#               dead, is terminated: the stream ends empty
#   retry_hosts a task that fails twice, then succeeds: its first run on
#               host a is given back to the stream with its backoff, a
#               stops, host b runs it on as its second and third delivery
#               (attempts 3: JetStream's count, across hosts)
#   auth        a nats-server that asks for a token: forqd connects with
#               --upstream-token-file or FORQ_NATS_TOKEN, and a wrong or
#               missing token is refused at start (exit 3, said so)
#   dedup       the same --key pushed twice is one message and one task
#   http_push   POST /tasks on an upstream forqd publishes (ids are stream
#               sequences); a delay is refused (400)
#   refused     a consumer with another AckWait is refused at start (exit 3,
#               the setting named), never changed
#   nats_node_dies  kill -9 of the NATS node forqd is connected to, mid-run:
#               forqd reconnects to another, every task ends done
#   named_queues  forqd --config with three queues: two each on its own
#               stream (one named, one STREAM-NAME), one local; results and
#               forq_upstream_* per queue; TCP PUT queue= publishes to that
#               queue's stream; two queues on one stream, or an
#               upstream queue under a journal, refused at start (exit 2)
#   tcp_put     TCP PUT on an upstream forqd publishes (OK <stream sequence>,
#               in order with the other replies; key= is the Nats-Msg-Id) and
#               the task runs on the host; a delay, a priority or garbage gets
#               ERR and publishes nothing
#   tcp_many    100 TCP clients PUT 20 tasks each at once, pipelined: every
#               PUT is answered OK with its own sequence, every task runs
#   tcp_unreachable  a PUT while the stream is out of reach (its own one-node
#               NATS killed) gets ERR not-published, the connection goes on
#   results_subject  forqd --upstream-results: forq push --upstream --wait
#               prints each task's result line from forq.results.STREAM (exit
#               1 when one failed); without a forqd, it gives up after --wait
# Skips (77) without nats-server.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_cluster.sh" # nats_jsz

need_binaries "$FORQD" "$FORQ"
command -v nats-server >/dev/null 2>&1 || skip_all "nats-server not installed (scripts/deps.sh test)"
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
N=${UPSTREAM_TASKS:-20000}

# Free ports on 127.0.0.1, all held at once while chosen.
read -r -a P <<<"$($PY -c '
import socket
ss = [socket.socket() for _ in range(9)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
NATS_PIDS=()
URLS=nats://127.0.0.1:${P[0]},nats://127.0.0.1:${P[1]},nats://127.0.0.1:${P[2]}

cleanup_extra() {
	local p
	for p in "${NATS_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${NATS_PIDS[@]}"; do wait_exit "$p" 10 >/dev/null 2>&1; done
}

start_cluster() {
	local i j routes
	for i in 0 1 2; do
		routes=
		for j in 0 1 2; do
			[ "$j" = "$i" ] || routes="${routes:+$routes,}nats://127.0.0.1:${P[$((3 + j))]}"
		done
		mkdir -p "$TMP/nats$i"
		nats-server -js -sd "$TMP/nats$i" -n "n$i" -a 127.0.0.1 -p "${P[$i]}" \
			-m "${P[$((6 + i))]}" --cluster_name forqtest \
			--cluster "nats://127.0.0.1:${P[$((3 + i))]}" --routes "$routes" \
			>"$TMP/nats$i.log" 2>&1 &
		NATS_PIDS+=($!)
		PIDS+=($!)
	done
}

# jsz FIELD STREAM: messages in a stream (or a sum over its consumers),
# from the first node that holds a replica of it (an R1 stream is on one):
# nats_cluster.sh's query, on this test's own cluster.
jsz() {
	local NATS_HOST=127.0.0.1
	local -a NATS_MON=("${P[6]}" "${P[7]}" "${P[8]}")
	nats_jsz "$1" "$2"
}

stream_empty() { [ "$(jsz messages "$1")" = 0 ]; }
# metric PORT NAME: the default queue's sample of NAME on forqd's /metrics.
metric() {
	curl -sf "127.0.0.1:$1/metrics" | sed -n "s/^$2{queue=\"default\"} //p"
}
metric_is() { [ "$(metric "$1" "$2")" = "$3" ]; }
metric_over() { [ "$(metric "$1" "$2")" -gt "$3" ] 2>/dev/null; }
nq_streams_empty() { stream_empty NQ && stream_empty forq-emails; }

# done_ids FILE...: "task result" of each done line (tasks are "K*2").
done_pairs() {
	cat "$@" 2>/dev/null | sed -n 's/.*"task":"\([0-9]*\)\*2","status":"done","result":"\([0-9]*\)".*/\1 \2/p'
}
distinct_done() { done_pairs "$@" | awk '{print $1}' | sort -u | wc -l; }
all_done() { [ "$(distinct_done "$@")" -ge "$N" ]; }
lines() { cat "$@" 2>/dev/null | wc -l; }

start_cluster
# The cluster is up once a stream can be made: JetStream elects its meta
# leader after the routes connect (seconds on a loaded machine).
ready_cluster() {
	"$FORQ" push --upstream "$URLS" --upstream-stream probe --upstream-replicas 3 '1*2' \
		>/dev/null 2>"$TMP/probe.err"
}
if ! wait_for 90 ready_cluster; then
	bad "the 3-node NATS cluster takes an R3 stream"
	tail -n 5 "$TMP/probe.err" "$TMP"/nats0.log | sed 's/^/    /'
	finish
fi

UP=(--upstream "$URLS" --upstream-replicas 3 --tcp off --workers 2 --lease-timeout 4)

two_hosts() {
	seq 1 "$N" | sed 's/$/*2/' >"$TMP/tasks.txt"
	# --rate: the run lasts seconds, so that host a dies in the middle of it.
	start_forqd a "${UP[@]}" --upstream-stream S1 --rate 1500 --results "$TMP/a.jsonl" ||
		{ bad "host a starts"; return; }
	local a=$FORQD_PID
	start_forqd b "${UP[@]}" --upstream-stream S1 --rate 1500 --results "$TMP/b.jsonl" ||
		{ bad "host b starts"; return; }
	local b=$FORQD_PID bport=$HTTP_PORT
	check "forq push --upstream publishes $N tasks (one sequence each)" \
		bash -c "'$FORQ' push --upstream '$URLS' --upstream-stream S1 --file '$TMP/tasks.txt' \
			>'$TMP/seqs' && [ \$(sort -u '$TMP/seqs' | wc -l) -eq $N ]"
	check "the stream's backlog shows (forq_upstream_stream_pending_tasks over 1000)" \
		wait_for 30 metric_over "$bport" forq_upstream_stream_pending_tasks 1000
	check "... and what the hosts hold (forq_upstream_ack_pending_tasks over 0)" \
		wait_for 30 metric_over "$bport" forq_upstream_ack_pending_tasks 0
	check "host a runs tasks" wait_for 120 bash -c "[ \$(cat '$TMP/a.jsonl' | wc -l) -ge 1500 ]"
	check "host b runs tasks" wait_for 120 bash -c "[ \$(cat '$TMP/b.jsonl' | wc -l) -ge 1 ]"
	kill -9 "$a"
	wait "$a" 2>/dev/null
	local at_kill
	at_kill=$(distinct_done "$TMP/a.jsonl" "$TMP/b.jsonl")
	check "host a was killed mid-run ($at_kill of $N done)" [ "$at_kill" -lt "$N" ]
	check "every task ends done on one host or the other (AckWait redelivers a's)" \
		wait_for 300 all_done "$TMP/a.jsonl" "$TMP/b.jsonl"
	check "every result is right (K*2 = 2K)" bash -c \
		"! { cat '$TMP/a.jsonl' '$TMP/b.jsonl' | sed -n 's/.*\"task\":\"\([0-9]*\)\*2\",\"status\":\"done\",\"result\":\"\([0-9]*\)\".*/\1 \2/p' | awk '\$2 != 2 * \$1' | grep .; }"
	check "no task failed" bash -c "! grep -h -v '\"status\":\"done\"' '$TMP/a.jsonl' '$TMP/b.jsonl'"
	local total dups
	total=$(lines "$TMP/a.jsonl" "$TMP/b.jsonl")
	dups=$((total - N))
	echo "    results: $(lines "$TMP/a.jsonl") on a, $(lines "$TMP/b.jsonl") on b, $dups run twice (at-least-once)"
	check "duplicates only from a's death: at most what a could hold (512)" [ "$dups" -le 1024 ]
	check "the stream ends empty (every task acknowledged)" wait_for 60 stream_empty S1
	check "pending and ack-pending end 0 (read every 2 s)" wait_for 10 bash -c \
		"curl -sf 127.0.0.1:$bport/metrics | grep -q '^forq_upstream_stream_pending_tasks{queue=\"default\"} 0$' &&
		 curl -sf 127.0.0.1:$bport/metrics | grep -q '^forq_upstream_ack_pending_tasks{queue=\"default\"} 0$'"
	curl -sf "127.0.0.1:$bport/metrics" >"$TMP/b.metrics"
	check "/metrics: connected, fetched, acked" bash -c \
		"grep -q '^forq_upstream_connected[{]queue=\"default\"[}] 1' '$TMP/b.metrics' &&
		 grep -Eq '^forq_upstream_fetched_total[{]queue=\"default\"[}] [1-9]' '$TMP/b.metrics' &&
		 grep -Eq '^forq_upstream_acked_total[{]queue=\"default\"[}] [1-9]' '$TMP/b.metrics' &&
		 grep -q '^# TYPE forq_upstream_reconnects_total counter' '$TMP/b.metrics'"
	check "/readyz is ready while connected" curl -sf "127.0.0.1:$bport/readyz"
	stop_forqd "$b"
	check "host b exits 0 on SIGTERM (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

in_progress() {
	# 200 tasks at 25 a second: the last waits 8 s in the ring, past AckWait
	# (6 s); InProgress (every 2 s) keeps each with this host, so each runs
	# once.
	start_forqd ip --upstream "$URLS" --upstream-stream S2 --tcp off --workers 1 \
		--lease-timeout 6 --rate 25 --rate-burst 1 --results "$TMP/ip.jsonl" ||
		{ bad "forqd starts"; return; }
	local pid=$FORQD_PID port=$HTTP_PORT
	seq 1 200 | sed 's/$/*2/' >"$TMP/ip.txt"
	check "200 tasks published" bash -c \
		"'$FORQ' push --upstream '$URLS' --upstream-stream S2 --file '$TMP/ip.txt' >/dev/null"
	check "all 200 done" wait_for 120 bash -c "[ \$(cat '$TMP/ip.jsonl' | wc -l) -ge 200 ]"
	sleep 1
	check "each ran once (no redelivery while held)" \
		bash -c "[ \$(cat '$TMP/ip.jsonl' | wc -l) -eq 200 ] && [ \$(grep -c '\"attempts\":1,' '$TMP/ip.jsonl') -eq 200 ]"
	check "fetched 200, no more" bash -c \
		"curl -sf 127.0.0.1:$port/metrics | grep -q '^forq_upstream_fetched_total[{]queue=\"default\"[}] 200$'"
	check "the stream ends empty" wait_for 30 stream_empty S2
	stop_forqd "$pid"
}

poison() {
	# exec: a task 'poison' always fails (exit 1: retried), others print ok.
	start_forqd poison --upstream "$URLS" --upstream-stream S3 --tcp off --workers 1 \
		--max-attempts 3 --retry-backoff 20 --results "$TMP/p.jsonl" \
		--handler 'exec:read t; [ "$t" != poison ] && echo ok' ||
		{ bad "forqd starts"; return; }
	local pid=$FORQD_PID port=$HTTP_PORT
	"$FORQ" push --upstream "$URLS" --upstream-stream S3 poison good >/dev/null
	check "the poison task ends dead after 3 attempts" wait_for 60 \
		grep -q '"task":"poison","status":"dead".*"attempts":3' "$TMP/p.jsonl"
	check "the good one is done" wait_for 30 grep -q '"task":"good","status":"done"' "$TMP/p.jsonl"
	check "terminated once, acked once, its two retries given back to the stream (Nak)" \
		wait_for 10 bash -c \
		"curl -sf 127.0.0.1:$port/metrics >'$TMP/p.metrics' &&
		 grep -q '^forq_upstream_terminated_total[{]queue=\"default\"[}] 1$' '$TMP/p.metrics' &&
		 grep -q '^forq_upstream_acked_total[{]queue=\"default\"[}] 1$' '$TMP/p.metrics' &&
		 grep -q '^forq_upstream_naked_total[{]queue=\"default\"[}] 2$' '$TMP/p.metrics' &&
		 grep -q '^forq_upstream_fetched_total[{]queue=\"default\"[}] 4$' '$TMP/p.metrics'"
	check "the stream ends empty (Term removes it)" wait_for 30 stream_empty S3
	check "one result line each" [ "$(lines "$TMP/p.jsonl")" -eq 2 ]
	stop_forqd "$pid"
}

retry_hosts() {
	# The runs are counted in a file both hosts share; the third succeeds.
	local h='exec:read t; n=$(($(cat '"$TMP"'/runs 2>/dev/null || echo 0) + 1)); echo $n >'"$TMP"'/runs; [ $n -ge 3 ] && echo ok'
	# The backoff outlasts host a's stop: a redelivery host a fetched and
	# gave back while stopping would count as a delivery (attempts 4).
	local opts=(--upstream "$URLS" --upstream-stream RETRY --tcp off --workers 1 --max-attempts 5
		--retry-backoff 5000 --handler "$h")
	start_forqd ra "${opts[@]}" --results "$TMP/ra.jsonl" || { bad "host a starts"; return; }
	local a=$FORQD_PID aport=$HTTP_PORT
	"$FORQ" push --upstream "$URLS" --upstream-stream RETRY flaky >/dev/null
	check "host a runs it, fails, gives it back to the stream (Nak)" \
		wait_for 30 metric_is "$aport" forq_upstream_naked_total 1
	stop_forqd "$a"
	check "host a wrote no result (the task is not over)" [ "$(lines "$TMP/ra.jsonl")" -eq 0 ]
	start_forqd rb "${opts[@]}" --results "$TMP/rb.jsonl" || { bad "host b starts"; return; }
	local b=$FORQD_PID bport=$HTTP_PORT
	check "host b ends it done, attempts 3 (JetStream's deliveries, across hosts)" wait_for 60 \
		grep -q '"task":"flaky","status":"done","result":"ok".*"attempts":3' "$TMP/rb.jsonl"
	check "three runs in all, one result line" bash -c \
		"[ \$(cat '$TMP/runs') -eq 3 ] && [ \$(cat '$TMP/rb.jsonl' | wc -l) -eq 1 ]"
	check "host b: one retry given back, then acked" wait_for 10 bash -c \
		"curl -sf 127.0.0.1:$bport/metrics >'$TMP/rb.metrics' &&
		 grep -q '^forq_upstream_naked_total[{]queue=\"default\"[}] 1$' '$TMP/rb.metrics' &&
		 grep -q '^forq_upstream_acked_total[{]queue=\"default\"[}] 1$' '$TMP/rb.metrics' &&
		 grep -q '^forq_tasks_retried_total[{]queue=\"default\"[}] 1$' '$TMP/rb.metrics'"
	check "the stream ends empty" wait_for 30 stream_empty RETRY
	stop_forqd "$b"
}

# A nats-server of its own that asks for a token.
auth() {
	local port tok=s3cret-nats-token-e2e r
	port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p "$TMP/natsauth"
	nats-server -js -sd "$TMP/natsauth" -a 127.0.0.1 -p "$port" --auth "$tok" \
		>"$TMP/natsauth.log" 2>&1 &
	NATS_PIDS+=($!)
	PIDS+=($!)
	local url=nats://127.0.0.1:$port
	check "the token server listens" wait_for 20 bash -c "echo >/dev/tcp/127.0.0.1/$port" 2>/dev/null
	printf '%s\n' "$tok" >"$TMP/nats.token"
	printf 'not-the-nats-token\n' >"$TMP/wrong.token"
	chmod 600 "$TMP/nats.token" "$TMP/wrong.token"
	local aopts=(--upstream "$url" --upstream-stream A1 --tcp off --workers 1)
	start_forqd auth "${aopts[@]}" --upstream-token-file "$TMP/nats.token" \
		--results "$TMP/auth.jsonl" || { bad "forqd connects with --upstream-token-file"; return; }
	local pid=$FORQD_PID
	ok "forqd connects with --upstream-token-file"
	check "forq push with FORQ_NATS_TOKEN publishes" bash -c \
		"FORQ_NATS_TOKEN='$tok' '$FORQ' push --upstream '$url' --upstream-stream A1 '6*2' >/dev/null"
	check "the task runs" wait_for 30 grep -q '"task":"6\*2","status":"done","result":"12"' \
		"$TMP/auth.jsonl"
	stop_forqd "$pid"
	FORQ_NATS_TOKEN=$tok start_forqd auth_env "${aopts[@]}" --results off ||
		{ bad "forqd connects with FORQ_NATS_TOKEN"; return; }
	ok "forqd connects with FORQ_NATS_TOKEN"
	stop_forqd "$FORQD_PID"
	"$FORQD" "${aopts[@]}" --upstream-token-file "$TMP/wrong.token" --http off --results off \
		--shm-name /forq-e2e-$$-auth >"$TMP/auth_wrong.log" 2>&1
	r=$?
	check "a wrong token is refused at start: exit 3 (got $r)" [ "$r" -eq 3 ]
	check "... said so (authorization)" \
		grep -qi 'event=upstream_refused.*cannot connect.*authorization' "$TMP/auth_wrong.log"
	env -u FORQ_NATS_TOKEN "$FORQD" "${aopts[@]}" --http off --results off \
		--shm-name /forq-e2e-$$-auth >"$TMP/auth_none.log" 2>&1
	r=$?
	check "no token is refused too: exit 3 (got $r)" [ "$r" -eq 3 ]
	check "no queue was left behind" [ ! -e /dev/shm/forq-e2e-$$-auth ]
	check "the token is in no log" bash -c "! grep -l -- '$tok' '$TMP'/*.log"
}

dedup() {
	local s1 s2
	s1=$("$FORQ" push --upstream "$URLS" --upstream-stream S4 --key job-7 '7*2' 2>"$TMP/d1.err")
	s2=$("$FORQ" push --upstream "$URLS" --upstream-stream S4 --key job-7 '7*2' 2>"$TMP/d2.err")
	check "the same key twice: the same sequence ($s1, $s2)" eval '[ -n "$s1" ] && [ "$s1" = "$s2" ]'
	check "the second push says it published nothing" grep -q 'holds key job-7 already' "$TMP/d2.err"
	check "one message in the stream" [ "$(jsz messages S4)" = 1 ]
	start_forqd dd --upstream "$URLS" --upstream-stream S4 --tcp off --workers 1 \
		--results "$TMP/d.jsonl" || { bad "forqd starts"; return; }
	check "one task ran" wait_for 30 grep -q '"task":"7\*2","status":"done"' "$TMP/d.jsonl"
	sleep 1
	check "only one" [ "$(lines "$TMP/d.jsonl")" -eq 1 ]
	stop_forqd
}

http_push() {
	start_forqd hp --upstream "$URLS" --upstream-stream S5 --tcp off --workers 1 \
		--results "$TMP/h.jsonl" || { bad "forqd starts"; return; }
	local r
	r=$(curl -s -w ' %{http_code}' -X POST -d '[{"payload":"4*2"},{"payload":"5*2"}]' "127.0.0.1:$HTTP_PORT/tasks")
	check "POST /tasks publishes: 202 ($r)" grep -q ' 202$' <<<"$r"
	check "both run" wait_for 30 bash -c "[ \$(grep -c '\"status\":\"done\"' '$TMP/h.jsonl') -eq 2 ]"
	r=$(curl -s -w ' %{http_code}' -X POST -d '{"payload":"1*2","delay":"5s"}' \
		"127.0.0.1:$HTTP_PORT/tasks")
	check "a delay is refused: 400 ($r)" grep -q 'NATS stream.* 400$' <<<"$r"
	check "forq_upstream_fetched_total 2" bash -c \
		"curl -sf 127.0.0.1:$HTTP_PORT/metrics | grep -q '^forq_upstream_fetched_total[{]queue=\"default\"[}] 2$'"
	stop_forqd
}

# examples/nats_producer.c: a C program with libnats alone feeds the queue;
# its keys are Nats-Msg-Ids (a second run publishes nothing new).
c_producer() {
	local prod=${FORQ_BUILD:-$(dirname "$FORQ")/..}/tests/example_nats_producer out
	if ! skip_unless "example_nats_producer not built" test -x "$prod"; then
		check "a C producer's tasks run" false
		return
	fi
	start_forqd cp --upstream "$URLS" --upstream-stream CPROD --tcp off --http off --workers 1 \
		--results "$TMP/cp.jsonl" || { bad "forqd starts"; return; }
	out=$("$prod" "$URLS" CPROD 300 job 2>&1)
	check "examples/nats_producer publishes 300 tasks ($out)" grep -q "published 300 tasks: .* 0 duplicates" <<<"$out"
	out=$("$prod" "$URLS" CPROD 300 job 2>&1)
	check "... and again with the same keys: 300 duplicates ($out)" grep -q " 300 duplicates" <<<"$out"
	check "300 tasks done, each i*i+1 right" wait_for 30 $PY -c '
import json, sys
want = {"%d*%d+1" % (i, i): str(i * i + 1) for i in range(1, 301)}
got = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(not (len(got) == 300 and all(r["status"] == "done" and want.get(r["task"]) == r["result"] for r in got)))' "$TMP/cp.jsonl"
	stop_forqd
}

refused() {
	# Its own stream and consumer (R3, AckWait 4 s), made by a forqd that
	# stops: the part runs alone too (ONLY=refused).
	start_forqd rf "${UP[@]}" --upstream-stream REFUSED --results off || { bad "forqd starts"; return; }
	stop_forqd
	"$FORQD" --upstream "$URLS" --upstream-stream REFUSED --lease-timeout 9 --tcp off --http off \
		--shm-name /forq-e2e-$$-refused --results off >"$TMP/refused.log" 2>&1
	local code=$?
	check "another AckWait is refused: exit 3 (got $code)" [ "$code" -eq 3 ]
	check "the log names the setting" grep -q 'event=upstream_refused.*AckWait 4000 ms.*9000 ms' \
		"$TMP/refused.log"
	"$FORQD" --upstream "$URLS" --upstream-stream REFUSED --upstream-replicas 1 --lease-timeout 4 \
		--tcp off --http off --shm-name /forq-e2e-$$-refused --results off \
		>"$TMP/refused2.log" 2>&1
	code=$?
	check "another replica count is refused: exit 3 (got $code)" [ "$code" -eq 3 ]
	check "the log says replicas" grep -q 'has 3 replicas, forq needs 1' "$TMP/refused2.log"
	check "no queue was left behind" [ ! -e /dev/shm/forq-e2e-$$-refused ]
	check "forqd --upstream with a bad URL list is a usage error" bash -c \
		"'$FORQD' --upstream 'nats://a:1,,nats://b:2' --tcp off --http off --results off \
			--shm-name /forq-e2e-$$-refused 2>&1 | grep -q 'empty or blank item'"
}

nats_node_dies() {
	local n=4000
	seq 1 $n | sed 's/$/*2/' >"$TMP/nd.txt"
	start_forqd nd "${UP[@]}" --upstream-stream S6 --rate 800 --results "$TMP/nd.jsonl" ||
		{ bad "forqd starts"; return; }
	local pid=$FORQD_PID port=$HTTP_PORT i node=
	check "$n tasks published" bash -c \
		"'$FORQ' push --upstream '$URLS' --upstream-stream S6 --file '$TMP/nd.txt' >/dev/null"
	check "tasks run" wait_for 60 bash -c "[ \$(cat '$TMP/nd.jsonl' | wc -l) -ge 500 ]"
	# The node forqd is connected to (libnats picks one of the list).
	for i in 0 1 2; do
		ss -tnpH state established "( dport = :${P[$i]} )" 2>/dev/null | grep -q "pid=$pid," &&
			node=$i
	done
	check "forqd's NATS node is found (ss)" [ -n "$node" ]
	[ -n "$node" ] || node=0
	kill -9 "${NATS_PIDS[$node]}"
	check "every task ends done with 2 of 3 nodes" wait_for 300 bash -c \
		"[ \$(sed -n 's/.*\"task\":\"\\([0-9]*\\)\\*2\",\"status\":\"done\".*/\\1/p' '$TMP/nd.jsonl' | sort -u | wc -l) -ge $n ]"
	check "forqd reconnected (log and /metrics)" bash -c \
		"grep -q 'event=upstream_reconnected' '$TMP/nd.log' &&
		 curl -sf 127.0.0.1:$port/metrics | grep -Eq '^forq_upstream_reconnects_total[{]queue=\"default\"[}] [1-9]'"
	check "the stream ends empty" wait_for 60 stream_empty S6
	stop_forqd "$pid"
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

# tcp_talk PORT REPLIES: sends stdin to 127.0.0.1:PORT, prints the first
# REPLIES reply lines (line ends dropped) or what came within 20 s.
tcp_talk() {
	[ -f "$TMP/tcp_talk.py" ] || cat >"$TMP/tcp_talk.py" <<'EOF'
import socket, sys, time
port, want = int(sys.argv[1]), int(sys.argv[2])
data = sys.stdin.buffer.read()
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(data)
buf, end = b"", time.time() + 20
while buf.count(b"\n") < want and time.time() < end:
    try:
        d = s.recv(65536)
    except socket.timeout:
        break
    if not d:
        break
    buf += d
sys.stdout.write("\n".join(l.decode() for l in buf.split(b"\r\n")[:want]) + "\n")
EOF
	$PY "$TMP/tcp_talk.py" "$1" "$2"
}

tcp_put() {
	start_forqd tp --upstream "$URLS" --upstream-stream S7 --workers 1 \
		--results "$TMP/tp.jsonl" || { bad "forqd starts"; return; }
	local pid=$FORQD_PID port=$HTTP_PORT out
	out=$(printf 'PUT 3\r\n6*2\r\nPING\r\nPUT key=k9 3\r\n7*2\r\nPUT key=k9 3\r\n7*2\r\n' |
		tcp_talk "$TCP_PORT" 4 | tr '\n' '|')
	check "PUT, PING, PUT key=, the same key: OK 1, PONG, OK 2, OK 2 duplicate ($out)" \
		[ "$out" = "OK 1|PONG|OK 2|OK 2 duplicate|" ]
	check "both tasks run on the host" wait_for 30 bash -c \
		"grep -q '\"task\":\"6\*2\",\"status\":\"done\",\"result\":\"12\"' '$TMP/tp.jsonl' &&
		 grep -q '\"task\":\"7\*2\",\"status\":\"done\",\"result\":\"14\"' '$TMP/tp.jsonl'"
	check "... fetched from the stream (forq_upstream_fetched_total 2)" wait_for 10 bash -c \
		"curl -sf 127.0.0.1:$port/metrics | grep -q '^forq_upstream_fetched_total[{]queue=\"default\"[}] 2$'"
	# (the payload of a PUT over --max-payload, 1024, is read and dropped)
	out=$(printf 'PUT high 3\r\n1*2\r\nPUT delay=100 3\r\n1*2\r\nPUT low 3\r\n1*2\r\nPUT bogus 3\r\nPUT 2000\r\n%s\r\nPING\r\n' \
		"$(head -c 2000 /dev/zero | tr '\0' x)" | tcp_talk "$TCP_PORT" 6 | tr '\n' '|')
	check "a priority, a delay, garbage, too large: ERR each, then PONG ($out)" \
		[ "$out" = "ERR not-supported|ERR not-supported|ERR not-supported|ERR bad-priority|ERR payload-too-large|PONG|" ]
	sleep 1
	check "nothing more was published or run" bash -c \
		"[ \$(cat '$TMP/tp.jsonl' | wc -l) -eq 2 ] &&
		 curl -sf 127.0.0.1:$port/metrics | grep -q '^forq_upstream_fetched_total[{]queue=\"default\"[}] 2$'"
	check "the stream ends empty" wait_for 30 stream_empty S7
	stop_forqd "$pid"
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

tcp_many() {
	start_forqd tm --upstream "$URLS" --upstream-stream S8 --workers 2 \
		--results "$TMP/tm.jsonl" || { bad "forqd starts"; return; }
	local pid=$FORQD_PID
	$PY - "$TCP_PORT" >"$TMP/tm.out" 2>&1 <<'EOF'
import socket, sys, threading
port, clients, each = int(sys.argv[1]), 100, 20
seqs, bad = [], []
lock = threading.Lock()
def client(c):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(b"".join(b"PUT %d\r\n%d+%d\r\n" % (len(b"%d+%d" % (c, k)), c, k)
                           for k in range(each)) + b"PING\r\n")
        buf = b""
        while buf.count(b"\n") < each + 1:
            d = s.recv(65536)
            if not d:
                break
            buf += d
        lines = buf.split(b"\r\n")[:each + 1]
        with lock:
            if lines[-1] != b"PONG" or not all(l.startswith(b"OK ") for l in lines[:-1]):
                bad.append((c, lines[:3], lines[-1]))
            seqs.extend(int(l.split()[1]) for l in lines[:-1] if l.startswith(b"OK "))
    except OSError as e:
        with lock:
            bad.append((c, str(e)))
ts = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
for t in ts: t.start()
for t in ts: t.join()
print("answered", len(seqs), "distinct", len(set(seqs)), "bad", bad[:3])
sys.exit(0 if not bad and len(set(seqs)) == clients * each else 1)
EOF
	local r=$?
	check "2000 PUTs from 100 clients: each OK with its own sequence, in order ($(cat "$TMP/tm.out"))" \
		[ "$r" -eq 0 ]
	check "all 2000 run" wait_for 120 bash -c "[ \$(grep -c '\"status\":\"done\"' '$TMP/tm.jsonl') -ge 2000 ]"
	check "the stream ends empty" wait_for 60 stream_empty S8
	stop_forqd "$pid"
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

results_subject() {
	start_forqd rs --upstream "$URLS" --upstream-stream S9 --upstream-results --tcp off \
		--workers 1 --results "$TMP/rs.jsonl" || { bad "forqd starts"; return; }
	local pid=$FORQD_PID r
	"$FORQ" push --upstream "$URLS" --upstream-stream S9 --wait 60 '2*21' '3*3' \
		>"$TMP/rs.out" 2>"$TMP/rs.err"
	r=$?
	check "forq push --wait: exit 0 when every task is done (got $r)" [ "$r" -eq 0 ]
	check "... prints both sequences, then both result lines with them" bash -c \
		"[ \$(grep -c '^[0-9][0-9]*$' '$TMP/rs.out') -eq 2 ] &&
		 grep -q '^{\"seq\":[0-9]*,\"id\":[0-9]*,\"task\":\"2\*21\",\"status\":\"done\",\"result\":\"42\",\"attempts\":1,\"queue\":\"default\",\"stream\":\"S9\"}$' '$TMP/rs.out' &&
		 grep -q '\"task\":\"3\*3\",\"status\":\"done\",\"result\":\"9\"' '$TMP/rs.out'"
	"$FORQ" push --upstream "$URLS" --upstream-stream S9 --wait 60 '1+1' 'oops+' \
		>"$TMP/rs2.out" 2>"$TMP/rs2.err"
	r=$?
	check "a failed task: exit 1 (got $r), said on stderr" bash -c \
		"[ $r -eq 1 ] && grep -q '1 of 2 tasks did not end done' '$TMP/rs2.err'"
	check "... its line has status failed and the error" \
		grep -q '"task":"oops+","status":"failed","error":"' "$TMP/rs2.out"
	check "the host's results file has every task too" bash -c "[ \$(cat '$TMP/rs.jsonl' | wc -l) -eq 4 ]"
	stop_forqd "$pid"
	"$FORQ" push --upstream "$URLS" --upstream-stream S9 --wait 2 '5*5' >"$TMP/rs3.out" 2>"$TMP/rs3.err"
	r=$?
	check "no forqd to run it: --wait 2 gives up, exit 1 (got $r)" bash -c \
		"[ $r -eq 1 ] && grep -q 'no result for 1 of 1 tasks within 2 s' '$TMP/rs3.err'"
	"$FORQ" push --wait 5 x >/dev/null 2>"$TMP/rs4.err"
	r=$?
	check "--wait without --upstream: exit 2 (got $r)" [ "$r" -eq 2 ]
}

# A stream out of reach: its own one-node NATS, killed under a running forqd.
tcp_unreachable() {
	local np pid out
	np=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	mkdir -p "$TMP/solo"
	nats-server -js -sd "$TMP/solo" -a 127.0.0.1 -p "$np" >"$TMP/solo.log" 2>&1 &
	local solo=$!
	PIDS+=("$solo")
	wait_for 30 bash -c "'$FORQ' push --upstream nats://127.0.0.1:$np --upstream-stream SU 1*2 >/dev/null 2>&1" ||
		{ bad "a one-node NATS starts"; return; }
	start_forqd tu --upstream "nats://127.0.0.1:$np" --upstream-stream SU --workers 1 \
		--results "$TMP/tu.jsonl" || { bad "forqd starts"; return; }
	pid=$FORQD_PID
	out=$(printf 'PUT 3\r\n2*2\r\n' | tcp_talk "$TCP_PORT" 1)
	check "PUT while the stream is in reach: OK 2 ($out)" [ "$out" = "OK 2" ]
	kill -9 "$solo"
	wait "$solo" 2>/dev/null
	check "forqd sees the stream out of reach" wait_for 30 bash -c \
		"curl -sf 127.0.0.1:$HTTP_PORT/metrics | grep -q '^forq_upstream_connected[{]queue=\"default\"[}] 0$'"
	out=$(printf 'PUT 3\r\n3*2\r\nPING\r\n' | tcp_talk "$TCP_PORT" 2 | tr '\n' '|')
	check "PUT now: ERR not-published, and the connection goes on ($out)" \
		[ "$out" = "ERR not-published|PONG|" ]
	check "... no local task either" bash -c "! grep -q '\"task\":\"3\*2\"' '$TMP/tu.jsonl'"
	stop_forqd "$pid"
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}

# Named queues (forqd --config): each [queue NAME] may have its own upstream;
# a named queue's stream is STREAM-NAME unless its section names one.
named_queues() {
	R=$TMP/nq.jsonl
	cat >"$TMP/nq.conf" <<CONF
results = $R
workers = 1

[queue default]
upstream = $URLS
upstream-stream = NQ

[queue emails]
upstream = $URLS
handler = exec:read t; echo "mail \$t"

[queue local]
CONF
	FORQD_START_TIMEOUT=30 start_forqd nq --config "$TMP/nq.conf" || { bad "forqd starts with three queues, two upstream"; return; }
	local pid=$FORQD_PID port=$HTTP_PORT r
	check "each upstream queue connects to its own stream (log)" bash -c \
		"grep -q 'event=upstream_connected queue=default stream=NQ ' '$FORQD_LOG' &&
		 grep -q 'event=upstream_connected queue=emails stream=forq-emails ' '$FORQD_LOG' &&
		 ! grep -q 'event=upstream_connected queue=local' '$FORQD_LOG'"
	"$FORQ" push --upstream "$URLS" --upstream-stream NQ '3*2' >/dev/null
	"$FORQ" push --upstream "$URLS" --upstream-stream forq-emails hi >/dev/null
	r=$(curl -s -w ' %{http_code}' -X POST -d '{"payload":"bye"}' "127.0.0.1:$port/queues/emails/tasks")
	check "POST /queues/emails/tasks publishes to its stream: 202 ($r)" grep -q ' 202$' <<<"$r"
	r=$(curl -s -w ' %{http_code}' -X POST -d '{"payload":"1*2","delay":"1s"}' \
		"127.0.0.1:$port/queues/local/tasks")
	check "the local queue takes a delay (no stream): 202 ($r)" grep -q ' 202$' <<<"$r"
	check "the default queue runs its stream's task" wait_for 30 \
		grep -q '"task":"3\*2","status":"done","result":"6".*"queue":"default"' "$R"
	check "emails runs both of its stream's tasks with its own handler" wait_for 30 bash -c \
		"grep -q '\"task\":\"hi\",\"status\":\"done\",\"result\":\"mail hi\".*\"queue\":\"emails\"' '$R' &&
		 grep -q '\"task\":\"bye\",\"status\":\"done\",\"result\":\"mail bye\".*\"queue\":\"emails\"' '$R'"
	check "the local queue runs its own" wait_for 30 grep -q '"task":"1\*2","status":"done".*"queue":"local"' "$R"
	curl -sf "127.0.0.1:$port/metrics" >"$TMP/nq.metrics"
	check "/metrics: forq_upstream_* per queue (connected 1, 1, 0; fetched 1, 2, 0)" bash -c \
		"grep -q '^forq_upstream_connected[{]queue=\"default\"[}] 1$' '$TMP/nq.metrics' &&
		 grep -q '^forq_upstream_connected[{]queue=\"emails\"[}] 1$' '$TMP/nq.metrics' &&
		 grep -q '^forq_upstream_connected[{]queue=\"local\"[}] 0$' '$TMP/nq.metrics' &&
		 grep -q '^forq_upstream_fetched_total[{]queue=\"default\"[}] 1$' '$TMP/nq.metrics' &&
		 grep -q '^forq_upstream_fetched_total[{]queue=\"emails\"[}] 2$' '$TMP/nq.metrics' &&
		 grep -q '^forq_upstream_fetched_total[{]queue=\"local\"[}] 0$' '$TMP/nq.metrics'"
	if command -v promtool >/dev/null 2>&1; then
		check "promtool check metrics passes" bash -c "promtool check metrics <'$TMP/nq.metrics'"
	fi
	r=$(printf 'PUT queue=emails 3\r\nabc\r\nPUT queue=local 3\r\n2*2\r\n' |
		tcp_talk "$TCP_PORT" 2 | tr '\n' '|')
	check "TCP PUT queue=emails publishes to its stream (sequence 3), queue=local pushes ($r)" \
		grep -Eq '^OK 3[|]OK [0-9]+[|]$' <<<"$r"
	check "... and both run in their queues" wait_for 30 bash -c \
		"grep -q '\"task\":\"abc\",\"status\":\"done\",\"result\":\"mail abc\".*\"queue\":\"emails\"' '$R' &&
		 grep -q '\"task\":\"2\*2\",\"status\":\"done\".*\"queue\":\"local\"' '$R'"
	check "both streams end empty" wait_for 30 nq_streams_empty
	stop_forqd "$pid"
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	# Refused at start (exit 2), the file and the line named.
	cat >"$TMP/same.conf" <<CONF
[queue a]
upstream = $URLS
upstream-stream = SAME
[queue b]
upstream = $URLS
upstream-stream = SAME
CONF
	"$FORQD" --config "$TMP/same.conf" --http off >"$TMP/same.log" 2>&1
	r=$?
	check "two queues on one stream: exit 2 (got $r)" [ "$r" -eq 2 ]
	check "... the file, the line and both queues named" \
		grep -q "same.conf:4: queues \"a\" and \"b\" both take the stream SAME" "$TMP/same.log"
	# A config file's journal is its local queues' (a queue with upstream is
	# not journaled); on the command line the one queue cannot have both.
	"$FORQD" --upstream "$URLS" --journal "$TMP/j" --http off >"$TMP/journal.log" 2>&1
	r=$?
	check "--upstream with --journal: exit 2 (got $r)" [ "$r" -eq 2 ]
	check "... said so" grep -q -- '--upstream and --journal cannot be used together' "$TMP/journal.log"
	"$FORQ" push --upstream "$URLS" --queue emails x >/dev/null 2>"$TMP/pq.err"
	r=$?
	check "forq push --upstream --queue: exit 2 (got $r)" [ "$r" -eq 2 ]
	check "... told to name the stream" grep -q 'upstream-stream' "$TMP/pq.err"
}

part two_hosts "two forqd hosts on one R3 stream; kill -9 of one mid-run loses nothing"
part in_progress "a task held past AckWait is not redelivered (InProgress)"
part poison "a task that always fails ends dead through Term"
part retry_hosts "a retry goes back to the stream; attempts are counted across hosts"
part auth "a NATS token from a file or the environment; a wrong one refused"
part dedup "--key is the Nats-Msg-Id: one message, one task"
part http_push "POST /tasks publishes to the stream"
part c_producer "a C program publishes with libnats alone (examples/nats_producer.c)"
part refused "a stream or consumer with other settings is refused, not changed"
# Before the node kill below: it leaves the cluster one node short.
part named_queues "named queues: each its own upstream stream, or none; bad combinations refused"
part tcp_put "TCP PUT publishes to the stream; bad PUTs get ERR"
part tcp_many "100 concurrent TCP producers are all answered"
part results_subject "--upstream-results: forq push --upstream --wait gets the results"
part tcp_unreachable "TCP PUT while the stream is out of reach: ERR not-published"
part nats_node_dies "kill -9 of the NATS node forqd is connected to: it reconnects, nothing is lost"
finish
