#!/usr/bin/env bash
# A remote worker on another host address: two network namespaces joined by
# a veth pair (10.77.0.1 for forqd, 10.77.0.2 for the worker), built here and
# removed on every exit path. Needs root, iproute2 and network namespaces;
# otherwise it is skipped (exit 77).
#
#   FORQD=build/service/forqd FORQ=build/cli/forq tests/e2e/test_netns.sh
#
# Checks: forqd refuses a non-loopback --tcp without an admin token; with one,
# a client must AUTH first (ERR unauthorized and a hang-up otherwise, a wrong
# token too); `forq worker` without the token or with a wrong one exits 3;
# with the token (--token-file, or FORQ_TOKEN) it runs every task, each
# result right, from peer 10.77.0.2; SIGINT stops it with exit 0. Over HTTP
# (--insecure, no token), POST /shutdown from 10.77.0.2 gets 403 and forqd
# keeps running. With an admin and a worker token, tasks over HTTP from
# 10.77.0.2 need a token (401 without), the worker token opens them and TCP
# but POST /shutdown with it is 403. Parts (for ONLY=, see lib.sh): refusal,
# auth_and_workers, http_403, worker_token.
# Last line: "N passed, N failed"; exits 1 if any check failed.
set -u

. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root"
ip netns list >/dev/null 2>&1 || skip_all "needs iproute2 with ip netns"
unshare -n true 2>/dev/null || skip_all "cannot make network namespaces here"
need_binaries "$FORQD" "$FORQ"

tmp=$TMP
ns_s=forq-srv-$$
ns_w=forq-wrk-$$
veth_s=fqs$$
veth_w=fqw$$
shm=/forq-e2e-netns-$$
srv=10.77.0.1
wrk=10.77.0.2

cleanup_extra() {
	ip netns del "$ns_s" 2>/dev/null
	ip netns del "$ns_w" 2>/dev/null
	ip link del "$veth_s" 2>/dev/null
	rm -f /dev/shm"$shm"*
}
unset FORQ_ADMIN_TOKEN FORQ_TOKEN

tcp_client_build
client=$CLIENT

# ---- the two hosts ----------------------------------------------------------
if ! { ip netns add "$ns_s" && ip netns add "$ns_w" &&
	ip link add "$veth_s" type veth peer name "$veth_w" &&
	ip link set "$veth_s" netns "$ns_s" && ip link set "$veth_w" netns "$ns_w" &&
	ip -n "$ns_s" addr add "$srv/24" dev "$veth_s" && ip -n "$ns_w" addr add "$wrk/24" dev "$veth_w" &&
	ip -n "$ns_s" link set lo up && ip -n "$ns_w" link set lo up &&
	ip -n "$ns_s" link set "$veth_s" up && ip -n "$ns_w" link set "$veth_w" up; }; then
	bad "network namespaces with a veth pair"
	finish
fi
ok "network namespaces $ns_s ($srv) and $ns_w ($wrk)"
in_s() { ip netns exec "$ns_s" "$@"; }
in_w() { ip netns exec "$ns_w" "$@"; }
# forqd in the server's namespace, for start_forqd (FORQD=$forqd_s start_forqd ...).
forqd_s=$tmp/forqd-in-$ns_s
printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$ns_s" "$FORQD" >"$forqd_s"
chmod +x "$forqd_s"

# ---- no token, no listening beyond loopback ---------------------------------
refusal() {
	timeout 10 ip netns exec "$ns_s" "$FORQD" --shm-name "$shm-a" --workers 0 --http off \
		--tcp "$srv:7070" 2>"$tmp/refuse.log"
	rc=$?
	check "forqd refuses $srv without an admin token (exit 5)" [ $rc -eq 5 ]
	check "... and says how to fix it" grep -q 'admin token' "$tmp/refuse.log"
}
part refusal "no admin token: no listening beyond loopback"

