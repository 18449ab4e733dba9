#!/usr/bin/env bash
# test_results_gone.sh — results that cannot be written (issue 13, item 3),
# forqd's side:
#   1. `forqd --results - --exit-when-done | head -1`: the pipe's reader is
#      gone for good; forqd stops at once and exits with the results exit
#      code (4), saying why in the log;
#   2. a full disk (a tiny tmpfs, or a file size limit where mounting is not
#      allowed): /readyz answers 503 and forq_results_write_blocked is above
#      0 while consumers hold results they cannot write, and forqd finishes
#      once there is room.
set -u
. "$(dirname "$0")/lib.sh"
need_binaries "$FORQD"

closed_pipe() {
awk 'BEGIN { for (i = 1; i <= 200000; i++) print i "+1" }' >"$TMP/tasks.txt"
new_shm Q
t0=$(date +%s%N)
# Not start_forqd: forqd's stdout is the pipe under test, and it runs in front.
timeout 60 "$FORQD" --shm-name "$Q" --workers 2 --tasks "$TMP/tasks.txt" --results - \
	--exit-when-done --http off --tcp off 2>"$TMP/pipe.log" | head -n 1 >"$TMP/first.jsonl"
code=${PIPESTATUS[0]}
ms=$((($(date +%s%N) - t0) / 1000000))
check "closed pipe: forqd exits with the results exit code 4 (got $code, after $ms ms)" [ "$code" -eq 4 ]
check "closed pipe: the reader got its whole first line" grep -q '^{"id":[0-9]*,.*}$' "$TMP/first.jsonl"
check "closed pipe: the log says the output is gone, with the errno" \
	grep -q 'event=results_gone .*errno=32 error="Broken pipe"' "$TMP/pipe.log"
check "closed pipe: no consumer is restarted" \
	sh -c "! grep -Eq 'event=(worker_died|worker_crash_loop)' '$TMP/pipe.log'"
check "closed pipe: no shared memory left" [ ! -e "/dev/shm$Q" ]
}
part closed_pipe "forqd --results - | head -1: forqd stops with exit 4"

full_disk() {
D=$TMP/full
mkdir -p "$D/fs"
awk 'BEGIN { for (i = 1; i <= 2000; i++) print i "+1" }' >"$D/tasks.txt"
new_shm Q
if mount -t tmpfs -o size=64k forq-e2e "$D/fs" 2>/dev/null; then
	cleanup_extra() { umount "$TMP/full/fs" 2>/dev/null; }
	start_forqd full/forqd --shm-name "$Q" --workers 2 --tasks "$D/tasks.txt" \
		--results "$D/fs/r.jsonl" --exit-when-done --tcp off
	pid=$FORQD_PID
	room() { mount -o remount,size=2m "$TMP/full/fs"; }
elif command -v prlimit >/dev/null; then
	# The limit must not stop forqd sizing its queue: the tasks come through
	# a FIFO once forqd and its consumers run under it. Not start_forqd: its
	# stdin, the FIFO, opens only once the writer below does.
	mkfifo "$D/in"
	"$FORQD" --shm-name "$Q" --workers 2 --tasks - --results "$D/fs/r.jsonl" \
		--exit-when-done --http 127.0.0.1:0 --tcp off <"$D/in" 2>"$D/forqd.log" &
	pid=$!
	exec 7>"$D/in"
	wait_for 20 grep -q "event=started" "$D/forqd.log"
	sleep 0.5 # the consumers attach
	for p in $pid $(pgrep -P "$pid"); do prlimit --pid "$p" --fsize=16384:; done
	cat "$D/tasks.txt" >&7
	exec 7>&-
	room() {
		local p
		for p in $pid $(pgrep -P "$pid"); do prlimit --pid "$p" --fsize=unlimited:unlimited; done
	}
else
	pid=
	bad "full disk: needs mount (root) or prlimit"
fi
if [ -n "$pid" ]; then
	PIDS+=("$pid")
	if wait_for 20 grep -q "event=results_write_failed" "$D/forqd.log"; then
		port=$(log_port "$D/forqd.log" http_listening)
		ready() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz"; }
		check "full disk: /readyz answers 503 while results cannot be written (got $(ready))" \
			[ "$(ready)" = 503 ]
		blocked() {
			curl -s "http://127.0.0.1:$port/metrics" |
				awk '$1 == "forq_results_write_blocked{queue=\"default\"}" { v = $2 } END { print v + 0 }'
		}
		blocked_some() { [ "$(blocked)" -gt 0 ]; }
		check "full disk: forq_results_write_blocked is above 0 meanwhile" wait_for 10 blocked_some
		echo "    (forq_results_write_blocked: $(blocked))"
		room
		wait_exit "$pid" 60
		check "full disk: forqd finishes once there is room (exit $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
		check "full disk: every task has a result" [ "$(wc -l <"$D/fs/r.jsonl")" -ge 2000 ]
	else
		bad "full disk: the write failure is logged"
	fi
fi

}
part full_disk "/readyz 503 and forq_results_write_blocked above 0 while results cannot be written"

finish
