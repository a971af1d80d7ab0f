/*
 * counter.h - a statistic that many threads bump on hot paths without
 * sharing a cache line: one 64-byte stripe per thread slot, summed on read.
 * A thread takes its slot (round robin) the first time it counts; threads
 * beyond RC_COUNTER_STRIPES share slots, which stays correct (each add is
 * atomic) and only costs contention again.
 *
 * An rc_counter is RC_COUNTER_STRIPES * 64 bytes (1 KiB) and 64-byte
 * aligned: a struct holding one is allocated with rc_counter_struct_alloc.
 */
#ifndef RC_CORE_COUNTER_H
#define RC_CORE_COUNTER_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RC_COUNTER_STRIPES 16

typedef struct rc_counter {
    struct {
        alignas(64) atomic_uint_fast64_t v;
    } stripe[RC_COUNTER_STRIPES];
} rc_counter;

/* A zeroed block of size bytes aligned for counters (free with free());
 * NULL on ENOMEM. */
void *rc_counter_struct_alloc(size_t size);

/* The calling thread's stripe, 0 .. RC_COUNTER_STRIPES - 1. */
unsigned rc_counter_slot(void);

/* Adds one (relaxed: a statistic orders nothing). */
static inline void rc_counter_add(rc_counter *c)
{
    atomic_fetch_add_explicit(&c->stripe[rc_counter_slot()].v, 1, memory_order_relaxed);
}

/* Adds n. */
static inline void rc_counter_add_n(rc_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->stripe[rc_counter_slot()].v, n, memory_order_relaxed);
}

/* The sum of every stripe now. */
uint64_t rc_counter_get(const rc_counter *c);

#endif
