/* SPDX-License-Identifier: MIT */
/* Unit tests of src/window.c: size/slide checks, window assignment against Spark's algorithm
 * written apart in 128-bit arithmetic (over-generate ceil(size/slide) windows, keep start <= ts <
 * end) at every boundary, for negative timestamps and near INT64_MIN/MAX; Spark's late rule; both
 * watermark policies, idleness and window.close.idle.ms with the test driving the clocks; the
 * window-major state key (order, round trip, DeleteRange bounds). */
#include "harness.h"
#include "unit.h"

#include "tally/window.h"
#include "window_check.h"

#include <stdbool.h>
#include <stdint.h>

/* tally_window_assign agrees with the reference, and each start is a multiple of slide holding ts. */
static void check_assign(int64_t ts, int64_t size, int64_t slide) {
    int64_t got[TALLY_WINDOW_MAX_PER_RECORD], want[TALLY_WINDOW_MAX_PER_RECORD];
    size_t n = tally_window_assign(ts, size, slide, got, TALLY_WINDOW_MAX_PER_RECORD);
    size_t m = wc_spark_windows(ts, size, slide, want, TALLY_WINDOW_MAX_PER_RECORD);
    if (n != m) TH_FAIL("ts %" PRId64 " size %" PRId64 " slide %" PRId64 ": %zu windows, Spark %zu", ts, size, slide, n, m);
    ASSERT_LE(n, tally_window_per_record(size, slide));
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i])
            TH_FAIL("ts %" PRId64 " size %" PRId64 " slide %" PRId64 ": window %zu starts %" PRId64 ", Spark %" PRId64,
                    ts, size, slide, i, got[i], want[i]);
        ASSERT_EQ((wc_i128)got[i] % slide, 0);
        ASSERT((wc_i128)got[i] <= ts && ts < (wc_i128)got[i] + size);
        if (i) ASSERT_LT(got[i - 1], got[i]);
    }
}

static void test_check(void) {
    char why[256];
    ASSERT_EQ(tally_window_check(600000, 600000, why, sizeof(why)), 0);
    ASSERT_EQ(tally_window_check(600000, 1, why, sizeof(why)), -1); /* 600000 windows a record */
    ASSERT(strstr(why, "600000 windows"));
    ASSERT_EQ(tally_window_check(1000, 1, why, sizeof(why)), 0);    /* exactly the limit */
    ASSERT_EQ(tally_window_check(1001, 1, why, sizeof(why)), -1);
    ASSERT_EQ(tally_window_check(1000 * 7 - 1, 7, why, sizeof(why)), 0); /* ceil: 1000 */
    ASSERT_EQ(tally_window_check(1000 * 7 + 1, 7, why, sizeof(why)), -1); /* ceil: 1001 */
    ASSERT_EQ(tally_window_check(12, 5, why, sizeof(why)), 0);      /* slide need not divide size */
    ASSERT_EQ(tally_window_check(0, 0, why, sizeof(why)), -1);
    ASSERT(strstr(why, "window size (0 ms) must be positive"));
    ASSERT_EQ(tally_window_check(-5, 5, why, sizeof(why)), -1);
    ASSERT_EQ(tally_window_check(10, 0, why, sizeof(why)), -1);
    ASSERT(strstr(why, "slide (0 ms) must be positive"));
    ASSERT_EQ(tally_window_check(10, -1, why, sizeof(why)), -1);
    ASSERT_EQ(tally_window_check(10, 11, why, sizeof(why)), -1);
    ASSERT_STR_EQ(why, "the slide duration (11 ms) must be less than or equal to the window duration (10 ms)");
    ASSERT_EQ(tally_window_check(INT64_MAX, INT64_MAX, why, sizeof(why)), 0);
    ASSERT_EQ(tally_window_check(10, 11, NULL, 0), -1); /* no message buffer */
    ASSERT_EQ(tally_window_per_record(12, 5), 3);
    ASSERT_EQ(tally_window_per_record(10, 5), 2);
    ASSERT_EQ(tally_window_per_record(10, 10), 1);
    ASSERT_EQ(tally_window_per_record(INT64_MAX, 1), INT64_MAX);
}

