#!/usr/bin/env bash
# Runs every PromQL expression of dashboards/forq.json against a real
# Prometheus scraping a real forqd serving two queues, once per queue, and
# checks the alert rules evaluate.
#
#   FORQD=build/service/forqd tests/e2e/test_dashboard_live.sh
#   tests/e2e/test_dashboard_live.sh path/to/forqd
#
# Starts forqd on 127.0.0.1 (ports chosen by the kernel, its own shm name)
# with a config file of two queues, "default" (arith, 2 workers) and "emails"
# (noop, 1 worker), each fed by its demo producer (2000 and 500 tasks/s);
# checks /metrics (promtool; each per-queue family labelled for both) and
# /stats ("queues" with both, each finishing tasks); and Debian's prometheus on
# 127.0.0.1 scraping it every second with dashboards/alerts.yml loaded; waits until
# samples arrive (Prometheus applies new targets on 5-second ticks), then
# expects a non-empty result from every panel expr and variable query
# ($job, $instance, $__rate_interval substituted by check_dashboard.py; an
# expr with $queue runs for All and for each queue).
# Finally stops forqd with SIGTERM and expects exit 0 and its ring gone.
# Needs curl, python3 and prometheus (installed with apt-get when root).
# Parts (for ONLY=, see lib.sh): forqd_metrics, forqd_stats, alert_rules,
# dashboard_queries. Last line: "N passed, N failed"; exits 1 if any check
# failed.
set -u

[ $# -gt 0 ] && FORQD=$1
demo_rate=${DEMO_RATE:-2000}

. "$(dirname "$0")/lib.sh"
root=$FORQ_SRC

if [ ! -x "$FORQD" ]; then
	echo "forqd not found at '$FORQD': pass its path as FORQD=... or the first argument" >&2
	bad "forqd binary exists"
	finish
fi
if ! command -v prometheus >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus \
		>/dev/null 2>&1
fi
for tool in prometheus curl python3; do
	command -v $tool >/dev/null 2>&1 || { bad "$tool is installed"; finish; }
done

tmp=$TMP
forqd_pid=
prom_pid=
new_shm shm

# forqd and Prometheus get a graceful stop first (lib.sh kills what is left).
cleanup_extra() {
	[ -n "$forqd_pid" ] && stop_forqd "$forqd_pid" 5 >/dev/null
	[ -n "$prom_pid" ] && stop "$prom_pid" 5 >/dev/null
}

# ---- forqd -------------------------------------------------------------------
# On 127.0.0.1, ports chosen by the kernel.
cat >"$tmp/forqd.conf" <<CONF
[queue default]
handler = arith
workers = 2
demo = $demo_rate

[queue emails]
handler = noop
workers = 1
demo = $((demo_rate / 4))
CONF
start_forqd forqd --config "$tmp/forqd.conf" --shm-name "$shm" --results off
forqd_pid=$FORQD_PID
http_port=$HTTP_PORT

up=0
for _ in $(seq 100); do
	curl -fsS -o /dev/null "http://127.0.0.1:$http_port/healthz" 2>/dev/null && { up=1; break; }
	kill -0 "$forqd_pid" 2>/dev/null || break
	sleep 0.1
done
if [ $up = 1 ]; then
	ok "forqd answers /healthz on 127.0.0.1:$http_port"
else
	bad "forqd answers /healthz on 127.0.0.1:$http_port"
	sed 's/^/    forqd: /' "$tmp/forqd.log" | tail -20
	finish
fi

# run_checks CMD...: counts check_dashboard.py's "ok"/"not ok" lines.
run_checks() {
	local line
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) bad "${line#not ok - }" ;;
		*) echo "$line" ;;
		esac
	done < <("$@" 2>&1)
}
forqd_metrics() {
	run_checks python3 "$root/tests/e2e/check_dashboard.py" metrics \
		--url "http://127.0.0.1:$http_port/metrics" --queues default,emails
	if skip_unless "no promtool" command -v promtool; then
		curl -fsS "http://127.0.0.1:$http_port/metrics" >"$tmp/metrics.txt"
	fi
	check "promtool check metrics passes on /metrics with both queues" \
		promtool check metrics <"$tmp/metrics.txt"
	skip_end
}
part forqd_metrics "the series the dashboard reads are on forqd's /metrics, for each queue"

