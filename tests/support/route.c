/* route.c - see route.h. */
#include "route.h"

#include "core/slot.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_MASTERS 16
#define MAX_ARGS 64
#define NO_OWNER 0xff
#define TRIES 20

typedef struct node {
    char host[64];
    int port;
    int slots;       /* how many slots the map gives it */
    redisContext *c; /* connected on first use */
} node;

struct th_route {
    redisContext *one; /* one server: its connection; NULL on a cluster */
    char seeds[256];   /* "host:port,host:port,..." */
    node master[MAX_MASTERS];
    int nmasters;
    unsigned char owner[RC_SLOTS]; /* index into master, or NO_OWNER */
};

/* A command as arguments, pointing into its formatted text. */
typedef struct cmd {
    int argc;
    const char *argv[MAX_ARGS];
    size_t len[MAX_ARGS];
} cmd;

bool th_route_is_cluster(const th_redis *r)
{
    return strncmp(r->url, TH_REDIS_CLUSTER_SCHEME, strlen(TH_REDIS_CLUSTER_SCHEME)) == 0;
}

static bool is(const cmd *c, int i, const char *word)
{
    return i < c->argc && c->len[i] == strlen(word) &&
           strncasecmp(c->argv[i], word, c->len[i]) == 0;
}

static redisContext *connect_to(const char *host, int port)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* Splits "host:port" (the last ':') into host and *port. 0 or -1. */
static int split_addr(const char *addr, size_t n, char host[64], int *port)
{
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++)
        if (addr[i] == ':')
            colon = addr + i;
    if (!colon || colon == addr || (size_t)(colon - addr) >= 64 ||
        sscanf(colon + 1, "%d", port) != 1)
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    return 0;
}

/* The index of master host:port, added when new; -1 when full. */
static int master_at(th_route *rt, const char *host, int port)
{
    for (int i = 0; i < rt->nmasters; i++)
        if (rt->master[i].port == port && strcmp(rt->master[i].host, host) == 0)
            return i;
    if (rt->nmasters == MAX_MASTERS)
        return -1;
    node *n = &rt->master[rt->nmasters];
    snprintf(n->host, sizeof n->host, "%s", host);
    n->port = port;
    n->slots = 0;
    n->c = NULL;
    return rt->nmasters++;
}

static void forget_masters(th_route *rt)
{
    for (int i = 0; i < rt->nmasters; i++)
        if (rt->master[i].c)
            redisFree(rt->master[i].c);
    rt->nmasters = 0;
    memset(rt->owner, NO_OWNER, sizeof rt->owner);
}

/* Fills the map from one CLUSTER SLOTS reply of host. 0, or -1 when it is
 * not a map. */
static int take_map(th_route *rt, const redisReply *rep, const char *host)
{
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements == 0)
        return -1;
    forget_masters(rt);
    for (size_t k = 0; k < rep->elements; k++) {
        const redisReply *e = rep->element[k], *m;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3)
            continue;
        m = e->element[2];
        if (m->type != REDIS_REPLY_ARRAY || m->elements < 2)
            continue;
        int i = master_at(rt, m->element[0]->len ? m->element[0]->str : host,
                          (int)m->element[1]->integer);
        for (long long s = e->element[0]->integer; i >= 0 && s <= e->element[1]->integer &&
                                                   s < RC_SLOTS; s++) {
            rt->owner[s] = (unsigned char)i;
            rt->master[i].slots++;
        }
    }
    return 0;
}

/* Reads the slot map from the first seed that gives one. 0 or -1. */
static int load_map(th_route *rt)
{
    const char *p = rt->seeds;
    while (*p) {
        size_t n = strcspn(p, ",");
        char host[64];
        int port;
        if (split_addr(p, n, host, &port) == 0) {
            redisContext *c = connect_to(host, port);
            redisReply *rep = c ? redisCommand(c, "CLUSTER SLOTS") : NULL;
            int rc = take_map(rt, rep, host);
            freeReplyObject(rep);
            if (c)
                redisFree(c);
            if (rc == 0)
                return 0;
        }
        p += n + (p[n] == ',');
    }
    return -1;
}

/* c on master i (ASKING first when asking); NULL when it cannot be
 * reached (the connection is dropped, made again on next use). */
static redisReply *send_to(th_route *rt, int i, const cmd *c, bool asking)
{
    node *n = &rt->master[i];
    redisReply *rep;
    if (!n->c && !(n->c = connect_to(n->host, n->port)))
        return NULL;
    if (asking)
        freeReplyObject(redisCommand(n->c, "ASKING"));
    cmd args = *c; /* hiredis 0.14 takes const char ** */
    rep = redisCommandArgv(n->c, args.argc, args.argv, args.len);
    if (!rep) {
        redisFree(n->c);
        n->c = NULL;
    }
    return rep;
}

/* The master a MOVED or ASK error names ("MOVED 3999 127.0.0.1:6381"),
 * or -1. */