static void test_tumbling(void) {
    int64_t s[4];
    /* The example: 10-minute windows. 2026-12-02T13:04:05Z. */
    int64_t t = 1796216645000;
    ASSERT_EQ(tally_window_assign(t, 600000, 600000, s, 4), 1);
    ASSERT_EQ(s[0], 1796216400000); /* 13:00 */
    /* Exact at the boundaries: start belongs, end does not. */
    ASSERT_EQ(tally_window_assign(0, 10, 10, s, 4), 1);
    ASSERT_EQ(s[0], 0);
    ASSERT_EQ(tally_window_assign(9, 10, 10, s, 4), 1);
    ASSERT_EQ(s[0], 0);
    ASSERT_EQ(tally_window_assign(10, 10, 10, s, 4), 1);
    ASSERT_EQ(s[0], 10);
    /* Negative timestamps: floor, not truncation toward zero. */
    ASSERT_EQ(tally_window_assign(-1, 10, 10, s, 4), 1);
    ASSERT_EQ(s[0], -10);
    ASSERT_EQ(tally_window_assign(-10, 10, 10, s, 4), 1);
    ASSERT_EQ(s[0], -10);
    ASSERT_EQ(tally_window_assign(-11, 10, 10, s, 4), 1);
    ASSERT_EQ(s[0], -20);
    ASSERT_EQ(tally_window_assign(5, 1, 1, s, 4), 1); /* 1 ms windows */
    ASSERT_EQ(s[0], 5);
}

static void test_hopping(void) {
    int64_t s[8];
    /* size 10, slide 5: two windows each. */
    ASSERT_EQ(tally_window_assign(7, 10, 5, s, 8), 2);
    ASSERT_EQ(s[0], 0);
    ASSERT_EQ(s[1], 5);
    ASSERT_EQ(tally_window_assign(5, 10, 5, s, 8), 2);
    ASSERT_EQ(s[0], 0);
    ASSERT_EQ(s[1], 5);
    ASSERT_EQ(tally_window_assign(4, 10, 5, s, 8), 2);
    ASSERT_EQ(s[0], -5);
    ASSERT_EQ(s[1], 0);
    ASSERT_EQ(tally_window_assign(-1, 10, 5, s, 8), 2);
    ASSERT_EQ(s[0], -10);
    ASSERT_EQ(s[1], -5);
    /* Spark's own comment: window 12m, slide 5m, start 0: 12:05 is in 11:55, 12:00 and 12:05. */
    int64_t min = 60000, t = (12 * 60 + 5) * min;
    ASSERT_EQ(tally_window_assign(t, 12 * min, 5 * min, s, 8), 3);
    ASSERT_EQ(s[0], (11 * 60 + 55) * min);
    ASSERT_EQ(s[1], 12 * 60 * min);
    ASSERT_EQ(s[2], t);
    /* Slide not dividing size: 12:07 is in 12:00 and 12:05 only (11:55-12:07 ends at it). */
    ASSERT_EQ(tally_window_assign(t + 2 * min, 12 * min, 5 * min, s, 8), 2);
    ASSERT_EQ(s[0], 12 * 60 * min);
    ASSERT_EQ(s[1], t);
    /* ... and 12:06:59.999 still in three. */
    ASSERT_EQ(tally_window_assign(t + 2 * min - 1, 12 * min, 5 * min, s, 8), 3);
    /* Over all 60 positions of a 5-slide / 12-size cycle: 2 or 3 windows, 12/5 on average. */
    size_t total = 0;
    for (int64_t x = -30; x < 30; x++) {
        size_t n = tally_window_assign(x, 12, 5, s, 8);
        ASSERT(n == 2 || n == 3);
        total += n;
    }
    ASSERT_EQ(total, 60 * 12 / 5);
    /* A short out array: the count is still all of them, only max are written, the lowest. */
    int64_t one[1];
    ASSERT_EQ(tally_window_assign(t, 12 * min, 5 * min, one, 1), 3);
    ASSERT_EQ(one[0], (11 * 60 + 55) * min);
    ASSERT_EQ(tally_window_assign(t, 12 * min, 5 * min, NULL, 0), 3);
}

/* Every (size, slide) up to 12 and every ts of a few cycles around 0. */
static void test_exhaustive_small(void) {
    for (int64_t size = 1; size <= 12; size++)
        for (int64_t slide = 1; slide <= size; slide++)
            for (int64_t ts = -50; ts <= 50; ts++) check_assign(ts, size, slide);
}

/* Near the ends of int64: windows that would start below INT64_MIN or end above INT64_MAX are not
 * assigned; nothing overflows (UBSan runs this). */
