/*
 * cluster.c - the service's view of a Redis Cluster (cluster.h): its nodes,
 * the current slot map, its discovery and its patches; remembered deletes
 * kept with the master of each key.
 */
#include "cache/service.h"
#include "cache/wire.h"

#include "core/clock.h"
#include "core/hostports.h"
#include "core/log.h"
#include "core/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rc_cluster_new(rc_cache *c, const char *seeds, rc_cluster **out)
{
    *out = NULL;
    rc_hostports l;
    int st = rc_hostports_parse("REDIS_CLUSTER_NODES", seeds, &l);
    if (st)
        return st;
    rc_hostports_clear(&l);
    rc_cluster *cl = calloc(1, sizeof *cl);
    if (!cl || !(cl->seeds = rc_strdup(seeds))) {
        free(cl);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    rc_slotmap_cell_init(&cl->cell);
    pthread_mutex_init(&cl->mu, NULL);
    pthread_mutex_init(&cl->refresh_mu, NULL);
    pthread_mutex_init(&cl->watch_mu, NULL);
    rc_strset_init(&cl->prefixes);
    c->cluster = cl;
    rc_slotmap_release(rc_cluster_map(c)); /* the first map, when a seed answers */
    rc_clearerr();
    *out = cl;
    return RC_OK;
}

static void node_free(rc_cnode *n)
{
    rc_tracking_free(atomic_load(&n->tracking)); /* it uses the pool */
    rc_pool_destroy(&n->pool);
    rc_breaker_destroy(&n->breaker);
    rc_deletes_destroy(&n->dels);
    pthread_mutex_destroy(&n->trust_mu);
    pthread_mutex_destroy(&n->outbox_mu);
    free(n);
}

void rc_cluster_free(rc_cluster *cl)
{
    if (!cl)
        return;
    for (size_t i = 0; i < cl->n; i++)
        node_free(cl->nodes[i]);
    free(cl->nodes);
    rc_slotmap_cell_destroy(&cl->cell);
    pthread_mutex_destroy(&cl->mu);
    pthread_mutex_destroy(&cl->refresh_mu);
    pthread_mutex_destroy(&cl->watch_mu);
    rc_strset_clear(&cl->prefixes);
    free(cl->seeds);
    free(cl);
}

/* A node for host:port with the service's connection settings. */
static rc_cnode *node_new(rc_cache *c, const char *host, int port)
{
    rc_cnode *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    snprintf(n->where, sizeof n->where, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    atomic_init(&n->gen, 1);
    if (rc_pool_init_at(&n->pool, &c->pool, host, port) != RC_OK) {
        free(n);
        return NULL;
    }
    if (rc_breaker_init(&n->breaker, c->breaker.threshold, c->breaker.base_period) != RC_OK) {
        rc_pool_destroy(&n->pool);
        free(n);
        return NULL;
    }
    if (rc_deletes_init(&n->dels) != RC_OK) {
        rc_breaker_destroy(&n->breaker);
        rc_pool_destroy(&n->pool);
        free(n);
        return NULL;
    }
    pthread_mutex_init(&n->trust_mu, NULL);
    pthread_mutex_init(&n->outbox_mu, NULL);
    return n;
}

int rc_cluster_node(rc_cache *c, const char *host, int port, rc_cnode **out)
{
    rc_cluster *cl = c->cluster;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->n; i++) {
        if (cl->nodes[i]->pool.port == port && strcmp(cl->nodes[i]->pool.host, host) == 0) {
            *out = cl->nodes[i];
            pthread_mutex_unlock(&cl->mu);
            return RC_OK;
        }
    }
    rc_cnode *n = NULL, **grown = cl->nodes;
    if (cl->n == cl->cap) {
        size_t cap = cl->cap ? 2 * cl->cap : 8;
        if ((grown = realloc(cl->nodes, cap * sizeof *grown)) != NULL) {
            cl->nodes = grown;
            cl->cap = cap;
        }
    }
    if (grown && (n = node_new(c, host, port)) != NULL)
        cl->nodes[cl->n++] = n;
    pthread_mutex_unlock(&cl->mu);
    *out = n;
    return n ? RC_OK : rc_seterr(RC_ENOMEM, "out of memory");
}

rc_cnode *rc_cluster_master(rc_cache *c, const rc_slotmap *m, unsigned slot)
{
    const rc_slotnode *sn = rc_slotmap_master(m, slot);
    rc_cnode *n = NULL;
    if (sn && rc_cluster_node(c, sn->host, sn->port, &n) != RC_OK)
        n = NULL;
    return n;
}

/* The seeds to ask: every node of the current map, then the configured
 * ones (a cluster that moved on from its seeds is still found). */
static char *seed_list(rc_cluster *cl)
{
    rc_slotmap *m = rc_slotmap_cell_get(&cl->cell);
    size_t size = strlen(cl->seeds) + 1 + (m ? m->n * 300 : 0), used = 0;
    char *s = malloc(size);
    for (size_t i = 0; s && m && i < m->n; i++)
        used += (size_t)snprintf(s + used, size - used,
                                 strchr(m->nodes[i].host, ':') ? "[%s]:%d," : "%s:%d,",
                                 m->nodes[i].host, m->nodes[i].port);
    if (s)
        snprintf(s + used, size - used, "%s", cl->seeds);
    rc_slotmap_release(m);
    return s;
}

/* Discovers a map and makes it current. */
static void discover(rc_cache *c)
{
    rc_cluster *cl = c->cluster;
    rc_slotmap *old = rc_slotmap_cell_get(&cl->cell), *m = NULL;
    char *seeds = seed_list(cl);
    uint64_t gen = old ? old->generation + 1 : 1;
    rc_slotmap_release(old);
    if (seeds && rc_slotmap_discover(&c->pool.link, seeds, c->pool.password, gen, &m) == RC_OK) {
        atomic_fetch_add(&cl->refreshes, 1);
        if (rc_slotmap_cell_swap(&cl->cell, m))
            rc_cluster_watch(c);
    } else {
        rc_log(c->log_level, RC_LOG_DEBUG, "redis_cluster_discovery_failed",
               "redis cluster: no map: %s", seeds ? rc_errmsg() : "out of memory");
    }
    atomic_store(&cl->refreshed, rc_clock_monotonic(NULL));
    free(seeds);
}

void rc_cluster_refresh(rc_cache *c)
{
    rc_cluster *cl = c->cluster;
    double now = rc_clock_monotonic(NULL);
    if (now - atomic_load(&cl->refreshed) < RC_CLUSTER_REFRESH_S ||
        pthread_mutex_trylock(&cl->refresh_mu) != 0)
        return;
    if (now - atomic_load(&cl->refreshed) >= RC_CLUSTER_REFRESH_S)
        discover(c);
    pthread_mutex_unlock(&cl->refresh_mu);
}

rc_slotmap *rc_cluster_map(rc_cache *c)
{
    rc_cluster *cl = c->cluster;
    rc_slotmap *m = rc_slotmap_cell_get(&cl->cell);
    if (m)
        return m;
    pthread_mutex_lock(&cl->refresh_mu);
    if (!(m = rc_slotmap_cell_get(&cl->cell)))
        discover(c);
    pthread_mutex_unlock(&cl->refresh_mu);
    if (!m && !(m = rc_slotmap_cell_get(&cl->cell)))
        rc_seterr(RC_EUNAVAILABLE, "redis cluster at %s: no slot map (no seed answered)",
                  cl->seeds);
    return m;
}

void rc_cluster_moved(rc_cache *c, const rc_slotmap *m, const rc_redirect *r,
                      const char *asked_host)
{
    rc_slotmap *patched = NULL;
    if (rc_slotmap_moved(m, r, asked_host, &patched) == RC_OK &&
        rc_slotmap_cell_swap(&c->cluster->cell, patched))
        rc_cluster_watch(c);
    rc_cluster_refresh(c);
}

/* ---- remembered deletes, by master ---- */

int rc_cluster_remember(rc_cache *c, const char *const *keys, size_t n,
                        const char *drop_glob)
{
    rc_slotmap *m = rc_slotmap_cell_get(&c->cluster->cell);
    int st = RC_OK;
    if (!m) /* replayed through the cluster before the next call */
        return rc_deletes_remember(c, &c->dels, keys, n, drop_glob);
    for (size_t i = 0; i < n; i++) {
        rc_cnode *node = rc_cluster_master(c, m, rc_slot(keys[i], strlen(keys[i])));
        rc_deletes *d = node ? &node->dels : &c->dels;
        if (rc_deletes_remember(c, d, &keys[i], 1, drop_glob) != RC_OK)
            st = RC_ENOMEM;
    }
    for (size_t i = 0; n == 0 && drop_glob && i < m->n; i++) {
        rc_cnode *node = NULL;
        if (m->nodes[i].master && rc_cluster_node(c, m->nodes[i].host, m->nodes[i].port,
                                                  &node) == RC_OK &&
            rc_deletes_remember(c, &node->dels, NULL, 0, drop_glob) != RC_OK)
            st = RC_ENOMEM;
    }
    rc_slotmap_release(m);
    return st;
}

size_t rc_cluster_pending(rc_cache *c)
{
    size_t n = atomic_load(&c->dels.count);
    rc_cluster *cl = c->cluster;
    if (!cl)
        return n;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->n; i++)
        n += atomic_load(&cl->nodes[i]->dels.count);
    pthread_mutex_unlock(&cl->mu);
    return n;
}

