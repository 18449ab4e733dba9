#!/usr/bin/env bash
# threads.sh — forqd's threads under ThreadSanitizer, and the unit tests and
# a forqd run under valgrind memcheck. CI runs it after the main suite.
#
#   bash .ci/threads.sh [BUILD_TSAN] [BUILD]   (defaults: build-tsan, build)
#
# TSan: a TSan build of test_http, then a forqd (HTTP thread, TCP server,
# producer thread, journal threads beside the main loop) under load from every side at once:
# scrapes of /metrics and /stats, POST /tasks, GET /tasks/{id}, a remote
# worker over TCP and the tasks file, then POST /shutdown. Any report fails.
# valgrind: every unit test, then forqd with 2 consumers (forqd execs itself
# for each: --trace-children) on 2,000 tasks with HTTP and TCP on: any error
# or definite leak fails. Neither tool follows the consumers into the shared
# memory they share with forqd: the chaos and failpoint tests cover that side.
set -eu
cd "$(dirname "$0")/.."
tsan=${1:-build-tsan}
build=${2:-build}
tmp=$(mktemp -d)
pid= wpid=
cleanup() {
	for p in $wpid $pid; do kill -KILL "$p" 2>/dev/null || true; done
	rm -f /dev/shm/forq-tsan-$$ /dev/shm/forq-vg-$$
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "== ThreadSanitizer"
cmake -S . -B "$tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFORQ_TSAN=ON -DFORQ_BUILD_BENCH=OFF >/dev/null
cmake --build "$tsan" -j "${JOBS:-2}" --target test_http forqd forq
export TSAN_OPTIONS="halt_on_error=1 exitcode=66"
"$tsan/tests/test_http" >"$tmp/test_http.log" 2>&1 || { cat "$tmp/test_http.log"; exit 1; }
echo "test_http: no race"

awk 'BEGIN { for (i = 1; i <= 20000; i++) print i "*2" }' >"$tmp/tasks.txt"
export TSAN_OPTIONS="halt_on_error=0 exitcode=66"
# Consumers are exec'd TSan programs of their own: their batch-watch
# thread is checked too.
# --journal with --fsync always: the journal's threads too, and the TCP
# PUTs and POSTs that wait for its disk (tcp_durable, web/waiting.c).
"$tsan/service/forqd" --shm-name "/forq-tsan-$$" --workers 1 --tasks "$tmp/tasks.txt" \
	--journal "$tmp/journal" --fsync always \
	--http 127.0.0.1:0 --tcp 127.0.0.1:0 --results /dev/null 2>"$tmp/forqd.log" &
pid=$!
for _ in $(seq 100); do
	grep -q "event=tcp_listening" "$tmp/forqd.log" && grep -q "event=http_listening" "$tmp/forqd.log" && break
	sleep 0.1
done
http=$(sed -n 's/.*event=http_listening .* port=\([0-9]*\).*/\1/p' "$tmp/forqd.log" | head -1)
tcp=$(sed -n 's/.*event=tcp_listening .* port=\([0-9]*\).*/\1/p' "$tmp/forqd.log" | head -1)
"$tsan/cli/forq" worker --connect "127.0.0.1:$tcp" --handler arith --max-tasks 500 \
	--quiet 2>"$tmp/worker.log" &
wpid=$!
for i in $(seq 60); do
	curl -fsS "127.0.0.1:$http/metrics" >/dev/null
	curl -fsS "127.0.0.1:$http/stats" >/dev/null
	curl -fsS -X POST -d '{"payload":"1+1"}' "127.0.0.1:$http/tasks" >/dev/null
	curl -s "127.0.0.1:$http/tasks/$i" >/dev/null
done
kill -INT "$wpid" 2>/dev/null || true
wait "$wpid" || true
curl -fsS -X POST "127.0.0.1:$http/shutdown" >/dev/null
code=0
wait "$pid" || code=$?
pid= wpid=
if [ "$code" -ne 0 ] || grep -q "ThreadSanitizer" "$tmp/forqd.log" "$tmp/worker.log"; then
	grep -v "level=" "$tmp/forqd.log" "$tmp/worker.log" | head -80
	echo "forqd under TSan: exit $code, reports above"
	exit 1
fi
echo "forqd under load from HTTP, TCP and its tasks file: no race, exit 0"

echo "== valgrind memcheck"
vg="valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite"
for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	$vg "$t" >"$tmp/vg.log" 2>&1 || { cat "$tmp/vg.log"; echo "valgrind: $t failed"; exit 1; }
	echo "$(basename "$t"): clean"
done
awk 'BEGIN { for (i = 1; i <= 2000; i++) print i "*2" }' >"$tmp/small.txt"
$vg --trace-children=yes "$build/service/forqd" --shm-name "/forq-vg-$$" --workers 2 --tasks "$tmp/small.txt" \
	--exit-when-done --http 127.0.0.1:0 --tcp 127.0.0.1:0 --results "$tmp/vg.jsonl" \
	2>"$tmp/vgf.log" || { grep -v "level=" "$tmp/vgf.log" | head -60; echo "valgrind: forqd failed"; exit 1; }
[ "$(wc -l <"$tmp/vg.jsonl")" -eq 2000 ] || { echo "valgrind: forqd wrote $(wc -l <"$tmp/vg.jsonl") results, not 2000"; exit 1; }
echo "forqd, 2 consumers, 2,000 tasks: clean"
