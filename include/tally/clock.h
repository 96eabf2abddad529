/* SPDX-License-Identifier: MIT */
/* The clocks: monotonic seconds for durations, deadlines and rates; wall-clock milliseconds only
 * where a time is a date (processing time and idleness of windows). */
#ifndef TALLY_CLOCK_H
#define TALLY_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline double tally_mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The wall clock in milliseconds since the epoch: processing time and idleness of windows. */
static inline int64_t tally_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
