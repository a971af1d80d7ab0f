/* clock.h - the library's one time source: CLOCK_MONOTONIC in seconds. Every
 * component that takes an injectable clock (rc_clock_fn) defaults to it. */
#ifndef RC_CORE_CLOCK_H
#define RC_CORE_CLOCK_H

/* Seconds on CLOCK_MONOTONIC; ud is ignored (the rc_clock_fn signature). */
double rc_clock_monotonic(void *ud);

#endif
