/*
 * route.c - the path of a call through a Redis Cluster (cluster.h). A call
 * (rc_call_with) runs its work on a stand-in link whose route sends each
 * command to the master of its key's slot: the commands of a pipeline are
 * grouped by master, each group one round trip on a connection of that
 * master's pool, every group sent before any reply is read (in parallel:
 * about one round trip for the pipeline, whatever its masters). A
 * multi-key UNLINK, DEL, EXISTS or TOUCH is split into one command per key
 * (a cluster refuses keys of several slots in one command) and its replies
 * summed. A script names its data key first; its other keys share that
 * slot (cached_keys.c).
 *
 * Replies that redirect: MOVED patches the map at once, refreshes it and
 * sends the command again to the new master; ASK sends ASKING and the
 * command to the named node, once; TRYAGAIN and CLUSTERDOWN wait
 * (RC_ROUTE_BACKOFF, doubled each time) and send again; RC_ROUTE_TRIES
 * rounds at most. Commands without a key (SCAN, PING, INFO) go to the
 * master the route is pinned to (rc_route_each_master).
 *
 * Before a master is used: its breaker is asked (open: the call fails at
 * once, the map is asked for again), the deletes remembered for its keys
 * are replayed, and its identity is checked (a new one, such as a replica
 * promoted, has every namespace dropped there first, identity.c). A master
 * that fails feeds its own breaker only: the keys of the other masters'
 * slots are not degraded.
 */
#include "cache/service.h"

#include "core/clock.h"
#include "core/log.h"

#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Rounds of redirects and retries for one command. */
#define RC_ROUTE_TRIES 6
/* The first wait after TRYAGAIN or CLUSTERDOWN, seconds (then doubled). */
#define RC_ROUTE_BACKOFF 0.02

typedef struct rc_route {
    rc_cnode *pin;  /* where commands without a key go, or NULL */
    bool replaying; /* a master's remembered deletes are being replayed
                       through this route: not again from inside */
} rc_route;

/* One command as sent: with one key (or none). */
typedef struct sub {
    size_t cmd;          /* index of the caller's command */
    rc_cmd c;            /* what is sent */
    const char *argv[2]; /* room for a split command: name, key */
    size_t lens[2];
    unsigned slot;       /* its key's slot */
    bool keyless;        /* no key: goes to the pinned master */
    rc_cnode *ask;       /* ASK: the node to send it to once, after ASKING */
    redisReply *reply;   /* its reply once done */
    bool done;
    rc_cnode *node;      /* where it goes in the current round, until sent */
} sub;

/* ---- commands and their keys ---- */

static bool named(const rc_cmd *c, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (strcasecmp(c->argv[0], names[i]) == 0)
            return true;
    return false;
}

static const char *const keyless_names[] = {"SCAN",  "INFO", "PING",  "DBSIZE", "SCRIPT",
                                            "WAIT",  "ROLE", "CLUSTER", NULL};
static const char *const summed_names[] = {"UNLINK", "DEL", "EXISTS", "TOUCH", NULL};

/* Whether c is split into one command per key. */
static bool split(const rc_cmd *c) { return c->argc > 2 && named(c, summed_names); }

static size_t arg_len(const rc_cmd *c, int i)
{
    return c->argvlen ? c->argvlen[i] : strlen(c->argv[i]);
}

/* The argument of c holding its key, or -1 for none. */
static int key_arg(const rc_cmd *c)
{
    if (named(c, keyless_names) || c->argc < 2)
        return -1;
    if (strcasecmp(c->argv[0], "EVALSHA") == 0 || strcasecmp(c->argv[0], "EVAL") == 0)
        return c->argc > 3 && atoi(c->argv[2]) > 0 ? 3 : -1;
    return 1;
}

