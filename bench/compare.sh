#!/usr/bin/env bash
# compare.sh — runs forq and the baselines in bench/ on this machine in one go
# and prints one markdown table: tasks/s, median of several runs, with 1 and
# 2 consumer processes.
#
#   bench/compare.sh [--quick] [--json] [--runs R] [BIN_DIR]
#
# BIN_DIR holds the baselines as CMake builds them (bench_seed1_sem, ...);
# default build/bench. forq itself runs when FORQ_BIN names the forq CLI.
# beanstalkd and redis-server run when they are on PATH: each is started here
# on 127.0.0.1 and a random free port, and stopped on every exit path.
# Every run is bounded in time. Progress goes to stderr, the table (or with
# --json the medians) to stdout. Exit 0 when every run that ran passed its
# exactly-once check, 1 otherwise, 2 for bad usage.
set -u

here=$(cd "$(dirname "$0")" && pwd)
bin=""
quick=0
json=0
runs=3

usage() {
	sed -n '2,14s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--json) json=1 ;;
	--runs)
		[ $# -ge 2 ] || usage
		runs=$2
		shift
		;;
	-h | --help) usage ;;
	-*) echo "compare.sh: unknown option $1" >&2; usage ;;
	*) bin=$1 ;;
	esac
	shift
done
case "$runs" in '' | *[!0-9]* | 0) echo "compare.sh: --runs takes a positive number" >&2; exit 2 ;; esac
[ -n "$bin" ] || bin="$here/../build/bench"
if [ ! -d "$bin" ]; then
	echo "compare.sh: no such directory: $bin (build with CMake, or pass the folder holding bench_*)" >&2
	exit 2
fi

# Tasks per run: rings are fast, semaphore/syscall designs slower, servers
# slowest. The default run takes about 4 minutes on a 2-core VM, --quick
# well under 30 s.
if [ "$quick" = 1 ]; then
	n_ring=1000000 n_sys=100000 n_srv=5000 limit=20
else
	n_ring=20000000 n_sys=2000000 n_srv=200000 limit=120
fi

# shellcheck source=bench/compare_lib.sh
. "$here/compare_lib.sh"
compare_setup compare "${TMPDIR:-/tmp}"

declare -A result # "key|consumers" -> median tasks/s, "FAIL" or "skip"
keys=() labels=() units=() notes=()
failed=0

add_row() { # key label unit(M|k)
	keys+=("$1") labels+=("$2") units+=("$3")
}

# run_case KEY CONSUMERS CMD...: runs CMD $runs times, records the median.
run_case() {
	local key=$1 c=$2 i out rc tps vals=()
	shift 2
	for ((i = 1; i <= runs; i++)); do
		out=$(timeout -k 5 $((limit + 15)) "$@" 2>"$tmp/err")
		rc=$?
		tps=$(field tasks_per_s "$out")
		if [ $rc -ne 0 ] || [ -z "$tps" ] || grep -q '"ok"[[:space:]]*:[[:space:]]*false' <<<"$out"; then
			log "  $key, $c consumer(s), run $i: FAILED (exit $rc) ${out:-no output}"
			sed 's/^/    /' "$tmp/err" >&2
			result["$key|$c"]=FAIL
			failed=1
			return
		fi
		log "  $key, $c consumer(s), run $i: $tps tasks/s"
		vals+=("$tps")
	done
	result["$key|$c"]=$(median "${vals[@]}")
}

# run_design KEY BINARY ARGS...: both consumer counts; skips a missing binary.
run_design() {
	local key=$1 exe="$bin/$2" c
	shift 2
	for c in 1 2; do
		if [ ! -x "$exe" ]; then
			result["$key|$c"]=skip
			continue
		fi
		run_case "$key" "$c" "$exe" --consumers "$c" --timeout "$limit" "$@"
	done
	[ -x "$exe" ] || notes+=("$key: $exe not built, skipped")
}

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n1)
[ -n "$cpu" ] || cpu=$(uname -m)
cores=$(nproc)
kernel=$(uname -sr)
start=$(date +%s)
log "machine: $cpu, $cores CPUs, $kernel; bins: $bin; $runs runs each"

# forq first: it is what the table is for.
add_row forq "**forq** (\`forq bench\`, batches of 64, noop handler, 8-byte payload)" M
if [ -n "${FORQ_BIN:-}" ] && [ -x "${FORQ_BIN}" ]; then
	for c in 1 2; do
		run_case forq "$c" "$FORQ_BIN" bench --tasks "$n_ring" --workers "$c" --batch 64 \
			--payload-bytes 8 --handler noop --json
	done
else
	result["forq|1"]=skip result["forq|2"]=skip
	if [ -n "${FORQ_BIN:-}" ]; then
		notes+=("forq: FORQ_BIN=$FORQ_BIN is not an executable, skipped")
	else
		notes+=("forq: set FORQ_BIN to the forq CLI (e.g. FORQ_BIN=build/forq) to include it")
	fi
fi

add_row seed1-sem "first seed: 1000-slot ring, 3 named POSIX semaphores, one task per cycle" M
run_design seed1-sem bench_seed1_sem --tasks "$n_sys"

