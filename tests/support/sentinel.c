/* sentinel.c - see sentinel.h. */
#include "sentinel.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A command on a new connection to 127.0.0.1:port (0.5 s timeout), after
 * AUTH password when not NULL; NULL when it does not answer. */
static redisReply *ask_as(int port, const char *password, const char *fmt, const char *arg)
{
    struct timeval tv = {0, 500000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *r = NULL;
    if (c && !c->err) {
        redisSetTimeout(c, tv);
        if (password)
            freeReplyObject(redisCommand(c, "AUTH %s", password));
        r = redisCommand(c, fmt, arg);
    }
    if (c)
        redisFree(c);
    return r;
}

/* A command to a server of ours. */
static redisReply *ask(int port, const char *fmt, const char *arg)
{
    return ask_as(port, NULL, fmt, arg);
}

/* A command to sentinel i. */
static redisReply *ask_sentinel(const ts_cluster *t, int i, const char *fmt, const char *arg)
{
    return ask_as(t->port[i], t->password, fmt, arg);
}

int ts_named_port(const ts_cluster *t, int i)
{
    if (t->pid[i] <= 0)
        return -1;
    redisReply *r = ask_sentinel(t, i, "SENTINEL get-master-addr-by-name %s", t->name);
    int port = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? atoi(r->element[1]->str)
                                                                      : -1;
    freeReplyObject(r);
    return port;
}

th_redis *ts_server(ts_cluster *t, int port)
{
    for (int i = 0; i < 2; i++)
        if (t->servers[i].port == port)
            return &t->servers[i];
    return NULL;
}

const char *ts_role(int port, char buf[16])
{
    redisReply *r = ask(port, "ROLE", NULL);
    buf[0] = '\0';
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_STRING)
        snprintf(buf, 16, "%s", r->element[0]->str);
    freeReplyObject(r);
    return buf;
}

/* Elements of the array reply of SENTINEL <what> <name> on sentinel i, or
 * -1. */
static int count_of(const ts_cluster *t, int i, const char *what)
{
    char cmd[64];
    snprintf(cmd, sizeof cmd, "SENTINEL %s %%s", what);
    redisReply *r = ask_sentinel(t, i, cmd, t->name);
    int n = r && r->type == REDIS_REPLY_ARRAY ? (int)r->elements : -1;
    freeReplyObject(r);
    return n;
}

/* Whether the server on port is a replica whose link is up. */
static bool link_up(int port)
{
    redisReply *r = ask(port, "INFO replication", NULL);
    bool up = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "role:slave") &&
              strstr(r->str, "master_link_status:up");
    freeReplyObject(r);
    return up;
}

int ts_wait_replica_synced(ts_cluster *t, int master_port, double seconds)
{
    double end = th_now() + seconds;
    while (th_now() < end) {
        for (int i = 0; i < 2; i++)
            if (t->servers[i].pid > 0 && t->servers[i].port != master_port &&
                link_up(t->servers[i].port))
                return 0;
        usleep(20000);
    }
    return -1;
}

/* Starts sentinel i with its configuration file. 0 or -1. */
static int spawn_sentinel(ts_cluster *t, int i, const char *dir)
{
    t->port[i] = th_free_port();
    snprintf(t->conf[i], sizeof t->conf[i], "%s/sentinel%d.conf", dir, i);
    FILE *f = fopen(t->conf[i], "w");
    if (!f || t->port[i] < 0)
        return -1;
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndir %s\n"
            "sentinel monitor %s 127.0.0.1 %d 2\n"
            "sentinel down-after-milliseconds %s 500\n"
            "sentinel failover-timeout %s 3000\n"
            "sentinel parallel-syncs %s 1\n"
            "requirepass %s\nsentinel sentinel-pass %s\n",
            t->port[i], dir, t->name, t->servers[0].port, t->name, t->name, t->name,
            t->password, t->password);
    fclose(f);
    char *argv[] = {"redis-server", t->conf[i], "--sentinel", NULL};
    pid_t pid = th_spawn(argv, NULL);
    if (pid < 0)
        return -1;
    t->pid[i] = pid;
    return 0;
}

