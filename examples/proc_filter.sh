#!/bin/sh
# proc_filter.sh CMD [ARG...] — a forqd proc: handler in POSIX sh, following
# the framing of handlers/PROC.md. Each task's payload goes to CMD's stdin and
# CMD's stdout is the result; a non-zero exit fails the task with the last
# line of CMD's stderr as the reason (all of its stderr goes to forqd's log).
#
#   forqd --handler 'proc:sh examples/proc_filter.sh tr a-z A-Z'
#
# The shell loop lives as long as its consumer, but CMD still starts once per
# task: this shows how little the framing asks of a language. For speed, write
# the handler in the persistent process itself (forq.serve in Python,
# examples/proc_sum.js in Node). Needs head -c (GNU or BSD), which reads no
# further than the count it is given.
set -u
[ $# -gt 0 ] || { echo "usage: proc_filter.sh CMD [ARG...]" >&2; exit 2; }
in=$(mktemp) && out=$(mktemp) && err=$(mktemp) || exit 1
trap 'rm -f "$in" "$out" "$err"' EXIT

# forqd -> child:  TASK <id> <attempt> <len>\n<len bytes>\n
while IFS=' ' read -r word id attempt len; do
	if [ "$word" != TASK ]; then
		echo "proc_filter.sh: bad frame header \"$word\"" >&2
		exit 1
	fi
	head -c "$len" >"$in"       # the payload, bytes as they are
	head -c 1 >/dev/null        # and the "\n" after it
	"$@" <"$in" >"$out" 2>"$err"
	rc=$?
	if [ "$rc" -eq 0 ]; then
		word=RESULT
	else
		word=FAIL
		tail -n 1 "$err" | tr -d '\r\n' >"$out"
		[ -s "$out" ] || printf 'exit status %s' "$rc" >"$out"
	fi
	cat "$err" >&2              # forqd logs the child's stderr
	# child -> forqd:  RESULT|FAIL|RETRY <id> <len>\n<len bytes>\n
	printf '%s %s %d\n' "$word" "$id" "$(($(wc -c <"$out")))"
	cat "$out"
	printf '\n'
done
