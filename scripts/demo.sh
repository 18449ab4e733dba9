#!/usr/bin/env bash
# demo.sh — builds forq and runs forqd with a demo workload: a built-in
# producer pushes 2,000 arithmetic tasks a second (a few fail on purpose) to
# 2 consumer processes. Metrics on http://127.0.0.1:8080/metrics, the status
# page on http://127.0.0.1:8080/, results in demo-results.jsonl.
# Ctrl+C drains the queue and exits. Installs missing packages as root.
set -eu
cd "$(dirname "$0")/.."
bash scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j 2 --target forqd forq
echo "forqd: status page http://127.0.0.1:8080/  metrics http://127.0.0.1:8080/metrics" >&2
exec build/service/forqd --demo "${RATE:-2000}" --workers 2 --results demo-results.jsonl "$@"
