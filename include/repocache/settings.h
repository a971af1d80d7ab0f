/*
 * repocache/settings.h - every setting of the cache service, the strategies
 * and the tale program, loaded from the environment and an optional .env file
 * (the environment wins). See .env.example for defaults and meanings.
 *
 * Settings belong to the core layer (src/core/settings.c): the cache service
 * (Redis connection, breaker, near cache) and the strategies (TTLs) both read
 * them, and loading them needs nothing but core.
 */
#ifndef REPOCACHE_SETTINGS_H
#define REPOCACHE_SETTINGS_H

#include "repocache/export.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Default TTLs in seconds, the one place they are written:
 * rc_settings_defaults fills the cache_*_ttl settings with them and the
 * built-in strategies (repocache/strategy.h) use them without settings. */
#define RC_DEFAULT_TTL 3600          /* CACHE_DEFAULT_TTL */
#define RC_DEFAULT_HERO_TTL 3600     /* CACHE_HERO_TTL */
#define RC_DEFAULT_CHILD_TTL 1800    /* CACHE_CHILD_TTL */
#define RC_DEFAULT_STORY_TTL 600     /* CACHE_STORY_TTL */
#define RC_DEFAULT_NEGATIVE_TTL 60   /* CACHE_NEGATIVE_TTL (0 = off) */

typedef struct rc_settings {
    /* Redis connection */
    bool redis_enabled;          /* REDIS_ENABLED (default true) */
    char *redis_host;            /* host, or NULL for a unix socket */
    int redis_port;              /* default 6379 */
    char *redis_unix_path;       /* unix socket path, or NULL */
    int redis_db;                /* default 0 */
    char *redis_user;            /* ACL user from the URL, or NULL */
    char *redis_password;        /* REDIS_PASSWORD or from the URL; never printed */
    int redis_max_connections;   /* REDIS_MAX_CONNECTIONS (default 8) */
    double redis_socket_timeout; /* REDIS_SOCKET_TIMEOUT seconds (default 1.0) */
    /* Cache */
    int cache_default_ttl;       /* CACHE_DEFAULT_TTL (RC_DEFAULT_TTL) */
    int cache_hero_ttl;          /* CACHE_HERO_TTL (RC_DEFAULT_HERO_TTL) */
    int cache_child_ttl;         /* CACHE_CHILD_TTL (RC_DEFAULT_CHILD_TTL) */
    int cache_story_ttl;         /* CACHE_STORY_TTL (RC_DEFAULT_STORY_TTL) */
    int cache_negative_ttl;      /* CACHE_NEGATIVE_TTL (RC_DEFAULT_NEGATIVE_TTL,
                                    0 = off) */
    char *cache_key_prefix;      /* CACHE_KEY_PREFIX ("" by default, never NULL) */
    bool cache_fallback_enabled; /* CACHE_FALLBACK_ENABLED (true) */
    int cache_fallback_max_entries; /* CACHE_FALLBACK_MAX_ENTRIES (1000) */
    int cache_max_value_bytes;   /* CACHE_MAX_VALUE_BYTES (1048576): a cached
                                    repository stores no encoded value or
                                    list larger than this */
    int cache_fallback_max_staleness_ms; /* CACHE_FALLBACK_MAX_STALENESS_MS:
                                    longest life of a fallback entry while
                                    Redis is away (1000) */
    int cache_outbox_poll_ms;    /* CACHE_OUTBOX_POLL_MS: how often the
                                    invalidation outbox is read (100) */
    /* Near cache (the in-process tier in front of Redis) */
    bool cache_l1_enabled;       /* CACHE_L1_ENABLED (true) */
    int cache_l1_max_entries;    /* CACHE_L1_MAX_ENTRIES (10000) */
    int cache_l1_max_bytes;      /* CACHE_L1_MAX_BYTES (67108864) */
    int cache_l1_max_ttl;        /* CACHE_L1_MAX_TTL seconds (300) */
    bool cache_single_flight;    /* CACHE_SINGLE_FLIGHT (true) */
    bool cache_l1_strict;        /* CACHE_L1_STRICT (true) */
    /* Circuit breaker */
    int circuit_breaker_threshold; /* CIRCUIT_BREAKER_THRESHOLD (5) */
    double circuit_breaker_timeout; /* CIRCUIT_BREAKER_TIMEOUT seconds (30) */
    /* Application */
    char *database_path;         /* DATABASE_PATH ("tale.db") */
    char *log_level;             /* LOG_LEVEL ("info": debug|info|warning|error) */
    /* Metrics (added in 0.2.0, from the reserved room) */
    bool cache_metrics_enabled;  /* CACHE_METRICS_ENABLED (true): latency
                                    histograms (counters are always kept) */
    int cache_stats_flush_interval; /* CACHE_STATS_FLUSH_INTERVAL seconds (5):
                                    how often counters go to Redis for the
                                    fleet totals (and at rc_cache_free);
                                    0 = never by itself */
    /* TLS (added in 0.2.0): on with a rediss:// REDIS_URL */
    bool redis_tls;              /* the URL's scheme is rediss:// */
    bool redis_tls_verify;       /* REDIS_TLS_VERIFY (true): verify the
                                    server's certificate and name */
    char *redis_tls_ca_file;     /* REDIS_TLS_CA_FILE, or NULL */
    char *redis_tls_ca_dir;      /* REDIS_TLS_CA_DIR, or NULL (neither: the
                                    system trust store) */
    char *redis_tls_cert_file;   /* REDIS_TLS_CERT_FILE: client certificate,
                                    or NULL */
    char *redis_tls_key_file;    /* REDIS_TLS_KEY_FILE: its key, or NULL */
    char *redis_tls_server_name; /* REDIS_TLS_SERVER_NAME: the name sent (SNI)
                                    and verified, or NULL: the URL's host */
    /* Sentinel (added in 0.2.0) */
    char *redis_sentinels;       /* REDIS_SENTINELS "host:port,host:port", or
                                    NULL: no Sentinel (the URL's host is the
                                    server) */
    char *redis_sentinel_master; /* REDIS_SENTINEL_MASTER: the master's name */
    char *redis_sentinel_password; /* REDIS_SENTINEL_PASSWORD, or NULL; never
                                    printed */
    /* Redis Cluster (added in 0.2.0, from the reserved room) */
    char *redis_cluster_nodes;   /* REDIS_CLUSTER_NODES "host:port,host:port":
                                    seed nodes of a Redis Cluster, or NULL:
                                    no cluster */
    /* Room for settings added later (see "Growing structs" in
     * repocache/export.h); filled by rc_settings_defaults. */
    void *reserved_[6];
} rc_settings;

