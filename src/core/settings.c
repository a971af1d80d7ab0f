/* settings.c - defaults, parsing and loading of every setting (settings.h).
 *
 * Order: defaults, then every variable of the .env file, then every variable
 * of the process environment (which so wins). Within one source, REDIS_URL is
 * applied after REDIS_HOST, REDIS_PORT, REDIS_DB and REDIS_PASSWORD, so a URL
 * overrides them (a URL without a password keeps REDIS_PASSWORD). Messages
 * name the variable and the value, never a password: a URL of any shape is
 * quoted with "***" for whatever before its last '@' could be one.
 */
#include "repocache/settings.h"

#include "core/log.h"
#include "core/hostports.h"
#include "core/redis_url.h"
#include "core/str.h"
#include "repocache/status.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- small parsers ---- */

static int parse_int(const char *name, const char *v, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*v || isspace((unsigned char)*v) || *end || errno || n < lo || n > hi)
        return rc_seterr(RC_ECONFIG,
                         "%s: bad value '%s' (expected an integer %ld-%ld)",
                         name, v, lo, hi);
    *out = (int)n;
    return RC_OK;
}

static int parse_double(const char *name, const char *v, double lo, double hi,
                        double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || isspace((unsigned char)*v) || *end || errno || !isfinite(d) ||
        d <= lo || d > hi)
        return rc_seterr(RC_ECONFIG,
                         "%s: bad value '%s' (expected seconds > %g and <= %g)",
                         name, v, lo, hi);
    *out = d;
    return RC_OK;
}

static int parse_bool(const char *name, const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = true, RC_OK;
        if (strcasecmp(v, no[i]) == 0)
            return *out = false, RC_OK;
    }
    return rc_seterr(RC_ECONFIG,
                     "%s: bad value '%s' (expected true/false, 1/0, yes/no, on/off)",
                     name, v);
}

/* Replaces *dst with a copy of src (NULL or "" with allow_null gives NULL). */
static int set_str(char **dst, const char *src, bool empty_is_null)
{
    char *copy = NULL;
    if (src && !(empty_is_null && !*src)) {
        copy = rc_strdup(src);
        if (!copy)
            return rc_seterr(RC_ENOMEM, "out of memory");
    }
    free(*dst);
    *dst = copy;
    return RC_OK;
}


/* ---- the table of settings ---- */

/* K_PATH: a string where empty means unset (NULL) */
enum kind { K_BOOL, K_INT, K_DOUBLE, K_STR, K_PATH, K_SPECIAL };

typedef struct setting_def {
    const char *name;
    enum kind kind;
    size_t offset;   /* of the field in rc_settings */
    long lo, hi;     /* integer range, or (lo, hi] for doubles */
} setting_def;

