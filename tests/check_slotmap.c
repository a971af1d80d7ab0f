/* check_slotmap.c - the cluster's slot map (src/cache/slotmap.c) against a
 * real Redis Cluster of three masters and three replicas (support/cluster.h):
 * discovery from seeds, the map agreeing with the servers key by key, MOVED
 * after a slot migrates and ASK during one, malformed CLUSTER SLOTS replies
 * and redirects refused, and the map after a master is killed and its
 * replica takes over. */
#include "cache/slotmap.h"
#include "cluster.h"
#include "core/slot.h"
#include "repocache/status.h"

#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static th_cluster cl;
static const rc_link_config cfg = {2.0, 0, NULL};

/* The node of cl listening on port, or -1. */
static int node_at(int port)
{
    for (int i = 0; i < TH_CLUSTER_NODES; i++)
        if (cl.node[i].port == port)
            return i;
    return -1;
}

/* Every node as a seed list, node `first` first. */
static void all_seeds(char *buf, size_t size, int first)
{
    size_t used = 0;
    for (int k = 0; k < TH_CLUSTER_NODES; k++) {
        int i = (first + k) % TH_CLUSTER_NODES;
        used += (size_t)snprintf(buf + used, size - used, "%s127.0.0.1:%d",
                                 k ? "," : "", cl.node[i].port);
    }
}

static rc_slotmap *discover_all(int first)
{
    char seeds[256];
    rc_slotmap *m = NULL;
    all_seeds(seeds, sizeof seeds, first);
    ck_assert_msg(rc_slotmap_discover(&cfg, seeds, NULL, 1, &m) == RC_OK, "%s",
                  rc_errmsg());
    return m;
}

/* The index in cl of the master m names for slot. */
static int mapped_master(const rc_slotmap *m, unsigned slot)
{
    const rc_slotnode *n = rc_slotmap_master(m, slot);
    ck_assert_ptr_nonnull(n);
    ck_assert_str_eq(n->host, "127.0.0.1");
    return node_at(n->port);
}

#define cmd(...) th_cluster_cmd(&cl, __VA_ARGS__)
#define other_master(not ) th_cluster_other_master(&cl, not )

START_TEST(test_discovery_from_seeds)
{
    char seeds[128];
    rc_slotmap *m = NULL;
    int dead = th_free_port(), dead2 = th_free_port(), masters = 0;
    ck_assert_int_eq(th_cluster_roles(&cl), 0);
    snprintf(seeds, sizeof seeds, "127.0.0.1:%d,127.0.0.1:%d", dead,
             cl.node[0].port);
    ck_assert_msg(rc_slotmap_discover(&cfg, seeds, NULL, 7, &m) == RC_OK, "%s",
                  rc_errmsg());
    ck_assert_uint_eq(m->generation, 7);
    ck_assert_uint_eq(m->n, TH_CLUSTER_NODES);
    for (size_t i = 0; i < m->n; i++) {
        int node = node_at(m->nodes[i].port);
        ck_assert_int_ge(node, 0);
        ck_assert_msg(m->nodes[i].master == (cl.master_of[node] < 0),
                      "node %d's role", node);
        ck_assert_str_eq(m->nodes[i].id, cl.id[node]);
        masters += m->nodes[i].master;
    }
    ck_assert_int_eq(masters, 3);
    for (unsigned s = 0; s < RC_SLOTS; s++)
        ck_assert_msg(rc_slotmap_master(m, s) &&
                          rc_slotmap_master(m, s)->master,
                      "slot %u has no master", s);
    rc_slotmap_release(m);

    snprintf(seeds, sizeof seeds, "127.0.0.1:%d,127.0.0.1:%d", dead, dead2);
    ck_assert_int_eq(rc_slotmap_discover(&cfg, seeds, NULL, 1, &m),
                     RC_EUNAVAILABLE);
    ck_assert_ptr_null(m);
    char p1[16], p2[16];
    snprintf(p1, sizeof p1, ":%d:", dead);
    snprintf(p2, sizeof p2, ":%d:", dead2);
    ck_assert_msg(strstr(rc_errmsg(), "no seed answered") &&
                      strstr(rc_errmsg(), p1) && strstr(rc_errmsg(), p2),
                  "%s", rc_errmsg());
    ck_assert_int_eq(rc_slotmap_discover(&cfg, "127.0.0.1:0", NULL, 1, &m),
                     RC_ECONFIG);
    ck_assert_int_eq(rc_slotmap_discover(&cfg, "", NULL, 1, &m), RC_ECONFIG);
    /* a server without cluster support is passed over, and named */
    th_redis plain;
    ck_assert_int_eq(th_redis_start(&plain, NULL), 0);
    snprintf(seeds, sizeof seeds, "127.0.0.1:%d,127.0.0.1:%d", plain.port,
             cl.node[1].port);
    ck_assert_msg(rc_slotmap_discover(&cfg, seeds, NULL, 1, &m) == RC_OK, "%s",
                  rc_errmsg());
    rc_slotmap_release(m);
    snprintf(seeds, sizeof seeds, "127.0.0.1:%d", plain.port);
    ck_assert_int_eq(rc_slotmap_discover(&cfg, seeds, NULL, 1, &m),
                     RC_EUNAVAILABLE);
    ck_assert_msg(strstr(rc_errmsg(), "cluster support disabled"), "%s",
                  rc_errmsg());
    th_redis_stop(&plain);
}
END_TEST