/* Whether every sentinel answers PING, names the master, and knows the
 * replica and the two other sentinels. */
static bool sentinels_ready(const ts_cluster *t)
{
    for (int i = 0; i < TS_SENTINELS; i++) {
        redisReply *r = ask_sentinel(t, i, "PING", NULL);
        bool pong = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        freeReplyObject(r);
        if (!pong || ts_named_port(t, i) != t->servers[0].port ||
            count_of(t, i, "replicas") < 1 || count_of(t, i, "sentinels") < TS_SENTINELS - 1)
            return false;
    }
    return true;
}

int ts_start(ts_cluster *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "mymaster");
    snprintf(t->password, sizeof t->password, "s3ntinel");
    char extra[64];
    if (th_redis_start(&t->servers[0], NULL) != 0)
        return -1;
    snprintf(extra, sizeof extra, "--replicaof 127.0.0.1 %d", t->servers[0].port);
    if (th_redis_start(&t->servers[1], extra) != 0 ||
        ts_wait_replica_synced(t, t->servers[0].port, TH_WAIT_SECONDS) != 0) {
        fprintf(stderr, "sentinel: the replica did not start or sync\n");
        ts_stop(t);
        return -1;
    }
    char *dir = th_tmpfile("sentinels");
    int st = dir && mkdir(dir, 0700) == 0 ? 0 : -1;
    for (int i = 0; st == 0 && i < TS_SENTINELS; i++)
        st = spawn_sentinel(t, i, dir);
    free(dir);
    snprintf(t->list, sizeof t->list, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", t->port[0],
             t->port[1], t->port[2]);
    double end = th_now() + TH_WAIT_SECONDS;
    while (st == 0 && !sentinels_ready(t)) {
        if (th_now() > end) {
            st = -1;
            fprintf(stderr, "sentinel: the sentinels did not get ready\n");
        }
        usleep(50000);
    }
    if (st != 0)
        ts_stop(t);
    return st;
}

void ts_kill_sentinel(ts_cluster *t, int i)
{
    if (t->pid[i] <= 0)
        return;
    kill(t->pid[i], SIGKILL);
    while (waitpid(t->pid[i], NULL, 0) < 0 && errno == EINTR)
        ;
    t->pid[i] = 0;
}

void ts_stop(ts_cluster *t)
{
    for (int i = 0; i < TS_SENTINELS; i++)
        ts_kill_sentinel(t, i);
    for (int i = 0; i < 2; i++)
        th_redis_kill(&t->servers[i]);
}

int ts_failover(ts_cluster *t, double seconds)
{
    double end = th_now() + seconds;
    while (th_now() < end) {
        for (int i = 0; i < TS_SENTINELS; i++) {
            if (t->pid[i] <= 0)
                continue;
            redisReply *r = ask_sentinel(t, i, "SENTINEL FAILOVER %s", t->name);
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            if (ok)
                return 0;
        }
        usleep(100000);
    }
    return -1;
}

void ts_kill(ts_cluster *t, int port)
{
    th_redis *r = ts_server(t, port);
    if (r)
        th_redis_kill(r);
}

int ts_wait_new_master(const ts_cluster *t, int old_port, double seconds)
{
    double end = th_now() + seconds;
    while (th_now() < end) {
        int port = -1;
        bool agreed = true;
        for (int i = 0; i < TS_SENTINELS && agreed; i++) {
            if (t->pid[i] <= 0)
                continue;
            int p = ts_named_port(t, i);
            agreed = p > 0 && p != old_port && (port < 0 || p == port);
            port = p;
        }
        char role[16];
        if (agreed && port > 0 && strcmp(ts_role(port, role), "master") == 0)
            return port;
        usleep(20000);
    }
    return -1;
}