# ---- forqd with a token -------------------------------------------------------
auth_and_workers() {
	token=netns-token-$$-$RANDOM
	printf '%s\n' "$token" >"$tmp/token"
	printf 'wrong-token-1234\n' >"$tmp/wrong"
	chmod 600 "$tmp/token" "$tmp/wrong"
	awk 'BEGIN { for (i = 1; i <= 2000; i++) printf "%d*%d+%d\n", i, i % 17, i % 5 }' >"$tmp/tasks.txt"
	if ! FORQD=$forqd_s start_forqd forqd --shm-name "$shm" --workers 0 --http off --tcp "$srv:7070" \
		--admin-token-file "$tmp/token" --tasks "$tmp/tasks.txt" --results "$tmp/results" \
		--log-level debug; then
		bad "forqd listens on $srv:7070"
		return
	fi
	fpid=$FORQD_PID
	ok "forqd listens on $srv:7070 with an admin token"

	out=$(printf 'PING\r\nPING\r\n' | in_w "$client" "$srv:7070" raw 1000 | tr -d '\r')
	check "no AUTH: ERR unauthorized, then closed" grep -qz '^ERR unauthorized.\[closed\]' <<<"$out"
	out=$(printf 'AUTH wrong-token-1234\r\nPING\r\n' | in_w "$client" "$srv:7070" raw 1000 | tr -d '\r')
	check "wrong token: ERR unauthorized, then closed" grep -qz '^ERR unauthorized.\[closed\]' <<<"$out"
	out=$(printf 'AUTH %s\r\nPING\r\nQUIT\r\n' "$token" | in_w "$client" "$srv:7070" raw 1000 | tr -d '\r')
	check "right token: OK, then commands work" grep -qz '^OK.PONG.BYE' <<<"$out"

	timeout 15 ip netns exec "$ns_w" "$FORQ" worker --connect "$srv:7070" --quiet 2>"$tmp/w0.log"
	check "a worker without the token exits 3" [ $? -eq 3 ]
	timeout 15 ip netns exec "$ns_w" "$FORQ" worker --connect "$srv:7070" --token-file "$tmp/wrong" \
		--quiet 2>"$tmp/w1.log"
	check "a worker with a wrong token exits 3" [ $? -eq 3 ]
	check "... and says why" grep -q 'token' "$tmp/w1.log"

	# ---- the remote worker runs the tasks ----------------------------------------
	ip netns exec "$ns_w" "$FORQ" worker --connect "$srv:7070" --token-file "$tmp/token" \
		--handler arith 2>"$tmp/w2.log" &
	w2=$!
	PIDS+=("$w2")
	FORQ_TOKEN=$token ip netns exec "$ns_w" "$FORQ" worker --connect "$srv:7070" --handler arith \
		--batch 1 2>"$tmp/w3.log" &
	w3=$!
	PIDS+=("$w3")
	done_all() { [ -f "$tmp/results" ] && [ "$(wc -l <"$tmp/results")" -ge 2000 ]; }
	check "the remote workers finish 2000 tasks" wait_for 60 done_all
	check "their connections come from $wrk" grep -q "event=tcp_accepted peer=$wrk:" "$tmp/forqd.log"
	wrong=$(arith_results_wrong "$tmp/results")
	[ -z "$wrong" ] && ok "every result is right" || { bad "every result is right"; echo "$wrong"; }
	exited=0
	for p in $w2 $w3; do
		kill -INT "$p"
		timeout 10 tail --pid="$p" -f /dev/null
		wait "$p" && exited=$((exited + 1))
	done
	check "both workers exit 0 on SIGINT" [ $exited -eq 2 ]
	check "the token never appears in logs" bash -c "! grep -q '$token' '$tmp'/*.log"
	stop_forqd "$fpid" 15
	check "forqd exits 0" [ "$EXIT_CODE" -eq 0 ]
}
part auth_and_workers "with an admin token: AUTH first, then workers from  run every task"

