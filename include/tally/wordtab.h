/* SPDX-License-Identifier: MIT */
/* A worker's in-memory table of word counts: the cache of its shard of the state store, plus the
 * dirty flag that says a count changed since the last trigger. Owned by one worker thread. */
#ifndef TALLY_WORDTAB_H
#define TALLY_WORDTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tally_word_s {
    uint64_t hash;
    int64_t count;
    uint32_t len;
    uint8_t dirty;
    uint8_t bytes[];
} tally_word_t;

typedef struct tally_wordtab_s tally_wordtab_t;

tally_wordtab_t *tally_wordtab_new(void);
void tally_wordtab_destroy(tally_wordtab_t *t);

tally_word_t *tally_wordtab_find(tally_wordtab_t *t, uint64_t hash, const uint8_t *word, uint32_t len);
/* Adds a word that is not in the table; the entry's address is stable until clear/destroy. */
tally_word_t *tally_wordtab_insert(tally_wordtab_t *t, uint64_t hash, const uint8_t *word, uint32_t len,
                                   int64_t count);
/* Forgets every word (the state store still has them); keeps the memory for the next ones. */
void tally_wordtab_clear(tally_wordtab_t *t);

size_t tally_wordtab_size(const tally_wordtab_t *t);
size_t tally_wordtab_bytes(const tally_wordtab_t *t);

/* Calls fn for each entry, in no particular order. */
void tally_wordtab_foreach(tally_wordtab_t *t, void (*fn)(tally_word_t *w, void *opaque), void *opaque);

#endif
