/* SPDX-License-Identifier: MIT */
/* Bounded top-K: entries in a fixed array, a min-heap of entry indices ordered worst first, and an
 * open-addressing index (linear probing, backward-shift deletion) from word to entry. */
#include "tally/topk.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "tally/err.h"

typedef struct {
    uint64_t hash;
    int64_t count;
    uint8_t *word;
    size_t len;
    size_t heap_pos;
} entry_t;

struct tally_topk_s {
    size_t cap, n;
    entry_t *e;         /* [cap]; the first n are in use */
    size_t *heap;       /* [cap] entry indices; heap[0] is the worst */
    uint32_t *slots;    /* [mask + 1] entry index + 1; 0 = empty */
    size_t mask;
};

tally_topk_t *tally_topk_new(size_t cap) {
    if (cap == 0) return NULL;
    tally_topk_t *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    size_t nslots = 16;
    while (nslots < cap * 2) nslots *= 2;
    t->cap = cap;
    t->mask = nslots - 1;
    t->e = calloc(cap, sizeof(*t->e));
    t->heap = calloc(cap, sizeof(*t->heap));
    t->slots = calloc(nslots, sizeof(*t->slots));
    if (!t->e || !t->heap || !t->slots || cap > UINT32_MAX - 1) {
        tally_topk_destroy(t);
        return NULL;
    }
    return t;
}

void tally_topk_clear(tally_topk_t *t) {
    for (size_t i = 0; i < t->n; i++) free(t->e[i].word);
    t->n = 0;
    memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
}

void tally_topk_destroy(tally_topk_t *t) {
    if (!t) return;
    if (t->e && t->slots) tally_topk_clear(t);
    free(t->e);
    free(t->heap);
    free(t->slots);
    free(t);
}

size_t tally_topk_size(const tally_topk_t *t) { return t->n; }
size_t tally_topk_cap(const tally_topk_t *t) { return t->cap; }

/* True when a ranks below b: a lower count, or the same count and a bytewise greater word. */
static bool worse(const entry_t *a, const entry_t *b) {
    if (a->count != b->count) return a->count < b->count;
    size_t m = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->word, b->word, m);
    if (c) return c > 0;
    return a->len > b->len;
}

static void heap_set(tally_topk_t *t, size_t pos, size_t idx) {
    t->heap[pos] = idx;
    t->e[idx].heap_pos = pos;
}

static void sift_up(tally_topk_t *t, size_t pos) {
    size_t idx = t->heap[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (!worse(&t->e[idx], &t->e[t->heap[parent]])) break;
        heap_set(t, pos, t->heap[parent]);
        pos = parent;
    }
    heap_set(t, pos, idx);
}

static void sift_down(tally_topk_t *t, size_t pos) {
    size_t idx = t->heap[pos];
    for (;;) {
        size_t l = pos * 2 + 1, r = l + 1, m = pos;
        const entry_t *best = &t->e[idx];
        if (l < t->n && worse(&t->e[t->heap[l]], best)) { m = l; best = &t->e[t->heap[l]]; }
        if (r < t->n && worse(&t->e[t->heap[r]], best)) m = r;
        if (m == pos) break;
        heap_set(t, pos, t->heap[m]);
        pos = m;
    }
    heap_set(t, pos, idx);
}

static size_t slot_find(const tally_topk_t *t, uint64_t h, const uint8_t *word, size_t len, bool *found) {
    for (size_t s = h & t->mask;; s = (s + 1) & t->mask) {
        uint32_t v = t->slots[s];
        if (!v) {
            *found = false;
            return s;
        }
        const entry_t *e = &t->e[v - 1];
        if (e->hash == h && e->len == len && memcmp(e->word, word, len) == 0) {
            *found = true;
            return s;
        }
    }
}

/* Removes the index slot of entry idx, shifting back the run that follows (no tombstones). */
static void slot_remove(tally_topk_t *t, size_t idx) {
    bool found;
    size_t s = slot_find(t, t->e[idx].hash, t->e[idx].word, t->e[idx].len, &found);
    if (!found) return;
    t->slots[s] = 0;
    for (size_t j = (s + 1) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
        size_t home = t->e[t->slots[j] - 1].hash & t->mask;
        /* The entry at j may move into the hole at s unless its home lies cyclically in (s, j]. */
        bool stays = s <= j ? (home > s && home <= j) : (home > s || home <= j);
        if (stays) continue;
        t->slots[s] = t->slots[j];
        t->slots[j] = 0;
        s = j;
    }
}

int tally_topk_offer(tally_topk_t *t, const uint8_t *word, size_t len, int64_t count) {
    uint64_t h = XXH3_64bits(word, len);
    bool found;
    size_t s = slot_find(t, h, word, len, &found);
    if (found) {
        entry_t *e = &t->e[t->slots[s] - 1];
        int64_t old = e->count;
        e->count = count;
        if (count >= old) sift_down(t, e->heap_pos);
        else sift_up(t, e->heap_pos);
        return 0;
    }
    entry_t cand = {.hash = h, .count = count, .word = (uint8_t *)word, .len = len};
    if (t->n == t->cap && !worse(&t->e[t->heap[0]], &cand)) return 0;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return TALLY_ENOMEM;
    memcpy(copy, word, len);
    cand.word = copy;
    size_t idx;
    if (t->n < t->cap) {
        idx = t->n++;
        t->e[idx] = cand;
        heap_set(t, idx, idx);
        sift_up(t, idx);
    } else {
        idx = t->heap[0];
        slot_remove(t, idx);
        free(t->e[idx].word);
        t->e[idx] = cand;
        heap_set(t, 0, idx);
        sift_down(t, 0);
    }
    s = slot_find(t, h, copy, len, &found);
    t->slots[s] = (uint32_t)idx + 1;
    return 0;
}

static int cmp_best(const void *a, const void *b, void *arg) {
    const tally_topk_t *t = arg;
    const entry_t *x = &t->e[*(const size_t *)a], *y = &t->e[*(const size_t *)b];
    return worse(y, x) ? -1 : worse(x, y) ? 1 : 0;
}

int tally_topk_best(tally_topk_t *t, size_t n, tally_topk_cb fn, void *opaque) {
    if (n > t->n) n = t->n;
    if (n == 0) return 0;
    size_t *order = malloc(t->n * sizeof(*order));
    if (!order) return TALLY_ENOMEM;
    for (size_t i = 0; i < t->n; i++) order[i] = i;
    qsort_r(order, t->n, sizeof(*order), cmp_best, t);
    for (size_t i = 0; i < n; i++) fn(t->e[order[i]].word, t->e[order[i]].len, t->e[order[i]].count, opaque);
    free(order);
    return 0;
}