# ---- HTTP: no admin token, POST /shutdown from another host is 403 ------------
http_403() {
	if FORQD=$forqd_s start_forqd http --shm-name "$shm-h" --workers 0 --tcp off --results off \
		--http "$srv:0" --insecure; then
		hpid=$FORQD_PID
		hport=$HTTP_PORT
		H=http://$srv:$hport
		# code_w METHOD PATH: the status code from the worker's namespace (10.77.0.2).
		code_w() { in_w curl -s -o "$tmp/body" -w '%{http_code}' -X "$1" "$H$2" 2>/dev/null; }
		check "--http $srv:0 --insecure, no token: GET /healthz from $wrk is 200" [ "$(code_w GET /healthz)" = 200 ]
		check "POST /shutdown from $wrk without a token: 403" [ "$(code_w POST /shutdown)" = 403 ]
		check "... with a JSON error that asks for an admin token" grep -q '"error":.*admin token' "$tmp/body"
		check "POST /shutdown?mode=now from $wrk without a token: 403" [ "$(code_w POST '/shutdown?mode=now')" = 403 ]
		sleep 0.5
		check "... forqd keeps running, not draining" bash -c \
			"kill -0 $hpid && ! grep -q 'event=draining' '$tmp/http.log'"
		check "... and /metrics counts both refusals" bash -c \
			"ip netns exec '$ns_w' curl -s '$H/metrics' | grep -qx 'forq_http_requests_total{code=\"403\"} 2'"
		stop_forqd "$hpid" 15
		check "that forqd exits 0 on SIGTERM" [ "$EXIT_CODE" -eq 0 ]
	else
		bad "forqd listens for HTTP on $srv"
	fi
}
part http_403 "over HTTP, POST /shutdown from another host without a token: 403"
# ---- two tokens: tasks beyond loopback need one; the worker's cannot shut down --
worker_token() {
	printf 'admin-token-%s-%s\n' "$$" "$RANDOM" >"$tmp/admin"
	printf 'worker-token-%s-%s\n' "$$" "$RANDOM" >"$tmp/worker"
	chmod 600 "$tmp/admin" "$tmp/worker"
	if ! FORQD=$forqd_s start_forqd wt --shm-name "$shm-w" --workers 1 --results off \
		--http "$srv:0" --tcp "$srv:7071" --admin-token-file "$tmp/admin" \
		--worker-token-file "$tmp/worker"; then
		bad "forqd starts with an admin and a worker token"
		return
	fi
	local wpid=$FORQD_PID H=http://$srv:$HTTP_PORT W A
	W=$(cat "$tmp/worker")
	A=$(cat "$tmp/admin")
	# req METHOD PATH [TOKEN]: the status code seen from 10.77.0.2.
	req() {
		in_w curl -s -o "$tmp/body" -w '%{http_code}' -X "$1" ${3:+-H "Authorization: Bearer $3"} \
			-d '{"payload":"6*7"}' "$H$2" 2>/dev/null
	}
	check "POST /tasks from $wrk without a token: 401" [ "$(req POST /tasks)" = 401 ]
	check "... with a JSON error that asks for a token" grep -q '"error":.*token' "$tmp/body"
	check "POST /tasks from $wrk with a wrong token: 401" [ "$(req POST /tasks wrong-token-1234)" = 401 ]
	check "POST /tasks from $wrk with the worker token: 202" [ "$(req POST /tasks "$W")" = 202 ]
	check "GET /tasks/1 from $wrk without a token: 401 (payloads and results are not public)" \
		[ "$(req GET /tasks/1)" = 401 ]
	check "GET /tasks/1 from $wrk with the worker token: 200" \
		bash -c 'c=$(ip netns exec '"$ns_w"' curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer '"$W"'" '"$H"'/tasks/1); [ "$c" = 200 ]'
	check "GET /metrics and /healthz from $wrk stay open" \
		bash -c '[ "$(ip netns exec '"$ns_w"' curl -s -o /dev/null -w "%{http_code}" '"$H"'/metrics)" = 200 ]'
	check "POST /shutdown from $wrk with the worker token: 403" [ "$(req POST /shutdown "$W")" = 403 ]
	check "... saying the worker token cannot shut forqd down" grep -q 'worker token' "$tmp/body"
	out=$(printf 'AUTH %s\r\nPING\r\nQUIT\r\n' "$W" | in_w "$client" "$srv:7071" raw 1000 | tr -d '\r')
	check "TCP AUTH with the worker token: OK, then commands work" grep -qz '^OK.PONG.BYE' <<<"$out"
	check "forqd still runs (the worker token stopped nothing)" kill -0 "$wpid"
	check "POST /shutdown from $wrk with the admin token: 202" [ "$(req POST /shutdown "$A")" = 202 ]
	wait_exit "$wpid" 20
	check "forqd exits 0 after it" [ "$EXIT_CODE" -eq 0 ]
	check "neither token appears in its log" bash -c "! grep -qe '$W' -e '$A' '$tmp/wt.log'"
}
part worker_token "a worker token opens tasks and TCP from another host, never shutdown"
check "no shared memory left behind" bash -c "! ls /dev/shm | grep -q '^${shm#/}'"
finish
