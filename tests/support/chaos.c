/* chaos.c - see chaos.h. */
#include "chaos.h"

#include "repocache/status.h"

#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Blocks handed out since th_chaos_begin (a fixed table: no malloc here, so
 * a test that also makes malloc fail cannot make this fail). */
#define MAX_BLOCKS 65536
/* The block starts this far into its mapping (malloc's alignment). */
#define OFFSET 16

typedef struct block {
    char *base;  /* the mapping */
    size_t size; /* its length */
    bool live;   /* not freed yet */
} block;

static block blocks[MAX_BLOCKS];
static size_t nblocks;
static long fail_at, calls;

/* A block on pages of its own; NULL for the fail_at-th call. */
static void *chaos_malloc(size_t n)
{
    if (++calls == fail_at)
        return NULL;
    if (nblocks == MAX_BLOCKS) {
        fprintf(stderr, "chaos: more than %d blocks\n", MAX_BLOCKS);
        abort();
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t size = (n + OFFSET + page - 1) / page * page;
    char *base = mmap(NULL, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    blocks[nblocks++] = (block){base, size, true};
    return base + OFFSET;
}

/* Makes p's pages inaccessible (aborts on a double free); a block from
 * malloc goes back to free. */
static void chaos_free(void *p)
{
    if (!p)
        return;
    for (size_t i = nblocks; i-- > 0;) {
        if (blocks[i].base + OFFSET != (char *)p)
            continue;
        if (!blocks[i].live) {
            fprintf(stderr, "chaos: double free of %p\n", p);
            abort();
        }
        blocks[i].live = false;
        mprotect(blocks[i].base, blocks[i].size, PROT_NONE);
        return;
    }
    free(p); /* allocated before th_chaos_begin, by malloc */
}

void th_chaos_begin(long n)
{
    fail_at = n;
    calls = 0;
    nblocks = 0;
    json_set_alloc_funcs(chaos_malloc, chaos_free);
}

long th_chaos_end(void)
{
    long live = 0;
    json_set_alloc_funcs(malloc, free);
    for (size_t i = 0; i < nblocks; i++) {
        if (blocks[i].live)
            live++; /* leaked: left mapped, never reused */
        else
            munmap(blocks[i].base, blocks[i].size);
    }
    nblocks = 0;
    fail_at = 0;
    return live;
}

long th_chaos_calls(void)
{
    return calls;
}

long th_chaos_each(const char *what, int (*call)(void *ud),
                   void (*check)(void *ud, int rc), void *ud)
{
    bool done = false;
    long n;
    for (n = 1; !done && n < 20000; n++) {
        th_chaos_begin(n);
        int rc = call(ud);
        done = th_chaos_calls() < n; /* nothing failed this time */
        long live = th_chaos_end();
        ck_assert_msg(live == 0, "%s, N=%ld: %ld jansson blocks leaked", what,
                      n, live);
        ck_assert_msg(rc == RC_OK || rc == RC_ENOMEM, "%s, N=%ld: %s", what, n,
                      rc_status_name(rc));
        ck_assert_msg(!done || rc == RC_OK, "%s, N=%ld: %s without a failure",
                      what, n, rc_status_name(rc));
        check(ud, rc);
    }
    ck_assert_msg(done, "%s: never succeeded", what);
    return n - 2;
}