static void test_extremes(void) {
    int64_t s[TALLY_WINDOW_MAX_PER_RECORD];
    /* INT64_MIN = -922337203685477580 * 10 - 8: the lowest multiple of 10 in range is INT64_MIN + 8. */
    for (int64_t d = 0; d < 8; d++) ASSERT_EQ(tally_window_assign(INT64_MIN + d, 10, 10, s, 4), 0);
    ASSERT_EQ(tally_window_assign(INT64_MIN + 8, 10, 10, s, 4), 1);
    ASSERT_EQ(s[0], INT64_MIN + 8);
    /* INT64_MAX = ...807: the last window [INT64_MAX - 7, INT64_MAX + 3) cannot end. */
    ASSERT_EQ(tally_window_assign(INT64_MAX, 10, 10, s, 4), 0);
    ASSERT_EQ(tally_window_assign(INT64_MAX - 7, 10, 10, s, 4), 0);
    ASSERT_EQ(tally_window_assign(INT64_MAX - 8, 10, 10, s, 4), 1);
    ASSERT_EQ(s[0], INT64_MAX - 17);
    ASSERT_EQ(s[0] + 10, INT64_MAX - 7);
    /* A record at INT64_MAX is never in a window; one at INT64_MIN only when slide divides it. */
    ASSERT_EQ(tally_window_assign(INT64_MAX, 1, 1, s, 4), 0);
    ASSERT_EQ(tally_window_assign(INT64_MAX - 1, 1, 1, s, 4), 1);
    ASSERT_EQ(tally_window_assign(INT64_MIN, 1, 1, s, 4), 1);
    ASSERT_EQ(s[0], INT64_MIN);
    ASSERT_EQ(tally_window_assign(INT64_MIN, 2, 1, s, 4), 1); /* [MIN-1, MIN+1) cannot start */
    /* Huge windows. */
    ASSERT_EQ(tally_window_assign(0, INT64_MAX, INT64_MAX, s, 4), 1);
    ASSERT_EQ(s[0], 0);
    ASSERT_EQ(tally_window_assign(-1, INT64_MAX, INT64_MAX, s, 4), 1);
    ASSERT_EQ(s[0], -INT64_MAX);
    ASSERT_EQ(tally_window_assign(INT64_MIN, INT64_MAX, INT64_MAX, s, 4), 0);
    ASSERT_EQ(tally_window_assign(INT64_MAX - 1, INT64_MAX, INT64_MAX, s, 4), 1);
    ASSERT_EQ(tally_window_assign(INT64_MAX, INT64_MAX, INT64_MAX, s, 4), 0);
    ASSERT_EQ(tally_window_assign(INT64_MAX - 1, INT64_MAX, INT64_MAX / 2, s, 4), 1); /* [0, MAX) */
    ASSERT_EQ(tally_window_assign(100, INT64_MAX, INT64_MAX / 2, s, 4), 2);
    ASSERT_EQ(s[0], -(INT64_MAX / 2));
    ASSERT_EQ(s[1], 0);
    /* Every ts within 3000 of both ends, a few shapes, against the reference. */
    static const int64_t shapes[][2] = {{10, 10}, {10, 3}, {12, 5}, {1000, 1}, {7, 7}, {999, 2}};
    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++)
        for (int64_t d = 0; d < 3000; d++) {
            check_assign(INT64_MIN + d, shapes[k][0], shapes[k][1]);
            check_assign(INT64_MAX - d, shapes[k][0], shapes[k][1]);
        }
    uint64_t seed = 7;
    for (int i = 0; i < 2000; i++) {
        int64_t slide = (int64_t)(unit_splitmix64(&seed) >> 1) | 1;
        wc_i128 wide = (wc_i128)slide + (wc_i128)(unit_splitmix64(&seed) % 4) * (slide / 4);
        if (wide > INT64_MAX) continue;
        int64_t size = (int64_t)wide;
        if (tally_window_check(size, slide, NULL, 0) != 0) continue;
        check_assign((int64_t)unit_splitmix64(&seed), size, slide);
    }
}

static void test_random(void) {
    uint64_t seed = 42;
    for (int i = 0; i < 200000; i++) {
        int64_t slide = 1 + (int64_t)(unit_splitmix64(&seed) % 100000);
        int64_t per = 1 + (int64_t)(unit_splitmix64(&seed) % 20);
        int64_t size = slide * per - (int64_t)(unit_splitmix64(&seed) % (uint64_t)slide);
        if (size < slide) size = slide;
        int64_t ts = (int64_t)(unit_splitmix64(&seed) % 4000000000000ULL) - 2000000000000LL;
        check_assign(ts, size, slide);
    }
}