#define F(field) offsetof(rc_settings, field)
/* REDIS_URL is last: it overrides the host/port/db/password variables. */
static const setting_def defs[] = {
    {"REDIS_ENABLED", K_BOOL, F(redis_enabled), 0, 0},
    {"REDIS_HOST", K_SPECIAL, F(redis_host), 0, 0},
    {"REDIS_PORT", K_INT, F(redis_port), 1, 65535},
    {"REDIS_DB", K_INT, F(redis_db), 0, 1000000},
    {"REDIS_PASSWORD", K_SPECIAL, F(redis_password), 0, 0},
    {"REDIS_MAX_CONNECTIONS", K_INT, F(redis_max_connections), 1, 1024},
    {"REDIS_SOCKET_TIMEOUT", K_DOUBLE, F(redis_socket_timeout), 0, 3600},
    {"REDIS_TLS_VERIFY", K_BOOL, F(redis_tls_verify), 0, 0},
    {"REDIS_TLS_CA_FILE", K_PATH, F(redis_tls_ca_file), 0, 0},
    {"REDIS_TLS_CA_DIR", K_PATH, F(redis_tls_ca_dir), 0, 0},
    {"REDIS_TLS_CERT_FILE", K_PATH, F(redis_tls_cert_file), 0, 0},
    {"REDIS_TLS_KEY_FILE", K_PATH, F(redis_tls_key_file), 0, 0},
    {"REDIS_TLS_SERVER_NAME", K_PATH, F(redis_tls_server_name), 0, 0},
    {"REDIS_SENTINELS", K_SPECIAL, F(redis_sentinels), 0, 0},
    {"REDIS_SENTINEL_MASTER", K_PATH, F(redis_sentinel_master), 0, 0},
    {"REDIS_SENTINEL_PASSWORD", K_PATH, F(redis_sentinel_password), 0, 0},
    {"REDIS_CLUSTER_NODES", K_SPECIAL, F(redis_cluster_nodes), 0, 0},
    {"CACHE_DEFAULT_TTL", K_INT, F(cache_default_ttl), 1, INT_MAX},
    {"CACHE_HERO_TTL", K_INT, F(cache_hero_ttl), 1, INT_MAX},
    {"CACHE_CHILD_TTL", K_INT, F(cache_child_ttl), 1, INT_MAX},
    {"CACHE_STORY_TTL", K_INT, F(cache_story_ttl), 1, INT_MAX},
    {"CACHE_NEGATIVE_TTL", K_INT, F(cache_negative_ttl), 0, INT_MAX},
    {"CACHE_KEY_PREFIX", K_STR, F(cache_key_prefix), 0, 0},
    {"CACHE_FALLBACK_ENABLED", K_BOOL, F(cache_fallback_enabled), 0, 0},
    {"CACHE_FALLBACK_MAX_ENTRIES", K_INT, F(cache_fallback_max_entries), 1, 100000000},
    /* at most Redis's default proto-max-bulk-len, 512 MiB */
    {"CACHE_MAX_VALUE_BYTES", K_INT, F(cache_max_value_bytes), 1, 512 << 20},
    {"CACHE_FALLBACK_MAX_STALENESS_MS", K_INT, F(cache_fallback_max_staleness_ms), 1, 86400000},
    {"CACHE_OUTBOX_POLL_MS", K_INT, F(cache_outbox_poll_ms), 1, 60000},
    {"CACHE_L1_ENABLED", K_BOOL, F(cache_l1_enabled), 0, 0},
    {"CACHE_L1_MAX_ENTRIES", K_INT, F(cache_l1_max_entries), 1, 100000000},
    {"CACHE_L1_MAX_BYTES", K_INT, F(cache_l1_max_bytes), 1, INT_MAX},
    {"CACHE_L1_MAX_TTL", K_INT, F(cache_l1_max_ttl), 1, 86400},
    {"CACHE_SINGLE_FLIGHT", K_BOOL, F(cache_single_flight), 0, 0},
    {"CACHE_L1_STRICT", K_BOOL, F(cache_l1_strict), 0, 0},
    {"CACHE_METRICS_ENABLED", K_BOOL, F(cache_metrics_enabled), 0, 0},
    {"CACHE_STATS_FLUSH_INTERVAL", K_INT, F(cache_stats_flush_interval), 0, 86400},
    {"CIRCUIT_BREAKER_THRESHOLD", K_INT, F(circuit_breaker_threshold), 1, 1000000},
    {"CIRCUIT_BREAKER_TIMEOUT", K_DOUBLE, F(circuit_breaker_timeout), 0, 86400},
    {"DATABASE_PATH", K_STR, F(database_path), 0, 0},
    {"LOG_LEVEL", K_SPECIAL, F(log_level), 0, 0},
    {"REDIS_URL", K_SPECIAL, 0, 0, 0},
};
#undef F
#define NDEFS (sizeof defs / sizeof defs[0])

