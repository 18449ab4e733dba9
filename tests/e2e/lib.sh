# lib.sh — the harness of the end-to-end tests (sourced, not run).
#
# A test script is a list of named parts, each a function of checks:
#
#   . "$(dirname "$0")/lib.sh"
#   drain() {
#   	start_forqd drain --workers 1 --tasks "$TMP/tasks.txt" --results "$TMP/r.jsonl" ||
#   		{ bad "forqd starts"; return; }
#   	check "a result is written" wait_for 10 test -s "$TMP/r.jsonl"
#   	stop_forqd
#   	check "forqd exits 0 on SIGTERM (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
#   }
#   part drain "SIGTERM drains the queue"
#   finish
#
# Each test has its own temp dir ($TMP) and shm names (new_shm), bounded
# waits, and cleanup on every exit path (processes in PIDS are killed, shm
# names removed; a test with more to undo defines cleanup_extra).
#
# Environment:
#   ONLY=PATTERN  run only the parts whose name matches PATTERN, a bash
#                 extended regular expression, not anchored: in
#                 test_remote_workers.sh ONLY=lease runs lease_expires,
#                 lease_dead and touch_lease, ONLY='^(garbage|conn_limits)$'
#                 those two. A part prints "== NAME: what it does" when it
#                 runs and, with ONLY set, "-- NAME: not run" when it does
#                 not (so ONLY='^$' lists a script's parts). What a script
#                 does outside its parts (its prerequisites: binaries, helper
#                 tools, a forqd every part uses) always runs. A script none
#                 of whose parts matches exits 77: ctest shows it as
#                 skipped. For example:
#                   ONLY=lease ctest -R test_remote_workers --output-on-failure
#                   ONLY='^sigterm' bash tests/e2e/test_forqd_basic.sh
#   KEEP_TMP=1    keep the test's temp dir ($TMP: logs, results) for a look
#                 after it ends
#   FORQD, FORQ   the binaries (ctest passes this build's; default: those
#                 of build/ in the source tree); FORQ_SRC and FORQ_BUILD the
#                 source and build trees.
#
# Output: a line a check, "ok   - NAME", "FAIL - NAME" followed by the
# output of its command, or "skip - NAME (why)" for a check that cannot run
# here (a missing tool, not root: skip_unless, skip); the last line is
# "N passed, N failed", or "N passed, N failed, N skipped" when checks were
# skipped. A script that cannot run at all calls skip_all.
# Exit status: 1 if a check failed; else 77 (tests/CMakeLists.txt's
# SKIP_RETURN_CODE) if any check was skipped (a skip is a skip, never shown
# as passed: CI installs every tool, so none should skip there), the script
# could not run at all (skip_all, nothing passed) or no part matched ONLY;
# else 0.

