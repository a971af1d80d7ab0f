#!/usr/bin/env bash
# tsan.sh - the ThreadSanitizer pass of CI: a clang -fsanitize=thread build
# in build-tsan/, then the threaded suites against a private redis-server.
# Any ThreadSanitizer report fails the pass (halt_on_error with exitcode 66
# fails the test; the log is searched for reports as well).
#
# LLVM 14's TSan fails at start ("unexpected memory mapping") on kernels
# that randomise mmap with more than 28 bits (vm.mmap_rnd_bits): its shadow
# memory layout assumes at most 28. A probe finds out; when it fails that
# way the suites run without address randomisation (setarch -R), which
# touches nothing system-wide (sysctl vm.mmap_rnd_bits=28 would be the
# other cure).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/redis.sh
rc_install_deps

BUILD_DIR=${BUILD_DIR:-build-tsan}
SUITES=(check_pool check_cache_faults check_consistency check_cached_repository
        check_breaker check_fallback check_cache check_sqlite check_near
        check_tracking check_near_cache check_stampede check_outbox check_metrics check_log
        check_tls check_sentinel check_slotmap check_cluster check_cluster_near check_cluster_away)
TSAN_FLAGS="-fsanitize=thread -fno-omit-frame-pointer -g -O1"
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1"
RUN=()

# A racy program must be reported (exit 66): else TSan does not work here.
probe() {
    local dir out status=0
    dir=$(mktemp -d /tmp/repocache-tsan-XXXXXX)
    cat >"$dir/race.c" <<'C'
#include <pthread.h>
static int shared;
static void *bump(void *arg) { (void)arg; shared++; return 0; }
int main(void)
{
    pthread_t t;
    pthread_create(&t, 0, bump, 0);
    shared++;
    pthread_join(t, 0);
    return 0;
}
C
    clang $TSAN_FLAGS "$dir/race.c" -o "$dir/race"
    out=$("${RUN[@]}" "$dir/race" 2>&1) || status=$?
    rm -rf "$dir"
    if [ $status -eq 66 ] && grep -q "WARNING: ThreadSanitizer: data race" <<<"$out"; then
        return 0
    fi
    grep -q "unexpected memory mapping" <<<"$out" && return 2
    echo "tsan: the probe race was not reported (exit $status): $out" >&2
    return 1
}

status=0
probe || status=$?
if [ $status -eq 2 ]; then
    echo "tsan: 'unexpected memory mapping' (vm.mmap_rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits)); running under setarch -R"
    RUN=(setarch "$(uname -m)" -R)
    probe
elif [ $status -ne 0 ]; then
    exit 1
fi
echo "tsan: probe race reported as it should be${RUN[*]:+ (under ${RUN[*]})}"

CC=clang cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS="$TSAN_FLAGS" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
    -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${SUITES[@]}"

trap rc_redis_stop EXIT
rc_redis_start
export REPOCACHE_TEST_REDIS_URL="redis://127.0.0.1:$RC_REDIS_PORT/0"

log="$BUILD_DIR/tsan.log"
regex="^($(IFS='|'; echo "${SUITES[*]}"))\$"
set +e
(cd "$BUILD_DIR" && "${RUN[@]}" ctest -R "$regex" --output-on-failure -V) >"$log" 2>&1
status=$?
set -e
grep -E '^[0-9]+: [0-9]+%: Checks:|Test +#[0-9]+:|tests passed|tests failed' "$log" || true
reports=$(grep -c "WARNING: ThreadSanitizer" "$log" || true)
echo "tsan: $reports ThreadSanitizer report(s) over ${#SUITES[@]} suites (log: $log)"
if [ "$reports" -ne 0 ]; then
    grep -A30 "WARNING: ThreadSanitizer" "$log" | head -80
    status=1
fi
exit $status
