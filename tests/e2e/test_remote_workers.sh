#!/usr/bin/env bash
# Remote workers over TCP, end to end on 127.0.0.1: real forqd processes, real
# `forq worker` processes and a small protocol client (tests/e2e/tcp_client.c,
# compiled here unless $TCP_CLIENT names a built one).
#
#   FORQD=build/service/forqd FORQ=build/cli/forq tests/e2e/test_remote_workers.sh
#
# Parts (their names for ONLY=, see lib.sh):
#   1. arith_tasks: 3 remote workers beside 1 local consumer finish 100,000
#      arithmetic tasks (pushed with PUT), every result right, each remote
#      worker doing some.
#   2. worker_killed: a worker killed (SIGKILL) mid-task: its task goes back
#      at once and another worker finishes it (attempt 2), well before the
#      lease timeout.
#   3. lease_expires: a worker that stops answering: its lease expires
#      (--lease-timeout 1), another worker finishes the task, the late
#      RESULT gets ERR not-leased, and /metrics counts the expiry (when curl
#      is there).
#   3b. lease_dead: a client that takes a task twice (--max-attempts 2) and
#      never answers: both leases expire, the task is dead with "lease
#      expired" in the results file and in `forq dead`.
#   3c. touch_lease: TOUCH every 0.4 s keeps a 1 s lease for 2.5 s: the
#      RESULT is accepted, the task done once on attempt 1, no lease expired.
#   4. garbage: garbage, over-long lines and a 16 MiB junk flood get ERR / a
#      hang-up while a worker on another connection goes on.
#   5. many_connections: 1,000 concurrent connections each wait in GET_TASK
#      WAIT, get a task and answer it; conn_limits: with --tcp-max-conns 2 a
#      third is told ERR too-many-connections, and --tcp-idle-timeout closes
#      silent ones.
#   6. exit_sigint_reconnect: EXIT gives leased tasks back; SIGINT makes a
#      worker finish its task, say EXIT and exit 0; a worker reconnects to a
#      restarted forqd.
#   lease_table_full: one connection holds all 1,024 lease entries while
#      tasks pend: a second one's GET_TASK is NONE, its GET_TASK WAIT parks
#      and gets a task as soon as one RESULT frees an entry.
#   7. multiline_results: `forq worker --handler exec:...` whose output holds
#      line ends and a NUL and passes 1 KiB: it finds forqd's RESULTS batches
#      and the results file keeps every byte (JSON-escaped).
#   8. idle_parked: an idle forqd with a GET_TASK WAIT parked sleeps: under
#      150 context switches of its threads in 3 s (a 2 ms tick made ~1,500).
# Every forqd gets its own shm name and ports chosen by the kernel (port 0).
# Last line: "N passed, N failed" (", N skipped" without curl); exits 1 if
# any check failed, else 77 if one was skipped.
set -u

ntasks=${NTASKS:-100000}

. "$(dirname "$0")/lib.sh"
need_binaries "$FORQD" "$FORQ"
tmp=$TMP
shm_base=/forq-e2e-$$ # new_shm's prefix: what the last check looks for
tcp_client_build
client=$CLIENT

echo "20*2+2" >"$tmp/one.txt" # a task for parts 3 and 6

# The client needs one fd per connection for check 5.
ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

# stat PORT FIELD: a number from the STATS line.
stat_of() {
	"$client" "127.0.0.1:$1" stats 2>/dev/null | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}
stat_is() { [ "$(stat_of "$1" "$2")" = "$3" ]; }
stat_ge() { local v; v=$(stat_of "$1" "$2"); [ -n "$v" ] && [ "$v" -ge "$3" ]; }

# start_worker NAME [FLAGS...]: a `forq worker` on $TCP_PORT; sets wpid.
start_worker() {
	local name=$1
	shift
	"$FORQ" worker --connect "127.0.0.1:$TCP_PORT" "$@" 2>"$tmp/$name.worker.log" &
	wpid=$!
	PIDS+=("$wpid")
}

