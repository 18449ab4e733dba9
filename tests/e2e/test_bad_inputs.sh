#!/usr/bin/env bash
# test_bad_inputs.sh — a table of bad inputs: each gets its documented error
# (text and exit code or HTTP status or TCP error word), and a forqd that is
# running keeps working: after every case a task pushed to it completes.
#
#   tasks file: bad priority, a line over the limit, a bad expression
#   HTTP POST /tasks: malformed JSON, unknown field, unknown priority, an
#     oversize payload, an empty body
#   TCP: an unknown command, a bad PUT length, an oversize PUT, a RESULT for
#     a task not leased
#   forqd flags: unknown handler, bad numbers, unknown flag, bad --http
#   shared memory: a foreign object (junk, small and large), a stale one (our
#     magic, another layout version), a corrupt one (a kept queue with a
#     header offset patched; forq stats refuses it too), a squatted one
#     (mode 0644; owned by another uid, as root), a /dev/shm too small for
#     the ring (as root, in a private mount namespace), a second forqd on a
#     running queue, and --no-recover on an existing queue. forqd never
#     removes an object it refused.
#   a handler out of memory: its task fails, the others are done
# Parts (for ONLY=, see lib.sh): tasks_file, http_bad_requests,
# tcp_bad_commands, bad_flags, foreign_objects, corrupt_object, small_devshm,
# handler_oom, second_forqd. The cases that need root (or python3) are
# skipped, one by one, without it.
set -u
. "$(dirname "$0")/lib.sh"

LIBFORQ=${LIBFORQ:-${FORQ_BUILD:-build}/core/libforq.a}
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror ${FORQ_CFLAGS:-} -I"$FORQ_SRC/core" -I"$FORQ_SRC/core/include" -I"$FORQ_SRC/base" \
	"$FORQ_SRC/tests/e2e/chaos_tool.c" "$LIBFORQ" -lpthread -o "$TMP/chaos_tool" 2>"$TMP/cc.log"
check "chaos_tool builds against $LIBFORQ" [ -x "$TMP/chaos_tool" ] || finish
CT=$TMP/chaos_tool

# --- the forqd that must keep working ---
new_shm QA
start_forqd a --shm-name "$QA" --workers 2 --handler arith --max-payload 64 --results "$TMP/a.jsonl" \
	--http 127.0.0.1:0 --tcp 127.0.0.1:0
A=$FORQD_PID
A_HTTP=$HTTP_PORT
A_TCP=$TCP_PORT
check "forqd A is up (http port ${A_HTTP:-none}, tcp port ${A_TCP:-none})" kill -0 "$A"

# still_works CASE: a task pushed to A now completes with the right result.
K=1000
still_works() {
	K=$((K + 1))
	"$CT" push "$QA" 1 "$TMP/a.acks" "$K*2+%llu" 1 >/dev/null 2>&1 &&
		wait_for 10 grep -q "\"task\":\"$K\\*2+1\",\"status\":\"done\",\"result\":\"$((K * 2 + 1))\"" "$TMP/a.jsonl"
	check "  ... and forqd A still works after: $1" [ $? -eq 0 ]
	check "  ... and forqd A is still running" kill -0 "$A"
}

# http METHOD PATH BODY: prints "STATUS BODY".
http() {
	python3 - "$A_HTTP" "$@" <<'EOF'
import sys, urllib.request, urllib.error
port, method, path, body = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body.encode(), method=method,
                             headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
except Exception as e:
    print(0, e)
EOF
}

# tcp LINES...: sends the lines (CRLF) to A's TCP port, prints the replies.
tcp() {
	python3 - "$A_TCP" "$@" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"".join(a.encode() + b"\r\n" for a in sys.argv[2:]) + b"QUIT\r\n")
out = b""
while not out.endswith(b"BYE\r\n"):
    d = s.recv(65536)
    if not d:
        break
    out += d
print(out.decode().replace("\r\n", "|"))
EOF
}

# refused CASE CODE TEXT FORQD-ARGS...: forqd exits CODE and says TEXT (two
# checks, skipped after skip_unless).
refused() {
	local what=$1 want=$2 text=$3
	shift 3
	if [ -n "$SKIP_WHY" ]; then
		check "$what: exit $want" true
		check "$what: says \"$text\"" true
		return
	fi
	timeout 20 "$FORQD" --http off --tcp off --workers 1 "$@" >"$TMP/out.log" 2>&1
	local code=$?
	check "$what: exit $want (got $code)" [ "$code" -eq "$want" ]
	check "$what: says \"$text\"" grep -qF -- "$text" "$TMP/out.log"
	[ "$code" -eq "$want" ] && grep -qF -- "$text" "$TMP/out.log" ||
		echo "      forqd said: $(tail -n 2 "$TMP/out.log")"
}

