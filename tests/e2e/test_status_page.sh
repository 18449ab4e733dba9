#!/usr/bin/env bash
# test_status_page.sh — the status page in a real browser: Debian's chromium,
# headless, opens forqd's / while a slow handler works through a backlog; the
# numbers the page's script fills in (#done, #pending, #in-progress) must be
# there and change between two reads a few seconds apart, the queues table
# must have one row for each of forqd's two queues (the busy default and a
# paused "emails" with 5 tasks waiting), and one page left open 6 s must
# poll /stats and redraw its chart by itself. Saves a screenshot
# to ${FORQ_ARTIFACTS:-$FORQ_BUILD/artifacts}/status-page.png.
#
#   FORQD=build/service/forqd tests/e2e/test_status_page.sh
#
# Installs nothing: the test command (scripts/deps.sh test) installs chromium;
# without it this test fails and says so. Last line: "N passed, N failed".
# Parts (for ONLY=, see lib.sh): page_reads, queue_rows, self_refresh.
set -u
. "$(dirname "$0")/lib.sh"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
ARTIFACTS=${FORQ_ARTIFACTS:-${FORQ_BUILD:-build}/artifacts}

if [ ! -x "$CHROMIUM" ]; then
	bad "chromium is installed at $CHROMIUM (apt-get install chromium, or run scripts/deps.sh test)"
	finish
fi
if [ ! -x "$FORQD" ]; then
	bad "forqd exists at '$FORQD' (set FORQD=path/to/forqd)"
	finish
fi

# browse OUTFLAG URL: one headless run with the flags that work here; the
# virtual time budget lets the page's fetch('stats') land before the dump.
browse() {
	timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--user-data-dir="$(mktemp -d "$TMP/chromium.XXXXXX")" --window-size=1000,900 \
		--virtual-time-budget="${BUDGET_MS:-3000}" "$1" "$2" 2>>"$TMP/chromium.log"
}

# field FILE ID: the text of the element with that id in a dumped DOM.
field() {
	python3 - "$1" "$2" <<'EOF'
import html.parser, sys
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.want = False; self.text = None
    def handle_starttag(self, tag, attrs):
        if dict(attrs).get("id") == sys.argv[2] and self.text is None:
            self.want = True; self.text = ""
    def handle_endtag(self, tag):
        self.want = False
    def handle_data(self, d):
        if self.want: self.text += d
p = P(); p.feed(open(sys.argv[1]).read())
print((p.text or "").strip())
EOF
}
is_num() { [[ $1 =~ ^[0-9]+$ ]]; }

# A backlog that takes ~20 s: 3,000 tasks through a handler that sleeps.
awk 'BEGIN { for (i = 1; i <= 3000; i++) print i "*3" }' >"$TMP/tasks.txt"
cat >"$TMP/forqd.conf" <<CONF
[queue default]
workers = 2
batch = 1
handler = exec:sleep 0.01; cat
tasks = $TMP/tasks.txt

[queue emails]
workers = 1
handler = arith
CONF
new_shm Q
start_forqd forqd --config "$TMP/forqd.conf" --shm-name "$Q" --results off --tcp off \
	--http 127.0.0.1:0
PID=$FORQD_PID
PORT=$HTTP_PORT
check "forqd serves HTTP on a free port (${PORT:-none})" [ -n "$PORT" ]
[ -n "$PORT" ] || finish
URL=http://127.0.0.1:$PORT/
wait_for 10 bash -c "curl -fsS ${URL}stats | grep -q '\"done\":[1-9]'"
# emails: paused, then 5 tasks that wait in it.
curl -fsS -o /dev/null -X POST "${URL}queues/emails/pause"
for i in 1 2 3 4 5; do
	curl -fsS -o /dev/null -X POST --data-binary "{\"payload\":\"$i+1\"}" "${URL}queues/emails/tasks"
done

