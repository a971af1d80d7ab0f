/* check_slots.c - Redis Cluster key slots against a real cluster-enabled
 * redis-server (CLUSTER KEYSLOT): our slot function agrees with the
 * server's, and every auxiliary key of the cached decorator (lease,
 * negative entry) lands in its data key's slot, braces in the keys or not;
 * a prefix whose braces would split them is refused. */
#include "harness.h"
#include "core/slot.h"
#include "repository/cached.h"
#include "repocache/status.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static th_redis srv;
static redisContext *rd;

/* One server for the suite (started by main: a failed test leaves no
 * server of its own behind). */
static void setup(void)
{
    rd = th_redis_connect(&srv, NULL);
    ck_assert_ptr_nonnull(rd);
}

static void teardown(void) { redisFree(rd); }

/* A key of up to 24 bytes drawn mostly from braces and separators. */
static void tricky_key(unsigned *seed, char *out, size_t *len)
{
    static const char pool[] = "{}{}{}::~ab01xyz-{";
    size_t n = 1 + (size_t)rand_r(seed) % 24;
    for (size_t i = 0; i < n; i++)
        out[i] = pool[(size_t)rand_r(seed) % (sizeof pool - 1)];
    out[n] = '\0';
    *len = n;
}

/* The server's slot of each of keys[0..n), pipelined. */
static void server_slots(char **keys, size_t n, long long *slots)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(redisAppendCommand(rd, "CLUSTER KEYSLOT %b", keys[i], strlen(keys[i])),
                         REDIS_OK);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        ck_assert_int_eq(redisGetReply(rd, (void **)&r), REDIS_OK);
        ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
        slots[i] = r->integer;
        freeReplyObject(r);
    }
}

#define NKEYS 4000

START_TEST(test_slot_matches_the_server)
{
    static char *keys[NKEYS];
    static long long slots[NKEYS];
    unsigned seed = 7;
    char k[32];
    size_t len;
    for (size_t i = 0; i < NKEYS; i++) {
        tricky_key(&seed, k, &len);
        keys[i] = strdup(k);
    }
    server_slots(keys, NKEYS, slots);
    for (size_t i = 0; i < NKEYS; i++) {
        ck_assert_msg((long long)rc_slot(keys[i], strlen(keys[i])) == slots[i],
                      "slot of '%s': ours %u, the server's %lld", keys[i],
                      rc_slot(keys[i], strlen(keys[i])), slots[i]);
        free(keys[i]);
    }
    /* every tag names its slot, in at most three characters, brace-free */
    for (unsigned s = 0; s < RC_SLOTS; s++) {
        const char *t = rc_slot_tag(s);
        ck_assert(strlen(t) >= 1 && strlen(t) <= 3 && !strpbrk(t, "{}"));
        char tagged[16];
        snprintf(tagged, sizeof tagged, "x{%s}y", t);
        ck_assert_uint_eq(rc_slot(tagged, strlen(tagged)), s);
    }
}
END_TEST

/* A decorator's key state for prefix and ns, as rc_cached_repo_new sets it
 * (the caller frees r->head). */
static int keys_for(cached_repo *r, const char *prefix, const char *ns)
{
    memset(r, 0, sizeof *r);
    r->prefix = prefix;
    r->st.ns = ns;
    r->head_len = strlen(prefix) + strlen(ns) + 1;
    return rc_cached_keys_init(r);
}

#define NDATA 1500

/* For prefix: tricky data keys, their leases and negative entries all land
 * in one slot, as the server computes it. */
static void check_prefix(const char *prefix)
{
    static char *keys[3 * NDATA];
    static long long slots[3 * NDATA];
    cached_repo r;
    ck_assert_int_eq(keys_for(&r, prefix, "hero"), RC_OK);
    unsigned seed = 11;
    char rest[32], data[96];
    size_t len;
    for (size_t i = 0; i < NDATA; i++) {
        tricky_key(&seed, rest, &len);
        snprintf(data, sizeof data, "%shero:%s", prefix, rest);
        keys[3 * i] = strdup(data);
        keys[3 * i + 1] = rc_cached_lease_key(&r, data);
        keys[3 * i + 2] = rc_cached_negative_key(&r, data);
        ck_assert(keys[3 * i + 1] && keys[3 * i + 2]);
        ck_assert(rc_cached_is_negative_key(&r, keys[3 * i + 2]));
        ck_assert(!rc_cached_is_negative_key(&r, keys[3 * i + 1]));
    }
    server_slots(keys, 3 * NDATA, slots);
    for (size_t i = 0; i < NDATA; i++) {
        ck_assert_msg(slots[3 * i + 1] == slots[3 * i] && slots[3 * i + 2] == slots[3 * i],
                      "'%s' (slot %lld): lease '%s' %lld, negative '%s' %lld", keys[3 * i],
                      slots[3 * i], keys[3 * i + 1], slots[3 * i + 1], keys[3 * i + 2],
                      slots[3 * i + 2]);
        for (int j = 0; j < 3; j++)
            free(keys[3 * i + j]);
    }
    free(r.head);
}

START_TEST(test_aux_keys_share_the_data_key_slot)
{
    check_prefix("");
    check_prefix("app:");
    check_prefix("}odd}:");
    check_prefix("{tenant7}:"); /* a tagged head: every key in one slot */
    cached_repo r;
    ck_assert_int_eq(keys_for(&r, "", "hero"), RC_OK);
    char *lease = rc_cached_lease_key(&r, "hero:42");
    char expect[64];
    snprintf(expect, sizeof expect, "hero:~lease:{%s}42",
             rc_slot_tag(rc_slot("hero:42", 7)));
    ck_assert_str_eq(lease, expect);
    free(lease);
    free(r.head);
    ck_assert_int_eq(keys_for(&r, "{tenant7}:", "hero"), RC_OK);
    lease = rc_cached_lease_key(&r, "{tenant7}:hero:42");
    ck_assert_str_eq(lease, "{tenant7}:hero:~lease:42");
    free(lease);
    free(r.head);
}
END_TEST

START_TEST(test_splitting_prefix_refused)
{
    cached_repo r;
    const char *bad[] = {"a{b:", "{}:", "x{:", "{"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(keys_for(&r, bad[i], "hero"), RC_EINVAL);
        free(r.head); /* the decorator frees it with itself */
        ck_assert_ptr_nonnull(strstr(rc_errmsg(), "CACHE_KEY_PREFIX"));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("slots");
    const th_case cases[] = {
        {"slot_matches_the_server", test_slot_matches_the_server},
        {"aux_keys_share_the_data_key_slot", test_aux_keys_share_the_data_key_slot},
        {"splitting_prefix_refused", test_splitting_prefix_refused},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], setup, teardown, 0);
    /* The cluster bus port is the client port + 10000 unless named: a free
     * port above 55535 would leave none, so the bus gets one of its own. */
    char args[96];
    snprintf(args, sizeof args, "--cluster-enabled yes --cluster-port %d", th_free_port());
    if (th_redis_start(&srv, args) != 0)
        return EXIT_FAILURE;
    int status = th_run_suite(s);
    th_redis_stop(&srv);
    return status;
}
