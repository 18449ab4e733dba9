#!/usr/bin/env bash
# test_chaos.sh — "an accepted task is never lost", whichever process dies,
# whenever (at-least-once). After every run the accounting is exact
# (chaos_account.py): every accepted id has a final result line (lost = 0),
# duplicates are counted and printed, and no result is wrong.
#
# Parts (for ONLY=, see lib.sh):
#   1. chaos: 1,000,000 tasks through 4 consumers while a random consumer is
#      SIGKILLed every 20 ms; chaos_sparse, 50,000 of them on a sparse queue
#      (--max-payload 65536), a fourth of them 5 KB long;
#   2. kill9: kill -9 of forqd three times while an outside producer
#      pushes: its consumers die with it (no orphan), a new forqd on the same
#      queue and results file recovers and finishes;
#   3. poison: a handler that kills its consumer on one task: that task
#      ends dead after --max-attempts, every other one done, crashes counted;
#   4. sweep_POINT, the failpoint sweep (FORQD_FP: a forqd built with
#      FORQ_FAILPOINTS; LIBFORQ_FP: its libforq.a, for the producer's push
#      points): at each named step of push, pop, task, results, retry, dead
#      letter, requeue, repair and lease a process dies many times; after
#      each: lost = 0, no slot leaked, no stall over a second. Without
#      FORQD_FP the sweep is not part of the run (a note says so;
#      .ci/reliability.sh runs it); without LIBFORQ_FP the push.* points are
#      skipped.
#
# EXPECT_LOSS=1 is the test of the tests: FORQD and libforq are a
# FORQ_NO_REPAIR build, only parts 1 and 2 run, and each passes only if it
# DOES see a loss. Figures go to stdout as "FIGURES ..." lines (for README).
# Env: SEED (kills and failpoints, default 1), CHAOS_TASKS (default 1000000),
# ONLY (e.g. ONLY='^(chaos|kill9)$', ONLY=^sweep_lease).
set -u
. "$(dirname "$0")/lib.sh"

SEED=${SEED:-1}
CHAOS_TASKS=${CHAOS_TASKS:-1000000}
EXPECT_LOSS=${EXPECT_LOSS:-0}
# In a sanitizer build, LeakSanitizer checks at exit from a tracer that is a
# child of forqd, and this test SIGKILLs forqd's children at random: that
# would hang forqd's exit. Leaks are checked by every other test of the
# sanitizer suite.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
LIBFORQ=${LIBFORQ:-${FORQ_BUILD:-build}/core/libforq.a}
FORQD_FP=${FORQD_FP:-}
LIBFORQ_FP=${LIBFORQ_FP:-}
ACCOUNT="python3 $FORQ_SRC/tests/e2e/chaos_account.py"
echo "# seed=$SEED forqd=$FORQD expect_loss=$EXPECT_LOSS"

# tool OUT LIB: builds chaos_tool against a libforq.a.
tool() {
	cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror ${FORQ_CFLAGS:-} -I"$FORQ_SRC/core" -I"$FORQ_SRC/core/include" -I"$FORQ_SRC/base" \
		"$FORQ_SRC/tests/e2e/chaos_tool.c" "$2" -lpthread -o "$1" 2>"$1.log"
}
tool "$TMP/chaos_tool" "$LIBFORQ"
check "chaos_tool builds against $LIBFORQ" [ -x "$TMP/chaos_tool" ] || finish
CT=$TMP/chaos_tool

# field KEY LINE: the value of KEY=VALUE in a line of figures.
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

# deaths LOG...: consumer deaths forqd logged.
deaths() { cat "$@" 2>/dev/null | grep -c 'event=worker_\(died\|crash_loop\)'; }

# settled NAME FILE: waits up to 30 s until the queue is empty with no slot
# leaked (chaos_tool check); its last figures go to FILE.
settled() {
	local end=$((SECONDS + 30))
	until "$CT" check "$1" >"$2" 2>&1; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.05
	done
}

