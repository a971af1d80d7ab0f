/*
 * tls.h - the OpenSSL client context of a service's links (REDIS_TLS_*):
 * trusted CAs (REDIS_TLS_CA_FILE, REDIS_TLS_CA_DIR, else the system store),
 * an optional client certificate and key, the name to send (SNI) and to
 * verify (REDIS_TLS_SERVER_NAME, else the host connected to), and whether
 * to verify at all (REDIS_TLS_VERIFY; false is logged as a warning each time
 * a context is made). TLS 1.2 at least.
 *
 * A context is shared by every link of the service (OpenSSL's SSL_CTX is
 * safe to share once built); a session is made per link.
 */
#ifndef RC_CACHE_TLS_H
#define RC_CACHE_TLS_H

#include "repocache/settings.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc_tls rc_tls;

/* The socket under a session, as its BIO reads it: recv(2) waits (bounded by
 * the socket's SO_RCVTIMEO) only while may_block is set, and clears it: the
 * link sets it for the first read after a send. Everything else, sends
 * included, is MSG_DONTWAIT; sends are MSG_NOSIGNAL. */
typedef struct rc_tls_sock {
    int fd;
    bool may_block;
} rc_tls_sock;

/* Builds the context from s (s->redis_tls must be true). RC_OK; RC_ECONFIG
 * naming the setting and the file when a CA, certificate or key cannot be
 * loaded (or the key does not match the certificate); RC_ENOMEM. */
int rc_tls_new(const rc_settings *s, int log_level, rc_tls **out);
void rc_tls_free(rc_tls *t);

/* Runs the handshake on the connected socket sock->fd for host (the verified name
 * unless the settings name another), within deadline_ns (monotonic). RC_OK
 * with *ssl_out (an SSL *) and info filled ("TLSv1.3
 * TLS_AES_256_GCM_SHA384, verified name localhost"); else RC_EUNAVAILABLE
 * with why ("certificate verify failed (unable to get local issuer
 * certificate)", "timed out") and nothing to free but the socket. sock must
 * outlive the session. */
int rc_tls_handshake(rc_tls *t, rc_tls_sock *sock, const char *host, int64_t deadline_ns,
                     void **ssl_out, char *info, size_t info_size, char *why,
                     size_t why_size);
/* The reason for the last failed SSL_read/SSL_write on ssl with OpenSSL's
 * error code ret (from SSL_get_error), e.g. "tlsv13 alert certificate
 * required" when the server wanted a client certificate. */
void rc_tls_error(void *ssl, int ret, char *why, size_t why_size);

#endif