/* The subs of cmds[0..n): *out (free it), *ns of them. */
static int expand(const rc_cmd *cmds, size_t n, sub **out, size_t *ns)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += split(&cmds[i]) ? (size_t)cmds[i].argc - 1 : 1;
    sub *s = calloc(k, sizeof *s);
    if (!s)
        return rc_seterr(RC_ENOMEM, "out of memory");
    k = 0;
    for (size_t i = 0; i < n; i++) {
        const rc_cmd *c = &cmds[i];
        int parts = split(c) ? c->argc - 1 : 1;
        for (int j = 0; j < parts; j++, k++) {
            s[k].cmd = i;
            s[k].c = *c;
            if (parts > 1) {
                s[k].argv[0] = c->argv[0];
                s[k].argv[1] = c->argv[j + 1];
                s[k].lens[0] = arg_len(c, 0);
                s[k].lens[1] = arg_len(c, j + 1);
                s[k].c = (rc_cmd){2, s[k].argv, s[k].lens};
            }
            int a = key_arg(&s[k].c);
            s[k].keyless = a < 0;
            if (a >= 0)
                s[k].slot = rc_slot(s[k].c.argv[a], arg_len(&s[k].c, a));
        }
    }
    *out = s;
    *ns = k;
    return RC_OK;
}

/* The caller's replies from the subs' (taken from them). */
static int combine(const rc_cmd *cmds, size_t n, sub *s, size_t ns, redisReply **replies)
{
    for (size_t i = 0, k = 0; i < n; i++) {
        if (!split(&cmds[i])) {
            replies[i] = s[k].reply;
            s[k++].reply = NULL;
            continue;
        }
        redisReply *err = NULL;
        long long sum = 0;
        for (; k < ns && s[k].cmd == i; k++) {
            if (s[k].reply->type == REDIS_REPLY_ERROR && !err) {
                err = s[k].reply;
                s[k].reply = NULL;
            } else if (s[k].reply->type == REDIS_REPLY_INTEGER) {
                sum += s[k].reply->integer;
            }
        }
        if (!err && !(replies[i] = calloc(1, sizeof *replies[i])))
            return rc_seterr(RC_ENOMEM, "out of memory");
        if (err) {
            replies[i] = err;
        } else {
            replies[i]->type = REDIS_REPLY_INTEGER;
            replies[i]->integer = sum;
        }
    }
    return RC_OK;
}

/* ---- one master ---- */

/* A stand-in link for c's calls through route r. */
static void stand_in(rc_link *l, rc_route *r, const rc_cache *c)
{
    memset(l, 0, sizeof *l);
    l->fd = -1;
    l->replicas = -1;
    l->timeout_ns = (int64_t)(c->pool.link.timeout * 1e9);
    l->route = r;
}

/* The shortest tag of a slot node masters in m, or NULL. */
static const char *node_tag(const rc_slotmap *m, const rc_cnode *node)
{
    for (unsigned slot = 0; slot < RC_SLOTS; slot++) {
        const rc_slotnode *sn = rc_slotmap_master(m, slot);
        if (sn && sn->port == node->pool.port && strcmp(sn->host, node->pool.host) == 0)
            return rc_slot_tag(slot);
    }
    return NULL;
}

/* Takes r as s's reply (s done) unless it redirects (MOVED: the map
 * patched; ASK: s->ask set) or asks to wait (*wait). */
static void take_reply(rc_cache *c, const rc_slotmap *m, rc_cnode *node, sub *s,
                       redisReply *r, bool *wait)
{
    bool err = r->type == REDIS_REPLY_ERROR;
    rc_redirect rd;
    s->ask = NULL;
    if (err && rc_redirect_parse(r->str, &rd) == RC_OK) {
        atomic_fetch_add(&c->cluster->redirects, 1);
        const char *host = rd.host[0] ? rd.host : node->pool.host;
        if (!rd.ask)
            rc_cluster_moved(c, m, &rd, node->pool.host);
        else if (rc_cluster_node(c, host, rd.port, &s->ask) != RC_OK)
            s->ask = NULL;
        freeReplyObject(r);
        return;
    }
    bool busy = err && (strncmp(r->str, "TRYAGAIN", 8) == 0 ||
                        strncmp(r->str, "CLUSTERDOWN", 11) == 0);
    if (busy) {
        *wait = true;
        if (r->str[0] == 'C')
            rc_cluster_refresh(c);
        freeReplyObject(r);
        return;
    }
    s->reply = r;
    s->done = true;
}

/* The deletes remembered for node's keys, through the route (each goes
 * where its key lives now; patterns on node alone). */
static int replay_node(rc_cache *c, rc_link *ctx, rc_cnode *node)
{
    rc_route *r = ctx->route;
    rc_cnode *pin = r->pin;
    r->pin = node;
    r->replaying = true;
    int st = rc_replay_pending(c, &node->dels, ctx);
    r->pin = pin;
    r->replaying = false;
    return st;
}