# no_orphans PID...: none of these processes is alive within 3 s.
no_orphans() {
	local p end=$((SECONDS + 3))
	for p in "$@"; do
		while kill -0 "$p" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]; do
			[ $SECONDS -ge $end ] && return 1
			sleep 0.02
		done
	done
}

# ---------------------------------------------------------------------------
# 1. chaos: 1,000,000 tasks, 4 consumers, a random one SIGKILLed every 20 ms
# ---------------------------------------------------------------------------
# chaos_run NAME TASKS PAD [FORQD FLAGS...]: tasks "K+1", every fourth
# written "0+0+...+K+1" with PAD "0+" in front (a larger payload).
chaos_run() {
	local name=$1 tasks=$2 pad=$3 Q t0 t1 pid kp
	shift 3
	new_shm Q
	awk -v n="$tasks" -v pad="$pad" 'BEGIN {
		p = ""; for (i = 0; i < pad; i++) p = p "0+"
		for (i = 1; i <= n; i++) print (i % 4 ? "" : p) i "+1" }' >"$TMP/$name.txt"
	t0=$(date +%s%N)
	start_forqd "$name" --shm-name "$Q" --tasks "$TMP/$name.txt" --handler arith --workers 4 \
		--results "$TMP/$name.jsonl" --exit-when-done --http off --tcp off \
		--restart-backoff 0 --restart-backoff-max 50 --max-attempts 1000 "$@"
	pid=$FORQD_PID
	"$CT" kill "$pid" 20 "$SEED" >"$TMP/$name.kills" &
	kp=$!
	PIDS+=("$kp")
	wait_exit "$pid" 180
	local code=$EXIT_CODE
	t1=$(date +%s%N)
	kill -TERM "$kp" 2>/dev/null
	wait "$kp" 2>/dev/null
	local pushed kills restarts acc
	pushed=$(sed -n 's/.*event=tasks_file_read .*pushed=\([0-9]*\).*/\1/p' "$TMP/$name.log")
	kills=$(sed -n 's/kills=//p' "$TMP/$name.kills")
	restarts=$(deaths "$TMP/$name.log")
	acc=$($ACCOUNT --range 1 "${pushed:-0}" "$TMP/$name.jsonl")
	echo "FIGURES $name: tasks=${pushed:-0} consumers=4 kill_interval_ms=20 kills=$kills" \
		"consumer_restarts=$restarts $acc time_s=$(((t1 - t0) / 1000000000)).$((((t1 - t0) / 10000000) % 100))"
	if [ "$EXPECT_LOSS" = 1 ]; then
		check "NO_REPAIR chaos: the accounting sees a loss ($(field lost "$acc") lost)" \
			[ "$(field lost "$acc")" -gt 0 ]
		return
	fi
	check "$name: forqd --exit-when-done exits 0 (got $code)" [ "$code" -eq 0 ]
	check "$name: all $tasks tasks accepted (pushed=${pushed:-?})" [ "${pushed:-0}" -eq "$tasks" ]
	check "$name: consumers were killed and restarted ($kills kills, $restarts restarts)" \
		[ "${restarts:-0}" -ge 10 ]
	check "$name: lost = 0 ($acc)" [ "$(field lost "$acc")" = 0 ]
	check "$name: every result is right and done, none failed" \
		[ "$(field wrong "$acc")" = 0 -a "$(field done "$acc")" = "$tasks" -a "$(field dead "$acc")" = 0 \
		-a "$(field failed "$acc")" = 0 ]
	check "$name: no result for an id never accepted" [ "$(field unacked "$acc")" = 0 ]
	check "$name: no line cut by a killed consumer is left (torn=$(field torn "$acc"))" \
		[ "$(field torn "$acc")" = 0 ]
	check "$name: no shared memory left" [ ! -e "/dev/shm$Q" ]
}

chaos() { chaos_run chaos "$CHAOS_TASKS" 0; }
# The same on a journaled queue: consumers take only what the journal has
# written, and finished ids reach it through a pipe they may die writing.
chaos_journal() {
	chaos_run chaos_journal $((CHAOS_TASKS / 5)) 0 --journal "$TMP/chaos_journal.d" --fsync 5
}
# The same on a sparse queue (payloads stored by size, pages reserved and
# given back as tasks come and go), a fourth of the tasks 5 KB long so that
# they take entry pages beyond the first: every repair path frees and
# reserves them.
chaos_sparse() { chaos_run chaos_sparse $((CHAOS_TASKS / 20)) 2500 --max-payload 65536; }

