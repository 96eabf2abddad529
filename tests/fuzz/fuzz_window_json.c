/* SPDX-License-Identifier: MIT */
/* Fuzz target: the windowed JSON record. The output stays within TALLY_JSON_WINDOW_MAX and is
 * exactly {"window":{"start":S,"end":E},"word":W,"count":N} with S and E as the gmtime_r-based
 * reference (tests/time_check.h) prints them and W as tally_json_escape writes it (checked on its
 * own by fuzz_json). */
#include "fuzz.h"
#include "../time_check.h"

#include "tally/json.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int64_t v[3] = {0, 0, 1}; /* start, end, count */
    for (int i = 0; i < 3 && size >= 8; i++) {
        memcpy(&v[i], data, 8);
        data += 8;
        size -= 8;
    }
    /* Exactly the bound on the heap, so AddressSanitizer sees a write past it. */
    char *out = malloc(TALLY_JSON_WINDOW_MAX(size));
    char *want = malloc(6 * size + 256); /* room for a reference longer than the bound */
    char *body = malloc(6 * size + 1);
    FUZZ_CHECK(out && want && body);
    size_t n = tally_json_window_word_count(out, v[0], v[1], data, size, v[2]);
    FUZZ_CHECK(n <= TALLY_JSON_WINDOW_MAX(size));
    char s[64], e[64];
    FUZZ_CHECK(tc_timestamp(s, v[0]) > 0 && tc_timestamp(e, v[1]) > 0);
    size_t bl = tally_json_escape(body, data, size);
    body[bl] = '\0';
    int w = snprintf(want, 256,
                     "{\"window\":{\"start\":\"%s\",\"end\":\"%s\"},\"word\":\"", s, e);
    FUZZ_CHECK(w > 0);
    size_t wl = (size_t)w;
    memcpy(want + wl, body, bl);
    wl += bl;
    wl += (size_t)sprintf(want + wl, "\",\"count\":%" PRId64 "}", v[2]);
    FUZZ_CHECK(wl == n && memcmp(out, want, n) == 0);
    /* The timestamp alone is the same bytes. */
    char t[TALLY_JSON_TIME_MAX];
    size_t tl = tally_json_timestamp(t, v[0]);
    FUZZ_CHECK(tl <= TALLY_JSON_TIME_MAX && tl == strlen(s) && memcmp(t, s, tl) == 0);
    free(out);
    free(want);
    free(body);
    return 0;
}
