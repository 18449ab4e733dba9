#!/usr/bin/env bash
# build.sh — the release build CI and the Docker image share: installs build
# dependencies when root, builds, installs to $PREFIX (default /usr/local).
set -eu
cd "$(dirname "$0")/.."
bash scripts/deps.sh build
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DFORQ_BUILD_TESTS=OFF \
	-DFORQ_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX="${PREFIX:-/usr/local}" >/dev/null
cmake --build build-release -j "${JOBS:-2}"
cmake --install build-release