# ---------------------------------------------------------------------------
# 2. kill -9 of forqd mid-run (three times), restart, finish
# ---------------------------------------------------------------------------
killforqd() {
	local Q pid pp round kids all_gone=1 t0 t1 n=16000 held=0
	new_shm Q
	t0=$(date +%s%N)
	start_kf() { # each forqd appends to kf.log
		start_forqd kf --shm-name "$Q" --handler json --workers 4 --results "$TMP/kf.jsonl" \
			--http off --tcp off --restart-backoff 0 --max-attempts 1000
		pid=$FORQD_PID
	}
	start_kf
	# Tasks of 1 ms, so that consumers always hold some, from a paced
	# producer (64 tasks, then 10 ms), so that forqd dies mid-run.
	"$CT" push "$Q" "$n" "$TMP/kf.acks" '{"op":"sleep_ms","args":[1],"n":%llu}' 64 10000 \
		>"$TMP/kf.push" 2>&1 &
	pp=$!
	PIDS+=("$pp")
	for round in 1 2 3; do
		sleep 0.7
		kids=$(pgrep -P "$pid" | tr '\n' ' ')
		"$CT" check "$Q" >"$TMP/kf.before$round" 2>&1
		held=$((held + $(sed -n 's/.*in_progress=\([0-9]*\).*/\1/p' "$TMP/kf.before$round")))
		kill -9 "$pid"
		wait "$pid" 2>/dev/null
		no_orphans $kids || all_gone=0
		sleep 0.1
		start_kf
	done
	wait_exit "$pp" 120
	local pcode=$EXIT_CODE
	# Everything accepted must be finished: nothing pending, running or waiting.
	settled "$Q" "$TMP/kf.check"
	local settled=$?
	kids=$(pgrep -P "$pid" | tr '\n' ' ')
	stop_forqd "$pid" 30
	local code=$EXIT_CODE
	no_orphans $kids || all_gone=0
	t1=$(date +%s%N)
	local acc
	acc=$($ACCOUNT --acks "$TMP/kf.acks" "$TMP/kf.jsonl")
	local given
	given=$(sed -n 's/.*event=queue_recovered .*tasks_given_back=\([0-9]*\).*/\1/p' "$TMP/kf.log" |
		awk '{ s += $1 } END { print s + 0 }')
	echo "FIGURES kill9: tasks=$n forqd_kills=3 in_progress_at_kills=$held tasks_given_back_on_restart=${given:-0}" \
		"consumer_restarts=$(deaths "$TMP/kf.log") $acc time_s=$(((t1 - t0) / 1000000000))"
	if [ "$EXPECT_LOSS" = 1 ]; then
		check "NO_REPAIR kill -9: the accounting sees a loss ($(field lost "$acc") lost)" \
			[ "$(field lost "$acc")" -gt 0 ]
		return
	fi
	check "kill -9: the producer pushed all $n through three forqd deaths (exit $pcode)" \
		[ "$pcode" -eq 0 -a "$(field accepted "$acc")" -eq "$n" ]
	check "kill -9: consumers die with forqd (no orphan left)" [ "$all_gone" = 1 ]
	check "kill -9: a restarted forqd recovers the queue" \
		[ "$(grep -c 'event=queue_recovered' "$TMP/kf.log")" -eq 3 ]
	check "kill -9: the queue settles empty, no slot leaked ($(cat "$TMP/kf.check"))" [ "$settled" -eq 0 ]
	check "kill -9: lost = 0 ($acc)" [ "$(field lost "$acc")" = 0 -a "$(field wrong "$acc")" = 0 ]
	check "kill -9: no line cut by a killed process is left (torn=$(field torn "$acc"))" \
		[ "$(field torn "$acc")" = 0 ]
	check "kill -9: the last forqd exits 0 on SIGTERM (got $code)" [ "$code" -eq 0 ]
	check "kill -9: no shared memory left" [ ! -e "/dev/shm$Q" ]
}

