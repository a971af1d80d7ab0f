/*
 * tls.h - test support for TLS: throwaway certificates made at test time
 * with the openssl command, and redis-server processes (harness.h) that
 * listen on a plain port (for the tests' own hiredis connections) and on a
 * TLS port with one of those certificates.
 */
#ifndef RC_TEST_TLS_H
#define RC_TEST_TLS_H

#include "harness.h"

#include <stdbool.h>

/* The files, all under dir. Every server certificate shares server_key. */
typedef struct th_certs {
    char dir[256];
    char ca[320];          /* the test CA (CN repocache-test-ca) */
    char other_ca[320];    /* an unrelated CA that signed nothing here */
    char server_key[320];
    char server[320];      /* SAN DNS:localhost, IP:127.0.0.1, from ca */
    char wrong_name[320];  /* SAN DNS:wrong.example, from ca */
    char expired[320];     /* localhost, 127.0.0.1, from ca, expired */
    char client[320];      /* a client certificate from ca */
    char client_key[320];
} th_certs;

/* Makes the certificates in a fresh temporary directory. 0, or -1 with the
 * openssl output on stderr. */
int th_certs_make(th_certs *c);

/* Starts a redis-server (th_redis_start) on a free plain port and a free
 * TLS port (r->tls_port, r->tls_url "rediss://localhost:T/0") with the
 * certificate cert (and c->server_key), trusting c->ca for client
 * certificates, tls-auth-clients auth ("yes", "optional", "no"), and extra
 * arguments (NULL for none). Ready when PING on the plain port answers
 * PONG. th_redis_restart keeps both ports. 0 or -1. */
int th_redis_start_tls(th_redis *r, const th_certs *c, const char *cert, const char *auth,
                       const char *extra);

/* Writes into kv (room for 7 entries at least) the name, value pairs of the
 * REDIS_TLS_* settings that trust c->ca and, with client, present c->client
 * and its key, then a NULL; returns the index of that NULL, where a caller
 * may append pairs of its own (as th_cache_new's kv). */
int th_tls_settings(const th_certs *c, bool client, const char **kv);

#endif
