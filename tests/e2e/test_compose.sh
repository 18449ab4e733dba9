#!/usr/bin/env bash
# `docker compose up` for real: a Docker engine, the project's image built
# from docker/Dockerfile, the stack of compose.yaml started and checked the
# way a user would use it.
#
#   tests/e2e/test_compose.sh            (as root; ctest runs it as test_compose)
#
# 1. The engine: a running one is used as it is; else, as root, docker.io is
#    installed when missing and dockerd started (niced) and, at the end,
#    stopped again by its pid. Where no engine can run (not root and none
#    running, or dockerd cannot start here) the test exits 77: skipped.
# 2. No image registry is needed. Base images debian:bookworm and
#    bookworm-slim, when absent, are made with debootstrap --variant=minbase
#    from the Debian mirror apt is configured with, and docker import; a
#    Prometheus stand-in (Debian's prometheus package on that base, laid out
#    like the upstream image) is built once. Both stay cached for later runs.
#    Grafana has no Debian package and cannot be had offline: it is left out
#    (a note line, not a check) unless grafana/grafana:10.4.2 is already in
#    the engine.
# 3. The image is built by compose from docker/Dockerfile, with BuildKit when
#    a client for it is at hand (compose v2's default builder).
# 4. Checks: NATS and both forqd hosts (forqd, forqd-b) healthy, every
#    process of theirs and of their shared-memory holders (forq-shm,
#    forq-shm-b) non-root; each host's rings in its holder's /dev/shm; the
#    journal in host a's volume; /metrics on the published port; both
#    Prometheus targets UP; the alert rules loaded; every dashboard query
#    returns data for both hosts (check_dashboard.py live); the demo's error
#    ratio well under the alert's; a tokenless or wrong-token POST /shutdown
#    from the host refused; the admin token read with README's command for
#    the compose installed; host a's queue "default" (a done task, a held
#    key, a dead letter, a delayed task, a pause, 3000 pending) kept whole
#    through `docker kill` of both forqd containers + `up -d` and a kill -9
#    of forqd inside (re-attached to the rings in the holders); then
#    `docker kill forqd forq-shm` + `up -d`: the 3000 tasks replayed from
#    the journal, the rest gone as README says; then all run, each id with
#    its result (HTTP and the results file in the volume); tasks pushed to
#    host a for the queue "shared" (NATS) all get results, some on each
#    host; forqd stays down after POST /shutdown, logs no warning while it
#    drains, checkpoints its journal and removes its rings; `down -v` leaves
#    nothing behind.
#
# Its own compose project (forq-e2e-PID), ports on 127.0.0.1 picked free,
# every setting given in the environment (a developer's .env does not
# apply). Containers, volumes and networks it made are removed on every exit
# path. The harness is lib.sh's: the engine, the images and `compose up -d`
# always run, then the parts (health, admin_token, prometheus, grafana,
# queue_survives, two_hosts, remote_shutdown, down_v), which ONLY=PATTERN
# picks from; a part run alone reads what it needs (the token, results in
# the volume) itself. Last line: "N passed, N failed[, N skipped]".
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/e2e/lib.sh"
cd "$root" || exit 2

# poll SECONDS INTERVAL CMD...: runs CMD every INTERVAL s until it succeeds.
poll() {
	local end=$((SECONDS + $1)) iv=$2
	shift 2
	until "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep "$iv"
	done
}
# show FILE [N]: the last N lines of FILE, indented, the mirror's host hidden.
show() { tail -n "${2:-25}" "$1" 2>/dev/null | sed -e 's#://[^/ ]*#://MIRROR#g' -e 's/^/    /'; }

dockerd_pid=
project=forq-e2e-$$
export COMPOSE_PROJECT_NAME=$project

# ---- cleanup: everything this run made, on every exit path ------------------
remove_project() { # remove_project NAME: containers, volumes, networks of a project
	local label="label=com.docker.compose.project=$1" ids
	ids=$(docker ps -aq --filter "$label" 2>/dev/null)
	[ -n "$ids" ] && docker rm -f -v $ids >/dev/null 2>&1
	ids=$(docker volume ls -q --filter "$label" 2>/dev/null)
	[ -n "$ids" ] && docker volume rm $ids >/dev/null 2>&1
	ids=$(docker network ls -q --filter "$label" 2>/dev/null)
	[ -n "$ids" ] && docker network rm $ids >/dev/null 2>&1
	return 0
}
# teardown: the stack, then the dockerd this test started; run by finish
# (before the last line) and again, a no-op by then, on any other exit.
teardown() {
	# A debootstrap cut short can leave its mounts in the tree lib.sh removes.
	local m
	for m in proc sys dev/pts; do
		mountpoint -q "$TMP/rootfs/$m" 2>/dev/null && umount -l "$TMP/rootfs/$m"
	done
	if [ -n "${compose_ok:-}" ]; then
		timeout 120 "${compose[@]}" down -v --remove-orphans -t 10 >/dev/null 2>&1
		remove_project "$project"
		compose_ok=
	fi
	if [ -n "$dockerd_pid" ]; then
		kill -TERM "$dockerd_pid" 2>/dev/null
		for _ in $(seq 300); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$dockerd_pid" 2>/dev/null && echo "dockerd (pid $dockerd_pid) did not stop: killed"
		wait "$dockerd_pid" 2>/dev/null
		echo "stopped the dockerd this test started (pid $dockerd_pid)"
		dockerd_pid=
	fi
}
cleanup_extra() { teardown; }

# ---- 1. the engine -------------------------------------------------------------
command -v docker >/dev/null 2>&1 || command -v dockerd >/dev/null 2>&1 || {
	[ "$(id -u)" = 0 ] || skip_all "no Docker engine installed, and not root to install docker.io"
	echo "installing docker.io"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io \
		>"$TMP/apt.log" 2>&1 || { show "$TMP/apt.log" 5; skip_all "docker.io cannot be installed"; }
}
if ! timeout 20 docker info >/dev/null 2>&1; then
	[ "$(id -u)" = 0 ] || skip_all "no Docker engine running, and not root to start one"
	command -v dockerd >/dev/null 2>&1 || {
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io \
			>"$TMP/apt.log" 2>&1 || { show "$TMP/apt.log" 5; skip_all "dockerd is missing and docker.io cannot be installed"; }
	}
	# Niced: image builds and containers are its children, and other work
	# shares this machine.
	nice -n 10 dockerd >"$TMP/dockerd.log" 2>&1 &
	dockerd_pid=$!
	for _ in $(seq 60); do
		timeout 5 docker info >/dev/null 2>&1 && break
		kill -0 "$dockerd_pid" 2>/dev/null || break
		sleep 0.5
	done
	if ! timeout 5 docker info >/dev/null 2>&1; then
		show "$TMP/dockerd.log" 15
		kill -0 "$dockerd_pid" 2>/dev/null || { wait "$dockerd_pid" 2>/dev/null; dockerd_pid=; }
		skip_all "dockerd cannot start on this machine (its log above)"
	fi
	ok "started dockerd (pid $dockerd_pid): $(docker version -f '{{.Server.Version}}' 2>/dev/null)"