#define NKEYS 2000

START_TEST(test_map_agrees_with_the_servers)
{
    rc_slotmap *m = discover_all(0);
    redisContext *rd[TH_CLUSTER_NODES];
    unsigned seed = 11;
    for (int i = 0; i < TH_CLUSTER_NODES; i++)
        ck_assert_ptr_nonnull(rd[i] = th_redis_connect(&cl.node[i], NULL));
    for (int k = 0; k < NKEYS; k++) {
        char key[48];
        snprintf(key, sizeof key, "agree:%d:%x{%x", k, (unsigned)rand_r(&seed),
                 (unsigned)rand_r(&seed) % 97);
        unsigned slot = rc_slot(key, strlen(key));
        redisReply *r = redisCommand(rd[0], "CLUSTER KEYSLOT %s", key);
        ck_assert(r && r->type == REDIS_REPLY_INTEGER);
        ck_assert_msg(r->integer == (long long)slot, "slot of %s", key);
        freeReplyObject(r);
        int owner = mapped_master(m, slot);
        ck_assert_int_ge(owner, 0);
        r = redisCommand(rd[owner], "GET %s", key);
        ck_assert_msg(r && r->type == REDIS_REPLY_NIL,
                      "GET %s on the mapped master: %s", key,
                      r && r->type == REDIS_REPLY_ERROR ? r->str : "not nil");
        freeReplyObject(r);
        /* the next master refuses it, naming the mapped one */
        int other = mapped_master(m, (slot + 5462) % RC_SLOTS);
        if (other == owner)
            other = mapped_master(m, (slot + 10924) % RC_SLOTS);
        if (other == owner)
            continue;
        r = redisCommand(rd[other], "GET %s", key);
        ck_assert(r && r->type == REDIS_REPLY_ERROR);
        rc_redirect red;
        ck_assert_msg(rc_redirect_parse(r->str, &red) == RC_OK, "%s",
                      rc_errmsg());
        ck_assert(!red.ask);
        ck_assert_uint_eq(red.slot, slot);
        ck_assert_int_eq(red.port, cl.node[owner].port);
        freeReplyObject(r);
    }
    for (int i = 0; i < TH_CLUSTER_NODES; i++)
        redisFree(rd[i]);
    rc_slotmap_release(m);
}
END_TEST

