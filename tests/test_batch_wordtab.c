/* SPDX-License-Identifier: MIT */
/* Unit tests of the batch builder (src/batch.c: pre-combining, when a batch is full, words larger
 * than a batch) and of the word table (src/wordtab.c: insert, find, growth to a million words,
 * stable entries, foreach, clear). */
#include "harness.h"
#include "unit.h"

#include "tally/batch.h"
#include "tally/wordtab.h"

#include <stdbool.h>
#include <stdint.h>

/* A decent hash of an index: one splitmix64 step from it (z is a copy). */
static uint64_t mix(uint64_t z) { return unit_splitmix64(&z); }

/* FNV-1a: the tests' word hash (the engine's is xxhash; the modules only need equal words to have
 * equal hashes). */
static uint64_t hash_bytes(const void *p, size_t len) {
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}

static bool add(tally_batch_builder_t *bb, const char *w) {
    return tally_batch_builder_add(bb, hash_bytes(w, strlen(w)), (const uint8_t *)w, (uint32_t)strlen(w));
}

/* Walks the batch the way a worker does; checks layout and returns the record of `w` (or NULL). */
static tally_rec_t *batch_find(tally_batch_t *b, const void *w, uint32_t len, uint32_t *nrec_seen) {
    tally_rec_t *found = NULL;
    uint32_t n = 0;
    ASSERT_EQ(b->kind, TALLY_BATCH_WORDS);
    ASSERT(b->used <= b->cap);
    for (uint32_t off = 0; off < b->used; off += (uint32_t)tally_rec_size(tally_batch_rec(b, off)->len)) {
        tally_rec_t *r = tally_batch_rec(b, off);
        /* Records hold a uint64_t: each must be 8-byte aligned in memory, not only in the batch. */
        ASSERT_EQ((uintptr_t)r % 8, 0);
        ASSERT(off + tally_rec_size(r->len) <= b->used);
        ASSERT_EQ(r->hash, hash_bytes(r->bytes, r->len));
        ASSERT_GT(r->delta, 0);
        if (r->len == len && memcmp(r->bytes, w, len) == 0) {
            ASSERT(!found); /* each word once per batch */
            found = r;
        }
        n++;
    }
    ASSERT_EQ(n, b->nrec);
    if (nrec_seen) *nrec_seen = n;
    return found;
}

static void test_take_empty(void) {
    tally_batch_builder_t bb;
    tally_batch_builder_init(&bb);
    ASSERT(tally_batch_builder_take(&bb) == NULL);
    ASSERT(tally_batch_builder_take(&bb) == NULL);
    ASSERT(add(&bb, "x"));
    tally_batch_t *b = tally_batch_builder_take(&bb);
    ASSERT(b);
    ASSERT(tally_batch_builder_take(&bb) == NULL);
    tally_batch_destroy(b);
    tally_batch_builder_term(&bb);
    /* term frees a batch still in hand. */
    tally_batch_builder_init(&bb);
    ASSERT(add(&bb, "left behind"));
    tally_batch_builder_term(&bb);
    tally_batch_builder_term(&bb);
}

