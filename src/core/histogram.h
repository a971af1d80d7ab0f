/* histogram.h - a latency histogram that is cheap to record into from many
 * threads at once: fixed buckets from 1 us to 10 s (1, 2.5, 5 per decade),
 * one relaxed atomic increment per bucket and one for the sum; read as
 * cumulative counts (Prometheus's le buckets) with the sum and the count. */
#ifndef RC_CORE_HISTOGRAM_H
#define RC_CORE_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

/* Upper bounds of the finite buckets (the last bucket is +Inf). */
#define RC_HIST_BOUNDS 22

typedef struct rc_histogram {
    atomic_uint_fast64_t bucket[RC_HIST_BOUNDS + 1]; /* per bucket, not
                                                        cumulative */
    atomic_uint_fast64_t sum_ns;                     /* sum of observations */
} rc_histogram;

/* A histogram as read: cumulative counts, bucket i holding every value
 * <= rc_histogram_bound(i) (the last is +Inf and equals count). */
typedef struct rc_histogram_view {
    uint64_t cumulative[RC_HIST_BOUNDS + 1];
    uint64_t count;
    double sum_s; /* seconds */
} rc_histogram_view;

/* The upper bound of bucket i (0 <= i < RC_HIST_BOUNDS) in seconds. */
double rc_histogram_bound(int i);

/* Records one observation of ns nanoseconds (relaxed atomics, no lock). */
void rc_histogram_observe(rc_histogram *h, uint64_t ns);

/* Reads h into *v. Concurrent observations may be half seen (a bucket
 * without its sum), never lost. */
void rc_histogram_read(const rc_histogram *h, rc_histogram_view *v);

/* Adds every count and the sum of from into into. */
void rc_histogram_add(rc_histogram *into, const rc_histogram *from);

/* Nanoseconds on CLOCK_MONOTONIC: a read's start and end. */
uint64_t rc_histogram_now_ns(void);

#endif