rc_circuit_state rc_cluster_circuit(rc_cache *c)
{
    rc_cluster *cl = c->cluster;
    rc_circuit_state worst = RC_CIRCUIT_CLOSED;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->n && worst != RC_CIRCUIT_OPEN; i++) {
        rc_circuit_state s = rc_breaker_state(&cl->nodes[i]->breaker);
        if (s != RC_CIRCUIT_CLOSED)
            worst = s;
    }
    pthread_mutex_unlock(&cl->mu);
    return worst;
}

uint64_t rc_cluster_connects(rc_cache *c)
{
    rc_cluster *cl = c->cluster;
    uint64_t n = 0;
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->n; i++)
        n += atomic_load(&cl->nodes[i]->pool.connects);
    pthread_mutex_unlock(&cl->mu);
    return n;
}

/* ---- the nodes, for tale health ---- */

/* The slot ranges node i of m masters, "a-b,c" (malloc'd). */
static char *slot_ranges(const rc_slotmap *m, size_t i)
{
    size_t size = 64, used = 0;
    char *s = calloc(1, size);
    for (unsigned a = 0; s && a < RC_SLOTS; a++) {
        if (m->master[a] != i)
            continue;
        unsigned b = a;
        while (b + 1 < RC_SLOTS && m->master[b + 1] == i)
            b++;
        if (used + 16 > size) {
            char *g = realloc(s, size *= 2);
            if (!g) {
                free(s);
                return NULL;
            }
            s = g;
        }
        used += (size_t)snprintf(s + used, size - used, a == b ? "%s%u" : "%s%u-%u",
                                 used ? "," : "", a, b);
        a = b;
    }
    return s;
}

