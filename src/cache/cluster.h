/*
 * cluster.h - the service over a Redis Cluster (REDIS_CLUSTER_NODES): the
 * slot map (slotmap.h), discovered from the seeds when the service is made
 * and again when it changes, and one node per master address, each with
 * its own pool, circuit breaker, remembered deletes and identity, so that a
 * failed master degrades only the keys of its slots. The commands go to
 * the nodes by route.c.
 *
 * The masters' pools connect as the service's own pool does (its user,
 * password, timeouts and TLS context: route.c never uses that pool itself).
 * Nodes are made when a map or a MOVED first names an address, and live as
 * long as the service. Thread-safe.
 */
#ifndef RC_CACHE_CLUSTER_H
#define RC_CACHE_CLUSTER_H

#include "cache/breaker.h"
#include "cache/pending.h"
#include "cache/pool.h"
#include "cache/slotmap.h"
#include "cache/tracking.h"
#include "core/strset.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

/* Room for a Redis identity, "<run_id>:<master_replid>" (identity.c). */
#define RC_IDENTITY_MAX 96
/* At most one discovery per this many seconds, but for the first map. */
#define RC_CLUSTER_REFRESH_S 0.1

struct rc_cache;

/* One master address. */
typedef struct rc_cnode {
    char where[300];              /* "host:port", for messages */
    rc_pool pool;                 /* its connections */
    rc_breaker breaker;           /* its circuit breaker */
    rc_deletes dels;              /* deletes of its keys to replay */
    pthread_mutex_t trust_mu;     /* one identity check at a time */
    char run_id[RC_IDENTITY_MAX]; /* identity trusted last, or "" */
    atomic_uint gen;              /* bumped when its breaker opens: every
                                     connection checks the identity again */
    pthread_mutex_t outbox_mu;    /* one outbox application at a time */
    atomic_uint outbox_gen;       /* the gen the outbox was applied for
                                     before its use (route.c) */
    _Atomic(rc_tracking *) tracking; /* its near cache tracker, made when it
                                     is first a master with a near cache
                                     (cluster_tracking.c); else NULL */
} rc_cnode;

/* The trackers of the masters of a map (cluster_tracking.c): immutable
 * once published, kept until the near cache stops (a hit may hold one). */
typedef struct rc_watchset {
    struct rc_watchset *older; /* the set it replaced, or NULL */
    size_t n;
    rc_tracking *t[];
} rc_watchset;

typedef struct rc_cluster {
    char *seeds;                /* REDIS_CLUSTER_NODES */
    rc_slotmap_cell cell;       /* the current map */
    pthread_mutex_t mu;         /* guards nodes and n */
    rc_cnode **nodes;           /* every address met so far */
    size_t n, cap;
    pthread_mutex_t refresh_mu; /* one discovery at a time */
    _Atomic double refreshed;   /* clock time of the last discovery */
    atomic_uint_fast64_t refreshes; /* maps discovered (statistics, tests) */
    atomic_uint_fast64_t redirects; /* MOVED and ASK replies followed */
    pthread_mutex_t watch_mu;   /* guards prefixes and changes of watched */
    rc_strset prefixes;         /* the near cache's tracked key prefixes */
    _Atomic(rc_watchset *) watched; /* the current masters' trackers */
} rc_cluster;

/* The cluster of s (REDIS_CLUSTER_NODES set), its first map discovered when
 * a seed answers (else at the first call). RC_OK; RC_ECONFIG (a bad list);
 * RC_ENOMEM. */
int rc_cluster_new(struct rc_cache *c, const char *seeds, rc_cluster **out);
/* Frees cl and its nodes (NULL is fine); no call may be running. */
void rc_cluster_free(rc_cluster *cl);

/* A reference to the current map (the caller releases it), discovering one
 * when there is none; NULL (with rc_errmsg) when no seed answers. */
rc_slotmap *rc_cluster_map(struct rc_cache *c);
/* Asks the cluster for its map again (the known nodes, then the seeds),
 * unless one was asked for less than RC_CLUSTER_REFRESH_S ago or another
 * thread is asking now. */
void rc_cluster_refresh(struct rc_cache *c);
/* A MOVED reply r from a node at asked_host: the map patched at once. */
void rc_cluster_moved(struct rc_cache *c, const rc_slotmap *m, const rc_redirect *r,
                      const char *asked_host);
/* The node at host:port, made when new. RC_OK or RC_ENOMEM. */
int rc_cluster_node(struct rc_cache *c, const char *host, int port, rc_cnode **out);
/* The node serving slot as master in m, or NULL (none serves it, or out of
 * memory). */
rc_cnode *rc_cluster_master(struct rc_cache *c, const rc_slotmap *m, unsigned slot);

/* rc_cache_remember_deletes with a cluster: each key with the master of
 * its slot, a pattern with every master (with the service's own deletes
 * when there is no map yet). RC_OK or RC_ENOMEM. */
int rc_cluster_remember(struct rc_cache *c, const char *const *keys, size_t n,
                        const char *drop_glob);
/* Remembered deletes not yet replayed, on every node. */
size_t rc_cluster_pending(struct rc_cache *c);
/* The breakers' state: open when a master's is open, else half open when
 * one is, else closed. */
rc_circuit_state rc_cluster_circuit(struct rc_cache *c);
/* Connect attempts of every node's pool. */
uint64_t rc_cluster_connects(struct rc_cache *c);

/* ---- the near cache over a cluster (cluster_tracking.c) ----
 * One tracker (tracking.h) per master, each with every prefix, on the
 * master's own pool. The near cache serves only while the tracker of every
 * master of the current map is coherent (strict: all their sockets in one poll),
 * so an invalidation any master wrote before a writer's return is applied
 * before a hit, wherever the key's slot is now. When the masters change (a
 * failover, a master added or gone) the new set is published and the near
 * cache emptied: entries filled under the old masters die; a master new to
 * the set is (re-)armed before anything is served. */

/* Watches the masters of the current map (after each new map, and when the
 * near cache starts). Does nothing without a near cache. */
void rc_cluster_watch(struct rc_cache *c);
/* Tracks prefix on every master, now and to come. RC_OK or RC_ENOMEM. */
int rc_cluster_track(struct rc_cache *c, const char *prefix);
/* Whether the near cache may serve (rc_tracking_ready_at of every watched
 * tracker); false with none. */
bool rc_cluster_near_ready(struct rc_cache *c, bool strict, double now);
/* rc_tracking_sync of every watched tracker. */
void rc_cluster_near_sync(struct rc_cache *c);
/* The trackers' counters summed (coherent: every watched one is). */
void rc_cluster_tracking_stats(struct rc_cache *c, rc_tracking_stats *st);
/* Coherence lost on node (its breaker opened, a new identity). */
void rc_cluster_node_lose(rc_cnode *node, const char *why);
/* Stops and frees every tracker (before the near cache is freed). */
void rc_cluster_unwatch(struct rc_cache *c);

#endif
