#!/usr/bin/env bash
# nats_hosts.sh — forq through NATS JetStream beside the bare libnats
# consumer and forq's own TCP remote workers, on one machine, in one run
# (issue 17). A one-node nats-server with JetStream on 127.0.0.1 (random
# ports, its store in a temp dir); each forq case gets a fresh stream and
# fresh forqd hosts. Every case publishes and consumes at once: the clock
# runs from the first publish (push) to the last task's result line.
#
#   bench/nats_hosts.sh [--quick] [--runs R] [BUILD_DIR]      (default: build, R 3)
#
# Cases (the median of R runs each; every run checked: N results, all done):
#   bare       bench_nats_baseline, 1 and 2 consumers (fetch 64, an ack each)
#   noop       forq push --upstream --file; 1 forqd host (--workers 2), then 2
#              hosts on one stream (2 workers each); forq's TCP path: forqd
#              --workers 0, forq push --file into it, 1 forq worker process
#              (--concurrency 2), then 2 such processes
#   sleep      the same four forq cases with a handler that costs a fixed
#              2 ms a task (a proc: child in Python sleeping 2 ms: a task
#              that waits on something, as an API call does; it takes no
#              CPU, so two hosts on these 2 cores can show the scaling a
#              CPU-bound handler could only show on two machines)
#   latency    publish (push) to start, 400 tasks/s for 5 s (below every
#              case's capacity) with the sleep handler: each payload is the
#              wall clock in microseconds when the producer wrote it, the
#              handler answers how long ago that was; p50 and p99. Via
#              JetStream the producer is forq push --upstream --file - (one
#              asynchronous publish a line), on the TCP path one connection's
#              pipelined PUTs
# Prints a markdown table; --quick: fewer tasks, 1 run (a smoke test, ~1 min).
set -u
runs=3
quick=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 runs=1 ;;
	--runs) runs=$2; shift ;;
	-*) echo "usage: $0 [--quick] [--runs R] [BUILD_DIR]" >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
FORQD=$build/service/forqd
FORQ=$build/cli/forq
BASE=$build/bench/bench_nats_baseline
for b in "$FORQD" "$FORQ" "$BASE"; do
	[ -x "$b" ] || { echo "nats_hosts.sh: $b missing (cmake --build $build)" >&2; exit 2; }
done
command -v nats-server >/dev/null || { echo "nats_hosts.sh: needs nats-server (apt-get install nats-server)" >&2; exit 2; }
N_NOOP=${N_NOOP:-100000}
N_SLEEP=${N_SLEEP:-6000}
[ -z "$quick" ] || { N_NOOP=10000 N_SLEEP=1000; }
TMP=$(mktemp -d /tmp/forq-nats-hosts.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null; kill -9 "$p" 2>/dev/null; done
	nats_cluster_stop
	rm -rf "$TMP"
	rm -f /dev/shm/forq-nh-$$-*
}
trap cleanup EXIT
trap 'exit 130' INT TERM
. "$here/../tests/e2e/nats_cluster.sh"
nats_cluster_start 1 127.0.0.1 "$TMP"
nats_cluster_ready 30 1 || { echo "nats_hosts.sh: nats-server did not start" >&2; exit 1; }

# The fixed-cost handler: a proc: child (forq.serve, clients/python) that
# sleeps 2 ms a task; a payload t=US is answered with the microseconds from
# US (the wall clock) to the task's start.
cat >"$TMP/sleeper.py" <<'PYEOF'
import time
import forq

def run(payload):
    start = time.time()
    time.sleep(0.002)
    if payload.startswith(b"t="):
        return str(int(start * 1e6) - int(payload[2:]))
    return "ok"

forq.serve(run)
PYEOF
SLEEP="proc:exec env PYTHONPATH=$here/../clients/python /usr/bin/python3 $TMP/sleeper.py"
echo 0 >"$TMP/k"
# next: a fresh number for a case's stream, queues and files (cases run in
# subshells: the counter lives in a file).
next() { K=$(($(cat "$TMP/k") + 1)); echo "$K" >"$TMP/k"; }

