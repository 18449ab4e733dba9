# lib.sh — shared helpers for the end-to-end tests (sourced, not run).
# Each test: its own temp dir and shm names, bounded waits, cleanup on every
# exit path, and "N passed, N failed" as its last line.

FORQD=${FORQD:-build/service/forqd}
FORQ=${FORQ:-build/cli/forq}
FORQ_SRC=${FORQ_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PASS=0
FAIL=0
TMP=$(mktemp -d /tmp/forq-e2e.XXXXXX)
PIDS=()
SHMS=()

ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
check() { # check "description" command...
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

# A test with more to undo (network namespaces, servers to stop gracefully)
# defines cleanup_extra; it runs first.
cleanup() {
	if declare -F cleanup_extra >/dev/null; then cleanup_extra; fi
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for s in "${SHMS[@]}"; do rm -f "/dev/shm${s}"; done
	rm -rf "$TMP"
}
trap cleanup EXIT

finish() {
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
	exit $?
}

# new_shm VAR: a unique queue name, removed at exit whatever happens.
new_shm() {
	local n="/forq-e2e-$$-${#SHMS[@]}"
	SHMS+=("$n")
	printf -v "$1" '%s' "$n"
}

# wait_for SECONDS command...: polls until the command succeeds.
wait_for() {
	local limit=$1
	shift
	local end=$((SECONDS + limit))
	while [ $SECONDS -lt $end ]; do
		"$@" && return 0
		sleep 0.05
	done
	"$@"
}

# wait_exit PID SECONDS: waits for a child to exit; sets EXIT_CODE (124 on timeout).
wait_exit() {
	local pid=$1 limit=$2 end=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.05; done
	if kill -0 "$pid" 2>/dev/null; then
		EXIT_CODE=124
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 1
	fi
	wait "$pid"
	EXIT_CODE=$?
	return 0
}

# stop PID SECONDS: SIGTERM, wait, then SIGKILL. Returns the exit status.
stop() {
	local pid=$1 n=$(($2 * 10))
	kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return; }
	while [ $n -gt 0 ] && kill -0 "$pid" 2>/dev/null; do
		sleep 0.1
		n=$((n - 1))
	done
	kill -KILL "$pid" 2>/dev/null && echo "pid $pid did not stop: killed"
	wait "$pid" 2>/dev/null
}

# need_binaries PATH...: fails and finishes the test when one is missing.
need_binaries() {
	local b
	for b in "$@"; do
		if [ ! -x "$b" ]; then
			echo "$b not found: set FORQD=... and FORQ=..." >&2
			bad "binaries exist"
			finish
		fi
	done
}

# tcp_client_build: sets CLIENT to $TCP_CLIENT, or to tests/e2e/tcp_client.c
# compiled into $TMP; fails and finishes the test if it does not compile.
tcp_client_build() {
	CLIENT=${TCP_CLIENT:-}
	[ -n "$CLIENT" ] && return
	CLIENT=$TMP/tcp_client
	if ! ${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$CLIENT" \
		"$FORQ_SRC/tests/e2e/tcp_client.c"; then
		bad "tcp_client compiles"
		finish
	fi
}

# arith_results_wrong FILE: up to 5 result lines of FILE whose task "A*B+C"
# is not done with its right result (empty when all are right).
arith_results_wrong() {
	awk '{
		if (!match($0, /"task":"[^"]*"/)) { print "no task: " $0; next }
		t = substr($0, RSTART + 8, RLENGTH - 9)
		if (!match($0, /"status":"done","result":"[^"]*"/)) { print "not done: " $0; next }
		v = substr($0, RSTART + 26, RLENGTH - 27)
		split(t, p, /[*+]/)
		if (v != sprintf("%d", p[1] * p[2] + p[3])) print "wrong: " $0
	}' "$1" | head -5
}

# log_port FILE EVENT: the port forqd logged for EVENT (http_listening, tcp_listening).
log_port() {
	sed -n "s/.*event=$2 .*port=\([0-9]*\).*/\1/p" "$1" | head -n 1
}

# CPU ticks (user+system) used so far by pid and its children that are alive.
proc_ticks() {
	local total=0 p
	for p in $1 $(pgrep -P "$1"); do
		[ -r "/proc/$p/stat" ] || continue
		local f
		f=$(sed 's/.*) //' "/proc/$p/stat")
		set -- $f
		total=$((total + ${12} + ${13}))
	done
	echo "$total"
}
