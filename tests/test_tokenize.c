/* SPDX-License-Identifier: MIT */
/* Unit tests of the tokenizer (include/tally/tokenize.h, src/tokenize.c): the whitespace class of
 * every byte, edge cases, and agreement with a naive reference splitter on random input; every test
 * runs once per implementation (scalar, SSE2), and the two are compared on adversarial input. */
#include "harness.h"
#include "unit.h"

#include "tally/tokenize.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    size_t off, len;
} span_t;

/* Written without the module's table: the six ASCII whitespace bytes, by name. */
static bool ref_is_space(uint8_t c) {
    switch (c) {
    case ' ': case '\t': case '\n': case '\v': case '\f': case '\r': return true;
    default: return false;
    }
}

/* The reference: scans byte by byte, a word starts after whitespace (or at 0) and ends before
 * whitespace (or at len). Returns the number of words written into spans (at most max). */
static size_t ref_split(const uint8_t *s, size_t len, span_t *spans, size_t max) {
    size_t n = 0;
    bool in_word = false;
    for (size_t i = 0; i <= len; i++) {
        bool space = i == len || ref_is_space(s[i]);
        if (!space && !in_word) {
            ASSERT(n < max);
            spans[n].off = i;
            in_word = true;
        } else if (space && in_word) {
            spans[n].len = i - spans[n].off;
            n++;
            in_word = false;
        }
    }
    return n;
}

/* The implementation under test: main() runs the tests once for each. */
static tally_tokenizer_next_fn impl = tally_tokenizer_next_scalar;

/* Runs the tokenizer over s; returns the number of words, writing at most max spans. */
static size_t tok_split(const uint8_t *s, size_t len, span_t *spans, size_t max) {
    tally_tokenizer_t t;
    const uint8_t *w;
    size_t wl, n = 0;
    tally_tokenizer_init(&t, s, len);
    while (impl(&t, &w, &wl)) {
        ASSERT(w >= s && w + wl <= s + len);
        if (n < max) {
            spans[n].off = (size_t)(w - s);
            spans[n].len = wl;
        }
        n++;
    }
    /* Once done it stays done. */
    ASSERT(!impl(&t, &w, &wl));
    ASSERT(!impl(&t, &w, &wl));
    return n;
}

static void expect_words(const char *s, size_t len, const char *const *words, size_t cnt) {
    span_t spans[64];
    size_t n = tok_split((const uint8_t *)s, len, spans, 64);
    ASSERT_EQ(n, cnt);
    for (size_t i = 0; i < n; i++) ASSERT_MEM_EQ(s + spans[i].off, spans[i].len, words[i], strlen(words[i]));
}

static void test_byte_classes(void) {
    for (int b = 0; b < 256; b++) {
        bool ws = b == ' ' || b == '\t' || b == '\n' || b == 0x0b || b == 0x0c || b == '\r';
        if (ws != (tally_tokenize_space[b] != 0)) TH_FAIL("byte 0x%02x: table says %d", b, tally_tokenize_space[b]);
        span_t spans[4];
        /* Alone: no word, or a word of that one byte. */
        uint8_t one = (uint8_t)b;
        size_t n = tok_split(&one, 1, spans, 4);
        ASSERT_EQ(n, ws ? 0 : 1);
        if (!ws) ASSERT_EQ(spans[0].len, 1);
        /* Between two letters: splits them, or joins them into one word of three bytes. */
        uint8_t mid[3] = {'x', (uint8_t)b, 'y'};
        n = tok_split(mid, 3, spans, 4);
        if (ws) {
            ASSERT_EQ(n, 2);
            ASSERT_EQ(spans[0].off, 0);
            ASSERT_EQ(spans[0].len, 1);
            ASSERT_EQ(spans[1].off, 2);
            ASSERT_EQ(spans[1].len, 1);
        } else {
            ASSERT_EQ(n, 1);
            ASSERT_EQ(spans[0].off, 0);
            ASSERT_EQ(spans[0].len, 3);
        }
    }
}

static void test_empty(void) {
    span_t spans[1];
    uint8_t buf[1] = {'a'};
    ASSERT_EQ(tok_split(buf, 0, spans, 1), 0);
    ASSERT_EQ(tok_split(NULL, 0, spans, 1), 0);
    /* A NULL buffer is empty whatever the length says (a Kafka record with no value). */
    tally_tokenizer_t t;
    const uint8_t *w;
    size_t wl;
    tally_tokenizer_init(&t, NULL, 12345);
    ASSERT(!impl(&t, &w, &wl));
}

