#!/usr/bin/env bash
# cluster.sh - the Redis Cluster pass of CI: the cached-repository and
# consistency suites and the black-box suite of `tale` (with
# REDIS_CLUSTER_NODES) of the gcc build (build/, configured when missing)
# against a private Redis Cluster of three masters with one replica each on
# free 127.0.0.1 ports (scripts/redis.sh rc_cluster_start 3 1). The suites
# get REPOCACHE_TEST_REDIS_CLUSTER (every node, as seeds): every service
# they make on the shared server has REDIS_CLUSTER_NODES instead of
# REDIS_URL, and their own commands go to each key's master
# (tests/support/route.h). Tests that start servers of their own still do.
# Every node is stopped even on failure. The time of each suite is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/redis.sh
rc_install_deps

BUILD_DIR=${BUILD_DIR:-build}
SUITES=(check_cached_repository check_consistency check_tale)

cmake -S . -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${SUITES[@]}" tale wrap_own

trap rc_cluster_stop EXIT
t0=$SECONDS
rc_cluster_start 3 1
echo "cluster: 3 masters + 3 replicas on $RC_CLUSTER_NODES (ready in $((SECONDS - t0)) s)"
unset REPOCACHE_TEST_REDIS_URL
export REPOCACHE_TEST_REDIS_CLUSTER=$RC_CLUSTER_NODES
export CK_DEFAULT_TIMEOUT=120 RC_TEST_FIXTURES="$PWD/tests/fixtures"
export TALE_BIN="$PWD/$BUILD_DIR/example/tale" WRAP_OWN_BIN="$PWD/$BUILD_DIR/example/wrap_own"

status=0
for suite in "${SUITES[@]}"; do
    t0=$(date +%s%N)
    log="$BUILD_DIR/cluster-$suite.log"
    bin=$(find "$BUILD_DIR/tests" -name "$suite" -type f -perm -u+x | head -1)
    if "$bin" >"$log" 2>&1; then
        result=passed
    else
        result=FAILED
        status=1
        grep -E ':[0-9]+:[EF]:' "$log" | head -20 || true
    fi
    ms=$((($(date +%s%N) - t0) / 1000000))
    echo "cluster: $suite $result against the cluster in $((ms / 1000)).$((ms % 1000 / 100)) s" \
        "($(grep -E '^[0-9]+%: Checks' "$log" || echo "no summary; see $log"))"
done
exit $status