/* Before a master is first used, and again after its breaker opened: the
 * invalidation outbox applied through the route (each row's keys where they
 * live), so another process's write whose delete could not reach this
 * master is not read stale from it. Other threads wait for it; the
 * commands of the application itself do not start another. Not while its
 * breaker is open (the call is denied). Best effort: a failure elsewhere
 * (another master down, say) does not keep this master from being used,
 * and the service's thread applies the rows again. */
static void outbox_first(rc_cache *c, rc_link *ctx, rc_cnode *node)
{
    unsigned gen = atomic_load(&node->gen);
    if (atomic_load(&node->outbox_gen) == gen || ctx->route->replaying || rc_outbox_applying() ||
        rc_breaker_state(&node->breaker) == RC_CIRCUIT_OPEN) /* the call is denied */
        return;
    pthread_mutex_lock(&node->outbox_mu);
    if (atomic_load(&node->outbox_gen) != gen) {
        rc_cnode *pin = ctx->route->pin; /* a pattern row pins masters in turn */
        rc_outbox_flush(c); /* the rows our own writes delivered are not pending */
        int st = rc_outbox_apply(c, ctx);
        ctx->route->pin = pin;
        if (st != RC_OK) {
            rc_log(c->log_level, RC_LOG_DEBUG, "redis_outbox_not_applied",
                   "redis at %s: the outbox before its use: %s", node->where, rc_errmsg());
            rc_clearerr();
        }
        /* done unless this master failed it (a half-open probe that did
         * not close its breaker): then the next call applies again */
        if (st == RC_OK || rc_breaker_state(&node->breaker) == RC_CIRCUIT_CLOSED)
            atomic_store(&node->outbox_gen, gen);
    }
    pthread_mutex_unlock(&node->outbox_mu);
}

/* A failed or recovered master, as the breaker saw it. */
static void node_outcome(rc_cache *c, rc_cnode *node, rc_breaker_ticket t, bool ok)
{
    if (rc_breaker_report(&node->breaker, t, ok)) {
        atomic_fetch_add(&node->gen, 1); /* its identity is checked again */
        rc_cluster_node_lose(node, "circuit breaker open");
        rc_log(c->log_level, RC_LOG_WARNING, "redis_breaker_open",
               "redis at %s: circuit breaker open (%s); degrading its slots' keys%s",
               node->where, rc_errmsg(),
               c->fallback_enabled ? " to the in-memory fallback" : "");
    }
    if (!ok)
        rc_cluster_refresh(c); /* a replica may be taking over */
}

/* One master's group of a round: its commands are sent to every master
 * of the round before any reply is read, so a pipeline spanning masters
 * takes about one round trip, not one per master. */
typedef struct flight {
    rc_cnode *node;
    sub **group;           /* its subs: a slice of the round's array */
    size_t k;
    rc_cmd *cmds;          /* what is sent: ASKING before each ASK sub */
    redisReply **rep;      /* their replies */
    size_t n;
    rc_breaker_ticket t;   /* its breaker's, once asked */
    bool asked;            /* t is set: the outcome is reported */
    rc_conn *conn;         /* borrowed from its pool, or NULL */
    int st;
} flight;

/* Before f's master is used: the deletes remembered for it replayed and
 * the outbox applied (route calls of their own: no connection of the
 * round is held yet). */
static void prepare(rc_cache *c, rc_link *ctx, flight *f)
{
    if (!ctx->route->replaying && atomic_load(&f->node->dels.count) &&
        (f->st = replay_node(c, ctx, f->node)) != RC_OK)
        return;
    outbox_first(c, ctx, f->node);
}

/* The commands of f, with ASKING before those redirected by ASK. */
static int build(flight *f)
{
    static const char *asking[1] = {"ASKING"};
    f->cmds = malloc(2 * f->k * sizeof *f->cmds);
    f->rep = malloc(2 * f->k * sizeof *f->rep);
    if (!f->cmds || !f->rep)
        return rc_seterr(RC_ENOMEM, "out of memory");
    for (size_t i = 0; i < f->k; i++) {
        if (f->group[i]->ask)
            f->cmds[f->n++] = (rc_cmd){1, asking, NULL};
        f->cmds[f->n++] = f->group[i]->c;
    }
    return RC_OK;
}

