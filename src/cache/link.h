/*
 * link.h - one connection to Redis that the library drives itself: a TCP or
 * Unix socket, or a TLS session (OpenSSL) over TCP. hiredis is used only to
 * parse what arrives (its RESP reader, link->reader); wire.c formats the
 * commands and sends them through here.
 *
 * Every wait is bounded by the link's timeout (REDIS_SOCKET_TIMEOUT): name
 * resolution (resolve.h), connect, the TLS handshake, and each command: a
 * send starts a deadline that every read of its replies shares, so one
 * command or one pipeline waits at most the timeout in all, however the
 * server trickles its bytes. Nothing raises SIGPIPE (send with MSG_NOSIGNAL;
 * TLS writes go through a socket BIO that does the same).
 *
 * A link that failed (I/O error, timeout, a reader error, a reply larger than
 * the cap on buffered bytes) is dead: err and errstr say why, and the caller
 * closes it (err REDIS_ERR_OOM before anything was sent leaves it sound). The fields mirror hiredis's context (err is one of REDIS_ERR_IO,
 * REDIS_ERR_EOF, REDIS_ERR_PROTOCOL, REDIS_ERR_OOM; errno is kept as it was
 * for a timeout: EAGAIN) so the callers' tests of a failure read the same.
 *
 * A link is used by one thread at a time (the pool's rule).
 */
#ifndef RC_CACHE_LINK_H
#define RC_CACHE_LINK_H

#include "cache/tls.h"

#include <hiredis/hiredis.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* How to open links (the pool holds one, copied from the settings). */
typedef struct rc_link_config {
    double timeout;       /* seconds, > 0: every wait (see above) */
    size_t max_buffered;  /* bytes a reply may hold unparsed before the link
                             is refused as broken (0: no cap) */
    rc_tls *tls;          /* NULL: plain TCP; else TLS with this context */
} rc_link_config;

typedef struct rc_link {
    int fd;                /* the socket, -1 once closed */
    void *ssl;             /* the OpenSSL session (SSL *), or NULL: plain */
    rc_tls_sock sock;      /* the socket as the session's BIO reads it */
    redisReader *reader;   /* hiredis's RESP reader: the replies */
    int err;               /* 0, or REDIS_ERR_*: the link is dead */
    char errstr[128];      /* why, for messages */
    int64_t deadline_ns;   /* monotonic deadline of the current command */
    int64_t timeout_ns;    /* the config's timeout */
    size_t max_buffered;   /* the config's cap */
    bool fresh;            /* no read since the last send: that read may
                              block on the socket's own timeout, which ends
                              at the deadline */
    bool answered;         /* TLS: a read returned data (the server took
                              the session) */
    int replicas;          /* set by the pool: with Sentinel, the replicas
                              an invalidation on this link waits for (WAIT);
                              -1 without Sentinel */
    struct rc_route *route; /* set on the stand-in link of a call through a
                              Redis Cluster (route.c): its commands go to
                              the masters of their keys' slots; NULL on a
                              real link */
    char tls_info[160];    /* "TLSv1.3 TLS_AES_256_GCM_SHA384, verified
                              name localhost" or "" for plain */
} rc_link;

/* Opens a link to host:port (TCP, TLS when cfg->tls) or to unix_path (when
 * non-NULL; never TLS). *out is NULL on failure. RC_OK; RC_EUNAVAILABLE
 * with the reason in rc_errmsg() ("redis at H:P: cannot resolve ...: timed
 * out", "connect failed: Connection refused", "TLS handshake failed:
 * certificate verify failed (unable to get local issuer certificate)"), or
 * RC_ENOMEM. Messages never hold key material or passwords. */
int rc_link_open(const rc_link_config *cfg, const char *host, int port,
                 const char *unix_path, rc_link **out);
/* Closes the session and the socket and frees l (NULL is fine). A TLS link
 * sends its close_notify without waiting for the peer's. */
void rc_link_close(rc_link *l);

/* Starts the deadline of a new command: now + the timeout. */
void rc_link_arm(rc_link *l);
/* Sends len bytes of buf in full before the deadline. false: l is dead. */
bool rc_link_send(rc_link *l, const void *buf, size_t len);
/* Reads what the link has into buf (at most cap bytes). wait: up to the
 * deadline; !wait: only what is there now (TLS: decrypted bytes included,
 * so a caller that drains until 0 leaves nothing where poll cannot see it).
 * >0 bytes read; 0 nothing there (!wait only); -1 EOF, error or timeout
 * (l dead). */
ssize_t rc_link_recv(rc_link *l, void *buf, size_t cap, bool wait);
/* Marks l dead with type (REDIS_ERR_*) and the message. */
void rc_link_fail(rc_link *l, int type, const char *msg);

#endif
