/* cluster.c - see cluster.h. */
#include "cluster.h"

#include <check.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

bool th_cluster_alive(const th_cluster *c, int i)
{
    return c->node[i].pid > 0;
}

/* One command on node i over a fresh connection; NULL when it cannot be
 * reached. The caller frees the reply. */
static redisReply *node_cmd(const th_cluster *c, int i, const char *fmt, ...)
{
    redisContext *rd;
    redisReply *rep;
    va_list ap;
    if (!th_cluster_alive(c, i) || !(rd = th_redis_connect(&c->node[i], NULL)))
        return NULL;
    va_start(ap, fmt);
    rep = redisvCommand(rd, fmt, ap);
    va_end(ap);
    redisFree(rd);
    return rep;
}

/* Whether the text reply of fmt on node i holds needle. */
static bool node_says(const th_cluster *c, int i, const char *needle,
                      const char *fmt)
{
    redisReply *rep = node_cmd(c, i, fmt);
    bool yes = rep && rep->type == REDIS_REPLY_STRING &&
               strstr(rep->str, needle) != NULL;
    freeReplyObject(rep);
    return yes;
}

/* The node whose client port is port, or -1. */
static int by_port(const th_cluster *c, long long port)
{
    for (int i = 0; i < TH_CLUSTER_NODES; i++)
        if (c->node[i].port == port)
            return i;
    return -1;
}

int th_cluster_roles(th_cluster *c)
{
    for (int i = 0; i < TH_CLUSTER_NODES; i++) {
        redisReply *rep = node_cmd(c, i, "ROLE");
        c->master_of[i] = -1;
        if (!th_cluster_alive(c, i)) {
            freeReplyObject(rep);
            continue;
        }
        if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
            rep->element[0]->type != REDIS_REPLY_STRING) {
            freeReplyObject(rep);
            return -1;
        }
        if (strcmp(rep->element[0]->str, "slave") == 0 &&
            rep->element[2]->type == REDIS_REPLY_INTEGER)
            c->master_of[i] = by_port(c, rep->element[2]->integer);
        freeReplyObject(rep);
    }
    return 0;
}

/* Whether node i knows every node as connected, in its role: three
 * masters, three replicas, none in fail or handshake state (CLUSTER NODES;
 * its CLUSTER SLOTS lists a replica only once gossip has told it). */
static bool knows_all(const th_cluster *c, int i)
{
    redisReply *rep = node_cmd(c, i, "CLUSTER NODES");
    int masters = 0, replicas = 0;
    bool ok = rep && rep->type == REDIS_REPLY_STRING;
    for (char *line = ok ? rep->str : NULL; line && *line;) {
        char *nl = strchr(line, '\n'), flags[128] = "", link[32] = "";
        if (nl)
            *nl = '\0';
        /* <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> */
        if (sscanf(line, "%*s %*s %127s %*s %*s %*s %*s %31s", flags, link) ==
                2 &&
            !strstr(flags, "fail") && !strstr(flags, "handshake") &&
            !strstr(flags, "noaddr") && strcmp(link, "connected") == 0) {
            masters += strstr(flags, "master") != NULL;
            replicas += strstr(flags, "slave") != NULL;
        }
        line = nl ? nl + 1 : NULL;
    }
    freeReplyObject(rep);
    return ok && masters == TH_CLUSTER_NODES / 2 &&
           replicas == TH_CLUSTER_NODES / 2;
}

/* Whether node i's CLUSTER SLOTS names all six nodes. Redis 7.0 leaves
 * out a replica whose replication offset is still 0 (nothing written
 * since it synced): start() writes on every master for that. */
static bool lists_all(const th_cluster *c, int i)
{
    redisReply *rep = node_cmd(c, i, "CLUSTER SLOTS");
    size_t nodes = 0;
    for (size_t k = 0;
         rep && rep->type == REDIS_REPLY_ARRAY && k < rep->elements; k++)
        if (rep->element[k]->type == REDIS_REPLY_ARRAY &&
            rep->element[k]->elements >= 2)
            nodes += rep->element[k]->elements - 2;
    freeReplyObject(rep);
    return nodes == TH_CLUSTER_NODES;
}