/* Spark's late rule per window: closed when end <= watermark. */
static void test_closed(void) {
    ASSERT(tally_window_closed(0, 10, 10));
    ASSERT(!tally_window_closed(0, 10, 9));
    ASSERT(tally_window_closed(0, 10, 11));
    ASSERT(tally_window_closed(-20, 10, -10));
    ASSERT(!tally_window_closed(-20, 10, -11));
    ASSERT(!tally_window_closed(INT64_MAX - 5, 10, INT64_MAX)); /* end beyond int64: never */
    ASSERT(tally_window_closed(INT64_MAX - 10, 10, INT64_MAX));
    ASSERT(!tally_window_closed(INT64_MIN, 10, TALLY_WATERMARK_NONE));
    ASSERT(tally_window_closed(INT64_MIN, 10, INT64_MIN + 10));
    /* Spark's first watermark (0) already closes windows ending at or before the epoch. */
    ASSERT(tally_window_closed(-10, 10, TALLY_WATERMARK_SPARK_INITIAL));
    ASSERT(!tally_window_closed(-5, 10, TALLY_WATERMARK_SPARK_INITIAL));

    int64_t s[8];
    size_t closed;
    /* Tumbling: the record at 9 is late once the watermark reaches 10, not before. */
    ASSERT_EQ(tally_window_assign_open(9, 10, 10, 9, s, 8, &closed), 1);
    ASSERT_EQ(closed, 0);
    ASSERT_EQ(tally_window_assign_open(9, 10, 10, 10, s, 8, &closed), 0);
    ASSERT_EQ(closed, 1);
    /* ts < watermark alone is not late: ts 5 < watermark 8, but [0, 10) is still open. */
    ASSERT_EQ(tally_window_assign_open(5, 10, 10, 8, s, 8, &closed), 1);
    ASSERT_EQ(closed, 0);
    /* Hopping 10/5, ts 7 in [0,10) and [5,15): watermark 10 drops the first only. */
    ASSERT_EQ(tally_window_assign_open(7, 10, 5, 10, s, 8, &closed), 1);
    ASSERT_EQ(closed, 1);
    ASSERT_EQ(s[0], 5);
    ASSERT_EQ(tally_window_assign_open(7, 10, 5, 15, s, 8, &closed), 0);
    ASSERT_EQ(closed, 2);
    ASSERT_EQ(tally_window_assign_open(7, 10, 5, TALLY_WATERMARK_NONE, s, 8, &closed), 2);
    ASSERT_EQ(closed, 0);
    /* Open and closed always add up to the windows holding ts. */
    uint64_t seed = 3;
    for (int i = 0; i < 50000; i++) {
        int64_t slide = 1 + (int64_t)(unit_splitmix64(&seed) % 50), size = slide * (1 + (int64_t)(unit_splitmix64(&seed) % 6));
        int64_t ts = (int64_t)(unit_splitmix64(&seed) % 2000) - 1000, w = (int64_t)(unit_splitmix64(&seed) % 2400) - 1200;
        int64_t all[TALLY_WINDOW_MAX_PER_RECORD];
        size_t n = tally_window_assign(ts, size, slide, all, TALLY_WINDOW_MAX_PER_RECORD);
        size_t open = tally_window_assign_open(ts, size, slide, w, s, 8, &closed);
        ASSERT_EQ(open + closed, n);
        /* The closed ones are the oldest: the open ones are the tail of all. */
        for (size_t k = 0; k < open && k < 8; k++) {
            ASSERT_EQ(s[k], all[closed + k]);
            ASSERT_GT(s[k] + size, w);
        }
        for (size_t k = 0; k < closed; k++) ASSERT_LE(all[k] + size, w);
    }
}

