#!/usr/bin/env bash
# test_readme_examples.sh — README's "Writing handlers" examples are the files
# in examples/, and each runs as README says: the exec: one-liner, proc: in
# Python (forq.serve) and in Node.js, and a remote worker in Python
# (forq.Worker), every result checked.
set -u
. "$(dirname "$0")/lib.sh"
need_binaries "$FORQD"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# 500 sum tasks and the sums they must give, by payload.
for i in $(seq 1 500); do printf '{"op":"sum","args":[%d,%d,1]}\n' "$i" "$i"; done >"$TMP/sums.txt"

# sums_right FILE: 500 results, every one done with 2i+1.
sums_right() {
	"$PY" - "$1" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bad = [r for r in rows if r["status"] != "done"
       or int(float(r["result"])) != sum(json.loads(r["task"])["args"])]
print(len(rows), "results,", len(bad), "wrong:", bad[:3])
sys.exit(0 if len(rows) == 500 and not bad else 1)
PYEOF
}

blocks() {
	local f n=0
	for f in $(grep -o '<!-- file: [^ ]* -->' "$FORQ_SRC/README.md" | awk '{print $3}'); do
		awk -v f="$f" '
			$0 == "<!-- file: " f " -->" { want = 1; next }
			want && /^```/ { if (inb) exit; inb = 1; next }
			inb { print }' "$FORQ_SRC/README.md" >"$TMP/block"
		check "README's block for $f is the file ($(wc -l <"$TMP/block") lines)" \
			cmp "$TMP/block" "$FORQ_SRC/$f"
		n=$((n + 1))
	done
	check "README shows the example files (got $n, want 4)" [ "$n" -eq 4 ]
}
part blocks "README's file blocks are the files as they stand"

# run_handler NAME SPEC: forqd runs the 500 sums with handler SPEC.
run_handler() {
	local Q
	new_shm Q
	(cd "$FORQ_SRC" && timeout 120 "$FORQD" --shm-name "$Q" --workers 2 --handler "$2" \
		--tasks "$TMP/sums.txt" --exit-when-done --results "$TMP/$1.jsonl" --http off \
		--tcp off) >"$TMP/$1.log" 2>&1
	check "$1: forqd --handler '$2' exits 0 (got $?)" [ $? -eq 0 ]
	check "$1: every result is right" sums_right "$TMP/$1.jsonl"
}

exec_example() {
	# README's one-liner, as README writes it.
	local spec
	spec=$(grep -o "forqd --handler 'exec:python3 -c [^']*'" "$FORQ_SRC/README.md" | head -n 1 |
		sed "s/^forqd --handler '//; s/'\$//")
	check "README has the exec: example" [ -n "$spec" ]
	run_handler exec "$spec"
}
part exec_example "exec: a Python one-liner per task"

proc_python() { run_handler proc_py 'proc:python3 examples/proc_sum.py'; }
part proc_python "proc: examples/proc_sum.py with forq.serve"

proc_node() {
	skip_unless "node is not installed" command -v node
	run_handler proc_js 'proc:node examples/proc_sum.js'
	skip_end
}
part proc_node "proc: examples/proc_sum.js in Node.js"

remote_worker() {
	start_forqd remote --workers 0 --tasks "$TMP/sums.txt" --results "$TMP/remote.jsonl" ||
		{ bad "forqd starts"; return; }
	(cd "$FORQ_SRC" && timeout 60 "$PY" examples/worker_sum.py "127.0.0.1:$TCP_PORT" 500) \
		>"$TMP/worker.log" 2>&1
	check "examples/worker_sum.py runs 500 tasks and exits 0 (got $?)" [ $? -eq 0 ]
	check "remote worker: every result is right" wait_for 10 sums_right "$TMP/remote.jsonl"
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}
part remote_worker "a remote worker in Python: examples/worker_sum.py"

finish
