#!/usr/bin/env bash
# Offline checks of the deployment files: compose.yaml, docker/Dockerfile,
# dashboards/{prometheus,alerts,alerts_test}.yml, dashboards/forq.json, the
# Grafana provisioning and dashboards/forqd.service. No Docker engine, Grafana
# or network server is needed.
#
#   tests/e2e/test_deploy_files.sh
#
# As root it installs missing tools with apt-get (docker-compose, prometheus
# for promtool, systemd for systemd-analyze, python3-yaml); otherwise each
# check whose tool is missing is skipped. The Dockerfile lint is a part only
# where npx exists (npm's dockerfile-utils, fetched from npm's registry, which
# CI has not: there a note says it is left out, and test_compose builds the
# Dockerfile with a real engine). Parts (for ONLY=, see lib.sh): compose,
# dockerfile, entrypoint, dockerfile_lint, prometheus_files, grafana,
# systemd_unit. Last line: "N passed, N failed" (", N skipped" when a tool is
# missing); exits 1 if any check failed, else 77 if one was skipped.
set -u
. "$(dirname "$0")/lib.sh"

root=$FORQ_SRC
cd "$root" || exit 2
tmp=$TMP

# need TOOL PACKAGE: installs PACKAGE when TOOL is missing and we are root.
need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing $2 for $1"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" \
			>"$tmp/apt.log" 2>&1 ||
			{ apt-get update -q >/dev/null 2>&1 &&
			  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$2" \
				>"$tmp/apt.log" 2>&1; }
	fi
	command -v "$1" >/dev/null 2>&1
}