static void test_watermark_max(void) {
    tally_watermark_t wm;
    tally_watermark_init(&wm, TALLY_WATERMARK_MAX, 100, -1, -1, TALLY_WATERMARK_SPARK_INITIAL);
    ASSERT_EQ(tally_watermark_partitions(&wm, 3, 0), 0);
    /* Nothing seen: Spark's initial value stays. */
    ASSERT_EQ(tally_watermark_advance(&wm, 1000), 0);
    /* Max over every partition, whichever is ahead; one slow partition does not hold it. */
    tally_watermark_observe(&wm, 0, 5000, 1000);
    tally_watermark_observe(&wm, 1, 7000, 1000);
    ASSERT_EQ(wm.watermark, 0); /* moves only at the trigger's end */
    ASSERT_EQ(tally_watermark_advance(&wm, 1000), 6900);
    /* An older record does not move it back; an advance without news keeps it. */
    tally_watermark_observe(&wm, 2, 100, 2000);
    ASSERT_EQ(tally_watermark_advance(&wm, 2000), 6900);
    ASSERT_EQ(tally_watermark_advance(&wm, 999999), 6900); /* no close.idle: the clock alone does nothing */
    tally_watermark_observe(&wm, 2, 9000, 3000);
    ASSERT_EQ(tally_watermark_advance(&wm, 3000), 8900);
    /* A restored watermark above what the data says stays. */
    tally_watermark_term(&wm);
    tally_watermark_init(&wm, TALLY_WATERMARK_MAX, 100, -1, -1, 50000);
    ASSERT_EQ(tally_watermark_partitions(&wm, 1, 0), 0);
    tally_watermark_observe(&wm, 0, 9000, 0);
    ASSERT_EQ(tally_watermark_advance(&wm, 0), 50000);
    /* Saturation: delay past INT64_MIN, and huge event times. */
    tally_watermark_term(&wm);
    tally_watermark_init(&wm, TALLY_WATERMARK_MAX, INT64_MAX, -1, -1, TALLY_WATERMARK_NONE);
    ASSERT_EQ(tally_watermark_partitions(&wm, 1, 0), 0);
    tally_watermark_observe(&wm, 0, -5, 0);
    ASSERT_EQ(tally_watermark_advance(&wm, 0), INT64_MIN);
    tally_watermark_observe(&wm, 0, INT64_MAX, 0);
    ASSERT_EQ(tally_watermark_advance(&wm, 0), 0);
    tally_watermark_term(&wm);
    tally_watermark_init(&wm, TALLY_WATERMARK_MAX, 0, -1, -1, TALLY_WATERMARK_NONE);
    ASSERT_EQ(tally_watermark_partitions(&wm, 1, 0), 0);
    tally_watermark_observe(&wm, 0, INT64_MIN, 0);
    ASSERT_EQ(tally_watermark_advance(&wm, 0), TALLY_WATERMARK_NONE); /* MIN is "none": nothing to see */
    tally_watermark_observe(&wm, 0, INT64_MAX, 0);
    ASSERT_EQ(tally_watermark_advance(&wm, 0), INT64_MAX);
    tally_watermark_term(&wm);
}

static void test_watermark_min(void) {
    tally_watermark_t wm;
    /* Idle after 5 s; Flink's start: no watermark. */
    tally_watermark_init(&wm, TALLY_WATERMARK_MIN, 100, 5000, -1, TALLY_WATERMARK_NONE);
    ASSERT_EQ(tally_watermark_partitions(&wm, 2, 0), 0);
    tally_watermark_observe(&wm, 0, 10000, 1000);
    /* Partition 1 has no record yet: it holds the watermark back. */
    ASSERT_EQ(tally_watermark_advance(&wm, 1000), TALLY_WATERMARK_NONE);
    tally_watermark_observe(&wm, 1, 4000, 2000);
    ASSERT_EQ(tally_watermark_advance(&wm, 2000), 3900); /* the slowest partition */
    tally_watermark_observe(&wm, 0, 20000, 6000);
    ASSERT_EQ(tally_watermark_advance(&wm, 6000), 3900); /* partition 1 quiet 4 s: not idle yet */
    ASSERT_EQ(tally_watermark_advance(&wm, 6999), 3900);
    ASSERT_EQ(tally_watermark_advance(&wm, 7000), 19900); /* quiet 5 s: idle, released */
    /* It comes back with an old record: active again, but the watermark never goes back. */
    tally_watermark_observe(&wm, 1, 5000, 8000);
    ASSERT_EQ(tally_watermark_advance(&wm, 8000), 19900);
    tally_watermark_observe(&wm, 1, 30000, 9000);
    tally_watermark_observe(&wm, 0, 25000, 9000);
    ASSERT_EQ(tally_watermark_advance(&wm, 9000), 24900);
    /* Every partition idle: Flink's combined watermark stays. */
    ASSERT_EQ(tally_watermark_advance(&wm, 100000), 24900);
    /* A new partition registered later holds it back until its first record or idleness. */
    ASSERT_EQ(tally_watermark_partitions(&wm, 3, 100000), 0);
    ASSERT_EQ(wm.nparts, 3);
    ASSERT_EQ(tally_watermark_partitions(&wm, 2, 100000), 0); /* never shrinks */
    ASSERT_EQ(wm.nparts, 3);
    tally_watermark_observe(&wm, 0, 40000, 100000);
    tally_watermark_observe(&wm, 1, 40000, 100000);
    ASSERT_EQ(tally_watermark_advance(&wm, 100000), 24900);
    tally_watermark_observe(&wm, 0, 41000, 104999);
    tally_watermark_observe(&wm, 1, 41000, 104999);
    ASSERT_EQ(tally_watermark_advance(&wm, 104999), 24900);
    ASSERT_EQ(tally_watermark_advance(&wm, 105000), 40900);
    tally_watermark_term(&wm);

    /* Without watermark.idle.ms a silent partition holds it forever (Flink without withIdleness). */
    tally_watermark_init(&wm, TALLY_WATERMARK_MIN, 0, -1, -1, TALLY_WATERMARK_NONE);
    ASSERT_EQ(tally_watermark_partitions(&wm, 2, 0), 0);
    tally_watermark_observe(&wm, 0, 500, 0);
    tally_watermark_observe(&wm, 1, 100, 0);
    tally_watermark_observe(&wm, 0, 900, INT64_MAX);
    ASSERT_EQ(tally_watermark_advance(&wm, INT64_MAX), 100);
    /* The wall clock going backwards (threads report late) never un-idles anything. */
    tally_watermark_observe(&wm, 0, 200, 5);
    tally_watermark_observe(&wm, 1, 200, 5);
    ASSERT_EQ(wm.parts[0].last_input, INT64_MAX);
    ASSERT_EQ(wm.last_input, INT64_MAX);
    ASSERT_EQ(tally_watermark_advance(&wm, 10), 200);
    tally_watermark_term(&wm);
    tally_watermark_term(&wm); /* twice is harmless */
}

