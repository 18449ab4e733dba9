#!/usr/bin/env bash
# metrics_load.sh — what serving /metrics costs the queue, and how fast it
# answers while the queue runs flat out.
#
#   bench/metrics_load.sh [--quick] [--check] [FORQD]   (default: build/service/forqd)
#
# First an idle forqd: /metrics latency at ~100 scrapes/s with the queue at
# rest (what this machine gives a request). Then one forqd (its own queue,
# HTTP on 127.0.0.1 and a free port, TCP and results off) whose built-in
# producer pushes as fast as the queue takes tasks (--demo 1e9) to WORKERS
# consumers (default 2, arith handler), and ROUNDS (default 5) pairs of
# WINDOW-second windows (default 5), in ABBA order:
#   - no scraper: tasks finished per second (two reads of /metrics);
#   - a scraper:  wrk on one keep-alive connection, a GET /metrics every
#                 SCRAPE_PERIOD_MS (default 10) ms on a fixed schedule (a
#                 LuaJIT delay() script: Debian's wrk has no -R), i.e. 100
#                 scrapes/s, a very eager Prometheus; the same figure, plus
#                 wrk's p50/p99 latency.
# Each window also reads every forqd thread's CPU time (schedstat, ns): tasks
# per CPU-second of the queue's own processes, and the HTTP thread's CPU. On
# a shared machine raw throughput swings by tens of percent between windows,
# so the cost is also computed from that accounting: on a dedicated box the
# queue gets every CPU the HTTP thread leaves, hence
#   cost = 1 - (eff_scraped / eff_base) x (CPUs - http_scraped) / (CPUs - http_base).
# Last, a closed-loop wrk run (1 connection, as fast as it answers, 3 s).
#
# Prints a table; with --check exits 1 when scraping costs 2% or more or the
# p99 of /metrics at 100/s is 5 ms or more. Needs curl, awk, pgrep and wrk
# (installed with apt-get when missing and run as root).
set -u

here=$(cd "$(dirname "$0")" && pwd)
quick=0 check=0 forqd=""
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--check) check=1 ;;
	-h | --help) sed -n '2,27s/^# \{0,1\}//p' "$0"; exit 0 ;;
	-*) echo "metrics_load.sh: unknown option $1" >&2; exit 2 ;;
	*) forqd=$1 ;;
	esac
	shift
done
forqd=${forqd:-${FORQD:-$here/../build/service/forqd}}
workers=${WORKERS:-2}
window=${WINDOW:-5}
rounds=${ROUNDS:-5}
period_ms=${SCRAPE_PERIOD_MS:-10}
[ "$quick" = 1 ] && window=${WINDOW:-3} rounds=${ROUNDS:-2}

if [ ! -x "$forqd" ]; then
	echo "metrics_load.sh: no forqd at $forqd (build it, or pass its path)" >&2
	exit 2
