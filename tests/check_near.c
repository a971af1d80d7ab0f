/* check_near.c - the near cache store: copies out, bounds, TTL on the
 * injected clock, SIEVE eviction, fenced fills, single flight with threads,
 * patterns, lock-free hits racing removals and growth. No Redis: the store
 * alone. */
#include "harness.h"

#include "cache/near.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double fake_now;
static double fake_clock(void *ud)
{
    (void)ud;
    return fake_now;
}

static rc_near_value bytes(const char *s)
{
    rc_near_value v = {.kind = RC_NEAR_BYTES, .len = strlen(s)};
    v.ptr = strdup(s);
    return v;
}

static rc_near_value hero(const char *id, const char *name)
{
    rc_hero *h = rc_hero_new();
    h->id = strdup(id);
    h->name = strdup(name);
    return (rc_near_value){.kind = RC_NEAR_ENTITY, .ops = &rc_hero_entity, .ptr = h};
}

/* Stores s under key through a fill of its own. */
static bool fill(rc_near *n, const char *key, const char *s, double ttl)
{
    rc_near_value out, v = bytes(s);
    uint64_t t;
    ck_assert_int_eq(rc_near_begin(n, key, 0, &out, &t), RC_NEAR_FILL);
    return rc_near_put(n, key, t, &v, strlen(s), ttl);
}

static void assert_bytes(rc_near *n, const char *key, const char *want)
{
    rc_near_value v;
    if (!want) {
        ck_assert_int_eq(rc_near_get(n, key, &v), RC_ENOTFOUND);
        return;
    }
    ck_assert_int_eq(rc_near_get(n, key, &v), RC_OK);
    ck_assert_int_eq(v.kind, RC_NEAR_BYTES);
    ck_assert_str_eq(v.ptr, want);
    rc_near_value_clear(&v);
}

START_TEST(test_copies_out)
{
    rc_near *n = rc_near_new(100, 1 << 20, 60);
    rc_near_value out, v = hero("h1", "Aria");
    uint64_t t;
    ck_assert_int_eq(rc_near_begin(n, "hero:h1", 0, &out, &t), RC_NEAR_FILL);
    ck_assert_uint_ne(t, 0);
    ck_assert(rc_near_put(n, "hero:h1", t, &v, 100, 60));
    ck_assert_ptr_null(v.ptr); /* taken */
    rc_near_value a, b;
    ck_assert_int_eq(rc_near_get(n, "hero:h1", &a), RC_OK);
    ck_assert_int_eq(rc_near_get(n, "hero:h1", &b), RC_OK);
    ck_assert_ptr_ne(a.ptr, b.ptr); /* each caller owns its copy */
    ck_assert_str_eq(((rc_hero *)a.ptr)->name, "Aria");
    ((rc_hero *)a.ptr)->name[0] = 'X'; /* the caller's copy, not the store's */
    rc_near_value_clear(&a);
    ck_assert_str_eq(((rc_hero *)b.ptr)->name, "Aria");
    rc_near_value_clear(&b);
    /* a negative answer */
    rc_near_value neg = {.kind = RC_NEAR_NEGATIVE};
    ck_assert_int_eq(rc_near_begin(n, "hero:~none:x", 0, &out, &t), RC_NEAR_FILL);
    ck_assert(rc_near_put(n, "hero:~none:x", t, &neg, 1, 60));
    ck_assert_int_eq(rc_near_begin(n, "hero:~none:x", 0, &out, &t), RC_NEAR_HIT);
    ck_assert_int_eq(out.kind, RC_NEAR_NEGATIVE);
    rc_near_stats st;
    rc_near_get_stats(n, &st);
    ck_assert_uint_eq(st.entries, 2);
    ck_assert_uint_eq(st.hits, 3);
    ck_assert_uint_eq(st.misses, 2);
    rc_near_free(n);
}
END_TEST