START_TEST(test_moved_after_a_migration)
{
    const char *key = "moved:key";
    unsigned slot = rc_slot(key, strlen(key));
    rc_slotmap *m = discover_all(1), *m2 = NULL;
    int from = mapped_master(m, slot), to = other_master(from);
    redisReply *r = cmd(from, "SET %s v1", key);
    freeReplyObject(r);
    ck_assert_int_eq(th_cluster_owner(&cl, from, slot), from);
    ck_assert_int_eq(th_cluster_migrate_slot(&cl, slot, from, to), 0);
    ck_assert_int_eq(th_cluster_owner(&cl, to, slot), to);
    ck_assert_int_eq(th_cluster_owner(&cl, from, slot), to);
    r = cmd(from, "GET %s", key);
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    ck_assert_msg(strncmp(r->str, "MOVED ", 6) == 0, "%s", r->str);
    rc_redirect red;
    ck_assert_msg(rc_redirect_parse(r->str, &red) == RC_OK, "%s", rc_errmsg());
    freeReplyObject(r);
    ck_assert(!red.ask);
    ck_assert_uint_eq(red.slot, slot);
    ck_assert_msg(rc_slotmap_moved(m, &red, "127.0.0.1", &m2) == RC_OK, "%s",
                  rc_errmsg());
    ck_assert_uint_eq(m2->generation, m->generation + 1);
    ck_assert_int_eq(mapped_master(m2, slot), to);
    ck_assert_int_eq(mapped_master(m, slot),
                     from); /* the old map is untouched */
    ck_assert_uint_eq(m2->n, m->n);
    for (unsigned s = 0; s < RC_SLOTS; s++)
        if (s != slot)
            ck_assert_int_eq(mapped_master(m2, s), mapped_master(m, s));
    r = cmd(mapped_master(m2, slot), "GET %s", key);
    ck_assert_msg(r->type == REDIS_REPLY_STRING && strcmp(r->str, "v1") == 0,
                  "new owner: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "not v1");
    freeReplyObject(r);
    /* a new node named by MOVED is added */
    rc_redirect fresh = {false, slot, "10.1.2.3", 7777};
    rc_slotmap *m3 = NULL;
    ck_assert_int_eq(rc_slotmap_moved(m2, &fresh, NULL, &m3), RC_OK);
    ck_assert_uint_eq(m3->n, m2->n + 1);
    ck_assert_str_eq(rc_slotmap_master(m3, slot)->host, "10.1.2.3");
    /* the cell keeps the newest */
    rc_slotmap_cell cell;
    rc_slotmap_cell_init(&cell);
    ck_assert(rc_slotmap_cell_swap(&cell, rc_slotmap_hold(m3)));
    ck_assert(!rc_slotmap_cell_swap(&cell, rc_slotmap_hold(m2)));
    rc_slotmap *cur = rc_slotmap_cell_get(&cell);
    ck_assert_ptr_eq(cur, m3);
    rc_slotmap_release(cur);
    rc_slotmap_cell_destroy(&cell);
    rc_slotmap_release(m3);
    rc_slotmap_release(m2);
    rc_slotmap_release(m);
}
END_TEST

START_TEST(test_ask_during_a_migration)
{
    const char *moved = "{ask}a", *kept = "{ask}b";
    unsigned slot = rc_slot(moved, strlen(moved));
    rc_slotmap *m = discover_all(2), *m2 = NULL;
    int from = mapped_master(m, slot), to = other_master(from);
    freeReplyObject(cmd(from, "SET %s 1", moved));
    freeReplyObject(cmd(from, "SET %s 2", kept));
    ck_assert_int_eq(th_cluster_migration_begin(&cl, slot, from, to), 0);
    ck_assert_int_eq(th_cluster_migrate_key(&cl, from, to, moved), 0);

    redisReply *r = cmd(from, "GET %s", moved);
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    rc_redirect red;
    ck_assert_msg(rc_redirect_parse(r->str, &red) == RC_OK, "%s", rc_errmsg());
    freeReplyObject(r);
    ck_assert(red.ask);
    ck_assert_uint_eq(red.slot, slot);
    ck_assert_int_eq(red.port, cl.node[to].port);
    ck_assert_int_eq(rc_slotmap_moved(m, &red, "127.0.0.1", &m2), RC_EINVAL);
    ck_assert_ptr_null(m2);
    /* the target answers after ASKING only */
    redisContext *rd = th_redis_connect(&cl.node[to], NULL);
    ck_assert_ptr_nonnull(rd);
    r = redisCommand(rd, "GET %s", moved);
    ck_assert_msg(r && r->type == REDIS_REPLY_ERROR &&
                      strncmp(r->str, "MOVED ", 6) == 0,
                  "GET without ASKING on the target");
    freeReplyObject(r);
    freeReplyObject(redisCommand(rd, "ASKING"));
    r = redisCommand(rd, "GET %s", moved);
    ck_assert(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0);
    freeReplyObject(r);
    redisFree(rd);
    /* a key not yet moved is still served by the old owner */
    r = cmd(from, "GET %s", kept);
    ck_assert(r->type == REDIS_REPLY_STRING && strcmp(r->str, "2") == 0);
    freeReplyObject(r);

    ck_assert_int_eq(th_cluster_migration_finish(&cl, slot, from, to), 0);
    r = cmd(from, "GET %s", kept);
    ck_assert_int_eq(r->type, REDIS_REPLY_ERROR);
    ck_assert_int_eq(rc_redirect_parse(r->str, &red), RC_OK);
    ck_assert(!red.ask);
    ck_assert_int_eq(red.port, cl.node[to].port);
    freeReplyObject(r);
    rc_slotmap_release(m);
}
END_TEST

/* Hand-built replies. */
static redisReply *mk(int type)
{
    redisReply *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    r->type = type;
    return r;
}
static redisReply *I(long long v)
{
    redisReply *r = mk(REDIS_REPLY_INTEGER);
    r->integer = v;
    return r;
}
static redisReply *S(const char *s)
{
    redisReply *r = mk(REDIS_REPLY_STRING);
    r->str = strdup(s);
    r->len = strlen(s);
    return r;
}
static redisReply *A(size_t n, ...)
{
    redisReply *r = mk(REDIS_REPLY_ARRAY);
    va_list ap;
    r->elements = n;
    r->element = calloc(n ? n : 1, sizeof *r->element);
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        r->element[i] = va_arg(ap, redisReply *);
    va_end(ap);
    return r;
}
static void drop(redisReply *r)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        drop(r->element[i]);
    free(r->element);
    free(r->str);
    free(r);
}

