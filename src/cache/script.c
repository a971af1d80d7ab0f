/* script.c - Lua scripts by EVALSHA with an EVAL fallback on NOSCRIPT
 * (rc_cache_eval). The SHA1 of each script text is computed once and kept in
 * a small process-wide table (scripts are few and static). */
#include "cache/service.h"

#include "core/str.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- SHA1 (FIPS 180-4), enough for script digests ---- */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20)
            f = (b & c) | (~b & d), k = 0x5A827999;
        else if (i < 40)
            f = b ^ c ^ d, k = 0x6ED9EBA1;
        else if (i < 60)
            f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
        else
            f = b ^ c ^ d, k = 0xCA62C1D6;
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

/* hex = 40 lowercase hex digits + NUL of SHA1(data[0..n)). */
static void sha1_hex(const char *data, size_t n, char hex[41])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const unsigned char *p = (const unsigned char *)data;
    size_t full = n / 64 * 64;
    for (size_t i = 0; i < full; i += 64)
        sha1_block(h, p + i);
    unsigned char tail[128] = {0};
    size_t rest = n - full, tl = rest + 9 <= 64 ? 64 : 128;
    memcpy(tail, p + full, rest);
    tail[rest] = 0x80;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t i = 0; i < tl; i += 64)
        sha1_block(h, tail + i);
    for (int i = 0; i < 5; i++)
        snprintf(hex + 8 * i, 9, "%08x", h[i]);
}

/* ---- the digest table ---- */

/* Append-only list: readers walk it without the lock (entries are never
 * changed nor freed once published); writers add under scripts_mu. */
typedef struct script_sha {
    struct script_sha *next;
    const char *origin; /* the caller's text (static), compared first */
    char *text;
    char sha[41];
} script_sha;

static pthread_mutex_t scripts_mu = PTHREAD_MUTEX_INITIALIZER;
static script_sha *_Atomic scripts;

static const script_sha *find_script(const char *script)
{
    const script_sha *s = atomic_load_explicit(&scripts, memory_order_acquire);
    while (s && s->origin != script && strcmp(s->text, script) != 0)
        s = s->next;
    return s;
}

/* The SHA1 of script; NULL on ENOMEM. */
static const char *script_digest(const char *script)
{
    const script_sha *found = find_script(script);
    if (found)
        return found->sha;
    pthread_mutex_lock(&scripts_mu);
    script_sha *s = (script_sha *)find_script(script);
    if (!s && (s = calloc(1, sizeof *s)) != NULL) {
        s->origin = script;
        s->text = rc_strdup(script);
        if (s->text) {
            sha1_hex(script, strlen(script), s->sha);
            s->next = atomic_load(&scripts);
            atomic_store_explicit(&scripts, s, memory_order_release);
        } else {
            free(s);
            s = NULL;
        }
    }
    pthread_mutex_unlock(&scripts_mu);
    if (!s)
        rc_seterr(RC_ENOMEM, "out of memory");
    return s ? s->sha : NULL;
}

/* Runs [pre,] EVALSHA argv in one round trip; on NOSCRIPT once more with
 * EVAL script (pre again too: it must be a read). */
static int run_script(rc_cache *c, const rc_cmd *pre, redisReply **pre_reply,
                      const char **argv, size_t *lens, int argc,
                      const char *script, redisReply **reply)
{
    rc_cmd cmds[2];
    redisReply *replies[2] = {NULL, NULL};
    size_t n = 0;
    if (pre)
        cmds[n++] = *pre;
    cmds[n++] = (rc_cmd){argc, argv, lens};
    int st = rc_cache_exec(c, cmds, n, replies);
    if (st == RC_OK && replies[n - 1]->type == REDIS_REPLY_ERROR &&
        strncmp(replies[n - 1]->str, "NOSCRIPT", 8) == 0) {
        for (size_t i = 0; i < n; i++)
            freeReplyObject(replies[i]);
        argv[0] = "EVAL";
        argv[1] = script;
        lens[0] = 4;
        lens[1] = strlen(script);
        st = rc_cache_exec(c, cmds, n, replies);
    }
    if (st == RC_OK)
        (void)rc_call_reply_error(c, replies[n - 1], "script"); /* counted, logged */
    if (pre)
        *pre_reply = replies[0];
    *reply = replies[n - 1];
    return st;
}

/* Arguments of one EVALSHA held on the stack up to this many. */
#define ARGV_STACK 16

int rc_cache_eval_after(rc_cache *c, const rc_cmd *pre, redisReply **pre_reply,
                        const char *script, int nkeys, const char *const *keys,
                        int nargs, const char *const *args, const size_t *arglens,
                        redisReply **reply)
{
    if (reply)
        *reply = NULL;
    if (pre_reply)
        *pre_reply = NULL;
    if (!c || !script || !reply || nkeys < 0 || nargs < 0 || (nkeys && !keys) ||
        (nargs && !args) || (pre && !pre_reply))
        return rc_seterr(RC_EINVAL, "rc_cache_eval: bad argument");
    const char *sha = script_digest(script);
    if (!sha)
        return RC_ENOMEM;
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    int argc = 3 + nkeys + nargs;
    const char *argv_stack[ARGV_STACK];
    size_t lens_stack[ARGV_STACK];
    bool heap = argc > ARGV_STACK;
    const char **argv = heap ? malloc((size_t)argc * sizeof *argv) : argv_stack;
    size_t *lens = heap ? malloc((size_t)argc * sizeof *lens) : lens_stack;
    if (!argv || !lens) {
        if (heap) {
            free(argv);
            free(lens);
        }
        return rc_seterr(RC_ENOMEM, "out of memory");
    }
    argv[0] = "EVALSHA";
    argv[1] = sha;
    argv[2] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[3 + i] = keys[i];
    for (int i = 0; i < nargs; i++) {
        argv[3 + nkeys + i] = args[i];
        lens[3 + nkeys + i] = arglens ? arglens[i] : strlen(args[i]);
    }
    for (int i = 0; i < 3 + nkeys; i++)
        lens[i] = strlen(argv[i]);
    int st = run_script(c, pre, pre_reply, argv, lens, argc, script, reply);
    if (heap) {
        free(argv);
        free(lens);
    }
    return st;
}

int rc_cache_eval(rc_cache *c, const char *script, int nkeys, const char *const *keys,
                  int nargs, const char *const *args, const size_t *arglens,
                  redisReply **reply)
{
    return rc_cache_eval_after(c, NULL, NULL, script, nkeys, keys, nargs, args,
                               arglens, reply);
}
