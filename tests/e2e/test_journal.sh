#!/usr/bin/env bash
# test_journal.sh — forqd --journal: a queue that survives a reboot.
#
# The reboot, simulated: tasks pushed with --fsync always through forq push,
# HTTP and TCP (start rate limited, so most are still queued), then forqd and
# its consumers are SIGKILLed and the shared-memory object removed (what a
# reboot does). A forqd started on the journal alone must give every id a
# producer got back a result, and run nothing that was never accepted. The
# same after a torn record is left at the journal's end (a crash mid-write),
# and after a bit of its last record flipped (cut, logged, never a crash).
# Delayed tasks and unique keys survive it too (part delayed_keys).
. "$(dirname "$0")/lib.sh"
need_binaries "$FORQD" "$FORQ"
PY=/usr/bin/python3
command -v curl >/dev/null || skip_all "no curl"

# push_all DIR: tasks "i + 1" through forq push (1500), HTTP (500, in 10
# batches) and TCP (20); every id a producer got back in DIR/ids (id payload).
push_all() {
	local d=$1 i
	for i in $(seq 1 1500); do echo "$i + 1"; done >"$d/push.txt"
	"$FORQ" push --shm-name "$FORQD_SHM" --file "$d/push.txt" >"$d/push.ids" || return 1
	paste -d' ' "$d/push.ids" "$d/push.txt" >"$d/ids"
	for b in $(seq 0 9); do
		local body="[" sep=
		for i in $(seq $((2000 + b * 50)) $((2049 + b * 50))); do
			body+="$sep{\"payload\":\"$i + 1\"}"
			sep=,
		done
		curl -sf -X POST --data "$body]" "127.0.0.1:$HTTP_PORT/tasks" >"$d/http.$b" || return 1
		$PY -c 'import json,sys; ids=json.load(open(sys.argv[1]))["ids"]
for k,i in enumerate(ids): print(i, "%d + 1" % (int(sys.argv[2])+k))' "$d/http.$b" \
			$((2000 + b * 50)) >>"$d/ids"
	done
	exec 3<>"/dev/tcp/127.0.0.1/$TCP_PORT" || return 1
	for i in $(seq 3000 3019); do
		local p="$i + 1" line
		printf 'PUT %d\r\n%s\r\n' "${#p}" "$p" >&3
		read -r line <&3
		line=${line%$'\r'}
		[ "${line%% *}" = OK ] || return 1
		echo "${line#OK } $p" >>"$d/ids"
	done
	exec 3>&-
}

# account IDS RESULTS: every id in IDS has a result with its own payload,
# and every result is of an id in IDS. With MISSING_OK=n, up to n ids may
# lack a result (a record cut from the journal).
account() {
	$PY - "$1" "$2" "${MISSING_OK:-0}" <<'PY'
import json, sys
ids = {}
for l in open(sys.argv[1]):
    i, p = l.rstrip("\n").split(" ", 1)
    ids[int(i)] = p
res = {}
for l in open(sys.argv[2]):
    r = json.loads(l)
    if r["status"] == "unfinished":
        continue
    res.setdefault(r["id"], []).append(r)
stray = [i for i in res if i not in ids]
wrong = [i for i, rs in res.items() if i in ids and any(r["task"] != ids[i] for r in rs)]
missing = [i for i in ids if i not in res]
print("accepted", len(ids), "with results", len(res), "missing", len(missing),
      "never accepted", len(stray), "wrong payload", len(wrong))
sys.exit(1 if stray or wrong or len(missing) > int(sys.argv[3]) else 0)
PY
}

# power_cut PID SHM: what a reboot does to forqd PID and its queue: it and
# its consumers SIGKILLed, the shared-memory object gone.
power_cut() {
	local kids
	kids=$(pgrep -P "$1" | tr '\n' ' ')
	kill -9 "$1" $kids 2>/dev/null
	wait "$1" 2>/dev/null
	check "forqd and its consumers are gone" wait_for 10 all_ended <(echo "$1 $kids")
	rm -f "/dev/shm$2"
}