static void test_precombine(void) {
    tally_batch_builder_t bb;
    tally_batch_builder_init(&bb);
    static const char *const words[] = {"the", "cat", "the", "sat", "on", "the", "mat", "cat", "the"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) ASSERT(add(&bb, words[i]));
    tally_batch_t *b = tally_batch_builder_take(&bb);
    ASSERT(b);
    ASSERT_EQ(b->nrec, 5);
    ASSERT_EQ(batch_find(b, "the", 3, NULL)->delta, 4);
    ASSERT_EQ(batch_find(b, "cat", 3, NULL)->delta, 2);
    ASSERT_EQ(batch_find(b, "sat", 3, NULL)->delta, 1);
    ASSERT_EQ(batch_find(b, "on", 2, NULL)->delta, 1);
    ASSERT_EQ(batch_find(b, "mat", 3, NULL)->delta, 1);
    /* Records keep first-seen order. */
    ASSERT_MEM_EQ(tally_batch_rec(b, 0)->bytes, 3, "the", 3);
    ASSERT_EQ(b->used, 5 * tally_rec_size(3) - tally_rec_size(3) + tally_rec_size(2));
    tally_batch_destroy(b);

    /* A new batch starts with a clean index: no record of the old batch is combined into. */
    ASSERT(add(&bb, "the"));
    b = tally_batch_builder_take(&bb);
    ASSERT_EQ(b->nrec, 1);
    ASSERT_EQ(batch_find(b, "the", 3, NULL)->delta, 1);
    tally_batch_destroy(b);

    /* Equal hashes, different words (a collision) stay apart; so do a word and its prefix. */
    static const char *const coll[] = {"a", "b", "a", "ab", "c", "b", "a"};
    for (size_t i = 0; i < sizeof(coll) / sizeof(coll[0]); i++)
        ASSERT(tally_batch_builder_add(&bb, 42, (const uint8_t *)coll[i], (uint32_t)strlen(coll[i])));
    b = tally_batch_builder_take(&bb);
    ASSERT_EQ(b->nrec, 4);
    uint32_t deltas[4] = {0};
    for (uint32_t off = 0, i = 0; off < b->used; off += (uint32_t)tally_rec_size(tally_batch_rec(b, off)->len))
        deltas[i++] = tally_batch_rec(b, off)->delta;
    ASSERT_EQ(deltas[0], 3); /* a */
    ASSERT_EQ(deltas[1], 2); /* b */
    ASSERT_EQ(deltas[2], 1); /* ab */
    ASSERT_EQ(deltas[3], 1); /* c */
    tally_batch_destroy(b);

    /* Empty-looking bytes: NUL and invalid UTF-8 are words like any other. */
    static const uint8_t nul[] = {'a', 0, 'b'}, bad[] = {0xff, 0xfe};
    ASSERT(tally_batch_builder_add(&bb, hash_bytes(nul, 3), nul, 3));
    ASSERT(tally_batch_builder_add(&bb, hash_bytes(bad, 2), bad, 2));
    ASSERT(tally_batch_builder_add(&bb, hash_bytes(nul, 3), nul, 3));
    b = tally_batch_builder_take(&bb);
    ASSERT_EQ(batch_find(b, nul, 3, NULL)->delta, 2);
    ASSERT_EQ(batch_find(b, bad, 2, NULL)->delta, 1);
    tally_batch_destroy(b);
    tally_batch_builder_term(&bb);
}

static void test_full_by_records(void) {
    tally_batch_builder_t bb;
    tally_batch_builder_init(&bb);
    const uint32_t max = TALLY_BATCH_INDEX / 2;
    char w[32];
    for (uint32_t i = 0; i < max; i++) {
        snprintf(w, sizeof(w), "w%u", i);
        if (!add(&bb, w)) TH_FAIL("word %u of %u refused", i, max);
    }
    /* Full: a new word is refused, a repeat is still combined. */
    snprintf(w, sizeof(w), "w%u", max);
    ASSERT(!add(&bb, w));
    ASSERT(!add(&bb, w));
    ASSERT(add(&bb, "w0"));
    ASSERT(add(&bb, "w7"));
    tally_batch_t *b = tally_batch_builder_take(&bb);
    ASSERT_EQ(b->nrec, max);
    ASSERT(b->used < TALLY_BATCH_BYTES); /* full by records, not by bytes */
    ASSERT_EQ(batch_find(b, "w0", 2, NULL)->delta, 2);
    ASSERT_EQ(batch_find(b, "w7", 2, NULL)->delta, 2);
    ASSERT(batch_find(b, w, (uint32_t)strlen(w), NULL) == NULL);
    tally_batch_destroy(b);
    /* The refused word goes into the next batch. */
    ASSERT(add(&bb, w));
    b = tally_batch_builder_take(&bb);
    ASSERT_EQ(b->nrec, 1);
    tally_batch_destroy(b);

    /* Many words with one hash: a long probe chain still finds repeats. */
    for (uint32_t i = 0; i < max; i++) {
        snprintf(w, sizeof(w), "c%u", i);
        ASSERT(tally_batch_builder_add(&bb, 7, (const uint8_t *)w, (uint32_t)strlen(w)));
    }
    ASSERT(tally_batch_builder_add(&bb, 7, (const uint8_t *)"c1000", 5));
    ASSERT(!tally_batch_builder_add(&bb, 7, (const uint8_t *)"new", 3));
    b = tally_batch_builder_take(&bb);
    ASSERT_EQ(b->nrec, max);
    tally_batch_destroy(b);
    tally_batch_builder_term(&bb);
}

