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
# the AOF and the binlog go, in a temp dir of their own (default $TMPDIR or
# /tmp; the table names its device and file system). Rows:
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

# shellcheck source=bench/compare_lib.sh
. "$here/compare_lib.sh"
compare_setup jcompare "${dir:-${TMPDIR:-/tmp}}"

rows=() failed=0
declare -A tps lat vals lats checks

# add_case KEY CHECK LABEL: a row, run by the function run_KEY (one run,
# its JSON on stdout, in a fresh data dir $tmp/data); CHECK is "forq"
# (done == tasks in its JSON) or "ok" ("ok": true).
add_case() {
	rows+=("$1|$3")
	checks[$1]=$2
}

# One run of every case, then the next: cases alternate, so that a busy
# moment or the disk's write-back of an earlier run falls on all of them.
run_all() {
	local i r key out rc v bad
	for ((i = 1; i <= runs; i++)); do
		for r in "${rows[@]}"; do
			key=${r%%|*}
			[ "${tps[$key]:-}" = FAIL ] && continue
			rm -rf "$tmp/data" && mkdir -p "$tmp/data"
			out=$("run_$key" 2>"$tmp/err")
			rc=$? bad=0
			v=$(field tasks_per_s "$out")
			if [ "${checks[$key]}" = forq ]; then
				[ "$(field "done" "$out")" = "$(field tasks "$out")" ] || bad=1
			elif ! grep -q '"ok"[[:space:]]*:[[:space:]]*true' <<<"$out"; then
				bad=1
			fi
			if [ "$rc" -ne 0 ] || [ "$bad" = 1 ] || [ -z "$v" ]; then
				log "  $key run $i: FAILED (exit $rc) ${out:-no output}"
				sed 's/^/    /' "$tmp/err" >&2
				tps[$key]=FAIL failed=1
				continue
			fi
			log "  $key run $i: $v tasks/s"
			vals[$key]+="$v "
			lats[$key]+="$v,$(field durable_p50_us "$out"),$(field durable_p99_us "$out") "
		done
	done
	for r in "${rows[@]}"; do
		key=${r%%|*}
		[ "${tps[$key]:-}" = FAIL ] && continue
		# shellcheck disable=SC2086 # one value a word
		tps[$key]=$(median ${vals[$key]})
		# The latencies of the run whose rate is the median (the lower middle).
		lat[$key]=$(tr ' ' '\n' <<<"${lats[$key]}" | grep . | sort -g -t, -k1 |
			sed -n "$(((runs + 1) / 2))p" | cut -d, -f2-)
	done
}

forq_run() { # FSYNC SYNC_EVERY TASKS
	timeout -k 5 $((limit + 15)) "$forq" bench --forqd "$forqd" --tasks "$3" --workers 1 --batch 64 --payload-bytes 8 \
		--handler noop --json --quiet --journal "$tmp/data" --fsync "$1" --sync-every "$2"
}
run_forq-always() { forq_run always 0 "$n_slow"; }
run_forq-always-pipe() { forq_run always 4096 "$n_fast"; }
run_forq-5() { forq_run 5 0 "$n_fast"; }
run_forq-5-pipe() { forq_run 5 4096 "$n_fast"; }
add_case forq-always forq "forq \`--fsync always\`, each batch of 64 waits (\`--sync-every 0\`)"
add_case forq-always-pipe forq "forq \`--fsync always\`, pipelined: \`forq_push_batch_async\`, a \`forq_sync\` per 4096 tasks"
add_case forq-5 forq "forq \`--fsync 5\`, \`forq_push_batch\` (\`--sync-every 0\`; no push waits for the disk in this mode)"
add_case forq-5-pipe forq "forq \`--fsync 5\`, \`forq_push_batch_async\` + \`forq_sync\` per 4096 tasks (the same calls, which do not wait in this mode)"

# server_run CLIENT TASKS SERVER-CMD...: the server up, the client against
# it, the server down (all in the run's subshell).
server_run() {
	local client=$1 n=$2 rc
	shift 2
	start_server "$@" >&2 || return 1
	timeout -k 5 $((limit + 15)) "$client" --tasks "$n" --port "$srv_port" --batch 64 \
		--consumers 1 --timeout "$limit"
	rc=$?
	stop_servers
	return $rc
}
if command -v redis-server >/dev/null && redis_client=$(find_bin bench_redis_client); then
	ver=$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')
	redis_run() {
		server_run "$redis_client" "$n_slow" redis-server --bind 127.0.0.1 --port @PORT@ \
			--save '' --appendonly yes --appendfsync "$1" --dir "$tmp/data" --daemonize no
	}
	run_redis-always() { redis_run always; }
	run_redis-everysec() { redis_run everysec; }
	add_case redis-always ok "Redis $ver \`appendonly yes\`, \`appendfsync always\`: 64 LPUSHes a write (replies read before the next 64), RPOP 64"
	add_case redis-everysec ok "Redis $ver \`appendonly yes\`, \`appendfsync everysec\`: the same"
else
	log "  redis-server or bench_redis_client missing: Redis rows skipped"
fi
if command -v beanstalkd >/dev/null && bs_client=$(find_bin bench_beanstalk_client); then
	ver=$(beanstalkd -v 2>&1 | awk '{ print $2; exit }')
	run_beanstalkd() {
		server_run "$bs_client" "$n_slow" beanstalkd -l 127.0.0.1 -p @PORT@ -b "$tmp/data"
	}
	run_beanstalkd-f0() {
		server_run "$bs_client" "$n_crawl" beanstalkd -l 127.0.0.1 -p @PORT@ -b "$tmp/data" -f0
	}
	add_case beanstalkd ok "beanstalkd $ver \`-b DIR\` (an fsync at most every 50 ms): 64 puts a write, reserve + delete"
	add_case beanstalkd-f0 ok "beanstalkd $ver \`-b DIR -f0\` (an fsync per write): the same"
else
	log "  beanstalkd or bench_beanstalk_client missing: beanstalkd rows skipped"
fi

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n1)
disk=$(df -P "$tmp" | awk 'NR == 2 { print $1 }')
fs=$(df -PT "$tmp" 2>/dev/null | awk 'NR == 2 { print $2 }')
load=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
log "machine: ${cpu:-$(uname -m)}, $(nproc) CPUs, $(uname -sr); data on $disk ($fs); load $load"
run_all

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
	if [ -n "${l//,/}" ]; then
		l=$(awk -v a="${l%,*}" -v b="${l#*,}" 'BEGIN { printf "%.2f / %.2f ms", a / 1e3, b / 1e3 }')
	else
		l="—"
	fi
	echo "| ${r#*|} | $cellv | $l |"
done
exit $failed
