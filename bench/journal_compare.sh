#!/usr/bin/env bash
# journal_compare.sh — forq's journal beside Redis AOF and beanstalkd's
# binlog, on this machine and disk, in one run: one producer, one consumer
# process, 8-byte tasks, every result checked (forq: done == tasks; the
# baselines: each task delivered exactly once).
#
#   bench/journal_compare.sh [--quick] [--runs R] [--dir DIR] [BIN_DIR]
#
# BIN_DIR holds forq and forqd (cli/ and service/ of a build, or both in
# one folder) and bench/'s clients; default build. DIR: where the journals,
# the AOF and the binlog go (default: a temp dir under the current
# directory, so on the disk you run it from). Rows:
#   forq --fsync always, each batch of 64 waiting (--sync-every 0) and
#   pipelined (forq_push_batch_async, a forq_sync per 4096 tasks);
#   forq --fsync 5, the same two (pushes never wait for the disk there);
#   Redis appendonly yes, appendfsync always and everysec: 64 LPUSHes per
#   write, their replies read before the next 64, a consumer RPOPping 64;
#   beanstalkd -b DIR (fsync at most every 50 ms, its default) and -f0
#   (fsync per write), 64 puts per write, reserve + delete per job.
# Progress on stderr, a markdown table on stdout (median of R runs, and
# forq's push-to-journaled p50/p99 of the median run). Exit 0 when every
# run passed its check, 1 otherwise, 2 for bad usage.
set -u

here=$(cd "$(dirname "$0")" && pwd)
bin="" quick=0 runs=3 dir=""

usage() {
	sed -n '2,22s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--runs | --dir)
		[ $# -ge 2 ] || usage
		[ "$1" = --runs ] && runs=$2 || dir=$2
		shift
		;;
	-h | --help) usage ;;
	-*) echo "journal_compare.sh: unknown option $1" >&2; usage ;;
	*) bin=$1 ;;
	esac
	shift
done
case "$runs" in '' | *[!0-9]* | 0) echo "journal_compare.sh: --runs takes a positive number" >&2; exit 2 ;; esac
[ -n "$bin" ] || bin="$here/../build"
find_bin() { # NAME: the first of BIN/NAME, BIN/cli/NAME, BIN/service/NAME, BIN/bench/NAME
	local d
	for d in "$bin" "$bin/cli" "$bin/service" "$bin/bench"; do
		[ -x "$d/$1" ] && { echo "$d/$1"; return 0; }
	done
	return 1
}
forq=$(find_bin forq) && forqd=$(find_bin forqd) || {
	echo "journal_compare.sh: no forq and forqd in $bin (or its cli/ and service/)" >&2
	exit 2
}

if [ "$quick" = 1 ]; then
	n_fast=200000 n_slow=20000 n_crawl=2000 limit=30
else
	n_fast=2000000 n_slow=200000 n_crawl=10000 limit=120
fi

tmp=$(mktemp -d "${dir:-$PWD}/forq-jcompare.XXXXXX") || exit 2
server_pids=()
cleanup() {
	stop_servers
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/compare_lib.sh
. "$here/compare_lib.sh"

rows=() failed=0
declare -A tps lat

# run_case KEY LABEL CHECK CMD...: CMD $runs times (each with a fresh data
# dir $tmp/data, made before), median tasks/s; CHECK is "forq" (done ==
# tasks in its JSON) or "ok" ("ok": true). forq's latencies: the median run's.
run_case() {
	local key=$1 label=$2 check=$3 i out rc v vals=() lats=()
	shift 3
	rows+=("$key|$label")
	for ((i = 1; i <= runs; i++)); do
		rm -rf "$tmp/data" && mkdir -p "$tmp/data"
		[ -n "${before_run:-}" ] && $before_run
		out=$(timeout -k 5 $((limit + 15)) "$@" 2>"$tmp/err")
		rc=$?
		[ -n "${after_run:-}" ] && $after_run
		v=$(field tasks_per_s "$out")
		if [ "$check" = forq ]; then
			[ "$(field done "$out")" = "$(field tasks "$out")" ] || bad=1
		elif ! grep -q '"ok"[[:space:]]*:[[:space:]]*true' <<<"$out"; then
			bad=1
		fi
		[ "$rc" -eq 0 ] && [ "${bad:-0}" = 1 ] && rc=1
		bad=0
		if [ "$rc" -ne 0 ] || [ -z "$v" ]; then
			log "  $key run $i: FAILED (exit $rc) ${out:-no output}"
			sed 's/^/    /' "$tmp/err" >&2
			tps[$key]=FAIL failed=1
			return
		fi
		log "  $key run $i: $v tasks/s"
		vals+=("$v")
		lats+=("$v $(field durable_p50_us "$out") $(field durable_p99_us "$out")")
	done
	tps[$key]=$(median "${vals[@]}")
	# The latencies of the run whose rate is the median (the lower middle).
	lat[$key]=$(printf '%s\n' "${lats[@]}" | sort -g | sed -n "$(((runs + 1) / 2))p" | cut -d' ' -f2-)
}

forq_case() { # KEY LABEL FSYNC SYNC_EVERY TASKS
	run_case "$1" "$2" forq "$forq" bench --forqd "$forqd" --tasks "$5" --workers 1 --batch 64 \
		--payload-bytes 8 --handler noop --json --quiet --journal "$tmp/data" --fsync "$3" \
		--sync-every "$4"
}

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n1)
disk=$(df -P "$tmp" | awk 'NR == 2 { print $1 }')
fs=$(df -PT "$tmp" 2>/dev/null | awk 'NR == 2 { print $2 }')
load=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
log "machine: ${cpu:-$(uname -m)}, $(nproc) CPUs, $(uname -sr); data on $disk ($fs); load $load"

