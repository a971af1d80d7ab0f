/* eviction.h - the eviction policy figure of the bench (see eviction.c). */
#ifndef RC_BENCH_EVICTION_H
#define RC_BENCH_EVICTION_H

/* Hit ratios of the near cache (SIEVE) and of plain LRU on the Zipf trace.
 * 0, or -1 when out of memory. */
int bench_eviction(double *sieve, double *lru);

#endif
