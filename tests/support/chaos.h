/*
 * chaos.h - an allocator for jansson (json_set_alloc_funcs) that makes the
 * Nth allocation fail, for out-of-memory loops ("every allocation failing in
 * turn, until the call succeeds").
 *
 * Every block it hands out lives on pages of its own (mmap); freeing a block
 * makes its pages inaccessible at once. So a use after free (json_decref of
 * an object jansson already freed) faults with SIGSEGV, and a double free is
 * reported, in every build and not only under ASan; and memory from it that
 * a caller hands to free() makes libc abort (it is not malloc's). Blocks
 * still live at the end are leaks. Single-threaded: install it only while
 * one thread uses jansson.
 */
#ifndef RC_TEST_CHAOS_H
#define RC_TEST_CHAOS_H

#include <stdbool.h>

/* Installs the allocator into jansson: from now on its fail_at-th
 * allocation fails (0: none). */
void th_chaos_begin(long fail_at);
/* Restores malloc/free in jansson and returns how many of its blocks are
 * still live (leaked). Freed blocks are unmapped. */
long th_chaos_end(void);
/* Allocations asked for since th_chaos_begin (the failed one included). */
long th_chaos_calls(void);

/*
 * The out-of-memory loop: for n = 1, 2, ... runs call(ud) with jansson's nth
 * allocation failing, until a run in which none failed. Asserts (Check) that
 * each run answers RC_OK or RC_ENOMEM, RC_OK when nothing failed, and leaks
 * no jansson block; after each run (jansson's allocator restored) check(ud,
 * rc) asserts the outcome and frees what call handed back. Returns how many
 * jansson allocations the call makes.
 */
long th_chaos_each(const char *what, int (*call)(void *ud),
                   void (*check)(void *ud, int rc), void *ud);

#endif
