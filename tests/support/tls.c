/* tls.c - see tls.h. */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EC "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

/* Runs one shell command in dir (its output into dir/openssl.log). */
static int run(const char *dir, const char *cmd)
{
    char line[2048];
    snprintf(line, sizeof line, "cd '%s' && (%s) >>openssl.log 2>&1", dir, cmd);
    if (system(line) == 0)
        return 0;
    snprintf(line, sizeof line, "cat '%s/openssl.log' >&2", dir);
    if (system(line) != 0)
        fprintf(stderr, "tls: cannot show openssl.log\n");
    fprintf(stderr, "tls: failed in %s: %s\n", dir, cmd);
    return -1;
}

/* A certificate name.crt for the key key.key and subjectAltName san, signed
 * by ca (valid days; negative: already expired). */
static int sign(const char *dir, const char *name, const char *key, const char *cn,
                const char *ext, int days)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "printf '%%s\\n' '%s' >%s.ext && "
             "openssl req -new -key %s.key -subj /CN=%s -out %s.csr && "
             "openssl x509 -req -in %s.csr -CA ca.crt -CAkey ca.key -set_serial %ld "
             "-days %d -extfile %s.ext -out %s.crt",
             ext, name, key, cn, name, name, (long)(random() & 0x7fffffff), days, name,
             name);
    return run(dir, cmd);
}

static void path(char *out, size_t size, const char *dir, const char *file)
{
    snprintf(out, size, "%s/%s", dir, file);
}

int th_certs_make(th_certs *c)
{
    char *d = th_tmpfile("certs");
    memset(c, 0, sizeof *c);
    if (!d || (mkdir(d, 0700) != 0 && errno != EEXIST)) {
        free(d);
        return -1;
    }
    snprintf(c->dir, sizeof c->dir, "%s", d);
    free(d);
    const char *dir = c->dir;
    const char *server_ext = "subjectAltName=DNS:localhost,IP:127.0.0.1";
    if (run(dir, "openssl req -x509 " EC " -keyout ca.key -out ca.crt -days 2 "
                 "-subj /CN=repocache-test-ca") ||
        run(dir, "openssl req -x509 " EC " -keyout other_ca.key -out other_ca.crt -days 2 "
                 "-subj /CN=repocache-other-ca") ||
        run(dir, "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 "
                 "-out server.key") ||
        run(dir, "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 "
                 "-out client.key") ||
        sign(dir, "server", "server", "localhost", server_ext, 2) ||
        sign(dir, "wrong", "server", "wrong.example", "subjectAltName=DNS:wrong.example", 2) ||
        /* -days -1: not after is a day before not before (now), so it has
         * expired (openssl 3.0's x509 has no -not_after) */
        sign(dir, "expired", "server", "localhost", server_ext, -1) ||
        sign(dir, "client", "client", "repocache-test-client",
             "extendedKeyUsage=clientAuth", 2))
        return -1;
    path(c->ca, sizeof c->ca, dir, "ca.crt");
    path(c->other_ca, sizeof c->other_ca, dir, "other_ca.crt");
    path(c->server_key, sizeof c->server_key, dir, "server.key");
    path(c->server, sizeof c->server, dir, "server.crt");
    path(c->wrong_name, sizeof c->wrong_name, dir, "wrong.crt");
    path(c->expired, sizeof c->expired, dir, "expired.crt");
    path(c->client, sizeof c->client, dir, "client.crt");
    path(c->client_key, sizeof c->client_key, dir, "client.key");
    return 0;
}

int th_redis_start_tls(th_redis *r, const th_certs *c, const char *cert, const char *auth,
                       const char *extra)
{
    char args[sizeof r->extra];
    int tls_port = th_free_port();
    if (tls_port < 0)
        return -1;
    snprintf(args, sizeof args,
             "--tls-port %d --tls-cert-file %s --tls-key-file %s --tls-ca-cert-file %s "
             "--tls-auth-clients %s %s",
             tls_port, cert, c->server_key, c->ca, auth, extra ? extra : "");
    if (th_redis_start(r, args) != 0)
        return -1;
    r->tls_port = tls_port;
    snprintf(r->tls_url, sizeof r->tls_url, "rediss://localhost:%d/0", tls_port);
    return 0;
}

int th_tls_settings(const th_certs *c, bool client, const char **kv)
{
    int n = 0;
    kv[n++] = "REDIS_TLS_CA_FILE";
    kv[n++] = c->ca;
    if (client) {
        kv[n++] = "REDIS_TLS_CERT_FILE";
        kv[n++] = c->client;
        kv[n++] = "REDIS_TLS_KEY_FILE";
        kv[n++] = c->client_key;
    }
    kv[n] = NULL;
    return n;
}