static int redirect_target(th_route *rt, const char *err)
{
    char addr[128], host[64];
    int port;
    if (sscanf(err, "%*s %*u %127s", addr) != 1 ||
        split_addr(addr, strlen(addr), host, &port) != 0)
        return -1;
    return master_at(rt, host, port);
}

/* c on the master of slot, redirections followed. */
static redisReply *on_slot(th_route *rt, unsigned slot, const cmd *c)
{
    redisReply *rep = NULL;
    bool asking = false;
    int i = rt->owner[slot];
    for (int t = 0; t < TRIES; t++) {
        if (i == NO_OWNER || i < 0) {
            usleep(20000);
            load_map(rt);
            i = rt->owner[slot];
            continue;
        }
        freeReplyObject(rep);
        rep = send_to(rt, i, c, asking);
        asking = false;
        if (!rep || rep->type != REDIS_REPLY_ERROR)
            return rep;
        if (strncmp(rep->str, "MOVED ", 6) == 0) {
            i = redirect_target(rt, rep->str);
            if (i >= 0)
                rt->owner[slot] = (unsigned char)i;
        } else if (strncmp(rep->str, "ASK ", 4) == 0) {
            i = redirect_target(rt, rep->str);
            asking = true;
        } else if (strncmp(rep->str, "TRYAGAIN", 8) == 0 ||
                   strncmp(rep->str, "CLUSTERDOWN", 11) == 0) {
            usleep(20000);
        } else {
            return rep;
        }
    }
    return rep;
}

/* The first master with slots (for commands without a key). */
static int first_master(const th_route *rt)
{
    for (int i = 0; i < rt->nmasters; i++)
        if (rt->master[i].slots > 0)
            return i;
    return 0;
}

