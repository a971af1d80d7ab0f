#!/usr/bin/env bash
# demo.sh - the README's first command. Installs missing Debian packages (as
# root), builds, and runs `tale demo` against a fresh SQLite database in a
# temporary directory, then removes it.
#
#   bash scripts/demo.sh                    Redis from REDIS_URL, or the
#                                           default redis://127.0.0.1:6379;
#                                           when none answers, the demo runs
#                                           on the in-memory fallback
#   bash scripts/demo.sh --own-redis        start a private redis-server on a
#                                           free loopback port for the demo
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
. scripts/redis.sh

own_redis=0
for arg in "$@"; do
    case "$arg" in
        --own-redis) own_redis=1 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "demo.sh: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

rc_install_deps

BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target tale >/dev/null

work=$(mktemp -d /tmp/repocache-demo-XXXXXX)
cleanup() {
    rc_redis_stop
    rm -rf "$work"
}
trap cleanup EXIT

if [ $own_redis = 1 ]; then
    rc_redis_start
    export REDIS_URL="redis://127.0.0.1:$RC_REDIS_PORT/0"
fi

tale=$PWD/$BUILD_DIR/example/tale
# Run from the temporary directory so a .env there (none) is what is read,
# and the fresh database lives there.
cd "$work"
"$tale" --db "$work/demo.db" demo
