# shellcheck shell=bash disable=SC2034,SC2154 # globals for the caller, tmp from it
# compare_lib.sh — what bench/compare.sh and bench/journal_compare.sh share
# (sourced): progress lines, a JSON field without jq, the median, and
# servers started on a free loopback port and stopped on every exit path.
# The caller calls compare_setup first.

log() { echo "$*" >&2; }

# JSON field from one line, without jq: number after "name":
field() { sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\([-0-9.eE+]*\).*/\1/p" <<<"$2" | head -n1; }

median() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
		END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Starts a server on a random free loopback port: start_server CMD... with
# @PORT@ in CMD replaced; sets srv_port. Retries on a port that is taken.
srv_port=""
start_server() {
	local try port pid i a args
	for try in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 40000))
		args=()
		for a in "$@"; do args+=("${a//@PORT@/$port}"); done
		"${args[@]}" >"$tmp/server.log" 2>&1 &
		pid=$!
		for i in $(seq 1 50); do # up to 5 s
			kill -0 "$pid" 2>/dev/null || break
			if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				server_pids+=("$pid")
				srv_port=$port
				return 0
			fi
			sleep 0.1
		done
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	log "  could not start: $* ($(tail -n1 "$tmp/server.log"))"
	return 1
}

stop_servers() {
	local p
	for p in "${server_pids[@]}"; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	server_pids=()
}


# compare_setup NAME BASE: a temp dir $tmp under BASE; on every exit the
# servers started are stopped and it is removed.
compare_setup() {
	tmp=$(mktemp -d "$2/forq-$1.XXXXXX") || exit 2
	server_pids=()
	trap 'stop_servers; rm -rf "$tmp"' EXIT
	trap 'exit 130' INT TERM
}
