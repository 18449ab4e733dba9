#!/usr/bin/env bash
# run.sh SECONDS — builds each libFuzzer harness with clang under ASan+UBSan
# and runs it for SECONDS on a copy of its seed corpus. Fails on any finding.
set -eu
cd "$(dirname "$0")/../.."
secs=${1:-20}
out=$(mktemp -d /tmp/forq-fuzz.XXXXXX)
trap 'rm -rf "$out"' EXIT
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Ibase -Icore/include -Ihandlers -Itasks -Itcp -Iweb -Ijournal"
declare -A srcs=(
	[arith]="handlers/arith.c"
	[tasks_file]="tasks/tasks_file.c tasks/json_payload.c base/buf.c base/errmsg.c"
	[proto]="tcp/proto.c tcp/proto_reply.c tcp/proto_format.c base/buf.c"
	[http_tasks]="web/http_tasks.c tasks/json_payload.c base/buf.c base/errmsg.c base/parse.c"
	[journal]="journal/record.c base/buf.c"
)
declare -A libs=([arith]="-lm" [tasks_file]="-lcjson" [proto]="" [http_tasks]="-lcjson -lm" [journal]="")
pass=0 fail=0
for name in arith tasks_file proto http_tasks journal; do
	# shellcheck disable=SC2086
	clang $flags "tests/fuzz/fuzz_$name.c" ${srcs[$name]} ${libs[$name]} -o "$out/fuzz_$name"
	mkdir -p "$out/corpus_$name"
	cp -r "tests/fuzz/corpus/$name/." "$out/corpus_$name/"
	if "$out/fuzz_$name" -max_total_time="$secs" -timeout=10 -artifact_prefix="$out/" \
		"$out/corpus_$name" >"$out/$name.log" 2>&1; then
		pass=$((pass + 1)); echo "ok   - fuzz_$name ran ${secs}s: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/$name.log" || tail -n 1 "$out/$name.log")"
	else
		fail=$((fail + 1)); echo "FAIL - fuzz_$name"; tail -n 40 "$out/$name.log"
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