# reboot NAME [SPOIL]: (FSYNC=mode, default always) pushes, kills forqd and its consumers, removes the
# queue's shm object, runs SPOIL on the journal dir, starts forqd on the
# journal and waits for every result.
reboot() {
	local name=$1 spoil=${2:-} d=$TMP/$1
	mkdir -p "$d"
	start_forqd "$name/a" --journal "$d/j" --fsync "${FSYNC:-always}" --workers 2 --handler arith \
		--rate 300 --results "$d/r.jsonl" || { bad "forqd starts with --journal"; return; }
	local shm=$FORQD_SHM pid=$FORQD_PID
	check "producers get ids back from forq push, HTTP and TCP" push_all "$d"
	curl -sf "127.0.0.1:$HTTP_PORT/metrics" >"$d/metrics"
	check "/metrics counts journal bytes and fsyncs" \
		grep -Eq '^forq_journal_fsyncs_total\{queue="default"\} [1-9]' "$d/metrics"
	power_cut "$pid" "$shm"
	local before
	before=$(grep -c . "$d/r.jsonl" 2>/dev/null || echo 0)
	check "most tasks were still queued at the kill ($before of $(wc -l <"$d/ids") done)" \
		[ "$before" -lt 1500 ]
	[ -z "$spoil" ] || "$spoil" "$d/j"
	start_forqd "$name/b" --shm-name "$shm" --journal "$d/j" --fsync always --workers 2 \
		--handler arith --results "$d/r.jsonl" || { bad "forqd starts on the journal"; return; }
	check "forqd replays the journal" grep -q 'event=journal_opened .*replay=[1-9]' "$FORQD_LOG"
	wait_for 30 account "$d/ids" "$d/r.jsonl" >/dev/null
	check "every accepted id has a result with its payload, none ran unaccepted" \
		account "$d/ids" "$d/r.jsonl"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
	check "the journal keeps one segment once every task finished" \
		[ "$(ls "$d/j" | wc -l)" -eq 1 ]
}

last_segment() { ls "$1"/journal-*.log | tail -n 1; }

# A crash mid-write: a record's first 20 bytes at the end.
tear() {
	local seg
	seg=$(last_segment "$1")
	TORN_AT=$(stat -c %s "$seg")
	printf '\x40\x00\x00\x00\x01\x01\x00\x00\xde\xad\xbe\xef\x07\x00\x00\x00\x00\x00\x00\x00' >>"$seg"
}

# One bit of the last record flipped.
flip() {
	local seg size
	seg=$(last_segment "$1")
	size=$(stat -c %s "$seg")
	$PY - "$seg" "$((size - 3))" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0x10]))
PY
}

part reboot "kill -9 of forqd and consumers, shm removed: every accepted task runs from the journal" \
	reboot reboot
torn() {
	reboot torn tear
	check "the torn tail is cut and logged with its offset" \
		grep -q "event=journal_cut file=journal-[0-9]*.log offset=$TORN_AT bytes=20 reason=torn" \
		"$TMP/torn/b.log"
}
part torn "the same with a torn record at the journal's end" torn
flipped() {
	MISSING_OK=1 reboot flipped flip
	check "the corrupt record is cut and logged with its offset" \
		grep -q "event=journal_cut .*reason=corrupt" "$TMP/flipped/b.log"
}
part flipped "the same with a bit of the last record flipped (at most its task is lost)" flipped

# tcp_put DIR LINE PAYLOAD: one PUT on a new connection; its answer line.
tcp_put() {
	local line
	exec 4<>"/dev/tcp/127.0.0.1/$TCP_PORT" || return 1
	printf '%s %d\r\n%s\r\n' "$2" "${#3}" "$3" >&4
	read -r line <&4
	exec 4>&-
	echo "${line%$'\r'}"
}