static void test_whitespace_only(void) {
    static const char ws[] = " \t\n\v\f\r  \r\n\t\t   \f\v";
    ASSERT_EQ(tok_split((const uint8_t *)ws, sizeof(ws) - 1, NULL, 0), 0);
    for (size_t len = 1; len < sizeof(ws); len++) ASSERT_EQ(tok_split((const uint8_t *)ws, len, NULL, 0), 0);
}

static void test_leading_trailing(void) {
    static const char *const ab[] = {"a", "b"};
    expect_words("a b", 3, ab, 2);
    expect_words("  a b", 5, ab, 2);
    expect_words("a b  ", 5, ab, 2);
    expect_words("\r\n\ta\v\fb\r\n", 9, ab, 2);
    static const char *const one[] = {"word"};
    expect_words("word", 4, one, 1);
    expect_words("\nword\n", 6, one, 1);
    static const char *const words[] = {"the", "quick,", "brown", "fox."};
    expect_words("  the quick,\tbrown\r\nfox.  ", 26, words, 4);
    /* The length bounds the line: bytes after it are not read. */
    expect_words("a bc", 3, ab, 2);
}

static void test_nul_and_invalid_utf8(void) {
    static const char s1[] = "a\0b c\0";
    static const char *const w1[] = {"a\0b", "c\0"};
    span_t spans[4];
    size_t n = tok_split((const uint8_t *)s1, sizeof(s1) - 1, spans, 4);
    ASSERT_EQ(n, 2);
    ASSERT_MEM_EQ(s1 + spans[0].off, spans[0].len, w1[0], 3);
    ASSERT_MEM_EQ(s1 + spans[1].off, spans[1].len, w1[1], 2);
    /* A lone NUL is a word. */
    n = tok_split((const uint8_t *)"\0", 1, spans, 4);
    ASSERT_EQ(n, 1);
    /* Invalid UTF-8 stays as it is; non-ASCII spaces (U+00A0, U+2003, U+0085) are word bytes. */
    static const char s2[] = "\xff\xfe \xc0\x80\t\xed\xa0\x80 x\xc2\xa0y \xe2\x80\x83 \xc2\x85";
    static const char *const w2[] = {"\xff\xfe", "\xc0\x80", "\xed\xa0\x80", "x\xc2\xa0y", "\xe2\x80\x83", "\xc2\x85"};
    expect_words(s2, sizeof(s2) - 1, w2, 6);
}

static void test_long_word(void) {
    size_t len = 1u << 20;
    uint8_t *buf = malloc(len + 4);
    ASSERT(buf);
    buf[0] = ' ';
    memset(buf + 1, 'a', len);
    buf[len + 1] = '\n';
    buf[len + 2] = 'z';
    span_t spans[3];
    size_t n = tok_split(buf, len + 3, spans, 3);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(spans[0].off, 1);
    ASSERT_EQ(spans[0].len, len);
    ASSERT_EQ(spans[1].off, len + 2);
    ASSERT_EQ(spans[1].len, 1);
    /* The whole buffer one word, no whitespace at all. */
    memset(buf, 0x80, len + 3);
    n = tok_split(buf, len + 3, spans, 3);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(spans[0].len, len + 3);
    free(buf);
}

static void test_many_words(void) {
    size_t words = 1000000, len = words * 2;
    uint8_t *buf = malloc(len);
    ASSERT(buf);
    static const uint8_t seps[] = {' ', '\t', '\n', '\v', '\f', '\r'};
    for (size_t i = 0; i < words; i++) {
        buf[2 * i] = (uint8_t)('a' + i % 26);
        buf[2 * i + 1] = seps[i % 6];
    }
    tally_tokenizer_t t;
    const uint8_t *w;
    size_t wl, n = 0;
    tally_tokenizer_init(&t, buf, len);
    while (impl(&t, &w, &wl)) {
        ASSERT_EQ(wl, 1);
        ASSERT_EQ(w - buf, 2 * n);
        ASSERT_EQ(*w, 'a' + n % 26);
        n++;
    }
    ASSERT_EQ(n, words);
    free(buf);
}

static uint64_t rng_state = 0x7a11e5eedULL;
static uint64_t rng(void) { return unit_splitmix64(&rng_state); }

