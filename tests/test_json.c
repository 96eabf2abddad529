/* SPDX-License-Identifier: MIT */
/* Unit tests of the JSON record encoder (src/json.c): every byte value, the escapes, UTF-8 that
 * passes through, invalid UTF-8 replaced per the maximal-subpart rule, counts, the length bound,
 * and random bytes checked against a reference written apart (tests/json_check.h); byte for byte
 * against the encoder as it was before its hand-written number formatter (sprintf); the windowed
 * record against hand-written strings and its timestamps against gmtime_r (tests/time_check.h). */
#include "harness.h"
#include "unit.h"
#include "json_check.h"
#include "time_check.h"

#include "tally/json.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>

#define FFFD "\xef\xbf\xbd"

/* Encodes the word with the count, checks the bound and the record syntax; returns the output in a
 * static buffer (NUL-terminated for messages) and its length in *out_len. */
static const char *encode(const void *word, size_t len, int64_t count, size_t *out_len) {
    static char out[TALLY_JSON_MAX(64) + 1];
    ASSERT(len <= 64);
    size_t n = tally_json_word_count(out, word, len, count);
    ASSERT(n <= TALLY_JSON_MAX(len));
    out[n] = '\0';
    uint8_t dec[TALLY_JSON_MAX(64)];
    size_t dl;
    int64_t c;
    if (!jc_record((const uint8_t *)out, n, dec, &dl, &c)) TH_FAIL("not a valid record: %s", out);
    ASSERT_EQ(c, count);
    *out_len = n;
    return out;
}

/* The JSON string body written for the word (between the quotes of "word"). */
static void expect_body(const void *word, size_t len, const char *body, size_t body_len) {
    size_t n;
    const char *out = encode(word, len, 7, &n);
    static const char head[] = "{\"word\":\"", tail[] = "\",\"count\":7}";
    ASSERT(n >= sizeof(head) - 1 + sizeof(tail) - 1);
    ASSERT_MEM_EQ(out, sizeof(head) - 1, head, sizeof(head) - 1);
    ASSERT_MEM_EQ(out + n - (sizeof(tail) - 1), sizeof(tail) - 1, tail, sizeof(tail) - 1);
    size_t bl = n - (sizeof(head) - 1) - (sizeof(tail) - 1);
    ASSERT_MEM_EQ(out + sizeof(head) - 1, bl, body, body_len);
    /* tally_json_escape alone writes the same body. */
    char esc[6 * 64 + 1];
    size_t el = tally_json_escape(esc, word, len);
    ASSERT(el <= 6 * len);
    ASSERT_MEM_EQ(esc, el, body, body_len);
}
#define EXPECT(word_lit, body_lit) expect_body(word_lit, sizeof(word_lit) - 1, body_lit, sizeof(body_lit) - 1)

static void test_every_byte(void) {
    for (int b = 0; b < 256; b++) {
        uint8_t w = (uint8_t)b;
        const char *named = NULL;
        switch (b) {
        case '"': named = "\\\""; break;
        case '\\': named = "\\\\"; break;
        case 0x08: named = "\\b"; break;
        case 0x0c: named = "\\f"; break;
        case 0x0a: named = "\\n"; break;
        case 0x0d: named = "\\r"; break;
        case 0x09: named = "\\t"; break;
        default: break;
        }
        char body[8];
        size_t bl;
        if (named) bl = (size_t)snprintf(body, sizeof(body), "%s", named);
        else if (b < 0x20) bl = (size_t)snprintf(body, sizeof(body), "\\u%04x", (unsigned)b);
        else if (b < 0x80) bl = (size_t)snprintf(body, sizeof(body), "%c", b); /* 0x7f (DEL) too */
        else bl = (size_t)snprintf(body, sizeof(body), FFFD); /* a lone byte >= 0x80 is never valid */
        expect_body(&w, 1, body, bl);
    }
    /* The six-byte escapes are lower-case hex; 0x1f is the last one. */
    EXPECT("\x1f", "\\u001f");
    EXPECT("\x01", "\\u0001");
    EXPECT("\x0b", "\\u000b");
    EXPECT("\x7f", "\x7f");
    EXPECT("/", "/");
    /* Empty word. */
    expect_body("", 0, "", 0);
    EXPECT("a\"b\\c\nd", "a\\\"b\\\\c\\nd");
}

