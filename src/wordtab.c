/* SPDX-License-Identifier: MIT */
/* Open-addressing table of pointers into an arena of entries: lookups compare the stored hash first,
 * growth rehashes pointers only, and entries never move.
 *
 * A slot holds the entry's address with the top 16 bits of its hash in the address's top 16 bits,
 * which user-space addresses leave zero (48-bit virtual addresses on x86-64 and arm64). A probe
 * compares that tag before it reads the entry, so a slot of another word seldom costs a cache miss.
 * Should an address ever use those bits (57-bit address spaces, pointer tagging), the table drops
 * the tags for good and compares entries as before. */
#include "tally/wordtab.h"

#include <stdlib.h>
#include <string.h>

#define TAG_BITS (~UINT64_C(0) << 48)

#define ARENA_CHUNK (1u << 20)

typedef struct arena_chunk_s {
    struct arena_chunk_s *next;
    size_t used, cap;
    _Alignas(8) uint8_t data[];
} arena_chunk_t;

struct tally_wordtab_s {
    uint64_t *slots;    /* 0: empty; else address | (hash & tag_mask) */
    uint64_t tag_mask;  /* TAG_BITS, or 0 once an address had bits there */
    size_t mask;
    size_t count;
    arena_chunk_t *chunks;
    size_t arena_bytes;
};

tally_wordtab_t *tally_wordtab_new(void) {
    tally_wordtab_t *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->slots = calloc(1024, sizeof(*t->slots));
    if (!t->slots) { free(t); return NULL; }
    t->mask = 1023;
    t->tag_mask = TAG_BITS;
    return t;
}

static inline tally_word_t *slot_word(const tally_wordtab_t *t, uint64_t s) {
    return (tally_word_t *)(uintptr_t)(s & ~t->tag_mask);
}

static void free_chunks(tally_wordtab_t *t) {
    for (arena_chunk_t *c = t->chunks, *n; c; c = n) {
        n = c->next;
        free(c);
    }
    t->chunks = NULL;
    t->arena_bytes = 0;
}

void tally_wordtab_destroy(tally_wordtab_t *t) {
    if (!t) return;
    free_chunks(t);
    free(t->slots);
    free(t);
}

void tally_wordtab_clear(tally_wordtab_t *t) {
    free_chunks(t);
    memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
    t->count = 0;
}

tally_word_t *tally_wordtab_find(tally_wordtab_t *t, uint64_t hash, const uint8_t *word, uint32_t len) {
    size_t i = (size_t)hash & t->mask;
    uint64_t tag = hash & t->tag_mask;
    for (uint64_t s; (s = t->slots[i]); i = (i + 1) & t->mask) {
        if ((s & t->tag_mask) != tag) continue;
        tally_word_t *w = slot_word(t, s);
        if (w->hash == hash && w->len == len && memcmp(w->bytes, word, len) == 0) return w;
    }
    return NULL;
}

/* An address with bits under TAG_BITS: strip the tags (every address so far had none there). */
static void drop_tags(tally_wordtab_t *t) {
    for (size_t i = 0; i <= t->mask; i++) t->slots[i] &= ~t->tag_mask;
    t->tag_mask = 0;
}

static int grow(tally_wordtab_t *t) {
    size_t n = (t->mask + 1) * 2;
    uint64_t *s = calloc(n, sizeof(*s));
    if (!s) return -1;
    for (size_t i = 0; i <= t->mask; i++) {
        uint64_t v = t->slots[i];
        if (!v) continue;
        size_t j = (size_t)slot_word(t, v)->hash & (n - 1);
        while (s[j]) j = (j + 1) & (n - 1);
        s[j] = v;
    }
    free(t->slots);
    t->slots = s;
    t->mask = n - 1;
    return 0;
}

static void *arena_alloc(tally_wordtab_t *t, size_t size) {
    size = (size + 7u) & ~(size_t)7u;
    arena_chunk_t *c = t->chunks;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        c = malloc(sizeof(*c) + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = t->chunks;
        t->chunks = c;
        t->arena_bytes += sizeof(*c) + cap;
    }
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
    uint64_t addr = (uint64_t)(uintptr_t)w;
    if (addr & t->tag_mask) drop_tags(t);
    size_t i = (size_t)hash & t->mask;
    while (t->slots[i]) i = (i + 1) & t->mask;
    t->slots[i] = addr | (hash & t->tag_mask);
    t->count++;
    return w;
}

size_t tally_wordtab_size(const tally_wordtab_t *t) { return t->count; }

size_t tally_wordtab_bytes(const tally_wordtab_t *t) {
    return t->arena_bytes + (t->mask + 1) * sizeof(*t->slots);
}

void tally_wordtab_foreach(tally_wordtab_t *t, void (*fn)(tally_word_t *w, void *opaque), void *opaque) {
    for (size_t i = 0; i <= t->mask; i++)
        if (t->slots[i]) fn(slot_word(t, t->slots[i]), opaque);
}
