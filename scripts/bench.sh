#!/usr/bin/env bash
# bench.sh - builds the benchmark (RelWithDebInfo: -O2), starts a private
# redis-server on a free loopback port, runs bench against it and a fresh
# SQLite file, and stops the server. Arguments are passed to bench
# (e.g. --json, --reps 9).
#
#   bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/redis.sh
rc_install_deps

BUILD_DIR=${BUILD_DIR:-build-bench}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREPOCACHE_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target bench >/dev/null

work=$(mktemp -d /tmp/repocache-bench-XXXXXX)
cleanup() {
    rc_redis_stop
    rm -rf "$work"
}
trap cleanup EXIT
rc_redis_start

REDIS_URL="redis://127.0.0.1:$RC_REDIS_PORT/0" \
    "$BUILD_DIR/bench/bench" --db "$work/bench.db" "$@"
