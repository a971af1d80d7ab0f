/*
 * eviction.c - the near cache's eviction policy against plain LRU on a
 * skewed trace: Zipf(0.99) over 1,000,000 keys, capacity 10,000 entries,
 * 2,000,000 requests from a fixed seed. The near cache runs as built (SIEVE,
 * sharded); LRU is a reference model written here (one hash table and one
 * recency list, no shards). Both see the same requests; a miss stores the
 * key. Prints both hit ratios.
 */
#include "eviction.h"

#include "cache/near.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS 1000000u
#define CAPACITY 10000u
#define NREQUESTS 2000000u
#define ZIPF_S 0.99

/* xorshift64*: the trace generator (deterministic). */
static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ULL;
}

/* The trace: NREQUESTS key numbers drawn from Zipf(ZIPF_S). */
static uint32_t *make_trace(void)
{
    double *cdf = malloc(NKEYS * sizeof *cdf);
    uint32_t *trace = malloc(NREQUESTS * sizeof *trace);
    if (!cdf || !trace) {
        free(cdf);
        free(trace);
        return NULL;
    }
    double sum = 0;
    for (uint32_t i = 0; i < NKEYS; i++)
        cdf[i] = (sum += pow((double)i + 1, -ZIPF_S));
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (uint32_t r = 0; r < NREQUESTS; r++) {
        double u = (double)(next_rand(&x) >> 11) / 9007199254740992.0 * sum;
        uint32_t lo = 0, hi = NKEYS - 1;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        trace[r] = lo;
    }
    free(cdf);
    return trace;
}

/* ---- reference LRU ---- */

#define NONE UINT32_MAX
#define NBUCKETS (1u << 15)

typedef struct lru {
    struct {
        uint32_t key;          /* key number */
        uint32_t newer, older; /* recency list (NONE at the ends) */
        uint32_t hnext;        /* hash chain */
    } *node;                   /* CAPACITY nodes */
    uint32_t *bucket;          /* chain heads */
    uint32_t used, head, tail; /* nodes in use; newest; oldest */
} lru;

static uint32_t *chain_of(lru *l, uint32_t key)
{
    return &l->bucket[(key * 2654435761u) & (NBUCKETS - 1)];
}

static void lru_unlink(lru *l, uint32_t i)
{
    if (l->node[i].newer != NONE)
        l->node[l->node[i].newer].older = l->node[i].older;
    else
        l->head = l->node[i].older;
    if (l->node[i].older != NONE)
        l->node[l->node[i].older].newer = l->node[i].newer;
    else
        l->tail = l->node[i].newer;
}

static void lru_push(lru *l, uint32_t i)
{
    l->node[i].newer = NONE;
    l->node[i].older = l->head;
    if (l->head != NONE)
        l->node[l->head].newer = i;
    l->head = i;
    if (l->tail == NONE)
        l->tail = i;
}

/* One request: true on a hit; a miss stores the key, evicting the LRU. */
static bool lru_access(lru *l, uint32_t key)
{
    uint32_t i = *chain_of(l, key);
    while (i != NONE && l->node[i].key != key)
        i = l->node[i].hnext;
    if (i != NONE) {
        lru_unlink(l, i);
        lru_push(l, i);
        return true;
    }
    if (l->used < CAPACITY) {
        i = l->used++;
    } else {
        i = l->tail;
        lru_unlink(l, i);
        uint32_t *p = chain_of(l, l->node[i].key);
        while (*p != i)
            p = &l->node[*p].hnext;
        *p = l->node[i].hnext;
    }
    l->node[i].key = key;
    l->node[i].hnext = *chain_of(l, key);
    *chain_of(l, key) = i;
    lru_push(l, i);
    return false;
}

static double lru_hit_ratio(const uint32_t *trace)
{
    lru l = {malloc(CAPACITY * sizeof *l.node), malloc(NBUCKETS * sizeof *l.bucket), 0, NONE,
             NONE};
    uint32_t hits = 0;
    if (l.node && l.bucket) {
        for (uint32_t b = 0; b < NBUCKETS; b++)
            l.bucket[b] = NONE;
        for (uint32_t r = 0; r < NREQUESTS; r++)
            hits += lru_access(&l, trace[r]);
    }
    double ratio = l.node && l.bucket ? (double)hits / NREQUESTS : -1;
    free(l.node);
    free(l.bucket);
    return ratio;
}

/* ---- the near cache as built ---- */

static double near_hit_ratio(const uint32_t *trace)
{
    rc_near *n = rc_near_new(CAPACITY, (size_t)1 << 40, 3600);
    if (!n)
        return -1;
    char key[16];
    for (uint32_t r = 0; r < NREQUESTS; r++) {
        snprintf(key, sizeof key, "k%u", trace[r]);
        rc_near_value out;
        uint64_t ticket;
        int res = rc_near_begin(n, key, 0, &out, &ticket);
        if (res == RC_NEAR_HIT) {
            rc_near_value_clear(&out);
        } else if (res == RC_NEAR_FILL) {
            rc_near_value v = {.kind = RC_NEAR_NEGATIVE};
            rc_near_put(n, key, ticket, &v, 1, 3600);
        }
    }
    rc_near_stats st;
    rc_near_get_stats(n, &st);
    rc_near_free(n);
    return (double)st.hits / (double)(st.hits + st.misses);
}

int bench_eviction(double *sieve, double *lru)
{
    uint32_t *trace = make_trace();
    if (!trace)
        return -1;
    *sieve = near_hit_ratio(trace);
    *lru = lru_hit_ratio(trace);
    free(trace);
    return *sieve < 0 || *lru < 0 ? -1 : 0;
}