static void test_full_by_bytes(void) {
    tally_batch_builder_t bb;
    tally_batch_builder_init(&bb);
    enum { LEN = 1000 };
    uint8_t w[LEN];
    uint32_t fits = (uint32_t)(TALLY_BATCH_BYTES / tally_rec_size(LEN)), i;
    ASSERT(fits < TALLY_BATCH_INDEX / 2);
    for (i = 0;; i++) {
        memset(w, 'a' + (int)(i % 26), LEN);
        snprintf((char *)w, 8, "%06u", i);
        if (!tally_batch_builder_add(&bb, hash_bytes(w, LEN), w, LEN)) break;
    }
    ASSERT_EQ(i, fits);
    tally_batch_t *b = tally_batch_builder_take(&bb);
    ASSERT_EQ(b->nrec, fits);
    ASSERT_EQ(b->used, fits * tally_rec_size(LEN));
    ASSERT(b->used <= TALLY_BATCH_BYTES);
    ASSERT_EQ(b->cap, TALLY_BATCH_BYTES);
    batch_find(b, "", 0, NULL);
    tally_batch_destroy(b);

    /* A record of exactly TALLY_BATCH_BYTES fills a standard batch alone. */
    uint32_t exact = (uint32_t)(TALLY_BATCH_BYTES - sizeof(tally_rec_t));
    ASSERT_EQ(tally_rec_size(exact), TALLY_BATCH_BYTES);
    uint8_t *big = malloc(exact);
    ASSERT(big);
    memset(big, 'e', exact);
    ASSERT(tally_batch_builder_add(&bb, 1, big, exact));
    ASSERT(!add(&bb, "x"));
    b = tally_batch_builder_take(&bb);
    ASSERT_EQ(b->nrec, 1);
    ASSERT_EQ(b->cap, TALLY_BATCH_BYTES);
    tally_batch_destroy(b);
    free(big);
    tally_batch_builder_term(&bb);
}