now() { date +%s.%N; }
# wait_lines FILE... N SECONDS: until the files hold N lines together.
wait_lines() {
	local n=${*: -2:1} limit=${*: -1} end
	local files=("${@:1:$#-2}")
	end=$((SECONDS + limit))
	while [ "$(cat "${files[@]}" 2>/dev/null | wc -l)" -lt "$n" ]; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.02
	done
}
# start_forqd LOG FLAGS...: forqd in the background, up once it logs started.
start_forqd() {
	local log=$1 end=$((SECONDS + 20))
	shift
	"$FORQD" --http off "$@" >"$log" 2>&1 &
	FPID=$!
	PIDS+=("$FPID")
	until grep -q 'event=started' "$log" 2>/dev/null; do
		kill -0 "$FPID" 2>/dev/null && [ $SECONDS -lt $end ] || { tail -5 "$log" >&2; return 1; }
		sleep 0.02
	done
}
stop_all() {
	local p
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	for p in "$@"; do timeout 20 tail --pid="$p" -f /dev/null; wait "$p" 2>/dev/null; done
}
# checked FILE... N: every line done (a failed task fails the case).
checked() {
	local n=${*: -1} files=("${@:1:$#-1}")
	[ "$(cat "${files[@]}" | grep -c '"status":"done"')" -ge "$n" ]
}

# upstream HOSTS HANDLER N [PAYLOADS]: tasks/s of forq through JetStream,
# HOSTS forqd hosts (2 workers each) on a fresh stream.
upstream() {
	local hosts=$1 handler=$2 n=$3 src=${4:-} h pids=() res=() t0 t1
	next
	[ -n "$src" ] || { src=$TMP/tasks$n.txt; [ -f "$src" ] || seq 1 "$n" >"$src"; }
	for ((h = 0; h < hosts; h++)); do
		res+=("$TMP/r$K-$h.jsonl")
		start_forqd "$TMP/f$K-$h.log" --upstream "$NATS_URLS" --upstream-stream "b$K" --workers 2 \
			--handler "$handler" --tcp off --shm-name "/forq-nh-$$-$K-$h" --results "${res[-1]}" || return 1
		pids+=("$FPID")
	done
	t0=$(now)
	"$FORQ" push --upstream "$NATS_URLS" --upstream-stream "b$K" --file "$src" >/dev/null || return 1
	wait_lines "${res[@]}" "$n" 300 || { echo "upstream $hosts $handler: timed out" >&2; return 1; }
	t1=$(now)
	stop_all "${pids[@]}"
	checked "${res[@]}" "$n" || { echo "upstream $hosts $handler: a task failed" >&2; return 1; }
	LAST=("${res[@]}")
	echo "$n $t0 $t1" | awk '{ printf "%d\n", $1 / ($3 - $2) }'
}

# tcp WORKERS HANDLER N [PAYLOADS]: tasks/s through forq's TCP remote workers:
# forqd --workers 0, WORKERS forq worker processes (--concurrency 2 each).
tcp() {
	local workers=$1 handler=$2 n=$3 src=${4:-} w pids=() port t0 t1 res
	next
	[ -n "$src" ] || { src=$TMP/tasks$n.txt; [ -f "$src" ] || seq 1 "$n" >"$src"; }
	res=$TMP/r$K.jsonl
	start_forqd "$TMP/f$K.log" --workers 0 --tcp 127.0.0.1:0 --shm-name "/forq-nh-$$-$K" \
		--results "$res" || return 1
	local fpid=$FPID
	port=$(sed -n 's/.*event=tcp_listening .*port=\([0-9]*\).*/\1/p' "$TMP/f$K.log" | head -n 1)
	for ((w = 0; w < workers; w++)); do
		"$FORQ" worker --connect "127.0.0.1:$port" --handler "$handler" --concurrency 2 --quiet \
			2>>"$TMP/w$K.log" &
		pids+=($!)
		PIDS+=($!)
	done
	t0=$(now)
	if [ "$src" = put ]; then
		pace_put "$port" || return 1
	else
		"$FORQ" push --shm-name "/forq-nh-$$-$K" --file "$src" --timeout 60000 >/dev/null || return 1
	fi
	wait_lines "$res" "$n" 300 || { echo "tcp $workers $handler: timed out" >&2; return 1; }
	t1=$(now)
	stop_all "${pids[@]}"
	stop_all "$fpid"
	checked "$res" "$n" || { echo "tcp $workers $handler: a task failed" >&2; return 1; }
	LAST=("$res")
	echo "$n $t0 $t1" | awk '{ printf "%d\n", $1 / ($3 - $2) }'
}

bare() {
	"$BASE" --tasks "$2" --consumers "$1" --port "${NATS_PORTS[0]}" --timeout 120 |
		sed -n 's/.*"tasks_per_s":\([0-9]*\).*/\1/p'
}