else
	ok "a Docker engine is running: $(docker version -f '{{.Server.Version}}' 2>/dev/null) (used as it is)"
fi

# Stacks of earlier runs that were killed before their cleanup.
for p in $({ docker ps -a --format '{{.Label "com.docker.compose.project"}}'
	docker volume ls --format '{{.Label "com.docker.compose.project"}}'
	docker network ls --format '{{.Label "com.docker.compose.project"}}'; } 2>/dev/null | sort -u); do
	case $p in forq-e2e-[0-9]*) kill -0 "${p#forq-e2e-}" 2>/dev/null || remove_project "$p" ;; esac
done

# Compose: v2 (the docker CLI plugin) when there, else v1 (docker-compose).
if timeout 20 docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
	cv=2
else
	command -v docker-compose >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-compose \
			>"$TMP/apt.log" 2>&1; }
	compose=(docker-compose)
	cv=1
fi
if ! timeout 20 "${compose[@]}" version >"$TMP/cv.txt" 2>&1; then
	bad "compose is installed (docker compose or docker-compose)"
	finish
fi
ok "compose v$cv: $(head -n 1 "$TMP/cv.txt")"

# ---- 2. base images and the Prometheus stand-in, made locally and kept -------
# apt_mirror: the Debian mirror apt uses for bookworm (deb822 or one-line form).
apt_mirror() {
	{
		cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
			/^URIs:/ { u = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") print u }
			/^$/ { u = "" }'
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			sed 's/\[[^]]*\]//' | awk '$1 == "deb" && $3 == "bookworm" { print $2 }'
	} | head -n 1
}
missing=()
for tag in debian:bookworm debian:bookworm-slim; do
	docker image inspect "$tag" >/dev/null 2>&1 || missing+=("$tag")
done
if [ ${#missing[@]} -eq 0 ]; then
	ok "base images debian:bookworm and debian:bookworm-slim are there (kept from before)"
else
	command -v debootstrap >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap \
			>"$TMP/apt.log" 2>&1; }
	mirror=$(apt_mirror)
	t0=$SECONDS
	if [ -z "$mirror" ]; then
		bad "apt is configured with a Debian bookworm mirror (for debootstrap)"
		finish
	elif ! command -v debootstrap >/dev/null 2>&1; then
		bad "debootstrap is installed"
		finish
	elif nice -n 10 debootstrap --variant=minbase bookworm "$TMP/rootfs" "$mirror" \
		>"$TMP/debootstrap.log" 2>&1; then
		# As Debian's own images: no package cache, no lists.
		rm -rf "$TMP"/rootfs/var/cache/apt/archives/*.deb "$TMP"/rootfs/var/cache/apt/*.bin \
			"$TMP"/rootfs/var/lib/apt/lists/*
		img=$(tar -C "$TMP/rootfs" -c . | docker import -c 'CMD ["bash"]' - 2>"$TMP/import.log")
		rm -rf "$TMP/rootfs"
		for tag in "${missing[@]}"; do docker tag "$img" "$tag" 2>>"$TMP/import.log"; done
		if docker image inspect "${missing[@]}" >/dev/null 2>&1; then
			ok "made the base images ${missing[*]} (debootstrap --variant=minbase bookworm, docker import, $((SECONDS - t0)) s)"
		else
			bad "made the base images ${missing[*]} (docker import)"
			show "$TMP/import.log"
			finish
		fi
	else
		bad "debootstrap --variant=minbase bookworm from apt's mirror"
		show "$TMP/debootstrap.log"
		finish
	fi
fi

# Prometheus: Debian's package (2.42) on the local base, laid out as the
# upstream image (entrypoint /bin/prometheus, config
# /etc/prometheus/prometheus.yml, data volume /prometheus, user nobody). Its
# own tag, so a real prom/prometheus image is never shadowed; bump the tag
# when this recipe changes.
prom_image=forq-e2e/prometheus:debian-1
if docker image inspect "$prom_image" >/dev/null 2>&1; then
	ok "Prometheus stand-in $prom_image is there (kept from before)"
else
	t0=$SECONDS
	if nice -n 10 docker build -t "$prom_image" - >"$TMP/prom-build.log" 2>&1 <<'EOF'; then
FROM debian:bookworm
RUN apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
	&& rm -rf /var/lib/apt/lists/* \
	&& mkdir -p /prometheus && chown nobody:nogroup /prometheus \
	&& test -x /bin/prometheus
USER nobody
EXPOSE 9090
VOLUME ["/prometheus"]
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
EOF
		ok "built the Prometheus stand-in $prom_image from Debian's package ($((SECONDS - t0)) s)"
	else
		bad "build the Prometheus stand-in $prom_image"
		show "$TMP/prom-build.log"
		finish
	fi
fi

# compose.yaml as it is, plus: the stand-in's name, and Grafana in a profile
# (so that a plain `up -d` leaves it out) unless its image is here.
grafana_image=$(sed -n 's/^ *image: *\(grafana\/grafana:.*\)$/\1/p' compose.yaml)
{
	echo "services:"
	echo "  prometheus:"
	echo "    image: $prom_image"
} >"$TMP/compose.e2e.yaml"
if docker image inspect "$grafana_image" >/dev/null 2>&1; then
	with_grafana=1
else
	with_grafana=
	printf '  grafana:\n    profiles: ["grafana"]\n' >>"$TMP/compose.e2e.yaml"
fi
export COMPOSE_FILE="compose.yaml:$TMP/compose.e2e.yaml"

# Every setting given here: a .env in the checkout does not change the test.
read -r http_port tcp_port b_http_port b_tcp_port prom_port grafana_port < <(/usr/bin/python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
export FORQ_PUBLISH_ADDR=127.0.0.1 FORQ_HTTP_PORT=$http_port FORQ_TCP_PORT=$tcp_port \
	FORQ_B_HTTP_PORT=$b_http_port FORQ_B_TCP_PORT=$b_tcp_port \
	PROMETHEUS_PORT=$prom_port GRAFANA_PORT=$grafana_port FORQ_ADMIN_TOKEN="" \
	FORQ_DEMO_RATE=200 FORQ_WORKERS=2 FORQ_RESULTS=off GRAFANA_ADMIN_PASSWORD=admin
forqd_url=http://127.0.0.1:$http_port
forqd_b_url=http://127.0.0.1:$b_http_port
prom=http://127.0.0.1:$prom_port

# ---- 3. the image, built by compose from docker/Dockerfile -------------------
# BuildKit is compose v2's builder. Compose v1 uses it through the docker
# CLI (COMPOSE_DOCKER_CLI_BUILD=1) when that CLI can: with buildx, or the
# engine's own 20.10 client, which has BuildKit built in.
build_env=()
if [ $cv = 1 ]; then
	if docker buildx version >/dev/null 2>&1; then
		build_env=(COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1)
	elif [ -x /usr/bin/docker ] && [ "$(/usr/bin/docker version -f '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)" = 20 ]; then
		build_env=(COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1 "PATH=/usr/bin:$PATH")
	fi
fi
if [ $cv = 2 ] || [ ${#build_env[@]} -gt 0 ]; then builder=BuildKit; else builder="the classic builder"; fi
t0=$SECONDS
if env "${build_env[@]}" nice -n 10 timeout 900 "${compose[@]}" build forqd >"$TMP/build.log" 2>&1; then
	ok "compose built forq:local from docker/Dockerfile with $builder ($((SECONDS - t0)) s, $(docker image inspect -f '{{.Size}}' forq:local | awk '{printf "%d MB", $1 / 1e6}'))"
else
	bad "compose builds forq:local from docker/Dockerfile with $builder"
	show "$TMP/build.log" 30
	finish
fi
[ "$builder" = BuildKit ] || skip "no BuildKit client here: the image was built with the classic builder"

# ---- 4. the stack ----------------------------------------------------------------
compose_ok=1
t0=$SECONDS
if timeout 300 "${compose[@]}" up -d >"$TMP/up.log" 2>&1; then
	ok "compose up -d: nats, forq-shm, forq-shm-b, forqd, forqd-b, prometheus$([ -n "$with_grafana" ] && echo ", grafana") ($((SECONDS - t0)) s)"
else
	bad "compose up -d"
	show "$TMP/up.log"
	finish
fi
[ -n "$with_grafana" ] ||
	echo "note: Grafana left out: its image ($grafana_image) cannot be had here (no registry, no Debian package); dashboards/forq.json's queries are checked against Prometheus below"

cid() { "${compose[@]}" ps -q "$1" 2>/dev/null | head -n 1; }
state() { docker inspect -f "$2" "$(cid "$1")" 2>/dev/null; }
healthz() { curl -fsS -o /dev/null --max-time 2 "$forqd_url/healthz" 2>/dev/null; }
stats() { # stats FIELD: a figure from /stats (pending.total, done, ...)
	curl -fsS --max-time 5 "$forqd_url/stats" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
for k in sys.argv[1].split("."): d = d[k]
print(d)' "$1" 2>/dev/null
}
query() { # query EXPR: the first sample's value, or nothing
	curl -fsS --max-time 5 "$prom/api/v1/query" --data-urlencode "query=$1" 2>/dev/null |
		/usr/bin/python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null
}
forqd_logs() { "${compose[@]}" logs --no-color "${1:-forqd}" 2>&1; }
is_healthy() { [ "$(state "${1:-forqd}" '{{.State.Health.Status}}')" = healthy ]; }

# uids SERVICE: the uid of every process in its container, one a line.
uids() {
	docker exec "$(cid "$1")" sh -c 'for f in /proc/[0-9]*/status; do
		awk "/^Uid:/ { print \$2 }" "$f" 2>/dev/null; done' 2>/dev/null | sort -u
}
# rings HOLDER: the size of each ring in that holder's /dev/shm, "NAME:BYTES".
rings() { docker exec "$(cid "$1")" sh -c 'cd /dev/shm && for f in forq*; do [ -e "$f" ] || continue; echo "$f:$(stat -c %s "$f")"; done' 2>/dev/null | tr '\n' ' '; }
run_checks() { # counts check_dashboard.py's "ok"/"not ok" lines
	local line
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) bad "${line#not ok - }" ;;
		*) echo "$line" ;;
		esac
	done <"$1"
}
# README's lines (Running forq with Docker Compose), for compose v1 and v2.
readme_token_v2='TOKEN=$(docker compose exec -T forqd cat /var/lib/forq/admin-token)'
readme_token_v1='TOKEN=$(docker-compose exec -T forqd cat /var/lib/forq/admin-token)'
readme_shutdown='curl -X POST -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/shutdown'
[ $cv = 2 ] && readme_token=$readme_token_v2 || readme_token=$readme_token_v1
TOKEN=
# need_token: TOKEN, read with README's command unless admin_token did.
need_token() { [ -n "$TOKEN" ] || eval "$readme_token" 2>"$TMP/token.err"; }
# tasks.py URL IDS push N [QUEUE FIRST] pushes N tasks "i*3+1" (i from FIRST,
# 0 by default) over POST /tasks (/queues/QUEUE/tasks) and keeps their ids;
# tasks.py URL IDS check STATUS counts how many of them have STATUS (with
# the right result when done), printing the first few that do not;
# tasks.py - IDS results FILE: how many of them have a done line with the
# right result in FILE (a results file); tasks.py URL - memory DONE DEAD
# LATER KEY: memory_state's line. The host is not forqd's loopback: task
# routes need a token (TASK_TOKEN, the admin token read with README's
# command).
cat >"$TMP/tasks.py" <<'EOF'
import json, os, sys, urllib.error, urllib.request
url, ids_file, mode = sys.argv[1], sys.argv[2], sys.argv[3]
auth = {"Authorization": "Bearer " + os.environ["TASK_TOKEN"]} if os.environ.get("TASK_TOKEN") else {}
if mode == "push":
    ids, n = [], int(sys.argv[4])
    path = f"/queues/{sys.argv[5]}/tasks" if len(sys.argv) > 5 else "/tasks"
    first = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    for b in range(first, first + n, 100):
        body = json.dumps([{"payload": f"{i}*3+1"} for i in range(b, min(first + n, b + 100))]).encode()
        req = urllib.request.Request(url + path, data=body, method="POST", headers=auth)
        with urllib.request.urlopen(req, timeout=10) as r:
            ids += json.load(r)["ids"]
    json.dump(ids, open(ids_file, "w"))
    print(len(ids))
