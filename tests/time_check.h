/* SPDX-License-Identifier: MIT */
/* A reference for the timestamps of the windowed JSON record, written apart from src/json.c: the C
 * library's gmtime_r (64-bit time_t, proleptic Gregorian in glibc) for the date and time, and Java's
 * rules for the year of the pattern uuuu (SignStyle.EXCEEDS_PAD, width 4): '-' before negative
 * years, '+' before years over 9999. Used by tests/test_json.c and tests/fuzz/fuzz_window_json.c. */
#ifndef TALLY_TEST_TIME_CHECK_H
#define TALLY_TEST_TIME_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

_Static_assert(sizeof(time_t) == 8, "the reference needs a 64-bit time_t");

/* Writes the timestamp and a NUL into out (64 bytes); returns the length, or -1 when gmtime_r fails. */
static inline int tc_timestamp(char *out, int64_t ms) {
    int64_t sec = ms / 1000, frac = ms % 1000;
    if (frac < 0) {
        frac += 1000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return -1;
    int64_t year = (int64_t)tm.tm_year + 1900;
    char y[32];
    if (year < 0) snprintf(y, sizeof(y), "-%04" PRId64, -year);
    else if (year > 9999) snprintf(y, sizeof(y), "+%" PRId64, year);
    else snprintf(y, sizeof(y), "%04" PRId64, year);
    return snprintf(out, 64, "%s-%02d-%02dT%02d:%02d:%02d.%03dZ", y, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                    tm.tm_min, tm.tm_sec, (int)frac);
}

#endif
