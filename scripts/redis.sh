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

# rc_spawn DIR SPAN [redis-server arguments]: starts a redis-server in DIR
# on a free 127.0.0.1 port, 20000 to 20000 + SPAN - 1 (50 tries), ready
# when it answers PONG. Sets RC_SPAWN_PORT and RC_SPAWN_PID; 1 when none
# started.
rc_spawn() {
    local dir=$1 span=$2 port pid
    shift 2
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % span))
        redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
            --dir "$dir" --daemonize no "$@" >"$dir/log" 2>&1 &
        pid=$!
        if rc_wait_pong "$port" "$pid"; then
            RC_SPAWN_PORT=$port RC_SPAWN_PID=$pid
            return 0
        fi
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    return 1
}

rc_redis_start() {
    RC_REDIS_DIR=$(mktemp -d /tmp/repocache-redis-XXXXXX)
    if ! rc_spawn "$RC_REDIS_DIR" 40000 "$@"; then
        echo "could not start redis-server" >&2
        return 1
    fi
    RC_REDIS_PORT=$RC_SPAWN_PORT RC_REDIS_PID=$RC_SPAWN_PID
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

# rc_cluster_start N [R]: a Redis Cluster of N masters with R replicas each
# (default 0) on free 127.0.0.1 ports, made by `redis-cli --cluster create
# ... --cluster-replicas R`, ready when every node reports cluster_state:ok
# and knows all N * (1 + R) nodes, and every replica's link to its master is
# up (diskless sync without delay). Sets RC_CLUSTER_NODES ("127.0.0.1:p,...":
# every node, whichever redis-cli made masters) and RC_CLUSTER_DIR;
# rc_cluster_stop stops them (safe to call twice).
rc_cluster_start() {
    local n=$1 r=${2:-0} i total addrs=()
    total=$((n * (1 + r)))
    RC_CLUSTER_DIR=$(mktemp -d /tmp/repocache-cluster-XXXXXX)
    RC_CLUSTER_PIDS=()
    for i in $(seq 1 "$total"); do
        mkdir "$RC_CLUSTER_DIR/$i"
        # ports below 50000: the bus port, port + 10000, fits too
        if ! rc_spawn "$RC_CLUSTER_DIR/$i" 30000 --cluster-enabled yes \
            --cluster-node-timeout 1000 --repl-diskless-sync-delay 0; then
            echo "could not start cluster node $i:" >&2
            tail -5 "$RC_CLUSTER_DIR/$i/log" >&2
            return 1
        fi
        RC_CLUSTER_PIDS+=("$RC_SPAWN_PID")
        addrs+=("127.0.0.1:$RC_SPAWN_PORT")
    done
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$r" --cluster-yes \
        >"$RC_CLUSTER_DIR/create.log" 2>&1 ||
        { echo "redis-cli --cluster create failed" >&2; cat "$RC_CLUSTER_DIR/create.log" >&2; return 1; }
    for a in "${addrs[@]}"; do
        rc_cluster_wait_node "${a#*:}" "$total" ||
            { echo "cluster node $a never became ready (state ok, $total nodes known, replica synced)" >&2; return 1; }
    done
    RC_CLUSTER_NODES=$(IFS=,; echo "${addrs[*]}")
}

# rc_cluster_wait_node PORT TOTAL: waits up to 20 s until the node on PORT
# reports cluster_state:ok and cluster_known_nodes:TOTAL and, when it is a
# replica, master_link_status:up.
rc_cluster_wait_node() {
    local port=$1 total=$2 info
    for _ in $(seq 1 400); do
        info=$(redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | tr -d '\r')
        if grep -q '^cluster_state:ok$' <<<"$info" &&
            grep -q "^cluster_known_nodes:$total\$" <<<"$info"; then
            info=$(redis-cli -h 127.0.0.1 -p "$port" info replication 2>/dev/null | tr -d '\r')
            grep -q '^role:master$' <<<"$info" && return 0
            grep -q '^master_link_status:up$' <<<"$info" && return 0
        fi
        sleep 0.05
    done
    return 1
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
