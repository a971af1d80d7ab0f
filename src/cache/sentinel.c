/* sentinel.c - the master found through Redis Sentinel (see sentinel.h). */
#include "cache/sentinel.h"
#include "cache/wire.h"

#include "core/hostports.h"
#include "core/str.h"

#include "repocache/status.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest wait for one sentinel, seconds. */
#define RC_SENTINEL_TIMEOUT 0.5

struct rc_sentinel {
    pthread_mutex_t mu; /* guards order */
    rc_hostports list;  /* REDIS_SENTINELS as given */
    size_t *order;      /* indexes into list: the order they are asked in */
    char *name;         /* REDIS_SENTINEL_MASTER */
    char *password;     /* REDIS_SENTINEL_PASSWORD or NULL */
};

int rc_sentinel_new(const rc_settings *s, rc_sentinel **out)
{
    *out = NULL;
    if (!s->redis_sentinels || !s->redis_sentinel_master || !s->redis_sentinel_master[0])
        return rc_seterr(RC_ECONFIG, "REDIS_SENTINEL_MASTER: must be set with REDIS_SENTINELS "
                                     "(the name the sentinels monitor the master by)");
    rc_sentinel *t = calloc(1, sizeof *t);
    if (!t)
        return rc_seterr(RC_ENOMEM, "out of memory");
    int st = rc_hostports_parse("REDIS_SENTINELS", s->redis_sentinels, &t->list);
    if (st) {
        free(t);
        return st;
    }
    t->order = malloc(t->list.n * sizeof *t->order);
    t->name = rc_strdup(s->redis_sentinel_master);
    t->password = s->redis_sentinel_password ? rc_strdup(s->redis_sentinel_password) : NULL;
    if (!t->order || !t->name || (s->redis_sentinel_password && !t->password) ||
        pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t->order);
        free(t->name);
        free(t->password);
        rc_hostports_clear(&t->list);
        free(t);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < t->list.n; i++)
        t->order[i] = i;
    *out = t;
    return RC_OK;
}

void rc_sentinel_free(rc_sentinel *s)
{
    if (!s)
        return;
    if (s->password)
        memset(s->password, 0, strlen(s->password));
    free(s->password);
    free(s->name);
    free(s->order);
    rc_hostports_clear(&s->list);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

const char *rc_sentinel_name(const rc_sentinel *s) { return s->name; }

size_t rc_sentinel_count(const rc_sentinel *s) { return s->list.n; }

/* The value of field in one SENTINEL replicas entry (a flat array of
 * names and values), or NULL. */
static const char *field(const redisReply *entry, const char *name)
{
    for (size_t i = 0; entry->type == REDIS_REPLY_ARRAY && i + 1 < entry->elements; i += 2) {
        const redisReply *k = entry->element[i], *v = entry->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            strcmp(k->str, name) == 0)
            return v->str;
    }
    return NULL;
}

/* Replicas in r (the SENTINEL replicas reply) that are up and promotable. */
static int count_replicas(const redisReply *r)
{
    int n = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const char *flags = field(r->element[i], "flags");
        const char *prio = field(r->element[i], "slave-priority");
        if (!flags || strstr(flags, "s_down") || strstr(flags, "o_down") ||
            strstr(flags, "disconnected") || (prio && strcmp(prio, "0") == 0))
            continue;
        n++;
    }
    return n;
}

/* Asks the sentinel at hp. RC_OK with *out; RC_ENOTFOUND when it knows no
 * such master; else the failure (message set). */