# ---------------------------------------------------------------------------
# 3. a handler that crashes its consumer on one task
# ---------------------------------------------------------------------------
poison() {
	local Q
	new_shm Q
	awk 'BEGIN { for (i = 1; i <= 300; i++) print (i == 150 ? "poison" : i "+1") }' >"$TMP/poison.txt"
	start_forqd poison --shm-name "$Q" --tasks "$TMP/poison.txt" --workers 2 --max-attempts 3 \
		--handler 'exec:x=$(cat); [ "$x" = poison ] && kill -9 $PPID; echo $(($x))' \
		--results "$TMP/poison.jsonl" --exit-when-done --http off --tcp off \
		--restart-backoff 0
	wait_exit "$FORQD_PID" 60
	local code=$EXIT_CODE acc crashes
	acc=$($ACCOUNT --range 1 300 --id 150 "$TMP/poison.jsonl")
	crashes=$(grep -c 'event=worker_\(died\|crash_loop\).*killed by signal 9' "$TMP/poison.log")
	echo "FIGURES poison: tasks=300 max_attempts=3 consumer_crashes=$crashes $acc"
	check "poison: forqd exits 0 (got $code)" [ "$code" -eq 0 ]
	check "poison: the poison task ends dead, never done ($(field status_150 "$acc"))" \
		[ "$(field status_150 "$acc")" = dead ]
	check "poison: its result says why" \
		grep -q '"id":150,"task":"poison","status":"dead","error":"consumer killed by signal 9' "$TMP/poison.jsonl"
	check "poison: it was tried 3 times: 3 consumer crashes" [ "$crashes" -eq 3 ]
	check "poison: every other task is done, lost = 0 ($acc)" \
		[ "$(field lost "$acc")" = 0 -a "$(field done "$acc")" = 299 -a "$(field wrong "$acc")" = 0 ]
}

# ---------------------------------------------------------------------------
# 4. failpoint sweep
# ---------------------------------------------------------------------------
# A remote worker for the lease points: GET_TASKS over TCP, computes "K+1",
# reconnects to whichever forqd runs now (port in $1, rewritten per start).
cat >"$TMP/worker.py" <<'EOF'
import socket, sys, time, signal
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
portfile = sys.argv[1]
while True:
    try:
        port = int(open(portfile).read())
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        f = s.makefile("rb")
        open(portfile + ".ready", "w").close()
        while True:
            s.sendall(b"GET_TASKS 16 WAIT 100\r\n")
            k = int(f.readline().split()[1])
            ans = []
            for _ in range(k):
                _, tid, _, n = f.readline().split()
                body = f.read(int(n)).decode()
                f.readline()
                a, b = body.split("+")
                ans.append(b"RESULT %s %d\r\n" % (tid, int(a) + int(b)))
            if ans:
                s.sendall(b"".join(ans))
                for _ in ans:
                    f.readline()
    except (OSError, ValueError, IndexError):
        time.sleep(0.01)
EOF