/* Fills s with the defaults. RC_OK or RC_ENOMEM. Free with rc_settings_clear. */
RC_API int rc_settings_defaults(rc_settings *s);

/*
 * Fills s from the defaults, then the .env file at env_path (NULL = none; a
 * missing file is fine), then the process environment, which wins. On a bad
 * value returns RC_ECONFIG with a message in rc_errmsg() naming the variable
 * and the value (or, for a malformed line, the file and line number);
 * passwords are never included. s is cleared on failure.
 *
 * .env lines: NAME=VALUE, optionally "export NAME=VALUE", the value
 * optionally in '...' or "..." (no escapes); blank lines and # comments are
 * skipped; unknown names are ignored; a line holding a NUL byte is refused. Within one source REDIS_URL is applied
 * after REDIS_HOST/PORT/DB/PASSWORD, so it overrides them (a URL without a
 * password keeps REDIS_PASSWORD); an empty REDIS_URL counts as unset.
 * Booleans: true/false, 1/0, yes/no, on/off. A rediss:// URL turns TLS on
 * (redis_tls); the REDIS_TLS_* files are read when the service starts
 * (rc_cache_new), not here. Empty REDIS_TLS_* and REDIS_SENTINEL* values
 * count as unset.
 */
RC_API int rc_settings_load(rc_settings *s, const char *env_path);

/* Applies one setting by its variable name ("REDIS_URL", "CACHE_HERO_TTL",
 * ...) with the same parsing and messages as rc_settings_load. RC_ECONFIG for
 * an unknown name or a bad value (s unchanged then), RC_ENOMEM. */
RC_API int rc_settings_set(rc_settings *s, const char *name, const char *value);

/* Frees the strings of s; safe on a zeroed or cleared struct. */
RC_API void rc_settings_clear(rc_settings *s);

#ifdef __cplusplus
}
#endif
#endif