page_reads() {
	browse --dump-dom "$URL" >"$TMP/dom1.html"
	check "chromium loads the page (1st read)" grep -q 'id="done"' "$TMP/dom1.html"
	mkdir -p "$ARTIFACTS"
	rm -f "$ARTIFACTS/status-page.png"
	browse --screenshot="$ARTIFACTS/status-page.png" "$URL" >/dev/null
	sleep 1
	browse --dump-dom "$URL" >"$TMP/dom2.html"
	check "chromium loads the page (2nd read)" grep -q 'id="done"' "$TMP/dom2.html"

	for n in 1 2; do
		for id in done pending in-progress failed conn; do
			printf -v "v${n}_${id//-/_}" '%s' "$(field "$TMP/dom$n.html" "$id")"
		done
	done
	echo "    read 1: done=$v1_done pending=$v1_pending in-progress=$v1_in_progress conn=$v1_conn"
	echo "    read 2: done=$v2_done pending=$v2_pending in-progress=$v2_in_progress conn=$v2_conn"
	check "the page's script reached /stats (badge says live)" [ "$v1_conn" = live -a "$v2_conn" = live ]
	check "#done, #pending, #in-progress, #failed are numbers on both reads" \
		bash -c "for v in '$v1_done' '$v1_pending' '$v1_in_progress' '$v1_failed' '$v2_done' '$v2_pending' '$v2_in_progress' '$v2_failed'; do [[ \$v =~ ^[0-9]+\$ ]] || exit 1; done"
	if is_num "$v1_done" && is_num "$v2_done" && is_num "$v1_pending" && is_num "$v2_pending"; then
		check "#done grows while tasks run ($v1_done -> $v2_done)" [ "$v2_done" -gt "$v1_done" ]
		check "#pending falls while the backlog drains ($v1_pending -> $v2_pending)" [ "$v2_pending" -lt "$v1_pending" ]
		check "#in-progress shows the busy workers ($v1_in_progress, $v2_in_progress)" \
			[ "${v1_in_progress:-0}" -gt 0 -o "${v2_in_progress:-0}" -gt 0 ]
		stats_done=$(curl -fsS "${URL}stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["done"])')
		check "the page's numbers are /stats's (#done $v2_done <= /stats done ${stats_done:-?})" \
			[ "$v2_done" -le "${stats_done:-0}" ]
	else
		bad "#done and #pending change between reads (no numbers to compare)"
	fi
	rows=$(grep -o '<tr class="state-running">' "$TMP/dom2.html" | wc -l)
	check "the workers table lists the 2 running consumers (got $rows)" [ "$rows" -eq 2 ]
	check "a screenshot was saved to $ARTIFACTS/status-page.png" \
		python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(24); sys.exit(not (d[:8]==b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", d[16:24])==(1000,900)))' \
		"$ARTIFACTS/status-page.png"
	check "the page loads no third-party resource (no http(s):// other than forqd)" \
		bash -c "! grep -Eo '(src|href)=\"https?://[^\"]*' '$TMP/dom2.html' | grep -v '127.0.0.1:$PORT'"
}
part page_reads "two reads of the page a few seconds apart, a screenshot between"

# rows FILE: "queue name pending running rate paused workers" per row of #queues.
rows() {
	python3 - "$1" <<'EOF'
import html.parser, sys
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.rows = []; self.cell = None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-queue" in a:
            self.rows.append({"queue": a["data-queue"]})
        elif tag == "td" and self.rows and (a.get("class") or "").startswith("q-"):
            self.cell = a["class"][2:]; self.rows[-1][self.cell] = ""
    def handle_endtag(self, tag):
        if tag == "td": self.cell = None
    def handle_data(self, d):
        if self.cell: self.rows[-1][self.cell] += d
p = P(); p.feed(open(sys.argv[1]).read())
for r in p.rows:
    print(r["queue"], r.get("name"), r.get("pending"), r.get("running"), r.get("rate"),
          r.get("paused"), r.get("workers"))
EOF
}

queue_rows() {
	BUDGET_MS=3000 browse --dump-dom "$URL" >"$TMP/dom4.html"
	rows "$TMP/dom4.html" >"$TMP/rows.txt"
	sed 's/^/    row: /' "$TMP/rows.txt"
	check "the queues table has one row per queue: default, then emails" \
		[ "$(cut -d' ' -f1 "$TMP/rows.txt" | tr '\n' ' ')" = "default emails " ]
	read -r _ name pending running rate paused workers < <(grep '^default ' "$TMP/rows.txt")
	check "default's row: named, busy, not paused, 2/2 workers ($name $pending $running $rate $paused $workers)" \
		bash -c "[ '$name' = default ] && [[ '$pending' =~ ^[0-9]+\$ ]] && [[ '$running' =~ ^[0-9]+\$ ]] &&
			 [ '$paused' = no ] && [ '$workers' = 2/2 ] && [ '$pending' -gt 0 ]"
	check "... and its done/s is a number above 0 ($rate)" \
		python3 -c 'import sys; sys.exit(not float(sys.argv[1]) > 0)' "$rate"
	read -r _ name pending running rate paused workers < <(grep '^emails ' "$TMP/rows.txt")
	check "emails' row: 5 pending, none running, paused, 1/1 workers ($name $pending $running $rate $paused $workers)" \
		[ "$name $pending $running $rate $paused $workers" = "emails 5 0 0 paused 1/1" ]
	local api
	api=$(curl -fsS "${URL}stats" | python3 -c 'import json,sys; q = json.load(sys.stdin)["queues"]["emails"]; print(q["pending"]["total"], q["paused"])')
	check "... as /stats's queues.emails says ($api)" [ "$api" = "5 True" ]
}
part queue_rows "the queues table: one row per queue, live figures, paused shown"

self_refresh() {
	# One page load, 6 s of (virtual) time: the page polls /stats every second
	# by itself and redraws the chart each time.
	BUDGET_MS=6000 browse --dump-dom "$URL" >"$TMP/dom3.html"
	updates=$(grep -o 'id="conn"[^>]*data-updates="[0-9]*"' "$TMP/dom3.html" | grep -o '[0-9]*"$' | tr -d '"')
	points=$(grep -o '<canvas[^>]*data-points="[0-9]*"' "$TMP/dom3.html" | grep -o '[0-9]*"$' | tr -d '"')
	check "one open page refreshes itself: ${updates:-no} updates from /stats in 6 s" \
		[ "${updates:-0}" -ge 4 ]
	check "... and its chart is redrawn with each (${points:-no} points drawn)" \
		[ "${points:-0}" -ge 4 -a "${points:-0}" -le "${updates:-0}" ]
}
part self_refresh "one page left open polls /stats and redraws its chart"

# Stop at once: the rest of the backlog would take a while to drain.
curl -fsS -o /dev/null -X POST "${URL}shutdown?mode=now"
wait_exit "$PID" 30
check "forqd exits 0 on POST /shutdown?mode=now (got $EXIT_CODE)" [ "$EXIT_CODE" -eq 0 ]
finish
