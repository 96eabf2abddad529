/* SPDX-License-Identifier: MIT */
/* Open-addressing table of pointers into an arena of entries: lookups compare the stored hash first,
 * growth rehashes pointers only, and entries never move. */
#include "tally/wordtab.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK (1u << 20)

typedef struct arena_chunk_s {
    struct arena_chunk_s *next;
    size_t used, cap;
    _Alignas(8) uint8_t data[];
} arena_chunk_t;

struct tally_wordtab_s {
    tally_word_t **slots;
    size_t mask;
    size_t count;
    arena_chunk_t *chunks;        /* in allocation order; clear keeps them for the next words */
    arena_chunk_t *cur, *last;    /* the chunk allocated from, the list's tail */
    size_t arena_bytes;
};

tally_wordtab_t *tally_wordtab_new(void) {
    tally_wordtab_t *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->slots = calloc(1024, sizeof(*t->slots));
    if (!t->slots) { free(t); return NULL; }
    t->mask = 1023;
    return t;
}

static void free_chunks(tally_wordtab_t *t) {
    for (arena_chunk_t *c = t->chunks, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    t->chunks = t->cur = t->last = NULL;
    t->arena_bytes = 0;
}

void tally_wordtab_destroy(tally_wordtab_t *t) {
    if (!t) return;
    free_chunks(t);
    free(t->slots);
    free(t);
}

/* Keeps the arena: a table that is filled and emptied again and again (a partition's sums of an
 * epoch) reuses its chunks instead of asking malloc for megabytes (mmap, page faults) each time. */
void tally_wordtab_clear(tally_wordtab_t *t) {
    for (arena_chunk_t *c = t->chunks; c; c = c->next) c->used = 0;
    t->cur = t->chunks;
    memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
    t->count = 0;
}

tally_word_t *tally_wordtab_find(tally_wordtab_t *t, uint64_t hash, const uint8_t *word, uint32_t len) {
    size_t i = (size_t)hash & t->mask;
    for (tally_word_t *w; (w = t->slots[i]); i = (i + 1) & t->mask)
        if (w->hash == hash && w->len == len && memcmp(w->bytes, word, len) == 0) return w;
    return NULL;
}

static int grow(tally_wordtab_t *t) {
    size_t n = (t->mask + 1) * 2;
    tally_word_t **s = calloc(n, sizeof(*s));
    if (!s) return -1;
    for (size_t i = 0; i <= t->mask; i++) {
        tally_word_t *w = t->slots[i];
        if (!w) continue;
        size_t j = (size_t)w->hash & (n - 1);
        while (s[j]) j = (j + 1) & (n - 1);
        s[j] = w;
    }
    free(t->slots);
    t->slots = s;
    t->mask = n - 1;
    return 0;
}

static void *arena_alloc(tally_wordtab_t *t, size_t size) {
    size = (size + 7u) & ~(size_t)7u;
    arena_chunk_t *c = t->cur;
    while (c && c->cap - c->used < size) c = c->next;
    if (!c) {
        size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        c = malloc(sizeof(*c) + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = NULL;
        if (t->last) t->last->next = c;
        else t->chunks = c;
        t->last = c;
        t->arena_bytes += sizeof(*c) + cap;
    }
    t->cur = c;
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

tally_word_t *tally_wordtab_insert(tally_wordtab_t *t, uint64_t hash, const uint8_t *word, uint32_t len,
                                   int64_t count) {
    if ((t->count + 1) * 4 > (t->mask + 1) * 3 && grow(t) != 0) return NULL;
    tally_word_t *w = arena_alloc(t, sizeof(*w) + len);
    if (!w) return NULL;
    w->hash = hash;
    w->count = count;
    w->len = len;
    w->dirty = 0;
    memcpy(w->bytes, word, len);
    size_t i = (size_t)hash & t->mask;
    while (t->slots[i]) i = (i + 1) & t->mask;
    t->slots[i] = w;
    t->count++;
    return w;
}

size_t tally_wordtab_size(const tally_wordtab_t *t) { return t->count; }

size_t tally_wordtab_bytes(const tally_wordtab_t *t) {
    return t->arena_bytes + (t->mask + 1) * sizeof(*t->slots);
}

void tally_wordtab_foreach(tally_wordtab_t *t, void (*fn)(tally_word_t *w, void *opaque), void *opaque) {
    for (size_t i = 0; i <= t->mask; i++)
        if (t->slots[i]) fn(t->slots[i], opaque);
}
