/* SPDX-License-Identifier: MIT */
/* Word batches with pre-combining of repeats (a small open-addressing index over the batch). */
#include "tally/batch.h"

#include <stdlib.h>
#include <string.h>

static tally_batch_t *batch_new(uint32_t cap) {
    tally_batch_t *b = malloc(sizeof(*b) + cap);
    if (!b) return NULL;
    b->kind = TALLY_BATCH_WORDS;
    b->final = false;
    b->epoch = 0;
    b->used = 0;
    b->cap = cap;
    b->nrec = 0;
    return b;
}

tally_batch_t *tally_batch_barrier_new(uint64_t epoch, bool final) {
    tally_batch_t *b = batch_new(0);
    if (!b) return NULL;
    b->kind = TALLY_BATCH_BARRIER;
    b->epoch = epoch;
    b->final = final;
    return b;
}

void tally_batch_destroy(tally_batch_t *b) { free(b); }

void tally_batch_builder_init(tally_batch_builder_t *bb) {
    bb->cur = NULL;
    memset(bb->index, 0, sizeof(bb->index));
}

void tally_batch_builder_term(tally_batch_builder_t *bb) {
    free(bb->cur);
    bb->cur = NULL;
}

bool tally_batch_builder_add_n(tally_batch_builder_t *bb, uint64_t hash, const uint8_t *word, uint32_t len, uint32_t n) {
    size_t need = tally_rec_size(len);
    tally_batch_t *b = bb->cur;
    if (!b) {
        /* A word larger than a standard batch travels alone in a batch of its own size. */
        b = bb->cur = batch_new(need > TALLY_BATCH_BYTES ? (uint32_t)need : TALLY_BATCH_BYTES);
        if (!b) return false;
        memset(bb->index, 0, sizeof(bb->index));
    }
    uint32_t mask = TALLY_BATCH_INDEX - 1, slot = (uint32_t)hash & mask;
    for (;;) {
        uint32_t at = bb->index[slot];
        if (!at) break;
        tally_rec_t *r = tally_batch_rec(b, at - 1);
        if (r->hash == hash && r->len == len && memcmp(r->bytes, word, len) == 0) {
            if (r->delta > UINT32_MAX - n) return false; /* a new batch takes it */
            r->delta += n;
            return true;
        }
        slot = (slot + 1) & mask;
    }
    if (b->used + need > b->cap || b->nrec >= TALLY_BATCH_INDEX / 2) return false;
    tally_rec_t *r = tally_batch_rec(b, b->used);
    r->hash = hash;
    r->len = len;
    r->delta = n;
    memcpy(r->bytes, word, len);
    bb->index[slot] = b->used + 1;
    b->used += (uint32_t)need;
    b->nrec++;
    return true;
}

tally_batch_t *tally_batch_builder_take(tally_batch_builder_t *bb) {
    tally_batch_t *b = bb->cur;
    bb->cur = NULL;
    if (b && b->nrec == 0) {
        free(b);
        return NULL;
    }
    return b;
}
