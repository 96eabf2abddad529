/* SPDX-License-Identifier: MIT */
/* Splitting a line into words: maximal runs of bytes that are not ASCII whitespace
 * (space, \t, \n, \v, \f, \r). Everything else, NUL and invalid UTF-8 included, is part of a word. */
#ifndef TALLY_TOKENIZE_H
#define TALLY_TOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const uint8_t tally_tokenize_space[256];

typedef struct tally_tokenizer_s {
    const uint8_t *p;
    const uint8_t *end;
} tally_tokenizer_t;

static inline void tally_tokenizer_init(tally_tokenizer_t *t, const void *buf, size_t len) {
    t->p = (const uint8_t *)buf;
    t->end = buf ? t->p + len : t->p; /* NULL + 0 is undefined behaviour in C */
}

/* Sets *word and *len to the next word; false when the line has no more. */
static inline bool tally_tokenizer_next(tally_tokenizer_t *t, const uint8_t **word, size_t *len) {
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

/* The one rule for what is counted, shared by the partition threads and recovery's replay: the next
 * word of at most max bytes; longer words are skipped and added to *dropped (never counted). */
static inline bool tally_tokenizer_next_counted(tally_tokenizer_t *t, size_t max, const uint8_t **word, size_t *len,
                                                uint64_t *dropped) {
    while (tally_tokenizer_next(t, word, len)) {
        if (*len <= max) return true;
        (*dropped)++;
    }
    return false;
}

#endif