# ---- lease_table_full: every lease entry held while tasks pend -------------
# One connection leases all 1,024 entries of the lease table and finishes
# none; a second one's GET_TASK WAIT parks, and is served as soon as one
# RESULT frees an entry (tests/e2e/lease_table.py says what it checks).
lease_table_full() {
	awk 'BEGIN { for (i = 1; i <= 1100; i++) print i "+1" }' >"$tmp/lease_table.txt"
	start_forqd lease_table --workers 0 --tasks "$tmp/lease_table.txt" --results off \
		--drain-timeout 1 || { bad "forqd starts"; return; }
	local fpid=$FORQD_PID
	check "lease table: the 1,100 tasks are queued" wait_for 10 stat_is "$TCP_PORT" pending 1100
	/usr/bin/python3 "$FORQ_SRC/tests/e2e/lease_table.py" "$TCP_PORT" >"$tmp/lease_table.out" 2>&1
	local rc=$?
	sed 's/^/    /' "$tmp/lease_table.out"
	check "lease table full: a parked GET_TASK WAIT gets a task once an entry frees (lease_table.py exit $rc)" \
		[ "$rc" -eq 0 ]
	stop_forqd "$fpid" 15
}
part lease_table_full "all 1,024 lease entries held: a parked WAIT is served when one frees"

# ---- 1. 100,000 arithmetic tasks, 3 remote workers + 1 local consumer ------
arith_tasks() {
	awk -v n="$ntasks" 'BEGIN { for (i = 1; i <= n; i++) printf "%d*%d+%d\n", i % 1000 + 1, (i * 7) % 1000, i }' \
		>"$tmp/arith.txt"
	if start_forqd arith --results "$tmp/arith.results" --workers 1 --handler arith --http off; then
		w=()
		for k in 1 2 3; do
			start_worker "arith$k" --handler arith --batch 64
			w+=("$wpid")
		done
		check "3 remote workers connected" wait_for 10 stat_is "$TCP_PORT" remote_workers 3
		check "PUT $ntasks tasks" timeout 120 "$client" "127.0.0.1:$TCP_PORT" put "$tmp/arith.txt"
		check "all $ntasks tasks finished" wait_for 120 stat_is "$TCP_PORT" done "$ntasks"
		all_ok=1
		for p in "${w[@]}"; do
			kill -INT "$p"
			timeout 15 tail --pid="$p" -f /dev/null || all_ok=0
			wait "$p" || all_ok=0
		done
		[ $all_ok = 1 ] && ok "workers exit 0 on SIGINT" || bad "workers exit 0 on SIGINT"
		stop_forqd "$FORQD_PID" 30
		check "forqd exits 0 after the drain" [ "$EXIT_CODE" -eq 0 ]
		r=$tmp/arith.results
		lines=$(wc -l <"$r")
		check "one result line per task ($lines)" [ "$lines" -eq "$ntasks" ]
		uniq_ids=$(sed -n 's/^{"id":\([0-9]*\),.*/\1/p' "$r" | sort -u | wc -l)
		check "every task id once ($uniq_ids)" [ "$uniq_ids" -eq "$ntasks" ]
		wrong=$(arith_results_wrong "$r")
		[ -z "$wrong" ] && ok "every result is right" || { bad "every result is right"; echo "$wrong"; }
		shares=$(cat "$tmp"/arith?.worker.log | sed -n 's/.*event=worker_exit tasks=\([0-9]*\).*/\1/p' | tr '\n' ' ')
		echo "remote workers' tasks: $shares(local consumer: the rest)"
		n=0
		for s in $shares; do [ "$s" -gt 0 ] && n=$((n + 1)); done
		check "each remote worker ran tasks" [ "$n" -eq 3 ]
	else
		bad "forqd starts"
	fi
}
part arith_tasks "$ntasks arithmetic tasks: 3 remote workers beside 1 local consumer"