# sweep POINT WHO SPEC HANDLER TASKS [FORQD FLAGS...]: WHO (forqd, producer
# or lease) gets FORQ_FAILPOINT=SPEC. forqd is restarted when a failpoint
# kills it (with the failpoint again up to 8 times, then without so that the
# run ends), the producer when it is killed (it pushes what is left).
# Skipped without the failpoint builds it needs.
SWEEP_TOTAL=0
SWEEP_POINTS=0
sweep() {
	local point=$1 who=$2 spec=$3 handler=$4 n=$5
	shift 5
	local what="sweep $point: hit at least 3 times, lost = 0, nothing wrong, no slot leaked, stall <= 1000 ms"
	if [ "$who" = producer ] && [ -z "$CT_FP" ]; then
		skip "$what (set LIBFORQ_FP to a libforq.a built with FORQ_FAILPOINTS)"
		return
	fi
	local Q d=$TMP/sw-$point pid= pp= ppdone=0 fd_deaths=0 pr_deaths=0 wp= mon ct=$CT
	new_shm Q
	mkdir -p "$d"
	local penv=() tcpf=(--tcp off) wflag=(--workers 4)
	[ "$who" = producer ] && penv=(env FORQ_FAILPOINT="$spec" FORQ_FAILPOINT_SEED="$SEED") && ct=$CT_FP
	[ "$who" = lease ] && tcpf=(--tcp 127.0.0.1:0) && wflag=(--workers 0)
	start_fp() { # each forqd appends to $d/forqd.log
		local FORQ_FAILPOINT= FORQ_FAILPOINT_SEED=
		if [ "$who" != producer ] && [ "$fd_deaths" -lt 8 ]; then
			export FORQ_FAILPOINT=$spec FORQ_FAILPOINT_SEED=$SEED
		fi
		FORQD=$FORQD_FP start_forqd "sw-$point/forqd" --shm-name "$Q" --handler "$handler" \
			"${wflag[@]}" --results "$d/r.jsonl" --http off "${tcpf[@]}" --restart-backoff 0 \
			--restart-backoff-max 50 --retry-backoff 1 --max-attempts 1000 "$@"
		pid=$FORQD_PID
		if [ "$who" = lease ] && [ -n "$TCP_PORT" ]; then # the worker waits for the new port
			echo "$TCP_PORT" >"$d/port.tmp"
			mv "$d/port.tmp" "$d/port"
		fi
	}
	start_fp "$@"
	"$CT" monitor "$Q" "$d/stall" &
	mon=$!
	PIDS+=("$mon")
	if [ "$who" = lease ]; then
		python3 "$TMP/worker.py" "$d/port" &
		wp=$!
		PIDS+=("$wp")
		wait_for 10 test -e "$d/port.ready" # before the first task
	fi
	local t0=$SECONDS ok_end=0 accepted
	while [ $((SECONDS - t0)) -lt 60 ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" 2>/dev/null
			fd_deaths=$((fd_deaths + 1))
			start_fp "$@"
		fi
		if [ -n "$pp" ] && ! kill -0 "$pp" 2>/dev/null; then
			wait "$pp"
			case $? in
			0) ppdone=1 ;;
			137) pr_deaths=$((pr_deaths + 1)) ;;
			*) break ;;
			esac
			pp=
		fi
		if [ -z "$pp" ] && [ "$ppdone" = 0 ]; then
			accepted=$(awk '{ s += $2 - $1 + 1 } END { print s + 0 }' "$d/acks" 2>/dev/null || echo 0)
			"${penv[@]}" "$ct" push "$Q" $((n - accepted)) "$d/acks" "%llu+1" 16 \
				>>"$d/push.log" 2>&1 &
			pp=$!
			PIDS+=("$pp")
		fi
		if [ "$ppdone" = 1 ] && "$CT" check "$Q" >"$d/check" 2>&1; then
			ok_end=1
			break
		fi
		sleep 0.01
	done
	stop_forqd "$pid" 20
	local code=$EXIT_CODE
	[ -n "$wp" ] && kill -TERM "$wp" 2>/dev/null && wait "$wp" 2>/dev/null
	[ -n "$pp" ] && kill -9 "$pp" 2>/dev/null
	kill -TERM "$mon" 2>/dev/null
	wait "$mon" 2>/dev/null
	local acc stall cdeaths hits
	acc=$($ACCOUNT --acks "$d/acks" "$d/r.jsonl")
	stall=$(sed -n 's/max_stall_ms=\([0-9]*\).*/\1/p' "$d/stall")
	cdeaths=$(grep -c 'event=worker_\(died\|crash_loop\).*killed by signal 9' "$d/forqd.log")
	case $point in
	requeue | repair.*) hits=$fd_deaths ;; # consumers die at task.begin there
	*) hits=$((cdeaths + fd_deaths + pr_deaths)) ;;
	esac
	SWEEP_TOTAL=$((SWEEP_TOTAL + hits))
	SWEEP_POINTS=$((SWEEP_POINTS + 1))
	echo "FIGURES sweep $point: time_s=$((SECONDS - t0)) hits=$hits consumer_deaths=$cdeaths forqd_deaths=$fd_deaths" \
		"producer_deaths=$pr_deaths max_stall_ms=${stall:-?} $acc"
	check "sweep $point: hit at least 3 times, lost = 0, nothing wrong, no slot leaked, stall ${stall:-?} ms <= 1000 ($(cat "$d/check"))" \
		[ "$ok_end" = 1 -a "$hits" -ge 3 -a "$(field lost "$acc")" = 0 -a "$(field wrong "$acc")" = 0 \
			-a "${stall:-9999}" -le 1000 -a "$code" -eq 0 -a "$(field accepted "$acc")" -eq "$n" ]
}