fi
if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk >/dev/null 2>&1
fi
for t in wrk curl awk; do
	command -v $t >/dev/null 2>&1 || { echo "metrics_load.sh: needs $t (apt-get install $t)" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/forq-metrics-load.XXXXXX") || exit 2
shm=/forq-metrics-load-$$
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -f "/dev/shm$shm"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "$*" >&2; }
# cpu_ns: "QUEUE HTTP" — nanoseconds on CPU so far of forqd's processes and
# threads (consumers, producer, main loop) but its HTTP thread, and of the
# HTTP thread (libmicrohttpd names it MHD-single). From schedstat: exact.
cpu_ns() {
	local q=0 h=0 t ns
	for t in /proc/$pid/task/* $(for c in $(pgrep -P "$pid"); do echo /proc/$c/task/*; done); do
		ns=$(cut -d' ' -f1 "$t/schedstat" 2>/dev/null) || continue
		if [ "$(cat "$t/comm" 2>/dev/null)" = MHD-single ]; then h=$((h + ns)); else q=$((q + ns)); fi
	done
	echo "$q $h"
}
# sample: "FINISHED TIME_S QUEUE_NS HTTP_NS" — tasks done + failed + dead.
sample() {
	local t c
	t=$(date +%s.%N)
	c=$(cpu_ns)
	curl -fsS "$url" | awk -v t="$t" -v c="$c" '
		$1 ~ /^forq_tasks_(done|failed|dead)_total\{/ { s += $2 }
		END { printf "%d %s %s\n", s, t, c }'
}
# window "S0" "S1": "TASKS_PER_S TASKS_PER_QUEUE_CPU_S HTTP_CPU_MS_PER_S"
window() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x); split(b, y); dt = y[2] - x[2]
		printf "%.0f %.0f %.3f\n", (y[1] - x[1]) / dt, (y[1] - x[1]) / ((y[3] - x[3]) / 1e9),
			(y[4] - x[4]) / 1e6 / dt }'
}
# ms VALUE_WITH_UNIT: wrk's "318.00us" / "7.97ms" / "1.02s" in milliseconds.
ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f\n", n }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

cat >"$tmp/scrape.lua" <<EOF
-- GET /metrics on a fixed schedule, one every $period_ms ms: each delay aims
-- at the next slot, so a slow answer or a late timer does not lower the rate.
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } forq_timespec;
int clock_gettime(int clk, forq_timespec *ts);
]]
local ts = ffi.new("forq_timespec")
local period, next_at = $period_ms, nil
local function now_ms()
	ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
	return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
function delay()
	local t = now_ms()
	next_at = (next_at or t) + period
	if next_at < t then return 0 end
	return math.floor(next_at - t)
end
EOF

# Idle first: what this machine gives a scrape with the queue at rest.
log "idle queue, /metrics at ~100/s for 3 s:"
"$forqd" --shm-name "$shm" --workers "$workers" --results off --tcp off --http 127.0.0.1:0 \
	2>"$tmp/idle.log" &
idle_pid=$!
pid=$idle_pid
idle_port=
for _ in $(seq 50); do
	idle_port=$(sed -n 's/.*event=http_listening .*port=\([0-9]*\).*/\1/p' "$tmp/idle.log" | head -n 1)
	[ -n "$idle_port" ] && break
	sleep 0.1
done
idle_p50=? idle_p99=?
if [ -n "$idle_port" ]; then
	wrk -t1 -c1 -d3s --latency -s "$tmp/scrape.lua" "http://127.0.0.1:$idle_port/metrics" >"$tmp/wrk.idle" 2>&1
	idle_p50=$(ms "$(awk '$1 == "50%" { print $2 }' "$tmp/wrk.idle")")
	idle_p99=$(ms "$(awk '$1 == "99%" { print $2 }' "$tmp/wrk.idle")")
fi
kill -TERM "$idle_pid" 2>/dev/null
wait "$idle_pid" 2>/dev/null
idle_pid=
log "    p50 $idle_p50 ms, p99 $idle_p99 ms"

"$forqd" --shm-name "$shm" --workers "$workers" --handler arith --demo 1e9 --results off \
	--tcp off --http 127.0.0.1:0 --log-level info 2>"$tmp/forqd.log" &
pid=$!
port=
for _ in $(seq 100); do
	port=$(sed -n 's/.*event=http_listening .*port=\([0-9]*\).*/\1/p' "$tmp/forqd.log" | head -n 1)
	[ -n "$port" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$port" ]; then
	log "metrics_load.sh: forqd did not start:"
	sed 's/^/    /' "$tmp/forqd.log" >&2
	exit 1
fi
url=http://127.0.0.1:$port/metrics

cpu=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
log "machine: ${cpu:-$(uname -m)}, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "forqd: $workers workers, arith, --demo 1e9 (flat out); $rounds rounds of 2 x ${window}s windows"
sleep 2 # consumers up, the ring full

ncpu=$(nproc)
# run_window base|scraped: one window; appends to the arrays of its kind.
b_tps=() b_eff=() b_http=() s_tps=() s_eff=() s_http=() s_wrk=() p50s=() p99s=() reqs=()
run_window() {
	local a b w n=${#p99s[@]}
	a=$(sample)
	if [ "$1" = base ]; then
		sleep "$window"
		b=$(sample)
		read -r w[0] w[1] w[2] <<<"$(window "$a" "$b")"
		b_tps+=("${w[0]}") b_eff+=("${w[1]}") b_http+=("${w[2]}")
		log "    no scraper: ${w[0]} tasks/s, ${w[1]} tasks per queue CPU-second, HTTP thread ${w[2]} ms CPU/s"
		return
	fi
	# wrk's own CPU (user + system seconds), to show what the scraper costs this box.
	{ TIMEFORMAT='%U %S'; time wrk -t1 -c1 -d"${window}s" --latency -s "$tmp/scrape.lua" "$url" \
		>"$tmp/wrk.$n" 2>&1; } 2>"$tmp/wrktime.$n"
	b=$(sample)
	read -r w[0] w[1] w[2] <<<"$(window "$a" "$b")"
	s_tps+=("${w[0]}") s_eff+=("${w[1]}") s_http+=("${w[2]}")
	s_wrk+=("$(awk -v d="$window" '{ printf "%.3f", ($1 + $2) * 1000 / d }' "$tmp/wrktime.$n")")
	p50s+=("$(ms "$(awk '$1 == "50%" { print $2 }' "$tmp/wrk.$n")")")
	p99s+=("$(ms "$(awk '$1 == "99%" { print $2 }' "$tmp/wrk.$n")")")
	reqs+=("$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$tmp/wrk.$n")")
	log "    scraped ${reqs[-1]}/s: ${w[0]} tasks/s, ${w[1]} tasks per queue CPU-second, HTTP thread ${w[2]} ms CPU/s, wrk ${s_wrk[-1]} ms CPU/s; /metrics p50 ${p50s[-1]} ms, p99 ${p99s[-1]} ms"
}

# ABBA: odd rounds unscraped first, even rounds scraped first, so that a
# drift of the machine's load does not favour either side.
for r in $(seq "$rounds"); do
	log "  round $r:"
	if [ $((r % 2)) = 1 ]; then run_window base; run_window scraped; else run_window scraped; run_window base; fi
	if ! kill -0 "$pid" 2>/dev/null; then
		log "metrics_load.sh: forqd died"
		exit 1
	fi
done

wrk -t1 -c1 -d3s --latency "$url" >"$tmp/wrk.flat" 2>&1
flat_rps=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$tmp/wrk.flat")
flat_p50=$(ms "$(awk '$1 == "50%" { print $2 }' "$tmp/wrk.flat")")
flat_p99=$(ms "$(awk '$1 == "99%" { print $2 }' "$tmp/wrk.flat")")
errors=$(grep -h -E 'Non-2xx|Socket errors' "$tmp"/wrk.* | head -n 3)

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a - b) * 100 / a }'; }
mb=$(median "${b_tps[@]}") msc=$(median "${s_tps[@]}")
eb=$(median "${b_eff[@]}") es=$(median "${s_eff[@]}")
hb=$(median "${b_http[@]}") hs=$(median "${s_http[@]}") wk=$(median "${s_wrk[@]}")
rq=$(median "${reqs[@]}")
# Per round (the two windows of a round are side by side in time), then the
# median: less swayed by the machine's drift than a ratio of medians.
raw_pairs=() est_pairs=() wrk_pairs=()
for i in "${!b_tps[@]}"; do
	raw_pairs+=("$(pct "${b_tps[$i]}" "${s_tps[$i]}")")
	# On a dedicated box the queue gets every CPU the HTTP thread leaves:
	# throughput = tasks per queue CPU-second x (CPUs - HTTP CPU). The scraper
	# itself (Prometheus) normally runs elsewhere; "wrk" counts it too.
	est_pairs+=("$(awk -v eb="${b_eff[$i]}" -v es="${s_eff[$i]}" -v hb="${b_http[$i]}" \
		-v hs="${s_http[$i]}" -v n="$ncpu" \
		'BEGIN { printf "%.2f", (1 - (es / eb) * (n * 1000 - hs) / (n * 1000 - hb)) * 100 }')")
	wrk_pairs+=("$(awk -v eb="${b_eff[$i]}" -v es="${s_eff[$i]}" -v hb="${b_http[$i]}" \
		-v hs="${s_http[$i]}" -v w="${s_wrk[$i]}" -v n="$ncpu" \
		'BEGIN { printf "%.2f", (1 - (es / eb) * (n * 1000 - hs - w) / (n * 1000 - hb)) * 100 }')")
done
raw_cost=$(median "${raw_pairs[@]}")
est=$(median "${est_pairs[@]}")
est_wrk=$(median "${wrk_pairs[@]}")
http_share=$(awk -v hs="$hs" -v hb="$hb" -v n="$ncpu" 'BEGIN { printf "%.2f", (hs - hb) / (n * 10) }')
per_scrape=$(awk -v hs="$hs" -v hb="$hb" -v r="$rq" 'BEGIN { printf "%.0f", (hs - hb) * 1000 / r }')
p50=$(median "${p50s[@]}") p99=$(median "${p99s[@]}")
p99max=$(printf '%s\n' "${p99s[@]}" | sort -g | tail -n 1)

echo "forqd /metrics under load: $workers workers, arith, --demo 1e9 (flat out), $rounds x 2 windows of ${window}s"
echo "machine: ${cpu:-$(uname -m)}, $ncpu CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "| figure | no scraper | /metrics at ${rq}/s |"
echo "|---|---|---|"
echo "| throughput, tasks/s (median) | $mb | $msc |"
echo "| tasks per CPU-second of the queue's processes (median) | $eb | $es |"
echo "| forqd's HTTP thread, ms of CPU per second | $hb | $hs ($per_scrape µs per scrape) |"
echo "| wrk (the scraper), ms of CPU per second | – | $wk |"
echo "| /metrics latency p50 / p99 (median of rounds) | idle queue: $idle_p50 / $idle_p99 ms | $p50 / $p99 ms (worst round p99 $p99max ms) |"
echo
echo "cost of scraping 100/s (median of rounds): $est% from CPU accounting (per round: ${est_pairs[*]});"
echo "  of which the HTTP thread's own CPU is $http_share% of the machine; $est_wrk% with the scraper on the same box"
echo "raw throughput difference (median of rounds): $raw_cost% (per round: ${raw_pairs[*]}; windows range"
echo "  $(printf '%s\n' "${b_tps[@]}" "${s_tps[@]}" | sort -g | sed -n '1p;$p' | tr '\n' ' ')tasks/s: the noise of a shared machine)"
echo "/metrics hammered (1 connection, closed loop, 3 s): $flat_rps req/s, p50 $flat_p50 ms, p99 $flat_p99 ms"
[ -n "$errors" ] && echo "wrk reported: $errors"

ok=1
awk -v c="$est" 'BEGIN { exit !(c < 2) }' && echo "target met: scraping 100/s costs under 2% of throughput" ||
	{ echo "target MISSED: scraping costs $est% (target under 2%)"; ok=0; }
awk -v p="$p99" 'BEGIN { exit !(p < 5) }' && echo "target met: /metrics p99 under 5 ms while the queue runs flat out" ||
	{ echo "target MISSED: /metrics p99 $p99 ms (target under 5 ms)"; ok=0; }
[ -n "$errors" ] && ok=0
[ "$check" = 1 ] && [ "$ok" = 0 ] && exit 1
exit 0
