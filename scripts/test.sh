#!/usr/bin/env bash
# test.sh — builds forq and runs every test (unit and end-to-end).
# Installs missing Debian packages when run as root. Options through env:
#   BUILD=dir (default build), SANITIZE=1 (ASan+UBSan build), JOBS=n.
set -eu
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
build=${BUILD:-build}
flags="-DCMAKE_BUILD_TYPE=RelWithDebInfo"
[ "${SANITIZE:-0}" = 1 ] && flags="$flags -DFORQ_SANITIZE=ON"
cmake -S . -B "$build" $flags >/dev/null
cmake --build "$build" -j "${JOBS:-2}"
cd "$build"
ctest --output-on-failure --timeout 900 ${CTEST_ARGS:-}
