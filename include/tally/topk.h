/* SPDX-License-Identifier: MIT */
/* The top words: a bounded map of the `cap` words with the highest latest counts seen. Fed with the
 * committed (word, count) lists of each epoch. Exact for the best n <= cap words, because counts only
 * grow: a word left out has a count at most the map's minimum when it was last offered, and any later
 * change of its count offers it again. Owned by one thread (control). */
#ifndef TALLY_TOPK_H
#define TALLY_TOPK_H

#include <stddef.h>
#include <stdint.h>

typedef struct tally_topk_s tally_topk_t;

/* cap >= 1. NULL when out of memory. */
tally_topk_t *tally_topk_new(size_t cap);
void tally_topk_destroy(tally_topk_t *t);
void tally_topk_clear(tally_topk_t *t);
size_t tally_topk_size(const tally_topk_t *t);
size_t tally_topk_cap(const tally_topk_t *t);

/* The word's latest count. Returns 0, or TALLY_ENOMEM (the map is unchanged). */
int tally_topk_offer(tally_topk_t *t, const uint8_t *word, size_t len, int64_t count);

/* Calls fn for the best min(n, size) words, highest count first (ties: bytewise smaller word first). */
typedef void (*tally_topk_cb)(const uint8_t *word, size_t len, int64_t count, void *opaque);
int tally_topk_best(tally_topk_t *t, size_t n, tally_topk_cb fn, void *opaque);

#endif