static void test_watermark_close_idle(void) {
    tally_watermark_t wm;
    /* Spark's max policy, delay 1 s, window.close.idle.ms 10 s. */
    tally_watermark_init(&wm, TALLY_WATERMARK_MAX, 1000, -1, 10000, TALLY_WATERMARK_SPARK_INITIAL);
    ASSERT_EQ(tally_watermark_advance(&wm, 50000), 0); /* nothing seen: the clock does not move it */
    ASSERT_EQ(tally_watermark_partitions(&wm, 1, 0), 0);
    tally_watermark_observe(&wm, 0, 60000, 100000);
    ASSERT_EQ(tally_watermark_advance(&wm, 100000), 59000);
    ASSERT_EQ(tally_watermark_advance(&wm, 109999), 59000); /* quiet 9.999 s */
    /* Quiet 10 s: event time is taken to have kept pace with the clock since the last record. */
    ASSERT_EQ(tally_watermark_advance(&wm, 110000), 69000);
    ASSERT_EQ(tally_watermark_advance(&wm, 125000), 84000);
    /* A new record stops it; the watermark stays where the clock took it until data passes it. */
    tally_watermark_observe(&wm, 0, 70000, 126000);
    ASSERT_EQ(tally_watermark_advance(&wm, 126000), 84000);
    tally_watermark_observe(&wm, 0, 90000, 127000);
    ASSERT_EQ(tally_watermark_advance(&wm, 127000), 89000);
    ASSERT_EQ(tally_watermark_advance(&wm, 136999), 89000);
    ASSERT_EQ(tally_watermark_advance(&wm, 137000), 99000);
    /* No overflow: quiet up to INT64_MAX - 127000, then saturation at INT64_MAX. */
    ASSERT_EQ(tally_watermark_advance(&wm, INT64_MAX), INT64_MAX - 38000);
    tally_watermark_observe(&wm, 0, INT64_MAX - 5, 127000);
    ASSERT_EQ(tally_watermark_advance(&wm, INT64_MAX), INT64_MAX);
    tally_watermark_term(&wm);

    /* With the min policy it also releases a watermark that idle partitions left stuck. */
    tally_watermark_init(&wm, TALLY_WATERMARK_MIN, 0, 5000, 20000, TALLY_WATERMARK_NONE);
    ASSERT_EQ(tally_watermark_partitions(&wm, 2, 0), 0);
    tally_watermark_observe(&wm, 0, 1000, 0);
    tally_watermark_observe(&wm, 1, 3000, 0);
    ASSERT_EQ(tally_watermark_advance(&wm, 0), 1000);
    ASSERT_EQ(tally_watermark_advance(&wm, 6000), 1000);   /* both idle: stays */
    ASSERT_EQ(tally_watermark_advance(&wm, 20000), 23000); /* max seen + quiet */
    tally_watermark_term(&wm);
}

