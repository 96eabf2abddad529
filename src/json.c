/* SPDX-License-Identifier: MIT */
/* JSON encoding of output records. Invalid UTF-8 is replaced per "maximal subpart" (Unicode 3.9 /
 * WHATWG): each maximal prefix of a valid sequence that is cut short becomes one U+FFFD. */
#include "tally/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char hexdig[] = "0123456789abcdef";

/* Length of the valid UTF-8 sequence at s (1..4), or 0 with *bad set to how many bytes form the
 * maximal invalid subpart (at least 1). */
static size_t utf8_seq(const uint8_t *s, size_t n, size_t *bad) {
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

size_t tally_json_escape(char *out, const uint8_t *s, size_t len) {
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
        size_t bad = 0, n = utf8_seq(s + i, len - i, &bad);
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

size_t tally_json_word_count(char *out, const uint8_t *word, size_t len, int64_t count) {
    static const char head[] = "{\"word\":\"";
    char *o = out;
    memcpy(o, head, sizeof(head) - 1);
    o += sizeof(head) - 1;
    o += tally_json_escape(o, word, len);
    o += sprintf(o, "\",\"count\":%" PRId64 "}", count);
    return (size_t)(o - out);
}

size_t tally_utf8_clean(char *out, const uint8_t *s, size_t len) {
    char *o = out;
    for (size_t i = 0; i < len;) {
        size_t bad = 0, n = s[i] < 0x80 ? 1 : utf8_seq(s + i, len - i, &bad);
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
