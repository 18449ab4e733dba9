#!/usr/bin/env bash
# A remote worker on another host address: two network namespaces joined by
# a veth pair (10.77.0.1 for forqd, 10.77.0.2 for the worker), built here and
# removed on every exit path. Needs root and iproute2; otherwise it says
# "SKIP: needs root and iproute2" and passes.
#
#   FORQD=build/service/forqd FORQ=build/service/forq tests/e2e/test_netns.sh
#
# Checks: forqd refuses a non-loopback --tcp without an admin token; with one,
# a client must AUTH first (ERR unauthorized and a hang-up otherwise, a wrong
# token too); `forq worker` without the token or with a wrong one exits 3;
# with the token (--token-file, or FORQ_TOKEN) it runs every task, each
# result right, from peer 10.77.0.2; SIGINT stops it with exit 0. Over HTTP
# (--insecure, no token), POST /shutdown from 10.77.0.2 gets 403 and forqd
# keeps running.
# Last line: "N passed, N failed"; exits 1 if any check failed.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
forqd=${FORQD:-$root/build/service/forqd}
forq=${FORQ:-$root/build/service/forq}

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null 2>&1; then
	echo "SKIP: needs root and iproute2"
	finish
fi
for b in "$forqd" "$forq"; do
	if [ ! -x "$b" ]; then
		echo "$b not found: set FORQD=... and FORQ=..." >&2
		fail "binaries exist"
		finish
	fi
done

tmp=$(mktemp -d)
ns_s=forq-srv-$$
ns_w=forq-wrk-$$
veth_s=fqs$$
veth_w=fqw$$
shm=/forq-e2e-netns-$$
srv=10.77.0.1
wrk=10.77.0.2
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	wait 2>/dev/null
	ip netns del "$ns_s" 2>/dev/null
	ip netns del "$ns_w" 2>/dev/null
	ip link del "$veth_s" 2>/dev/null
	rm -f /dev/shm"$shm"*
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
unset FORQ_ADMIN_TOKEN FORQ_TOKEN

client=${TCP_CLIENT:-}
if [ -z "$client" ]; then
	client=$tmp/tcp_client
	if ! ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$client" \
		"$root/tests/e2e/tcp_client.c"; then
		fail "tcp_client compiles"
		finish
	fi
fi

