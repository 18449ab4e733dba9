# lib.sh — shared helpers for the end-to-end tests (sourced, not run).
# Each test: its own temp dir and shm names, bounded waits, cleanup on every
# exit path, and "N passed, N failed" as its last line.

FORQD=${FORQD:-build/service/forqd}
FORQ=${FORQ:-build/service/forq}
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

cleanup() {
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
