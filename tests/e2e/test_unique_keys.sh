#!/usr/bin/env bash
# test_unique_keys.sh — unique keys on every surface (issue 15): `forq push
# --key`, HTTP "key", TCP `PUT key=`; a duplicate gets the holder's id and
# pushes nothing; the key is free once the task is done (or its window
# after); 8 producers over HTTP and 8 `forq push` processes pushing the same
# keys at once make one task per key; every result record is checked.
set -u
. "$(dirname "$0")/lib.sh"
need_binaries "$FORQD" "$FORQ"
command -v curl >/dev/null || skip_all "no curl"
tcp_client_build

surfaces() {
	# No consumers at first: tasks stay pending and hold their keys.
	start_forqd keys --workers 0 --results "$TMP/keys.jsonl" || { bad "forqd starts"; return; }
	local a b c code body
	a=$("$FORQ" push --shm-name "$FORQD_SHM" --key user:42 '6*7')
	b=$("$FORQ" push --shm-name "$FORQD_SHM" --key user:42 '6*7' 2>"$TMP/e")
	check "forq push --key twice: the same id ($a, $b)" eval '[ -n "$a" ] && [ "$a" = "$b" ]'
	check "  ... and says so on stderr" grep -q "task $a holds key user:42 already: nothing pushed" "$TMP/e"
	body=$(curl -s -w ' %{http_code}' -X POST -d '{"payload":"6*7","key":"user:42"}' \
		"127.0.0.1:$HTTP_PORT/tasks")
	check "HTTP with the key: 200 {\"ids\":[$a],\"duplicate\":true} (got $body)" \
		[ "$body" = "{\"ids\":[$a],\"duplicate\":true} 200" ]
	body=$(curl -s -w ' %{http_code}' -X POST -d '{"payload":"1+1","key":"user:43"}' \
		"127.0.0.1:$HTTP_PORT/tasks")
	check "HTTP with a new key: 202, duplicate false ($body)" \
		grep -Eq '^\{"ids":\[[0-9]+\],"duplicate":false\} 202$' <<<"$body"
	body=$(curl -s -w ' %{http_code}' -X POST \
		-d '[{"payload":"6*7","key":"user:42"},{"payload":"2+2"}]' "127.0.0.1:$HTTP_PORT/tasks")
	check "HTTP array: duplicate per task, 202 as one was new ($body)" \
		grep -Eq "^\{\"ids\":\[$a,[0-9]+\],\"duplicate\":\[true,false\]\} 202$" <<<"$body"
	c=$(printf 'PUT key=user:42 3\r\n6*7\r\n' | "$CLIENT" "127.0.0.1:$TCP_PORT" raw 300)
	check "TCP PUT key=user:42: OK $a duplicate (got $c)" [ "$(tr -d '\r' <<<"$c")" = "OK $a duplicate" ]
	c=$(printf 'PUT key= 3\r\n6*7\r\n' | "$CLIENT" "127.0.0.1:$TCP_PORT" raw 300)
	check "TCP PUT key= (empty): ERR bad-key" grep -q '^ERR bad-key' <<<"$c"
	code=$(curl -s -o "$TMP/bad.json" -w '%{http_code}' -X POST \
		-d '{"payload":"1","key":"has blank"}' "127.0.0.1:$HTTP_PORT/tasks")
	check "HTTP key with a blank: 400 ($code)" \
		sh -c "[ $code = 400 ] && grep -q 'key: expected a string of 1 to 94 printable bytes' '$TMP/bad.json'"
	"$FORQ" push --shm-name "$FORQD_SHM" --key-window 5m 1 >/dev/null 2>"$TMP/e"
	code=$?
	check "forq push --key-window without --key: exit 2 (got $code)" [ "$code" -eq 2 ]
	check "/stats: 3 tasks pushed in all" \
		sh -c "curl -fsS 127.0.0.1:$HTTP_PORT/stats | grep -q '\"enqueued\":{\"high\":0,\"normal\":3,\"low\":0,\"total\":3}'"
	# A worker does them: the key is free again.
	"$FORQ" worker --connect "127.0.0.1:$TCP_PORT" --handler arith --max-tasks 3 --quiet \
		>"$TMP/w.log" 2>&1
	check "a worker did the 3 tasks" wait_for 5 sh -c "[ \$(grep -c '\"status\":\"done\"' '$TMP/keys.jsonl') -eq 3 ]"
	b=$("$FORQ" push --shm-name "$FORQD_SHM" --key user:42 --key-window 1h '6*7')
	check "once done, the key takes a new task ($b, not $a)" eval '[ -n "$b" ] && [ "$b" != "$a" ]'
	"$FORQ" worker --connect "127.0.0.1:$TCP_PORT" --handler arith --max-tasks 1 --quiet \
		>>"$TMP/w.log" 2>&1
	c=$("$FORQ" push --shm-name "$FORQD_SHM" --key user:42 '6*7' 2>/dev/null)
	check "with a window of 1h, done is not enough: still $b (got $c)" [ "$c" = "$b" ]
	stop_forqd
	check "forqd exits 0 (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
}
part surfaces "a key on every surface"

concurrent() {
	start_forqd conc --workers 0 --results "$TMP/conc.jsonl" || { bad "forqd starts"; return; }
	local p pids=()
	for p in $(seq 8); do
		(
			for k in $(seq 20); do
				"$FORQ" push --shm-name "$FORQD_SHM" --key "k$k" "$k+1" 2>/dev/null
				curl -s -w '\n' -X POST -d "{\"payload\":\"$k+1\",\"key\":\"k$k\"}" \
					"127.0.0.1:$HTTP_PORT/tasks" | sed -n 's/.*"ids":\[\([0-9]*\)\].*/\1/p'
			done >"$TMP/ids.$p"
		) &
		pids+=($!)
	done
	wait "${pids[@]}"
	check "8 producers x 20 keys, by the tool and HTTP each: one task per key (/stats enqueued 20)" \
		sh -c "curl -fsS 127.0.0.1:$HTTP_PORT/stats | grep -q '\"total\":20}'"
	local answers distinct
	answers=$(cat "$TMP"/ids.* | wc -l)
	distinct=$(sort -u "$TMP"/ids.* | wc -l)
	check "  ... and each key's pushes all got one id: 20 distinct ids in 320 answers (got $distinct in $answers)" \
		eval '[ "$answers" -eq 320 ] && [ "$distinct" -eq 20 ]'
	"$FORQ" worker --connect "127.0.0.1:$TCP_PORT" --handler arith --max-tasks 20 --quiet \
		>"$TMP/w2.log" 2>&1
	check "20 result records, each right" wait_for 5 sh -c \
		"[ \$(grep -c '\"status\":\"done\"' '$TMP/conc.jsonl') -eq 20 ] && ! grep -q '\"status\":\"failed\"' '$TMP/conc.jsonl'"
	stop_forqd
}
part concurrent "producers racing on the same keys"

finish
