#!/usr/bin/env bash
# remote.sh — remote-worker throughput over loopback: forqd with no local
# consumers (--workers 0, --results off), one `forq worker` taking GET_TASKS
# BATCH with the noop handler, and `forq push --file` feeding N tasks. Prints
# tasks/s from the first push to the worker's exit after its N-th task.
#
#   bench/remote.sh [BUILD_DIR] [TASKS] [BATCH]      (defaults: build 2000000 64)
#   RESULTS=FILE bench/remote.sh ...                 forqd writes every result
set -eu
build=${1:-build}
n=${2:-2000000}
batch=${3:-64}
forqd=$build/service/forqd
forq=$build/cli/forq
tmp=$(mktemp -d)
shm=/forq-remote-bench-$$
fpid=
cleanup() {
	[ -n "$fpid" ] && kill -TERM "$fpid" 2>/dev/null && wait "$fpid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) print "1" }' >"$tmp/tasks.txt"
"$forqd" --shm-name "$shm" --workers 0 --http off --tcp 127.0.0.1:0 \
	--results "${RESULTS:-off}" --log-level warn 2>"$tmp/forqd.log" &
fpid=$!
for _ in $(seq 100); do
	"$forq" stats --shm-name "$shm" >/dev/null 2>&1 && break
	sleep 0.1
done
# The port: forqd logs it at info; ask the kernel instead of the log.
port=$(ss -Hltnp 2>/dev/null | awk -v p="pid=$fpid," 'index($0, p) { sub(/.*:/, "", $4); print $4; exit }')
[ -n "$port" ] || { echo "remote.sh: cannot find forqd's TCP port (needs ss)" >&2; exit 1; }

"$forq" worker --connect "127.0.0.1:$port" --handler noop --batch "$batch" --max-tasks "$n" \
	--quiet 2>"$tmp/worker.log" &
wpid=$!
t0=$(date +%s.%N)
"$forq" push --shm-name "$shm" --file "$tmp/tasks.txt" --timeout 60000 >/dev/null
wait "$wpid"
t1=$(date +%s.%N)
awk -v n="$n" -v a="$t0" -v b="$t1" -v batch="$batch" 'BEGIN {
	printf "remote worker, GET_TASKS %d, noop: %d tasks in %.3f s = %.0f tasks/s\n",
		batch, n, b - a, n / (b - a) }'
