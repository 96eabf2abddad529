/* SPDX-License-Identifier: MIT */
/* Fuzz target: window assignment and the state key. Any (ts, size, slide, watermark) that
 * tally_window_check accepts gives Spark's windows (tests/window_check.h, 128-bit), ascending; the
 * open and closed ones add up and split at Spark's rule end <= watermark; keys round-trip and sort
 * in (start, word) order. */
#include "fuzz.h"
#include "../window_check.h"

#include "tally/window.h"

#include <string.h>

static int64_t take(const uint8_t **data, size_t *size) {
    int64_t v = 0;
    size_t n = *size < 8 ? *size : 8;
    memcpy(&v, *data, n);
    *data += n;
    *size -= n;
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int64_t ts = take(&data, &size), wsize = take(&data, &size), slide = take(&data, &size);
    int64_t wmk = take(&data, &size);
    /* Small shapes often, so that hopping windows are common; any int64 otherwise. */
    if ((uint64_t)wsize % 4 != 0) {
        slide = 1 + (int64_t)((uint64_t)slide % 1000);
        wsize = slide + (int64_t)((uint64_t)wsize % 5000);
    }
    if (tally_window_check(wsize, slide, NULL, 0) == 0) {
        static int64_t got[TALLY_WINDOW_MAX_PER_RECORD], want[TALLY_WINDOW_MAX_PER_RECORD];
        static int64_t open[TALLY_WINDOW_MAX_PER_RECORD];
        size_t n = tally_window_assign(ts, wsize, slide, got, TALLY_WINDOW_MAX_PER_RECORD);
        size_t m = wc_spark_windows(ts, wsize, slide, want, TALLY_WINDOW_MAX_PER_RECORD);
        FUZZ_CHECK(n == m && n <= tally_window_per_record(wsize, slide));
        FUZZ_CHECK(n == 0 || memcmp(got, want, n * sizeof(got[0])) == 0);
        size_t closed, o = tally_window_assign_open(ts, wsize, slide, wmk, open, TALLY_WINDOW_MAX_PER_RECORD, &closed);
        FUZZ_CHECK(o + closed == n);
        for (size_t i = 0; i < n; i++) {
            wc_i128 end = (wc_i128)got[i] + wsize;
            FUZZ_CHECK((i < closed) == (end <= wmk));
            FUZZ_CHECK(tally_window_closed(got[i], wsize, wmk) == (end <= wmk));
            if (i >= closed) FUZZ_CHECK(open[i - closed] == got[i]);
        }
    }
    /* The key of (ts, rest) against (wmk, rest shifted by one). */
    uint8_t *k1 = malloc(size + TALLY_WINDOW_KEY_PREFIX), *k2 = malloc(size + TALLY_WINDOW_KEY_PREFIX);
    FUZZ_CHECK(k1 && k2);
    size_t l2 = size ? size - 1 : 0;
    size_t n1 = tally_window_key(k1, ts, data, size), n2 = tally_window_key(k2, wmk, size ? data + 1 : data, l2);
    int64_t s;
    const uint8_t *w;
    size_t len;
    FUZZ_CHECK(tally_window_key_decode(k1, n1, &s, &w, &len) == 0 && s == ts && len == size);
    FUZZ_CHECK(size == 0 || memcmp(w, data, size) == 0);
    size_t common = n1 < n2 ? n1 : n2;
    int c = memcmp(k1, k2, common);
    int want_c;
    if (ts != wmk) want_c = ts < wmk ? -1 : 1;
    else {
        size_t wc = size < l2 ? size : l2;
        int wcmp = wc ? memcmp(data, data + 1, wc) : 0;
        want_c = wcmp ? wcmp : (size < l2 ? -1 : size > l2);
    }
    int got_c = c ? c : (n1 < n2 ? -1 : n1 > n2);
    FUZZ_CHECK((got_c < 0) == (want_c < 0) && (got_c > 0) == (want_c > 0));
    free(k1);
    free(k2);
    return 0;
}