# ---- compose ---------------------------------------------------------------
compose() {
	skip_unless "docker-compose not available" need docker-compose docker-compose
	check "compose.yaml validates (docker-compose config -q)" \
		docker-compose -f compose.yaml --project-directory "$root" config -q
	# Without .env every variable must have a default: an unset one shows up
	# as a warning ("variable is not set"). An empty env file stands in for a
	# fresh clone even where a developer has a .env.
	: >"$tmp/empty.env"
	check "compose.yaml needs no .env (every variable has a default)" \
		bash -c 'env -i PATH="$PATH" HOME="$HOME" docker-compose -f compose.yaml \
			--env-file "$1/empty.env" config >"$1/c.yml" 2>"$1/err" || { cat "$1/err"; exit 1; }
			! grep -i "not set" "$1/err"' _ "$tmp"
	check "compose.yaml: forqd runs the demo, has shm_size and the admin token" \
		bash -c 'grep -q -- "- --demo" "$1/c.yml" && grep -q "shm_size: 256m" "$1/c.yml" &&
			grep -qE "FORQ_ADMIN_TOKEN: .?.?$" "$1/c.yml" &&
			grep -q "GF_AUTH_ANONYMOUS_ENABLED: .true" "$1/c.yml"' _ "$tmp"
	# POST /shutdown ends forqd with exit 0: a policy that restarts on exit 0
	# (unless-stopped, always) would undo it. A crash must still restart it.
	check "compose.yaml: both forqd hosts restart on failure only (a remote shutdown stays down)" \
		bash -c 'for h in forqd forqd-b; do sed -n "/^  $h:/,/^  [a-z]/p" "$1/c.yml" |
			grep -qx "    restart: on-failure" || { echo "$h"; exit 1; }; done' _ "$tmp"
	# Each host's rings live in its own holder's /dev/shm, so they outlive
	# forqd's container: a holder per host, joined with ipc: service:, with
	# room for both rings, running only sleep, no network, non-root, kept
	# running; forqd starts after it.
	check "compose.yaml: each forqd host's /dev/shm is its own holder's (forq-shm, forq-shm-b: ipc shareable, shm_size 256m, only sleep, no network, non-root, unless-stopped)" \
		bash -c 'for p in forqd:forq-shm forqd-b:forq-shm-b; do h=${p%%:*} s=${p#*:}
			sed -n "/^  $h:/,/^  [a-z]/p" "$1/c.yml" >"$1/h.yml"
			sed -n "/^  $s:/,/^  [a-z]/p" "$1/c.yml" >"$1/s.yml"
			grep -qx "    ipc: service:$s" "$1/h.yml" && ! grep -q "shm_size:" "$1/h.yml" &&
			grep -A1 -x "      $s:" "$1/h.yml" | grep -qx "        condition: service_started" &&
			grep -qx "    ipc: shareable" "$1/s.yml" && grep -qx "    shm_size: 256m" "$1/s.yml" &&
			grep -qx "    - sleep" "$1/s.yml" && grep -qx "    - infinity" "$1/s.yml" &&
			grep -qx "    network_mode: none" "$1/s.yml" && grep -qx "    read_only: true" "$1/s.yml" &&
			grep -qxE "    user: .?[1-9][0-9]*:[1-9][0-9]*.?" "$1/s.yml" &&
			grep -qx "    restart: unless-stopped" "$1/s.yml" &&
			! grep -qE "^    (ports|volumes):" "$1/s.yml" || { echo "$h / $s"; exit 1; }
			done' _ "$tmp"
	# Each host's queue "default" also survives its holder (an engine
	# restart, a reboot) through the journal in its own volume: the journal
	# flags, a volume at /var/lib/forq, and the file that declares the queues.
	check "compose.yaml: each forqd host journals (--fsync always) in its own volume, docker/forqd.conf" \
		bash -c 'for h in forqd forqd-b; do sed -n "/^  $h:/,/^  [a-z]/p" "$1/c.yml" >"$1/h.yml"
			grep -qx "    - --journal" "$1/h.yml" && grep -qx "    - /var/lib/forq/journal" "$1/h.yml" &&
			grep -qx "    - --fsync" "$1/h.yml" && grep -qx "    - always" "$1/h.yml" &&
			grep -qE "^    - /etc/forq/forqd.conf$" "$1/h.yml" &&
			grep -qE "docker/forqd.conf:/etc/forq/forqd.conf:ro$" "$1/h.yml" &&
			grep -qE "^    - forq-data(-b)?:/var/lib/forq(:rw)?$" "$1/h.yml" || { echo "$h"; exit 1; }
			done
			[ "$(grep -cE "^    - forq-data(-b)?:/var/lib/forq(:rw)?$" "$1/c.yml")" = 2 ] &&
			grep -q "^  forq-data-b:" "$1/c.yml"' _ "$tmp"
	check "compose.yaml: nats runs JetStream in its volume as user nats, healthy before the hosts start" \
		bash -c 'sed -n "/^  nats:/,/^  [a-z]/p" "$1/c.yml" >"$1/n.yml"
			grep -qx -- "    - --jetstream" "$1/n.yml" && grep -qx "    user: nats" "$1/n.yml" &&
			grep -qE "^    - nats-data:/var/lib/nats(:rw)?$" "$1/n.yml" && grep -q "healthz" "$1/n.yml" &&
			! grep -q "^    ports:" "$1/n.yml" &&
			for h in forqd forqd-b; do sed -n "/^  $h:/,/^  [a-z]/p" "$1/c.yml" |
				grep -A2 "^      nats:" | grep -q "condition: service_healthy" || exit 1; done' _ "$tmp"
	check "docker/forqd.conf: the queue default local, the queue shared on nats://nats:4222" \
		bash -c 'f=docker/forqd.conf; grep -qx "\[queue default\]" $f && grep -qx "\[queue shared\]" $f &&
			sed -n "/^\[queue shared\]/,\$p" $f | grep -qx "upstream = nats://nats:4222" &&
			! sed -n "/^\[queue default\]/,/^\[/p" $f | grep -q "^upstream"'
	check "prometheus.yml scrapes both forqd hosts" \
		grep -qF 'targets: ["forqd:8080", "forqd-b:8080"]' dashboards/prometheus.yml
	check "compose.yaml, .env.example, entrypoint: the token command for compose v1 and v2" \
		bash -c 'for f in compose.yaml .env.example docker/entrypoint.sh; do
			grep -qF "docker compose exec -T forqd cat /var/lib/forq/admin-token" $f &&
			grep -qF "docker-compose exec -T forqd cat /var/lib/forq/admin-token" $f ||
			{ echo "$f lacks one"; exit 1; }; done'
	check "compose.yaml: every mounted file exists in the repository" \
		bash -c 'for p in $(grep -oE "^\s+- \./[^:]+" compose.yaml | sed "s/^ *- //"); do
			[ -e "$p" ] || { echo "missing $p"; exit 1; }; done'
	check ".env.example lists exactly the variables compose.yaml uses" \
		bash -c 'diff <(grep -oE "\\$\\{[A-Z_]+" compose.yaml | cut -c3- | sort -u) \
			<(sed -n "s/^\\([A-Z_]*\\)=.*/\\1/p" .env.example | sort -u)'
}
part compose "compose.yaml: valid, no .env needed, what it mounts exists"