/* A write on each master (a key of its slots set and deleted), once its
 * replica has synced (before, the master keeps no replication backlog and
 * its offset stays 0) and the cluster serves (not CLUSTERDOWN), so that
 * every replica's offset moves past 0. Returns whether all three wrote. */
static bool write_on_masters(const th_cluster *c)
{
    int written = 0;
    for (int i = 0; i < TH_CLUSTER_NODES; i++) {
        if (c->master_of[i] >= 0)
            continue;
        for (int k = 0; k < 200; k++) {
            redisReply *rep = node_cmd(c, i, "SET th:cluster:warm:%d 1", k);
            bool mine = rep && rep->type == REDIS_REPLY_STATUS;
            bool down = rep && rep->type == REDIS_REPLY_ERROR &&
                        strncmp(rep->str, "CLUSTERDOWN", 11) == 0;
            freeReplyObject(rep);
            if (mine) {
                freeReplyObject(node_cmd(c, i, "DEL th:cluster:warm:%d", k));
                written++;
            }
            if (mine || down)
                break;
        }
    }
    return written == TH_CLUSTER_NODES / 2;
}

/* Whether every replica's link to its master is up (c->master_of read). */
static bool linked(th_cluster *c)
{
    int replicas = 0;
    if (th_cluster_roles(c) != 0)
        return false;
    for (int i = 0; i < TH_CLUSTER_NODES; i++) {
        if (c->master_of[i] < 0)
            continue;
        if (!node_says(c, i, "master_link_status:up", "INFO replication"))
            return false;
        replicas++;
    }
    return replicas == TH_CLUSTER_NODES / 2;
}

/* Whether the cluster is whole: every node says cluster_state:ok with all
 * slots ok, knows every other node in its role and lists all six in
 * CLUSTER SLOTS, and every replica's link to its master is up. */
static bool whole(th_cluster *c)
{
    for (int i = 0; i < TH_CLUSTER_NODES; i++)
        if (!node_says(c, i, "cluster_state:ok", "CLUSTER INFO") ||
            !node_says(c, i, "cluster_slots_ok:16384", "CLUSTER INFO") ||
            !knows_all(c, i) || !lists_all(c, i))
            return false;
    return linked(c);
}

