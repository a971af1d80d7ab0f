/* histogram.c - latency histograms (see histogram.h). */
#include "core/histogram.h"

#include <time.h>

/* The bucket bounds in nanoseconds: 1, 2.5, 5 x 10^k from 1 us to 10 s. */
static const uint64_t bounds_ns[RC_HIST_BOUNDS] = {
    1000,       2500,       5000,       10000,      25000,      50000,
    100000,     250000,     500000,     1000000,    2500000,    5000000,
    10000000,   25000000,   50000000,   100000000,  250000000,  500000000,
    1000000000, 2500000000, 5000000000, 10000000000,
};

double rc_histogram_bound(int i)
{
    return (double)bounds_ns[i] / 1e9;
}

void rc_histogram_observe(rc_histogram *h, uint64_t ns)
{
    int i = 0;
    while (i < RC_HIST_BOUNDS && ns > bounds_ns[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
}

void rc_histogram_read(const rc_histogram *h, rc_histogram_view *v)
{
    uint64_t run = 0;
    for (int i = 0; i <= RC_HIST_BOUNDS; i++) {
        run += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        v->cumulative[i] = run;
    }
    v->count = run;
    v->sum_s = (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9;
}

void rc_histogram_add(rc_histogram *into, const rc_histogram *from)
{
    for (int i = 0; i <= RC_HIST_BOUNDS; i++)
        atomic_fetch_add_explicit(
            &into->bucket[i], atomic_load_explicit(&from->bucket[i], memory_order_relaxed),
            memory_order_relaxed);
    atomic_fetch_add_explicit(&into->sum_ns,
                              atomic_load_explicit(&from->sum_ns, memory_order_relaxed),
                              memory_order_relaxed);
}

uint64_t rc_histogram_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
