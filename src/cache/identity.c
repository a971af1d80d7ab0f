/*
 * identity.c - Redis's identity and the trust in it. A Redis that restarted
 * (its run_id changes), a replica promoted in a failover (another run_id) or
 * an AOF restore (a restart) can hold values whose invalidation it had
 * acknowledged. So a service uses a connection only after checking the
 * run_id behind it (INFO server, once per connection and per loss of
 * trust), and before it trusts an identity it has not trusted before:
 *
 *   1. every registered namespace is dropped there once. Which were is
 *      kept in the server's script cache, not in its keys (no key is left
 *      behind, and a restart, a failover to a replica or an AOF restore
 *      forgets it, exactly when it must be forgotten): a namespace is done
 *      when the script "return '<run_id> <hex of its pattern>'" is loaded
 *      (SCRIPT EXISTS). Otherwise one process claims the drop with
 *      SET P~identity:<sha> NX PX 2000, drops (SCAN + UNLINK, leases
 *      first), loads the script and deletes the claim; the others wait for
 *      the script, or take the claim over once it has lapsed (its process
 *      died);
 *   2. the invalidation outbox is applied (outbox.c);
 *   3. only then is the identity trusted and the caller's command sent.
 *
 * After the breaker opened (rc_identity_distrust) steps 2 and 3 run again
 * before Redis is used; step 1 only if the run_id changed meanwhile. A new
 * process connecting later finds the scripts and drops nothing; the first
 * service to meet a server (or after SCRIPT FLUSH) drops its namespaces
 * once.
 */
#include "cache/service.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long a claim to drop a namespace stands (a drop taking longer lets a
 * second process drop too, which is harmless). */
#define CLAIM_MS "2000"
/* How long a service waits for another process's drop, seconds. */
#define CLAIM_WAIT 20.0

/* One command on ctx; *reply owned by the caller. */
static int one(rc_cache *c, rc_link *ctx, int argc, const char **argv,
               redisReply **reply)
{
    rc_cmd cmd = {argc, argv, NULL};
    int st = rc_call_pipeline(c, ctx, &cmd, 1, reply);
    if (st == RC_OK && (st = rc_call_reply_error(c, *reply, argv[0])) != RC_OK) {
        freeReplyObject(*reply);
        *reply = NULL;
    }
    return st;
}

/* The value of field ("run_id:") in an INFO reply r, into out (size);
 * false when it is not there. */
static bool info_field(const redisReply *r, const char *field, char *out, size_t size)
{
    const char *p = r->type == REDIS_REPLY_STRING ? strstr(r->str, field) : NULL;
    size_t k = strlen(field), n = p ? strcspn(p + k, "\r\n") : 0;
    if (!p || n == 0 || n >= size)
        return false;
    snprintf(out, size, "%.*s", (int)n, p + k);
    return true;
}

/* id = the identity of the server behind ctx: its run_id and its
 * replication id ("<run_id>:<master_replid>", INFO server and INFO
 * replication in one round trip). A replica promoted in a failover takes
 * a new replication id, so a server that was trusted before, was demoted
 * and is promoted again is a new identity too. With Sentinel the server
 * must say role:master (else RC_EUNAVAILABLE: ask the sentinels again). */
static int read_identity(rc_cache *c, rc_link *ctx, char id[RC_IDENTITY_MAX])
{
    const char *srv[] = {"INFO", "server"}, *repl[] = {"INFO", "replication"};
    rc_cmd cmds[2] = {{2, srv, NULL}, {2, repl, NULL}};
    redisReply *r[2] = {NULL, NULL};
    int st = rc_call_pipeline(c, ctx, cmds, 2, r);
    if (st != RC_OK)
        return st;
    char run_id[48], replid[48] = "", role[16] = "";
    if (r[0]->type == REDIS_REPLY_ERROR) { /* INFO refused (ACL, renamed): no
                                              identity to follow; restarts
                                              then go unnoticed */
        snprintf(id, RC_IDENTITY_MAX, "unknown");
    } else if (!info_field(r[0], "run_id:", run_id, sizeof run_id)) {
        st = rc_seterr(RC_EBACKEND, "redis at %s: INFO server has no run_id", c->where);
    } else {
        if (r[1]->type != REDIS_REPLY_ERROR) {
            info_field(r[1], "master_replid:", replid, sizeof replid);
            info_field(r[1], "role:", role, sizeof role);
        }
        snprintf(id, RC_IDENTITY_MAX, "%s:%s", run_id, replid);
        if ((c->pool.sentinel || c->cluster) && strcmp(role, "master") != 0)
            st = rc_seterr(RC_EUNAVAILABLE, "redis at %s: not the master (role %s)",
                           c->where, role[0] ? role : "unknown");
    }
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    return st;
}

