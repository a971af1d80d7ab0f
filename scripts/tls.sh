#!/usr/bin/env bash
# tls.sh - the TLS pass of CI: the cached-repository, consistency and near
# cache suites of the gcc build (build/) with the test Redis URL set to
# rediss://: a private redis-server with a plain port (the tests' own
# connections) and a TLS port that requires client certificates, both on
# 127.0.0.1, certificates made now with openssl (scripts/certs.sh) in a
# temporary directory. The server is stopped and the directory removed even
# on failure. The time of each suite is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/redis.sh
. scripts/certs.sh
rc_install_deps

BUILD_DIR=${BUILD_DIR:-build}
SUITES=(check_cached_repository check_consistency check_near_cache)

cmake -S . -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${SUITES[@]}"

CERTS=$(mktemp -d /tmp/repocache-certs-XXXXXX)
stop_all() {
    rc_redis_stop
    rm -rf "$CERTS"
}
trap stop_all EXIT
rc_make_certs "$CERTS"
rc_redis_start_tls "$CERTS"
export REPOCACHE_TEST_REDIS_URL="rediss://localhost:$RC_REDIS_TLS_PORT/0"
export REPOCACHE_TEST_REDIS_PLAIN_PORT=$RC_REDIS_PORT
export REPOCACHE_TEST_TLS_CA_FILE=$CERTS/ca.crt
export REPOCACHE_TEST_TLS_CERT_FILE=$CERTS/client.crt
export REPOCACHE_TEST_TLS_KEY_FILE=$CERTS/client.key
export CK_DEFAULT_TIMEOUT=120 RC_TEST_FIXTURES="$PWD/tests/fixtures"
echo "tls: redis-server on $REPOCACHE_TEST_REDIS_URL (plain port $RC_REDIS_PORT)"

status=0
for suite in "${SUITES[@]}"; do
    t0=$(date +%s%N)
    log="$BUILD_DIR/tls-$suite.log"
    if "$BUILD_DIR/tests/$suite" >"$log" 2>&1; then
        result=passed
    else
        result=FAILED
        status=1
        grep -E ':[0-9]+:[EF]:' "$log" | head -20 || true
    fi
    ms=$((($(date +%s%N) - t0) / 1000000))
    echo "tls: $suite $result over TLS in $((ms / 1000)).$((ms % 1000 / 100)) s" \
        "($(grep -E '^[0-9]+%: Checks' "$log" || echo "no summary; see $log"))"
done
exit $status