# ---- 2. a worker killed mid-task ------------------------------------------
worker_killed() {
	echo '{"op":"sleep_ms","args":[3000]}' >"$tmp/sleep.txt"
	if start_forqd killed --results "$tmp/killed.results" --workers 0 --http off --lease-timeout 30; then
		start_worker killedA --handler json --batch 1
		a=$wpid
		"$client" "127.0.0.1:$TCP_PORT" put "$tmp/sleep.txt" >/dev/null
		check "worker A holds the task" wait_for 10 stat_is "$TCP_PORT" leases 1
		kill -KILL "$a"
		wait "$a" 2>/dev/null
		check "its task is back in the queue at once" wait_for 3 stat_is "$TCP_PORT" pending 1
		start_worker killedB --handler json --batch 1
		b=$wpid
		check "worker B finishes it before the lease timeout" wait_for 10 stat_is "$TCP_PORT" done 1
		kill -INT "$b"
		wait "$b"
		stop_forqd "$FORQD_PID" 10
		check "its result: done on attempt 2" \
			grep -q '"status":"done","result":"slept 3000 ms","attempts":2' "$tmp/killed.results"
	else
		bad "forqd starts"
	fi
}
part worker_killed "a worker killed mid-task"

# ---- 3. a worker that stops answering --------------------------------------
lease_expires() {
	if start_forqd silent --results "$tmp/silent.results" --workers 0 --http 127.0.0.1:0 --lease-timeout 1; then
		"$client" "127.0.0.1:$TCP_PORT" put "$tmp/one.txt" >/dev/null
		"$client" "127.0.0.1:$TCP_PORT" hold 4000 >"$tmp/hold.out" 2>&1 &
		h=$!
		PIDS+=("$h")
		check "the silent client leases the task" wait_for 5 grep -q '^task ' "$tmp/hold.out"
		start_worker silentB --handler arith
		b=$wpid
		check "the lease expires and worker B finishes the task" wait_for 10 stat_is "$TCP_PORT" done 1
		check "forqd logs the expiry" grep -q 'event=lease_expired' "$FORQD_LOG"
		wait "$h"
		check "the late RESULT gets ERR not-leased" grep -q '^late: ERR not-leased' "$tmp/hold.out"
		m=
		if skip_unless "no curl" command -v curl; then
			m=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics")
		fi
		check "/metrics: forq_lease_expired_total 1" grep -q '^forq_lease_expired_total{queue="default"} 1$' <<<"$m"
		check "/metrics: one remote worker connected" \
			grep -q '^forq_remote_workers_connected 1$' <<<"$m"
		check "/metrics: RESULT commands counted" \
			grep -Eq '^forq_tcp_commands_total\{command="RESULT"\} [1-9]' <<<"$m"
		check "/metrics: bytes counted" grep -Eq '^forq_tcp_bytes_total\{direction="in"\} [1-9]' <<<"$m"
		check "/metrics: RESULT request bytes counted" \
			grep -Eq '^forq_tcp_command_bytes_total\{command="RESULT",direction="in"\} [1-9]' <<<"$m"
		check "/metrics: GET_TASK reply bytes counted" \
			grep -Eq '^forq_tcp_command_bytes_total\{command="GET_TASK",direction="out"\} [1-9]' <<<"$m"
		skip_end
		kill -INT "$b"
		wait "$b"
		stop_forqd "$FORQD_PID" 10
		check "its result: 42 on attempt 2" \
			grep -q '"status":"done","result":"42","attempts":2' "$tmp/silent.results"
	else
		bad "forqd starts"
	fi
}
part lease_expires "a worker that stops answering"

# wire.py: what the small python clients below share (`from wire import *`):
# one connection to forqd's TCP port (argv[1]) and a line reader.
cat >"$tmp/wire.py" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=15)
s.settimeout(15)
f = s.makefile("rb")
def line():
    return f.readline().decode().strip()
PY

