/*
 * route.h - the tests' own commands to the shared Redis (harness.h
 * th_redis_shared), wherever it is: one server, or the Redis Cluster named
 * by REPOCACHE_TEST_REDIS_CLUSTER (scripts/cluster.sh), for suites whose
 * raw GET, SET, EXISTS, TTL, KEYS or FLUSHALL must see what the services
 * of that test wrote.
 *
 * On one server (the default, and every private server a test starts) a
 * route is one hiredis connection, each command sent as redisCommand
 * would. On a cluster (TH_REDIS_CLUSTER_SCHEME URL) a route knows the slot
 * map (CLUSTER SLOTS of the seeds) and sends:
 *   - a command with a key to the master of its key's slot (core/slot.h
 *     rc_slot), following MOVED (the map read again) and ASK (ASKING
 *     first), and sending it again after TRYAGAIN or CLUSTERDOWN;
 *   - DEL, UNLINK, EXISTS and TOUCH of several keys one key at a time, the
 *     integer replies summed (their keys may be in different slots);
 *   - FLUSHALL, FLUSHDB, KEYS, DBSIZE and SCAN to every master, merged:
 *     OK when every master said OK, the keys of all masters, the sum, and
 *     for SCAN 0 [MATCH p] [COUNT n] the whole iteration of every master
 *     in one reply with cursor "0";
 *   - any other command (no key: PING, INFO) to the first master.
 * Replicas are never asked.
 */
#ifndef RC_TEST_ROUTE_H
#define RC_TEST_ROUTE_H

#include "harness.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>

typedef struct th_route th_route;

/* Whether r is the shared cluster (its url is TH_REDIS_CLUSTER_SCHEME...). */
bool th_route_is_cluster(const th_redis *r);
/* A route to r (Check-asserted: the server, or the cluster's slot map,
 * answers). */
th_route *th_route_open(const th_redis *r);
void th_route_close(th_route *rt);
/* One command, formatted as redisCommand; its reply (the caller frees it),
 * or NULL when a server could not be reached. */
redisReply *th_route_cmd(th_route *rt, const char *fmt, ...);
redisReply *th_route_vcmd(th_route *rt, const char *fmt, va_list ap);
/* FLUSHALL of r through a route of its own: 0, or -1 when any master did
 * not answer OK (th_redis_flushall, cluster-wide). */
int th_route_flushall(const th_redis *r);

#endif
