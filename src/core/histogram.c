/* histogram.c - latency histograms (see histogram.h). */
#include "core/histogram.h"

#include "core/counter.h"

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

/* The stripe of the calling thread: its counter slot (core/counter.h). */
static unsigned my_stripe(void)
{
    return rc_counter_slot() % RC_HIST_STRIPES;
}

void rc_histogram_observe(rc_histogram *h, uint64_t ns)
{
    int i = 0;
    while (i < RC_HIST_BOUNDS && ns > bounds_ns[i])
        i++;
    rc_histogram_stripe *s = &h->stripe[my_stripe()];
    atomic_fetch_add_explicit(&s->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_ns, ns, memory_order_relaxed);
}

void rc_histogram_read(const rc_histogram *h, rc_histogram_view *v)
{
    uint64_t run = 0, sum = 0;
    for (int i = 0; i <= RC_HIST_BOUNDS; i++) {
        for (int s = 0; s < RC_HIST_STRIPES; s++)
            run += atomic_load_explicit(&h->stripe[s].bucket[i], memory_order_relaxed);
        v->cumulative[i] = run;
    }
    for (int s = 0; s < RC_HIST_STRIPES; s++)
        sum += atomic_load_explicit(&h->stripe[s].sum_ns, memory_order_relaxed);
    v->count = run;
    v->sum_s = (double)sum / 1e9;
}

uint64_t rc_histogram_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