/* The script whose presence says src's namespace was dropped on run_id,
 * and its SHA1. */
static char *done_script(rc_cache *c, const rc_outbox_source *src,
                         const char *run_id, char sha[41])
{
    char *pat = rc_str_concat(c->escaped_prefix, src->ns_glob);
    size_t n = pat ? strlen(pat) : 0;
    char *body = pat ? malloc(2 * n + 160) : NULL;
    if (body) {
        int k = snprintf(body, 160, "return 'repocache dropped %s ", run_id);
        for (size_t i = 0; i < n; i++)
            k += sprintf(body + k, "%02x", (unsigned char)pat[i]);
        strcpy(body + k, "'");
        rc_script_sha1_hex(body, strlen(body), sha);
    }
    free(pat);
    return body;
}

/* Whether the script sha is loaded; RC_OK or the failure. */
static int script_loaded(rc_cache *c, rc_link *ctx, const char *sha,
                         bool *yes)
{
    const char *argv[] = {"SCRIPT", "EXISTS", sha};
    redisReply *r = NULL;
    int st = one(c, ctx, 3, argv, &r);
    if (st == RC_OK)
        *yes = r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
               r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 1;
    freeReplyObject(r);
    return st;
}

/* Waits until src's namespace is done or ours to drop (*won). */
static int claim(rc_cache *c, rc_link *ctx, const char *sha,
                 const char *claim_key, bool *won)
{
    const char *argv[] = {"SET", claim_key, "1", "NX", "PX", CLAIM_MS};
    double until = rc_breaker_now(&c->breaker) + CLAIM_WAIT;
    for (;;) {
        bool done = false;
        redisReply *r = NULL;
        int st = script_loaded(c, ctx, sha, &done);
        if (st != RC_OK || done)
            return st;
        if ((st = one(c, ctx, 6, argv, &r)) != RC_OK)
            return st;
        *won = r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (*won)
            return RC_OK;
        if (rc_breaker_now(&c->breaker) > until)
            return rc_seterr(RC_EUNAVAILABLE, "redis at %s: another process "
                             "is still dropping %s", c->where, claim_key);
        rc_clock_sleep(0.01);
    }
}

/* SCAN + UNLINK of src's leases, then of all its keys; *removed. */
static int drop_keys(rc_cache *c, rc_link *ctx, const rc_outbox_source *src,
                     long long *removed)
{
    char *leases = rc_str_concat(c->escaped_prefix, src->lease_glob);
    char *all = rc_str_concat(c->escaped_prefix, src->ns_glob);
    int st = leases && all ? RC_OK : rc_seterr(RC_ENOMEM, "out of memory");
    if (st == RC_OK)
        st = rc_replay_scan_unlink(c, ctx, leases, removed);
    if (st == RC_OK)
        st = rc_replay_scan_unlink(c, ctx, all, removed);
    free(leases);
    free(all);
    return st;
}

/* The identity a drop is for, and the hash tag of its claims ("" but in a
 * cluster, where the claim must live on the master dropping). */
typedef struct drop_for {
    const char *run_id;
    const char *tag;
    const char *where; /* the server, for messages */
} drop_for;

/* Has src's namespace dropped on the identity of ud (a drop_for) once: by
 * us, or by the process that claimed it (rc_outbox_each_namespace
 * callback). */