elif mode == "memory":
    # What only shared memory holds, in one line (see memory_state).
    def call(path, body=None):
        req = urllib.request.Request(url + path, data=body, headers=auth,
                                     method="POST" if body else "GET")
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, {}
    done, dead, later, key = sys.argv[4:8]
    q = call("/stats")[1]["queues"]["default"]
    out = [f"paused={str(q['paused']).lower()}", f"dead_letters={q['dead_letters']}",
           f"scheduled={q['scheduled']}"]
    for name, tid in (("done", done), ("dead", dead), ("later", later)):
        code, t = call(f"/tasks/{tid}")
        out.append(f"{name}={t.get('status', code)}" + (f":{t['result']}" if "result" in t else ""))
    code, r = call("/tasks", json.dumps({"payload": "2*21", "key": "compose:k"}).encode())
    held = r.get("duplicate") is True and r.get("ids") == [int(key)]
    out.append("key=" + ("held" if held else f"free:{code}"))
    print(" ".join(out))
elif mode == "results":
    done = {}
    for line in open(sys.argv[4]):
        r = json.loads(line)
        if r.get("status") == "done":
            done[r["id"]] = r
    good = sum(1 for i, tid in enumerate(json.load(open(ids_file)))
               if tid in done and done[tid].get("result") == str(i * 3 + 1))
    print(good)