# median CMD...: runs CMD $runs times, prints the median of its outputs.
median() {
	local i v vals=()
	for ((i = 0; i < runs; i++)); do
		v=$("$@") && [ -n "$v" ] || { echo "failed: $*" >&2; echo 0; return; }
		vals+=("$v")
	done
	printf '%s\n' "${vals[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

# lat_upstream HOSTS, lat_tcp PROCESSES: p50 and p99 (ms) of publish-to-start at 400 tasks/s for 5 s.
pace() {
	/usr/bin/python3 -c '
import sys, time
t0 = time.time()
for i in range(2000):
    while time.time() < t0 + i / 400: time.sleep(0.0005)
    sys.stdout.write("t=%d\n" % int(time.time() * 1e6)); sys.stdout.flush()'
}
# pace_put PORT: the same, each a TCP PUT to forqd (forq push --file hands
# lines to the queue 64 at a time: at 400/s that alone would wait 160 ms).
pace_put() {
	/usr/bin/python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
t0 = time.time()
for i in range(2000):
    while time.time() < t0 + i / 400: time.sleep(0.0005)
    p = b"t=%d" % int(time.time() * 1e6)
    s.sendall(b"PUT %d\r\n%s\r\n" % (len(p), p))
buf = b""
while buf.count(b"\n") < 2000:
    d = s.recv(65536)
    if not d: sys.exit(1)
    buf += d
sys.exit(0 if buf.count(b"OK ") == 2000 else 1)' "$1"
}
percentiles() {
	cat "$@" | sed -n 's/.*"result":"\([0-9]*\)".*/\1/p' | sort -n |
		awk '{ a[NR] = $1 } END { printf "%.1f / %.1f ms", a[int(NR * 0.5)] / 1000, a[int(NR * 0.99)] / 1000 }'
}
# (- : the payloads from stdin, pushed as they come)
lat_upstream() { upstream "$1" "$SLEEP" 2000 - >/dev/null < <(pace) && percentiles "${LAST[@]}"; }
lat_tcp() { tcp "$1" "$SLEEP" 2000 put >/dev/null && percentiles "${LAST[@]}"; }

load0=$(cut -d' ' -f1-3 /proc/loadavg)
b1=$(median bare 1 "$N_NOOP")
b2=$(median bare 2 "$N_NOOP")
u1=$(median upstream 1 noop "$N_NOOP")
u2=$(median upstream 2 noop "$N_NOOP")
t1=$(median tcp 1 noop "$N_NOOP")
t2=$(median tcp 2 noop "$N_NOOP")
s1=$(median upstream 1 "$SLEEP" "$N_SLEEP")
s2=$(median upstream 2 "$SLEEP" "$N_SLEEP")
ts1=$(median tcp 1 "$SLEEP" "$N_SLEEP")
ts2=$(median tcp 2 "$SLEEP" "$N_SLEEP")
lu2=$(lat_upstream 2)
lt2=$(lat_tcp 2)

best=$((b1 > b2 ? b1 : b2))
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "-" }'; }
x() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "$(nproc) cores ($cpu), $(date -u +%Y-%m-%d), load average before $load0, after $(cut -d' ' -f1-3 /proc/loadavg); nats-server $(nats-server --version | sed 's/.* v//'), one node, file storage; median of $runs"
echo
echo "| case | tasks | 1 host / worker process | 2 hosts / worker processes | 2 over 1 |"
echo "|---|---:|---:|---:|---:|"
echo "| bare libnats pull consumer, noop (1 and 2 consumers) | $N_NOOP | $b1/s | $b2/s | $(x "$b2" "$b1") |"
echo "| forq via JetStream, noop (2 workers a host) | $N_NOOP | $u1/s ($(pct "$u1" "$best") of bare) | $u2/s ($(pct "$u2" "$best")) | $(x "$u2" "$u1") |"
echo "| forq TCP remote workers, noop (--concurrency 2 each) | $N_NOOP | $t1/s | $t2/s | $(x "$t2" "$t1") |"
echo "| forq via JetStream, 2 ms handler (2 workers a host) | $N_SLEEP | $s1/s | $s2/s | $(x "$s2" "$s1") |"
echo "| forq TCP remote workers, 2 ms handler | $N_SLEEP | $ts1/s | $ts2/s | $(x "$ts2" "$ts1") |"
echo
echo "Publish to start at 400 tasks/s, 2 ms handler, p50 / p99: via JetStream (2 hosts) $lu2; TCP remote workers (2 processes, TCP PUT to start) $lt2"