# --- tasks file ---
tasks_file() {
	{
		echo "1+1"
		echo "priority=urgent 2+2"
		head -c 300 /dev/zero | tr '\0' 7
		echo
		echo "(1+"
		echo "3+3"
		head -c 100 /dev/zero | tr '\0' 7
		echo
	} >"$TMP/bad_tasks.txt"
	new_shm QB
	timeout 30 "$FORQD" --shm-name "$QB" --tasks "$TMP/bad_tasks.txt" --max-payload 64 --workers 1 \
		--results "$TMP/b.jsonl" --exit-when-done --http off --tcp off 2>"$TMP/b.log"
	code=$?
	check "tasks file with bad lines: forqd runs the rest and exits 0 (got $code)" [ "$code" -eq 0 ]
	check "tasks file: a bad priority is named by FILE:LINE" \
		grep -q 'bad_tasks.txt:2: unknown priority \\"urgent\\" (use high, normal or low)' "$TMP/b.log"
	check "tasks file: an oversize line is named by FILE:LINE" \
		grep -q 'bad_tasks.txt:3: line is longer than [0-9]* bytes' "$TMP/b.log"
	check "tasks file: a payload over --max-payload is named by FILE:LINE" \
		grep -q 'bad_tasks.txt:6: payload is 100 bytes, over the limit of 64' "$TMP/b.log"
	check "tasks file: 3 bad lines counted, 3 tasks pushed" grep -q 'pushed=3 bad_lines=3' "$TMP/b.log"
	check "tasks file: a bad expression is a failed result, not a crash" \
		grep -q '"task":"(1+","status":"failed","error":"unexpected end' "$TMP/b.jsonl"
	check "tasks file: the good lines are done" [ "$(grep -c '"status":"done"' "$TMP/b.jsonl")" -eq 2 ]
	still_works "a tasks file with bad lines"
}
part tasks_file "a tasks file with bad lines"