forqd_stats() {
	local got
	got=$(curl -fsS "http://127.0.0.1:$http_port/stats" | python3 -c 'import json, sys
s = json.load(sys.stdin)
q = s["queues"]
print(" ".join(q), s["done"] == q["default"]["done"],
      all(q[n]["done"] > 0 and q[n]["capacity"] > 0 and len(q[n]["workers"]) > 0 for n in q))')
	check "/stats: queues default and emails, the top level the default's, both finish tasks ($got)" \
		[ "$got" = "default emails True True" ]
}
part forqd_stats "/stats lists each queue with its own figures"

# ---- Prometheus ----------------------------------------------------------------
# query EXPR: prints the first sample's value, or nothing.
query() {
	curl -fsS "$prom/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
		python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null
}

# prometheus_up: Debian's prometheus on 127.0.0.1 (a free port) scraping
# forqd every second with dashboards/alerts.yml loaded, started by the first
# part that needs it; waits until it has enough samples for rate() over the
# 10s the checks give $__rate_interval. Fails when it has not.
prom_state=
prometheus_up() {
	if [ -n "$prom_state" ]; then
		[ "$prom_state" = up ]
		return
	fi
	prom_state=down
	local prom_port
	read -r prom_port < <(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cp "$root/dashboards/alerts.yml" "$tmp/alerts.yml"
	cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - alerts.yml
scrape_configs:
  - job_name: forqd
    static_configs:
      - targets: ["127.0.0.1:$http_port"]
EOF
	prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
		--web.listen-address="127.0.0.1:$prom_port" --log.level=warn \
		>"$tmp/prometheus.log" 2>&1 &
	prom_pid=$!
	prom=http://127.0.0.1:$prom_port
	local samples=
	for _ in $(seq 40); do
		samples=$(query 'count_over_time(up{job="forqd"}[1m])')
		[ -n "$samples" ] && [ "${samples%.*}" -ge 6 ] && break
		kill -0 "$prom_pid" 2>/dev/null || break
		sleep 0.5
	done
	if [ -n "$samples" ] && [ "${samples%.*}" -ge 6 ]; then
		ok "Prometheus has $samples samples of forqd"
		prom_state=up
	else
		bad "Prometheus has 6 samples of forqd within 20 s (got '${samples}')"
		sed 's/^/    prometheus: /' "$tmp/prometheus.log" | tail -20
		return 1
	fi
}

alert_rules() {
	prometheus_up || return
	[ "$(query 'up{job="forqd"}')" = 1 ] && ok "the last scrape of forqd succeeded (up == 1)" ||
		bad "the last scrape of forqd succeeded (up == 1)"
	done_rate=$(query 'sum(rate(forq_tasks_done_total{job="forqd"}[10s]))')
	python3 -c 'import sys; sys.exit(not float(sys.argv[1] or 0) > 0)' "$done_rate" &&
		ok "the demo producer's tasks finish ($done_rate/s)" ||
		bad "the demo producer's tasks finish (rate '$done_rate')"

	# Every alert rule has been evaluated without error; ForqdDown is quiet.
	sleep 1
	curl -fsS "$prom/api/v1/rules" >"$tmp/rules.json" 2>/dev/null
	if python3 - "$tmp/rules.json" <<'EOF'
import json, sys
rules = [r for g in json.load(open(sys.argv[1]))["data"]["groups"] for r in g["rules"]]
bad = [f'{r["name"]}: {r["health"]} {r.get("lastError", "")}' for r in rules if r["health"] != "ok"]
print(f"    {len(rules)} rules loaded" + "".join("\n    " + b for b in bad))
sys.exit(1 if bad or not rules else 0)
EOF
	then ok "every alert rule evaluates without error"; else bad "every alert rule evaluates without error"; fi
	if curl -fsS "$prom/api/v1/alerts" 2>/dev/null | grep -q '"alertname":"ForqdDown"'; then
		bad "ForqdDown is not pending or firing"
	else
		ok "ForqdDown is not pending or firing"
	fi
}
part alert_rules "a real Prometheus scrapes forqd; every alert rule evaluates, ForqdDown quiet"

# ---- the dashboard -------------------------------------------------------------
dashboard_queries() {
	prometheus_up || return
	run_checks python3 "$root/tests/e2e/check_dashboard.py" live --prom "$prom" \
		--job forqd --instance "127.0.0.1:$http_port" --queues default,emails
}
part dashboard_queries "every panel expr and variable query of the dashboard returns data"

# ---- graceful stop ---------------------------------------------------------------
stop_forqd "$forqd_pid" 40 # --drain-timeout is 30 s
rc=$EXIT_CODE
forqd_pid=
[ $rc -eq 0 ] && ok "forqd exits 0 on SIGTERM" || {
	bad "forqd exits 0 on SIGTERM (status $rc)"
	sed 's/^/    forqd: /' "$tmp/forqd.log" | tail -20
}
[ ! -e "/dev/shm${shm}" ] && ok "forqd removed its ring /dev/shm$shm" ||
	{ bad "forqd removed its ring /dev/shm$shm"; rm -f "/dev/shm${shm}"; }

finish
