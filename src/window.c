/* SPDX-License-Identifier: MIT */
/* Window assignment, the watermark and the window-major state key. All arithmetic is checked or
 * saturating: timestamps come from producers and may be anything in int64. */
#include "tally/window.h"

#include <string.h>

#include "tally/err.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void seterr(char *why, size_t why_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *why, size_t why_size, const char *fmt, ...) {
    if (!why || why_size == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
}

size_t tally_window_per_record(int64_t size, int64_t slide) {
    return (size_t)(size / slide + (size % slide != 0));
}

int tally_window_check(int64_t size, int64_t slide, char *why, size_t why_size) {
    if (size <= 0) {
        seterr(why, why_size, "the window size (%" PRId64 " ms) must be positive", size);
        return -1;
    }
    if (slide <= 0) {
        seterr(why, why_size, "the slide (%" PRId64 " ms) must be positive", slide);
        return -1;
    }
    /* Spark's TimeWindow check, in its words. */
    if (slide > size) {
        seterr(why, why_size,
               "the slide duration (%" PRId64 " ms) must be less than or equal to the window duration "
               "(%" PRId64 " ms)", slide, size);
        return -1;
    }
    if (tally_window_per_record(size, slide) > TALLY_WINDOW_MAX_PER_RECORD) {
        seterr(why, why_size,
               "a record would count in %zu windows (window %" PRId64 " ms / slide %" PRId64
               " ms, rounded up); at most %d", tally_window_per_record(size, slide), size, slide,
               TALLY_WINDOW_MAX_PER_RECORD);
        return -1;
    }
    return 0;
}

bool tally_window_closed(int64_t start, int64_t size, int64_t watermark) {
    int64_t end;
    if (__builtin_add_overflow(start, size, &end)) return false; /* ends after every watermark */
    return end <= watermark;
}

/* The windows holding ts are start_i = last - i*slide for i = 0 .. n-1, last = ts - floorMod(ts,
 * slide), n = (size - 1 - r) / slide + 1: start_i + size > ts <=> r + i*slide < size. Those whose
 * start or end leaves int64 are skipped (they have the largest i, resp. i = 0 only near INT64_MAX). */
size_t tally_window_assign(int64_t ts, int64_t size, int64_t slide, int64_t *out_starts, size_t max) {
    int64_t r = ts % slide;
    if (r < 0) r += slide;
    int64_t last;
    if (__builtin_sub_overflow(ts, r, &last)) return 0; /* every start is below INT64_MIN */
    int64_t n = (size - 1 - r) / slide + 1;
    size_t cnt = 0;
    for (int64_t i = n - 1; i >= 0; i--) {
        int64_t start, off, end;
        if (__builtin_mul_overflow(i, slide, &off) || __builtin_sub_overflow(last, off, &start)) continue;
        if (__builtin_add_overflow(start, size, &end)) continue;
        if (cnt < max) out_starts[cnt] = start;
        cnt++;
    }
    return cnt;
}

size_t tally_window_assign_open(int64_t ts, int64_t size, int64_t slide, int64_t watermark,
                                int64_t *out_starts, size_t max, size_t *closed) {
    int64_t all[TALLY_WINDOW_MAX_PER_RECORD];
    size_t n = tally_window_assign(ts, size, slide, all, TALLY_WINDOW_MAX_PER_RECORD), open = 0;
    *closed = 0;
    for (size_t i = 0; i < n; i++) {
        if (tally_window_closed(all[i], size, watermark)) {
            (*closed)++;
            continue;
        }
        if (open < max) out_starts[open] = all[i];
        open++;
    }
    return open;
}

/* ---- watermark ------------------------------------------------------------------------------- */

static int64_t sat_sub(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r)) return b > 0 ? INT64_MIN : INT64_MAX;
    return r;
}

