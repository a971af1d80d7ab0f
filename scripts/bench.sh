#!/usr/bin/env bash
# bench.sh - builds the benchmarks (RelWithDebInfo: -O2), starts a private
# redis-server on a free loopback port, runs bench against it and a fresh
# SQLite file, then bench_crossproc (a writer process against a reader
# process's near cache), bench_stampede (64 cold reads of one id from 4
# processes), bench_memory (bytes per hero in the near cache) and bench_tls
# (a Redis hit and a connect over TLS against plain: the server also listens
# on a TLS port, with certificates made now by scripts/certs.sh) and
# bench_cluster (a Redis hit and a write through a three-master Redis Cluster
# started now, against the single server), and stops the servers. Arguments are passed to bench (e.g. --json, --reps 9); with
# --json only bench runs, so that the output stays one JSON document.
#
#   bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/redis.sh
. scripts/certs.sh
rc_install_deps

BUILD_DIR=${BUILD_DIR:-build-bench}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREPOCACHE_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" \
    --target bench bench_crossproc bench_stampede bench_memory bench_tls bench_cluster >/dev/null

work=$(mktemp -d /tmp/repocache-bench-XXXXXX)
cleanup() {
    rc_cluster_stop
    rc_redis_stop
    rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/certs"
rc_make_certs "$work/certs"
rc_redis_start_tls "$work/certs"

export REDIS_URL="redis://127.0.0.1:$RC_REDIS_PORT/0"
"$BUILD_DIR/bench/bench" --db "$work/bench.db" "$@"
case " $* " in *" --json "*) exit 0 ;; esac
echo
"$BUILD_DIR/bench/bench_crossproc" --db "$work/crossproc.db"
echo
"$BUILD_DIR/bench/bench_stampede" --db "$work/stampede.db"
echo
"$BUILD_DIR/bench/bench_memory"
echo
BENCH_TLS_URL="rediss://127.0.0.1:$RC_REDIS_TLS_PORT/0" REDIS_TLS_CA_FILE="$work/certs/ca.crt" \
    REDIS_TLS_CERT_FILE="$work/certs/client.crt" REDIS_TLS_KEY_FILE="$work/certs/client.key" \
    "$BUILD_DIR/bench/bench_tls" --db "$work/tls.db"
echo
rc_cluster_start 3
BENCH_CLUSTER_NODES=$RC_CLUSTER_NODES "$BUILD_DIR/bench/bench_cluster" --db "$work/cluster.db"