static void test_word_larger_than_batch(void) {
    tally_batch_builder_t bb;
    tally_batch_builder_init(&bb);
    uint32_t len = TALLY_BATCH_BYTES * 3 + 5;
    uint8_t *big = malloc(len);
    ASSERT(big);
    for (uint32_t i = 0; i < len; i++) big[i] = (uint8_t)(i * 31);
    uint64_t h = hash_bytes(big, len);

    /* Into an empty builder: a batch of its own size; repeats combine; nothing else joins it. */
    ASSERT(tally_batch_builder_add(&bb, h, big, len));
    ASSERT(tally_batch_builder_add(&bb, h, big, len));
    ASSERT(!add(&bb, "small"));
    tally_batch_t *b = tally_batch_builder_take(&bb);
    ASSERT(b);
    ASSERT_EQ(b->nrec, 1);
    ASSERT_EQ(b->cap, tally_rec_size(len));
    ASSERT_EQ(b->used, tally_rec_size(len));
    tally_rec_t *r = batch_find(b, big, len, NULL);
    ASSERT(r);
    ASSERT_EQ(r->delta, 2);
    ASSERT_EQ(r->len, len);
    tally_batch_destroy(b);

    /* Behind small words in a standard batch: refused, then alone in the next one. */
    ASSERT(add(&bb, "small"));
    ASSERT(!tally_batch_builder_add(&bb, h, big, len));
    b = tally_batch_builder_take(&bb);
    ASSERT_EQ(b->nrec, 1);
    ASSERT_EQ(b->cap, TALLY_BATCH_BYTES);
    tally_batch_destroy(b);
    ASSERT(tally_batch_builder_add(&bb, h, big, len));
    b = tally_batch_builder_take(&bb);
    ASSERT_EQ(b->nrec, 1);
    ASSERT_EQ(batch_find(b, big, len, NULL)->delta, 1);
    tally_batch_destroy(b);

    /* 1 MiB (the largest max.word.bytes). */
    uint32_t mib = 1u << 20;
    uint8_t *huge = calloc(1, mib);
    ASSERT(huge);
    ASSERT(tally_batch_builder_add(&bb, 9, huge, mib));
    b = tally_batch_builder_take(&bb);
    ASSERT_EQ(b->nrec, 1);
    ASSERT_EQ(b->used, tally_rec_size(mib));
    tally_batch_destroy(b);
    free(huge);
    free(big);
    tally_batch_builder_term(&bb);
}

static void test_barrier(void) {
    tally_batch_t *b = tally_batch_barrier_new(17, false);
    ASSERT(b);
    ASSERT_EQ(b->kind, TALLY_BATCH_BARRIER);
    ASSERT_EQ(b->epoch, 17);
    ASSERT(!b->final);
    ASSERT_EQ(b->nrec, 0);
    ASSERT_EQ(b->used, 0);
    tally_batch_destroy(b);
    b = tally_batch_barrier_new(UINT64_MAX, true);
    ASSERT(b);
    ASSERT(b->final);
    ASSERT(b->epoch == UINT64_MAX);
    tally_batch_destroy(b);
    tally_batch_destroy(NULL);
}

/* ---- wordtab ---- */

static void test_wordtab_basic(void) {
    tally_wordtab_t *t = tally_wordtab_new();
    ASSERT(t);
    ASSERT_EQ(tally_wordtab_size(t), 0);
    ASSERT_GT(tally_wordtab_bytes(t), 0);
    ASSERT(tally_wordtab_find(t, hash_bytes("a", 1), (const uint8_t *)"a", 1) == NULL);
    tally_word_t *a = tally_wordtab_insert(t, hash_bytes("a", 1), (const uint8_t *)"a", 1, 5);
    ASSERT(a);
    ASSERT_EQ(a->count, 5);
    ASSERT_EQ(a->len, 1);
    ASSERT_EQ(a->dirty, 0);
    ASSERT_EQ(a->hash, hash_bytes("a", 1));
    ASSERT_MEM_EQ(a->bytes, 1, "a", 1);
    ASSERT_EQ((uintptr_t)a % 8, 0);
    ASSERT(tally_wordtab_find(t, hash_bytes("a", 1), (const uint8_t *)"a", 1) == a);
    ASSERT_EQ(tally_wordtab_size(t), 1);
    /* Same hash, other bytes or length: not found. */
    ASSERT(tally_wordtab_find(t, hash_bytes("a", 1), (const uint8_t *)"b", 1) == NULL);
    ASSERT(tally_wordtab_find(t, hash_bytes("a", 1), (const uint8_t *)"ab", 2) == NULL);
    /* Collisions: three words, one hash. */
    tally_word_t *x = tally_wordtab_insert(t, 99, (const uint8_t *)"x", 1, 1);
    tally_word_t *y = tally_wordtab_insert(t, 99, (const uint8_t *)"y", 1, 2);
    tally_word_t *xy = tally_wordtab_insert(t, 99, (const uint8_t *)"xy", 2, 3);
    ASSERT(tally_wordtab_find(t, 99, (const uint8_t *)"x", 1) == x);
    ASSERT(tally_wordtab_find(t, 99, (const uint8_t *)"y", 1) == y);
    ASSERT(tally_wordtab_find(t, 99, (const uint8_t *)"xy", 2) == xy);
    ASSERT(tally_wordtab_find(t, 99, (const uint8_t *)"z", 1) == NULL);
    /* Entries are the caller's to update. */
    x->count += 10;
    x->dirty = 1;
    ASSERT_EQ(tally_wordtab_find(t, 99, (const uint8_t *)"x", 1)->count, 11);
    /* NUL and invalid UTF-8 bytes, negative and extreme counts. */
    static const uint8_t odd[] = {0, 0xff, 0, 0xc0};
    tally_word_t *o = tally_wordtab_insert(t, hash_bytes(odd, 4), odd, 4, INT64_MAX);
    ASSERT(tally_wordtab_find(t, hash_bytes(odd, 4), odd, 4) == o);
    ASSERT_EQ(o->count, INT64_MAX);
    ASSERT_EQ(tally_wordtab_size(t), 5);
    tally_wordtab_destroy(t);
    tally_wordtab_destroy(NULL);
}