# ---- 3b. a lease that expires until the task is dead ------------------------
lease_dead() {
	cat >"$tmp/expire.py" <<'PY'
from wire import *
def get_task():
    s.sendall(b"GET_TASK WAIT 8000\r\n")
    head = line()
    if head.startswith("TASK "):
        _, tid, attempt, n = head.split()
        payload = f.read(int(n) + 2)[:-2].decode()
        return tid, attempt, payload
    return head, "-", "-"
s.sendall(b"PUT 7\r\nexpires\r\n")
print("put:", line())
for k in (1, 2):
    tid, attempt, payload = get_task()
    print(f"delivery {k}: id {tid} attempt {attempt} payload {payload}", flush=True)
    # no answer: the lease (1 s) must expire on its own
# Stay connected (a closed connection would give the lease back too) until
# another connection sees the task dead, then answer late.
o = socket.create_connection(("127.0.0.1", port), timeout=15)
of = o.makefile("rb")
end = time.monotonic() + 15
dead = False
while not dead and time.monotonic() < end:
    o.sendall(b"STATS\r\n")
    dead = '"dead":1,' in of.readline().decode()
    time.sleep(0.1)
print("seen dead:", dead)
s.sendall(f"RESULT {tid} late\r\n".encode())
print("late:", line())
PY
	if start_forqd expire --results "$tmp/expire.results" --workers 0 --http 127.0.0.1:0 --lease-timeout 1 --max-attempts 2 \
		--retry-backoff 10; then
		out=$(timeout 30 python3 "$tmp/expire.py" "$TCP_PORT" 2>&1)
		echo "$out"
		eid=$(sed -n 's/^put: OK \([0-9]*\)$/\1/p' <<<"$out")
		check "PUT accepted (id ${eid:-none})" [ -n "$eid" ]
		check "delivery 1: the task, attempt 1" \
			grep -qx "delivery 1: id $eid attempt 1 payload expires" <<<"$out"
		check "delivery 2 after the lease expired: the same task, attempt 2" \
			grep -qx "delivery 2: id $eid attempt 2 payload expires" <<<"$out"
		check "the late RESULT gets ERR not-leased" grep -qx 'late: ERR not-leased' <<<"$out"
		check "the results file says dead, lease expired" wait_for 10 grep -q \
			"^{\"id\":$eid,\"task\":\"expires\",\"status\":\"dead\",\"error\":\"lease expired\"" \
			"$tmp/expire.results"
		check "... one line for it" [ "$(grep -c "^{\"id\":$eid," "$tmp/expire.results")" -eq 1 ]
		check "forqd logs both expiries (requeued, then dead)" bash -c \
			"grep -q 'event=lease_expired id=$eid .*requeued=1' '$FORQD_LOG' &&
			 grep -q 'event=lease_expired id=$eid .*dead=1' '$FORQD_LOG'"
		"$FORQ" dead --shm-name "$FORQD_SHM" >"$tmp/expire.dead" 2>&1
		cat "$tmp/expire.dead"
		check "forq dead lists it (attempts 2, lease expired)" \
			grep -q "^$eid  *normal  *2  *[0-9TZ:.-]*  *\"lease expired\"  *\"expires\"$" "$tmp/expire.dead"
		check "STATS: dead 1, done 0, leases 0" \
			[ "$(stat_of "$TCP_PORT" dead)/$(stat_of "$TCP_PORT" done)/$(stat_of "$TCP_PORT" leases)" = 1/0/0 ]
		m= dead_sum=
		if skip_unless "no curl" command -v curl; then
			m=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics")
			dead_sum=$(awk '$1 ~ /^forq_tasks_dead_total($|\{)/ { s += $2; n++ } END { if (n) print s }' <<<"$m")
		fi
		check "/metrics: forq_lease_expired_total 2" grep -qx 'forq_lease_expired_total{queue="default"} 2' <<<"$m"
		check "/metrics: forq_tasks_dead_total 1 (got ${dead_sum:-none})" [ "${dead_sum:-x}" = 1 ]
		skip_end
		stop_forqd "$FORQD_PID" 10
		check "forqd exits 0" [ "$EXIT_CODE" -eq 0 ]
	else
		bad "forqd starts"
	fi
}
part lease_dead "a lease that expires on every delivery: the task ends dead"

# ---- 3c. TOUCH keeps a lease alive -------------------------------------------
touch_lease() {
	cat >"$tmp/touch.py" <<'PY'
from wire import *
s.sendall(b"PUT 4\r\n20+1\r\nGET_TASK WAIT 5000\r\n")
print("put:", line())
head = line()
print("got:", head)
tid = head.split()[1]
f.read(int(head.split()[3]) + 2)
replies = []
t0 = time.monotonic()
while time.monotonic() - t0 < 2.5:
    time.sleep(0.4)
    s.sendall(f"TOUCH {tid}\r\n".encode())
    replies.append(line())
print("touches:", len(replies), "replies:", " ".join(sorted(set(replies))))
print("held for >= 2.5 s:", time.monotonic() - t0 >= 2.5)
s.sendall(f"RESULT {tid} 21\r\n".encode())
print("result:", line())
s.sendall(f"RESULT {tid} 21\r\n".encode())
print("again:", line())
PY
	if start_forqd touch --results "$tmp/touch.results" --workers 0 --http 127.0.0.1:0 --lease-timeout 1; then
		out=$(timeout 30 python3 "$tmp/touch.py" "$TCP_PORT" 2>&1)
		echo "$out"
		tid=$(sed -n 's/^put: OK \([0-9]*\)$/\1/p' <<<"$out")
		check "the client leases the task (id ${tid:-none}, attempt 1)" grep -qx "got: TASK $tid 1 4" <<<"$out"
		check "every TOUCH answered OK" grep -Eq '^touches: [5-9] replies: OK$' <<<"$out"
		check "the lease was held past twice the lease timeout" grep -qx 'held for >= 2.5 s: True' <<<"$out"
		check "the RESULT after 2.5 s is accepted (OK, not ERR not-leased)" grep -qx 'result: OK' <<<"$out"
		check "a second RESULT gets ERR not-leased" grep -qx 'again: ERR not-leased' <<<"$out"
		check "STATS: done 1, leases 0" [ "$(stat_of "$TCP_PORT" done)/$(stat_of "$TCP_PORT" leases)" = 1/0 ]
		check "no lease_expired in the log" bash -c "! grep -q event=lease_expired '$FORQD_LOG'"
		m= done_sum=
		if skip_unless "no curl" command -v curl; then
			m=$(curl -s "http://127.0.0.1:$HTTP_PORT/metrics")
			done_sum=$(awk '$1 ~ /^forq_tasks_done_total($|\{)/ { s += $2; n++ } END { if (n) print s }' <<<"$m")
		fi
		check "/metrics: forq_lease_expired_total 0" grep -qx 'forq_lease_expired_total{queue="default"} 0' <<<"$m"
		check "/metrics: forq_tasks_done_total 1 (got ${done_sum:-none})" [ "${done_sum:-x}" = 1 ]
		skip_end
		stop_forqd "$FORQD_PID" 10
		check "forqd exits 0" [ "$EXIT_CODE" -eq 0 ]
		check "its result: done once, 21 on attempt 1" bash -c \
			"[ \$(grep -c '^{\"id\":$tid,' '$tmp/touch.results') -eq 1 ] &&
			 grep -q '^{\"id\":$tid,\"task\":\"20+1\",\"status\":\"done\",\"result\":\"21\",\"attempts\":1' '$tmp/touch.results'"
	else
		bad "forqd starts"
	fi
}
part touch_lease "TOUCH every 0.4 s keeps a 1 s lease for 2.5 s"

# ---- 4. garbage, over-long lines, a junk flood ------------------------------
garbage() {
	awk 'BEGIN { for (i = 1; i <= 2000; i++) printf "%d+%d\n", i, i }' >"$tmp/two.txt"
	if start_forqd junk --results "$tmp/junk.results" --workers 0 --http off; then
		start_worker junkB --handler arith
		b=$wpid
		"$client" "127.0.0.1:$TCP_PORT" flood 16 >"$tmp/flood.out" 2>&1 &
		fl=$!
		PIDS+=("$fl")
		check "garbage: ERR for each, the connection survives, a run of 16 hangs up" \
			timeout 30 "$client" "127.0.0.1:$TCP_PORT" garbage
		check "PUT 2000 tasks meanwhile" timeout 30 "$client" "127.0.0.1:$TCP_PORT" put "$tmp/two.txt"
		check "the worker finishes them all" wait_for 20 stat_is "$TCP_PORT" done 2000
		check "the junk flood is disconnected" wait "$fl"
		check "others still served: PING" \
			bash -c "printf 'PING\r\n' | '$client' 127.0.0.1:$TCP_PORT raw 300 | grep -q PONG"
		kill -INT "$b"
		check "the worker exits 0" wait "$b"
		stop_forqd "$FORQD_PID" 10
	else
		bad "forqd starts"
	fi
}
part garbage "garbage and floods beside a working worker"

# ---- 5. 1,000 concurrent connections ---------------------------------------
many_connections() {
	if start_forqd many --results "$tmp/many.results" --workers 0 --http off; then
		check "1000 waiting connections each get a task and answer it" \
			timeout 60 "$client" "127.0.0.1:$TCP_PORT" many 1000
		check "1000 tasks done" wait_for 5 stat_is "$TCP_PORT" done 1000
		check "no lease left" stat_is "$TCP_PORT" leases 0
		stop_forqd "$FORQD_PID" 10
	else
		bad "forqd starts"
	fi
}
part many_connections "1000 concurrent connections"

# ---- 5b. connection limit and idle timeout ---------------------------------
conn_limits() {
	if start_forqd limits --results "$tmp/limits.results" --workers 0 --http 127.0.0.1:0 --tcp-max-conns 2 --tcp-idle-timeout 1; then
		cat >"$tmp/limits.py" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(10)
    return s
def ask(s, line):
    s.sendall(line.encode() + b"\r\n")
    return s.recv(100).decode().strip()
def closed_within(s, sec):
    s.settimeout(sec)
    try:
        return s.recv(100) == b""
    except (socket.timeout, ConnectionResetError):
        return False
a, b = conn(), conn()
print("first two:", ask(a, "PING"), ask(b, "PING"))
c = conn()
c.settimeout(10)
print("third:", c.recv(100).decode().strip(), "then closed:", c.recv(100) == b"")
t0 = time.monotonic()
print("idle ones closed:", closed_within(a, 5) and closed_within(b, 5),
      "after", round(time.monotonic() - t0), "s")
print("a new one:", ask(conn(), "PING"))
PY
		out=$(timeout 30 python3 "$tmp/limits.py" "$TCP_PORT" 2>&1)
		echo "$out"
		check "two connections are served" grep -q '^first two: PONG PONG$' <<<"$out"
		check "the third is told ERR too-many-connections and closed" \
			grep -q '^third: ERR too-many-connections then closed: True$' <<<"$out"
		check "silent connections are closed after the idle timeout" \
			grep -q '^idle ones closed: True' <<<"$out"
		check "... and their slots serve new ones" grep -q '^a new one: PONG$' <<<"$out"
		check "the log says why" grep -q 'event=tcp_idle_timeout' "$FORQD_LOG"
		skip_unless "no curl" command -v curl
		check "/metrics counts the refusal" bash -c \
			"curl -s http://127.0.0.1:$HTTP_PORT/metrics | grep -q '^forq_tcp_connections_refused_total 1\$'"
		skip_end
		stop_forqd "$FORQD_PID" 10
	else
		bad "forqd starts"
	fi
}
part conn_limits "--tcp-max-conns 2, --tcp-idle-timeout 1"

# ---- 6. EXIT, SIGINT, reconnect ---------------------------------------------
exit_sigint_reconnect() {
	if start_forqd misc --results "$tmp/misc.results" --workers 0 --http off; then
		out=$(printf 'PUT 3\r\n1+1\r\nGET_TASK\r\nEXIT\r\n' | "$client" "127.0.0.1:$TCP_PORT" raw 1000 | tr -d '\r')
		check "EXIT answers BYE and closes" grep -qz 'OK 1.TASK 1 1 3.1+1.BYE.\[closed\]' <<<"$out"
		check "the leased task is back in the queue" wait_for 3 stat_is "$TCP_PORT" pending 1
		out=$(printf 'GET_TASK\r\nRESULT 1 2\r\nQUIT\r\n' | "$client" "127.0.0.1:$TCP_PORT" raw 1000 | tr -d '\r')
		check "it comes back as attempt 2" grep -qz 'TASK 1 2 3.1+1.OK.BYE' <<<"$out"

		echo '{"op":"sleep_ms","args":[1500]}' >"$tmp/sleep2.txt"
		start_worker sigint --handler json --batch 1
		s=$wpid
		"$client" "127.0.0.1:$TCP_PORT" put "$tmp/sleep2.txt" >/dev/null
		check "the worker holds the task" wait_for 5 stat_is "$TCP_PORT" leases 1
		kill -INT "$s"
		timeout 10 tail --pid="$s" -f /dev/null
		wait "$s"
		check "SIGINT mid-task: the worker exits 0" [ $? -eq 0 ]
		check "... after finishing its task" stat_is "$TCP_PORT" done 2
		check "... and saying EXIT" grep -q 'event=worker_exit tasks=1' "$tmp/sigint.worker.log"

		start_worker recon --handler arith
		r=$wpid
		check "a worker connects" wait_for 5 stat_is "$TCP_PORT" remote_workers 1
		stop_forqd "$FORQD_PID" 10
		check "it sees forqd go" wait_for 5 grep -q 'event=worker_disconnected' "$tmp/recon.worker.log"
		oldport=$TCP_PORT
		if start_forqd misc2 --results "$tmp/misc2.results" --workers 0 --http off --tcp "127.0.0.1:$oldport"; then
			"$client" "127.0.0.1:$TCP_PORT" put "$tmp/one.txt" >/dev/null
			check "it reconnects to the new forqd and runs its task" \
				wait_for 15 stat_is "$TCP_PORT" done 1
			stop_forqd "$FORQD_PID" 10
		else
			bad "forqd restarts on port $oldport"
		fi
		kill -INT "$r"
		wait "$r"
		check "the worker exits 0 on SIGINT while reconnecting" [ $? -eq 0 ]
	else
		bad "forqd starts"
	fi
}
part exit_sigint_reconnect "EXIT gives leases back; SIGINT finishes the task; reconnect"

# Out of file descriptors: accepting pauses and says so once, not ten times a
# second, and says when it works again.
out_of_fds() {
	command -v prlimit >/dev/null || { skip "out of fds (no prlimit)"; return; }
	start_forqd fds --workers 0 --http off || { bad "forqd starts"; return; }
	local fpid=$FORQD_PID
	prlimit --pid "$fpid" --nofile=40:40
	python3 - "$TCP_PORT" "$FORQD_LOG" >"$TMP/fds.out" 2>&1 <<'PYEOF'
import socket, sys, time
port = int(sys.argv[1])
socks = []
for _ in range(80):
    try:
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
    except OSError:
        pass
time.sleep(1.5)  # forqd pauses and retries every 100 ms meanwhile
print("paused_lines_while_held=%d" % open(sys.argv[2]).read().count("event=tcp_accept_paused"))
for s in socks:
    s.close()
time.sleep(0.5)
s = socket.create_connection(("127.0.0.1", port), timeout=2)
s.sendall(b"PING\r\n")
print(s.recv(64).decode().strip())
PYEOF
	check "out of fds: accepting pauses, said once in 1.5 s of shortage ($(grep paused_ "$TMP/fds.out"))" \
		grep -qx paused_lines_while_held=1 "$TMP/fds.out"
	check "... and resumes: a new connection is served" grep -qx PONG "$TMP/fds.out"
	check "... saying so" grep -q 'event=tcp_accept_resumed pauses=' "$FORQD_LOG"
	stop_forqd "$fpid" 15
}
part out_of_fds "out of file descriptors: accept pauses, logged once, resumes"

# ---- 7. multi-line results through RESULTS batches ---------------------------
not_in() { [ -s "$2" ] && ! grep -q "$1" "$2"; }
multiline_results() {
	{
		echo abc
		head -c 2000 /dev/zero | tr '\0' x
		echo
	} >"$tmp/ml.txt"
	if start_forqd ml --results "$tmp/ml.results" --workers 0 --http off --max-payload 4096; then
		start_worker ml --handler "exec:printf 'first\nsecond\r\nthird:'; cat; printf '\000nul'" \
			--batch 8 --max-tasks 2
		m=$wpid
		"$client" "127.0.0.1:$TCP_PORT" put "$tmp/ml.txt" >/dev/null
		timeout 20 tail --pid="$m" -f /dev/null
		wait "$m"
		check "the worker runs both tasks and exits 0" [ $? -eq 0 ]
		check "it sends RESULTS batches (no one-line fallback)" \
			not_in 'worker_results_one_line' "$tmp/ml.worker.log"
		stop_forqd "$FORQD_PID" 10
		check "line ends and a NUL kept in the results file" \
			grep -qF '"result":"first\nsecond\r\nthird:abc\u0000nul"' "$tmp/ml.results"
		long="\"result\":\"first\\nsecond\\r\\nthird:$(head -c 2000 /dev/zero | tr '\0' x)\\u0000nul\""
		check "a 2 KiB result whole (no line limit)" grep -qF "$long" "$tmp/ml.results"
	else
		bad "forqd starts"
	fi
}
part multiline_results "forq worker sends multi-line exec: output in RESULTS batches"

# ---- 8. an idle forqd with a parked remote worker sleeps ---------------------
# ctx_switches PID: context switches (voluntary and not) of all its threads.
ctx_switches() {
	cat /proc/"$1"/task/*/status 2>/dev/null |
		awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n + 0 }'
}
idle_parked() {
	start_forqd idle_parked --workers 1 || { bad "idle_parked: forqd starts"; return; }
	local pid=$FORQD_PID port=$TCP_PORT cl before after
	/usr/bin/python3 - "$port" >"$tmp/parked.out" 2>&1 <<'PY' &
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET_TASK WAIT 60000\r\n")
print(s.recv(64))
PY
	cl=$!
	PIDS+=("$cl")
	check "idle_parked: a GET_TASK WAIT 60000 is parked (remote_workers 1)" \
		wait_for 10 stat_is "$port" remote_workers 1
	sleep 0.5 # what the STATS above woke settles
	before=$(ctx_switches "$pid")
	sleep 3
	after=$(ctx_switches "$pid")
	check "idle_parked: forqd sleeps: $((after - before)) context switches in 3 s, $before to $after (< 150; a 2 ms tick made ~1,500)" \
		[ "$((after - before))" -lt 150 ]
	check "idle_parked: the GET_TASK is still parked, unanswered" \
		bash -c '[ ! -s "$1" ] && kill -0 "$2"' _ "$tmp/parked.out" "$cl"
	kill "$cl" 2>/dev/null
	wait "$cl" 2>/dev/null
	stop_forqd
	check "idle_parked: forqd exits 0 on SIGTERM (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}
part idle_parked "an idle forqd with a parked GET_TASK WAIT does not tick"

left=$(ls /dev/shm 2>/dev/null | grep -c "^${shm_base#/}-")
check "no shared memory left behind" [ "$left" -eq 0 ]
finish