else:
    want, good, wrong = sys.argv[4], 0, []
    for i, tid in enumerate(json.load(open(ids_file))):
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{url}/tasks/{tid}", headers=auth),
                                        timeout=10) as r:
                t = json.load(r)
        except Exception as e:  # noqa: BLE001 - a 404 is a lost task
            t = {"id": tid, "error": str(e)}
        if t.get("status") == want and (want != "done" or t.get("result") == str(i * 3 + 1)):
            good += 1
        elif len(wrong) < 3:
            wrong.append(t)
    print(good, *(json.dumps(w) for w in wrong))
EOF
ntasks=3000
wait_ready() { poll 60 0.25 healthz; } # forqd answers on its published port again
tasks_with() { TASK_TOKEN=$TOKEN /usr/bin/python3 "$TMP/tasks.py" "$forqd_url" "$TMP/ids.json" check "$1" 2>&1; }
all_done() { n=$(tasks_with "done"); [ "${n%% *}" = "$ntasks" ]; }
restarted() { [ "$(state forqd '{{.RestartCount}}')" -gt "$restarts" ]; }
stopped() { [ "$(state forqd '{{.State.Running}}')" = false ]; }
demo_runs() { [ "$(stats "done")" -gt 0 ] 2>/dev/null; }
# results_of SERVICE FILE: that host's results file, out of its volume.
results_of() { docker exec "$(cid "$1")" cat /var/lib/forq/results.jsonl >"$2" 2>/dev/null; }
# logs_since SERVICE T: what its container logged since T (date +%s.%N).
logs_since() { docker logs --since "$2" "$(cid "$1")" 2>&1; }
# up_d WHAT: `compose up -d`, then waits for forqd on its port; says why not.
up_d() {
	if ! timeout 120 "${compose[@]}" up -d >"$TMP/up.log" 2>&1; then
		bad "compose up -d ($1)"
		show "$TMP/up.log"
	elif ! wait_ready; then
		bad "forqd answers on 127.0.0.1:$http_port after compose up -d ($1)"
		forqd_logs | show /dev/stdin 10
	fi
}
alert_pid=    # prometheus's failing-task loop
later_queued= # queue_survives left a task delayed by an hour

# ---- the parts (ONLY=PATTERN runs those whose name matches; the engine, the
# images and `compose up -d` above always run) ----------------------------------

health() {
	for svc in nats forqd forqd-b; do
		if poll 90 1 is_healthy $svc; then
			ok "$svc is healthy (its HEALTHCHECK; $((SECONDS - t0)) s after up)"
		else
			bad "$svc is healthy (its HEALTHCHECK): $(state $svc '{{.State.Status}} {{.State.Health.Status}}')"
			forqd_logs $svc | show /dev/stdin
		fi
	done
	for svc in nats forq-shm forq-shm-b forqd forqd-b; do
		u=$(uids $svc | tr '\n' ' ')
		check "$svc: every process runs as a non-root user (uids: $u)" \
			bash -c '[ -n "$1" ] && ! grep -qw 0 <<<"$1"' _ "$u"
	done
	for h in forq-shm forq-shm-b; do
		r=$(rings $h)
		check "both rings of its host live in $h's /dev/shm (${r:-none}; shm_size 256m)" \
			bash -c 'grep -qE "(^| )forq:[1-9]" <<<"$1" && grep -qE "(^| )forq\.shared:[1-9]" <<<"$1"' _ "$r"
	done
	forqd_logs >"$TMP/forqd.log"
	check "host a journals its queue default in its volume (event=journal_opened dir=/var/lib/forq/journal/default ... fsync=always)" \
		grep -q "event=journal_opened dir=/var/lib/forq/journal/default .*fsync=always" "$TMP/forqd.log"
	check "... and not the queue shared (NATS holds it: event=upstream_connected queue=shared, one journal_opened)" \
		bash -c 'grep -q "event=upstream_connected queue=shared" "$1" && [ "$(grep -c "event=journal_opened" "$1")" = 1 ]' \
		_ "$TMP/forqd.log"

	curl -fsS -D "$TMP/metrics.h" -o "$TMP/metrics.txt" "$forqd_url/metrics" 2>"$TMP/curl.err"
	if grep -qi "^content-type: text/plain; version=0.0.4" "$TMP/metrics.h" &&
		grep -q "^forq_tasks_enqueued_total" "$TMP/metrics.txt"; then
		ok "/metrics on the published port 127.0.0.1:$http_port (text format 0.0.4)"
	else
		bad "/metrics on the published port 127.0.0.1:$http_port (text format 0.0.4)"
		show "$TMP/curl.err" 3
	fi
	/usr/bin/python3 tests/e2e/check_dashboard.py metrics --url "$forqd_url/metrics" >"$TMP/families.txt" 2>&1
	run_checks "$TMP/families.txt"
}
part health "NATS and both forqd hosts healthy, non-root, their rings in the holders, the journal, /metrics"