/* Asks f's master's breaker, borrows a connection, checks the master's
 * identity on it and sends f's commands. */
static void depart(rc_cache *c, const rc_slotmap *m, flight *f)
{
    f->t = rc_breaker_acquire(&f->node->breaker);
    if (f->t == RC_BREAKER_DENY) {
        rc_cluster_refresh(c);
        f->st = rc_seterr(RC_EUNAVAILABLE, "redis at %s: circuit breaker open", f->node->where);
        return;
    }
    f->asked = true;
    if ((f->st = rc_pool_borrow(&f->node->pool, &f->conn)) != RC_OK)
        return;
    rc_conn_enter(f->conn);
    /* the tag is a walk of the map: only when the check will use it */
    if (!rc_identity_node_verified(f->node, f->conn))
        f->st = rc_identity_verify_node(c, f->node, f->conn, node_tag(m, f->node));
    if (f->st == RC_OK && (f->st = build(f)) == RC_OK)
        f->st = rc_call_send(c, f->conn->ctx, f->cmds, f->n);
}

/* Reads and takes f's replies (when it was sent), then ends f: the
 * connection returned, the breaker told. */
static void land(rc_cache *c, const rc_slotmap *m, flight *f, bool *wait)
{
    bool sent = f->conn && f->st == RC_OK;
    if (sent)
        f->st = rc_call_receive(c, f->conn->ctx, f->rep, f->n);
    for (size_t i = 0, j = 0; sent && f->st == RC_OK && i < f->k; i++) {
        if (f->group[i]->ask)
            freeReplyObject(f->rep[j++]);
        take_reply(c, m, f->node, f->group[i], f->rep[j++], wait);
    }
    bool ok = f->st != RC_EUNAVAILABLE && f->st != RC_EAUTH;
    if (f->conn) {
        rc_conn_leave(f->conn);
        rc_pool_return(&f->node->pool, f->conn, !ok);
    }
    if (f->asked)
        node_outcome(c, f->node, f->t, ok);
    free(f->cmds);
    free(f->rep);
}

/* ---- a pipeline ---- */

/* Where s goes under m; NULL with the status in *st and the reason in
 * rc_errmsg. */
static rc_cnode *target(rc_cache *c, const rc_route *r, const rc_slotmap *m, const sub *s,
                        int *st)
{
    if (s->ask)
        return s->ask;
    if (s->keyless) {
        if (!r->pin)
            *st = rc_seterr(RC_EINVAL, "redis cluster: %s has no key to route by",
                            s->c.argv[0]);
        return r->pin;
    }
    rc_cnode *n = rc_cluster_master(c, m, s->slot);
    if (!n) {
        rc_cluster_refresh(c);
        *st = rc_seterr(RC_EUNAVAILABLE, "redis cluster: no master serves slot %u", s->slot);
    }
    return n;
}

/* Flights in the order of their masters' addresses: every thread borrows
 * the connections of several masters in one order (rc_pool_borrow waits
 * while a pool is at its bound), so no two wait for each other. */
static int by_node(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const flight *)a)->node, y = (uintptr_t)((const flight *)b)->node;
    return (x > y) - (x < y);
}

/* Notes f's failure as the round's first when it is. */
static void note(const flight *f, int *first, char why[512])
{
    if (f->st != RC_OK && *first == RC_OK) {
        *first = f->st;
        snprintf(why, 512, "%s", rc_errmsg());
    }
}

/* One round: every sub not done yet sent once, grouped by master, every
 * group sent before any reply is read. A master that fails does not keep
 * the others' groups from being sent (an invalidation reaches every master
 * it can); the first failure is returned. */
