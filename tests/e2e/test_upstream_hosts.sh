#!/usr/bin/env bash
# test_upstream_hosts.sh — two forqd hosts, each in its own network namespace
# with its own address, share one R3 JetStream stream (forqd --upstream,
# issue 17). A bridge in the root namespace (10.78.X.1/24, X from the pid)
# holds a 3-node nats-server cluster listening on that address only; veth
# pairs join it to three namespaces: host a (.2), host b (.3) and the
# producers (.4). Only these addresses get traffic; everything is removed on
# every exit path. Needs root, ip netns, nats-server (and iptables for the
# cut); otherwise it is skipped (exit 77).
#
#   shared   200,000 tasks (K*2) pushed from the producers' namespace by 4
#            forq push --upstream --file in parallel: every task has a right
#            result on one host or the other (matched by payload: the ids are
#            each host's own), each host ran at least a tenth, none ran
#            twice, nothing ran that was not pushed, the stream ends empty
#   cut      host a's namespace cut off (iptables in it drops every packet to
#            and from the cluster, silently: no socket is told; forqd finds
#            it by unanswered PINGs): a logs upstream_disconnected within 30 s
#            and /readyz fails; 5,000 tasks
#            pushed during the cut; reconnected: a logs upstream_reconnected,
#            /readyz is ready, every task pushed during the cut is done, and a
#            takes its share of 5,000 more
#   dedup    two producers push the same 100 --key keys at once: each key
#            gets one sequence, and its task runs once
#
# Parts (ONLY=, see lib.sh): shared, cut, dedup. About 2-3 minutes on 2 cores.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/nats_cluster.sh"

[ "$(id -u)" = 0 ] || skip_all "needs root"
ip netns list >/dev/null 2>&1 || skip_all "needs iproute2 with ip netns"
unshare -n true 2>/dev/null || skip_all "cannot make network namespaces here"
command -v nats-server >/dev/null 2>&1 || skip_all "nats-server not installed (scripts/deps.sh test)"
need_binaries "$FORQD" "$FORQ"

N=${HOSTS_TASKS:-200000}
NCUT=5000
NET=10.78.$(($$ % 200 + 20))
BR=fqbr$$
NS_A=forq-ha-$$
NS_B=forq-hb-$$
NS_P=forq-hp-$$

cleanup_extra() {
	nats_cluster_stop
	ip netns del "$NS_A" 2>/dev/null
	ip netns del "$NS_B" 2>/dev/null
	ip netns del "$NS_P" 2>/dev/null
	ip link del "$BR" 2>/dev/null
}

# join NS VETH ADDR: a namespace on the bridge, through a veth pair.
join() {
	ip netns add "$1" && ip link add "$2" type veth peer name "${2}n" &&
		ip link set "${2}n" netns "$1" && ip link set "$2" master "$BR" && ip link set "$2" up &&
		ip -n "$1" addr add "$3/24" dev "${2}n" && ip -n "$1" link set "${2}n" up &&
		ip -n "$1" link set lo up
}
if ! { ip link add "$BR" type bridge && ip addr add "$NET.1/24" dev "$BR" && ip link set "$BR" up &&
	join "$NS_A" fqa$$ "$NET.2" && join "$NS_B" fqb$$ "$NET.3" && join "$NS_P" fqp$$ "$NET.4"; }; then
	bad "a bridge and three network namespaces"
	finish
fi
ok "bridge $BR ($NET.1), namespaces $NS_A ($NET.2), $NS_B ($NET.3), $NS_P ($NET.4)"
in_a() { ip netns exec "$NS_A" "$@"; }
in_p() { ip netns exec "$NS_P" "$@"; }

nats_cluster_start 3 "$NET.1" "$TMP"
if ! nats_cluster_ready 90; then
	bad "the 3-node NATS cluster on $NET.1 takes an R3 stream"
	tail -n 5 "$TMP/nats_probe.err" "$TMP"/nats0.log | sed 's/^/    /'
	finish
fi
check "the producers' namespace reaches the cluster" \
	in_p "$FORQ" push --upstream "$NATS_URLS" --upstream-stream probe '2*2'

# forqd in a namespace, for start_forqd (its HTTP on that namespace's loopback).
for h in a b; do
	ns=$NS_A
	[ $h = a ] || ns=$NS_B
	printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$ns" "$FORQD" >"$TMP/forqd-$h"
	chmod +x "$TMP/forqd-$h"