typedef struct {
    size_t calls;
    int64_t sum;
    uint8_t *seen;  /* by word index */
    size_t n;
} visit_t;

static void visit(tally_word_t *w, void *opaque) {
    visit_t *v = opaque;
    v->calls++;
    v->sum += w->count;
    size_t idx = (size_t)w->count;
    ASSERT(idx < v->n);
    ASSERT_EQ(v->seen[idx], 0);
    v->seen[idx] = 1;
}

static int word_of(char *buf, size_t size, size_t i) { return snprintf(buf, size, "word-%zu", i); }

static void test_wordtab_million(void) {
    const size_t n = 1000000;
    tally_wordtab_t *t = tally_wordtab_new();
    ASSERT(t);
    size_t keep = 1000;
    tally_word_t **first = malloc(keep * sizeof(*first));
    ASSERT(first);
    char w[32];
    size_t bytes0 = tally_wordtab_bytes(t);
    for (size_t i = 0; i < n; i++) {
        int len = word_of(w, sizeof(w), i);
        /* Every 1000th word shares one hash with the others of its kind: long chains too. */
        uint64_t h = i % 1000 == 0 ? 12345 + (i % 7) : mix(i);
        tally_word_t *e = tally_wordtab_insert(t, h, (const uint8_t *)w, (uint32_t)len, (int64_t)i);
        ASSERT(e);
        if (i < keep) first[i] = e;
    }
    ASSERT_EQ(tally_wordtab_size(t), n);
    ASSERT_GT(tally_wordtab_bytes(t), bytes0);
    /* Found after growth, at the same addresses as when inserted, unchanged. */
    for (size_t i = 0; i < n; i++) {
        int len = word_of(w, sizeof(w), i);
        uint64_t h = i % 1000 == 0 ? 12345 + (i % 7) : mix(i);
        tally_word_t *e = tally_wordtab_find(t, h, (const uint8_t *)w, (uint32_t)len);
        if (!e) TH_FAIL("word %zu not found", i);
        ASSERT_EQ(e->count, i);
        ASSERT_MEM_EQ(e->bytes, e->len, w, (size_t)len);
        if (i < keep) ASSERT(e == first[i]);
    }
    /* Absent words with present hashes. */
    for (size_t i = 0; i < 1000; i++) {
        int len = snprintf(w, sizeof(w), "absent-%zu", i);
        ASSERT(tally_wordtab_find(t, mix(i), (const uint8_t *)w, (uint32_t)len) == NULL);
        ASSERT(tally_wordtab_find(t, 12345 + i % 7, (const uint8_t *)w, (uint32_t)len) == NULL);
    }
    /* foreach: each entry once. */
    visit_t v = {.seen = calloc(n, 1), .n = n};
    ASSERT(v.seen);
    tally_wordtab_foreach(t, visit, &v);
    ASSERT_EQ(v.calls, n);
    ASSERT_EQ(v.sum, (int64_t)(n * (n - 1) / 2));
    free(v.seen);

    /* clear: empty and usable again, its memory kept for the next words (a partition's sums are
     * filled and emptied every epoch): filling it again allocates nothing more. */
    size_t full = tally_wordtab_bytes(t);
    tally_wordtab_clear(t);
    ASSERT_EQ(tally_wordtab_size(t), 0);
    ASSERT_EQ(tally_wordtab_bytes(t), full);
    for (size_t i = 0; i < n; i++) {
        int wl = word_of(w, sizeof(w), i);
        ASSERT(tally_wordtab_insert(t, mix(i), (const uint8_t *)w, (uint32_t)wl, (int64_t)i));
    }
    ASSERT_EQ(tally_wordtab_size(t), n);
    ASSERT_EQ(tally_wordtab_bytes(t), full);
    for (size_t i = 0; i < n; i += 997) {
        int wl = word_of(w, sizeof(w), i);
        tally_word_t *f = tally_wordtab_find(t, mix(i), (const uint8_t *)w, (uint32_t)wl);
        ASSERT(f && f->count == (int64_t)i);
    }
    tally_wordtab_clear(t);
    int len = word_of(w, sizeof(w), 5);
    ASSERT(tally_wordtab_find(t, mix(5), (const uint8_t *)w, (uint32_t)len) == NULL);
    visit_t none = {.seen = NULL, .n = 0};
    tally_wordtab_foreach(t, visit, &none);
    ASSERT_EQ(none.calls, 0);
    tally_word_t *e = tally_wordtab_insert(t, mix(5), (const uint8_t *)w, (uint32_t)len, 77);
    ASSERT(e);
    ASSERT(tally_wordtab_find(t, mix(5), (const uint8_t *)w, (uint32_t)len) == e);
    ASSERT_EQ(tally_wordtab_size(t), 1);
    free(first);
    tally_wordtab_destroy(t);
}

