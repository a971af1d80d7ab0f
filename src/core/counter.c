/* counter.c - striped statistics (counter.h). */
#include "core/counter.h"

#include <stdlib.h>
#include <string.h>

static atomic_uint next_slot;
static _Thread_local unsigned slot_plus_one; /* 0: not taken yet */

unsigned rc_counter_slot(void)
{
    if (!slot_plus_one)
        slot_plus_one = atomic_fetch_add(&next_slot, 1) % RC_COUNTER_STRIPES + 1;
    return slot_plus_one - 1;
}

uint64_t rc_counter_get(const rc_counter *c)
{
    uint64_t sum = 0;
    for (int i = 0; i < RC_COUNTER_STRIPES; i++)
        sum += atomic_load_explicit(&c->stripe[i].v, memory_order_relaxed);
    return sum;
}

void *rc_counter_struct_alloc(size_t size)
{
    size_t rounded = (size + 63) / 64 * 64; /* aligned_alloc wants a multiple */
    void *p = aligned_alloc(64, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}
