/*
 * fuzz_glob.c - glob escaping (rc_glob_escape, core/str.h) against Redis's
 * matching rules, with a matcher written here from Redis's documented glob
 * syntax (KEYS, SCAN MATCH): * any run of bytes, ? one byte, [abc] one of
 * them, [^a] any but them, [a-z] a range, \x the byte x itself.
 *
 * Input: two strings s and t (cut at the first NUL). Oracles: escape(s)
 * matches s; it matches t only when t is s; escape(s) followed by * matches
 * t exactly when t starts with s (how rc_strategy_key_pattern uses it).
 */
#include "fuzz.h"

#include "core/str.h"

#include <stdbool.h>
#include <string.h>

/* Whether the set after a '[' (at p, pn bytes: items up to ']') admits c.
 * *used = bytes of the set, ']' included. An unterminated set admits
 * nothing (*used = pn). */
static bool set_admits(const char *p, size_t pn, unsigned char c, size_t *used)
{
    size_t i = 0;
    bool negate = pn > 0 && p[0] == '^', hit = false;
    if (negate)
        i++;
    while (i < pn && p[i] != ']') {
        unsigned char lo = (unsigned char)p[i], hi = lo;
        if (p[i] == '\\' && i + 1 < pn) {
            lo = hi = (unsigned char)p[++i];
        } else if (i + 2 < pn && p[i + 1] == '-' && p[i + 2] != ']') {
            hi = (unsigned char)p[i + 2];
            i += 2;
            if (lo > hi) {
                unsigned char x = lo;
                lo = hi;
                hi = x;
            }
        }
        hit |= c >= lo && c <= hi;
        i++;
    }
    if (i >= pn) {
        *used = pn;
        return false;
    }
    *used = i + 1;
    return negate ? !hit : hit;
}

/* Whether pattern p (pn bytes) matches all of s (sn bytes). */
static bool glob_match(const char *p, size_t pn, const char *s, size_t sn)
{
    while (pn > 0) {
        size_t used;
        switch (*p) {
        case '*':
            while (pn > 0 && *p == '*')
                p++, pn--;
            for (size_t k = 0; k <= sn; k++)
                if (glob_match(p, pn, s + k, sn - k))
                    return true;
            return false;
        case '?':
            if (sn == 0)
                return false;
            p++, pn--, s++, sn--;
            break;
        case '[':
            if (sn == 0 || !set_admits(p + 1, pn - 1, (unsigned char)*s, &used))
                return false;
            p += 1 + used, pn -= 1 + used, s++, sn--;
            break;
        case '\\':
            if (pn >= 2) /* the next byte stands for itself */
                p++, pn--;
            /* fall through */
        default:
            if (sn == 0 || *p != *s)
                return false;
            p++, pn--, s++, sn--;
        }
    }
    return sn == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader r = {data, size};
    char *s = fuzz_field(&r), *t = fuzz_field(&r), *esc = NULL;
    size_t sl = strlen(s), tl = strlen(t);
    FUZZ_CHECK(rc_glob_escape(s, &esc) == RC_OK, "escape failed");
    size_t el = strlen(esc);
    FUZZ_CHECK(glob_match(esc, el, s, sl), "'%s' does not match '%s'", esc, s);
    FUZZ_CHECK(glob_match(esc, el, t, tl) == (strcmp(s, t) == 0),
               "'%s' (from '%s') matches '%s'", esc, s, t);
    char *star = malloc(el + 2);
    FUZZ_CHECK(star != NULL, "out of memory");
    memcpy(star, esc, el);
    memcpy(star + el, "*", 2);
    FUZZ_CHECK(glob_match(star, el + 1, t, tl) ==
                   (tl >= sl && memcmp(t, s, sl) == 0),
               "'%s' and '%s': prefix match wrong", star, t);
    free(star);
    free(esc);
    free(s);
    free(t);
    return 0;
}