# sweep_part POINT WHO SPEC HANDLER TASKS [FORQD FLAGS...]: the part
# sweep_POINT. bash reports each forqd a failpoint killed: that goes to a
# file, out of the way.
sweep_part() {
	[ -n "$FORQD_FP" ] || return 0
	part "sweep_$1" "a process killed at failpoint $1, many times" sweep "$@" 2>>"$TMP/sweep.stderr"
}

CT_FP=
if [ -n "$LIBFORQ_FP" ] && [ "$EXPECT_LOSS" != 1 ]; then
	tool "$TMP/chaos_tool_fp" "$LIBFORQ_FP"
	CT_FP=$TMP/chaos_tool_fp
fi

part chaos "1,000,000 tasks, 4 consumers, a random one SIGKILLed every 20 ms"
part chaos_journal "the same, 200,000 tasks with --journal --fsync 5"
part chaos_sparse "the same, 50,000 tasks on a sparse queue (--max-payload 65536)"
part kill9 "kill -9 of forqd mid-run (three times), restart, finish" killforqd
if [ "$EXPECT_LOSS" != 1 ]; then
	part poison "a handler that crashes its consumer on one task"
	ex='exec:x=$(cat); [ $(($$ % 3)) -eq 0 ] && exit 3; echo $(($x))'
	dead='exec:x=$(cat); [ $((${x%+1} % 10)) -eq 0 ] && exit 3; echo $(($x))'
	[ -n "$FORQD_FP" ] || echo "note: the crash-point sweep (sweep_*) is not in this run: it needs FORQD_FP," \
		"a forqd built with FORQ_FAILPOINTS=ON (.ci/reliability.sh runs it)"
	sweep_part push.locked producer push.locked:20-60 arith 20000
	sweep_part push.copy producer push.copy:300-900 arith 20000
	sweep_part push.before_tail producer push.before_tail:20-60 arith 20000
	sweep_part push.after_tail producer push.after_tail:20-60 arith 20000
	sweep_part pop.locked forqd pop.locked:10-40 arith 20000
	sweep_part pop.copy forqd pop.copy:100-600 arith 20000
	sweep_part pop.after_head forqd pop.after_head:10-40 arith 20000
	sweep_part task.begin forqd task.begin:100-600 arith 20000
	sweep_part task.finish forqd task.finish:100-600 arith 20000
	sweep_part consumer.flush forqd consumer.flush:5-30 arith 20000
	sweep_part consumer.flushed forqd consumer.flushed:5-30 arith 20000
	# Small batches: a consumer that dies before the end of its batch gives
	# the whole batch back (its results are not written yet).
	sweep_part retry.add forqd retry.add:3-12 "$ex" 600 --batch 4
	sweep_part dead.add forqd dead.add:2-6 "$dead" 600 --max-attempts 2 --batch 4
	sweep_part requeue forqd task.begin:100-300,requeue:5-40 arith 20000
	sweep_part repair.giveback forqd task.begin:100-300,repair.giveback:2-20 arith 20000
	sweep_part lease.take lease lease.take:10-40 arith 5000
	sweep_part lease.finish lease lease.finish:50-300 arith 5000
	sweep_part lease.release lease lease.release:50-300 arith 5000
	[ "$SWEEP_POINTS" -gt 0 ] &&
		echo "FIGURES sweep total: points=$SWEEP_POINTS failpoint_kills=$SWEEP_TOTAL"
fi
finish