/* Moves the elements of array src to the end of array dst; frees src. */
static void append_elements(redisReply *dst, redisReply *src)
{
    size_t n = dst->elements + src->elements;
    redisReply **v = realloc(dst->element, (n ? n : 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    if (src->elements) /* an empty array's element is NULL */
        memcpy(v + dst->elements, src->element, src->elements * sizeof *v);
    dst->element = v;
    dst->elements = n;
    free(src->element);
    src->element = NULL;
    src->elements = 0;
    freeReplyObject(src);
}

/* The reply of every master so far (acc) with master's reply rep: an
 * error or a NULL wins; arrays are joined, integers summed. */
static redisReply *merge(redisReply *acc, redisReply *rep)
{
    if (!acc || !rep || acc->type == REDIS_REPLY_ERROR) {
        if (!rep || !acc) {
            freeReplyObject(acc);
            freeReplyObject(rep);
            return NULL;
        }
        freeReplyObject(rep);
        return acc;
    }
    if (rep->type == REDIS_REPLY_ERROR || rep->type != acc->type) {
        freeReplyObject(acc);
        return rep;
    }
    if (acc->type == REDIS_REPLY_ARRAY)
        append_elements(acc, rep);
    else {
        if (acc->type == REDIS_REPLY_INTEGER)
            acc->integer += rep->integer;
        freeReplyObject(rep);
    }
    return acc;
}

/* c (FLUSHALL, FLUSHDB, KEYS, DBSIZE) on every master, merged. */
static redisReply *fan_out(th_route *rt, const cmd *c)
{
    redisReply *acc = NULL;
    bool first = true;
    for (int i = 0; i < rt->nmasters; i++) {
        if (rt->master[i].slots == 0)
            continue;
        redisReply *rep = send_to(rt, i, c, false);
        acc = first ? rep : merge(acc, rep);
        first = false;
        if (!acc)
            return NULL;
    }
    return acc;
}

static redisReply *new_reply(int type)
{
    redisReply *r = calloc(1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    r->type = type;
    return r;
}

/* SCAN 0 [options] on every master to its end: ["0", [every key]]. */
static redisReply *scan_all(th_route *rt, const cmd *c)
{
    redisReply *out = new_reply(REDIS_REPLY_ARRAY), *keys = new_reply(REDIS_REPLY_ARRAY);
    cmd one = *c;
    char cursor[32];
    out->element = calloc(2, sizeof *out->element);
    ck_assert_ptr_nonnull(out->element);
    out->elements = 2;
    out->element[0] = new_reply(REDIS_REPLY_STRING);
    out->element[0]->str = strdup("0");
    out->element[0]->len = 1;
    out->element[1] = keys;
    ck_assert_msg(is(c, 1, "0"), "th_route: SCAN on a cluster starts at cursor 0");
    for (int i = 0; i < rt->nmasters; i++) {
        if (rt->master[i].slots == 0)
            continue;
        snprintf(cursor, sizeof cursor, "0");
        do {
            one.argv[1] = cursor;
            one.len[1] = strlen(cursor);
            redisReply *rep = send_to(rt, i, &one, false);
            if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
                freeReplyObject(out);
                return rep;
            }
            snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
            append_elements(keys, rep->element[1]);
            rep->element[1] = new_reply(REDIS_REPLY_NIL);
            freeReplyObject(rep);
        } while (strcmp(cursor, "0") != 0);
    }
    return out;
}

/* DEL, UNLINK, EXISTS or TOUCH of several keys: one key at a time, the
 * integers summed. */
static redisReply *split_keys(th_route *rt, const cmd *c)
{
    redisReply *acc = NULL;
    for (int k = 1; k < c->argc; k++) {
        cmd one = {2, {c->argv[0], c->argv[k]}, {c->len[0], c->len[k]}};
        redisReply *rep = on_slot(rt, rc_slot(c->argv[k], c->len[k]), &one);
        acc = k == 1 ? rep : merge(acc, rep);
        if (!acc)
            return NULL;
    }
    return acc;
}

static redisReply *cluster_cmd(th_route *rt, const cmd *c)
{
    static const char *const everywhere[] = {"FLUSHALL", "FLUSHDB", "KEYS", "DBSIZE"};
    static const char *const per_key[] = {"DEL", "UNLINK", "EXISTS", "TOUCH"};
    static const char *const keyless[] = {"PING", "INFO", "CONFIG", "CLUSTER", "CLIENT",
                                          "SCRIPT", "FUNCTION", "ECHO", "TIME", "ROLE"};
    for (size_t i = 0; i < sizeof everywhere / sizeof everywhere[0]; i++)
        if (is(c, 0, everywhere[i]))
            return fan_out(rt, c);
    if (is(c, 0, "SCAN"))
        return scan_all(rt, c);
    for (size_t i = 0; c->argc > 2 && i < sizeof per_key / sizeof per_key[0]; i++)
        if (is(c, 0, per_key[i]))
            return split_keys(rt, c);
    if ((is(c, 0, "EVAL") || is(c, 0, "EVALSHA")) && c->argc > 3 && !is(c, 2, "0"))
        return on_slot(rt, rc_slot(c->argv[3], c->len[3]), c);
    bool no_key = c->argc < 2 || is(c, 0, "EVAL") || is(c, 0, "EVALSHA");
    for (size_t i = 0; !no_key && i < sizeof keyless / sizeof keyless[0]; i++)
        no_key = is(c, 0, keyless[i]);
    if (no_key)
        return send_to(rt, first_master(rt), c, false);
    return on_slot(rt, rc_slot(c->argv[1], c->len[1]), c);
}

/* The arguments of the formatted command s[0..n): "*N\r\n" then N times
 * "$LEN\r\n" LEN bytes "\r\n". 0 or -1. */
static int parse_cmd(const char *s, size_t n, cmd *c)
{
    const char *p = s, *end = s + n, *nl;
    if (n < 4 || *p != '*' || sscanf(p + 1, "%d", &c->argc) != 1 || c->argc < 1 ||
        c->argc > MAX_ARGS || !(nl = memchr(p, '\n', n)))
        return -1;
    p = nl + 1;
    for (int i = 0; i < c->argc; i++) {
        long len;
        if (p >= end || *p != '$' || sscanf(p + 1, "%ld", &len) != 1 || len < 0 ||
            !(nl = memchr(p, '\n', (size_t)(end - p))) || nl + 1 + len + 2 > end)
            return -1;
        c->argv[i] = nl + 1;
        c->len[i] = (size_t)len;
        p = nl + 1 + len + 2;
    }
    return 0;
}

th_route *th_route_open(const th_redis *r)
{
    th_route *rt = calloc(1, sizeof *rt);
    ck_assert_ptr_nonnull(rt);
    if (!th_route_is_cluster(r)) {
        rt->one = th_redis_connect(r, NULL);
        ck_assert_msg(rt->one != NULL, "th_route: no connection to %s", r->url);
        return rt;
    }
    snprintf(rt->seeds, sizeof rt->seeds, "%s", r->url + strlen(TH_REDIS_CLUSTER_SCHEME));
    ck_assert_msg(load_map(rt) == 0, "th_route: no seed of %s gave CLUSTER SLOTS", rt->seeds);
    return rt;
}

void th_route_close(th_route *rt)
{
    if (!rt)
        return;
    if (rt->one)
        redisFree(rt->one);
    forget_masters(rt);
    free(rt);
}

redisReply *th_route_vcmd(th_route *rt, const char *fmt, va_list ap)
{
    char *text = NULL;
    cmd c;
    if (rt->one)
        return redisvCommand(rt->one, fmt, ap);
    int n = redisvFormatCommand(&text, fmt, ap);
    if (n < 0)
        return NULL;
    redisReply *rep = parse_cmd(text, (size_t)n, &c) == 0 ? cluster_cmd(rt, &c) : NULL;
    redisFreeCommand(text);
    return rep;
}

redisReply *th_route_cmd(th_route *rt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = th_route_vcmd(rt, fmt, ap);
    va_end(ap);
    return rep;
}

int th_route_flushall(const th_redis *r)
{
    th_route *rt = th_route_open(r);
    redisReply *rep = th_route_cmd(rt, "FLUSHALL");
    int rc = rep && rep->type == REDIS_REPLY_STATUS ? 0 : -1;
    freeReplyObject(rep);
    th_route_close(rt);
    return rc;
}