admin_token() {
	code=$(curl -s -o "$TMP/refused.txt" -w '%{http_code}' -X POST "$forqd_url/shutdown")
	check "a tokenless POST /shutdown from the host is refused ($code $(cat "$TMP/refused.txt"))" \
		[ "$code" = 401 -o "$code" = 403 ]
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer not-the-token-123" \
		"$forqd_url/shutdown")
	check "a POST /shutdown with a wrong token is refused ($code)" [ "$code" = 401 -o "$code" = 403 ]
	sleep 1
	check "forqd still runs after the refused shutdowns" healthz

	# README's lines (Running forq with Docker Compose), for compose v1 and v2.
	for line in "$readme_token_v2" "$readme_token_v1" "$readme_shutdown"; do
		check "README shows: $line" grep -qF -- "$line" README.md
	done
	TOKEN=
	eval "$readme_token" 2>"$TMP/token.err"
	if [[ $TOKEN =~ ^[0-9a-f]{48}$ ]]; then
		ok "README's token command for compose v$cv reads the token (48 hex digits)"
	else
		bad "README's token command for compose v$cv reads the token (48 hex digits; got '$TOKEN')"
		show "$TMP/token.err" 5
	fi
}
part admin_token "the admin token: shutdowns without it refused, read with README's command"