done
UP=(--upstream "$NATS_URLS" --upstream-stream hosts --upstream-replicas 3 --tcp off --workers 2
	--lease-timeout 10)
FORQD=$TMP/forqd-a start_forqd a "${UP[@]}" --results "$TMP/a.jsonl" || { bad "host a starts"; finish; }
A_PID=$FORQD_PID A_HTTP=http://127.0.0.1:$HTTP_PORT
FORQD=$TMP/forqd-b start_forqd b "${UP[@]}" --results "$TMP/b.jsonl" || { bad "host b starts"; finish; }
B_PID=$FORQD_PID
ok "host a (pid $A_PID) and host b (pid $B_PID) run on stream hosts"
check "their connections come from $NET.2 and $NET.3" bash -c \
	"ss -tnH state established '( src $NET.1 )' | grep -q ' $NET.2:' &&
	 ss -tnH state established '( src $NET.1 )' | grep -q ' $NET.3:'"

# done_tasks M FILE...: each done task "K*M" with a right result (2K...), one
# line each run; wrong_results M FILE...: the done lines whose result is not K*M.
done_tasks() {
	local m=$1
	shift
	cat "$@" 2>/dev/null | sed -n "s/.*\"task\":\"\([0-9]*\)\*$m\",\"status\":\"done\",\"result\":\"\([0-9]*\)\".*/\1 \2/p" |
		awk -v m="$m" '$2 == $1 * m { print $1 }'
}
ran() { cat "$@" 2>/dev/null | grep -c "\"task\":\"[0-9]*\*$1\""; }
distinct() { done_tasks "$@" | sort -u | wc -l; }
stream_empty() { [ "$(nats_jsz messages hosts)" = 0 ]; }

shared() {
	local i per=$((N / 4)) k=0 pids=() code=0
	for i in 0 1 2 3; do
		seq $((i * per + 1)) $(((i + 1) * per)) | sed 's/$/*2/' >"$TMP/p$i.txt"
	done
	local t0=$SECONDS
	for i in 0 1 2 3; do
		in_p "$FORQ" push --upstream "$NATS_URLS" --upstream-stream hosts --file "$TMP/p$i.txt" \
			>"$TMP/p$i.seq" 2>"$TMP/p$i.err" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || code=$?; done
	check "4 producers in $NS_P publish $N tasks in parallel (exit 0, one sequence each, $((SECONDS - t0)) s)" \
		bash -c "[ $code -eq 0 ] && [ \$(cat '$TMP'/p[0-3].seq | sort -u | wc -l) -eq $N ]"
	check "every task is done with a right result, on one host or the other" \
		wait_for 180 bash -c "[ \$($(declare -f done_tasks distinct); distinct 2 '$TMP/a.jsonl' '$TMP/b.jsonl') -ge $N ]"
	echo "    all done $((SECONDS - t0)) s after the first push"
	local ra rb
	ra=$(ran 2 "$TMP/a.jsonl")
	rb=$(ran 2 "$TMP/b.jsonl")
	echo "    host a ran $ra, host b $rb"
	check "each host ran at least a tenth ($ra, $rb)" eval '[ "$ra" -ge $((N / 10)) ] && [ "$rb" -ge $((N / 10)) ]'
	check "none ran twice, none failed ($((ra + rb)) lines, $N tasks)" [ $((ra + rb)) -eq "$N" ]
	check "nothing ran that was not pushed" bash -c \
		"cat '$TMP'/a.jsonl '$TMP'/b.jsonl | sed -n 's/.*\"task\":\"\([^\"]*\)\".*/\1/p' | sort -u >'$TMP/ran.txt' &&
		 cat '$TMP'/p[0-3].txt | sort -u >'$TMP/pushed.txt' &&
		 ! comm -23 '$TMP/ran.txt' '$TMP/pushed.txt' | grep ."
	check "the stream ends empty (every task acknowledged)" wait_for 60 stream_empty
}