/* Runs redis-cli with argv, its output into log; its exit status or -1. */
static int run_cli(char **argv, const char *log)
{
    int status;
    pid_t pid = th_spawn(argv, log);
    if (pid < 0)
        return -1;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Starts node i (a retry when the free port picked was taken meanwhile). */
static int start_node(th_cluster *c, int i)
{
    char args[256];
    for (int attempt = 0; attempt < 3; attempt++) {
        snprintf(args, sizeof args,
                 "--cluster-enabled yes --cluster-port %d "
                 "--cluster-config-file nodes.conf "
                 "--cluster-node-timeout 1000 --cluster-require-full-coverage no "
                 "--repl-diskless-sync-delay 0",
                 th_free_port());
        if (th_redis_start(&c->node[i], args) == 0)
            return 0;
    }
    return -1;
}

int th_cluster_start(th_cluster *c)
{
    double t0 = th_now(), end;
    char ports[TH_CLUSTER_NODES][32], *argv[TH_CLUSTER_NODES + 8], *log;
    int argc = 0, rc;
    bool written = false;
    memset(c, 0, sizeof *c);
    for (int i = 0; i < TH_CLUSTER_NODES; i++) {
        redisReply *rep;
        if (start_node(c, i) != 0) {
            fprintf(stderr, "cluster: node %d did not start\n", i);
            th_cluster_stop(c);
            return -1;
        }
        rep = node_cmd(c, i, "CLUSTER MYID");
        if (!rep || rep->type != REDIS_REPLY_STRING || rep->len != 40) {
            fprintf(stderr, "cluster: node %d has no CLUSTER MYID\n", i);
            freeReplyObject(rep);
            th_cluster_stop(c);
            return -1;
        }
        memcpy(c->id[i], rep->str, 41);
        freeReplyObject(rep);
    }
    /* The nodes.conf of each node is in its own directory (--dir). */
    argv[argc++] = "redis-cli";
    argv[argc++] = "--cluster";
    argv[argc++] = "create";
    for (int i = 0; i < TH_CLUSTER_NODES; i++) {
        snprintf(ports[i], sizeof ports[i], "127.0.0.1:%d", c->node[i].port);
        argv[argc++] = ports[i];
    }
    argv[argc++] = "--cluster-replicas";
    argv[argc++] = "1";
    argv[argc++] = "--cluster-yes";
    argv[argc] = NULL;
    log = th_tmpfile("cluster-create.log");
    rc = log ? run_cli(argv, log) : -1;
    if (rc != 0) {
        char *text = log ? th_read_file(log, NULL) : NULL;
        fprintf(stderr,
                "cluster: redis-cli --cluster create failed (%d):\n%s\n", rc,
                text ? text : "");
        free(text);
        free(log);
        th_cluster_stop(c);
        return -1;
    }
    free(log);
    end = th_now() + TH_WAIT_SECONDS;
    /* Written once, when linked and serving; then whole. */
    while (!(written = written || (linked(c) && write_on_masters(c))) ||
           !whole(c)) {
        if (th_now() > end) {
            fprintf(stderr, "cluster: not whole after %.0f s\n",
                    TH_WAIT_SECONDS);
            th_cluster_stop(c);
            return -1;
        }
        usleep(50000);
    }
    c->started_in = th_now() - t0;
    return 0;
}

void th_cluster_stop(th_cluster *c)
{
    for (int i = 0; i < TH_CLUSTER_NODES; i++)
        th_redis_kill(&c->node[i]);
}

void th_cluster_kill(th_cluster *c, int i)
{
    th_redis_kill(&c->node[i]);
}

int th_cluster_owner(th_cluster *c, int asked, unsigned slot)
{
    redisReply *rep = node_cmd(c, asked, "CLUSTER SLOTS");
    int owner = -1;
    for (size_t k = 0;
         rep && rep->type == REDIS_REPLY_ARRAY && k < rep->elements; k++) {
        redisReply *r = rep->element[k];
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
            r->element[0]->integer <= (long long)slot &&
            (long long)slot <= r->element[1]->integer &&
            r->element[2]->type == REDIS_REPLY_ARRAY &&
            r->element[2]->elements >= 2)
            owner = by_port(c, r->element[2]->element[1]->integer);
    }
    freeReplyObject(rep);
    return owner;
}