#define ID "0123456789abcdef0123456789abcdef01234567"

/* rep refused by rc_slotmap_build with a message holding want. */
static void refused(redisReply *rep, const char *want)
{
    rc_slotmap *m = (rc_slotmap *)1;
    ck_assert_int_eq(rc_slotmap_build(rep, "127.0.0.1", 1, &m), RC_EINVAL);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(rc_errmsg(), want), "wanted '%s' in: %s", want,
                  rc_errmsg());
    drop(rep);
}

START_TEST(test_malformed_replies_refused)
{
    rc_slotmap *m = NULL;
    redisReply *good =
        A(1, A(4, I(0), I(16383), A(3, S("127.0.0.1"), I(7000), S(ID)),
               A(2, mk(REDIS_REPLY_NIL), I(7001))));
    ck_assert_msg(rc_slotmap_build(good, "10.0.0.9", 3, &m) == RC_OK, "%s",
                  rc_errmsg());
    ck_assert_uint_eq(m->n, 2);
    ck_assert_str_eq(rc_slotmap_master(m, 16383)->id, ID);
    ck_assert_str_eq(m->nodes[1].host, "10.0.0.9");
    ck_assert(!m->nodes[1].master);
    rc_slotmap_release(m);
    ck_assert_int_eq(rc_slotmap_build(good, NULL, 3, &m), RC_EINVAL);
    ck_assert_msg(strstr(rc_errmsg(), "range 0: node 1 has no endpoint"), "%s",
                  rc_errmsg());
    drop(good);

    refused(I(1), "an integer, not an array");
    refused(A(0), "no slot range");
    refused(A(1, S("0-100")), "range 0 is a string");
    refused(A(1, A(2, I(0), I(10))), "not at least 3");
    refused(A(1, A(3, S("0"), I(10), A(2, S("h"), I(1)))), "must be integers");
    refused(A(1, A(3, I(0), I(16384), A(2, S("h"), I(1)))),
            "slot 16384 outside 0-16383");
    refused(A(1, A(3, I(-1), I(5), A(2, S("h"), I(1)))),
            "slot -1 outside 0-16383");
    refused(A(1, A(3, I(9), I(5), A(2, S("h"), I(1)))), "start 9 after end 5");
    refused(A(1, A(3, I(0), I(5), A(1, S("h")))), "has no port");
    refused(A(1, A(3, I(0), I(5), S("h:1"))), "node 0 is a string");
    refused(A(1, A(3, I(0), I(5), A(2, S("h"), S("7000")))),
            "port is a string");
    refused(A(1, A(3, I(0), I(5), A(2, S("h"), I(0)))),
            "port 0 outside 1-65535");
    refused(A(1, A(4, I(0), I(5), A(2, S("h"), I(1)), A(2, S("h"), I(70000)))),
            "node 1: port 70000 outside");
    refused(A(1, A(3, I(0), I(5), A(2, I(4), I(1)))), "host is an integer");
    refused(A(1, A(3, I(0), I(5), A(3, S("h"), I(1), S("xyz")))),
            "not 40 hex digits");
    refused(A(2, A(3, I(0), I(100), A(2, S("h"), I(1))),
              A(3, I(100), I(200), A(2, S("g"), I(2)))),
            "range 1: slot 100 is in an earlier range");
    redisReply *err = mk(REDIS_REPLY_ERROR);
    err->str = strdup("ERR This instance has cluster support disabled");
    refused(err, "cluster support disabled");

    /* redirects */
    static const char *bad[] = {"MOVED 16384 127.0.0.1:7000",
                                "MOVED x 127.0.0.1:1",
                                "MOVED 1 127.0.0.1",
                                "MOVED 1 127.0.0.1:0",
                                "MOVED 1 127.0.0.1:99999",
                                "ERR nope",
                                "MOVED 1 h:1 x",
                                "MOVED 1 h:",
                                "",
                                "ASK 1",
                                "MOVED 00000001 h:1"};
    rc_redirect r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(rc_redirect_parse(bad[i], &r) == RC_EINVAL,
                      "accepted '%s'", bad[i]);
        ck_assert(strncmp(rc_errmsg(), "redirect: ", 10) == 0);
    }
    ck_assert_int_eq(rc_redirect_parse("MOVED 3999 ::1:6380", &r), RC_OK);
    ck_assert(!r.ask && r.slot == 3999 && r.port == 6380);
    ck_assert_str_eq(r.host, "::1");
    ck_assert_int_eq(rc_redirect_parse("ASK 16383 :7000", &r), RC_OK);
    ck_assert(r.ask && r.slot == 16383 && r.port == 7000 && r.host[0] == '\0');
}
END_TEST

