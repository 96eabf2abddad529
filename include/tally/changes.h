/* SPDX-License-Identifier: MIT */
/* A change list: (key, count) records back to back, each [u32 len][i64 count][key bytes]. A worker's
 * changed keys of an epoch (in key order, worker.c), which the state writer merges into RocksDB
 * (state.h), or the windows an epoch closed (append mode). Walk it with tally_changes_next. */
#ifndef TALLY_CHANGES_H
#define TALLY_CHANGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t *buf;
    size_t len, cap, n;           /* bytes used, allocated; records */
} tally_changes_t;

/* Appends a record; false when out of memory (the list is unchanged). */
bool tally_changes_add(tally_changes_t *c, const uint8_t *key, uint32_t len, int64_t count);
static inline void tally_changes_clear(tally_changes_t *c) { c->len = c->n = 0; }
/* Frees the buffer; the list is empty (and usable) again. */
void tally_changes_free(tally_changes_t *c);
/*   for (size_t off = 0; tally_changes_next(c, &off, &key, &len, &count);) ... */
static inline bool tally_changes_next(const tally_changes_t *c, size_t *off, const uint8_t **key, uint32_t *len,
                                      int64_t *count) {
    if (*off >= c->len) return false;
    memcpy(len, c->buf + *off, 4);
    memcpy(count, c->buf + *off + 4, 8);
    *key = c->buf + *off + 12;
    *off += 12 + (size_t)*len;
    return true;
}

#endif