# ---- Dockerfile ------------------------------------------------------------
dockerfile() {
	check "Dockerfile: multi-stage bookworm build, slim runtime with nats-server, non-root, healthcheck" \
		bash -c 'f=docker/Dockerfile
			grep -qE "^FROM debian:bookworm AS build" $f &&
			grep -qE "^FROM debian:bookworm-slim" $f &&
			grep -qE "^RUN PREFIX=[^ ]+ bash \.ci/build\.sh" $f &&
			grep -qE "^USER [1-9]" $f && grep -q "nats-server" $f &&
			grep -qE "^EXPOSE 8080 7070" $f &&
			grep -qE "^STOPSIGNAL SIGTERM" $f &&
			grep -qE "^HEALTHCHECK .*" $f && grep -q "/healthz" $f &&
			grep -qE "^COPY --from=build" $f &&
			! sed -n "/^FROM debian:bookworm-slim/,\$p" $f | grep -E "cmake|gcc|build-essential|-dev\b"'
	# A "# syntax=" parser directive makes BuildKit (compose v2's builder)
	# fetch a frontend image from a registry: offline, every build fails.
	check "Dockerfile: no syntax directive (BuildKit builds it offline)" \
		bash -c '! grep -niE "^#[[:space:]]*syntax[[:space:]]*=" docker/Dockerfile'
	check "Dockerfile: the build stage installs no test framework (FORQ_BUILD_TESTS=OFF for deps.sh)" \
		env FORQ_BUILD_TESTS=OFF bash -c '
			sed -n "/^FROM debian:bookworm AS build/,/^FROM /p" docker/Dockerfile |
				grep -qE "^ENV .*FORQ_BUILD_TESTS=OFF" || { echo "no ENV FORQ_BUILD_TESTS=OFF"; exit 1; }
			eval "$(grep -E "^build_pkgs=|FORQ_BUILD_TESTS:-ON" scripts/deps.sh)"
			case $build_pkgs in *cmocka*) echo "deps.sh build installs: $build_pkgs"; exit 1 ;; esac'
}
part dockerfile "docker/Dockerfile: what the image is built from and runs as"

# The entrypoint, with a stand-in forqd that prints its arguments: without
# FORQ_ADMIN_TOKEN it makes a private random token once and passes its file;
# with one it passes nothing extra. Then the real forqd takes such a file.
ep() { env FORQD="$tmp/fake-forqd" FORQ_TOKEN_PATH="$tmp/admin-token" "$@" sh docker/entrypoint.sh --http 0.0.0.0:8080; }
entrypoint() {
	printf '#!/bin/sh\necho "args: $*"\necho "env: ${FORQ_ADMIN_TOKEN-unset}"\n' >"$tmp/fake-forqd"
	chmod +x "$tmp/fake-forqd"
	check "entrypoint: without a token it makes one (48 hex digits, mode 0600) and passes its file" \
		bash -c 'out=$1; grep -qx "args: --admin-token-file $2/admin-token --http 0.0.0.0:8080" <<<"$out" &&
			grep -qx "env: unset" <<<"$out" && grep -qxE "[0-9a-f]{48}" "$2/admin-token" &&
			[ "$(stat -c %a "$2/admin-token")" = 600 ]' _ "$(ep FORQ_ADMIN_TOKEN= 2>/dev/null)" "$tmp"
	first=$(cat "$tmp/admin-token" 2>/dev/null)
	ep FORQ_ADMIN_TOKEN= >/dev/null 2>&1
	check "entrypoint: the token is kept across restarts" \
		bash -c '[ -n "$1" ] && [ "$1" = "$(cat "$2")" ]' _ "$first" "$tmp/admin-token"
	rm -f "$tmp/admin-token"
	ep FORQ_ADMIN_TOKEN=given-token-123 >"$tmp/given" 2>&1
	check "entrypoint: a given FORQ_ADMIN_TOKEN is used as it is" \
		bash -c 'grep -qx "args: --http 0.0.0.0:8080" "$1" && grep -qx "env: given-token-123" "$1" &&
			[ ! -e "$2/admin-token" ]' _ "$tmp/given" "$tmp"
	ep FORQ_ADMIN_TOKEN= >/dev/null 2>&1
	skip_unless "no forqd at $FORQD" test -x "$FORQD"
	printf '1+1\n' >"$tmp/one.txt"
	check "forqd takes the token file the entrypoint makes" \
		"$FORQD" --admin-token-file "$tmp/admin-token" --shm-name "/forq-deploy-$$" --http off \
		--tcp off --workers 1 --tasks "$tmp/one.txt" --exit-when-done --results off
}
part entrypoint "docker/entrypoint.sh and the admin token it makes"