/* Readers take the current map and read every slot of it while a writer
 * swaps in newer ones: a held map stays whole (each is one node's alone),
 * and is freed only after its last reader (ASan, ThreadSanitizer). */
static rc_slotmap_cell shared_cell;
static int swapping;

static void *reader(void *arg)
{
    long bad = 0;
    (void)arg;
    while (__atomic_load_n(&swapping, __ATOMIC_ACQUIRE)) {
        rc_slotmap *m = rc_slotmap_cell_get(&shared_cell);
        const rc_slotnode *first = rc_slotmap_master(m, 0);
        for (unsigned s = 0; s < RC_SLOTS; s += 7)
            bad += rc_slotmap_master(m, s) != first;
        rc_slotmap_release(m);
    }
    return (void *)bad;
}

START_TEST(test_cell_swapped_under_readers)
{
    redisReply *one = A(1, A(3, I(0), I(16383), A(2, S("127.0.0.1"), I(1))));
    rc_slotmap *m = NULL;
    pthread_t t[3];
    rc_slotmap_cell_init(&shared_cell);
    ck_assert_int_eq(rc_slotmap_build(one, NULL, 1, &m), RC_OK);
    ck_assert(rc_slotmap_cell_swap(&shared_cell, m));
    __atomic_store_n(&swapping, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, reader, NULL), 0);
    for (int g = 2; g < 2000; g++) {
        one->element[0]->element[2]->element[1]->integer = 1 + g % 1000;
        ck_assert_int_eq(rc_slotmap_build(one, NULL, (uint64_t)g, &m), RC_OK);
        ck_assert(rc_slotmap_cell_swap(&shared_cell, m));
    }
    __atomic_store_n(&swapping, 0, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        ck_assert_ptr_null(bad);
    }
    m = rc_slotmap_cell_get(&shared_cell);
    ck_assert_uint_eq(m->generation, 1999);
    rc_slotmap_release(m);
    rc_slotmap_cell_destroy(&shared_cell);
    drop(one);
}
END_TEST