static int one_round(rc_cache *c, rc_link *ctx, const rc_slotmap *m, sub *s, size_t ns,
                     sub **group, flight *fl, bool *wait)
{
    int first = RC_OK;
    char why[512] = "";
    size_t nf = 0, used = 0;
    for (size_t i = 0; i < ns && first == RC_OK; i++)
        s[i].node = s[i].done ? NULL : target(c, ctx->route, m, &s[i], &first);
    for (size_t i = 0; i < ns; i++) {
        if (!s[i].node)
            continue;
        flight *f = &fl[nf++];
        *f = (flight){.node = s[i].node, .group = group + used};
        for (size_t j = i; j < ns; j++) {
            if (s[j].node == f->node) {
                s[j].node = NULL;
                f->group[f->k++] = &s[j];
            }
        }
        used += f->k;
    }
    qsort(fl, nf, sizeof *fl, by_node);
    for (size_t i = 0; i < nf; i++) {
        prepare(c, ctx, &fl[i]);
        note(&fl[i], &first, why);
    }
    for (size_t i = 0; i < nf; i++) {
        if (fl[i].st == RC_OK) {
            depart(c, m, &fl[i]);
            note(&fl[i], &first, why);
        }
    }
    for (size_t i = 0; i < nf; i++) {
        int before = fl[i].st;
        land(c, m, &fl[i], wait);
        if (before == RC_OK)
            note(&fl[i], &first, why);
    }
    return first && why[0] ? rc_seterr(first, "%s", why) : first;
}

/* Rounds until every sub is done. */
static int route_subs(rc_cache *c, rc_link *ctx, sub *s, size_t ns)
{
    sub **group = malloc(ns * sizeof *group);
    flight *fl = malloc(ns * sizeof *fl);
    double backoff = RC_ROUTE_BACKOFF;
    int st = group && fl ? RC_OK : rc_seterr(RC_ENOMEM, "out of memory");
    for (int round = 0; st == RC_OK; round++) {
        size_t left = 0;
        for (size_t i = 0; i < ns; i++)
            left += !s[i].done;
        if (!left)
            break;
        if (round == RC_ROUTE_TRIES) {
            st = rc_seterr(RC_EUNAVAILABLE, "redis cluster: %zu command(s) still redirected "
                           "or refused after %d tries", left, RC_ROUTE_TRIES);
            break;
        }
        rc_slotmap *m = rc_cluster_map(c);
        bool wait = false;
        st = m ? one_round(c, ctx, m, s, ns, group, fl, &wait) : RC_EUNAVAILABLE;
        rc_slotmap_release(m);
        if (st == RC_OK && wait && round + 1 < RC_ROUTE_TRIES) {
            rc_clock_sleep(backoff);
            backoff *= 2;
        }
    }
    free(group);
    free(fl);
    return st;
}

int rc_route_pipeline(rc_cache *c, rc_link *ctx, const rc_cmd *cmds, size_t n,
                      redisReply **replies)
{
    sub *s = NULL;
    size_t ns = 0;
    int st = expand(cmds, n, &s, &ns);
    if (st == RC_OK)
        st = route_subs(c, ctx, s, ns);
    if (st == RC_OK)
        st = combine(cmds, n, s, ns, replies);
    for (size_t i = 0; i < ns; i++)
        freeReplyObject(s[i].reply);
    free(s);
    if (st)
        for (size_t i = 0; i < n; i++) {
            freeReplyObject(replies[i]);
            replies[i] = NULL;
        }
    return st;
}

/* ---- calls ---- */

int rc_route_call(rc_cache *c, rc_redis_fn fn, void *ud)
{
    rc_route r = {NULL, false};
    rc_link l;
    stand_in(&l, &r, c);
    int st = RC_OK;
    if (atomic_load(&c->dels.count)) /* remembered before any map was known */
        st = rc_replay_pending(c, &c->dels, &l);
    return st == RC_OK ? fn(c, &l, ud) : st;
}

bool rc_route_unpinned(const rc_link *ctx) { return ctx->route && !ctx->route->pin; }

int rc_route_each_master(rc_cache *c, rc_link *ctx, rc_redis_fn fn, void *ud)
{
    rc_route *r = ctx->route;
    rc_slotmap *m = rc_cluster_map(c);
    if (!m)
        return RC_EUNAVAILABLE;
    int first = RC_OK;
    char why[512] = "";
    for (size_t i = 0; i < m->n; i++) {
        rc_cnode *node = NULL;
        if (!m->nodes[i].master)
            continue;
        int st = rc_cluster_node(c, m->nodes[i].host, m->nodes[i].port, &node);
        r->pin = node;
        if (st == RC_OK)
            st = fn(c, ctx, ud);
        r->pin = NULL;
        if (st != RC_OK && first == RC_OK) { /* the others are still done */
            first = st;
            snprintf(why, sizeof why, "%s", rc_errmsg());
        }
    }
    rc_slotmap_release(m);
    return first ? rc_seterr(first, "%s", why) : RC_OK;
}