static int drop_namespace(rc_cache *c, rc_link *ctx,
                          const rc_outbox_source *src, void *ud)
{
    const drop_for *d = ud;
    char sha[41], tail[64], head[16];
    char *body = done_script(c, src, d->run_id, sha);
    if (!body)
        return rc_seterr(RC_ENOMEM, "out of memory");
    /* in a cluster the tag comes first: a hash tag in the prefix must not
     * send the claim to another master */
    head[0] = '\0';
    if (d->tag[0])
        snprintf(head, sizeof head, "{%s}", d->tag);
    snprintf(tail, sizeof tail, "~identity:%s", sha);
    char *front = rc_str_concat(head, c->prefix);
    char *claim_key = front ? rc_str_concat(front, tail) : NULL;
    free(front);
    bool won = false;
    long long removed = 0;
    int st = claim_key ? claim(c, ctx, sha, claim_key, &won)
                       : rc_seterr(RC_ENOMEM, "out of memory");
    if (st == RC_OK && won)
        st = drop_keys(c, ctx, src, &removed);
    const char *load[] = {"SCRIPT", "LOAD", body}, *del[] = {"DEL", claim_key};
    redisReply *r = NULL;
    if (st == RC_OK && won && (st = one(c, ctx, 3, load, &r)) == RC_OK) {
        freeReplyObject(r);
        r = NULL;
        if (one(c, ctx, 2, del, &r) == RC_OK)
            freeReplyObject(r);
        atomic_fetch_add(&c->identity_drops, 1);
        rc_log(c->log_level, RC_LOG_INFO, "redis_identity_dropped",
               "redis at %s: new identity: dropped %s (%lld keys)", d->where,
               src->ns_glob, removed);
    }
    if (st != RC_OK && won && one(c, ctx, 2, del, &r) == RC_OK)
        freeReplyObject(r); /* best effort: let another process drop now */
    free(claim_key);
    free(body);
    return st;
}

/* Step 1 for id: every namespace dropped there once (and tracking, the
 * near cache's tracker of that server, made to lose coherence), unless id is the
 * one trusted last (run_id, which then becomes id). The trust lock held. */
static int adopt(rc_cache *c, rc_link *ctx, const char *where, char run_id[RC_IDENTITY_MAX],
                 const char *id, const char *tag, rc_tracking *tracking)
{
    if (strcmp(id, run_id) == 0)
        return RC_OK;
    if (run_id[0]) {
        atomic_fetch_add(&c->identity_changes, 1);
        /* the near cache follows the old server's invalidations: empty
         * it, re-arm tracking (on the new master, with Sentinel) */
        rc_tracking_lose(tracking, "a new redis identity");
        rc_log(c->log_level, RC_LOG_INFO, "redis_identity_new",
               "redis at %s: a new server (identity %s, was %s): its keys "
               "are not trusted until dropped", where, id, run_id);
    }
    if (!c->cluster) /* a cluster's trust is its masters' (route.c) */
        atomic_store(&c->trusted_gen, 0);
    drop_for d = {id, tag, where};
    int st = rc_outbox_each_namespace(c, drop_namespace, ctx, &d);
    if (st == RC_OK)
        snprintf(run_id, RC_IDENTITY_MAX, "%s", id);
    return st;
}

int rc_identity_verify(rc_cache *c, rc_conn *conn)
{
    unsigned gen = atomic_load(&c->trust_gen);
    if (conn->verified == gen && atomic_load(&c->trusted_gen) == gen)
        return RC_OK;
    char id[RC_IDENTITY_MAX];
    int st = read_identity(c, conn->ctx, id);
    if (st != RC_OK)
        return st;
    pthread_mutex_lock(&c->trust_mu);
    gen = atomic_load(&c->trust_gen);
    st = adopt(c, conn->ctx, c->where, c->run_id, id, "", c->tracking);
    if (st == RC_OK && atomic_load(&c->trusted_gen) != gen)
        st = rc_outbox_apply(c, conn->ctx);
    if (st == RC_OK) {
        atomic_store(&c->trusted_gen, gen);
        conn->verified = gen;
    }
    pthread_mutex_unlock(&c->trust_mu);
    return st;
}

bool rc_identity_node_verified(rc_cnode *node, const rc_conn *conn)
{
    return conn->verified == atomic_load(&node->gen);
}

int rc_identity_verify_node(rc_cache *c, rc_cnode *node, rc_conn *conn, const char *tag)
{
    unsigned gen = atomic_load(&node->gen);
    if (conn->verified == gen)
        return RC_OK;
    if (!tag)
        return rc_seterr(RC_EUNAVAILABLE, "redis at %s: serves no slot now", node->where);
    char id[RC_IDENTITY_MAX];
    int st = read_identity(c, conn->ctx, id);
    if (st != RC_OK)
        return st;
    pthread_mutex_lock(&node->trust_mu);
    st = adopt(c, conn->ctx, node->where, node->run_id, id, tag,
               atomic_load(&node->tracking));
    pthread_mutex_unlock(&node->trust_mu);
    if (st == RC_OK)
        conn->verified = gen;
    return st;
}

void rc_identity_distrust(rc_cache *c)
{
    atomic_fetch_add(&c->trust_gen, 1);
}

bool rc_identity_trusted(rc_cache *c)
{
    return c->enabled && atomic_load(&c->trusted_gen) == atomic_load(&c->trust_gen);
}