/* Last: it leaves the cluster with a master fewer. */
START_TEST(test_failover_rediscovered)
{
    rc_slotmap *m = discover_all(0), *after = NULL;
    ck_assert_int_eq(th_cluster_roles(&cl), 0);
    int master = mapped_master(m, 0), replica = -1;
    for (int i = 0; i < TH_CLUSTER_NODES; i++)
        if (cl.master_of[i] == master)
            replica = i;
    ck_assert_int_ge(replica, 0);
    double t0 = th_now();
    th_cluster_kill(&cl, master);
    ck_assert_int_eq(th_cluster_await_failover(&cl, master, TH_WAIT_SECONDS),
                     replica);
    double promoted = th_now() - t0;
    /* the killed master first among the seeds: the next one answers */
    for (;;) {
        char seeds[256];
        all_seeds(seeds, sizeof seeds, master);
        ck_assert_msg(rc_slotmap_discover(&cfg, seeds, NULL, 2, &after) ==
                          RC_OK,
                      "%s", rc_errmsg());
        if (mapped_master(after, 0) == replica)
            break;
        rc_slotmap_release(after);
        ck_assert_msg(th_now() - t0 < TH_WAIT_SECONDS,
                      "the map never named the replica");
        th_await_tick();
    }
    double rediscovered = th_now() - t0;
    for (unsigned s = 0; s < RC_SLOTS; s++) {
        int was = mapped_master(m, s), now = mapped_master(after, s);
        ck_assert_msg(was == master ? now == replica : now == was,
                      "slot %u: %d -> %d", s, was, now);
    }
    printf("failover: replica promoted %.2f s after SIGKILL, rediscovered at "
           "%.2f s\n",
           promoted, rediscovered);
    rc_slotmap_release(after);
    rc_slotmap_release(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("slotmap");
    const th_case cases[] = {
        {"discovery_from_seeds", test_discovery_from_seeds},
        {"map_agrees_with_the_servers", test_map_agrees_with_the_servers},
        {"moved_after_a_migration", test_moved_after_a_migration},
        {"ask_during_a_migration", test_ask_during_a_migration},
        {"malformed_replies_refused", test_malformed_replies_refused},
        {"cell_swapped_under_readers", test_cell_swapped_under_readers},
        {"failover_rediscovered", test_failover_rediscovered},
    };
    th_add_cases(s, cases, sizeof cases / sizeof cases[0], NULL, NULL, 0);
    return th_cluster_run(&cl, s);
}