dockerfile_lint() {
	# dockerfile-utils exits 1 on errors; warnings are printed, so fail on any output.
	check "Dockerfile lints clean (npx dockerfile-utils lint)" \
		bash -c 'out=$(timeout 300 npx --yes dockerfile-utils lint docker/Dockerfile 2>/dev/null) &&
			[ -z "$out" ] || { echo "$out"; exit 1; }'
}
if command -v npx >/dev/null; then
	part dockerfile_lint "docker/Dockerfile lints clean"
else
	echo "note: dockerfile_lint left out: no npx here (npm's dockerfile-utils); test_compose builds docker/Dockerfile"
fi

# ---- Prometheus ------------------------------------------------------------
prometheus_files() {
	skip_unless "promtool not available" need promtool prometheus
	check "promtool check config dashboards/prometheus.yml" \
		promtool check config dashboards/prometheus.yml
	check "promtool check rules dashboards/alerts.yml" \
		promtool check rules dashboards/alerts.yml
	check "promtool test rules dashboards/alerts_test.yml" \
		promtool test rules dashboards/alerts_test.yml
	# Each alert has a test in which it fires (an exp_alerts with labels).
	check "every alert in alerts.yml fires in alerts_test.yml" \
		bash -c 'for a in $(sed -n "s/^ *- alert: *//p" dashboards/alerts.yml); do
			awk -v a="$a" "/alertname:/ { cur = \$2 } /exp_labels:/ && cur == a { ok = 1 } END { exit !ok }" \
				dashboards/alerts_test.yml || { echo "no firing test for $a"; exit 1; }; done'
}
part prometheus_files "Prometheus config, alert rules and their unit tests (promtool)"

# ---- Grafana dashboard -----------------------------------------------------
grafana() {
	need python3 python3 >/dev/null || true
	python3 -c 'import yaml' 2>/dev/null || { [ "$(id -u)" = 0 ] &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-yaml >/dev/null 2>&1; }
	if command -v python3 >/dev/null 2>&1; then
		python3 tests/e2e/check_dashboard.py static >"$tmp/dash" 2>&1
		rc=$?
		while IFS= read -r line; do
			case $line in
			"ok - "*) ok "${line#ok - }" ;;
			"not ok - "*) bad "${line#not ok - }" ;;
			*) echo "$line" ;;
			esac
		done <"$tmp/dash"
		if [ $rc -ne 0 ] && ! grep -q '^not ok' "$tmp/dash"; then
			bad "check_dashboard.py static ran"
			sed 's/^/    /' "$tmp/dash"
		fi
	else
		bad "python3 is needed to check dashboards/forq.json"
	fi
	check "Grafana dashboard provider points where compose.yaml mounts forq.json" \
		bash -c 'p=$(sed -n "s/^ *path: *//p" dashboards/grafana/provisioning/dashboards/forq.yaml)
			grep -q "dashboards/forq.json:$p/forq.json" compose.yaml'
}
part grafana "dashboards/forq.json and its Grafana provisioning"

# ---- systemd ---------------------------------------------------------------
systemd_unit() {
	unit=dashboards/forqd.service
	if skip_unless "systemd-analyze not available" need systemd-analyze systemd; then
		bin=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
		if [ ! -x "$bin" ]; then
			# verify insists the binary exists: check a copy that runs /bin/true
			# with the same arguments, so every other directive is still checked.
			echo "note: $bin is not installed; verifying a copy with ExecStart=/bin/true"
			sed "s#^ExecStart=$bin#ExecStart=/bin/true#" "$unit" >"$tmp/forqd.service"
			unit=$tmp/forqd.service
		fi
	fi
	# verify exits 0 on unknown keys and bad values, and only prints them:
	# any output is a failure.
	check "systemd-analyze verify dashboards/forqd.service" \
		bash -c 'out=$(systemd-analyze verify "$1" 2>&1) && [ -z "$out" ] || { echo "$out"; exit 1; }' _ "$unit"
	check "forqd.service: restart on failure, hardening, /dev/shm left usable" \
		bash -c 'u=dashboards/forqd.service
			for k in Type=notify NotifyAccess=main Restart=on-failure NoNewPrivileges=yes ProtectSystem=strict \
				ProtectHome=yes PrivateTmp=yes KillMode=mixed; do
				grep -qx "$k" $u || { echo "missing $k"; exit 1; }; done
			grep -qE "^User=|^DynamicUser=yes" $u || { echo "no User="; exit 1; }
			! grep -qE "^(PrivateIPC|RemoveIPC)=yes" $u || { echo "hides or removes the ring"; exit 1; }
			! grep -qE "^(InaccessiblePaths|TemporaryFileSystem)=.*/dev/shm" $u'
}
part systemd_unit "dashboards/forqd.service (systemd-analyze verify)"

finish