forq_case forq-always "forq \`--fsync always\`, each batch of 64 waits" always 0 "$n_slow"
forq_case forq-always-pipe "forq \`--fsync always\`, pipelined (a \`forq_sync\` per 4096 tasks)" \
	always 4096 "$n_fast"
forq_case forq-5 "forq \`--fsync 5\`, each batch of 64 pushed (pushes never wait)" 5 0 "$n_fast"
forq_case forq-5-pipe "forq \`--fsync 5\`, pipelined (a \`forq_sync\` per 4096 tasks)" 5 4096 "$n_fast"

redis_up() {
	start_server redis-server --bind 127.0.0.1 --port @PORT@ --save '' --appendonly yes \
		--appendfsync "$redis_fsync" --dir "$tmp/data" --daemonize no &&
		echo "$srv_port" >"$tmp/port"
}
if command -v redis-server >/dev/null && [ -x "$(find_bin bench_redis_client)" ]; then
	ver=$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')
	for redis_fsync in always everysec; do
		before_run=redis_up after_run=stop_servers
		run_case "redis-$redis_fsync" "Redis $ver \`appendfsync $redis_fsync\`, LPUSH 64 per write + RPOP 64" ok \
			bash -c '"$0" --tasks "$1" --port "$(cat "$2")" --batch 64 --consumers 1 --timeout "$3"' \
			"$(find_bin bench_redis_client)" "$n_slow" "$tmp/port" "$limit"
	done
else
	log "  redis-server or bench_redis_client missing: Redis rows skipped"
fi

beanstalk_up() {
	# shellcheck disable=SC2086 # no flag, or one
	start_server beanstalkd -l 127.0.0.1 -p @PORT@ -b "$tmp/data" $bs_flags &&
		echo "$srv_port" >"$tmp/port"
}
if command -v beanstalkd >/dev/null && [ -x "$(find_bin bench_beanstalk_client)" ]; then
	ver=$(beanstalkd -v 2>&1 | awk '{ print $2; exit }')
	for bs_flags in "" -f0; do
		n=$n_slow
		[ "$bs_flags" = -f0 ] && n=$n_crawl
		before_run=beanstalk_up after_run=stop_servers
		run_case "beanstalkd${bs_flags}" "beanstalkd $ver \`-b DIR${bs_flags:+ $bs_flags}\`, 64 puts per write, reserve + delete" ok \
			bash -c '"$0" --tasks "$1" --port "$(cat "$2")" --batch 64 --consumers 1 --timeout "$3"' \
			"$(find_bin bench_beanstalk_client)" "$n" "$tmp/port" "$limit"
	done
else
	log "  beanstalkd or bench_beanstalk_client missing: beanstalkd rows skipped"
fi
before_run="" after_run=""

log "done in $(($(date +%s) - start)) s"
echo "Machine: ${cpu:-$(uname -m)}, $(nproc) CPUs ($(uname -sr)); data on $disk ($fs);" \
	"load average at the start $load. Median of $runs runs; one producer, one consumer process."
echo
echo "| setup | tasks/s | push to journaled p50 / p99 |"
echo "|---|---:|---:|"
for r in "${rows[@]}"; do
	key=${r%%|*} v=${tps[${r%%|*}]}
	case "$v" in
	FAIL) cellv="failed" ;;
	*) cellv=$(awk -v v="$v" 'BEGIN { if (v >= 1e6) printf "%.2f M/s", v / 1e6; else printf "%.1f k/s", v / 1e3 }') ;;
	esac
	l=${lat[$key]:-}
	if [ -n "${l// /}" ]; then
		l=$(awk -v a="${l% *}" -v b="${l#* }" 'BEGIN { printf "%.2f / %.2f ms", a / 1e3, b / 1e3 }')
	else
		l="—"
	fi
	echo "| ${r#*|} | $cellv | $l |"
done
exit $failed