FORQ_SRC=${FORQ_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
FORQD=${FORQD:-$FORQ_SRC/build/service/forqd}
FORQ=${FORQ:-$FORQ_SRC/build/cli/forq}
PASS=0
FAIL=0
SKIP=0
SKIP_WHY=   # set by skip_unless: checks are reported skipped, not run
PARTS_RUN=0
TMP=$(mktemp -d /tmp/forq-e2e.XXXXXX)
PIDS=()
SHMS=()

if [ -n "${ONLY:-}" ]; then
	[[ x =~ $ONLY ]]
	if [ $? -eq 2 ]; then
		echo "ONLY=$ONLY is not an extended regular expression" >&2
		exit 2
	fi
fi

ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
skip() { SKIP=$((SKIP + 1)); echo "skip - $*"; } # skip "NAME (why it cannot run here)"

# check NAME COMMAND...: passes when COMMAND exits 0; its output is shown
# only when it fails. Returns 1 when it failed. COMMAND is one command: in
# `check NAME [ A ] && [ B ]` the `&& [ B ]` runs after check, outside it,
# and cannot fail the check; for several conditions write
# `check NAME eval '[ "$a" = 1 ] && [ "$b" = 2 ]'` (eval runs in this shell,
# so the caller's local variables and functions are seen).
check() {
	local what=$1
	shift
	if [ -n "$SKIP_WHY" ]; then
		skip "$what ($SKIP_WHY)"
		return 0
	fi
	if "$@" >"$TMP/check.out" 2>&1; then
		ok "$what"
	else
		bad "$what"
		head -n 40 "$TMP/check.out" | sed 's/^/    /'
		return 1
	fi
}

# skip_unless WHY COMMAND...: when COMMAND fails (a tool is missing, ...),
# the checks that follow, up to skip_end or the end of the part, are not run
# but reported as "skip - NAME (WHY)". Returns COMMAND's status, so that
# what only feeds those checks can be left out too:
#   if skip_unless "no curl" command -v curl; then m=$(curl -s "$url/metrics"); fi
#   check "/metrics has forq_up" grep -q '^forq_up 1$' <<<"${m:-}"
#   skip_end
skip_unless() {
	local why=$1
	shift
	if "$@" >/dev/null 2>&1; then
		SKIP_WHY=
		return 0
	fi
	SKIP_WHY=$why
	return 1
}
skip_end() { SKIP_WHY=; }

# part NAME WHAT [COMMAND [ARGS...]]: runs COMMAND (default: the function
# NAME), a named part of the test, unless ONLY is set and does not match NAME.
part() {
	local name=$1 what=$2
	shift 2
	[ $# -gt 0 ] || set -- "$name"
	if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then
		echo "-- $name: not run (ONLY=$ONLY)"
		return 0
	fi
	PARTS_RUN=$((PARTS_RUN + 1))
	echo "== $name: $what"
	SKIP_WHY=
	"$@"
	SKIP_WHY=
	return 0
}

# A test with more to undo (network namespaces, servers to stop gracefully)
# defines cleanup_extra; it runs first.
cleanup() {
	if declare -F cleanup_extra >/dev/null; then cleanup_extra; fi
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for s in "${SHMS[@]}"; do rm -f "/dev/shm${s}"; done
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so that a ctest timeout cleans up too

# finish: prints the summary line and exits (see the top for the status).
finish() {
	SKIP_WHY=
	if [ -n "${ONLY:-}" ] && [ "$PARTS_RUN" -eq 0 ]; then
		echo "no part of $(basename "$0") matches ONLY=$ONLY"
	fi
	local summary="$PASS passed, $FAIL failed"
	[ "$SKIP" -gt 0 ] && summary="$summary, $SKIP skipped"
	echo "$summary"
	[ "$FAIL" -eq 0 ] || exit 1
	[ "$PASS" -gt 0 ] && [ "$SKIP" -eq 0 ] || exit 77
	[ -z "${ONLY:-}" ] || [ "$PARTS_RUN" -gt 0 ] || exit 77
	exit 0
}

# skip_all WHY: the whole script cannot run here (not root, no network
# namespaces): says why and exits 77.
skip_all() {
	skip "$(basename "$0") ($*)"
	finish
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

# wait_exit PID SECONDS: waits for a child to exit; sets EXIT_CODE (124 on
# timeout, after a SIGKILL).
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

# start_forqd NAME [FLAGS...]: starts forqd (the binary $FORQD) in the
# background with FLAGS and waits until it logs event=started. Unless FLAGS
# say otherwise it gets a new shm name (new_shm) and listens on 127.0.0.1
# with ports the kernel chooses (--http 127.0.0.1:0 --tcp 127.0.0.1:0).
# Its stdout and stderr are appended to $TMP/NAME.log (NAME may name a
# subdirectory; a restarted forqd can share its predecessor's log), its
# stdin is the caller's. Sets:
#   FORQD_PID   its pid (killed at exit if still running)
#   FORQD_LOG   its log file
#   FORQD_SHM   its queue's shm name
#   HTTP_PORT   its HTTP port, empty with --http off
#   TCP_PORT    its TCP port, empty with --tcp off
# It must log at level info (the default) or debug.
# Returns 0 once it is up; 1 if it exited first (EXIT_CODE is then its exit
# status) or is not up within $FORQD_START_TIMEOUT seconds (default 10), and
# then shows the end of its log on stderr. Variables set before the call are
# forqd's environment: FORQ_ADMIN_TOKEN=... start_forqd NAME ...; a wrapper
# (ip netns exec ...) goes in FORQD.
start_forqd() {
	local name=$1
	shift
	local a prev= shm= http= tcp= pre=()
	for a in "$@"; do
		case $prev in
		--shm-name) shm=$a ;;
		--http) http=$a ;;
		--tcp) tcp=$a ;;
		esac
		case $a in
		--shm-name=*) shm=${a#*=} ;;
		--http=*) http=${a#*=} ;;
		--tcp=*) tcp=${a#*=} ;;
		esac
		prev=$a
	done
	if [ -z "$shm" ]; then
		new_shm shm
		pre+=(--shm-name "$shm")
	fi
	[ -n "$http" ] || pre+=(--http 127.0.0.1:0)
	[ -n "$tcp" ] || pre+=(--tcp 127.0.0.1:0)
	FORQD_LOG=$TMP/$name.log
	FORQD_SHM=$shm
	HTTP_PORT=
	TCP_PORT=
	mkdir -p "$(dirname "$FORQD_LOG")"
	: >>"$FORQD_LOG"
	local from=$(($(stat -c %s "$FORQD_LOG") + 1))
	"$FORQD" "${pre[@]}" "$@" <&0 >>"$FORQD_LOG" 2>&1 &
	FORQD_PID=$!
	PIDS+=("$FORQD_PID")
	local end=$((SECONDS + ${FORQD_START_TIMEOUT:-10})) why=
	until tail -c +"$from" "$FORQD_LOG" | grep -q 'event=started'; do
		if ! kill -0 "$FORQD_PID" 2>/dev/null; then
			wait "$FORQD_PID"
			EXIT_CODE=$?
			why="it exited with status $EXIT_CODE"
			break
		fi
		if [ $SECONDS -ge $end ]; then
			why="not up after ${FORQD_START_TIMEOUT:-10} s"
			break
		fi
		sleep 0.02
	done
	if [ -n "$why" ]; then
		{
			echo "start_forqd $name: forqd did not start ($why); the end of $FORQD_LOG:"
			tail -c +"$from" "$FORQD_LOG" | tail -n 20 | sed 's/^/    /'
		} >&2
		return 1
	fi
	HTTP_PORT=$(tail -c +"$from" "$FORQD_LOG" | log_port - http_listening)
	TCP_PORT=$(tail -c +"$from" "$FORQD_LOG" | log_port - tcp_listening)
	return 0
}

# stop PID [SECONDS]: SIGTERM to a child, then up to SECONDS (default 30)
# for it to exit, then SIGKILL. Sets EXIT_CODE (124 if it had to be killed)
# and returns it.
stop() {
	local pid=$1 limit=${2:-30}
	kill -TERM "$pid" 2>/dev/null
	if ! wait_exit "$pid" "$limit"; then
		echo "pid $pid did not stop within $limit s: killed"
	fi
	return "$EXIT_CODE"
}

# stop_forqd [PID [SECONDS]]: stops a forqd (default: the last one started)
# as a service manager would, with stop: EXIT_CODE is its exit status.
stop_forqd() {
	stop "${1:-$FORQD_PID}" "${2:-30}"
}

# need_binaries PATH...: fails and finishes the test when one is missing.
# ended PID: the process is gone or a zombie (it runs nothing more).
ended() {
	local s
	[ -r "/proc/$1/stat" ] || return 0
	s=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 0
	[ -z "$s" ] || [ "$s" = Z ] || [ "$s" = X ]
}

# all_ended FILE: every pid listed in FILE has ended.
all_ended() {
	local p
	for p in $(cat "$1" 2>/dev/null); do
		ended "$p" || return 1
	done
	return 0
}

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

# log_port FILE EVENT: the port forqd logged for EVENT (http_listening,
# tcp_listening); FILE - reads stdin.
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
