#!/usr/bin/env bash
# reliability.sh — CI proof of "an accepted task is never lost":
#   (a) a FORQ_FAILPOINTS=ON build runs tests/e2e/test_chaos.sh in full: chaos,
#       kill -9 of forqd, the poison task and the crash-point sweep;
#   (b) the test of the tests: a FORQ_NO_REPAIR=ON build (repair switched
#       off) runs the chaos and kill -9 parts with EXPECT_LOSS=1, which pass
#       only if they DO see the loss.
# On a fresh Debian 12 machine, as root, in about 3 minutes on 2 cores.
# Build trees: build-failpoints, build-norepair (JOBS, default 2).
set -eu
cd "$(dirname "$0")/.."

build() { # build DIR CMAKE-FLAGS...
	local dir=$1
	shift
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFORQ_BUILD_TESTS=OFF \
		-DFORQ_BUILD_BENCH=OFF "$@" >/dev/null
	cmake --build "$dir" -j "${JOBS:-2}" --target forqd forq_static
}

echo "== reliability (a): failpoints build, chaos + kill -9 + poison + crash-point sweep"
build build-failpoints -DFORQ_FAILPOINTS=ON -DFORQ_NO_REPAIR=OFF
FORQD=$PWD/build-failpoints/service/forqd FORQD_FP=$PWD/build-failpoints/service/forqd \
	LIBFORQ=$PWD/build-failpoints/core/libforq.a LIBFORQ_FP=$PWD/build-failpoints/core/libforq.a \
	FORQ_SRC=$PWD timeout 600 bash tests/e2e/test_chaos.sh

echo "== reliability (b): repair switched off, the chaos tests must see a loss"
build build-norepair -DFORQ_NO_REPAIR=ON -DFORQ_FAILPOINTS=OFF
FORQD=$PWD/build-norepair/service/forqd LIBFORQ=$PWD/build-norepair/core/libforq.a \
	FORQ_SRC=$PWD EXPECT_LOSS=1 timeout 300 bash tests/e2e/test_chaos.sh
