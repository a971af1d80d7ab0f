/* check_route.c - the tests' own routing of commands (support/route.h),
 * which the cluster pass (scripts/cluster.sh) relies on to look at what the
 * services wrote: on one private server, one connection as redisCommand;
 * on a real Redis Cluster of three masters and three replicas
 * (support/cluster.h), each key on the master of its slot and no other,
 * KEYS, DBSIZE, SCAN and FLUSHALL over every master, DEL and EXISTS of keys
 * in different slots, and MOVED and ASK followed after the route's map went
 * stale. */
#include "cluster.h"
#include "core/slot.h"
#include "route.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static th_cluster cl;

#define NKEYS 30

/* The shared-cluster form of cl (as th_redis_shared makes it from
 * REPOCACHE_TEST_REDIS_CLUSTER), two of its nodes as seeds. */
static th_redis cluster_as_shared(void)
{
    th_redis r;
    memset(&r, 0, sizeof r);
    snprintf(r.url, sizeof r.url, "%s127.0.0.1:%d,127.0.0.1:%d", TH_REDIS_CLUSTER_SCHEME,
             cl.node[0].port, cl.node[1].port);
    r.port = cl.node[0].port;
    return r;
}

static long long integer(redisReply *r)
{
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->type == REDIS_REPLY_INTEGER, "not an integer: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* GET key through rt; NULL when absent (an error fails the test). */
static char *get(th_route *rt, const char *key)
{
    redisReply *r = th_route_cmd(rt, "GET %s", key);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL, "GET %s: %s",
                  key, r->type == REDIS_REPLY_ERROR ? r->str : "");
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    freeReplyObject(r);
    return v;
}

static void set(th_route *rt, const char *key, const char *value)
{
    redisReply *r = th_route_cmd(rt, "SET %s %s", key, value);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(r->type == REDIS_REPLY_STATUS, "SET %s: %s", key,
                  r->type == REDIS_REPLY_ERROR ? r->str : "");
    freeReplyObject(r);
}

/* The master of key's slot now (CLUSTER SLOTS of a master). */
static int owner(const char *key)
{
    int m = th_cluster_other_master(&cl, -1);
    int o = th_cluster_owner(&cl, m, rc_slot(key, strlen(key)));
    ck_assert_int_ge(o, 0);
    return o;
}

START_TEST(test_one_server_as_before)
{
    th_redis p;
    ck_assert_int_eq(th_redis_start(&p, NULL), 0);
    ck_assert(!th_route_is_cluster(&p));
    th_route *rt = th_route_open(&p);
    set(rt, "a", "1");
    set(rt, "b", "2");
    ck_assert_int_eq(integer(th_route_cmd(rt, "DBSIZE")), 2);
    redisReply *r = th_route_cmd(rt, "MSET c 3 d 4"); /* several keys: one command */
    ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    ck_assert_int_eq(integer(th_route_cmd(rt, "DEL a b c d")), 4);
    th_route_close(rt);
    th_redis_stop(&p);
}
END_TEST

START_TEST(test_keys_on_their_masters)
{
    th_redis shared = cluster_as_shared();
    ck_assert(th_route_is_cluster(&shared));
    ck_assert_int_eq(th_route_flushall(&shared), 0);
    th_route *rt = th_route_open(&shared);
    char key[32];
    int on[TH_CLUSTER_NODES] = {0};
    for (int i = 0; i < NKEYS; i++) {
        snprintf(key, sizeof key, "route:k%d", i);
        set(rt, key, key);
        int o = owner(key);
        on[o]++;
        redisReply *r = th_cluster_cmd(&cl, o, "GET %s", key);
        ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
        ck_assert_str_eq(r->str, key);
        freeReplyObject(r);
    }
    ck_assert_int_eq(th_cluster_roles(&cl), 0);
    int masters_used = 0;
    for (int i = 0; i < TH_CLUSTER_NODES; i++) {
        if (cl.master_of[i] >= 0)
            continue;
        masters_used += on[i] > 0;
        ck_assert_int_eq(integer(th_cluster_cmd(&cl, i, "DBSIZE")), on[i]);
    }
    ck_assert_int_eq(masters_used, 3); /* the keys are spread: the test routes */
    ck_assert_int_eq(integer(th_route_cmd(rt, "DBSIZE")), NKEYS);
    redisReply *r = th_route_cmd(rt, "KEYS route:*");
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, NKEYS);
    freeReplyObject(r);
    r = th_route_cmd(rt, "SCAN 0 MATCH route:* COUNT 4");
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_str_eq(r->element[0]->str, "0");
    ck_assert_uint_eq(r->element[1]->elements, NKEYS);
    freeReplyObject(r);
    ck_assert_int_eq(integer(th_route_cmd(rt, "EXISTS route:k0 route:k1 route:k2 nope")), 3);
    ck_assert_int_eq(integer(th_route_cmd(rt, "DEL route:k0 route:k1 route:k2 nope")), 3);
    ck_assert_int_eq(integer(th_route_cmd(rt, "DBSIZE")), NKEYS - 3);
    r = th_route_cmd(rt, "FLUSHALL");
    ck_assert_int_eq(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    ck_assert_int_eq(integer(th_route_cmd(rt, "DBSIZE")), 0);
    r = th_route_cmd(rt, "KEYS *"); /* every master's reply empty */
    ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
    ck_assert_uint_eq(r->elements, 0);
    freeReplyObject(r);
    r = th_route_cmd(rt, "SCAN 0");
    ck_assert_uint_eq(r->element[1]->elements, 0);
    freeReplyObject(r);
    th_route_close(rt);
}
END_TEST

/* The route reads the map once, at open: a slot migrated after is found by
 * MOVED; a key already moved during a migration by ASK. */
START_TEST(test_moved_and_ask_followed)
{
    th_redis shared = cluster_as_shared();
    th_route *rt = th_route_open(&shared);
    const char *moved = "route:moved", *asked = "route:asked";
    set(rt, moved, "m");
    set(rt, asked, "a");
    int from = owner(moved), to = th_cluster_other_master(&cl, from);
    unsigned slot = rc_slot(moved, strlen(moved));
    ck_assert_int_eq(th_cluster_migrate_slot(&cl, slot, from, to), 0);
    ck_assert_int_eq(owner(moved), to);
    char *v = get(rt, moved);
    ck_assert_pstr_eq(v, "m");
    free(v);
    set(rt, moved, "m2");
    v = get(rt, moved);
    ck_assert_pstr_eq(v, "m2");
    free(v);

    from = owner(asked);
    to = th_cluster_other_master(&cl, from);
    slot = rc_slot(asked, strlen(asked));
    ck_assert_int_eq(th_cluster_migration_begin(&cl, slot, from, to), 0);
    ck_assert_int_eq(th_cluster_migrate_key(&cl, from, to, asked), 0);
    v = get(rt, asked); /* ASK from `from`, ASKING and GET on `to` */
    ck_assert_pstr_eq(v, "a");
    free(v);
    ck_assert_int_eq(th_cluster_migration_finish(&cl, slot, from, to), 0);
    v = get(rt, asked);
    ck_assert_pstr_eq(v, "a");
    free(v);
    th_route_close(rt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("route");
    const th_case cases[] = {
        {"one_server_as_before", test_one_server_as_before},
        {"keys_on_their_masters", test_keys_on_their_masters},
        {"moved_and_ask_followed", test_moved_and_ask_followed},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 0);
    return th_cluster_run(&cl, s);
}