add_row seed2-batch "second seed: 10,000 slots, semaphores per batch of 64" M
run_design seed2-batch bench_seed2_batch --tasks "$n_ring" --batch 64

mq_depth=$(cat /proc/sys/fs/mqueue/msg_max 2>/dev/null || echo 10)
add_row posix-mq "POSIX message queue, 8-byte messages (depth $mq_depth)" M
run_design posix-mq bench_mq --tasks "$n_sys"

add_row pipe-8 "pipe, 8-byte writes" M
run_design pipe-8 bench_pipe --tasks "$n_sys" --batch 1

add_row pipe-4096 "pipe, 4096-byte writes (512 tasks each)" M
run_design pipe-4096 bench_pipe --tasks "$n_ring" --batch 512

add_row ring-ref "lock-free MPMC ring (per-slot sequence), batches of 64, 64-byte records" M
run_design ring-ref bench_ring_ref --tasks "$n_ring" --batch 64

# The servers a user would otherwise pick.
if command -v beanstalkd >/dev/null 2>&1; then
	ver=$(beanstalkd -v 2>&1 | awk '{ print $2; exit }')
	add_row beanstalkd "beanstalkd ${ver} on loopback, put + reserve/delete (pipelined puts)" k
	if start_server beanstalkd -l 127.0.0.1 -p @PORT@; then
		run_design beanstalkd bench_beanstalk_client --tasks "$n_srv" --port "$srv_port"
	else
		result["beanstalkd|1"]=FAIL result["beanstalkd|2"]=FAIL failed=1
	fi
	stop_servers
else
	notes+=("beanstalkd: not installed (apt-get install beanstalkd), skipped")
fi

if command -v redis-server >/dev/null 2>&1; then
	ver=$(redis-server --version 2>&1 | sed -n 's/.*v=\([0-9.]*\).*/\1/p')
	add_row redis "Redis ${ver} on loopback, LPUSH + BRPOP (pipelined LPUSH)" k
	add_row redis-64 "Redis ${ver} on loopback, LPUSH + RPOP count 64" k
	if start_server redis-server --bind 127.0.0.1 --port @PORT@ --save '' --appendonly no \
		--daemonize no --dir "$tmp"; then
		run_design redis bench_redis_client --tasks "$n_srv" --port "$srv_port"
		run_design redis-64 bench_redis_client --tasks "$n_srv" --port "$srv_port" --batch 64
	else
		result["redis|1"]=FAIL result["redis|2"]=FAIL failed=1
		result["redis-64|1"]=FAIL result["redis-64|2"]=FAIL
	fi
	stop_servers
else
	notes+=("redis: not installed (apt-get install redis-server), skipped")
fi

took=$(($(date +%s) - start))
log "done in ${took} s"

# cell VALUE UNIT: "34.1 M/s", "12.3 k/s", "failed", "—"
cell() {
	case "$1" in
	FAIL) echo "failed" ;;
	skip | "") echo "—" ;;
	*) awk -v v="$1" -v u="$2" 'BEGIN {
		if (u == "k") printf "%.1f k/s", v / 1e3
		else if (v >= 1e7) printf "%.0f M/s", v / 1e6
		else if (v >= 1e6) printf "%.1f M/s", v / 1e6
		else printf "%.2f M/s", v / 1e6 }' ;;
	esac
}

if [ "$json" = 1 ]; then
	printf '{"machine":{"cpu":"%s","nproc":%s,"kernel":"%s"},"runs":%s,' \
		"${cpu//\"/}" "$cores" "$kernel" "$runs"
	printf '"tasks":{"rings":%s,"syscalls":%s,"servers":%s},"seconds":%s,"results":[' \
		"$n_ring" "$n_sys" "$n_srv" "$took"
	sep=""
	for i in "${!keys[@]}"; do
		for c in 1 2; do
			v=${result["${keys[$i]}|$c"]:-skip}
			case "$v" in
			FAIL) s='"failed"' v=null ;;
			skip) s='"skipped"' v=null ;;
			*) s='"ok"' ;;
			esac
			printf '%s{"design":"%s","consumers":%s,"tasks_per_s":%s,"status":%s}' \
				"$sep" "${keys[$i]}" "$c" "$v" "$s"
			sep=","
		done
	done
	echo "]}"
else
	echo "Machine: $cpu, $cores CPUs ($kernel). Median of $runs runs; tasks per run:" \
		"$n_ring (forq, rings, 4096-byte pipe writes), $n_sys (semaphores, mq, 8-byte pipe)," \
		"$n_srv (servers). One producer process, forked consumer processes, every task" \
		"checked delivered exactly once."
	echo
	echo "| design | 1 consumer | 2 consumers |"
	echo "|---|---:|---:|"
	for i in "${!keys[@]}"; do
		echo "| ${labels[$i]} | $(cell "${result["${keys[$i]}|1"]:-skip}" "${units[$i]}") |" \
			"$(cell "${result["${keys[$i]}|2"]:-skip}" "${units[$i]}") |"
	done
	if [ ${#notes[@]} -gt 0 ]; then
		echo
		for n in "${notes[@]}"; do echo "- $n"; done
	fi
fi
exit $failed