prometheus() {
	targets() {
		curl -fsS --max-time 5 "$prom/api/v1/targets" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    print(t["labels"]["job"], t["labels"]["instance"], t["health"])' 2>/dev/null
	}
	target_up() { [ "$(query 'count(up{job="forqd"} == 1)')" = 2 ]; }
	if poll 40 1 target_up; then
		ok "Prometheus scrapes both forqd hosts: targets UP ($(targets | awk '$1 == "forqd" { print $2, $3 }' | tr '\n' ' '))"
	else
		bad "Prometheus scrapes both forqd hosts: targets UP (targets: $(targets | tr '\n' ';'))"
		"${compose[@]}" logs --no-color prometheus 2>&1 | show /dev/stdin 10
	fi
	nalerts=$(grep -c '^ *- alert:' dashboards/alerts.yml)
	rules_ok() {
		curl -fsS --max-time 5 "$prom/api/v1/rules" 2>/dev/null >"$TMP/rules.json" &&
			/usr/bin/python3 - "$TMP/rules.json" "$1" <<'EOF'
import json, sys
rules = [r for g in json.load(open(sys.argv[1]))["data"]["groups"] for r in g["rules"] if r["type"] == "alerting"]
bad = [f'{r["name"]}: {r["health"]} {r.get("lastError", "")}' for r in rules if r["health"] != "ok"]
sys.exit(0 if len(rules) == int(sys.argv[2]) and not bad else 1)
EOF
	}
	if poll 30 1 rules_ok "$nalerts"; then
		ok "all $nalerts alert rules of dashboards/alerts.yml loaded and evaluated without error"
	else
		bad "all $nalerts alert rules of dashboards/alerts.yml loaded and evaluated without error"
		show "$TMP/rules.json" 5
	fi

	# Enough samples for the dashboard's rate() windows (scrapes every 5 s).
	enough_samples() {
		local v
		v=$(query 'min(count_over_time(up{job="forqd"}[1m]))')
		[ -n "$v" ] && [ "${v%.*}" -ge 5 ]
	}
	poll 60 1 enough_samples || echo "note: fewer than 5 samples of forqd after 60 s"
	# Both hosts, as the dashboard's instance variable's "All" (a regex).
	dash_instances='forqd:8080|forqd-b:8080'
	/usr/bin/python3 tests/e2e/check_dashboard.py live --prom "$prom" --job forqd --instance "$dash_instances" \
		--queues default,shared >"$TMP/dash.txt" 2>&1
	if grep -q '^not ok' "$TMP/dash.txt"; then
		# One more try after a scrape: a window can miss a sample at the edge.
		echo "note: a second run of the dashboard's queries after a scrape; the first one said:"
		grep '^not ok' "$TMP/dash.txt" | sed 's/^/    /'
		sleep 6
		/usr/bin/python3 tests/e2e/check_dashboard.py live --prom "$prom" --job forqd --instance "$dash_instances" \
			--queues default,shared >"$TMP/dash.txt" 2>&1
	fi
	echo "dashboards/forq.json against this Prometheus:"
	run_checks "$TMP/dash.txt"
	# Both hosts on the dashboard: its instance variable starts at All, and
	# "Throughput by instance" draws each host's queues.
	cat >"$TMP/hosts.py" <<'EOF'
import json, sys, urllib.parse, urllib.request
d = json.load(open("dashboards/forq.json"))
inst = [v for v in d["templating"]["list"] if v["name"] == "instance"][0]
p = [p for p in d["panels"] if p["title"] == "Throughput by instance"][0]
expr = p["targets"][0]["expr"].replace("$job", "forqd").replace("$instance", inst["allValue"])
expr = expr.replace("$queue", ".*")
q = urllib.parse.urlencode({"query": expr})
r = json.load(urllib.request.urlopen(sys.argv[1] + "/api/v1/query?" + q, timeout=5))
print(",".join(inst.get("current", {}).get("value", [])),
      *sorted({(s["metric"]["instance"] + "/" + s["metric"]["queue"]) for s in r["data"]["result"]}))
EOF
	hosts=$(/usr/bin/python3 "$TMP/hosts.py" "$prom" 2>&1)
	check "the dashboard starts at instance All and \"Throughput by instance\" shows both hosts' queues ($hosts)" \
		[ "$hosts" = '$__all forqd-b:8080/default forqd-b:8080/shared forqd:8080/default forqd:8080/shared' ]

	# The demo shows a healthy service: its failures well below the alert's 10%.
	ratio=$(query '(sum(rate(forq_tasks_failed_total{job="forqd"}[1m])) + sum(rate(forq_tasks_dead_total{job="forqd"}[1m])))
		/ (sum(rate(forq_tasks_done_total{job="forqd"}[1m])) + sum(rate(forq_tasks_failed_total{job="forqd"}[1m]))
		+ sum(rate(forq_tasks_dead_total{job="forqd"}[1m])))')
	check "the demo fails some tasks on purpose, well under ForqErrorRatioHigh's 10% (ratio ${ratio:-none})" \
		/usr/bin/python3 -c 'import sys; r = float(sys.argv[1]); sys.exit(not 0 < r < 0.05)' "${ratio:-nan}"
	alert_state=$(/usr/bin/python3 -c '
import json, sys
for g in json.load(open(sys.argv[1]))["data"]["groups"]:
    for r in g["rules"]:
        if r["name"] == "ForqErrorRatioHigh": print(r["state"])' "$TMP/rules.json" 2>/dev/null)
	check "ForqErrorRatioHigh is inactive under the demo (${alert_state:-unknown})" [ "$alert_state" = inactive ]

	# README's way to see an alert on purpose: failing tasks pushed beside the
	# demo (with -T here: no terminal). The loop ends with forqd's container,
	# which the next part recreates.
	readme_alert_v2="docker compose exec forqd sh -c 'for i in \$(seq 600); do forq push \$(yes 1/0 | head -n 200) >/dev/null; sleep 1; done'"
	readme_alert_v1=${readme_alert_v2/docker compose/docker-compose}
	for line in "$readme_alert_v2" "$readme_alert_v1"; do
		check "README shows: $line" grep -qF -- "$line" README.md
	done
	[ $cv = 2 ] && readme_alert=$readme_alert_v2 || readme_alert=$readme_alert_v1
	eval "${readme_alert/ exec / exec -T }" >"$TMP/alert.log" 2>&1 &
	alert_pid=$!
	PIDS+=("$alert_pid")
	alert_on() {
		curl -fsS --max-time 5 "$prom/api/v1/rules" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
s = [r["state"] for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"] if r["name"] == "ForqErrorRatioHigh"]
sys.exit(0 if s and s[0] in ("pending", "firing") else 1)' 2>/dev/null
	}
	t0=$SECONDS
	if poll 90 2 alert_on; then
		ok "README's failing-task loop puts ForqErrorRatioHigh in pending ($((SECONDS - t0)) s; it fires after its 5 minutes)"
	else
		bad "README's failing-task loop puts ForqErrorRatioHigh in pending within 90 s"
		show "$TMP/alert.log" 5
	fi
}
part prometheus "Prometheus: both targets UP, the alert rules, every dashboard query, the demo's error ratio, an alert on purpose"

grafana() {
	check "Grafana answers /api/health" poll 60 1 curl -fsS -o /dev/null "http://127.0.0.1:$grafana_port/api/health"
	check "Grafana has provisioned the forq dashboard" \
		bash -c 'curl -fsS "http://127.0.0.1:$1/api/search?query=forq" | grep -q "\"title\":\"forq\""' _ "$grafana_port"
}
[ -z "$with_grafana" ] || part grafana "Grafana answers and has provisioned the forq dashboard"

# ---- 5. the queue "default" outlives forqd's container: the holder, the journal ---
# Two layers. forqd's container dies (docker kill, kill -9 inside, the
# restart policy): the rings stay in its holder's /dev/shm and the next
# forqd re-attaches, everything kept. The holder dies too (what an engine
# restart or a reboot does): the journal in the volume brings back the
# pending tasks, and what only shared memory held is gone.
queue_survives() {
	# No consumers and no demo while the tasks sit in the queue: what is pending
	# stays countable; results go to a file in each host's volume. Both hosts
	# are recreated with these settings (each drains first); their holders stay.
	export FORQ_WORKERS=0 FORQ_DEMO_RATE=0 FORQ_RESULTS=/var/lib/forq/results.jsonl
	up_d "FORQ_WORKERS=0 FORQ_DEMO_RATE=0 FORQ_RESULTS=/var/lib/forq/results.jsonl"
	# The failing-task loop (prometheus's) went with the old container.
	if [ -n "$alert_pid" ]; then
		poll 20 0.5 bash -c '! kill -0 "$1" 2>/dev/null' _ "$alert_pid" || kill "$alert_pid" 2>/dev/null
		wait "$alert_pid" 2>/dev/null
	fi
	need_token

	# What only shared memory holds, made inside host a (loopback: no token): a
	# task done by a remote worker (its result for GET /tasks/{id}), a unique
	# key held 10 minutes after its task ended, a dead letter (a remote worker
	# whose handler fails all 3 deliveries), a task delayed by an hour; then the
	# queue paused.
	read -r id_done id_key id_dead id_later < <(docker exec "$(cid forqd)" sh -c '
		d=$(forq push "6*7") && k=$(forq push --key compose:k --key-window 10m "2*21") &&
		timeout 30 forq worker --handler arith --max-tasks 2 --wait-ms 200 >/dev/null 2>&1
		p=$(forq push poison) &&
		timeout 30 forq worker --handler "exec:exit 1" --max-tasks 3 --wait-ms 500 >/dev/null 2>&1
		l=$(forq push --delay 1h "7*6") && echo "$d $k $p $l"' 2>"$TMP/inside.err")
	later_queued=1
	curl -sS --max-time 10 -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" "$forqd_url/queues/default/pause"
	memory_state() {
		TASK_TOKEN=$TOKEN /usr/bin/python3 "$TMP/tasks.py" "$forqd_url" - memory \
			"${id_done:-0}" "${id_dead:-0}" "${id_later:-0}" "${id_key:-0}" 2>&1 | tail -n 1
	}
	kept="paused=true dead_letters=1 scheduled=1 done=done:42 dead=dead later=scheduled key=held"
	before=$(memory_state)
	check "host a's queue holds a done task, a held key, a dead letter, a delayed task, a pause ($before)" \
		[ "$before" = "$kept" ]
	[ -n "$id_later" ] || show "$TMP/inside.err" 5
	pushed=$(TASK_TOKEN=$TOKEN /usr/bin/python3 "$TMP/tasks.py" "$forqd_url" "$TMP/ids.json" push $ntasks 2>&1)
	pending=$(stats pending.total)
	check "$ntasks tasks pushed over POST /tasks (--fsync always: each answer after its fdatasync) and pending, the queue paused (pushed: $pushed, pending: $pending)" \
		[ "$pushed" = "$ntasks" -a "$pending" = "$ntasks" ]

	# docker kill of both forqd containers: their holders keep the rings.
	t=$(date +%s.%N)
	docker kill "$(cid forqd)" "$(cid forqd-b)" >/dev/null 2>&1
	sleep 2
	check "docker kill forqd forqd-b: both down, their holders forq-shm and forq-shm-b still run ($(state forqd '{{.State.Status}} exit {{.State.ExitCode}}'))" \
		bash -c '[ "$1 $2 $3 $4" = "false false true true" ]' _ "$(state forqd '{{.State.Running}}')" \
		"$(state forqd-b '{{.State.Running}}')" "$(state forq-shm '{{.State.Running}}')" \
		"$(state forq-shm-b '{{.State.Running}}')"
	up_d "after docker kill forqd forqd-b"
	logs_since forqd "$t" >"$TMP/start.log"
	check "compose up -d: forqd re-attached to its ring in forq-shm (event=queue_recovered name=/forq ... pending=$ntasks, no journal replay)" \
		bash -c 'grep -q "event=queue_recovered name=/forq .*pending=$2 " "$1" &&
			grep -q "event=journal_opened dir=/var/lib/forq/journal/default .*replay=0 " "$1"' _ "$TMP/start.log" "$ntasks"
	grep -q "event=queue_recovered name=/forq " "$TMP/start.log" || grep -E "event=(queue|journal)" "$TMP/start.log" | show /dev/stdin 4
	n=$(tasks_with pending)
	after=$(memory_state)
	check "... all $ntasks tasks still pending (${n%% *}) and everything else kept ($after)" \
		[ "${n%% *}" = $ntasks -a "$after" = "$kept" ]
	poll 30 0.5 bash -c 'curl -fsS -o /dev/null --max-time 2 "$1/healthz"' _ "$forqd_b_url"
	check "forqd-b re-attached to both of its rings in forq-shm-b (queue_recovered name=/forq and name=/forq.shared)" \
		bash -c 'l=$(docker logs --since "$1" "$2" 2>&1); grep -q "event=queue_recovered name=/forq " <<<"$l" &&
			grep -q "event=queue_recovered name=/forq.shared " <<<"$l"' _ "$t" "$(cid forqd-b)"

	# kill -9 of forqd inside the container: tini exits 137, the restart policy
	# (on-failure) starts the container again, and forqd re-attaches.
	restarts=$(state forqd '{{.RestartCount}}')
	t=$(date +%s.%N)
	docker exec "$(cid forqd)" sh -c 'kill -9 $(cat /proc/1/task/1/children)' 2>"$TMP/kill.err"
	poll 30 0.5 restarted && wait_ready
	pending=$(stats pending.total)
	after=$(memory_state)
	check "kill -9 of forqd inside: restarted by the restart policy (restarts $restarts -> $(state forqd '{{.RestartCount}}')), re-attached, $ntasks still pending ($pending), everything else kept ($after)" \
		bash -c '[ "$1" = "$2" -a "$3" -gt "$4" -a "$5" = "$6" ] && grep -q "event=queue_recovered name=/forq " <<<"$7"' _ \
		"$pending" "$ntasks" "$(state forqd '{{.RestartCount}}')" "$restarts" "$after" "$kept" "$(logs_since forqd "$t")"

	# docker kill of forqd and its holder: the rings go with the holder (its
	# /dev/shm is made anew when it starts), only the journal in the forq-data
	# volume holds the tasks now.
	t=$(date +%s.%N)
	docker kill "$(cid forqd)" "$(cid forq-shm)" >/dev/null 2>&1
	sleep 2
	check "docker kill forqd forq-shm (what an engine restart or a reboot does): both down ($(state forq-shm '{{.State.Status}} exit {{.State.ExitCode}}'))" \
		bash -c '[ "$1 $2" = "false false" ]' _ "$(state forqd '{{.State.Running}}')" "$(state forq-shm '{{.State.Running}}')"
	up_d "after docker kill forqd forq-shm"
	n=$(tasks_with pending)
	check "compose up -d after docker kill forqd forq-shm: forqd back, all $ntasks tasks still pending (${n%% *}; pending ${ntasks}: $(stats pending.total))" \
		[ "${n%% *}" = $ntasks ]
	logs_since forqd "$t" >"$TMP/start.log"
	# The pending tasks and the task delayed by an hour.
	replay=$((ntasks + 1))
	check "the rings went with the holder, the journal brought the tasks back (event=journal_opened ... replay=$replay, not queue_recovered)" \
		bash -c 'grep -q "event=journal_opened dir=/var/lib/forq/journal/default .*replay=$2 " "$1" &&
			grep -q "event=queue_created name=/forq " "$1" && ! grep -q "event=queue_recovered" "$1"' _ "$TMP/start.log" "$replay"
	grep -q "replay=$replay " "$TMP/start.log" || grep -E "event=(queue|journal)" "$TMP/start.log" | show /dev/stdin 4
	# README's Journal section: the journal holds no pause, dead letters,
	# results or keys of finished tasks; the delayed task comes back, still
	# delayed.
	lost="paused=false dead_letters=0 scheduled=1 done=404 dead=404 later=scheduled key=free:202"
	after=$(memory_state)
	check "... and what only shared memory held is gone, the delayed task kept, as README says ($after)" [ "$after" = "$lost" ]

	# Killed again (the ring in forq-shm is kept), and back with consumers:
	# every task the journal brought back runs, with its result.
	docker kill "$(cid forqd)" >/dev/null 2>&1
	export FORQ_WORKERS=2 FORQ_DEMO_RATE=200
	up_d "after docker kill, with consumers and the demo"
	if poll 60 2 all_done; then
		ok "killed again, up -d with 2 consumers: all $ntasks tasks done with their results (GET /tasks/{id})"
	else
		bad "killed again, up -d with 2 consumers: all $ntasks tasks done with their results (${n%% *})"
		echo "    $n"
	fi
	results_of forqd "$TMP/results-a.jsonl"
	n=$(/usr/bin/python3 "$TMP/tasks.py" - "$TMP/ids.json" results "$TMP/results-a.jsonl" 2>&1)
	check "every id the producer got back has a done line with its result in the volume's results file ($n of $ntasks)" \
		[ "$n" = "$ntasks" ]
}
part queue_survives "the queue default outlives forqd's container: the holder, the journal"

# ---- 5b. two hosts share the queue "shared" through NATS ----------------------------
# Pushed to host a only; each host's bridge takes what its consumers have
# room for from the stream forq-shared. A result line is in the results
# file of the host that ran the task, under that host's own id (a push
# answers stream sequences), so the tasks are told by their payloads.
two_hosts() {
	need_token
	if [ "$FORQ_RESULTS" = off ]; then # run without queue_survives: results into the volume
		export FORQ_RESULTS=/var/lib/forq/results.jsonl
		up_d "FORQ_RESULTS=/var/lib/forq/results.jsonl"
	fi
	nshared=2000
	first=1000000
	pushed=$(TASK_TOKEN=$TOKEN /usr/bin/python3 "$TMP/tasks.py" "$forqd_url" "$TMP/shared-ids.json" push \
		$nshared shared $first 2>&1)
	check "$nshared tasks pushed to host a's POST /queues/shared/tasks, published to NATS ($pushed)" \
		[ "$pushed" = "$nshared" ]
	cat >"$TMP/shared.py" <<'EOF'
import json, sys
first, n = int(sys.argv[1]), int(sys.argv[2])
want = {f"{i}*3+1": str(i * 3 + 1) for i in range(first, first + n)}
seen, per_host = set(), []
for path in sys.argv[3:]:
    ran = set()
    for line in open(path):
        r = json.loads(line)
        if r.get("queue") == "shared" and r.get("status") == "done" and want.get(r.get("task")) == r.get("result"):
            ran.add(r["task"])
    per_host.append(len(ran))
    seen |= ran
print(len(seen), *per_host)
EOF
	shared_done() {
		results_of forqd "$TMP/results-a.jsonl" && results_of forqd-b "$TMP/results-b.jsonl" &&
			shared=$(/usr/bin/python3 "$TMP/shared.py" $first $nshared "$TMP/results-a.jsonl" \
				"$TMP/results-b.jsonl" 2>&1) && [ "${shared%% *}" = "$nshared" ]
	}
	shared=
	poll 60 1 shared_done
	read -r all on_a on_b <<<"$shared"
	check "every one of the $nshared tasks has a done result on host a or b (${all:-0})" [ "${all:-0}" = "$nshared" ]
	check "both hosts ran some of them (host a ${on_a:-0}, host b ${on_b:-0})" \
		[ "${on_a:-0}" -gt 0 -a "${on_b:-0}" -gt 0 ]
}
part two_hosts "two hosts share the queue shared through NATS"

# ---- 6. a remote shutdown stays down ---------------------------------------------
remote_shutdown() {
	poll 10 0.5 demo_runs
	TOKEN=
	eval "$readme_token" 2>"$TMP/token.err"
	# The task delayed by an hour (back from the journal) would outlast the
	# drain (tasks_unfinished): cancelled first.
	if [ -n "$later_queued" ]; then
		out=$(curl -s -X POST -H "Authorization: Bearer $TOKEN" "$forqd_url/queues/default/tasks/${id_later:-0}/cancel")
		check "the task delayed by an hour is cancelled ($out)" grep -q '"status":"cancelled"' <<<"$out"
	fi
	out=$(eval "${readme_shutdown/127.0.0.1:8080/127.0.0.1:$http_port}" 2>"$TMP/curl.err")
	check "README's shutdown command is accepted ($out)" grep -q '"status":"shutting down"' <<<"$out"
	poll 45 0.5 stopped
	check "forqd drained and exited 0 ($(state forqd '{{.State.Status}} exit {{.State.ExitCode}}'))" \
		[ "$(state forqd '{{.State.Status}}/{{.State.ExitCode}}')" = exited/0 ]
	restarts=$(state forqd '{{.RestartCount}}')
	sleep 5
	check "forqd stays down after the remote shutdown (5 s later: $(state forqd '{{.State.Status}}'), no restart)" \
		[ "$(state forqd '{{.State.Status}}/{{.RestartCount}}')" = "exited/$restarts" ]
	# The last run's log: from its last start to its exit.
	forqd_logs | awk '/event=started/ { n = 0 } { l[n++] = $0 } END { for (i = 0; i < n; i++) print l[i] }' \
		>"$TMP/last.log"
	if grep -q "event=exited code=0" "$TMP/last.log" && ! grep -qE "level=(warn|error)" "$TMP/last.log"; then
		ok "the demo's run and drain logged no warning (no tasks_not_pushed)"
	else
		bad "the demo's run and drain logged no warning (no tasks_not_pushed)"
		show "$TMP/last.log" 8
	fi
	check "the clean exit checkpointed the journal (event=journal_checkpoint)" \
		grep -q "event=journal_checkpoint" "$TMP/last.log"
	check "the clean exit removed both rings from forq-shm's /dev/shm (left: $(rings forq-shm))" \
		bash -c '[ -z "$1" ] && [ "$2" = true ]' _ "$(rings forq-shm)" "$(state forq-shm '{{.State.Running}}')"
}
part remote_shutdown "a remote shutdown stays down"

# ---- 7. down -v leaves nothing behind ---------------------------------------------
down_v() {
	if timeout 120 "${compose[@]}" down -v >"$TMP/down.log" 2>&1; then
		left=$(
			docker ps -aq --filter "label=com.docker.compose.project=$project"
			docker volume ls -q --filter "label=com.docker.compose.project=$project"
			docker volume ls -q | grep "^${project}_"
			docker network ls -q --filter "label=com.docker.compose.project=$project"
			docker network ls --format '{{.Name}}' | grep "^${project}_"
		)
		if [ -z "$left" ]; then
			ok "compose down -v leaves no container, volume or network of the project"
		else
			bad "compose down -v leaves no container, volume or network of the project: $left"
		fi
		compose_ok=
	else
		bad "compose down -v"
		show "$TMP/down.log"
	fi
}
part down_v "compose down -v leaves nothing behind"

finish