START_TEST(test_fill_fenced_by_invalidation)
{
    /* An invalidation (or a reset, or a pattern removal) during a fill
     * removes its placeholder: the fill stores nothing. */
    rc_near *n = rc_near_new(100, 1 << 20, 60);
    rc_near_value out, v = bytes("old");
    uint64_t t;
    ck_assert_int_eq(rc_near_begin(n, "k", 0, &out, &t), RC_NEAR_FILL);
    ck_assert(rc_near_remove(n, "k"));
    ck_assert(!rc_near_put(n, "k", t, &v, 3, 60));
    ck_assert_ptr_null(v.ptr); /* freed on refusal */
    assert_bytes(n, "k", NULL);

    v = bytes("old");
    ck_assert_int_eq(rc_near_begin(n, "k", 0, &out, &t), RC_NEAR_FILL);
    rc_near_reset(n);
    ck_assert(!rc_near_put(n, "k", t, &v, 3, 60));

    v = bytes("old");
    ck_assert_int_eq(rc_near_begin(n, "hero:lang:en", 0, &out, &t), RC_NEAR_FILL);
    rc_near_remove_matching(n, "hero:*");
    ck_assert(!rc_near_put(n, "hero:lang:en", t, &v, 3, 60));

    /* a later fill's ticket is not an older one's */
    uint64_t t1, t2;
    ck_assert_int_eq(rc_near_begin(n, "k", 0, &out, &t1), RC_NEAR_FILL);
    rc_near_remove(n, "k");
    ck_assert_int_eq(rc_near_begin(n, "k", 0, &out, &t2), RC_NEAR_FILL);
    v = bytes("stale");
    ck_assert(!rc_near_put(n, "k", t1, &v, 5, 60));
    v = bytes("fresh");
    ck_assert(rc_near_put(n, "k", t2, &v, 5, 60));
    assert_bytes(n, "k", "fresh");
    /* abandon gives the placeholder up */
    ck_assert_int_eq(rc_near_begin(n, "a", 0, &out, &t), RC_NEAR_FILL);
    rc_near_abandon(n, "a", t);
    ck_assert_int_eq(rc_near_begin(n, "a", 0, &out, &t), RC_NEAR_FILL);
    rc_near_free(n);
}
END_TEST

START_TEST(test_ttl_and_max_ttl)
{
    rc_near *n = rc_near_new(100, 1 << 20, 300);
    rc_near_set_clock(n, fake_clock, NULL);
    fake_now = 1000;
    ck_assert(fill(n, "short", "v", 10));
    ck_assert(fill(n, "long", "v", 3600)); /* capped at max_ttl = 300 */
    ck_assert_int_eq(rc_near_ttl(n, "short"), 10);
    ck_assert_int_eq(rc_near_ttl(n, "long"), 300);
    fake_now = 1009.5;
    assert_bytes(n, "short", "v");
    ck_assert_int_eq(rc_near_ttl(n, "short"), 1);
    fake_now = 1010;
    assert_bytes(n, "short", NULL);
    fake_now = 1299;
    assert_bytes(n, "long", "v");
    fake_now = 1300;
    assert_bytes(n, "long", NULL);
    ck_assert_int_eq(rc_near_ttl(n, "long"), -2);
    /* a TTL of 0 (Redis said the key is about to die) stores nothing */
    ck_assert(!fill(n, "dying", "v", 0));
    rc_near_stats st;
    rc_near_get_stats(n, &st);
    ck_assert_uint_eq(st.entries, 0);
    rc_near_free(n);
}
END_TEST

START_TEST(test_bounds)
{
    /* entries */
    rc_near *n = rc_near_new(64, 1 << 30, 60);
    char k[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "key%d", i);
        fill(n, k, "value", 60);
    }
    rc_near_stats st;
    rc_near_get_stats(n, &st);
    ck_assert_uint_le(st.entries, 64);
    ck_assert_uint_ge(st.entries, 32);
    ck_assert_uint_eq(st.evictions, 1000 - st.entries);
    rc_near_free(n);
    /* bytes: 100 KB of room, 1 KB values */
    n = rc_near_new(100000, 100000, 60);
    char *big = malloc(1001);
    memset(big, 'x', 1000);
    big[1000] = '\0';
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "key%d", i);
        fill(n, k, big, 60);
    }
    rc_near_get_stats(n, &st);
    ck_assert_uint_le(st.bytes, 100000 + 16 * 1100); /* per-shard rounding */
    ck_assert_uint_ge(st.entries, 40);
    ck_assert_uint_le(st.entries, 100);
    /* a value larger than a shard's share is never stored */
    char *huge = malloc(200001);
    memset(huge, 'y', 200000);
    huge[200000] = '\0';
    ck_assert(!fill(n, "huge", huge, 60));
    assert_bytes(n, "huge", NULL);
    free(big);
    free(huge);
    rc_near_free(n);
}
END_TEST

