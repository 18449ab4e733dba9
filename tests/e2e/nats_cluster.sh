# nats_cluster.sh — a local nats-server cluster with JetStream for the e2e
# tests and benchmarks (sourced, not run; after lib.sh in a test).
#
#   . tests/e2e/nats_cluster.sh
#   nats_cluster_start 3 127.0.0.1 "$TMP"   # or 1 node; HOST: an address of this machine
#   nats_cluster_ready || ...               # waits for the JetStream meta leader
#   forqd --upstream "$NATS_URLS" ...
#   nats_jsz messages STREAM                # messages in a stream (or a consumers' sum)
#   nats_cluster_stop                       # SIGTERM, then waits (a test's cleanup_extra)
#
# Each node has its own store under DIR/natsI and log DIR/natsI.log, random
# free ports on HOST (client, cluster route, monitoring), all held at once
# while chosen. Sets NATS_URLS (nats://HOST:P,...), NATS_PIDS, NATS_PORTS
# (client ports) and NATS_MON (monitoring ports); the pids are also added to
# PIDS when it is set (lib.sh kills them at exit).

NATS_PY=/usr/bin/python3
[ -x $NATS_PY ] || NATS_PY=python3

nats_cluster_start() {
	local n=$1 host=$2 dir=$3 i j routes p
	read -r -a p <<<"$($NATS_PY -c '
import socket, sys
ss = [socket.socket() for _ in range(3 * int(sys.argv[1]))]
for s in ss: s.bind((sys.argv[2], 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$n" "$host")"
	NATS_HOST=$host
	NATS_PIDS=()
	NATS_PORTS=("${p[@]:0:n}")
	NATS_MON=("${p[@]:2*n:n}")
	NATS_URLS=
	for ((i = 0; i < n; i++)); do
		NATS_URLS="${NATS_URLS:+$NATS_URLS,}nats://$host:${p[$i]}"
	done
	for ((i = 0; i < n; i++)); do
		local cl=()
		if [ "$n" -gt 1 ]; then
			routes=
			for ((j = 0; j < n; j++)); do
				[ "$j" = "$i" ] || routes="${routes:+$routes,}nats://$host:${p[$((n + j))]}"
			done
			cl=(--cluster_name forqtest --cluster "nats://$host:${p[$((n + i))]}" --routes "$routes")
		fi
		mkdir -p "$dir/nats$i"
		nats-server -js -sd "$dir/nats$i" -n "n$i" -a "$host" -p "${p[$i]}" \
			-m "${p[$((2 * n + i))]}" "${cl[@]}" >"$dir/nats$i.log" 2>&1 &
		NATS_PIDS+=($!)
		[ -z "${PIDS+x}" ] || PIDS+=($!)
	done
}

# nats_cluster_ready [SECONDS] [REPLICAS]: waits until the cluster takes a
# stream of REPLICAS (default: one per node) replicas (JetStream elects its
# meta leader after the routes connect: seconds on a loaded machine).
nats_cluster_ready() {
	local limit=${1:-90} r=${2:-${#NATS_PIDS[@]}} end
	end=$((SECONDS + limit))
	until "${FORQ:?}" push --upstream "$NATS_URLS" --upstream-stream probe --upstream-replicas "$r" \
		'1*2' >/dev/null 2>"${TMP:-/tmp}/nats_probe.err"; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.2
	done
}

nats_cluster_stop() {
	local p
	for p in "${NATS_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${NATS_PIDS[@]}"; do
		timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	NATS_PIDS=()
}

# nats_jsz FIELD STREAM: "messages" in STREAM, or the sum of FIELD over its
# consumers, from the first node that holds a replica of it; "none" if none.
nats_jsz() {
	$NATS_PY - "$1" "$2" "$NATS_HOST" "${NATS_MON[@]}" <<'PYEOF'
import json, sys, urllib.request
field, name, host, ports = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
for port in ports:
    try:
        d = json.load(urllib.request.urlopen(
            "http://%s:%s/jsz?streams=true&consumers=true" % (host, port), timeout=5))
    except OSError:
        continue
    for a in d.get("account_details") or []:
        for s in a.get("stream_detail") or []:
            if s["name"] != name:
                continue
            if field == "messages":
                print(s["state"]["messages"])
            else:
                print(sum(c.get(field, 0) for c in s.get("consumer_detail") or []))
            sys.exit(0)
print("none")
PYEOF
}
