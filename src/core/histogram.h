/* histogram.h - a latency histogram that is cheap to record into from many
 * threads at once: fixed buckets from 1 us to 10 s (1, 2.5, 5 per decade),
 * one relaxed atomic increment of a bucket and one of the sum, in one of
 * RC_HIST_STRIPES stripes (a thread keeps to one), each on cache lines of
 * its own so that threads do not share a line; read as cumulative counts
 * (Prometheus's le buckets) with the sum and the count. */
#ifndef RC_CORE_HISTOGRAM_H
#define RC_CORE_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

/* Upper bounds of the finite buckets (the last bucket is +Inf). */
#define RC_HIST_BOUNDS 22

/* Stripes of a histogram; threads beyond share them round robin. */
#define RC_HIST_STRIPES 4

/* One stripe: 24 counters and the sum, padded to 256 bytes. */
typedef struct rc_histogram_stripe {
    _Alignas(64) atomic_uint_fast64_t bucket[RC_HIST_BOUNDS + 1]; /* per
                                                 bucket, not cumulative */
    atomic_uint_fast64_t sum_ns;              /* sum of observations */
    char pad[256 - 8 * (RC_HIST_BOUNDS + 2)]; /* to the next stripe */
} rc_histogram_stripe;

/* A histogram; embedded structs must be allocated 64-byte aligned
 * (aligned_alloc) for the stripes to own their lines. */
typedef struct rc_histogram {
    rc_histogram_stripe stripe[RC_HIST_STRIPES];
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

/* Nanoseconds on CLOCK_MONOTONIC: a read's start and end. */
uint64_t rc_histogram_now_ns(void);

#endif
