/* SPDX-License-Identifier: MIT */
/* Spark's window assignment written apart from src/window.c, for tests/test_window.c and
 * tests/fuzz/fuzz_window.c: TimeWindowing's over-generation of ceil(size/slide) windows from
 * lastStart = ts - floorMod(ts, slide), filtered by start <= ts < end, in 128-bit arithmetic. */
#ifndef TALLY_TEST_WINDOW_CHECK_H
#define TALLY_TEST_WINDOW_CHECK_H

#include "tally/window.h"

#include <stddef.h>
#include <stdint.h>

__extension__ typedef __int128 wc_i128; /* exact: no overflow */

/* Spark's TimeWindowing with startTime 0, in exact arithmetic, keeping only the windows whose start
 * and end fit int64 (tally's documented rule); ascending starts into out, returns the count. */
static inline size_t wc_spark_windows(int64_t ts, int64_t size, int64_t slide, int64_t *out, size_t max) {
    wc_i128 t = ts, rem = t % slide;
    wc_i128 last = t - (rem < 0 ? rem + slide : rem);
    size_t over = (size_t)(((wc_i128)size + slide - 1) / slide), n = 0;
    wc_i128 got[TALLY_WINDOW_MAX_PER_RECORD];
    for (size_t i = 0; i < over; i++) {
        wc_i128 start = last - (wc_i128)i * slide, end = start + size;
        if (!(t >= start && t < end)) continue; /* Spark's Filter */
        if (start < INT64_MIN || end > INT64_MAX) continue;
        got[n++] = start;
    }
    for (size_t i = 0; i < n && i < max; i++) out[i] = (int64_t)got[n - 1 - i]; /* ascending */
    return n;
}

#endif
