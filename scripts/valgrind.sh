#!/usr/bin/env bash
# valgrind.sh - the memcheck pass of CI: the codec, settings and decorator
# suites of the gcc build (build/) under valgrind against a private
# redis-server. Check runs each test in a fork of its own, which valgrind
# would not follow, so CK_FORK=no keeps every test in the process valgrind
# watches. Any memcheck error (invalid or uninitialised access, a definite
# leak) fails the pass (--error-exitcode=1).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/redis.sh
rc_install_deps valgrind

BUILD_DIR=${BUILD_DIR:-build}
SUITES=(check_codec check_settings check_cached_repository)

cmake -S . -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${SUITES[@]}"

trap rc_redis_stop EXIT
rc_redis_start
export REPOCACHE_TEST_REDIS_URL="redis://127.0.0.1:$RC_REDIS_PORT/0"
export CK_FORK=no CK_DEFAULT_TIMEOUT=600 RC_TEST_FIXTURES="$PWD/tests/fixtures"

failed=0
for suite in "${SUITES[@]}"; do
    log="$BUILD_DIR/valgrind-$suite.log"
    t0=$SECONDS
    status=0
    valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
        --track-origins=yes "$BUILD_DIR/tests/$suite" >"$log" 2>&1 || status=$?
    errors=$(grep -c '^==[0-9]*== [A-Z]' "$log" || true)
    echo "valgrind: $suite: $(grep -E '^[0-9]+%: Checks:' "$log" || echo 'no summary'); exit $status; $errors memcheck line(s); $((SECONDS - t0)) s"
    if [ $status -ne 0 ]; then
        grep -E '^==[0-9]+==|:[0-9]+:[EF]:' "$log" | head -60
        failed=1
    fi
done
exit $failed
