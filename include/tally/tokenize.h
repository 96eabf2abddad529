/* SPDX-License-Identifier: MIT */
/* Splitting a line into words: maximal runs of bytes that are not ASCII whitespace
 * (space, \t, \n, \v, \f, \r). Everything else, NUL and invalid UTF-8 included, is part of a word.
 *
 * Two implementations with the same results: a byte-table loop (tally_tokenizer_next_scalar) and,
 * where SSE2 exists (always on x86-64), a scan of 16 bytes at a time (tally_tokenizer_next_sse2).
 * tally_tokenizer_next is the fastest one built; the tests run both and compare. */
#ifndef TALLY_TOKENIZE_H
#define TALLY_TOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __SSE2__
#include <emmintrin.h>
#define TALLY_TOKENIZE_SSE2 1
#endif

extern const uint8_t tally_tokenize_space[256];

typedef struct tally_tokenizer_s {
    const uint8_t *p;
    const uint8_t *end;
    const uint8_t *base; /* the line's first byte: near the end the SIMD scan loads its last 16 bytes */
} tally_tokenizer_t;

static inline void tally_tokenizer_init(tally_tokenizer_t *t, const void *buf, size_t len) {
    t->p = (const uint8_t *)buf;
    t->end = buf ? t->p + len : t->p; /* NULL + 0 is undefined behaviour in C */
    t->base = t->p;
}

/* Sets *word and *len to the next word; false when the line has no more. One byte at a time. */
static inline bool tally_tokenizer_next_scalar(tally_tokenizer_t *t, const uint8_t **word, size_t *len) {
    const uint8_t *p = t->p, *end = t->end;
    while (p < end && tally_tokenize_space[*p]) p++;
    if (p == end) { t->p = p; return false; }
    const uint8_t *start = p;
    while (p < end && !tally_tokenize_space[*p]) p++;
    *word = start;
    *len = (size_t)(p - start);
    t->p = p;
    return true;
}

#ifdef TALLY_TOKENIZE_SSE2
/* Bit i set when byte i of the 16 at p is whitespace: 0x20, or 0x09..0x0d (c - 9 <= 4 unsigned). */
static inline unsigned tally_tokenize_ws16(const uint8_t *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i d = _mm_sub_epi8(v, _mm_set1_epi8(9));
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(4)), d);
    __m128i sp = _mm_cmpeq_epi8(v, _mm_set1_epi8(' '));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(ctl, sp));
}

/* The mask for the bytes p .. p+15 of a line of at least 16 bytes, p < end. Within the last 16 bytes
 * it loads those (never past the end: AddressSanitizer and page ends) and marks bytes past the end
 * as whitespace, which ends a word there and starts none. */
static inline unsigned tally_tokenize_ws16_at(const tally_tokenizer_t *t, const uint8_t *p) {
    size_t have = (size_t)(t->end - p);
    if (have >= 16) return tally_tokenize_ws16(p);
    return ((tally_tokenize_ws16(t->end - 16) >> (16 - have)) | (0xffffu << have)) & 0xffffu;
}

/* As tally_tokenizer_next_scalar, 16 bytes a step; lines under 16 bytes take the scalar loop. */
static inline bool tally_tokenizer_next_sse2(tally_tokenizer_t *t, const uint8_t **word, size_t *len) {
    const uint8_t *p = t->p, *end = t->end;
    if (end - t->base < 16) return tally_tokenizer_next_scalar(t, word, len);
    unsigned m, s;
    if (p == end) return false;
    for (;;) { /* skip whitespace; p never goes past the end, not even unread */
        m = tally_tokenize_ws16_at(t, p);
        unsigned w = ~m & 0xffffu;
        if (w) { s = (unsigned)__builtin_ctz(w); break; }
        if (end - p <= 16) { t->p = end; return false; }
        p += 16;
    }
    const uint8_t *start = p + s;
    m &= 0xffffu << s; /* whitespace after the word's first byte, in the same 16 */
    while (!m) {
        if (end - p <= 16) { p = end; goto out; } /* the word runs to the end of the line */
        p += 16;
        m = tally_tokenize_ws16_at(t, p);
    }
    p += __builtin_ctz(m);
out:
    *word = start;
    *len = (size_t)(p - start);
    t->p = p;
    return true;
}
#endif

/* Sets *word and *len to the next word; false when the line has no more. */
static inline bool tally_tokenizer_next(tally_tokenizer_t *t, const uint8_t **word, size_t *len) {
#ifdef TALLY_TOKENIZE_SSE2
    return tally_tokenizer_next_sse2(t, word, len);
#else
    return tally_tokenizer_next_scalar(t, word, len);
#endif
}

typedef bool (*tally_tokenizer_next_fn)(tally_tokenizer_t *t, const uint8_t **word, size_t *len);

/* The counting rule over a given implementation (the tests pass each one; inlined, the call is direct). */
static inline bool tally_tokenizer_next_counted_with(tally_tokenizer_t *t, tally_tokenizer_next_fn next, size_t max,
                                                     const uint8_t **word, size_t *len, uint64_t *dropped) {
    while (next(t, word, len)) {
        if (*len <= max) return true;
        (*dropped)++;
    }
    return false;
}

/* The one rule for what is counted, shared by the partition threads and recovery's replay: the next
 * word of at most max bytes; longer words are skipped and added to *dropped (never counted). */
static inline bool tally_tokenizer_next_counted(tally_tokenizer_t *t, size_t max, const uint8_t **word, size_t *len,
                                                uint64_t *dropped) {
    return tally_tokenizer_next_counted_with(t, tally_tokenizer_next, max, word, len, dropped);
}

#endif