/* The same calls give the same watermark: nothing reads a clock inside. */
static void test_watermark_pure(void) {
    for (int run = 0; run < 2; run++) {
        static int64_t first[400];
        tally_watermark_t wm;
        tally_watermark_init(&wm, run ? TALLY_WATERMARK_MIN : TALLY_WATERMARK_MAX, 250, 3000, 7000, 0);
        for (int pass = 0; pass < 2; pass++) {
            uint64_t seed = 11;
            tally_watermark_term(&wm);
            tally_watermark_init(&wm, run ? TALLY_WATERMARK_MIN : TALLY_WATERMARK_MAX, 250, 3000, 7000, 0);
            ASSERT_EQ(tally_watermark_partitions(&wm, 4, 0), 0);
            int64_t now = 0, prev = INT64_MIN;
            for (int i = 0; i < 400; i++) {
                now += (int64_t)(unit_splitmix64(&seed) % 2000);
                int recs = (int)(unit_splitmix64(&seed) % 5);
                for (int r = 0; r < recs; r++)
                    tally_watermark_observe(&wm, (int)(unit_splitmix64(&seed) % 4),
                                            now + (int64_t)(unit_splitmix64(&seed) % 4000) - 2000, now);
                int64_t w = tally_watermark_advance(&wm, now);
                ASSERT_GE(w, prev); /* monotonic */
                prev = w;
                if (pass == 0) first[i] = w;
                else ASSERT_EQ(w, first[i]);
            }
        }
        tally_watermark_term(&wm);
    }
}

static int cmp_pair(int64_t s1, const uint8_t *w1, size_t l1, int64_t s2, const uint8_t *w2, size_t l2) {
    if (s1 != s2) return s1 < s2 ? -1 : 1;
    size_t n = l1 < l2 ? l1 : l2;
    int c = n ? memcmp(w1, w2, n) : 0;
    if (c) return c < 0 ? -1 : 1;
    return l1 < l2 ? -1 : l1 > l2;
}

static int cmp_bytes(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    size_t n = al < bl ? al : bl;
    int c = memcmp(a, b, n);
    if (c) return c < 0 ? -1 : 1;
    return al < bl ? -1 : al > bl;
}

static int64_t random_start(uint64_t *seed) {
    static const int64_t edges[] = {INT64_MIN, INT64_MIN + 1, -256, -255, -1, 0, 1, 255, 256, INT64_MAX - 1, INT64_MAX};
    uint64_t r = unit_splitmix64(seed);
    if (r % 3 == 0) return edges[(r >> 8) % (sizeof(edges) / sizeof(edges[0]))];
    if (r % 3 == 1) return (int64_t)(unit_splitmix64(seed) % 2000) - 1000;
    return (int64_t)unit_splitmix64(seed);
}