wait_until() {
	local n=$(($1 * 10))
	shift
	while [ $n -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# ---- the two hosts ----------------------------------------------------------
if ! { ip netns add "$ns_s" && ip netns add "$ns_w" &&
	ip link add "$veth_s" type veth peer name "$veth_w" &&
	ip link set "$veth_s" netns "$ns_s" && ip link set "$veth_w" netns "$ns_w" &&
	ip -n "$ns_s" addr add "$srv/24" dev "$veth_s" && ip -n "$ns_w" addr add "$wrk/24" dev "$veth_w" &&
	ip -n "$ns_s" link set lo up && ip -n "$ns_w" link set lo up &&
	ip -n "$ns_s" link set "$veth_s" up && ip -n "$ns_w" link set "$veth_w" up; }; then
	fail "network namespaces with a veth pair"
	finish
fi
pass "network namespaces $ns_s ($srv) and $ns_w ($wrk)"
in_s() { ip netns exec "$ns_s" "$@"; }
in_w() { ip netns exec "$ns_w" "$@"; }

# ---- no token, no listening beyond loopback ---------------------------------
timeout 10 ip netns exec "$ns_s" "$forqd" --shm-name "$shm-a" --workers 0 --http off \
	--tcp "$srv:7070" 2>"$tmp/refuse.log"
rc=$?
check "forqd refuses $srv without an admin token (exit 5)" [ $rc -eq 5 ]
check "... and says how to fix it" grep -q 'admin token' "$tmp/refuse.log"

# ---- forqd with a token -------------------------------------------------------
token=netns-token-$$-$RANDOM
printf '%s\n' "$token" >"$tmp/token"
printf 'wrong-token-1234\n' >"$tmp/wrong"
chmod 600 "$tmp/token" "$tmp/wrong"
awk 'BEGIN { for (i = 1; i <= 2000; i++) printf "%d*%d+%d\n", i, i % 17, i % 5 }' >"$tmp/tasks.txt"
ip netns exec "$ns_s" "$forqd" --shm-name "$shm" --workers 0 --http off --tcp "$srv:7070" \
	--admin-token-file "$tmp/token" --tasks "$tmp/tasks.txt" --results "$tmp/results" \
	--log-level debug 2>"$tmp/forqd.log" &
fpid=$!
pids+=("$fpid")
if ! wait_until 10 grep -qs 'event=tcp_listening' "$tmp/forqd.log"; then
	cat "$tmp/forqd.log"
	fail "forqd listens on $srv:7070"
	finish
fi
pass "forqd listens on $srv:7070 with an admin token"

out=$(printf 'PING\r\nPING\r\n' | in_w "$client" "$srv:7070" raw 1000 | tr -d '\r')
check "no AUTH: ERR unauthorized, then closed" grep -qz '^ERR unauthorized.\[closed\]' <<<"$out"
out=$(printf 'AUTH wrong-token-1234\r\nPING\r\n' | in_w "$client" "$srv:7070" raw 1000 | tr -d '\r')
check "wrong token: ERR unauthorized, then closed" grep -qz '^ERR unauthorized.\[closed\]' <<<"$out"
out=$(printf 'AUTH %s\r\nPING\r\nQUIT\r\n' "$token" | in_w "$client" "$srv:7070" raw 1000 | tr -d '\r')
check "right token: OK, then commands work" grep -qz '^OK.PONG.BYE' <<<"$out"

timeout 15 ip netns exec "$ns_w" "$forq" worker --connect "$srv:7070" --quiet 2>"$tmp/w0.log"
check "a worker without the token exits 3" [ $? -eq 3 ]
timeout 15 ip netns exec "$ns_w" "$forq" worker --connect "$srv:7070" --token-file "$tmp/wrong" \
	--quiet 2>"$tmp/w1.log"
check "a worker with a wrong token exits 3" [ $? -eq 3 ]
check "... and says why" grep -q 'token' "$tmp/w1.log"

# ---- the remote worker runs the tasks ----------------------------------------
ip netns exec "$ns_w" "$forq" worker --connect "$srv:7070" --token-file "$tmp/token" \
	--handler arith 2>"$tmp/w2.log" &
w2=$!
pids+=("$w2")
FORQ_TOKEN=$token ip netns exec "$ns_w" "$forq" worker --connect "$srv:7070" --handler arith \
	--batch 1 2>"$tmp/w3.log" &
w3=$!
pids+=("$w3")
done_all() { [ -f "$tmp/results" ] && [ "$(wc -l <"$tmp/results")" -ge 2000 ]; }
check "the remote workers finish 2000 tasks" wait_until 60 done_all
check "their connections come from $wrk" grep -q "event=tcp_accepted peer=$wrk:" "$tmp/forqd.log"
bad=$(awk '{
	if (!match($0, /"task":"[^"]*"/)) { print "no task: " $0; next }
	t = substr($0, RSTART + 8, RLENGTH - 9)
	if (!match($0, /"status":"done","result":"[^"]*"/)) { print "not done: " $0; next }
	v = substr($0, RSTART + 26, RLENGTH - 27)
	split(t, p, /[*+]/)
	if (v != sprintf("%d", p[1] * p[2] + p[3])) print "wrong: " $0
}' "$tmp/results" | head -5)
[ -z "$bad" ] && pass "every result is right" || { fail "every result is right"; echo "$bad"; }
ok=0
for p in $w2 $w3; do
	kill -INT "$p"
	timeout 10 tail --pid="$p" -f /dev/null
	wait "$p" && ok=$((ok + 1))
done
check "both workers exit 0 on SIGINT" [ $ok -eq 2 ]
check "the token never appears in logs" bash -c "! grep -q '$token' '$tmp'/*.log"
kill -TERM "$fpid"
timeout 15 tail --pid="$fpid" -f /dev/null
wait "$fpid"
check "forqd exits 0" [ $? -eq 0 ]

# ---- HTTP: no admin token, POST /shutdown from another host is 403 ------------
ip netns exec "$ns_s" "$forqd" --shm-name "$shm-h" --workers 0 --tcp off --results off \
	--http "$srv:0" --insecure 2>"$tmp/http.log" &
hpid=$!
pids+=("$hpid")
if wait_until 10 grep -qs 'event=http_listening' "$tmp/http.log"; then
	hport=$(sed -n 's/.*event=http_listening .*port=\([0-9]*\).*/\1/p' "$tmp/http.log" | head -1)
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
	kill -TERM "$hpid"
	timeout 15 tail --pid="$hpid" -f /dev/null
	wait "$hpid"
	check "that forqd exits 0 on SIGTERM" [ $? -eq 0 ]
else
	cat "$tmp/http.log"
	fail "forqd listens for HTTP on $srv"
fi
check "no shared memory left behind" bash -c "! ls /dev/shm | grep -q '^${shm#/}'"
finish