int rc_settings_defaults(rc_settings *s)
{
    memset(s, 0, sizeof *s);
    s->redis_enabled = true;
    s->redis_port = 6379;
    s->redis_max_connections = 8;
    s->redis_socket_timeout = 1.0;
    s->redis_tls_verify = true;
    s->cache_default_ttl = RC_DEFAULT_TTL;
    s->cache_hero_ttl = RC_DEFAULT_HERO_TTL;
    s->cache_child_ttl = RC_DEFAULT_CHILD_TTL;
    s->cache_story_ttl = RC_DEFAULT_STORY_TTL;
    s->cache_negative_ttl = RC_DEFAULT_NEGATIVE_TTL;
    s->cache_fallback_enabled = true;
    s->cache_fallback_max_entries = 1000;
    s->cache_max_value_bytes = 1 << 20; /* memcached's item limit */
    s->cache_fallback_max_staleness_ms = 1000;
    s->cache_outbox_poll_ms = 100;
    s->cache_l1_enabled = s->cache_single_flight = s->cache_l1_strict = true;
    s->cache_l1_max_entries = 10000;
    s->cache_l1_max_bytes = 64 << 20;
    s->cache_l1_max_ttl = 300;
    s->cache_metrics_enabled = true;
    s->cache_stats_flush_interval = 5;
    s->circuit_breaker_threshold = 5;
    s->circuit_breaker_timeout = 30.0;
    s->redis_host = rc_strdup("localhost");
    s->cache_key_prefix = rc_strdup("");
    s->database_path = rc_strdup("tale.db");
    s->log_level = rc_strdup("info");
    if (!s->redis_host || !s->cache_key_prefix || !s->database_path || !s->log_level) {
        rc_settings_clear(s);
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    return RC_OK;
}

void rc_settings_clear(rc_settings *s)
{
    if (!s)
        return;
    free(s->redis_host);
    free(s->redis_unix_path);
    free(s->redis_user);
    free(s->redis_password);
    char **strs[] = {&s->redis_tls_ca_file, &s->redis_tls_ca_dir, &s->redis_tls_cert_file,
                     &s->redis_tls_key_file, &s->redis_tls_server_name, &s->redis_sentinels,
                     &s->redis_sentinel_master, &s->redis_sentinel_password,
                     &s->redis_cluster_nodes};
    if (s->redis_sentinel_password)
        memset(s->redis_sentinel_password, 0, strlen(s->redis_sentinel_password));
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
    free(s->cache_key_prefix);
    free(s->database_path);
    free(s->log_level);
    memset(s, 0, sizeof *s);
}

static int apply_url(rc_settings *s, const char *value)
{
    if (!*value) /* REDIS_URL= (empty): not set, the other variables apply */
        return RC_OK;
    rc_redis_url u;
    int st = rc_redis_url_parse(value, &u);
    if (st) {
        rc_redis_url_clear(&u);
        return st;
    }
    free(s->redis_host);
    free(s->redis_unix_path);
    free(s->redis_user);
    s->redis_host = u.host;
    s->redis_unix_path = u.unix_path;
    s->redis_user = u.user;
    s->redis_port = u.port;
    s->redis_db = u.db;
    s->redis_tls = u.tls;
    if (u.password) {
        free(s->redis_password);
        s->redis_password = u.password;
    }
    return RC_OK;
}

static int apply_special(rc_settings *s, const setting_def *d, const char *value)
{
    if (strcmp(d->name, "REDIS_URL") == 0)
        return apply_url(s, value);
    if (strcmp(d->name, "REDIS_PASSWORD") == 0)
        return set_str(&s->redis_password, value, true);
    if (strcmp(d->name, "REDIS_SENTINELS") == 0 || strcmp(d->name, "REDIS_CLUSTER_NODES") == 0) {
        rc_hostports l;
        int st = *value ? rc_hostports_parse(d->name, value, &l) : RC_OK;
        if (*value)
            rc_hostports_clear(&l);
        return st ? st : set_str((char **)((char *)s + d->offset), value, true);
    }
    if (strcmp(d->name, "REDIS_HOST") == 0) {
        if (!*value)
            return rc_seterr(RC_ECONFIG, "REDIS_HOST: bad value '' (expected a host name)");
        int st = set_str(&s->redis_host, value, false);
        if (st == RC_OK) {
            free(s->redis_unix_path);
            s->redis_unix_path = NULL;
        }
        return st;
    }
    /* LOG_LEVEL */
    int lvl = rc_log_level_parse(value);
    if (lvl < 0)
        return rc_seterr(RC_ECONFIG,
                         "LOG_LEVEL: bad value '%s' (expected debug, info, warning or error)",
                         value);
    return set_str(&s->log_level, rc_log_level_name(lvl), false);
}

int rc_settings_set(rc_settings *s, const char *name, const char *value)
{
    if (!s || !name || !value)
        return rc_seterr(RC_EINVAL, "rc_settings_set: NULL argument");
    const setting_def *d = NULL;
    for (size_t i = 0; i < NDEFS && !d; i++)
        if (strcmp(defs[i].name, name) == 0)
            d = &defs[i];
    if (!d)
        return rc_seterr(RC_ECONFIG, "%s: unknown setting", name);
    char *field = (char *)s + d->offset;
    switch (d->kind) {
    case K_BOOL:
        return parse_bool(name, value, (bool *)field);
    case K_INT:
        return parse_int(name, value, d->lo, d->hi, (int *)field);
    case K_DOUBLE:
        return parse_double(name, value, (double)d->lo, (double)d->hi, (double *)field);
    case K_STR:
        if (strcmp(name, "DATABASE_PATH") == 0 && !*value)
            return rc_seterr(RC_ECONFIG, "DATABASE_PATH: bad value '' (expected a path)");
        return set_str((char **)field, value, false);
    case K_PATH:
        return set_str((char **)field, value, true);
    case K_SPECIAL:
        return apply_special(s, d, value);
    }
    return RC_EINVAL;
}

/* ---- the .env file ---- */

/* Values read from the .env file, by index in defs (NULL = not given). */
typedef struct env_values {
    char *v[NDEFS];
} env_values;

static void env_values_clear(env_values *ev)
{
    for (size_t i = 0; i < NDEFS; i++) {
        if (ev->v[i] && strstr(defs[i].name, "PASSWORD"))
            memset(ev->v[i], 0, strlen(ev->v[i]));
        free(ev->v[i]);
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Parses one line; returns 1 with *name and *value set, 0 for blank/comment, -1
 * when malformed. Accepts NAME=VALUE, "export NAME=VALUE", and values in
 * single or double quotes (quoted as a whole; no escapes). */
static int parse_env_line(char *line, char **name, char **value)
{
    char *s = trim(line);
    if (!*s || *s == '#')
        return 0;
    if (strncmp(s, "export", 6) == 0 && isspace((unsigned char)s[6]))
        s = trim(s + 6);
    char *eq = strchr(s, '=');
    if (!eq)
        return -1;
    *eq = '\0';
    char *n = trim(s), *v = trim(eq + 1);
    if (!*n || !(isalpha((unsigned char)*n) || *n == '_'))
        return -1;
    for (char *p = n; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return -1;
    size_t vl = strlen(v);
    if (vl && (*v == '"' || *v == '\'')) {
        if (vl < 2 || v[vl - 1] != *v)
            return -1;
        v[vl - 1] = '\0';
        v++;
    }
    *name = n;
    *value = v;
    return 1;
}

static int read_env_file(const char *path, env_values *ev)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return RC_OK;
        return rc_seterr(RC_ECONFIG, "%s: cannot read: %s", path, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    int st = RC_OK;
    ssize_t len;
    for (long lineno = 1; (len = getline(&line, &cap, f)) >= 0; lineno++) {
        char *name, *value;
        if (memchr(line, '\0', (size_t)len)) { /* a value would be cut short */
            st = rc_seterr(RC_ECONFIG, "%s:%ld: NUL byte in the line", path, lineno);
            break;
        }
        int r = parse_env_line(line, &name, &value);
        if (r < 0) {
            st = rc_seterr(RC_ECONFIG, "%s:%ld: malformed line (expected NAME=VALUE)",
                           path, lineno);
            break;
        }
        for (size_t i = 0; r > 0 && i < NDEFS; i++) {
            if (strcmp(defs[i].name, name) != 0)
                continue;
            char *copy = rc_strdup(value);
            if (!copy) {
                st = rc_seterr(RC_ENOMEM, "out of memory");
                break;
            }
            free(ev->v[i]);
            ev->v[i] = copy;
        }
        if (st)
            break;
    }
    if (line)
        memset(line, 0, cap); /* may have held a password */
    free(line);
    fclose(f);
    return st;
}

int rc_settings_load(rc_settings *s, const char *env_path)
{
    if (!s)
        return rc_seterr(RC_EINVAL, "rc_settings_load: NULL settings");
    int st = rc_settings_defaults(s);
    if (st)
        return st;
    env_values ev;
    memset(&ev, 0, sizeof ev);
    if (env_path)
        st = read_env_file(env_path, &ev);
    /* The file first, then the environment, which so wins. */
    for (size_t i = 0; st == RC_OK && i < NDEFS; i++)
        if (ev.v[i])
            st = rc_settings_set(s, defs[i].name, ev.v[i]);
    for (size_t i = 0; st == RC_OK && i < NDEFS; i++) {
        const char *env = getenv(defs[i].name);
        if (env)
            st = rc_settings_set(s, defs[i].name, env);
    }
    env_values_clear(&ev);
    if (st)
        rc_settings_clear(s);
    return st;
}
