#!/usr/bin/env bash
# load.sh - the repeat-under-load pass of CI: the fault suites of the gcc
# build (build/), LOAD_RUNS (5) times each, while two busy loops at the
# lowest priority (nice -n 19) compete for the CPUs, against a private
# redis-server. The busy loops are started and stopped by their pids (also
# on failure or interruption). Any failing run fails the pass.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/redis.sh
rc_install_deps

BUILD_DIR=${BUILD_DIR:-build}
LOAD_RUNS=${LOAD_RUNS:-5}
SUITES=(check_cache_faults check_consistency check_pool check_cached_repository
        check_tracking check_near_cache check_stampede)

cmake -S . -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${SUITES[@]}"

BUSY=()
stop_all() {
    for pid in "${BUSY[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    BUSY=()
    rc_redis_stop
}
trap stop_all EXIT
rc_redis_start
export REPOCACHE_TEST_REDIS_URL="redis://127.0.0.1:$RC_REDIS_PORT/0"
export CK_DEFAULT_TIMEOUT=120 RC_TEST_FIXTURES="$PWD/tests/fixtures"
for _ in 1 2; do
    nice -n 19 bash -c 'while :; do :; done' &
    BUSY+=($!)
done
echo "load: busy loops ${BUSY[*]} at nice 19 on $(nproc) cores"

logs="$BUILD_DIR/load-runs"
rm -rf "$logs"
mkdir -p "$logs"
failures=0
declare -A passed
for run in $(seq 1 "$LOAD_RUNS"); do
    line="load: run $run:"
    for suite in "${SUITES[@]}"; do
        log="$logs/$suite.$run.log"
        t0=$(date +%s.%N)
        status=0
        "$BUILD_DIR/tests/$suite" >"$log" 2>&1 || status=$?
        took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        if [ $status -eq 0 ]; then
            passed[$suite]=$((${passed[$suite]:-0} + 1))
            line+=" $suite ok ${took}s"
        else
            failures=$((failures + 1))
            line+=" $suite FAILED ${took}s"
            grep -E ':[0-9]+:[EF]:' "$log" | head -10 || true
        fi
    done
    echo "$line"
done
for suite in "${SUITES[@]}"; do
    echo "load: $suite passed ${passed[$suite]:-0} of $LOAD_RUNS runs"
done
echo "load: ${failures} failing run(s) (logs: $logs)"
[ "$failures" -eq 0 ]