START_TEST(test_sieve_keeps_hot_keys)
{
    /* One hot key read between floods of one-hit keys survives them. */
    rc_near *n = rc_near_new(16, 1 << 30, 60); /* small: a few shards */
    ck_assert(fill(n, "hot", "h", 60));
    char k[32];
    for (int i = 0; i < 2000; i++) {
        assert_bytes(n, "hot", "h");
        snprintf(k, sizeof k, "cold%d", i);
        fill(n, k, "c", 60);
    }
    assert_bytes(n, "hot", "h");
    rc_near_free(n);
}
END_TEST

START_TEST(test_patterns)
{
    rc_near *n = rc_near_new(100, 1 << 20, 60);
    fill(n, "hero:1", "a", 60);
    fill(n, "hero:lang:en", "b", 60);
    fill(n, "heroic:1", "c", 60);
    fill(n, "h*ro:1", "d", 60);
    ck_assert_uint_eq(rc_near_remove_matching(n, "hero:*"), 2);
    assert_bytes(n, "heroic:1", "c");
    ck_assert_uint_eq(rc_near_remove_matching(n, "h\\*ro:*"), 1);
    assert_bytes(n, "heroic:1", "c");
    ck_assert_uint_eq(rc_near_reset(n), 1);
    /* an unconditional put replaces a value and a placeholder */
    rc_near_value v = bytes("raw1");
    ck_assert(rc_near_put(n, "raw", 0, &v, 4, 60));
    v = bytes("raw2");
    ck_assert(rc_near_put(n, "raw", 0, &v, 4, 60));
    assert_bytes(n, "raw", "raw2");
    rc_near_stats st;
    rc_near_get_stats(n, &st);
    ck_assert_uint_eq(st.entries, 1);
    rc_near_free(n);
}
END_TEST

/* ---- single flight ---- */

typedef struct flight {
    rc_near *n;
    atomic_int *loads;     /* loads done by all threads */
    int result;            /* what rc_near_begin said first */
    char got[16];          /* the value read */
} flight;

static void *reader(void *arg)
{
    flight *f = arg;
    rc_near_value out;
    uint64_t t;
    f->result = rc_near_begin(f->n, "k", 5, &out, &t);
    if (f->result == RC_NEAR_FILL) {
        atomic_fetch_add(f->loads, 1);
        usleep(20000); /* a 20 ms database load */
        rc_near_value v = bytes("loaded");
        ck_assert(rc_near_put(f->n, "k", t, &v, 6, 60));
        snprintf(f->got, sizeof f->got, "loaded");
    } else if (f->result == RC_NEAR_HIT) {
        snprintf(f->got, sizeof f->got, "%s", (char *)out.ptr);
        rc_near_value_clear(&out);
    }
    return NULL;
}

START_TEST(test_single_flight)
{
    rc_near *n = rc_near_new(100, 1 << 20, 60);
    atomic_int loads = 0;
    enum { T = 16 };
    flight f[T];
    pthread_t th[T];
    for (int i = 0; i < T; i++) {
        f[i] = (flight){.n = n, .loads = &loads};
        pthread_create(&th[i], NULL, reader, &f[i]);
    }
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&loads), 1);
    for (int i = 0; i < T; i++)
        ck_assert_str_eq(f[i].got, "loaded");
    rc_near_stats st;
    rc_near_get_stats(n, &st);
    ck_assert_uint_le(st.waits, T - 1);
    rc_near_free(n);
}
END_TEST

