/*
 * queue.c - the FIFO queue of the cache service on a Redis list (RPUSH at
 * the tail, LPOP at the head). It never falls back: an item is not lost
 * silently, the call answers RC_EUNAVAILABLE instead.
 */
#include "cache/service.h"

#include <string.h>

int rc_queue_push(rc_cache *c, const char *queue, const char *val, size_t len)
{
    if (!c || !queue || (!val && len))
        return rc_seterr(RC_EINVAL, "rc_queue_push: NULL argument");
    const char *argv[] = {"RPUSH", queue, val ? val : ""};
    const size_t lens[] = {5, strlen(queue), len};
    redisReply *r;
    int st = rc_call_one(c, 3, argv, lens, &r);
    if (st == RC_OK) {
        st = rc_call_reply_error(c, r, "RPUSH");
        freeReplyObject(r);
    }
    return st;
}

int rc_queue_pop(rc_cache *c, const char *queue, char **val, size_t *len)
{
    if (!c || !queue || !val)
        return rc_seterr(RC_EINVAL, "rc_queue_pop: NULL argument");
    *val = NULL;
    const char *argv[] = {"LPOP", queue};
    redisReply *r;
    int st = rc_call_one(c, 2, argv, NULL, &r);
    if (st)
        return st;
    st = rc_call_reply_error(c, r, "LPOP");
    if (st == RC_OK)
        st = r->type == REDIS_REPLY_STRING
                 ? rc_values_copy(r->str, r->len, val, len)
                 : RC_ENOTFOUND;
    freeReplyObject(r);
    return st;
}

int rc_queue_length(rc_cache *c, const char *queue, long long *len)
{
    if (!c || !queue || !len)
        return rc_seterr(RC_EINVAL, "rc_queue_length: NULL argument");
    const char *argv[] = {"LLEN", queue};
    return rc_call_integer(c, 2, argv, len);
}

int rc_queue_clear(rc_cache *c, const char *queue)
{
    if (!c || !queue)
        return rc_seterr(RC_EINVAL, "rc_queue_clear: NULL argument");
    const char *argv[] = {"UNLINK", queue};
    long long n;
    return rc_call_integer(c, 2, argv, &n);
}
