/* hash.h - the string hash of the in-process tables (the near cache, the
 * fallback, the set of remembered deletes): eight bytes per step, each word
 * mixed by a multiply and a rotate, then a final avalanche (the finaliser of
 * MurmurHash3), so keys that differ in their last bytes spread over buckets
 * and shards alike. Not for anything outside the process. */
#ifndef RC_CORE_HASH_H
#define RC_CORE_HASH_H

#include <stdint.h>
#include <string.h>

static inline uint64_t rc_hash_str(const char *s)
{
    const uint64_t k = 0x9e3779b97f4a7c15ULL;
    size_t n = strlen(s);
    uint64_t h = (uint64_t)n * k, w;
    for (; n >= 8; n -= 8, s += 8) {
        memcpy(&w, s, 8);
        h = (h ^ (w * k)) * k;
        h = (h << 31) | (h >> 33);
    }
    w = 0;
    memcpy(&w, s, n);
    h ^= w * k;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

#endif