# ping_ms: a PING on a new connection to TCP_PORT; ms until its PONG (-1: none).
ping_ms() {
	local line t0=$(date +%s%N)
	exec 5<>"/dev/tcp/127.0.0.1/$TCP_PORT" || { echo -1; return; }
	printf 'PING\r\n' >&5
	read -r line <&5
	exec 5>&-
	[ "${line%$'\r'}" = PONG ] && echo $((($(date +%s%N) - t0) / 1000000)) || echo -1
}

# note_id DIR ID DUE_MS WHAT: a pushed task, due no sooner than DUE_MS.
note_id() {
	[[ $2 =~ ^[0-9]+$ ]] || { echo "no id: '$2'"; return 1; }
	echo "$2 $3 $4" >>"$1/ids"
}

# once_and_not_early IDS RESULTS START_MS: every id in IDS has exactly one
# result (unfinished ones aside), done, whose handler's start time (its
# result, in unix ms) is no sooner than the id's due time (less 100 ms of
# rounding), and no later than 5 s after that or after START_MS (forqd's
# start), whichever is later.
once_and_not_early() {
	$PY - "$1" "$2" "$3" <<'PY'
import json, sys
due = {}
for l in open(sys.argv[1]):
    i, d, w = l.split()
    due[int(i)] = int(d)
res = {}
for l in open(sys.argv[2]):
    r = json.loads(l)
    if r["status"] != "unfinished":
        res.setdefault(r["id"], []).append(r)
missing = [i for i in due if i not in res]
twice = [i for i, rs in res.items() if len(rs) > 1]
stray = [i for i in res if i not in due]
start = int(sys.argv[3])
early = [(i, int(rs[0]["result"]) - due[i]) for i, rs in res.items()
         if i in due and (rs[0]["status"] != "done" or int(rs[0]["result"]) < due[i] - 100)]
late = [(i, int(rs[0]["result"]) - max(due[i], start)) for i, rs in res.items()
        if i in due and not early and int(rs[0]["result"]) > max(due[i], start) + 5000]
print("ids", len(due), "missing", missing, "run twice", twice, "never pushed", stray,
      "early or failed (id, ms from due)", early, "late (id, ms after due or start)", late)
sys.exit(1 if missing or twice or stray or early or late else 0)
PY
}

