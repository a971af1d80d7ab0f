/*
 * service.h - test support for suites that use the cache service: a service
 * on a test redis-server with the settings a test names, and full keys.
 */
#ifndef RC_TEST_SERVICE_H
#define RC_TEST_SERVICE_H

#include "repocache/cache.h"
#include "repocache/settings.h"

/* Sets REDIS_URL to url in s (Check-asserted) and, when url is rediss://,
 * the REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE named by
 * the environment's REPOCACHE_TEST_TLS_CA_FILE, REPOCACHE_TEST_TLS_CERT_FILE
 * and REPOCACHE_TEST_TLS_KEY_FILE (those set): how every service of the
 * suites reaches the shared server in the TLS pass (scripts/tls.sh). A
 * TH_REDIS_CLUSTER_SCHEME url (harness.h: the shared cluster of the cluster
 * pass, scripts/cluster.sh) sets REDIS_CLUSTER_NODES to its seeds instead
 * (REDIS_URL left at its default: its host and port are then unused). */
void th_settings_url(rc_settings *s, const char *url);

/* A service on url (th_settings_url; LOG_LEVEL error) with the settings kv: name, value
 * pairs ending with NULL (kv may be NULL). Asserts (Check) that each setting
 * and the service are accepted. */
rc_cache *th_cache_new(const char *url, const char *const *kv);

/* prefix + k in one of eight static buffers, used in turn. */
const char *th_key(const char *prefix, const char *k);

/* The auxiliary key (tag "~lease:" or "~none:") of the data key
 * prefix + k, where k = ns + ":" + rest: prefix + ns + ":" + tag + "{T}" +
 * rest with T the tag of the data key's slot (src/repository/cached_keys.c).
 * In one of the eight buffers of th_key. */
const char *th_aux_key(const char *prefix, const char *k, const char *tag);
/* key with the "{T}" of an auxiliary key left out when T names the slot of
 * the data key it belongs to (so listings read "hero:~none:h9"); any other
 * key, or a wrong T, unchanged. In one of the eight buffers of th_key. */
const char *th_untag(const char *key);

#endif