/* Whether rep is the status reply OK; a message naming what otherwise. */
static int expect_ok(redisReply *rep, const char *what)
{
    int rc = rep && rep->type == REDIS_REPLY_STATUS ? 0 : -1;
    if (rc != 0)
        fprintf(stderr, "cluster: %s: %s\n", what,
                rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no reply");
    freeReplyObject(rep);
    return rc;
}

int th_cluster_migration_begin(th_cluster *c, unsigned slot, int from, int to)
{
    if (expect_ok(node_cmd(c, to, "CLUSTER SETSLOT %u IMPORTING %s", slot,
                           c->id[from]),
                  "SETSLOT IMPORTING") != 0)
        return -1;
    return expect_ok(
        node_cmd(c, from, "CLUSTER SETSLOT %u MIGRATING %s", slot, c->id[to]),
        "SETSLOT MIGRATING");
}

int th_cluster_migrate_key(th_cluster *c, int from, int to, const char *key)
{
    return expect_ok(node_cmd(c, from, "MIGRATE 127.0.0.1 %d %s 0 5000",
                              c->node[to].port, key),
                     "MIGRATE");
}

int th_cluster_migration_finish(th_cluster *c, unsigned slot, int from, int to)
{
    for (;;) {
        redisReply *keys =
            node_cmd(c, from, "CLUSTER GETKEYSINSLOT %u 100", slot);
        if (!keys || keys->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(keys);
            fprintf(stderr, "cluster: GETKEYSINSLOT failed\n");
            return -1;
        }
        if (keys->elements == 0) {
            freeReplyObject(keys);
            break;
        }
        for (size_t k = 0; k < keys->elements; k++)
            if (th_cluster_migrate_key(c, from, to, keys->element[k]->str) !=
                0) {
                freeReplyObject(keys);
                return -1;
            }
        freeReplyObject(keys);
    }
    /* The new owner first, then the old, then the other masters: each
     * learns the slot's owner at once rather than by gossip. */
    if (expect_ok(
            node_cmd(c, to, "CLUSTER SETSLOT %u NODE %s", slot, c->id[to]),
            "SETSLOT NODE (target)") != 0 ||
        expect_ok(
            node_cmd(c, from, "CLUSTER SETSLOT %u NODE %s", slot, c->id[to]),
            "SETSLOT NODE (source)") != 0 ||
        th_cluster_roles(c) != 0)
        return -1;
    for (int i = 0; i < TH_CLUSTER_NODES; i++)
        if (i != to && i != from && th_cluster_alive(c, i) &&
            c->master_of[i] < 0 &&
            expect_ok(
                node_cmd(c, i, "CLUSTER SETSLOT %u NODE %s", slot, c->id[to]),
                "SETSLOT NODE (other master)") != 0)
            return -1;
    return 0;
}

int th_cluster_migrate_slot(th_cluster *c, unsigned slot, int from, int to)
{
    if (th_cluster_migration_begin(c, slot, from, to) != 0)
        return -1;
    return th_cluster_migration_finish(c, slot, from, to);
}

int th_cluster_await_failover(th_cluster *c, int killed, double seconds)
{
    double end = th_now() + seconds;
    int replicas[TH_CLUSTER_NODES], n = 0;
    for (int i = 0; i < TH_CLUSTER_NODES; i++)
        if (c->master_of[i] == killed && th_cluster_alive(c, i))
            replicas[n++] = i;
    while (n > 0 && th_now() < end) {
        for (int k = 0; k < n; k++) {
            int i = replicas[k];
            redisReply *rep = node_cmd(c, i, "ROLE");
            bool master = rep && rep->type == REDIS_REPLY_ARRAY &&
                          rep->elements > 0 &&
                          rep->element[0]->type == REDIS_REPLY_STRING &&
                          strcmp(rep->element[0]->str, "master") == 0;
            freeReplyObject(rep);
            if (master && node_says(c, i, "cluster_state:ok", "CLUSTER INFO")) {
                th_cluster_roles(c);
                return i;
            }
        }
        usleep(20000);
    }
    return -1;
}

const char *th_cluster_url(const th_cluster *c)
{
    static char url[128];
    snprintf(url, sizeof url, "%s127.0.0.1:%d,127.0.0.1:%d", TH_REDIS_CLUSTER_SCHEME,
             c->node[0].port, c->node[1].port);
    return url;
}

redisReply *th_cluster_cmd(th_cluster *c, int i, const char *fmt, ...)
{
    redisContext *rd = th_redis_connect(&c->node[i], NULL);
    redisReply *rep;
    va_list ap;
    ck_assert_ptr_nonnull(rd);
    va_start(ap, fmt);
    rep = redisvCommand(rd, fmt, ap);
    va_end(ap);
    redisFree(rd);
    ck_assert_ptr_nonnull(rep);
    return rep;
}

int th_cluster_other_master(th_cluster *c, int not )
{
    ck_assert_int_eq(th_cluster_roles(c), 0);
    for (int i = 0; i < TH_CLUSTER_NODES; i++)
        if (i != not &&th_cluster_alive(c, i) && c->master_of[i] < 0)
            return i;
    ck_abort_msg("no other master");
    return -1;
}

int th_cluster_run(th_cluster *c, Suite *s)
{
    if (th_cluster_start(c) != 0)
        return EXIT_FAILURE;
    printf("cluster: 6 nodes up and whole in %.2f s\n", c->started_in);
    int status = th_run_suite(s);
    th_cluster_stop(c);
    return status;
}