# --- HTTP ---
http_bad_requests() {
	if [ -n "$A_HTTP" ]; then
		big=$(head -c 100 /dev/zero | tr '\0' 7)
		while IFS='|' read -r what body want text; do
			r=$(http POST /tasks "$body")
			check "HTTP $what: $want" [ "${r%% *}" = "$want" ]
			check "HTTP $what: says \"$text\"" grep -qF -- "$text" <<<"$r"
		done <<EOF
malformed JSON|{"payload": |400|malformed JSON at offset
text after the JSON|{"payload":"1+1"} x|400|text after the value
unknown field|{"payload":"1+1","colour":"red"}|400|unknown field \"colour\" (use payload, priority, delay, at, key or key_window)
unknown priority|{"payload":"1+1","priority":"urgent"}|400|unknown priority \"urgent\" (use high, normal or low)
null payload|{"payload":null}|400|payload is null
empty body||400|empty body
oversize payload|{"payload":"$big"}|413|payload is 100 bytes, over the limit of 64
EOF
		r=$(http GET /tasks/abc "")
		check "HTTP GET /tasks/abc: 400 bad task id" grep -q '^400 .*bad task id' <<<"$r"
		r=$(http GET /nope "")
		check "HTTP GET /nope: 404" grep -q '^404 ' <<<"$r"
		still_works "bad HTTP requests"
	else
		bad "forqd A logged no http_listening port"
	fi
}
part http_bad_requests "bad HTTP requests"

# --- TCP ---
tcp_bad_commands() {
	if [ -n "$A_TCP" ]; then
		big=$(head -c 100 /dev/zero | tr '\0' 7)
		r=$(tcp "FROB" "PUT normal xyz" "PUT 100" "$big" "RESULT 123456 7" "GET_TASKS 0" "PING")
		check "TCP unknown command: ERR unknown-command" grep -q '^ERR unknown-command|' <<<"$r"
		check "TCP bad PUT length: ERR bad-length" grep -q '|ERR bad-length|' <<<"$r"
		check "TCP oversize PUT: ERR payload-too-large" grep -q '|ERR payload-too-large|' <<<"$r"
		check "TCP RESULT for a task not leased: ERR not-leased" grep -q '|ERR not-leased|' <<<"$r"
		check "TCP GET_TASKS 0: ERR bad-count" grep -q '|ERR bad-count|' <<<"$r"
		check "TCP: the connection still answers after them (PONG)" grep -q '|PONG|BYE|$' <<<"$r"
		[ -n "$r" ] && echo "      replies: $r"
		still_works "bad TCP commands"
	else
		bad "forqd A logged no tcp_listening port"
	fi
}
part tcp_bad_commands "bad TCP commands"

# --- forqd flags ---
bad_flags() {
	new_shm QF
	refused "unknown handler" 2 'unknown handler "nope" (use noop, arith, json, exec:CMD or proc:CMD)' \
		--shm-name "$QF" --handler nope
	refused "bad number" 2 '--workers: expected a whole number from 0 to 256, got "x"' --workers x
	refused "capacity 0" 2 '--capacity: expected a whole number' --shm-name "$QF" --capacity 0
	refused "unknown flag" 2 'unknown flag "--bogus"' --bogus
	refused "bad --http" 2 '--http: expected ADDR:PORT or off' --shm-name "$QF" --http nonsense:port
	check "refused flags leave no queue" [ ! -e "/dev/shm$QF" ]
	still_works "bad flags"
}
part bad_flags "bad forqd flags"

# --- shared memory objects ---
# junk NAME SIZE MODE: a file in /dev/shm that is not a queue.
junk() {
	head -c "$2" /dev/urandom >"/dev/shm$1"
	chmod "$3" "/dev/shm$1"
}
foreign_objects() {
	new_shm QS
	junk "$QS" 100 600
	refused "a small foreign object" 3 "$QS is not a forq queue (100 bytes)" --shm-name "$QS"
	check "  ... is left in place" [ -s "/dev/shm$QS" ]
	junk "$QS" 1048576 600
	refused "a large foreign object" 3 "$QS is not a forq queue (bad magic)" --shm-name "$QS"
	check "  ... is left in place" [ -s "/dev/shm$QS" ]
	# Stale: our magic ("FORQ1", little-endian u64) and layout version 2.
	python3 - "/dev/shm$QS" <<'EOF'
import struct, sys
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<QI", 0x3151524f46, 2) + bytes(1048576 - 12))
EOF
	chmod 600 "/dev/shm$QS"
	refused "a stale object (another layout version)" 3 "$QS has layout version 2, this build reads version" \
		--shm-name "$QS"
	check "  ... is left in place" [ -s "/dev/shm$QS" ]
	junk "$QS" 1048576 644
	refused "a squatted object (mode 0644)" 3 "$QS has mode 644: others could tamper with it" --shm-name "$QS"
	if skip_unless "needs root" test "$(id -u)" = 0 && skip_unless "no user nobody" id nobody; then
		junk "$QS" 1048576 600
		chown nobody "/dev/shm$QS"
	fi
	refused "a squatted object (owned by nobody)" 3 "$QS belongs to uid $(id -u nobody 2>/dev/null), not to you" \
		--shm-name "$QS"
	skip_end
	check "a client (libforq) refuses it too" bash -c "! '$CT' check '$QS' 2>&1 | grep -q pending"
	rm -f "/dev/shm$QS"
	still_works "foreign, stale and squatted objects"
}
part foreign_objects "foreign, stale and squatted shared-memory objects"

# Corrupt: a real queue (kept by forqd --keep-shm) whose magic and layout
# version are right but whose header says the in-flight entries start 64
# bytes later than the layout puts them. The offset comes from layout.h.
corrupt_object() {
	cat >"$TMP/hdr_off.c" <<'EOF'
#include <stddef.h>
#include <stdio.h>
#include "layout.h"
int main(void)
{
	printf("%zu %u\n", offsetof(struct forq_hdr, inflight_off), FORQ_LAYOUT_VERSION);
	return 0;
}
EOF
	cc -std=c11 -D_GNU_SOURCE -I"$FORQ_SRC/core" -I"$FORQ_SRC/core/include" "$TMP/hdr_off.c" -o "$TMP/hdr_off" 2>"$TMP/cc_off.log"
	read -r OFF VER < <("$TMP/hdr_off" 2>/dev/null)
	new_shm QK
	printf '1+1\n' >"$TMP/keep_tasks.txt"
	timeout 30 "$FORQD" --shm-name "$QK" --keep-shm --capacity 64 --max-payload 64 --workers 1 \
		--tasks "$TMP/keep_tasks.txt" --exit-when-done --results off --http off --tcp off \
		>"$TMP/keep.log" 2>&1
	code=$?
	check "a queue kept with --keep-shm: forqd exits 0 (got $code) and leaves it" \
		[ "$code" -eq 0 -a -s "/dev/shm$QK" ]
	timeout 20 "$FORQ" stats --shm-name "$QK" >"$TMP/o" 2>"$TMP/e"
	code=$?
	check "  ... forq stats reads it before the damage (exit $code)" [ "$code" -eq 0 ]
	check "offsetof(struct forq_hdr, inflight_off) is known (${OFF:-none}, layout ${VER:-none})" \
		[ -n "$OFF" ]
	python3 - "/dev/shm$QK" "${OFF:-0}" "${VER:-0}" >"$TMP/patch.log" 2>&1 <<'EOF'
import struct, sys
off, ver = int(sys.argv[2]), int(sys.argv[3])
with open(sys.argv[1], "r+b") as f:
    assert struct.unpack("<QI", f.read(12)) == (0x3151524f46, ver), "not a queue of this layout"
    f.seek(off)
    v, = struct.unpack("<Q", f.read(8))
    f.seek(off)
    f.write(struct.pack("<Q", v + 64))
print(f"inflight_off {v} -> {v + 64}")
EOF
	check "the kept queue's header is patched ($(cat "$TMP/patch.log"))" grep -q '^inflight_off' "$TMP/patch.log"
	sum0=$(sha256sum <"/dev/shm$QK")
	refused "a corrupt object (header offset does not match)" 3 \
		"$QK is corrupt: its header does not match its size" --shm-name "$QK"
	check "  ... is left in place, untouched" [ "$(sha256sum <"/dev/shm$QK" 2>/dev/null)" = "$sum0" ]
	timeout 20 "$FORQ" stats --shm-name "$QK" >"$TMP/o" 2>"$TMP/e"
	code=$?
	check "forq stats refuses the corrupt object: exit 3 (got $code)" [ "$code" -eq 3 ]
	check "  ... and says it is corrupt" grep -qF "$QK is corrupt: its header does not match its size" "$TMP/e"
	check "  ... and leaves it untouched" [ "$(sha256sum <"/dev/shm$QK" 2>/dev/null)" = "$sum0" ]
	rm -f "/dev/shm$QK"
	still_works "a corrupt object"
}
part corrupt_object "a corrupt queue object is refused and left untouched"

# /dev/shm too small: a private mount namespace with an 8 MiB /dev/shm.
small_devshm() {
	code=
	if skip_unless "needs root" test "$(id -u)" = 0 && skip_unless "no unshare -m" unshare -m true; then
		timeout 20 unshare -m sh -c 'mount -t tmpfs -o size=8m tmpfs /dev/shm && exec "$0" "$@"' \
			"$FORQD" --shm-name /forq-e2e-small --http off --tcp off --workers 1 >"$TMP/out.log" 2>&1
		code=$?
		[ "$code" -eq 3 ] || echo "      forqd said: $(tail -n 2 "$TMP/out.log")"
	fi
	check "a /dev/shm too small for the ring: exit 3 (got $code)" [ "$code" -eq 3 ]
	check "a /dev/shm too small: says \"/dev/shm cannot hold the queue: it needs N MiB\"" \
		grep -q '/dev/shm cannot hold the queue: it needs [0-9]* MiB' "$TMP/out.log"
	skip_end
	still_works "a /dev/shm too small"
}
part small_devshm "a /dev/shm too small for the ring"

# A handler out of memory fails its task, not the service: an exec: handler
# limited to 300 MB of address space is asked for 400 MB; the tasks before
# and after it are done by the same forqd.
handler_oom() {
	code=
	if skip_unless "no python3" command -v python3; then
		new_shm QM
		printf '100\n400000000\n200\n' >"$TMP/oom.txt"
		timeout 120 "$FORQD" --shm-name "$QM" --http off --tcp off --workers 1 --max-attempts 1 \
			--handler 'exec:ulimit -v 300000; exec python3 -c "import sys; print(len(bytearray(int(sys.stdin.read()))))"' \
			--tasks "$TMP/oom.txt" --exit-when-done --results "$TMP/oom.jsonl" 2>"$TMP/oom.log"
		code=$?
	fi
	check "a handler out of memory: forqd finishes and exits 0 (got $code)" [ "$code" -eq 0 ]
	check "  ... that task fails with the handler's MemoryError" \
		grep -q '"task":"400000000","status":"dead","error":"exit status 1: MemoryError"' "$TMP/oom.jsonl"
	check "  ... the tasks around it are done" bash -c \
		"grep -q '\"task\":\"100\",\"status\":\"done\",\"result\":\"100\"' '$TMP/oom.jsonl' &&
		 grep -q '\"task\":\"200\",\"status\":\"done\",\"result\":\"200\"' '$TMP/oom.jsonl'"
	skip_end
}
part handler_oom "a handler out of memory fails its task, not the service"

# A second forqd on A's queue, then --no-recover on it.
second_forqd() {
	refused "a second forqd on the same name" 3 "owned by another forqd (pid $A)" --shm-name "$QA"
	refused "--no-recover on an existing queue" 3 "shared memory $QA already exists" --shm-name "$QA" \
		--no-recover
	still_works "a second forqd and --no-recover"
}
part second_forqd "a second forqd on A's queue, then --no-recover on it"

stop_forqd "$A" 30
check "forqd A exits 0 on SIGTERM (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
check "no shared memory left" [ ! -e "/dev/shm$QA" ]
finish
