/*
 * memory.c - bytes of process memory per hero held in the near cache.
 *
 *   bench_memory [--heroes N]
 *
 * N distinct heroes (default 100,000; about 300 bytes of JSON each, like the
 * bench's) are written into Redis as cache entries (envelopes, pipelined by
 * rc_cache_mset), then read once each through a cached repository, which
 * brings each into the near cache (a Redis hit fills it); the wrapped
 * repository is an empty in-memory SQLite database, so a read that did not
 * come from the cache fails and is counted. The near cache is sized to hold
 * them all: CACHE_L1_MAX_ENTRIES = 2N (the bound is split evenly over its
 * shards, which do not fill evenly) and CACHE_L1_MAX_BYTES = 2 GiB.
 * Every read runs in the main thread, so what the near cache allocates on a
 * fill is in malloc's main arena: the figure is the growth of
 * mallinfo2().uordblks (bytes in use) over the reads, divided by the
 * entries added, beside the growth of the resident set (from
 * /proc/self/statm), the near cache's own accounting (encoded size + key +
 * 64 per entry) and the heap a bare decoded hero takes (1,000 clones). Keys
 * live under CACHE_KEY_PREFIX + "bench-memory:" and are removed at the end.
 */
#include "support.h"

#include "repocache/cached_repository.h"
#include "repocache/codec.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 1000
#define PREFIX "bench-memory:"

/* Bytes of heap in use (main arena). */
static double heap_now(void) { return (double)mallinfo2().uordblks; }

