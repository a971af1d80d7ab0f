/*
 * tls.c - the OpenSSL side of the links (tls.h).
 *
 * Sessions read and write through a BIO of our own over the link's socket
 * (rc_tls_sock): recv(2), and send(2) with MSG_NOSIGNAL, so a peer gone away
 * gives EPIPE and never SIGPIPE (OpenSSL's socket BIO uses write(2)). Only
 * the read the link allows may block; every other wait is a poll until the
 * deadline.
 */
#include "cache/tls.h"

#include "core/clock.h"
#include "core/log.h"
#include "repocache/status.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct rc_tls {
    SSL_CTX *ctx;
    char *server_name; /* REDIS_TLS_SERVER_NAME, or NULL */
    bool verify;
};

/* ---- the BIO: recv and send(MSG_NOSIGNAL) on the socket ---- */

static int bio_write(BIO *b, const char *buf, int len)
{
    const rc_tls_sock *sock = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do
        n = send(sock->fd, buf, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_write(b);
    return (int)n;
}

static int bio_read(BIO *b, char *buf, int len)
{
    rc_tls_sock *sock = BIO_get_data(b);
    int flags = sock->may_block ? 0 : MSG_DONTWAIT;
    sock->may_block = false;
    BIO_clear_retry_flags(b);
    ssize_t n;
    do
        n = recv(sock->fd, buf, (size_t)len, flags);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(b);
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "repocache socket");
    if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
        BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create))
        bio_method = m;
    else if (m)
        BIO_meth_free(m);
}

/* ---- the context ---- */

/* The reason of OpenSSL's earliest queued error (or fallback), queue emptied. */
static void openssl_reason(char *why, size_t size, const char *fallback)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(why, size, "%s", r ? r : fallback);
    ERR_clear_error();
}

static int config_error(rc_tls *t, const char *setting, const char *path, const char *what)
{
    char why[160];
    openssl_reason(why, sizeof why, "unknown error");
    rc_tls_free(t);
    return rc_seterr(RC_ECONFIG, "%s: cannot %s '%s': %s", setting, what, path, why);
}