static void test_valid_utf8_passes(void) {
    static const char *const valid[] = {
        "\xc2\x80",         /* U+0080 */
        "\xdf\xbf",         /* U+07FF */
        "\xe0\xa0\x80",     /* U+0800 */
        "\xed\x9f\xbf",     /* U+D7FF, last before the surrogates */
        "\xee\x80\x80",     /* U+E000, first after */
        "\xef\xbf\xbd",     /* U+FFFD itself */
        "\xef\xbf\xbf",     /* U+FFFF */
        "\xf0\x90\x80\x80", /* U+10000 */
        "\xf4\x8f\xbf\xbf", /* U+10FFFF */
        "\xc3\xa9t\xc3\xa9",  /* été */
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", /* 日本語 */
        "\xf0\x9f\x98\x80x\xf0\x9f\x98\x80",    /* 😀x😀 */
    };
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        expect_body(valid[i], strlen(valid[i]), valid[i], strlen(valid[i]));
}

static void test_invalid_utf8(void) {
    /* Overlongs: C0 and C1 are never valid, nor E0 80, F0 80: each byte its own U+FFFD. */
    EXPECT("\xc0\x80", FFFD FFFD);
    EXPECT("\xc1\xbf", FFFD FFFD);
    EXPECT("\xe0\x80\x80", FFFD FFFD FFFD);
    EXPECT("\xe0\x9f\xbf", FFFD FFFD FFFD);
    EXPECT("\xf0\x80\x80\x80", FFFD FFFD FFFD FFFD);
    EXPECT("\xf0\x8f\xbf\xbf", FFFD FFFD FFFD FFFD);
    /* Surrogates: ED A0 is not a valid prefix. */
    EXPECT("\xed\xa0\x80", FFFD FFFD FFFD);
    EXPECT("\xed\xbf\xbf", FFFD FFFD FFFD);
    EXPECT("\xed\xa0\x80\xed\xb0\x80", FFFD FFFD FFFD FFFD FFFD FFFD); /* a CESU-8 pair */
    /* Above U+10FFFF. */
    EXPECT("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);
    EXPECT("\xf5", FFFD);
    EXPECT("\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD);
    EXPECT("\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD);
    EXPECT("\xfe", FFFD);
    EXPECT("\xff", FFFD);
    /* Stray continuation bytes. */
    EXPECT("\x80", FFFD);
    EXPECT("\xbf", FFFD);
    EXPECT("a\x80\x80z", "a" FFFD FFFD "z");
    EXPECT("\xc3\xa9\xa9", "\xc3\xa9" FFFD);
    /* Truncated at the end: the valid prefix is one U+FFFD. */
    EXPECT("\xc3", FFFD);
    EXPECT("\xe2", FFFD);
    EXPECT("\xe2\x82", FFFD);
    EXPECT("\xf0", FFFD);
    EXPECT("\xf0\x9f", FFFD);
    EXPECT("\xf0\x9f\x98", FFFD);
    EXPECT("\xf4\x8f\xbf", FFFD);
    EXPECT("ab\xe2\x82", "ab" FFFD);
    /* Truncated in the middle: the prefix is one U+FFFD, the byte that cut it is read afresh. */
    EXPECT("\xf0\x9f\x98" "A", FFFD "A");
    EXPECT("\xe2\x82" "A", FFFD "A");
    EXPECT("\xc3" "A", FFFD "A");
    EXPECT("\xe2\x82\xc3\xa9", FFFD "\xc3\xa9");
    EXPECT("\xf0\x9f\x98\xf0\x9f\x98\x80", FFFD "\xf0\x9f\x98\x80");
    EXPECT("\xe2\x82\x22", FFFD "\\\"");
    EXPECT("\xe2\x82\n", FFFD "\\n");
    EXPECT("\xf0\x9f\x98\x80\x80", "\xf0\x9f\x98\x80" FFFD);
    /* Unicode 15 §3.9 table 3-8: "61 F1 80 80 E1 80 C2 62 80 63 80 BF 64". */
    EXPECT("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64",
           "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d");
}

static void test_counts(void) {
    static const struct { int64_t count; const char *text; } cases[] = {
        {0, "0"}, {1, "1"}, {42, "42"}, {-1, "-1"},
        {INT64_MAX, "9223372036854775807"}, {INT64_MIN, "-9223372036854775808"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[128];
        int wl = snprintf(want, sizeof(want), "{\"word\":\"w\",\"count\":%s}", cases[i].text);
        size_t n;
        const char *out = encode("w", 1, cases[i].count, &n);
        ASSERT_MEM_EQ(out, n, want, (size_t)wl);
    }
}

static void test_max_length(void) {
    /* The worst cases per byte: a control byte (6) and a lone high byte (3), with the longest count. */
    static const uint8_t worst[] = {0x01, 0x80, 0x1f, 0xff, '"', 0x00};
    for (size_t len = 0; len <= 64; len++)
        for (size_t k = 0; k < sizeof(worst); k++) {
            uint8_t w[64];
            memset(w, worst[k], len);
            size_t n;
            encode(w, len, INT64_MIN, &n);
            ASSERT(n <= TALLY_JSON_MAX(len));
        }
    /* Exact: 64 control bytes fill 6*64 body bytes. */
    uint8_t w[64];
    memset(w, 0x01, sizeof(w));
    size_t n;
    encode(w, sizeof(w), INT64_MAX, &n);
    ASSERT_EQ(n, 9 + 6 * 64 + 10 + 19 + 1);
    /* Nothing is written past TALLY_JSON_MAX(len), NUL included: a heap buffer of that exact size
     * lets AddressSanitizer and valgrind see an overflow. */
    for (size_t len = 0; len <= 16; len++) {
        char *out = malloc(TALLY_JSON_MAX(len));
        ASSERT(out);
        memset(w, 0x01, len);
        n = tally_json_word_count(out, w, len, INT64_MIN);
        ASSERT(n <= TALLY_JSON_MAX(len));
        free(out);
    }
}

static uint64_t rng_state = 0x15005eedULL;
static uint64_t rng(void) { return unit_splitmix64(&rng_state); }

/* Random bytes biased towards UTF-8 structure: leads, continuations, boundaries, ASCII. */
static uint8_t random_byte(void) {
    static const uint8_t interesting[] = {
        0x00, 0x1f, 0x20, '"', '\\', 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
        0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xfe, 0xff,
    };
    uint64_t r = rng();
    switch (r % 4) {
    case 0: return interesting[(r >> 8) % sizeof(interesting)];
    case 1: return (uint8_t)(0x80 | ((r >> 8) & 0x3f)); /* continuation */
    case 2: return (uint8_t)(0x20 + (r >> 8) % 95);     /* printable ASCII */
    default: return (uint8_t)(r >> 8);
    }
}

/* Valid UTF-8 of at most max bytes from random scalar values of every length; returns its length. */
static size_t random_valid(uint8_t *w, size_t max) {
    static const uint32_t lo[] = {0x00, 0x80, 0x800, 0x10000}, span[] = {0x80, 0x780, 0xF800, 0x100000};
    size_t n = 0;
    for (;;) {
        uint64_t r = rng();
        int k = (int)(r % 4);
        uint32_t cp = lo[k] + (uint32_t)((r >> 8) % span[k]);
        if (cp >= 0xD800 && cp <= 0xDFFF) cp -= 0x800; /* surrogates are not scalar values */
        uint8_t b[4];
        size_t l;
        if (cp < 0x80) {
            b[0] = (uint8_t)cp;
            l = 1;
        } else if (cp < 0x800) {
            b[0] = (uint8_t)(0xC0 | (cp >> 6));
            b[1] = (uint8_t)(0x80 | (cp & 0x3F));
            l = 2;
        } else if (cp < 0x10000) {
            b[0] = (uint8_t)(0xE0 | (cp >> 12));
            b[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            b[2] = (uint8_t)(0x80 | (cp & 0x3F));
            l = 3;
        } else {
            b[0] = (uint8_t)(0xF0 | (cp >> 18));
            b[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
            b[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            b[3] = (uint8_t)(0x80 | (cp & 0x3F));
            l = 4;
        }
        if (n + l > max) return n;
        memcpy(w + n, b, l);
        n += l;
    }
}

static void test_random(void) {
    enum { STRINGS = 20000, MAXLEN = 64 };
    size_t replaced = 0, passed = 0;
    for (int k = 0; k < STRINGS; k++) {
        uint8_t w[MAXLEN];
        size_t len = (size_t)(rng() % (MAXLEN + 1));
        if (k % 2) {
            for (size_t i = 0; i < len; i++) w[i] = random_byte();
        } else {
            len = random_valid(w, len);
            if (len && k % 4 == 0) w[rng() % len] = random_byte(); /* then maybe one bad byte */
        }
        int64_t count = (int64_t)rng();
        size_t n;
        const char *out = encode(w, len, count, &n);
        /* Decoded, the word is the input with maximal subparts replaced: exactly the reference. */
        uint8_t dec[TALLY_JSON_MAX(MAXLEN)], want[3 * MAXLEN];
        size_t dl, repl;
        int64_t c;
        ASSERT(jc_record((const uint8_t *)out, n, dec, &dl, &c));
        size_t wl = jc_utf8_sanitize(want, w, len, &repl);
        if (dl != wl || memcmp(dec, want, wl) != 0) {
            fprintf(stderr, "input:");
            for (size_t i = 0; i < len; i++) fprintf(stderr, " %02x", w[i]);
            TH_FAIL("\nstring %d: decoded output differs from the reference: %s", k, out);
        }
        if (repl) replaced++;
        else passed++;
        ASSERT_EQ(jc_utf8_valid(w, len), repl == 0);
    }
    /* Both kinds of input were exercised. */
    ASSERT_GT(replaced, 1000);
    ASSERT_GT(passed, 1000);
}

/* The reference in json_check.h agrees with the hand-written cases above (it checks the checker). */
static void test_reference_self_check(void) {
    static const struct { const char *in; size_t repl; } cases[] = {
        {"\xe2\x82", 1}, {"\xf0\x9f\x98" "A", 1}, {"\xed\xa0\x80", 3}, {"\xc0\x80", 2}, {"\xf5", 1},
        {"\xf4\x90\x80\x80", 4}, {"\xe0\x80\x80", 3}, {"\xf0\x80\x80\x80", 4}, {"\xf4\x8f\xbf\xbf", 0},
        {"\xed\x9f\xbf", 0}, {"\xef\xbf\xbf", 0}, {"\xc2\x80", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[32];
        size_t repl;
        jc_utf8_sanitize(out, (const uint8_t *)cases[i].in, strlen(cases[i].in), &repl);
        ASSERT_EQ(repl, cases[i].repl);
    }
}

/* ---- the encoder before round two of the performance work, kept as the byte-exact reference ---- */

static size_t old_utf8_seq(const uint8_t *s, size_t n, size_t *bad) {
    uint8_t c = s[0];
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i < need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need;
}

static size_t old_escape(char *out, const uint8_t *s, size_t len) {
    static const char hexdig[] = "0123456789abcdef";
    char *o = out;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c < 0x80) {
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                *o++ = 'u'; *o++ = '0'; *o++ = '0';
                *o++ = hexdig[c >> 4]; *o++ = hexdig[c & 15];
            }
            i++;
            continue;
        }
        size_t bad = 0, n = old_utf8_seq(s + i, len - i, &bad);
        if (n) {
            memcpy(o, s + i, n);
            o += n;
            i += n;
        } else {
            *o++ = (char)0xEF; *o++ = (char)0xBF; *o++ = (char)0xBD; /* U+FFFD */
            i += bad;
        }
    }
    return (size_t)(o - out);
}

static size_t old_word_count(char *out, const uint8_t *word, size_t len, int64_t count) {
    static const char head[] = "{\"word\":\"";
    char *o = out;
    memcpy(o, head, sizeof(head) - 1);
    o += sizeof(head) - 1;
    o += old_escape(o, word, len);
    o += sprintf(o, "\",\"count\":%" PRId64 "}", count);
    return (size_t)(o - out);
}

/* New and old encoder on the same word and count: the same bytes; the new one in a heap buffer of
 * exactly TALLY_JSON_MAX(len) bytes (AddressSanitizer, valgrind), the escape alone too. */
static void same_as_old(const uint8_t *w, size_t len, int64_t count) {
    char *got = malloc(TALLY_JSON_MAX(len)), *want = malloc(TALLY_JSON_MAX(len) + 1);
    char *eg = malloc(6 * len + 1), *ew = malloc(6 * len + 1);
    ASSERT(got && want && eg && ew);
    size_t ng = tally_json_word_count(got, w, len, count), nw = old_word_count(want, w, len, count);
    if (ng != nw || memcmp(got, want, nw) != 0) {
        fprintf(stderr, "input:");
        for (size_t i = 0; i < len; i++) fprintf(stderr, " %02x", w[i]);
        TH_FAIL("\ncount %" PRId64 ": new %.*s, old %s", count, (int)ng, got, want);
    }
    size_t eg_n = tally_json_escape(eg, w, len), ew_n = old_escape(ew, w, len);
    ASSERT_MEM_EQ(eg, eg_n, ew, ew_n);
    free(got);
    free(want);
    free(eg);
    free(ew);
}

static void test_same_as_old(void) {
    /* Counts: the edges, every power of ten and its neighbours, both signs. */
    int64_t counts[200];
    size_t nc = 0;
    counts[nc++] = 0;
    counts[nc++] = INT64_MAX;
    counts[nc++] = INT64_MIN;
    counts[nc++] = INT64_MIN + 1;
    counts[nc++] = INT64_MAX - 1;
    counts[nc++] = (int64_t)UINT32_MAX;
    counts[nc++] = (int64_t)UINT32_MAX + 1;
    counts[nc++] = -(int64_t)UINT32_MAX;
    counts[nc++] = -(int64_t)UINT32_MAX - 1;
    for (int64_t p = 1; nc + 6 <= 200; p *= 10) {
        counts[nc++] = p;
        counts[nc++] = p - 1;
        counts[nc++] = p + 1;
        counts[nc++] = -p;
        counts[nc++] = -p + 1;
        counts[nc++] = -p - 1;
        if (p > INT64_MAX / 10) break;
    }
    static const uint8_t words[][24] = {{'c', 'a', 't'}, {0}, {'"', '\\', 0x01, 0x7f, 0x80, 0xe2, 0x82},
                                        {'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q'}};
    static const size_t wlen[] = {3, 0, 7, 17};
    for (size_t i = 0; i < nc; i++)
        for (size_t k = 0; k < 4; k++) same_as_old(words[k], wlen[k], counts[i]);
    /* Every byte value at every place of an 8-byte-aligned run of plain ASCII (the 8-byte step). */
    uint8_t w[40];
    for (int b = 0; b < 256; b++)
        for (size_t len = 1; len <= 40; len++)
            for (size_t at = 0; at < len; at++) {
                memset(w, 'a' + (int)(len % 26), len);
                w[at] = (uint8_t)b;
                same_as_old(w, len, (int64_t)(at * 1000003u));
            }
    /* Random words (bytes, valid UTF-8, plain ASCII) of 0..64 bytes with random counts of any size. */
    for (int k = 0; k < 100000; k++) {
        uint8_t r[64];
        size_t len = (size_t)(rng() % 65);
        switch (k % 3) {
        case 0: for (size_t i = 0; i < len; i++) r[i] = random_byte(); break;
        case 1: len = random_valid(r, len); break;
        default: for (size_t i = 0; i < len; i++) r[i] = (uint8_t)(0x20 + rng() % 95); break;
        }
        uint64_t x = rng();
        int64_t count = (int64_t)(x >> (rng() % 64)); /* every number of digits */
        if (k % 2) count = -count;
        same_as_old(r, len, count);
    }
}

/* The windowed record as Spark's to_json(struct(window, word, count)) prints it (UTC). */
static void expect_window(int64_t start, int64_t end, const char *word, int64_t count, const char *want) {
    char out[TALLY_JSON_WINDOW_MAX(16) + 1];
    size_t len = strlen(word);
    ASSERT(len <= 16);
    size_t n = tally_json_window_word_count(out, start, end, (const uint8_t *)word, len, count);
    ASSERT(n <= TALLY_JSON_WINDOW_MAX(len));
    out[n] = '\0';
    ASSERT_STR_EQ(out, want);
}

static void expect_ts(int64_t ms, const char *want) {
    char out[TALLY_JSON_TIME_MAX + 1];
    size_t n = tally_json_timestamp(out, ms);
    ASSERT(n <= TALLY_JSON_TIME_MAX);
    out[n] = '\0';
    ASSERT_STR_EQ(out, want);
}

static void test_window_record(void) {
    /* The example. */
    expect_window(1796216400000, 1796217000000, "cat", 4,
                  "{\"window\":{\"start\":\"2026-12-02T13:00:00.000Z\",\"end\":\"2026-12-02T13:10:00.000Z\"},"
                  "\"word\":\"cat\",\"count\":4}");
    /* The word escaped as in the plain record; the count any int64. */
    expect_window(0, 1, "a\"b\\\n", INT64_MIN,
                  "{\"window\":{\"start\":\"1970-01-01T00:00:00.000Z\",\"end\":\"1970-01-01T00:00:00.001Z\"},"
                  "\"word\":\"a\\\"b\\\\\\n\",\"count\":-9223372036854775808}");
    expect_window(-1, 0, "", 0,
                  "{\"window\":{\"start\":\"1969-12-31T23:59:59.999Z\",\"end\":\"1970-01-01T00:00:00.000Z\"},"
                  "\"word\":\"\",\"count\":0}");
    /* Milliseconds always 3 digits, seconds and minutes 2. */
    expect_ts(1796216645007, "2026-12-02T13:04:05.007Z");
    expect_ts(1796216645070, "2026-12-02T13:04:05.070Z");
    expect_ts(1796216645700, "2026-12-02T13:04:05.700Z");
    /* Leap days of the proleptic Gregorian calendar (java.time; Spark 3 uses it for to_json). */
    expect_ts(951782400000, "2000-02-29T00:00:00.000Z");
    expect_ts(1709164800000, "2024-02-29T00:00:00.000Z");
    expect_ts(-2203891200000, "1900-03-01T00:00:00.000Z"); /* 1900 is not a leap year */
    expect_ts(-11670998400000, "1600-02-29T00:00:00.000Z");
    expect_ts(-12219292800000, "1582-10-15T00:00:00.000Z"); /* no Julian switch */
    expect_ts(-12219292800001, "1582-10-14T23:59:59.999Z");
    /* Years as Java's uuuu: 4 digits, '-' before year 0's predecessors, '+' past 9999. */
    expect_ts(-62135596800000, "0001-01-01T00:00:00.000Z");
    expect_ts(-62135596800001, "0000-12-31T23:59:59.999Z");
    expect_ts(-62167219200000, "0000-01-01T00:00:00.000Z");
    expect_ts(-62167219200001, "-0001-12-31T23:59:59.999Z");
    expect_ts(-62198755200000, "-0001-01-01T00:00:00.000Z");
    expect_ts(-377705116800000, "-9999-01-01T00:00:00.000Z");
    expect_ts(-377705116800001, "-10000-12-31T23:59:59.999Z");
    expect_ts(253402300799999, "9999-12-31T23:59:59.999Z");
    expect_ts(253402300800000, "+10000-01-01T00:00:00.000Z");
    /* The ends of int64, as Java prints Instant.ofEpochMilli(Long.MIN_VALUE / MAX_VALUE). */
    expect_ts(INT64_MAX, "+292278994-08-17T07:12:55.807Z");
    expect_ts(INT64_MIN, "-292275055-05-16T16:47:04.192Z");
    /* The longest record fits the bound. */
    char out[TALLY_JSON_WINDOW_MAX(1)];
    ASSERT(tally_json_window_word_count(out, INT64_MIN, INT64_MIN, (const uint8_t *)"\x01", 1, INT64_MIN) <=
           TALLY_JSON_WINDOW_MAX(1));
}

/* Timestamps against gmtime_r: every millisecond boundary that matters and random ones. */
static void test_timestamps_random(void) {
    char got[TALLY_JSON_TIME_MAX + 1], want[64];
    uint64_t seed = 2026;
    for (long i = 0; i < 400000; i++) {
        uint64_t r = unit_splitmix64(&seed);
        int64_t ms;
        switch (i % 4) {
        case 0: ms = (int64_t)r; break;                                                  /* anywhere */
        case 1: ms = (int64_t)(r % 1000000000000000ULL) - 500000000000000LL; break;     /* +-15850 years */
        case 2: ms = (int64_t)(r % 500000000000ULL) - 250000000000LL; break;            /* 1962..1977 */
        default: ms = ((int64_t)(r % 200000) - 100000) * 86400000 + (int64_t)(r >> 40) % 3 - 1; break; /* midnights */
        }
        size_t n = tally_json_timestamp(got, ms);
        ASSERT(n <= TALLY_JSON_TIME_MAX);
        got[n] = '\0';
        int w = tc_timestamp(want, ms);
        if (w < 0) TH_FAIL("gmtime_r failed for %" PRId64, ms);
        if (strcmp(got, want) != 0) TH_FAIL("%" PRId64 " ms: \"%s\", reference \"%s\"", ms, got, want);
    }
    for (int64_t d = 0; d < 2000; d++) {
        int64_t edges[] = {INT64_MIN + d, INT64_MAX - d, d - 1000};
        for (int k = 0; k < 3; k++) {
            size_t n = tally_json_timestamp(got, edges[k]);
            got[n] = '\0';
            ASSERT(tc_timestamp(want, edges[k]) >= 0);
            ASSERT_STR_EQ(got, want);
        }
    }
}

int main(void) {
    RUN(test_every_byte);
    RUN(test_valid_utf8_passes);
    RUN(test_invalid_utf8);
    RUN(test_counts);
    RUN(test_max_length);
    RUN(test_reference_self_check);
    RUN(test_random);
    RUN(test_same_as_old);
    RUN(test_window_record);
    RUN(test_timestamps_random);
    RUN_SUMMARY("json");
    return 0;
}
