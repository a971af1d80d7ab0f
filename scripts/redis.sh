#!/usr/bin/env bash
# redis.sh - start and stop a private redis-server on a free 127.0.0.1 port,
# or a private Redis Cluster. Sourced; rc_redis_start sets RC_REDIS_PORT,
# RC_REDIS_PID and RC_REDIS_DIR; rc_redis_stop stops it (safe to call twice).

# rc_wait_pong PORT [PID]: waits up to 5 s for the server on 127.0.0.1:PORT
# to answer PING with PONG (a server still loading answers -LOADING), and
# gives up at once if process PID has exited.
rc_wait_pong() {
    for _ in $(seq 1 100); do
        [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ] && return 0
        [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null && return 1
        sleep 0.05
    done
    return 1
}

rc_redis_start() {
    RC_REDIS_DIR=$(mktemp -d /tmp/repocache-redis-XXXXXX)
    local port tries=0
    while [ $tries -lt 50 ]; do
        tries=$((tries + 1))
        port=$((20000 + RANDOM % 40000))
        redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
            --dir "$RC_REDIS_DIR" --daemonize no "$@" >"$RC_REDIS_DIR/log" 2>&1 &
        RC_REDIS_PID=$!
        if rc_wait_pong "$port" "$RC_REDIS_PID"; then
            RC_REDIS_PORT=$port
            return 0
        fi
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

# rc_cluster_start N: a Redis Cluster of N masters (no replicas) on free
# 127.0.0.1 ports, made by `redis-cli --cluster create`, ready when every
# node reports cluster_state:ok. Sets RC_CLUSTER_NODES ("127.0.0.1:p,...")
# and RC_CLUSTER_DIR; rc_cluster_stop stops them (safe to call twice).
rc_cluster_start() {
    local n=$1 i port tries pid addrs=()
    RC_CLUSTER_DIR=$(mktemp -d /tmp/repocache-cluster-XXXXXX)
    RC_CLUSTER_PIDS=()
    for i in $(seq 1 "$n"); do
        mkdir "$RC_CLUSTER_DIR/$i"
        for tries in $(seq 1 50); do
            port=$((20000 + RANDOM % 30000)) # the bus port, port + 10000, fits too
            redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
                --cluster-enabled yes --cluster-node-timeout 1000 --dir "$RC_CLUSTER_DIR/$i" \
                --daemonize no >"$RC_CLUSTER_DIR/$i/log" 2>&1 &
            pid=$!
            rc_wait_pong "$port" "$pid" && break
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            pid=
        done
        if [ -z "$pid" ]; then
            echo "could not start cluster node $i:" >&2
            tail -5 "$RC_CLUSTER_DIR/$i/log" >&2
            return 1
        fi
        RC_CLUSTER_PIDS+=("$pid")
        addrs+=("127.0.0.1:$port")
    done
    redis-cli --cluster create "${addrs[@]}" --cluster-yes >"$RC_CLUSTER_DIR/create.log" 2>&1 ||
        { echo "redis-cli --cluster create failed" >&2; cat "$RC_CLUSTER_DIR/create.log" >&2; return 1; }
    for a in "${addrs[@]}"; do
        for tries in $(seq 1 201); do
            redis-cli -h 127.0.0.1 -p "${a#*:}" cluster info 2>/dev/null |
                grep -q '^cluster_state:ok' && break
            [ "$tries" = 201 ] && { echo "cluster node $a never reported cluster_state:ok" >&2; return 1; }
            sleep 0.05
        done
    done
    RC_CLUSTER_NODES=$(IFS=,; echo "${addrs[*]}")
}

rc_cluster_stop() {
    local p
    for p in "${RC_CLUSTER_PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
    done
    RC_CLUSTER_PIDS=()
    [ -n "${RC_CLUSTER_DIR:-}" ] && rm -rf "$RC_CLUSTER_DIR"
    RC_CLUSTER_DIR=
}