static void test_random_vs_reference(void) {
    enum { STRINGS = 5000, MAXLEN = 300 };
    static const uint8_t ws[] = {' ', '\t', '\n', '\v', '\f', '\r'};
    uint8_t buf[MAXLEN];
    span_t want[MAXLEN], got[MAXLEN];
    size_t total_words = 0;
    for (int k = 0; k < STRINGS; k++) {
        size_t len = (size_t)(rng() % MAXLEN);
        unsigned mode = (unsigned)(rng() % 3);
        for (size_t i = 0; i < len; i++) {
            uint64_t r = rng();
            /* mode 0: any byte; 1: mostly whitespace; 2: mostly words */
            unsigned ws_pct = mode == 1 ? 70 : mode == 2 ? 10 : 0;
            if (r % 100 < ws_pct) buf[i] = ws[(r >> 8) % 6];
            else buf[i] = (uint8_t)(r >> 16);
        }
        size_t nw = ref_split(buf, len, want, MAXLEN);
        size_t ng = tok_split(buf, len, got, MAXLEN);
        if (nw != ng) TH_FAIL("string %d (len %zu): %zu words, reference says %zu", k, len, ng, nw);
        for (size_t i = 0; i < nw; i++)
            if (want[i].off != got[i].off || want[i].len != got[i].len)
                TH_FAIL("string %d word %zu: [%zu,+%zu), reference [%zu,+%zu)", k, i, got[i].off,
                        got[i].len, want[i].off, want[i].len);
        total_words += nw;
    }
    ASSERT_GT(total_words, 10000); /* the generator really made words */
}

/* ---- the two implementations against each other ----------------------------------------------- */

#ifdef TALLY_TOKENIZE_SSE2
enum { CMP_MAX = 512 };

/* Both implementations over s (copied into a buffer of exactly len bytes, so AddressSanitizer sees a
 * read past the end), plain and with the max.word.bytes rule for several limits: same words, same
 * drops. Returns the number of words. */
static size_t cmp_impls(const uint8_t *src, size_t len) {
    uint8_t *s = malloc(len ? len : 1);
    ASSERT(s);
    if (len) memcpy(s, src, len);
    span_t a[CMP_MAX], b[CMP_MAX];
    impl = tally_tokenizer_next_scalar;
    size_t na = tok_split(s, len, a, CMP_MAX);
    impl = tally_tokenizer_next_sse2;
    size_t nb = tok_split(s, len, b, CMP_MAX);
    if (na != nb) TH_FAIL("len %zu: scalar %zu words, sse2 %zu", len, na, nb);
    for (size_t i = 0; i < na && i < CMP_MAX; i++)
        if (a[i].off != b[i].off || a[i].len != b[i].len)
            TH_FAIL("len %zu word %zu: scalar [%zu,+%zu), sse2 [%zu,+%zu)", len, i, a[i].off, a[i].len, b[i].off,
                    b[i].len);
    static const size_t maxes[] = {0, 1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 100};
    for (size_t k = 0; k < sizeof(maxes) / sizeof(maxes[0]); k++) {
        tally_tokenizer_t ta, tb;
        tally_tokenizer_init(&ta, s, len);
        tally_tokenizer_init(&tb, s, len);
        uint64_t da = 0, db = 0;
        for (;;) {
            const uint8_t *wa = NULL, *wb = NULL;
            size_t la = 0, lb = 0;
            bool ga = tally_tokenizer_next_counted_with(&ta, tally_tokenizer_next_scalar, maxes[k], &wa, &la, &da);
            bool gb = tally_tokenizer_next_counted_with(&tb, tally_tokenizer_next_sse2, maxes[k], &wb, &lb, &db);
            ASSERT_EQ(ga, gb);
            ASSERT_EQ(da, db);
            if (!ga) break;
            ASSERT(wa == wb && la == lb && la <= maxes[k]);
        }
    }
    /* The build's tally_tokenizer_next_counted is one of them. */
    tally_tokenizer_t t;
    tally_tokenizer_init(&t, s, len);
    const uint8_t *w;
    size_t wl, n = 0;
    uint64_t dropped = 0;
    while (tally_tokenizer_next_counted(&t, SIZE_MAX, &w, &wl, &dropped)) n++;
    ASSERT_EQ(n, na);
    ASSERT_EQ(dropped, 0);
    free(s);
    return na;
}

