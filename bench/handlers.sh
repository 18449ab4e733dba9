#!/usr/bin/env bash
# handlers.sh — one Python handler task (parse a small JSON document, sum ten
# numbers) through forq's exec: and proc: handlers, forq.Worker over TCP, RQ,
# Celery and a bare persistent pipe, on this machine in one run, two workers
# everywhere and every result checked; prints one markdown table (tasks/s)
# and the ratios issue 12 sets as goals.
#
#   bench/handlers.sh [--quick] [--only ROW,...] [--runs R] [--json FILE] [BUILD_DIR]
#
# BUILD_DIR holds service/forqd and cli/forq (default: build). Rows:
# exec-python exec-cat rq-fork rq-simple celery-delay celery-chunks proc
# worker worker-256 pipe-1 pipe-64 push-many push celery-apply rq-enqueue.
# redis-server is started here on 127.0.0.1 and a free port (no persistence)
# and stopped on every exit path, as are forqd and every worker. Python:
# $PYTHON, else the first of /usr/bin/python3, python3 that has celery, rq
# and redis (Debian: scripts/deps.sh bench); rows whose packages are missing
# are reported as not available. The short rows (proc worker worker-256 pipe-1 pipe-64
# push-many push) run --runs times (default 3), in rounds, and show the
# median. About 2 minutes on 2 idle cores, 4 on busy ones (--quick: under
# 30 s, one run each).
# Exit 0 when every row that ran passed its checks, 1 otherwise, 2 for usage.
set -u

here=$(cd "$(dirname "$0")" && pwd)
build=""
args=()
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) args+=("$1") ;;
	--only | --json | --runs)
		[ $# -ge 2 ] || { echo "handlers.sh: $1 needs a value" >&2; exit 2; }
		args+=("$1" "$2")
		shift
		;;
	-h | --help) sed -n '2,22s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
	-*) echo "handlers.sh: unknown option $1" >&2; exit 2 ;;
	*) build=$1 ;;
	esac
	shift
done
[ -n "$build" ] || build="$here/../build"
forqd=$build/service/forqd
forq=$build/cli/forq
for b in "$forqd" "$forq"; do
	if [ ! -x "$b" ]; then
		echo "handlers.sh: no $b (build first: cmake -S . -B build && cmake --build build -j2)" >&2
		exit 2
	fi
done

py=${PYTHON:-}
if [ -z "$py" ]; then
	for c in /usr/bin/python3 python3; do
		if "$c" -c 'import celery, rq, redis' 2>/dev/null; then
			py=$c
			break
		fi
	done
fi
if [ -z "$py" ]; then
	py=$(command -v /usr/bin/python3 python3 | head -n1)
	echo "handlers.sh: no python3 with celery, rq and redis: their rows will be missing" \
		"(scripts/deps.sh bench installs them)" >&2
fi

export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ left in bench/ or clients/python
tmp=$(mktemp -d "${TMPDIR:-/tmp}/forq-handlers.XXXXXX") || exit 2
child=""
# Every process group the Python side started is listed in $tmp/pgids; what
# is still alive at exit (the Python side killed, say) is killed here.
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	local g
	if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
		kill -TERM "$child" 2>/dev/null
		wait "$child" 2>/dev/null
	fi
	if [ -f "$tmp/pgids" ]; then
		while read -r g; do
			kill -KILL -- "-$g" 2>/dev/null
		done <"$tmp/pgids"
	fi
	rm -f "/dev/shm/forq-hb-${tmp##*.}-"* 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'kill -TERM "$child" 2>/dev/null' INT TERM

timeout -k 20 900 "$py" "$here/handlers_bench.py" --forqd "$forqd" --forq "$forq" --tmp "$tmp" \
	"${args[@]}" &
child=$!
rc=0
wait "$child" || rc=$?
if kill -0 "$child" 2>/dev/null; then # interrupted: the Python side is cleaning up
	rc=0
	wait "$child" || rc=$?
fi
child=""
exit "$rc"
