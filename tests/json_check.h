/* SPDX-License-Identifier: MIT */
/* Checks of JSON output written apart from src/json.c, for test_json and fuzz_json: a UTF-8
 * validator (code point arithmetic, not byte-range tables), a JSON string parser that decodes
 * escapes, and a reference of the "maximal subpart" replacement of invalid UTF-8. */
#ifndef TALLY_TEST_JSON_CHECK_H
#define TALLY_TEST_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Sequence length announced by a lead byte's high bits; 0 for a continuation byte or 11111xxx. */
static inline size_t jc_lead_len(uint8_t c) {
    if ((c & 0x80) == 0x00) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 0;
}

static inline uint32_t jc_min_cp(size_t n) { return n == 1 ? 0 : n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000; }
static inline uint32_t jc_max_cp(size_t n) { return n == 1 ? 0x7F : n == 2 ? 0x7FF : n == 3 ? 0xFFFF : 0x10FFFF; }

/* True when s[0..n) is a complete, well-formed UTF-8 sequence of one scalar value. */
static inline bool jc_utf8_one(const uint8_t *s, size_t n) {
    if (n == 0 || jc_lead_len(s[0]) != n) return false;
    uint32_t cp = n == 1 ? s[0] : (uint32_t)(s[0] & (0x7F >> n));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < jc_min_cp(n) || cp > jc_max_cp(n)) return false;
    return !(cp >= 0xD800 && cp <= 0xDFFF);
}

/* True when s[0..k) (k < full length) can still be completed into a well-formed sequence: the code
 * points its free bits can reach overlap the scalar values of that length. */
static inline bool jc_utf8_prefix(const uint8_t *s, size_t k) {
    size_t n = k ? jc_lead_len(s[0]) : 0;
    if (n < 2 || k >= n) return false;
    uint32_t cp = s[0] & (0x7F >> n);
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    unsigned free_bits = 6u * (unsigned)(n - k);
    uint32_t lo = cp << free_bits, hi = lo | ((1u << free_bits) - 1u);
    uint32_t vlo = jc_min_cp(n), vhi = jc_max_cp(n);
    if (lo < vlo) lo = vlo;
    if (hi > vhi) hi = vhi;
    if (lo > hi) return false;
    /* [lo, hi] is non-empty; it fails only when it lies inside the surrogates. */
    return !(lo >= 0xD800 && hi <= 0xDFFF);
}

/* True when the n bytes are valid UTF-8. */
static inline bool jc_utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        size_t l = jc_lead_len(s[i]);
        if (l == 0 || l > n - i || !jc_utf8_one(s + i, l)) return false;
        i += l;
    }
    return true;
}

/* The reference replacement: writes s with every maximal subpart of an ill-formed sequence replaced
 * by EF BF BD into out (3*n bytes suffice); returns the length, and the number of U+FFFD in *repl. */
static inline size_t jc_utf8_sanitize(uint8_t *out, const uint8_t *s, size_t n, size_t *repl) {
    size_t i = 0, o = 0, r = 0;
    while (i < n) {
        size_t l = jc_lead_len(s[i]);
        if (l && l <= n - i && jc_utf8_one(s + i, l)) {
            for (size_t k = 0; k < l; k++) out[o++] = s[i + k];
            i += l;
            continue;
        }
        size_t bad = 1;
        for (size_t k = 2; k <= 3 && k <= n - i; k++)
            if (jc_utf8_prefix(s + i, k)) bad = k;
        out[o++] = 0xEF;
        out[o++] = 0xBF;
        out[o++] = 0xBD;
        r++;
        i += bad;
    }
    if (repl) *repl = r;
    return o;
}

static inline int jc_hex(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parses a JSON string starting at its opening quote s[*pos]; decodes it into out (at most as many
 * bytes as it spans) and sets *out_len; moves *pos past the closing quote. False when the syntax is
 * wrong: raw control byte, unknown escape, bad \u, unpaired surrogate escape, missing quote. */
static inline bool jc_json_string(const uint8_t *s, size_t n, size_t *pos, uint8_t *out, size_t *out_len) {
    size_t i = *pos, o = 0;
    if (i >= n || s[i] != '"') return false;
    i++;
    for (;;) {
        if (i >= n) return false;
        uint8_t c = s[i++];
        if (c == '"') break;
        if (c < 0x20) return false;
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        if (i >= n) return false;
        c = s[i++];
        switch (c) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            uint32_t cp = 0;
            for (int k = 0; k < 4; k++) {
                if (i >= n || jc_hex(s[i]) < 0) return false;
                cp = cp * 16 + (uint32_t)jc_hex(s[i++]);
            }
            if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo = 0;
                if (i + 6 > n || s[i] != '\\' || s[i + 1] != 'u') return false;
                for (int k = 2; k < 6; k++) {
                    if (jc_hex(s[i + (size_t)k]) < 0) return false;
                    lo = lo * 16 + (uint32_t)jc_hex(s[i + (size_t)k]);
                }
                if (lo < 0xDC00 || lo > 0xDFFF) return false;
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp < 0x80) {
                out[o++] = (uint8_t)cp;
            } else if (cp < 0x800) {
                out[o++] = (uint8_t)(0xC0 | (cp >> 6));
                out[o++] = (uint8_t)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                out[o++] = (uint8_t)(0xE0 | (cp >> 12));
                out[o++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                out[o++] = (uint8_t)(0x80 | (cp & 0x3F));
            } else {
                out[o++] = (uint8_t)(0xF0 | (cp >> 18));
                out[o++] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
                out[o++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                out[o++] = (uint8_t)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: return false;
        }
    }
    *pos = i;
    *out_len = o;
    return true;
}

/* Parses a whole record {"word":"...","count":N} exactly as tally writes it (no whitespace):
 * valid UTF-8, the word decoded into word_out (at least n bytes) and the count. */
static inline bool jc_record(const uint8_t *s, size_t n, uint8_t *word_out, size_t *word_len, int64_t *count) {
    static const char head[] = "{\"word\":", mid[] = ",\"count\":";
    size_t i = sizeof(head) - 1;
    if (!jc_utf8_valid(s, n)) return false;
    if (n < i || memcmp(s, head, i) != 0) return false;
    if (!jc_json_string(s, n, &i, word_out, word_len)) return false;
    if (n - i < sizeof(mid) - 1 || memcmp(s + i, mid, sizeof(mid) - 1) != 0) return false;
    i += sizeof(mid) - 1;
    bool neg = i < n && s[i] == '-';
    if (neg) i++;
    size_t d0 = i;
    uint64_t mag = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (mag > (UINT64_MAX - 9) / 10) return false;
        mag = mag * 10 + (uint64_t)(s[i++] - '0');
    }
    if (i == d0 || (s[d0] == '0' && i - d0 > 1)) return false; /* JSON: no leading zeros */
    if (i + 1 != n || s[i] != '}') return false;
    if (neg ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX) return false;
    *count = neg ? (mag ? -(int64_t)(mag - 1) - 1 : 0) : (int64_t)mag;
    return true;
}

#endif
