#!/usr/bin/env bash
# redis.sh - start and stop a private redis-server on a free 127.0.0.1 port.
# Sourced; rc_redis_start sets RC_REDIS_PORT, RC_REDIS_PID and
# RC_REDIS_DIR; rc_redis_stop stops it (safe to call twice).

rc_redis_start() {
    RC_REDIS_DIR=$(mktemp -d /tmp/repocache-redis-XXXXXX)
    local port tries=0
    while [ $tries -lt 50 ]; do
        tries=$((tries + 1))
        port=$((20000 + RANDOM % 40000))
        redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
            --dir "$RC_REDIS_DIR" --daemonize no "$@" >"$RC_REDIS_DIR/log" 2>&1 &
        RC_REDIS_PID=$!
        for _ in $(seq 1 100); do
            if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
                RC_REDIS_PORT=$port
                return 0
            fi
            kill -0 "$RC_REDIS_PID" 2>/dev/null || break
            sleep 0.05
        done
        kill "$RC_REDIS_PID" 2>/dev/null || true
        wait "$RC_REDIS_PID" 2>/dev/null || true
    done
    echo "could not start redis-server" >&2
    return 1
}

rc_redis_stop() {
    if [ -n "${RC_REDIS_PID:-}" ]; then
        kill "$RC_REDIS_PID" 2>/dev/null || true
        wait "$RC_REDIS_PID" 2>/dev/null || true
        RC_REDIS_PID=
    fi
    [ -n "${RC_REDIS_DIR:-}" ] && rm -rf "$RC_REDIS_DIR"
    RC_REDIS_DIR=
}