/* Every byte value alone, in runs, and at the places the 16-byte scan cares about (first, last, the
 * 15/16/17th byte, the line's end) of lines of 0..100 bytes. */
static void test_impls_every_byte(void) {
    uint8_t buf[101];
    for (int b = 0; b < 256; b++) {
        for (size_t len = 0; len <= 100; len++) {
            memset(buf, b, len);
            cmp_impls(buf, len);
            size_t at[] = {0, 1, 14, 15, 16, 17, 31, 32, 33, len - 1, len - 2, len - 15, len - 16, len - 17};
            for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
                if (at[i] >= len) continue;
                memset(buf, 'x', len);
                buf[at[i]] = (uint8_t)b;
                cmp_impls(buf, len);
                memset(buf, ' ', len);
                buf[at[i]] = (uint8_t)b;
                cmp_impls(buf, len);
            }
        }
    }
}

/* One or two words placed at every offset and length around the 16-byte boundaries, in lines of
 * every length up to 100, padded with each whitespace byte or with more words. */
static void test_impls_boundaries(void) {
    static const uint8_t ws[] = {' ', '\t', '\n', '\v', '\f', '\r'};
    uint8_t buf[100];
    for (size_t len = 0; len <= 100; len++)
        for (size_t off = 0; off < len && off < 40; off++)
            for (size_t wl = 1; off + wl <= len && wl <= 40; wl++) {
                uint8_t pad = ws[(len + off + wl) % 6];
                memset(buf, pad, len);
                for (size_t i = 0; i < wl; i++) buf[off + i] = (uint8_t)(0x80 + i);
                ASSERT_EQ(cmp_impls(buf, len), 1);
                /* the word at the end of the line instead */
                memset(buf, pad, len);
                memset(buf + len - wl, 'z', wl);
                ASSERT_EQ(cmp_impls(buf, len), 1);
                /* a second word one whitespace byte after the first */
                if (off + wl + 1 < len) {
                    memset(buf, pad, len);
                    memset(buf + off, 'a', wl);
                    buf[off + wl + 1] = 'b';
                    ASSERT_EQ(cmp_impls(buf, len), 2);
                }
            }
}

/* Random lines of 0..100 bytes (and some longer): any bytes, mostly whitespace, mostly words, and
 * bytes drawn only from the edges of the whitespace class (0x08..0x0e, 0x1f..0x21, 0x00, 0xff). */
static void test_impls_random(void) {
    static const uint8_t ws[] = {' ', '\t', '\n', '\v', '\f', '\r'};
    static const uint8_t edge[] = {0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x1f, 0x20, 0x21, 0x00, 0xff, 0x89, 0xa0};
    uint8_t buf[CMP_MAX];
    size_t words = 0;
    for (int k = 0; k < 200000; k++) {
        size_t len = k % 50 == 0 ? (size_t)(rng() % CMP_MAX) : (size_t)(rng() % 101);
        unsigned mode = (unsigned)(rng() % 4);
        for (size_t i = 0; i < len; i++) {
            uint64_t r = rng();
            if (mode == 3) buf[i] = edge[(r >> 8) % sizeof(edge)];
            else if (r % 100 < (mode == 1 ? 70u : mode == 2 ? 10u : 0u)) buf[i] = ws[(r >> 8) % 6];
            else buf[i] = (uint8_t)(r >> 16);
        }
        words += cmp_impls(buf, len);
    }
    ASSERT_GT(words, 100000);
}
#endif

static void run_all(const char *name) {
    printf("# implementation: %s\n", name);
    RUN(test_byte_classes);
    RUN(test_empty);
    RUN(test_whitespace_only);
    RUN(test_leading_trailing);
    RUN(test_nul_and_invalid_utf8);
    RUN(test_long_word);
    RUN(test_many_words);
    RUN(test_random_vs_reference);
}

int main(void) {
    impl = tally_tokenizer_next_scalar;
    run_all("scalar");
#ifdef TALLY_TOKENIZE_SSE2
    impl = tally_tokenizer_next_sse2;
    run_all("sse2");
    RUN(test_impls_every_byte);
    RUN(test_impls_boundaries);
    RUN(test_impls_random);
#else
    printf("# no SSE2 in this build: the scalar implementation only\n");
#endif
    RUN_SUMMARY("tokenize");
    return 0;
}
