/*
 * pool.h - up to REDIS_MAX_CONNECTIONS links (link.h), each used by one
 * thread at a time.
 *
 * A thread borrows a connection, uses it alone, and gives it back saying
 * whether it is still sound. A connection that saw an I/O or protocol error
 * (or a timeout) is freed, never reused; so is every idle connection opened
 * before that error (they most likely talk to the same dead server).
 *
 * Every connect opens a new link (resolve, connect, TLS handshake, all
 * within REDIS_SOCKET_TIMEOUT), then AUTH [user] password when configured,
 * SELECT db when db != 0, and over TLS without either a PING (a server that
 * wants a client certificate refuses it only after a TLS 1.3 handshake).
 * With Sentinel (REDIS_SENTINELS) every connect first asks the sentinels
 * for the master (sentinel.h), connects there and checks with ROLE that it
 * is the master (else asks once more, from the next sentinel); the link's
 * replicas field is then what the sentinel counted (the replicas an
 * invalidation waits for), -1 without Sentinel. A connect to a master
 * other than the last one discards every idle connection.
 *
 * An allocation failure inside hiredis's reader aborts the process (hiredis
 * 0.14 calls abort() from its reply object functions on OOM); nothing here
 * can prevent that.
 */
#ifndef RC_CACHE_POOL_H
#define RC_CACHE_POOL_H

#include "cache/link.h"
#include "repocache/settings.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* One pooled connection. */
typedef struct rc_conn {
    rc_link *ctx;       /* connected, authenticated, db selected */
    unsigned gen;       /* pool generation when opened */
    atomic_int users;   /* threads using ctx now: must be 0 or 1 */
    unsigned verified;  /* the service's trust_gen when Redis's identity was
                           last checked on ctx (0: never; identity.c) */
    struct rc_conn *next; /* idle list */
} rc_conn;

typedef struct rc_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* signalled when a slot frees up */
    rc_conn *idle;            /* idle connections */
    int open;                 /* connections open or being opened */
    int max;                  /* REDIS_MAX_CONNECTIONS */
    unsigned gen;             /* bumped on every connection error */
    /* where and how to connect (copied from the settings) */
    char *host, *unix_path, *user, *password;
    int port, db;
    rc_link_config link;      /* timeout, reply cap, TLS context (owned
                                 unless tls_shared) */
    bool tls_shared;          /* link.tls is another pool's (a cluster's
                                 masters share the first pool's) */
    struct rc_sentinel *sentinel; /* REDIS_SENTINELS: where the master is
                                     asked for (sentinel.h), or NULL */
    char master[300];         /* with Sentinel, the master of the last
                                 successful connect (under mu): a connect
                                 to another one discards every idle
                                 connection */
    atomic_uint moves;        /* times that happened (the near cache's
                                 tracking re-arms when it changes) */
    atomic_uint_fast64_t connects; /* connect attempts (statistics, tests) */
    /* what the last connect did (under mu), for rc_cache_connection_info */
    char last_server[300], last_sentinel[300], last_tls[160], last_error[256];
} rc_pool;

/* Initialises p from s (strings copied; the TLS context made when the URL
 * is rediss://). RC_OK; RC_ECONFIG (a TLS file that cannot be used) or
 * RC_ENOMEM, with nothing left to destroy. */
int rc_pool_init(rc_pool *p, const rc_settings *s, int log_level);
/* Initialises p to connect to host:port as tmpl does (its user, password,
 * db, bound and link config, the TLS context shared: tmpl must outlive p).
 * For the masters of a cluster. RC_OK or RC_ENOMEM. */
int rc_pool_init_at(rc_pool *p, const rc_pool *tmpl, const char *host, int port);
/* Closes every idle connection and frees p's copies; none may be borrowed. */
void rc_pool_destroy(rc_pool *p);
/* *out = a connection for the calling thread alone, opening one when none
 * is idle and fewer than max are open (else waits for one). RC_OK,
 * RC_EUNAVAILABLE (connect failed or timed out), RC_EAUTH (AUTH refused) or
 * RC_ENOMEM, with the detail in rc_errmsg() (never the password). */
int rc_pool_borrow(rc_pool *p, rc_conn **out);
/* *out = a new link of its own, connected,
 * authenticated and the db selected exactly as the pool's are (counted in
 * connects), outside the pool's bound: for connections with a life of their
 * own (the near cache's tracking). Errors as rc_pool_borrow; the caller
 * frees *out with rc_link_close. */
int rc_pool_connect(rc_pool *p, rc_link **out);
/* Gives conn back; broken = it saw an I/O/protocol error or a timeout (it is
 * then freed, with every idle connection older than the error). */
void rc_pool_return(rc_pool *p, rc_conn *conn, bool broken);
/* Copies what the last connect did into info (locks p). */
void rc_pool_last(rc_pool *p, char server[300], char sentinel[300], char tls[160],
                  char error[256]);
/* Where the pool connects, for messages: "host:port", the socket path, or
 * with Sentinel "master 'name' (Sentinel)". */
void rc_pool_describe(const rc_pool *p, char *buf, size_t size);

/* Marks conn in use by the calling thread; aborts when another thread is
 * using it (a debug assertion that is always on: it costs one atomic op). */
void rc_conn_enter(rc_conn *conn);
/* Ends rc_conn_enter. */
void rc_conn_leave(rc_conn *conn);

#endif
