/* cached_keys.c - the cached decorator's auxiliary keys, beside each data
 * key K = P + ns + ":" + rest (docs/wire-format.md):
 *     lease of K     P + ns + ":~lease:" + rest
 *     negative entry P + ns + ":~none:" + id   (by-id keys only) */
#include "repository/cached.h"

#include <stdlib.h>
#include <string.h>

/* P + ns + ":" + tag + rest-of(key), where key = P + ns + ":" + rest. */
static char *side_key(const cached_repo *r, const char *key, const char *tag)
{
    size_t kl = strlen(key), tl = strlen(tag);
    char *s = malloc(kl + tl + 1);
    if (!s)
        return NULL;
    memcpy(s, key, r->head_len);
    memcpy(s + r->head_len, tag, tl);
    memcpy(s + r->head_len + tl, key + r->head_len, kl - r->head_len + 1);
    return s;
}

char *rc_cached_lease_key(const cached_repo *r, const char *key)
{
    return side_key(r, key, RC_CACHED_LEASE_TAG);
}

char *rc_cached_negative_key(const cached_repo *r, const char *key)
{
    return side_key(r, key, RC_CACHED_NEGATIVE_TAG);
}

bool rc_cached_is_negative_key(const cached_repo *r, const char *key)
{
    return strncmp(key + r->head_len, RC_CACHED_NEGATIVE_TAG, strlen(RC_CACHED_NEGATIVE_TAG)) == 0;
}
