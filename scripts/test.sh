#!/usr/bin/env bash
# test.sh - the README's test command. Installs missing Debian packages (as
# root), configures and builds, starts a private redis-server on a free
# loopback port, runs every test with CTest (two at a time where
# tests/CMakeLists.txt allows: rc_one_at_a_time), and stops the server even on
# failure. Exits non-zero on any failure.
#
#   bash scripts/test.sh              gcc build in build/
#   SANITIZE=1 bash scripts/test.sh   clang build with ASan+UBSan in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/redis.sh
rc_install_deps

if [ "${SANITIZE:-0}" = 1 ]; then
    BUILD_DIR=${BUILD_DIR:-build-asan}
    export CC=${CC:-clang}
    CMAKE_ARGS=(-DREPOCACHE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
else
    BUILD_DIR=${BUILD_DIR:-build}
    CMAKE_ARGS=()
fi

cmake -S . -B "$BUILD_DIR" "${CMAKE_ARGS[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"

trap rc_redis_stop EXIT
rc_redis_start
export REPOCACHE_TEST_REDIS_URL="redis://127.0.0.1:$RC_REDIS_PORT/0"
echo "test redis-server on $REPOCACHE_TEST_REDIS_URL"

# Check's summary line of every suite is shown; a failing suite's whole output too.
log="$BUILD_DIR/ctest.log"
set +e
(cd "$BUILD_DIR" && ctest --output-on-failure -V -j2) >"$log" 2>&1
status=$?
set -e
grep -E '^[0-9]+: [0-9]+%: Checks:|Test +#[0-9]+:|tests passed|tests failed|\(Failed\)|\*\*\*' "$log" || true
if [ $status -ne 0 ]; then
    echo "---- failures ----"
    grep -E ':[0-9]+:[EF]:' "$log" | head -50 || true
    echo "full log: $log"
fi
exit $status
