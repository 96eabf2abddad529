/* SPDX-License-Identifier: MIT */
/* Batches of (word, hash, delta) that a partition thread hands to a worker over a ring, and the
 * barriers of the epoch protocol. Repeats of a word inside one batch are pre-combined into one
 * record with a larger delta, so a worker touches each word once per batch. */
#ifndef TALLY_BATCH_H
#define TALLY_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TALLY_BATCH_BYTES (64u * 1024u)
#define TALLY_BATCH_INDEX 2048u /* pre-combine slots; a batch is full at half of them */

typedef enum { TALLY_BATCH_WORDS = 0, TALLY_BATCH_BARRIER } tally_batch_kind_t;

typedef struct tally_rec_s {
    uint64_t hash;
    uint32_t len;
    uint32_t delta;
    uint8_t bytes[];
} tally_rec_t;

typedef struct tally_batch_s {
    tally_batch_kind_t kind;
    bool final;        /* barrier: the partition thread stops after it */
    uint64_t epoch;    /* barrier: the epoch it closes */
    uint32_t used;     /* bytes of records */
    uint32_t cap;
    uint32_t nrec;
    _Alignas(8) uint8_t data[]; /* records, each padded to 8 bytes; aligned for tally_rec_t.hash */
} tally_batch_t;

static inline size_t tally_rec_size(uint32_t len) {
    return (sizeof(tally_rec_t) + len + 7u) & ~(size_t)7u;
}

/* Walk: for (off = 0; off < b->used; off += tally_rec_size(r->len)) r = tally_batch_rec(b, off) */
static inline tally_rec_t *tally_batch_rec(tally_batch_t *b, uint32_t off) {
    return (tally_rec_t *)(void *)(b->data + off);
}

tally_batch_t *tally_batch_barrier_new(uint64_t epoch, bool final);
void tally_batch_destroy(tally_batch_t *b);

/* Owned by one partition thread; one builder per destination worker. */
typedef struct tally_batch_builder_s {
    tally_batch_t *cur;
    uint32_t index[TALLY_BATCH_INDEX]; /* record offset + 1, 0 = empty */
} tally_batch_builder_t;

void tally_batch_builder_init(tally_batch_builder_t *bb);
void tally_batch_builder_term(tally_batch_builder_t *bb);
/* Adds n occurrences (add: one). Returns false (nothing added) when the batch is full: take it and add again.
 * Returns false with no batch to take only on allocation failure. */
bool tally_batch_builder_add_n(tally_batch_builder_t *bb, uint64_t hash, const uint8_t *word, uint32_t len, uint32_t n);
static inline bool tally_batch_builder_add(tally_batch_builder_t *bb, uint64_t hash, const uint8_t *word, uint32_t len) {
    return tally_batch_builder_add_n(bb, hash, word, len, 1);
}
/* Hands over the batch in hand (NULL when empty); the builder starts a new one on the next add. */
tally_batch_t *tally_batch_builder_take(tally_batch_builder_t *bb);

#endif