/* Whether the node at host:port answers PING, as the masters' pools
 * connect (AUTH, TLS); why not into error. */
static bool answers(rc_cache *c, const char *host, int port, char error[256])
{
    rc_pool p;
    rc_link *l = NULL;
    bool ok = false;
    error[0] = '\0';
    if (rc_pool_init_at(&p, &c->pool, host, port) != RC_OK) {
        snprintf(error, 256, "out of memory");
        return false;
    }
    if (rc_pool_connect(&p, &l) == RC_OK) {
        const char *argv[1] = {"PING"};
        redisReply *r = rc_wire_command(l, 1, argv);
        ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        if (!ok)
            snprintf(error, 256, "PING: %s", r && r->str ? r->str : l->errstr);
        freeReplyObject(r);
    } else {
        snprintf(error, 256, "%s", rc_errmsg());
    }
    rc_link_close(l);
    rc_pool_destroy(&p);
    return ok;
}

int rc_cache_cluster_nodes(rc_cache *c, rc_cache_cluster_node **out, size_t *n)
{
    if (!c || !out || !n)
        return rc_seterr(RC_EINVAL, "rc_cache_cluster_nodes: NULL argument");
    *out = NULL;
    *n = 0;
    if (!c->cluster)
        return rc_seterr(RC_EINVAL, "rc_cache_cluster_nodes: no REDIS_CLUSTER_NODES");
    rc_slotmap *m = rc_cluster_map(c);
    if (!m)
        return RC_EUNAVAILABLE;
    rc_cache_cluster_node *v = calloc(m->n ? m->n : 1, sizeof *v);
    int st = v ? RC_OK : rc_seterr(RC_ENOMEM, "out of memory");
    for (int pass = 0; st == RC_OK && pass < 2; pass++) { /* masters first */
        for (size_t i = 0; st == RC_OK && i < m->n; i++) {
            const rc_slotnode *sn = &m->nodes[i];
            if (sn->master != (pass == 0))
                continue;
            rc_cache_cluster_node *d = &v[(*n)++];
            snprintf(d->address, sizeof d->address,
                     strchr(sn->host, ':') ? "[%s]:%d" : "%s:%d", sn->host, sn->port);
            snprintf(d->id, sizeof d->id, "%s", sn->id);
            d->master = sn->master;
            if (!(d->slots = sn->master ? slot_ranges(m, i) : calloc(1, 1)))
                st = rc_seterr(RC_ENOMEM, "out of memory");
            d->reachable = answers(c, sn->host, sn->port, d->error);
        }
    }
    rc_slotmap_release(m);
    if (st) {
        rc_cache_cluster_nodes_free(v, *n);
        v = NULL;
        *n = 0;
    }
    *out = v;
    return st;
}

void rc_cache_cluster_nodes_free(rc_cache_cluster_node *nodes, size_t n)
{
    for (size_t i = 0; nodes && i < n; i++)
        free(nodes[i].slots);
    free(nodes);
}