static void test_key(void) {
    uint8_t k[64];
    /* Hand-checked bytes: sign bit flipped, big-endian. */
    static const uint8_t zero[] = {0x80, 0, 0, 0, 0, 0, 0, 0, 'c', 'a', 't'};
    ASSERT_MEM_EQ(k, tally_window_key(k, 0, (const uint8_t *)"cat", 3), zero, sizeof(zero));
    static const uint8_t minus1[] = {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ASSERT_MEM_EQ(k, tally_window_key(k, -1, NULL, 0), minus1, sizeof(minus1));
    static const uint8_t min[] = {0, 0, 0, 0, 0, 0, 0, 0}, max[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ASSERT_MEM_EQ(k, tally_window_key(k, INT64_MIN, NULL, 0), min, 8);
    ASSERT_MEM_EQ(k, tally_window_key(k, INT64_MAX, NULL, 0), max, 8);
    static const uint8_t t[] = {0x80, 0, 0x01, 0xa2, 0x36, 0xd7, 0x28, 0x80}; /* 1796216400000 */
    ASSERT_MEM_EQ(k, tally_window_key(k, 1796216400000, NULL, 0), t, 8);
    /* Decoding: round trip, and too short. */
    int64_t s;
    const uint8_t *w;
    size_t len;
    ASSERT_EQ(tally_window_key_decode(zero, sizeof(zero), &s, &w, &len), 0);
    ASSERT_EQ(s, 0);
    ASSERT_MEM_EQ(w, len, "cat", 3);
    ASSERT_EQ(tally_window_key_decode(zero, 7, &s, &w, &len), -1);
    ASSERT_EQ(tally_window_key_decode(min, 8, &s, &w, &len), 0);
    ASSERT_EQ(s, INT64_MIN);
    ASSERT_EQ(len, 0);
    /* Random pairs: memcmp order of the keys is (start, word) order; round trip. */
    uint64_t seed = 5;
    for (int i = 0; i < 200000; i++) {
        uint8_t w1[8], w2[8], k1[16], k2[16];
        int64_t s1 = random_start(&seed), s2 = (i & 1) ? s1 : random_start(&seed);
        size_t l1 = unit_splitmix64(&seed) % 9, l2 = unit_splitmix64(&seed) % 9;
        for (size_t j = 0; j < 8; j++) {
            w1[j] = (uint8_t)(unit_splitmix64(&seed) % 4 * 85); /* 0x00, 0x55, 0xaa, 0xff: ties */
            w2[j] = (uint8_t)(unit_splitmix64(&seed) % 4 * 85);
        }
        size_t n1 = tally_window_key(k1, s1, w1, l1), n2 = tally_window_key(k2, s2, w2, l2);
        ASSERT_EQ(n1, 8 + l1);
        ASSERT_EQ(cmp_bytes(k1, n1, k2, n2), cmp_pair(s1, w1, l1, s2, w2, l2));
        ASSERT_EQ(tally_window_key_decode(k1, n1, &s, &w, &len), 0);
        ASSERT_EQ(s, s1);
        ASSERT_MEM_EQ(w, len, w1, l1);
    }
}

static bool in_range(const uint8_t *key, size_t klen, const uint8_t *b, const uint8_t *e) {
    return cmp_bytes(key, klen, b, 8) >= 0 && cmp_bytes(key, klen, e, 8) < 0;
}

static void test_key_range(void) {
    uint8_t b[8], e[8], k[16];
    static const uint8_t ffs[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    ASSERT(!tally_window_key_range(5, 5, b, e));
    ASSERT(!tally_window_key_range(6, 5, b, e));
    /* One window: all its words, longest and highest bytes included, and nothing else. */
    static const int64_t starts[] = {INT64_MIN, -600000, -1, 0, 600000, INT64_MAX - 1};
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
        int64_t st = starts[i];
        ASSERT(tally_window_key_range(st, st + 1, b, e));
        ASSERT(in_range(k, tally_window_key(k, st, NULL, 0), b, e));
        ASSERT(in_range(k, tally_window_key(k, st, ffs, 8), b, e));
        ASSERT(in_range(k, tally_window_key(k, st, (const uint8_t *)"cat", 3), b, e));
        if (st > INT64_MIN) ASSERT(!in_range(k, tally_window_key(k, st - 1, ffs, 8), b, e));
        ASSERT(!in_range(k, tally_window_key(k, st + 1, NULL, 0), b, e));
    }
    /* Closed windows at watermark 20, size 10: starts <= 10. */
    ASSERT(tally_window_key_closed_range(10, 20, b, e));
    ASSERT(in_range(k, tally_window_key(k, INT64_MIN, NULL, 0), b, e));
    ASSERT(in_range(k, tally_window_key(k, -10, ffs, 8), b, e));
    ASSERT(in_range(k, tally_window_key(k, 10, ffs, 8), b, e));
    ASSERT(!in_range(k, tally_window_key(k, 11, NULL, 0), b, e));
    ASSERT(!in_range(k, tally_window_key(k, 20, NULL, 0), b, e));
    /* The range agrees with tally_window_closed for random starts. */
    uint64_t seed = 9;
    for (int i = 0; i < 100000; i++) {
        int64_t size = 1 + (int64_t)(unit_splitmix64(&seed) % 100), wmk = (int64_t)(unit_splitmix64(&seed) % 400) - 200;
        int64_t st = (int64_t)(unit_splitmix64(&seed) % 600) - 300;
        bool any = tally_window_key_closed_range(size, wmk, b, e);
        ASSERT(any);
        ASSERT_EQ(in_range(k, tally_window_key(k, st, ffs, 3), b, e), tally_window_closed(st, size, wmk));
    }
    /* Nothing can be closed near INT64_MIN; everything representable at INT64_MAX. */
    ASSERT(!tally_window_key_closed_range(10, INT64_MIN + 9, b, e));
    ASSERT(tally_window_key_closed_range(10, INT64_MIN + 10, b, e));
    ASSERT(in_range(k, tally_window_key(k, INT64_MIN, ffs, 8), b, e));
    ASSERT(!in_range(k, tally_window_key(k, INT64_MIN + 1, NULL, 0), b, e));
    ASSERT(tally_window_key_closed_range(1, INT64_MAX, b, e));
    ASSERT(in_range(k, tally_window_key(k, INT64_MAX - 1, ffs, 8), b, e));
}

int main(void) {
    RUN(test_check);
    RUN(test_tumbling);
    RUN(test_hopping);
    RUN(test_exhaustive_small);
    RUN(test_extremes);
    RUN(test_random);
    RUN(test_closed);
    RUN(test_watermark_max);
    RUN(test_watermark_min);
    RUN(test_watermark_close_idle);
    RUN(test_watermark_pure);
    RUN(test_key);
    RUN(test_key_range);
    RUN_SUMMARY("window");
    return 0;
}
