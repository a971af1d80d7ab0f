/* token.c - per-thread random tokens (see token.h). */
#include "core/token.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Bumped in a child after fork: every thread state seeded before is stale. */
static atomic_uint fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) { atomic_fetch_add(&fork_gen, 1); }
static void register_atfork(void) { pthread_atfork(NULL, NULL, on_fork_child); }

typedef struct gen_state {
    uint64_t s[4];   /* xoshiro256** state, never all zero */
    unsigned gen;    /* fork_gen when seeded */
    int seeded;      /* 0 until the first seed */
} gen_state;

static _Thread_local gen_state tls;

/* splitmix64: spreads a weak seed over the state. */
static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void seed(gen_state *g)
{
    if (getrandom(g->s, sizeof g->s, 0) != (ssize_t)sizeof g->s) {
        static atomic_uint_fast64_t counter;
        struct timespec a, b;
        clock_gettime(CLOCK_REALTIME, &a);
        clock_gettime(CLOCK_MONOTONIC, &b);
        uint64_t x = (uint64_t)a.tv_nsec ^ ((uint64_t)a.tv_sec << 30) ^
                     ((uint64_t)b.tv_nsec << 17) ^ ((uint64_t)getpid() << 40) ^
                     (uint64_t)(uintptr_t)g ^ (atomic_fetch_add(&counter, 1) << 52);
        for (int i = 0; i < 4; i++)
            g->s[i] = splitmix(&x);
    }
    if (!(g->s[0] | g->s[1] | g->s[2] | g->s[3]))
        g->s[0] = 1;
    g->seeded = 1;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next(gen_state *g)
{
    uint64_t *s = g->s, r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

void rc_token_hex(char out[RC_TOKEN_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    gen_state *g = &tls;
    pthread_once(&atfork_once, register_atfork);
    unsigned gen = atomic_load(&fork_gen);
    if (!g->seeded || g->gen != gen) {
        seed(g);
        g->gen = gen;
    }
    for (int w = 0; w < 2; w++) {
        uint64_t x = next(g);
        for (int i = 0; i < 16; i++, x >>= 4)
            out[16 * w + i] = hex[x & 15];
    }
    out[RC_TOKEN_LEN] = '\0';
}