# Delayed tasks (due in about 1 s and 8 s) and keyed tasks (a 1 h window)
# pushed through forq push, HTTP and TCP to a forqd with no consumers, so
# that none runs before the kill; then the reboot (kill -9, shm removed).
# On the journal alone: every delayed task runs once and not before it was
# due (the handler prints when it starts), and every key is still held.
delayed_keys() {
	local d=$TMP/delayed t0 id out
	mkdir -p "$d"
	: >"$d/ids"
	start_forqd delayed/a --journal "$d/j" --fsync always --workers 0 ||
		{ bad "forqd starts with --journal"; return; }
	local shm=$FORQD_SHM pid=$FORQD_PID
	local late soon
	t0=$(date +%s%3N)
	late=$("$FORQ" push --shm-name "$shm" --delay 8s 'late cli')
	soon=$("$FORQ" push --shm-name "$shm" --delay 1s 'soon cli')
	check "forq push --delay 8s and 1s give ids ($late, $soon)" eval \
		'note_id "$d" "$late" $((t0 + 8000)) late && note_id "$d" "$soon" $((t0 + 1000)) soon'
	out=$(curl -sf -X POST -d '[{"payload":"late http","delay":"8s"},{"payload":"soon http","delay":"1s"}]' \
		"127.0.0.1:$HTTP_PORT/tasks")
	late=$(sed -n 's/.*"ids":\[\([0-9]*\),.*/\1/p' <<<"$out")
	soon=$(sed -n 's/.*"ids":\[[0-9]*,\([0-9]*\)\].*/\1/p' <<<"$out")
	check "HTTP with delays gives ids ($out)" eval \
		'note_id "$d" "$late" $((t0 + 8000)) late && note_id "$d" "$soon" $((t0 + 1000)) soon'
	out=$(tcp_put "$d" "PUT delay=8000" "late tcp")
	check "TCP PUT delay=8000: $out" note_id "$d" "${out#OK }" $((t0 + 8000)) late
	out=$(tcp_put "$d" "PUT delay=1000" "soon tcp")
	check "TCP PUT delay=1000: $out" note_id "$d" "${out#OK }" $((t0 + 1000)) soon
	# Keys, held for an hour after their task ends: k1 pending, k2 pending
	# (HTTP), k3 due in 8 s (TCP).
	local k1 k2 k3
	k1=$("$FORQ" push --shm-name "$shm" --key k1 --key-window 1h 'keyed cli')
	out=$(curl -sf -X POST -d '{"payload":"keyed http","key":"k2","key_window":"1h"}' \
		"127.0.0.1:$HTTP_PORT/tasks")
	k2=$(sed -n 's/.*"ids":\[\([0-9]*\)\].*/\1/p' <<<"$out")
	out=$(tcp_put "$d" "PUT delay=8000 key=k3 window=3600000" "keyed tcp")
	k3=${out#OK }
	check "keyed pushes give ids ($k1, $k2, $k3)" eval \
		'note_id "$d" "$k1" "$t0" keyed && note_id "$d" "$k2" "$t0" keyed &&
		note_id "$d" "$k3" $((t0 + 8000)) keyed'
	power_cut "$pid" "$shm"
	local n t1
	n=$(wc -l <"$d/ids")
	t1=$(date +%s%3N)
	start_forqd delayed/b --shm-name "$shm" --journal "$d/j" --fsync always --workers 2 \
		--handler 'exec:date +%s%3N' --results "$d/r.jsonl" ||
		{ bad "forqd starts on the journal"; return; }
	check "forqd replays all $n tasks" grep -q "event=journal_opened .*replay=$n " "$FORQD_LOG"
	# The keys hold: k1 and k2 may have run already (their window holds
	# them), k3 is still scheduled.
	out=$("$FORQ" push --shm-name "$shm" --key k1 'keyed cli' 2>&1)
	check "after the reboot, forq push --key k1 is a duplicate of $k1 ($out)" \
		grep -q "task $k1 holds key k1 already" <<<"$out"
	out=$(curl -s -X POST -d '{"payload":"keyed http","key":"k2"}' "127.0.0.1:$HTTP_PORT/tasks")
	check "  ... HTTP key k2 a duplicate of $k2 ($out)" \
		[ "$out" = "{\"ids\":[$k2],\"duplicate\":true}" ]
	out=$(tcp_put "$d" "PUT key=k3" "keyed tcp")
	check "  ... TCP PUT key=k3: OK $k3 duplicate ($out)" [ "$out" = "OK $k3 duplicate" ]
	out=$(tcp_put "$d" "PUT key=k4" "keyed tcp")
	check "  ... a key never pushed is free ($out)" grep -Eq '^OK [0-9]+$' <<<"$out"
	note_id "$d" "${out#OK }" "$t0" keyed
	wait_for 40 once_and_not_early "$d/ids" "$d/r.jsonl" "$t1" >/dev/null
	check "every delayed and keyed task ran once, none before it was due, none 5 s late" \
		once_and_not_early "$d/ids" "$d/r.jsonl" "$t1"
	out=$(tcp_put "$d" "PUT key=k1" "keyed cli")
	check "k1's task has run since the restart: its 1 h window still holds the key ($out)" \
		[ "$out" = "OK $k1 duplicate" ]
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}
part delayed_keys "delayed tasks and unique keys survive the reboot: run once, not early; keys held" \
	delayed_keys

bad_journal() {
	local d=$TMP/other
	mkdir -p "$d"
	start_forqd other/a --journal "$d/j" --workers 0 --drain-timeout 1 ||
		{ bad "forqd starts"; return; }
	echo "1 + 1" | "$FORQ" push --shm-name "$FORQD_SHM" --file - >/dev/null
	stop_forqd
	local shm
	new_shm shm
	local rc=0
	"$FORQD" --shm-name "$shm" --journal "$d/j" --http off --tcp off >"$d/b.log" 2>&1 || rc=$?
	check "another queue's journal is refused with exit 3 (got $rc)" [ "$rc" -eq 3 ]
	check "the refusal says why" grep -q "event=journal_refused .*journal of queue" "$d/b.log"
	rc=0
	"$FORQD" --journal "$d/j" --fsync sometimes >"$d/c.log" 2>&1 || rc=$?
	check "--fsync sometimes is a bad flag (exit 2, got $rc)" [ "$rc" -eq 2 ]
	check "the error names the forms" grep -q "expected always, off or milliseconds" "$d/c.log"
}
ms() { FSYNC=20 reboot ms; }
part ms "--fsync 20: a forqd killed loses nothing (the kernel has the writes)" ms

# One task waits an hour for its retry while 2,000 others of 4 KB pass
# through 1 MiB segments: its record is copied forward, and the journal
# keeps a few segments, not the 8 MB that passed.
bounded() {
	local d=$TMP/bounded i pad
	mkdir -p "$d"
	pad=$(head -c 3900 /dev/zero | tr '\0' x)
	{
		echo "old $pad"
		for i in $(seq 1 2000); do echo "task $i $pad"; done
	} >"$d/tasks.txt"
	start_forqd bounded --journal "$d/j" --fsync off --journal-segment 1 --workers 2 \
		--drain-timeout 1 \
		--max-payload 4000 --max-attempts 2 --retry-backoff 3600000 --results "$d/r.jsonl" \
		--handler 'exec:read -r p; case "$p" in old*) exit 1;; esac; echo ok' ||
		{ bad "forqd starts"; return; }
	check "2,001 tasks pushed" \
		bash -c "'$FORQ' push --shm-name '$FORQD_SHM' --file '$d/tasks.txt' >/dev/null"
	check "2,000 tasks done" wait_for 120 bash -c "[ \$(grep -c '\"done\"' '$d/r.jsonl') -ge 2000 ]"
	# Finishes reach the journal within 0.2 s; old segments are looked at
	# twice a second.
	check "the old task's first segment is gone (its record copied forward)" \
		wait_for 10 bash -c "! ls '$d/j' | grep -q 'journal-0*1.log'"
	# The rest go at the next looks (twice a second), once what moved
	# their tasks on is synced.
	check "at most 3 segments are left of 8 MB written" \
		wait_for 10 bash -c "[ \$(ls '$d/j' | grep -c journal-) -le 3 ]"
	check "the old task is still pending (retry table)" \
		bash -c "curl -s 127.0.0.1:$HTTP_PORT/metrics | grep -q '^forq_retry_waiting{queue=\"default\"} 1'"
	# 60 s: a bound that catches a hang. Under ASan (GCC 12) a consumer forked
	# while another forqd thread held an allocator lock can hang in free()
	# (the sanitizer allocator is not fork-safe); forqd kills it after its 5 s
	# stop grace, and the checkpoint follows.
	stop_forqd "$FORQD_PID" 60
	# A clean stop writes a checkpoint: one segment of what is live.
	check "the clean stop logged a checkpoint" grep -q 'event=journal_checkpoint' "$FORQD_LOG"
	check "... and left one segment ($(ls "$d/j" | grep -c journal-))" \
		[ "$(ls "$d/j" | grep -c journal-)" -eq 1 ]
}
part bounded "one task pending for an hour: segments are removed, its record moves on" bounded

# The journal's disk fills (a 4 MiB tmpfs in a private mount namespace,
# 3.5 MiB of it taken): pushes are not confirmed (forq push says so, exit
# 1), nothing accepted is lost, and once room comes back it all runs.
disk_full() {
	local d=$TMP/full i pad
	if ! skip_unless "needs root" test "$(id -u)" = 0 ||
		! skip_unless "no unshare -m or nsenter" command -v nsenter ||
		! skip_unless "no unshare -m" unshare -m true; then
		check "a full journal disk holds tasks back" false
		skip_end
		return
	fi
	mkdir -p "$d/j"
	pad=$(head -c 600 /dev/zero | tr '\0' y)
	for i in $(seq 1 3000); do echo "$i + 1 $pad"; done >"$d/tasks.txt"
	unshare -m sh -c 'mount -t tmpfs -o size=4m tmpfs "$1" && head -c 3500k /dev/zero >"$1/filler" &&
		shift && exec "$@"' sh "$d/j" "$FORQD" --shm-name /forq-e2e-jfull-$$ --journal "$d/j" \
		--journal-segment 1 --workers 1 --handler noop --http 127.0.0.1:0 --tcp 127.0.0.1:0 \
		--results "$d/r.jsonl" >"$d/forqd.log" 2>&1 &
	local pid=$! http rc=0
	PIDS+=("$pid")
	SHMS+=("/forq-e2e-jfull-$$")
	wait_for 10 grep -q "event=started" "$d/forqd.log"
	http=$(log_port "$d/forqd.log" http_listening)
	"$FORQ" push --shm-name "/forq-e2e-jfull-$$" --timeout 1000 --file "$d/tasks.txt" \
		>"$d/ids" 2>"$d/push.err" || rc=$?
	check "forq push fails once the journal's disk is full (exit $rc)" [ "$rc" -eq 1 ]
	check "  ... saying the journal did not confirm the tasks" \
		grep -q "the journal did not confirm" "$d/push.err"
	check "the log has the write error (errno 28)" \
		grep -q "event=journal_write_failed .*errno=28" "$d/forqd.log"
	check "/metrics counts it" bash -c \
		"curl -s 127.0.0.1:$http/metrics | grep -Eq '^forq_journal_write_errors_total\{queue=\"default\"\} [1-9]'"
	# A TCP PUT and a POST /tasks wait for the disk without holding forqd's
	# loop or its HTTP thread: other clients are answered meanwhile, and
	# each gets its "not on disk" answer after its 5 s (the task stays
	# queued).
	TCP_PORT=$(log_port "$d/forqd.log" tcp_listening)
	tcp_put "$d" PUT "1 + 1" >"$d/put.out" &
	local put=$! post ms t0
	curl -s -o "$d/post.out" -w '%{http_code}' -X POST -d '{"payload":"2 + 2"}' \
		"127.0.0.1:$http/tasks" >"$d/post.code" &
	post=$!
	sleep 1
	ms=$(ping_ms)
	check "while a PUT waits for the full disk, PING is answered at once ($ms ms)" \
		[ "$ms" -ge 0 -a "$ms" -lt 3000 ]
	t0=$(date +%s%N)
	curl -sf "127.0.0.1:$http/healthz" >/dev/null
	ms=$((($(date +%s%N) - t0) / 1000000))
	check "while a POST /tasks waits for it, GET /healthz is answered at once ($ms ms)" \
		[ "$ms" -lt 3000 ]
	wait "$put" "$post"
	check "  ... the PUT gets ERR not-durable ($(cat "$d/put.out"))" \
		grep -q "^ERR not-durable" "$d/put.out"
	check "  ... the POST gets 503 ($(cat "$d/post.code"))" grep -q "^503$" "$d/post.code"
	check "  ... saying the journal did not confirm it" \
		grep -q "journal did not confirm" "$d/post.out"
	nsenter -t "$pid" -m rm -f "$d/j/filler"
	check "writes resume once there is room" \
		wait_for 10 grep -q "event=journal_write_resumed" "$d/forqd.log"
	# The batch that was not confirmed stays queued and runs too.
	check "every id forq push printed ($(wc -l <"$d/ids")) has its result" wait_for 30 \
		$PY -c 'import json, sys
done = {json.loads(l)["id"] for l in open(sys.argv[2]) if "\"done\"" in l}
sys.exit(any(int(i) not in done for i in open(sys.argv[1])))' "$d/ids" "$d/r.jsonl"
	kill -TERM "$pid"
	wait_exit "$pid" 20
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}
part disk_full "a full journal disk: pushes not confirmed, nothing lost, resumes" disk_full

part bad_journal "a journal of another queue is refused, a bad --fsync too" bad_journal

finish
