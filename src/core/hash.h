/* hash.h - the string hash shared by the fallback LRU and the set of
 * remembered deletes (FNV-1a, 64 bits). */
#ifndef RC_CACHE_HASH_H
#define RC_CACHE_HASH_H

#include <stdint.h>

static inline uint64_t rc_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

#endif