static void test_wordtab_big_words(void) {
    tally_wordtab_t *t = tally_wordtab_new();
    ASSERT(t);
    /* Larger than an arena chunk (1 MiB), and mixed with small ones before and after. */
    uint32_t len = (1u << 20) + 100;
    uint8_t *big = malloc(len);
    ASSERT(big);
    memset(big, 'b', len);
    tally_word_t *s1 = tally_wordtab_insert(t, 1, (const uint8_t *)"s1", 2, 1);
    tally_word_t *b = tally_wordtab_insert(t, hash_bytes(big, len), big, len, 2);
    tally_word_t *s2 = tally_wordtab_insert(t, 2, (const uint8_t *)"s2", 2, 3);
    ASSERT(s1 && b && s2);
    ASSERT(tally_wordtab_find(t, hash_bytes(big, len), big, len) == b);
    ASSERT(tally_wordtab_find(t, 1, (const uint8_t *)"s1", 2) == s1);
    ASSERT(tally_wordtab_find(t, 2, (const uint8_t *)"s2", 2) == s2);
    ASSERT_MEM_EQ(b->bytes, b->len, big, len);
    ASSERT_GT(tally_wordtab_bytes(t), len);
    /* Clear then destroy, and clear twice: nothing leaks or is freed twice. */
    tally_wordtab_clear(t);
    tally_wordtab_clear(t);
    ASSERT(tally_wordtab_insert(t, hash_bytes(big, len), big, len, 4));
    free(big);
    tally_wordtab_destroy(t);
}

int main(void) {
    RUN(test_take_empty);
    RUN(test_precombine);
    RUN(test_full_by_records);
    RUN(test_full_by_bytes);
    RUN(test_word_larger_than_batch);
    RUN(test_barrier);
    RUN(test_wordtab_basic);
    RUN(test_wordtab_million);
    RUN(test_wordtab_big_words);
    RUN_SUMMARY("batch_wordtab");
    return 0;
}
