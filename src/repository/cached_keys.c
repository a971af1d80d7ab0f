/* cached_keys.c - the cached decorator's auxiliary keys, beside each data
 * key K = P + ns + ":" + rest (docs/wire-format.md):
 *     lease of K     P + ns + ":~lease:{" + T + "}" + rest
 *     negative entry P + ns + ":~none:{" + T + "}" + id   (by-id keys only)
 * where T = rc_slot_tag(slot of K): the hash tag puts each in K's Redis
 * Cluster slot whatever braces rest holds, so the scripts that touch K and
 * them together never span two slots; one layout, cluster or not. When the
 * head P + ns + ":" holds a hash tag of its own, every key of the namespace
 * hashes by it and T is left out. */
#include "repository/cached.h"

#include "core/slot.h"

#include <stdlib.h>
#include <string.h>

int rc_cached_keys_init(cached_repo *r)
{
    const char *ns = r->st.ns;
    size_t pl = strlen(r->prefix), nl = strlen(ns);
    char *head = r->head = malloc(r->head_len + 1);
    if (!head)
        return rc_seterr(RC_ENOMEM, "cached repo: out of memory");
    memcpy(head, r->prefix, pl);
    memcpy(head + pl, ns, nl);
    memcpy(head + pl + nl, ":", 2);
    const char *open = strchr(head, '{');
    const char *close = open ? strchr(open + 1, '}') : NULL;
    r->head_tagged = open && close && close > open + 1;
    if (open && !r->head_tagged)
        return rc_seterr(RC_EINVAL,
                         "CACHE_KEY_PREFIX and namespace '%s': a '{' without a non-empty "
                         "'{...}' hash tag after it would put keys and their leases in "
                         "different Redis Cluster slots",
                         head);
    return RC_OK;
}

int rc_cached_key_id(const cached_repo *r, const char *id, char *buf, size_t size,
                     char **key)
{
    size_t il = id ? strlen(id) : 0;
    if (r->head_len + il >= size) /* the rare long key: the strategy's own way */
        return rc_strategy_key_id(&r->st, r->prefix, id, key);
    int rc = rc_id_validate(id);
    if (rc != RC_OK)
        return rc;
    memcpy(buf, r->head, r->head_len);
    memcpy(buf + r->head_len, id, il + 1);
    *key = buf;
    return RC_OK;
}

/* P + ns + ":" + tag + "{T}" + rest-of(key), where key = P + ns + ":" + rest
 * (no "{T}" when the head is tagged). */
static char *side_key(const cached_repo *r, const char *key, const char *tag)
{
    size_t kl = strlen(key), tl = strlen(tag);
    const char *slot_tag = r->head_tagged ? "" : rc_slot_tag(rc_slot(key, kl));
    size_t sl = strlen(slot_tag), extra = sl ? sl + 2 : 0;
    char *s = malloc(kl + tl + extra + 1), *p = s;
    if (!s)
        return NULL;
    memcpy(p, key, r->head_len);
    p += r->head_len;
    memcpy(p, tag, tl);
    p += tl;
    if (sl) {
        *p++ = '{';
        memcpy(p, slot_tag, sl);
        p += sl;
        *p++ = '}';
    }
    memcpy(p, key + r->head_len, kl - r->head_len + 1);
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