static int ask_one(rc_sentinel *s, const rc_link_config *cfg, const rc_hostport *hp,
                   rc_sentinel_master *out)
{
    rc_link *l = NULL;
    int st = rc_link_open(cfg, hp->host, hp->port, NULL, &l);
    if (st) { /* "redis at h:p: connect failed: ..." -> "sentinel at h:p: ..." */
        char why[256];
        const char *m = rc_errmsg();
        snprintf(why, sizeof why, "%s", strncmp(m, "redis at ", 9) == 0 ? m + 9 : m);
        return rc_seterr(st, "sentinel at %s", why);
    }
    const char *auth[2] = {"AUTH", s->password};
    const char *get[3] = {"SENTINEL", "get-master-addr-by-name", s->name};
    const char *reps[3] = {"SENTINEL", "replicas", s->name};
    rc_cmd cmds[3];
    size_t n = 0;
    if (s->password)
        cmds[n++] = (rc_cmd){2, auth, NULL};
    cmds[n++] = (rc_cmd){3, get, NULL};
    cmds[n++] = (rc_cmd){3, reps, NULL};
    redisReply *r[3] = {NULL, NULL, NULL};
    bool ok = rc_wire_send(l, cmds, n);
    for (size_t i = 0; ok && i < n; i++)
        ok = (r[i] = rc_wire_reply(l)) != NULL;
    if (!ok) {
        st = rc_seterr(RC_EUNAVAILABLE, "sentinel at %s:%d: %s", hp->host, hp->port,
                       l->errstr[0] ? l->errstr : "no reply");
    } else {
        const redisReply *a = s->password ? r[0] : NULL, *g = r[n - 2], *rep = r[n - 1];
        if (a && a->type == REDIS_REPLY_ERROR)
            st = rc_seterr(RC_EUNAVAILABLE, "sentinel at %s:%d: AUTH refused: %.*s",
                           hp->host, hp->port, (int)(a->len > 200 ? 200 : a->len), a->str);
        else if (g->type == REDIS_REPLY_ERROR)
            st = rc_seterr(RC_EUNAVAILABLE, "sentinel at %s:%d: %.*s", hp->host, hp->port,
                           (int)(g->len > 200 ? 200 : g->len), g->str);
        else if (g->type != REDIS_REPLY_ARRAY || g->elements != 2 ||
                 g->element[0]->type != REDIS_REPLY_STRING ||
                 g->element[1]->type != REDIS_REPLY_STRING)
            st = rc_seterr(RC_ENOTFOUND, "no sentinel knows a master named '%s'", s->name);
        else {
            snprintf(out->host, sizeof out->host, "%s", g->element[0]->str);
            out->port = atoi(g->element[1]->str);
            out->replicas = count_replicas(rep);
            snprintf(out->sentinel, sizeof out->sentinel,
                     strchr(hp->host, ':') ? "[%s]:%d" : "%s:%d", hp->host, hp->port);
            if (out->port < 1 || out->port > 65535)
                st = rc_seterr(RC_EUNAVAILABLE, "sentinel at %s: bad port for '%s'",
                               out->sentinel, s->name);
        }
    }
    for (size_t i = 0; i < n; i++)
        freeReplyObject(r[i]);
    rc_link_close(l);
    return st;
}

/* Moves list index idx to the front of the order. */
static void to_front(rc_sentinel *s, size_t idx)
{
    pthread_mutex_lock(&s->mu);
    size_t at = 0;
    while (at < s->list.n && s->order[at] != idx)
        at++;
    for (; at > 0 && at < s->list.n; at--)
        s->order[at] = s->order[at - 1];
    s->order[0] = idx;
    pthread_mutex_unlock(&s->mu);
}

int rc_sentinel_ask(rc_sentinel *s, const rc_link_config *cfg, size_t skip,
                    rc_sentinel_master *out)
{
    size_t n = s->list.n;
    size_t *order = malloc(n * sizeof *order);
    if (!order)
        return rc_seterr(RC_ENOMEM, "out of memory");
    pthread_mutex_lock(&s->mu);
    memcpy(order, s->order, n * sizeof *order);
    pthread_mutex_unlock(&s->mu);
    rc_link_config short_cfg = *cfg;
    if (short_cfg.timeout > RC_SENTINEL_TIMEOUT)
        short_cfg.timeout = RC_SENTINEL_TIMEOUT;
    memset(out, 0, sizeof *out);
    int st = RC_EUNAVAILABLE, unknown = 0;
    char last[256] = "no sentinel answered";
    for (size_t k = 0; k < n; k++) {
        size_t idx = order[(skip + k) % n];
        st = ask_one(s, &short_cfg, &s->list.items[idx], out);
        if (st == RC_OK) {
            to_front(s, idx);
            break;
        }
        if (st == RC_ENOMEM)
            break;
        if (st == RC_ENOTFOUND)
            unknown++;
        else
            snprintf(last, sizeof last, "%s", rc_errmsg());
    }
    free(order);
    if (st == RC_OK || st == RC_ENOMEM)
        return st;
    if (unknown == (int)n)
        return rc_seterr(RC_EUNAVAILABLE, "no sentinel knows a master named '%s'", s->name);
    if (unknown) /* the others did not answer */
        return rc_seterr(RC_EUNAVAILABLE,
                         "no sentinel knows a master named '%s' (%d of %zu answered; %s)",
                         s->name, unknown, n, last);
    return rc_seterr(RC_EUNAVAILABLE, "%s", last);
}

int rc_sentinel_check_role(rc_link *l, const char *where)
{
    const char *argv[1] = {"ROLE"};
    redisReply *r = rc_wire_command(l, 1, argv);
    if (!r)
        return rc_seterr(RC_EUNAVAILABLE, "redis at %s: ROLE failed: %s", where,
                         l->errstr[0] ? l->errstr : "no reply");
    const char *role = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                               r->element[0]->type == REDIS_REPLY_STRING
                           ? r->element[0]->str
                           : NULL;
    int st = role && strcmp(role, "master") == 0
                 ? RC_OK
                 : rc_seterr(RC_EUNAVAILABLE, "redis at %s: not the master (role %s)", where,
                             role ? role : r->type == REDIS_REPLY_ERROR ? r->str : "unknown");
    freeReplyObject(r);
    return st;
}
