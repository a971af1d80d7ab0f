/*
 * cluster_tracking.c - the near cache's coherence over a Redis Cluster
 * (cluster.h): one tracker per master, the set of the current masters'
 * trackers that a hit asks, and its change with the masters.
 *
 * Why every master's tracker and not the key's master's: a key's slot may
 * have moved since its entry was filled, and an invalidation its old
 * master wrote before a writer's return may still be unread on that
 * master's subscriber; asking every tracker applies it wherever it is.
 * With BCAST and one PREFIX per namespace, each master invalidates every
 * key it changes, whatever its slot, so a migration between known masters
 * needs nothing more: the source deletes the key (an invalidation), the
 * target's writes invalidate it too.
 */
#include "cache/service.h"

#include <stdlib.h>
#include <string.h>

/* The tracker of node, made (with every prefix) when it has none; NULL when
 * out of memory. watch_mu held. */
static rc_tracking *node_tracker(rc_cache *c, rc_cnode *node)
{
    rc_tracking *t = atomic_load(&node->tracking);
    if (t)
        return t;
    if (rc_tier_tracker(c, &node->pool, node->where, &t) != RC_OK)
        return NULL;
    const rc_strset *p = &c->cluster->prefixes;
    for (size_t i = 0; i < p->n; i++) {
        if (rc_tracking_add_prefix(t, p->items[i]) != RC_OK) {
            rc_tracking_free(t);
            return NULL;
        }
    }
    atomic_store(&node->tracking, t);
    return t;
}

/* The trackers of m's masters, in m's order; NULL when out of memory (or a
 * master has no node). watch_mu held. */
static rc_watchset *masters_of(rc_cache *c, const rc_slotmap *m)
{
    rc_watchset *w = calloc(1, sizeof *w + m->n * sizeof w->t[0]);
    for (size_t i = 0; w && i < m->n; i++) {
        rc_cnode *node = NULL;
        if (!m->nodes[i].master)
            continue;
        if (rc_cluster_node(c, m->nodes[i].host, m->nodes[i].port, &node) != RC_OK ||
            !(w->t[w->n] = node_tracker(c, node))) {
            free(w);
            return NULL;
        }
        w->n++;
    }
    return w;
}

static bool same_set(const rc_watchset *a, const rc_watchset *b)
{
    if (!a || a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (a->t[i] != b->t[i])
            return false;
    return true;
}

void rc_cluster_watch(rc_cache *c)
{
    rc_cluster *cl = c->cluster;
    if (!cl || !c->near)
        return;
    rc_slotmap *m = rc_slotmap_cell_get(&cl->cell);
    if (!m)
        return;
    pthread_mutex_lock(&cl->watch_mu);
    rc_watchset *old = atomic_load(&cl->watched), *w = masters_of(c, m);
    if (w && same_set(old, w)) {
        free(w);
    } else if (w) {
        w->older = old;
        atomic_store_explicit(&cl->watched, w, memory_order_release);
        /* New masters: every entry dies, every tracker re-arms (on a master
         * that was a replica, or away, it may have missed invalidations). */
        for (size_t i = 0; i < w->n; i++)
            rc_tracking_lose(w->t[i], "the cluster's masters changed");
    } else { /* cannot watch them all: serve nothing */
        rc_tier_flush(c);
        for (size_t i = 0; old && i < old->n; i++)
            rc_tracking_lose(old->t[i], "out of memory watching the cluster's masters");
    }
    pthread_mutex_unlock(&cl->watch_mu);
    rc_slotmap_release(m);
}

int rc_cluster_track(rc_cache *c, const char *prefix)
{
    rc_cluster *cl = c->cluster;
    pthread_mutex_lock(&cl->watch_mu);
    int st = rc_strset_has(&cl->prefixes, prefix) ? RC_OK : rc_strset_add(&cl->prefixes, prefix);
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; st == RC_OK && i < cl->n; i++) {
        rc_tracking *t = atomic_load(&cl->nodes[i]->tracking);
        if (t)
            st = rc_tracking_add_prefix(t, prefix);
    }
    pthread_mutex_unlock(&cl->mu);
    pthread_mutex_unlock(&cl->watch_mu);
    return st;
}

bool rc_cluster_near_ready(rc_cache *c, bool strict, double now)
{
    const rc_watchset *w = atomic_load_explicit(&c->cluster->watched, memory_order_acquire);
    if (!w || w->n == 0)
        return false;
    if (strict && w->n > 1)
        return rc_tracking_ready_all(w->t, w->n, now);
    for (size_t i = 0; i < w->n; i++)
        if (!rc_tracking_ready_at(w->t[i], strict, now))
            return false;
    return true;
}

void rc_cluster_near_sync(rc_cache *c)
{
    const rc_watchset *w = atomic_load_explicit(&c->cluster->watched, memory_order_acquire);
    for (size_t i = 0; w && i < w->n; i++)
        rc_tracking_sync(w->t[i]);
}

void rc_cluster_tracking_stats(rc_cache *c, rc_tracking_stats *st)
{
    rc_cluster *cl = c->cluster;
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&cl->watch_mu);
    const rc_watchset *w = atomic_load(&cl->watched);
    st->coherent = w && w->n > 0;
    for (size_t i = 0; w && i < w->n; i++) {
        rc_tracking_stats one;
        rc_tracking_get_stats(w->t[i], &one);
        st->coherent = st->coherent && one.coherent;
    }
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->n; i++) {
        rc_tracking_stats one;
        rc_tracking_get_stats(atomic_load(&cl->nodes[i]->tracking), &one);
        st->invalidations += one.invalidations;
        st->losses += one.losses;
        st->arms += one.arms;
    }
    pthread_mutex_unlock(&cl->mu);
    pthread_mutex_unlock(&cl->watch_mu);
}

void rc_cluster_node_lose(rc_cnode *node, const char *why)
{
    rc_tracking_lose(atomic_load(&node->tracking), why);
}

void rc_cluster_unwatch(rc_cache *c)
{
    rc_cluster *cl = c->cluster;
    if (!cl)
        return;
    pthread_mutex_lock(&cl->watch_mu);
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->n; i++)
        rc_tracking_free(atomic_exchange(&cl->nodes[i]->tracking, NULL));
    pthread_mutex_unlock(&cl->mu);
    rc_watchset *w = atomic_exchange(&cl->watched, NULL);
    while (w) {
        rc_watchset *older = w->older;
        free(w);
        w = older;
    }
    pthread_mutex_unlock(&cl->watch_mu);
}
