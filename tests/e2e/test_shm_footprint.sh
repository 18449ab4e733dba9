#!/usr/bin/env bash
# test_shm_footprint.sh — memory follows what is queued (issue 13, item 8):
#   1. forqd --max-payload 1048576 starts with tens of MiB of /dev/shm, not
#      the 25 GiB that capacity × max payload would take; forq_shm_bytes
#      grows with large tasks pushed and falls back once a worker has done
#      them, every result whole;
#   2. with a /dev/shm too small for what producers send (a private mount
#      namespace, root only), pushes are refused with 503 (the queue is
#      full) instead of anyone dying of SIGBUS; what was accepted is done
#      whole, and pushes are taken again once there is room.
set -u
. "$(dirname "$0")/lib.sh"
need_binaries "$FORQD" "$FORQ"
command -v curl >/dev/null || skip_all "no curl"

MIB=1048576

shm_bytes() { # PORT
	curl -fsS "127.0.0.1:$1/metrics" | sed -n 's/^forq_shm_bytes{queue="default"} \([0-9]*\)$/\1/p'
}

# N records of LEN bytes for `forq push --format nul`, each a run of one
# letter, A to Z in turn.
big_payloads() { # N LEN FILE
	python3 -c '
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
with open(sys.argv[3], "wb") as f:
    for i in range(n):
        f.write(bytes([65 + i % 26]) * size + b"\0")' "$@"
}

grows_and_shrinks() {
	start_forqd grow --max-payload 1048576 --workers 0 --results "$TMP/grow.jsonl" ||
		{ bad "forqd --max-payload 1048576 starts"; return; }
	local base queued after size
	base=$(shm_bytes "$HTTP_PORT")
	size=$(sed -n 's/.*event=queue_created .*size_mib=\([0-9]*\).*/\1/p' "$FORQD_LOG")
	check "an empty queue for 1 MiB payloads holds under 64 MiB (got $((base / MIB)) MiB)" \
		eval '[ "${base:-0}" -gt 0 ] && [ "$base" -lt $((64 * MIB)) ]'
	check "  ... of an address space of ${size:-?} MiB" [ "${size:-0}" -gt 1024 ]
	big_payloads 24 524288 "$TMP/big.nul"
	check "24 tasks of 512 KiB are pushed" \
		sh -c "'$FORQ' push --shm-name '$FORQD_SHM' --file '$TMP/big.nul' --format nul >/dev/null"
	queued=$(shm_bytes "$HTTP_PORT")
	check "  ... and the queue holds 12 MiB more (got $(((queued - base) / MIB)) MiB more)" \
		[ "$queued" -ge $((base + 12 * MIB)) ]
	"$FORQ" worker --connect "127.0.0.1:$TCP_PORT" --handler 'exec:wc -c' --max-tasks 24 \
		--quiet >"$TMP/worker.log" 2>&1
	check "a remote worker does all 24: each result is 524288" \
		test "$(grep -c '"status":"done","result":"524288' "$TMP/grow.jsonl")" -eq 24
	check "  ... and the memory is given back within 5 s" \
		wait_for 5 sh -c "[ \$(curl -fsS 127.0.0.1:$HTTP_PORT/metrics |
			sed -n 's/^forq_shm_bytes{queue=\"default\"} //p') -le $((base + 3 * MIB)) ]"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}
part grows_and_shrinks "a queue for 1 MiB payloads holds what is queued"

# forqd in a private mount namespace whose /dev/shm holds 48 MiB: the empty
# queue takes about 37 of them; producers send 400 KiB tasks over HTTP.
full_devshm() {
	if ! skip_unless "needs root" test "$(id -u)" = 0 ||
		! skip_unless "no unshare -m" unshare -m true; then
		check "a full /dev/shm refuses pushes" false
		skip_end
		return
	fi
	unshare -m sh -c 'mount -t tmpfs -o size=48m tmpfs /dev/shm && exec "$0" "$@"' \
		"$FORQD" --shm-name /forq-e2e-full --max-payload 1048576 --workers 0 \
		--http 127.0.0.1:0 --tcp 127.0.0.1:0 --results "$TMP/full.jsonl" \
		>"$TMP/full.log" 2>&1 &
	local pid=$! http tcp code accepted=0 refused=0 i
	PIDS+=("$pid")
	wait_for 10 grep -q "event=started" "$TMP/full.log"
	http=$(log_port "$TMP/full.log" http_listening)
	tcp=$(log_port "$TMP/full.log" tcp_listening)
	python3 -c 'import json; print(json.dumps({"payload": "x" * 409600}))' >"$TMP/task.json"
	for i in $(seq 60); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$TMP/task.json" \
			"127.0.0.1:$http/tasks")
		case $code in
		202) accepted=$((accepted + 1)) ;;
		503) refused=$((refused + 1)) ;;
		*) echo "      unexpected answer $code"; break ;;
		esac
	done
	check "pushes beyond what /dev/shm holds get 503 ($accepted accepted, $refused refused)" \
		eval '[ "$accepted" -gt 0 ] && [ "$refused" -gt 0 ] && [ $((accepted + refused)) -eq 60 ]'
	check "  ... and forqd lives on: /healthz answers 200" \
		curl -fsS -o /dev/null "127.0.0.1:$http/healthz"
	"$FORQ" worker --connect "127.0.0.1:$tcp" --handler 'exec:wc -c' --max-tasks "$accepted" \
		--quiet >"$TMP/fworker.log" 2>&1
	check "every accepted task is done whole (409600 bytes)" \
		test "$(grep -c '"status":"done","result":"409600' "$TMP/full.jsonl")" -eq "$accepted"
	code=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$TMP/task.json" \
		"127.0.0.1:$http/tasks")
	check "once done, a push is taken again (got $code)" [ "$code" = 202 ]
	"$FORQ" worker --connect "127.0.0.1:$tcp" --handler 'exec:wc -c' --max-tasks 1 \
		--quiet >>"$TMP/fworker.log" 2>&1
	kill -TERM "$pid"
	wait_exit "$pid" 20
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	check "no SIGBUS anywhere" sh -c "! grep -qi 'bus error\|SIGBUS' '$TMP/full.log'"
}
part full_devshm "a full /dev/shm pushes back, never SIGBUS"

finish
