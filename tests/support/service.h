/*
 * service.h - test support for suites that use the cache service: a service
 * on a test redis-server with the settings a test names, and full keys.
 */
#ifndef RC_TEST_SERVICE_H
#define RC_TEST_SERVICE_H

#include "repocache/cache.h"

/* A service on url (LOG_LEVEL error) with the settings kv: name, value
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
