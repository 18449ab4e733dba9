#!/usr/bin/env bash
# deps.sh — installs what forq needs on Debian 12, when run as root; else
# says what to install. Usage: scripts/deps.sh build|test|bench
set -eu
build_pkgs="build-essential cmake pkg-config libmicrohttpd-dev libcjson-dev libnats-dev libinih-dev libcmocka-dev"
# FORQ_BUILD_TESTS=OFF (the Docker image's build stage): no test framework.
[ "${FORQ_BUILD_TESTS:-ON}" = OFF ] && build_pkgs=${build_pkgs% libcmocka-dev}
# Tests start real servers and tools: Prometheus (promtool), curl, python3,
# Chromium (status page), Node.js (the proc: example in JavaScript), docker-compose (config check and the compose
# stack), clang (fuzzers), iproute2 (network namespaces), systemd (unit
# check), valgrind, nats-server (test_upstream's JetStream cluster);
# test_compose runs a Docker engine (docker.io: dockerd, containerd, runc,
# tini) and makes its base images with debootstrap.
test_pkgs="$build_pkgs nats-server curl python3 python3-pytest python3-venv nodejs prometheus chromium docker-compose clang libclang-rt-14-dev iproute2 procps systemd valgrind debootstrap"
# An engine installed some other way (Docker's own docker-ce packages, which
# conflict with docker.io) is left as it is.
command -v dockerd >/dev/null 2>&1 || test_pkgs="$test_pkgs docker.io"
# bench/handlers.sh compares forq with Celery and RQ (Debian's) on a real
# redis-server; bench/compare.sh also runs beanstalkd; bench/nats_baseline a
# JetStream nats-server.
bench_pkgs="$build_pkgs python3 python3-celery python3-rq python3-redis redis-server beanstalkd nats-server"
case "${1:-build}" in
build) want=$build_pkgs ;;
test) want=$test_pkgs ;;
bench) want=$bench_pkgs ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "forq needs these Debian packages:$missing" >&2
	echo "install them with: sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