cut() {
	local from
	# A silent cut: every packet to and from the cluster dropped, no socket
	# told (forqd finds it by unanswered PINGs, 5 s apart).
	if ! skip_unless "iptables cannot filter in $NS_A" in_a iptables -A OUTPUT -d "$NET.1" -j DROP; then
		check "the cut" false
		return
	fi
	in_a iptables -A INPUT -s "$NET.1" -j DROP
	from=$(($(stat -c %s "$TMP/a.log") + 1))
	check "host a logs upstream_disconnected" \
		wait_for 30 bash -c "tail -c +$from '$TMP/a.log' | grep -q 'event=upstream_disconnected'"
	check "... and its /readyz fails" wait_for 10 bash -c "! ip netns exec '$NS_A' curl -sf '$A_HTTP/readyz' >/dev/null"
	seq 1 $NCUT | sed 's/$/*3/' >"$TMP/cut.txt"
	check "$NCUT tasks published during the cut" \
		in_p "$FORQ" push --upstream "$NATS_URLS" --upstream-stream hosts --file "$TMP/cut.txt"
	check "host b runs them meanwhile" wait_for 60 bash -c "[ \$(grep -c '\*3\"' '$TMP/b.jsonl') -ge 500 ]"
	sleep 2
	check "host a, cut off, ran none of them" [ "$(ran 3 "$TMP/a.jsonl")" -eq 0 ]
	in_a iptables -D OUTPUT -d "$NET.1" -j DROP
	in_a iptables -D INPUT -s "$NET.1" -j DROP
	check "reconnected: host a logs upstream_reconnected" \
		wait_for 60 bash -c "tail -c +$from '$TMP/a.log' | grep -q 'event=upstream_reconnected'"
	check "... its /readyz is ready again, forq_upstream_reconnects_total counts it" wait_for 20 bash -c \
		"ip netns exec '$NS_A' curl -sf '$A_HTTP/readyz' >/dev/null &&
		 ip netns exec '$NS_A' curl -sf '$A_HTTP/metrics' | grep -Eq '^forq_upstream_reconnects_total[{]queue=\"default\"[}] [1-9]'"
	check "every task pushed during the cut is done, each result right" \
		wait_for 120 bash -c "[ \$($(declare -f done_tasks distinct); distinct 3 '$TMP/a.jsonl' '$TMP/b.jsonl') -ge $NCUT ]"
	seq 1 $NCUT | sed 's/$/*7/' >"$TMP/after.txt"
	check "$NCUT more published after it" \
		in_p "$FORQ" push --upstream "$NATS_URLS" --upstream-stream hosts --file "$TMP/after.txt"
	check "... all done" \
		wait_for 120 bash -c "[ \$($(declare -f done_tasks distinct); distinct 7 '$TMP/a.jsonl' '$TMP/b.jsonl') -ge $NCUT ]"
	echo "    after the cut: host a ran $(ran 7 "$TMP/a.jsonl"), host b $(ran 7 "$TMP/b.jsonl")"
	check "host a takes its share again" [ "$(ran 7 "$TMP/a.jsonl")" -ge 1 ]
	check "the stream ends empty" wait_for 60 stream_empty
}

dedup() {
	local p pids=() k
	for p in 1 2; do
		(for k in $(seq 1 100); do
			in_p "$FORQ" push --upstream "$NATS_URLS" --upstream-stream hosts --key "dk-$k" "$k*11" ||
				echo "push of dk-$k failed" >&2
		done) >"$TMP/dk$p.seq" 2>"$TMP/dk$p.err" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	check "both producers get one sequence per key, the same" bash -c \
		"[ \$(wc -l <'$TMP/dk1.seq') -eq 100 ] && cmp '$TMP/dk1.seq' '$TMP/dk2.seq' &&
		 [ \$(sort -u '$TMP/dk1.seq' | wc -l) -eq 100 ] && ! grep -q failed '$TMP'/dk[12].err"
	check "100 of the 200 pushes said they published nothing" \
		[ "$(cat "$TMP"/dk[12].err | grep -c 'holds key dk-[0-9]* already')" -eq 100 ]
	check "every key's task is done" \
		wait_for 60 bash -c "[ \$($(declare -f done_tasks distinct); distinct 11 '$TMP/a.jsonl' '$TMP/b.jsonl') -ge 100 ]"
	sleep 2
	check "each ran once" [ "$(ran 11 "$TMP/a.jsonl" "$TMP/b.jsonl")" -eq 100 ]
}

part shared "200,000 tasks from a third namespace, two hosts, every one done once"
part cut "host a's namespace cut off and reconnected: it resumes, nothing is lost"
part dedup "two producers push the same keys at once: each key's task runs once"
stop_forqd "$A_PID"
check "host a exits 0 on SIGTERM (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
stop_forqd "$B_PID"
check "host b exits 0 on SIGTERM (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
finish
