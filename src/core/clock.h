/* clock.h - the library's one time source: CLOCK_MONOTONIC in seconds. Every
 * component that takes an injectable clock (rc_clock_fn) defaults to it. */
#ifndef RC_CORE_CLOCK_H
#define RC_CORE_CLOCK_H

#include "repocache/export.h"

/* Seconds on CLOCK_MONOTONIC; ud is ignored (the rc_clock_fn signature).
 * Public too: repocache/cache.h declares it for callers. */
RC_API double rc_clock_monotonic(void *ud);
/* Sleeps s seconds (resumed after a signal). */
void rc_clock_sleep(double s);

#endif
