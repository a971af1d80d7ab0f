/* clock.c - the monotonic clock (see clock.h). */
#include "core/clock.h"

#include <time.h>

double rc_clock_monotonic(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
