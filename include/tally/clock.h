/* SPDX-License-Identifier: MIT */
/* The monotonic clock in seconds: durations, deadlines and rates (never wall time). */
#ifndef TALLY_CLOCK_H
#define TALLY_CLOCK_H

#include <time.h>

static inline double tally_mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