/* Resident set in bytes, or 0. */
static double rss_now(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

/* Hero number i, as stored (id and timestamps set); NULL on ENOMEM. */
static rc_hero *hero_number(long i)
{
    char name[64], id[32];
    rc_hero *h;
    snprintf(name, sizeof name, "Memory hero %ld", i);
    snprintf(id, sizeof id, "mem-%07ld", i);
    h = bench_hero_new(name, "a bench hero with a long green cloak", "en");
    if (h && (!(h->id = strdup(id)) ||
              !(h->created_at = strdup("2026-01-01T00:00:00.000000+00:00")) ||
              !(h->updated_at = strdup("2026-01-01T00:00:00.000000+00:00")))) {
        rc_hero_free(h);
        h = NULL;
    }
    return h;
}

/* Writes heroes [from, to) into Redis as by-id cache entries. */
static int put_batch(bench_side *x, long from, long to)
{
    char *keys[BATCH] = {NULL}, *vals[BATCH] = {NULL};
    size_t lens[BATCH];
    size_t n = (size_t)(to - from);
    int rc = RC_OK;
    for (size_t k = 0; rc == RC_OK && k < n; k++) {
        rc_hero *h = hero_number(from + (long)k);
        rc = h ? rc_strategy_key_id(&x->st, rc_cache_prefix(x->cache), h->id, &keys[k])
               : RC_ENOMEM;
        if (rc == RC_OK)
            rc = rc_envelope_encode(x->st.codec, h, x->st.ttl, &vals[k], &lens[k]);
        rc_hero_free(h);
    }
    if (rc == RC_OK)
        rc = rc_cache_mset(x->cache, (const char *const *)keys,
                           (const char *const *)vals, lens, n, x->st.ttl);
    for (size_t k = 0; k < n; k++) {
        free(keys[k]);
        free(vals[k]);
    }
    return rc;
}

/* Reads heroes [from, to) through the cached repository; *failed = reads
 * that did not return the hero. */
static void read_range(bench_side *x, long from, long to, long *failed)
{
    char id[32];
    for (long i = from; i < to; i++) {
        void *e = NULL;
        snprintf(id, sizeof id, "mem-%07ld", i);
        *failed += rc_repo_find_by_id(x->cached, id, &e) != RC_OK;
        rc_hero_free(e);
    }
}

/* Heap bytes one decoded hero takes (the mean over 1,000 clones). */
static double bare_hero(void)
{
    enum { N = 1000 };
    static rc_hero *c[N];
    rc_hero *h = hero_number(0);
    double h0 = heap_now(), h1;
    for (int i = 0; h && i < N; i++)
        c[i] = rc_hero_clone(h);
    h1 = heap_now();
    for (int i = 0; i < N; i++)
        rc_hero_free(c[i]);
    rc_hero_free(h);
    return (h1 - h0) / N;
}

typedef struct mem_result {
    double heap, rss;       /* growth over the reads */
    uint64_t entries;       /* entries added to the near cache */
    uint64_t bytes;         /* their accounted size */
    uint64_t evictions;     /* entries evicted meanwhile (0 when sized right) */
    long failed;            /* reads that did not return the hero */
} mem_result;

/* Fills Redis, then measures the reads of heroes 1..n-1 (hero 0 is read
 * first, so the near cache's own structures exist before the measure). */
static int measure(bench_side *x, long n, mem_result *r)
{
    rc_cache_stats a, b;
    double h0, r0;
    int rc = RC_OK;
    for (long i = 0; rc == RC_OK && i < n; i += BATCH)
        rc = put_batch(x, i, i + BATCH < n ? i + BATCH : n);
    if (rc != RC_OK)
        return rc;
    read_range(x, 0, 1, &r->failed);
    rc_cache_get_stats(x->cache, &a);
    malloc_trim(0);
    h0 = heap_now();
    r0 = rss_now();
    read_range(x, 1, n, &r->failed);
    r->heap = heap_now() - h0;
    r->rss = rss_now() - r0;
    rc_cache_get_stats(x->cache, &b);
    r->entries = b.near_entries - a.near_entries;
    r->bytes = b.near_bytes - a.near_bytes;
    r->evictions = b.near_evictions - a.near_evictions;
    return RC_OK;
}

int main(int argc, char **argv)
{
    long n = 100000;
    char max[32];
    bench_side x;
    mem_result r = {0};
    int rc;
    if (argc == 3 && !strcmp(argv[1], "--heroes"))
        n = atol(argv[2]);
    if ((argc != 1 && argc != 3) || n < 2 || n > 10000000) {
        fprintf(stderr, "usage: bench_memory [--heroes N]\n"
                        "  Redis from REDIS_URL (or REDIS_HOST/REDIS_PORT)\n");
        return 2;
    }
    snprintf(max, sizeof max, "%ld", 2 * n);
    const char *kv[] = {"CACHE_L1_MAX_ENTRIES", max, "CACHE_L1_MAX_BYTES",
                        "2147483647", NULL};
    if (bench_side_open(&x, ":memory:", PREFIX, kv) != RC_OK ||
        bench_side_wrap(&x, NULL) != RC_OK)
        return 1;
    rc = measure(&x, n, &r);
    if (rc == RC_OK && r.entries > 0 && r.heap <= 0)
        printf("near-cache memory: mallinfo2 sees no heap growth (a sanitizer's "
               "allocator?); resident set %.0f bytes per hero\n",
               r.rss / (double)r.entries);
    else if (rc == RC_OK && r.entries > 0)
        printf("near-cache memory: %ld heroes read into it, %llu entries added, "
               "%ld reads failed, %llu evicted\n  %.0f bytes of heap per hero (mallinfo2 "
               "uordblks), %.0f bytes of resident set per hero;\n  its own "
               "accounting %.0f bytes per entry; a bare decoded hero %.0f bytes "
               "of heap\n", n - 1, (unsigned long long)r.entries, r.failed,
               (unsigned long long)r.evictions,
               r.heap / (double)r.entries, r.rss / (double)r.entries,
               (double)r.bytes / (double)r.entries, bare_hero());
    else
        fprintf(stderr, "bench_memory: %s: %s (entries added %llu)\n",
                rc_strerror(rc), rc_errmsg(), (unsigned long long)r.entries);
    rc_cached_repo_invalidate(x.cached, "all", NULL, 0, NULL);
    bench_side_close(&x);
    return rc == RC_OK && r.entries > 0 ? 0 : 1;
}
