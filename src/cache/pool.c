/* pool.c - the connection pool (see pool.h). */
#include "cache/pool.h"
#include "cache/sentinel.h"
#include "cache/tls.h"
#include "cache/wire.h"

#include "core/log.h"
#include "core/str.h"

#include "repocache/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (src && !(*dst = rc_strdup(src)))
        return RC_ENOMEM;
    return RC_OK;
}

/* p empty, its lock and condition made, and the strings copied. */
static int pool_base(rc_pool *p, const char *host, const char *unix_path, const char *user,
                     const char *password)
{
    memset(p, 0, sizeof *p);
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        return rc_seterr(RC_ENOMEM, "out of memory");
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    atomic_init(&p->connects, 0);
    atomic_init(&p->moves, 0);
    if (dup_opt(&p->host, host) || dup_opt(&p->unix_path, unix_path) ||
        dup_opt(&p->user, user) || dup_opt(&p->password, password)) {
        rc_pool_destroy(p);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    return RC_OK;
}

int rc_pool_init_at(rc_pool *p, const rc_pool *tmpl, const char *host, int port)
{
    int st = pool_base(p, host, NULL, tmpl->user, tmpl->password);
    if (st)
        return st;
    p->port = port;
    p->db = tmpl->db;
    p->max = tmpl->max;
    p->link = tmpl->link;
    p->tls_shared = true;
    return RC_OK;
}

int rc_pool_init(rc_pool *p, const rc_settings *s, int log_level)
{
    int st = pool_base(p, s->redis_host, s->redis_unix_path, s->redis_user, s->redis_password);
    if (st)
        return st;
    p->port = s->redis_port;
    p->db = s->redis_db;
    p->max = s->redis_max_connections > 0 ? s->redis_max_connections : 1;
    p->link.timeout = s->redis_socket_timeout > 0 ? s->redis_socket_timeout : 1.0;
    /* A value may be CACHE_MAX_VALUE_BYTES; a list reply or a pipeline of
     * several holds a few, plus RESP's framing. */
    p->link.max_buffered = 4 * (size_t)(s->cache_max_value_bytes > 0 ? s->cache_max_value_bytes
                                                                     : 1 << 20) +
                           (1 << 20);
    st = s->redis_tls && !s->redis_unix_path ? rc_tls_new(s, log_level, &p->link.tls)
                                                 : RC_OK;
    if (st == RC_OK && s->redis_sentinels)
        st = rc_sentinel_new(s, &p->sentinel);
    if (st)
        rc_pool_destroy(p);
    return st;
}

static void conn_free(rc_conn *c)
{
    if (c) {
        rc_link_close(c->ctx);
        free(c);
    }
}

void rc_pool_destroy(rc_pool *p)
{
    for (rc_conn *c = p->idle, *n; c; c = n) {
        n = c->next;
        conn_free(c);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->host);
    free(p->unix_path);
    free(p->user);
    if (p->password)
        memset(p->password, 0, strlen(p->password));
    free(p->password);
    if (!p->tls_shared)
        rc_tls_free(p->link.tls);
    rc_sentinel_free(p->sentinel);
    memset(p, 0, sizeof *p);
}

void rc_pool_describe(const rc_pool *p, char *buf, size_t size)
{
    if (p->sentinel)
        snprintf(buf, size, "master '%s' (Sentinel)", rc_sentinel_name(p->sentinel));
    else if (p->unix_path)
        snprintf(buf, size, "%s", p->unix_path);
    else
        snprintf(buf, size, "%s:%d", p->host ? p->host : "localhost", p->port);
}

/* Runs one setup command; RC_OK, or the failure with a message. */
static int setup_command(rc_link *ctx, const char *where, int argc,
                         const char **argv, int fail_status)
{
    redisReply *r = rc_wire_command(ctx, argc, argv);
    if (!r)
        return rc_seterr(RC_EUNAVAILABLE, "redis at %s: %s failed: %s", where,
                         argv[0], ctx->errstr[0] ? ctx->errstr : "no reply");
    int st = RC_OK;
    if (r->type == REDIS_REPLY_ERROR)
        /* Redis error texts ("WRONGPASS invalid username-password pair")
         * never echo the password. */
        st = rc_seterr(fail_status, "redis at %s: %s refused: %.*s", where, argv[0],
                       (int)(r->len > 200 ? 200 : r->len), r->str);
    freeReplyObject(r);
    return st;
}

/* AUTH, SELECT and the TLS PING on a new link to where. */
static int setup(rc_pool *p, rc_link *ctx, const char *where)
{
    int st = RC_OK;
    if (p->password) {
        const char *argv[3] = {"AUTH", p->user ? p->user : p->password, p->password};
        st = setup_command(ctx, where, p->user ? 3 : 2, argv, RC_EAUTH);
    }
    if (st == RC_OK && p->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", p->db);
        const char *argv[2] = {"SELECT", db};
        st = setup_command(ctx, where, 2, argv, RC_EUNAVAILABLE);
    }
    if (st == RC_OK && ctx->ssl && !p->password && p->db == 0) {
        /* Under TLS 1.3 a server that wants a client certificate says so
         * only after the handshake: one PING shows it now, not at the
         * first command. */
        const char *argv[1] = {"PING"};
        st = setup_command(ctx, where, 1, argv, RC_EUNAVAILABLE);
    }
    return st;
}

/* Records the outcome of one connect for rc_pool_last. */
static void note_connect(rc_pool *p, const char *server, const char *sentinel,
                         const rc_link *l, int st)
{
    pthread_mutex_lock(&p->mu);
    snprintf(p->last_server, sizeof p->last_server, "%s", server);
    snprintf(p->last_sentinel, sizeof p->last_sentinel, "%s", sentinel);
    if (st == RC_OK)
        snprintf(p->last_tls, sizeof p->last_tls, "%s", l->tls_info);
    snprintf(p->last_error, sizeof p->last_error, "%s", st == RC_OK ? "" : rc_errmsg());
    pthread_mutex_unlock(&p->mu);
}

/* Opens a link to host:port (or the pool's socket) and sets it up. */
static int open_server(rc_pool *p, const char *host, int port, const char *unix_path,
                       const char *where, rc_link **out)
{
    rc_link *l = NULL;
    int st = rc_link_open(&p->link, host, port, unix_path, &l);
    if (st == RC_OK && (st = setup(p, l, where)) != RC_OK) {
        rc_link_close(l);
        l = NULL;
    }
    if (l)
        l->replicas = -1;
    *out = l;
    return st;
}

/* Frees conns (a list linked by next). */
static void free_list(rc_conn *conns);

/* The master changed to where: the idle connections talk to the old one. */
static void master_moved(rc_pool *p, const char *where)
{
    rc_conn *stale = NULL;
    pthread_mutex_lock(&p->mu);
    if (strcmp(p->master, where) != 0) {
        if (p->master[0]) {
            atomic_fetch_add(&p->moves, 1);
            p->gen++;
            stale = p->idle;
            for (rc_conn *c = stale; c; c = c->next)
                p->open--;
            p->idle = NULL;
            pthread_cond_broadcast(&p->cv);
        }
        snprintf(p->master, sizeof p->master, "%s", where);
    }
    pthread_mutex_unlock(&p->mu);
    free_list(stale);
}

/* With Sentinel: asks for the master, connects, checks its ROLE; once more
 * from the next sentinel when that fails. */
static int connect_sentinel(rc_pool *p, rc_link **out)
{
    int st = RC_OK;
    for (size_t attempt = 0; attempt < 2; attempt++) {
        rc_sentinel_master m;
        char where[300] = "";
        rc_link *l = NULL;
        st = rc_sentinel_ask(p->sentinel, &p->link, attempt, &m);
        if (st == RC_OK) {
            snprintf(where, sizeof where, strchr(m.host, ':') ? "[%s]:%d" : "%s:%d", m.host,
                     m.port);
            st = open_server(p, m.host, m.port, NULL, where, &l);
        }
        if (st == RC_OK && (st = rc_sentinel_check_role(l, where)) != RC_OK) {
            rc_link_close(l);
            l = NULL;
        }
        if (l)
            l->replicas = m.replicas;
        note_connect(p, where, st == RC_OK || where[0] ? m.sentinel : "", l, st);
        if (st == RC_OK) {
            master_moved(p, where);
            *out = l;
            return RC_OK;
        }
        if (st == RC_ENOMEM || st == RC_EAUTH || rc_sentinel_count(p->sentinel) < 2)
            break;
    }
    return st;
}

int rc_pool_connect(rc_pool *p, rc_link **out)
{
    atomic_fetch_add(&p->connects, 1);
    *out = NULL;
    if (p->sentinel)
        return connect_sentinel(p, out);
    char where[300];
    rc_pool_describe(p, where, sizeof where);
    rc_link *l = NULL;
    int st = open_server(p, p->host ? p->host : "localhost", p->port, p->unix_path, where,
                         &l);
    note_connect(p, where, "", l, st);
    *out = l;
    return st;
}

void rc_pool_last(rc_pool *p, char server[300], char sentinel[300], char tls[160],
                  char error[256])
{
    pthread_mutex_lock(&p->mu);
    memcpy(server, p->last_server, sizeof p->last_server);
    memcpy(sentinel, p->last_sentinel, sizeof p->last_sentinel);
    memcpy(tls, p->last_tls, sizeof p->last_tls);
    memcpy(error, p->last_error, sizeof p->last_error);
    pthread_mutex_unlock(&p->mu);
}

static int connect_new(rc_pool *p, rc_conn **out)
{
    rc_link *ctx;
    int st = rc_pool_connect(p, &ctx);
    if (st)
        return st;
    rc_conn *c = calloc(1, sizeof *c);
    if (!c) {
        rc_link_close(ctx);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    c->ctx = ctx;
    atomic_init(&c->users, 0);
    *out = c;
    return RC_OK;
}

int rc_pool_borrow(rc_pool *p, rc_conn **out)
{
    pthread_mutex_lock(&p->mu);
    while (!p->idle && p->open >= p->max)
        pthread_cond_wait(&p->cv, &p->mu);
    rc_conn *c = p->idle;
    if (c) {
        p->idle = c->next;
        c->next = NULL;
        pthread_mutex_unlock(&p->mu);
        *out = c;
        return RC_OK;
    }
    p->open++; /* reserve the slot, connect without the lock */
    unsigned gen = p->gen;
    pthread_mutex_unlock(&p->mu);
    int st = connect_new(p, &c);
    pthread_mutex_lock(&p->mu);
    if (st) {
        p->open--;
        pthread_cond_signal(&p->cv);
    } else {
        c->gen = gen;
        *out = c;
    }
    pthread_mutex_unlock(&p->mu);
    return st;
}

void rc_pool_return(rc_pool *p, rc_conn *conn, bool broken)
{
    if (!conn)
        return;
    rc_conn *stale = NULL;
    pthread_mutex_lock(&p->mu);
    if (broken && conn->gen == p->gen) {
        p->gen++; /* idle connections opened before are suspect too */
        stale = p->idle;
        for (rc_conn *c = stale; c; c = c->next)
            p->open--;
        p->idle = NULL;
    }
    if (broken || conn->gen != p->gen) {
        conn->next = stale;
        stale = conn;
        p->open--;
    } else {
        conn->next = p->idle;
        p->idle = conn;
    }
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    free_list(stale); /* close outside the lock */
}

static void free_list(rc_conn *conns)
{
    for (rc_conn *c = conns, *n; c; c = n) {
        n = c->next;
        conn_free(c);
    }
}

void rc_conn_enter(rc_conn *conn)
{
    if (atomic_fetch_add(&conn->users, 1) != 0) {
        rc_log(RC_LOG_DEBUG, RC_LOG_ERROR, "redis_context_shared",
               "fatal: a redis context is used by two threads at once");
        abort();
    }
}

void rc_conn_leave(rc_conn *conn) { atomic_fetch_sub(&conn->users, 1); }