int rc_tls_new(const rc_settings *s, int log_level, rc_tls **out)
{
    *out = NULL;
    pthread_once(&bio_once, bio_method_make);
    if (!bio_method)
        return rc_seterr(RC_ENOMEM, "out of memory");
    if (!s->redis_tls_cert_file != !s->redis_tls_key_file)
        return rc_seterr(RC_ECONFIG, "%s: must be set with %s (a client certificate "
                                     "needs its key)",
                         s->redis_tls_cert_file ? "REDIS_TLS_KEY_FILE" : "REDIS_TLS_CERT_FILE",
                         s->redis_tls_cert_file ? "REDIS_TLS_CERT_FILE" : "REDIS_TLS_KEY_FILE");
    rc_tls *t = calloc(1, sizeof *t);
    if (!t || !(t->ctx = SSL_CTX_new(TLS_client_method())) ||
        (s->redis_tls_server_name && !(t->server_name = strdup(s->redis_tls_server_name)))) {
        rc_tls_free(t);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    t->verify = s->redis_tls_verify;
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(t->ctx, 1); /* one recv per record, not two */
    SSL_CTX_set_verify(t->ctx, t->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (s->redis_tls_ca_file || s->redis_tls_ca_dir) {
        if (!SSL_CTX_load_verify_locations(t->ctx, s->redis_tls_ca_file, s->redis_tls_ca_dir))
            return s->redis_tls_ca_file
                       ? config_error(t, "REDIS_TLS_CA_FILE", s->redis_tls_ca_file, "load")
                       : config_error(t, "REDIS_TLS_CA_DIR", s->redis_tls_ca_dir, "use");
    } else if (!SSL_CTX_set_default_verify_paths(t->ctx)) {
        return config_error(t, "REDIS_TLS_CA_DIR", "(the system trust store)", "use");
    }
    if (s->redis_tls_cert_file) {
        if (!SSL_CTX_use_certificate_chain_file(t->ctx, s->redis_tls_cert_file))
            return config_error(t, "REDIS_TLS_CERT_FILE", s->redis_tls_cert_file, "load");
        if (!SSL_CTX_use_PrivateKey_file(t->ctx, s->redis_tls_key_file, SSL_FILETYPE_PEM))
            return config_error(t, "REDIS_TLS_KEY_FILE", s->redis_tls_key_file, "load");
        if (!SSL_CTX_check_private_key(t->ctx))
            return config_error(t, "REDIS_TLS_KEY_FILE", s->redis_tls_key_file,
                                "match the certificate with");
    }
    if (!t->verify)
        rc_log(log_level, RC_LOG_WARNING, "redis_tls_unverified",
               "REDIS_TLS_VERIFY=false: the Redis server's certificate and name are not "
               "verified; anyone on the path can read and change the cache");
    *out = t;
    return RC_OK;
}

void rc_tls_free(rc_tls *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t->server_name);
    free(t);
}

/* ---- sessions ---- */

/* Waits for fd to be ready for what SSL error e wants, until deadline_ns.
 * false: timed out (or poll failed). */
static bool wait_for(int fd, int e, int64_t deadline_ns)
{
    for (;;) {
        int64_t left = deadline_ns - (int64_t)(rc_clock_monotonic(NULL) * 1e9);
        if (left <= 0)
            return false;
        struct pollfd p = {fd, (short)(e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
        int ms = (int)((left + 999999) / 1000000);
        int r = poll(&p, 1, ms);
        if (r > 0)
            return true;
        if (r < 0 && errno != EINTR)
            return false;
    }
}

void rc_tls_error(void *ssl, int ret, char *why, size_t why_size)
{
    int e = SSL_get_error(ssl, ret);
    if (e == SSL_ERROR_ZERO_RETURN) {
        snprintf(why, why_size, "server closed the TLS session");
        ERR_clear_error();
    } else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        snprintf(why, why_size, "%s", errno ? strerror(errno) : "server closed the connection");
    } else {
        openssl_reason(why, why_size, "TLS error");
    }
}

/* Why the handshake failed: the verification's verdict when it failed,
 * else OpenSSL's reason (an alert from the server, a protocol error). */
static void handshake_error(SSL *ssl, int ret, char *why, size_t why_size)
{
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
        snprintf(why, why_size, "certificate verify failed (%s)",
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
    } else {
        rc_tls_error(ssl, ret, why, why_size);
    }
}

static bool is_ip(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int rc_tls_handshake(rc_tls *t, rc_tls_sock *sock, const char *host, int64_t deadline_ns,
                     void **ssl_out, char *info, size_t info_size, char *why,
                     size_t why_size)
{
    *ssl_out = NULL;
    const char *name = t->server_name ? t->server_name : host;
    SSL *ssl = SSL_new(t->ctx);
    BIO *bio = ssl ? BIO_new(bio_method) : NULL;
    if (!bio) {
        SSL_free(ssl);
        snprintf(why, why_size, "out of memory");
        return RC_ENOMEM;
    }
    sock->may_block = false;
    BIO_set_data(bio, sock);
    SSL_set_bio(ssl, bio, bio);
    bool ip = is_ip(name);
    bool ok = ip || SSL_set_tlsext_host_name(ssl, name) == 1;
    if (ok && t->verify)
        ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1
                : SSL_set1_host(ssl, name) == 1;
    if (!ok) {
        SSL_free(ssl);
        snprintf(why, why_size, "cannot use the server name '%.100s'", name);
        ERR_clear_error();
        return RC_EUNAVAILABLE;
    }
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_for(sock->fd, e, deadline_ns))
                continue;
            snprintf(why, why_size, "timed out");
        } else {
            handshake_error(ssl, r, why, why_size);
        }
        SSL_free(ssl);
        return RC_EUNAVAILABLE;
    }
    snprintf(info, info_size, "%s %s, %s%.80s", SSL_get_version(ssl), SSL_get_cipher_name(ssl),
             t->verify ? "verified name " : "not verified (REDIS_TLS_VERIFY=false)",
             t->verify ? name : "");
    *ssl_out = ssl;
    return RC_OK;
}