START_TEST(test_wait_is_bounded)
{
    /* A filler that never finishes: the waiter gives up after wait_s. */
    rc_near *n = rc_near_new(100, 1 << 20, 60);
    rc_near_value out;
    uint64_t t, t2;
    ck_assert_int_eq(rc_near_begin(n, "k", 0, &out, &t), RC_NEAR_FILL);
    double t0 = th_now();
    ck_assert_int_eq(rc_near_begin(n, "k", 0.1, &out, &t2), RC_NEAR_BUSY);
    ck_assert_uint_eq(t2, 0);
    ck_assert(th_now() - t0 >= 0.09);
    /* abandoned: the next reader fills */
    rc_near_abandon(n, "k", t);
    ck_assert_int_eq(rc_near_begin(n, "k", 0.1, &out, &t2), RC_NEAR_FILL);
    rc_near_free(n);
}
END_TEST

/* ---- lock-free hits ---- */

typedef struct churn {
    rc_near *n;
    atomic_bool *stop;
    long hits, wrong;      /* hits seen, hits whose value was not its key's */
} churn;

/* Hits the keys k0..k63, packed hero copies, checking each one's name. */
static void *hitter(void *arg)
{
    churn *c = arg;
    char key[16];
    for (unsigned i = 0; !atomic_load(c->stop); i++) {
        snprintf(key, sizeof key, "k%u", i % 64);
        rc_near_value out;
        uint64_t t;
        int r = rc_near_begin_as(c->n, key, 0, i % 2 == 0, 0, &out, &t);
        if (r == RC_NEAR_HIT) {
            c->hits++;
            c->wrong += strcmp(((rc_hero *)out.ptr)->name, key) != 0;
            rc_near_value_clear(&out);
        } else if (r == RC_NEAR_FILL) {
            rc_near_abandon(c->n, key, t);
        }
    }
    return NULL;
}

START_TEST(test_lock_free_hits_race_removals)
{
    /* Two threads hit while this one removes, refills, evicts (the bound is
     * below the keys written) and grows the tables (new keys): under ASan a
     * hit that read a freed entry fails, under TSan an unordered one. */
    rc_near *n = rc_near_new(200, 1 << 24, 60);
    atomic_bool stop = false;
    churn c[2] = {{.n = n, .stop = &stop}, {.n = n, .stop = &stop}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, hitter, &c[i]);
    char key[16];
    for (int round = 0; round < 20000; round++) {
        snprintf(key, sizeof key, "k%d", round % 64);
        rc_near_remove(n, key);
        rc_near_value out, v = hero("x", key);
        uint64_t t;
        if (rc_near_begin(n, key, 1, &out, &t) == RC_NEAR_FILL)
            rc_near_put(n, key, t, &v, 64, 60);
        else {
            rc_near_value_clear(&out);
            rc_near_value_clear(&v);
        }
        snprintf(key, sizeof key, "other%d", round);
        v = hero("x", key);
        if (rc_near_begin(n, key, 1, &out, &t) == RC_NEAR_FILL)
            rc_near_put(n, key, t, &v, 64, 60);
        else
            rc_near_value_clear(&v);
        if (round % 5000 == 4999)
            rc_near_reset(n);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(c[0].wrong + c[1].wrong, 0);
    ck_assert_int_gt(c[0].hits + c[1].hits, 0);
    rc_near_stats st;
    rc_near_get_stats(n, &st);
    ck_assert_uint_ge(st.hits, (uint64_t)(c[0].hits + c[1].hits));
    rc_near_free(n);
}
END_TEST

static Suite *near_suite(void)
{
    Suite *s = suite_create("near");
    const th_case cases[] = {
        {"copies_out", test_copies_out},
        {"lock_free_hits", test_lock_free_hits_race_removals},
        {"fill_fenced", test_fill_fenced_by_invalidation},
        {"ttl", test_ttl_and_max_ttl},
        {"bounds", test_bounds},
        {"sieve", test_sieve_keeps_hot_keys},
        {"patterns", test_patterns},
        {"single_flight", test_single_flight},
        {"wait_bounded", test_wait_is_bounded},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 0);
    return s;
}

int main(void)
{
    return th_run_suite(near_suite());
}