static int64_t sat_add(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

void tally_watermark_init(tally_watermark_t *wm, tally_watermark_policy_t policy, int64_t delay,
                          int64_t idle, int64_t close_idle, int64_t initial) {
    *wm = (tally_watermark_t){.policy = policy, .delay = delay, .idle = idle, .close_idle = close_idle,
                              .watermark = initial, .max_ts = TALLY_WATERMARK_NONE,
                              .last_input = TALLY_WATERMARK_NONE};
}

void tally_watermark_term(tally_watermark_t *wm) {
    free(wm->parts);
    wm->parts = NULL;
    wm->nparts = 0;
}

int tally_watermark_partitions(tally_watermark_t *wm, int n, int64_t now) {
    if (n <= wm->nparts) return 0;
    tally_watermark_part_t *grown = realloc(wm->parts, (size_t)n * sizeof(*grown));
    if (!grown) return TALLY_ENOMEM;
    for (int i = wm->nparts; i < n; i++) grown[i] = (tally_watermark_part_t){TALLY_WATERMARK_NONE, now};
    wm->parts = grown;
    wm->nparts = n;
    return 0;
}

void tally_watermark_observe(tally_watermark_t *wm, int p, int64_t ts, int64_t now) {
    tally_watermark_part_t *part = &wm->parts[p];
    if (ts > part->max_ts) part->max_ts = ts;
    if (ts > wm->max_ts) wm->max_ts = ts;
    /* The wall clock only moves forward here, whatever order the caller's threads report in. */
    if (now > part->last_input) part->last_input = now;
    if (now > wm->last_input) wm->last_input = now;
}

/* The min policy: the slowest active partition's max - delay. A partition without records yet
 * holds it back (Flink's split that has emitted nothing) until it is idle; when every partition is
 * idle, Flink's combined watermark stays where it is: NONE here. */
static int64_t min_candidate(const tally_watermark_t *wm, int64_t now) {
    int64_t low = INT64_MAX;
    bool any = false;
    for (int i = 0; i < wm->nparts; i++) {
        const tally_watermark_part_t *p = &wm->parts[i];
        if (wm->idle >= 0 && sat_sub(now, p->last_input) >= wm->idle) continue;
        any = true;
        if (p->max_ts == TALLY_WATERMARK_NONE) return TALLY_WATERMARK_NONE;
        if (p->max_ts < low) low = p->max_ts;
    }
    return any ? sat_sub(low, wm->delay) : TALLY_WATERMARK_NONE;
}

int64_t tally_watermark_advance(tally_watermark_t *wm, int64_t now) {
    if (wm->max_ts == TALLY_WATERMARK_NONE) return wm->watermark; /* nothing seen: nothing moves */
    int64_t cand = wm->policy == TALLY_WATERMARK_MAX ? sat_sub(wm->max_ts, wm->delay) : min_candidate(wm, now);
    if (cand > wm->watermark) wm->watermark = cand;
    /* window.close.idle.ms: after that long without any record, event time is taken to have kept
     * pace with the wall clock since the last record, from the greatest event time seen. */
    if (wm->close_idle >= 0) {
        int64_t quiet = sat_sub(now, wm->last_input);
        if (quiet >= wm->close_idle) {
            int64_t idle_cand = sat_add(sat_sub(wm->max_ts, wm->delay), quiet);
            if (idle_cand > wm->watermark) wm->watermark = idle_cand;
        }
    }
    return wm->watermark;
}

/* ---- state key ------------------------------------------------------------------------------- */

static void put_start(uint8_t *out, int64_t start) {
    uint64_t u = (uint64_t)start ^ (UINT64_C(1) << 63);
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)u;
        u >>= 8;
    }
}

size_t tally_window_key(uint8_t *out, int64_t start, const uint8_t *word, size_t len) {
    put_start(out, start);
    for (size_t i = 0; i < len; i++) out[TALLY_WINDOW_KEY_PREFIX + i] = word[i];
    return TALLY_WINDOW_KEY_PREFIX + len;
}

int tally_window_key_decode(const uint8_t *key, size_t klen, int64_t *start, const uint8_t **word,
                            size_t *len) {
    if (klen < TALLY_WINDOW_KEY_PREFIX) return -1;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u = u << 8 | key[i];
    u ^= UINT64_C(1) << 63;
    /* Two's complement back to signed without implementation-defined conversion. */
    *start = u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
    *word = key + TALLY_WINDOW_KEY_PREFIX;
    *len = klen - TALLY_WINDOW_KEY_PREFIX;
    return 0;
}

bool tally_window_key_range(int64_t from, int64_t to, uint8_t begin[TALLY_WINDOW_KEY_PREFIX],
                            uint8_t end[TALLY_WINDOW_KEY_PREFIX]) {
    if (from >= to) return false;
    put_start(begin, from);
    put_start(end, to); /* every key of start to - 1 sorts below the bare prefix of to */
    return true;
}

bool tally_window_key_closed_range(int64_t size, int64_t watermark, uint8_t begin[TALLY_WINDOW_KEY_PREFIX],
                                   uint8_t end[TALLY_WINDOW_KEY_PREFIX]) {
    int64_t last; /* the greatest closed start: end = start + size <= watermark */
    if (__builtin_sub_overflow(watermark, size, &last)) return false;
    return tally_window_key_range(INT64_MIN, last + 1, begin, end);
}

/* ---- output key ------------------------------------------------------------------------------ */

size_t tally_window_output_key(char *out, const uint8_t *key, size_t klen) {
    int64_t start;
    const uint8_t *word;
    size_t wl;
    if (tally_window_key_decode(key, klen, &start, &word, &wl)) return 0;
    char digits[24];
    size_t n = 0;
    uint64_t u = start < 0 ? (uint64_t)0 - (uint64_t)start : (uint64_t)start;
    do digits[n++] = (char)('0' + u % 10); while ((u /= 10) != 0);
    size_t o = 0;
    if (start < 0) out[o++] = '-';
    while (n) out[o++] = digits[--n];
    out[o++] = ' ';
    for (size_t i = 0; i < wl; i++) out[o++] = (char)word[i];
    return o;
}

void tally_window_output_key_word(const void *key, size_t klen, const void **word, size_t *len) {
    const char *k = key, *sp = klen ? memchr(k, ' ', klen) : NULL;
    *word = sp ? sp + 1 : k;
    *len = sp ? klen - (size_t)(sp + 1 - k) : klen;
}
