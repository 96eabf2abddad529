/* SPDX-License-Identifier: MIT */
/* JSON encoding of output records. Invalid UTF-8 is replaced per "maximal subpart" (Unicode 3.9 /
 * WHATWG): each maximal prefix of a valid sequence that is cut short becomes one U+FFFD. */
#include "tally/json.h"
#include "tally/window.h"

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

/* Copies the UTF-8 sequence at s[*i] to o, or U+FFFD for its maximal invalid subpart; advances *i
 * and returns the new end of o. */
static inline char *put_utf8(char *o, const uint8_t *s, size_t len, size_t *i) {
    size_t bad = 0, n = utf8_seq(s + *i, len - *i, &bad);
    if (n) {
        memcpy(o, s + *i, n);
        *i += n;
        return o + n;
    }
    *o++ = (char)0xEF; *o++ = (char)0xBF; *o++ = (char)0xBD; /* U+FFFD */
    *i += bad;
    return o;
}

/* True when none of the 8 bytes of x needs escaping or UTF-8 checking: each is 0x20..0x7f and not
 * '"' or '\\' (the exact "has a byte less than n" and "has a zero byte" tests of Bit Twiddling Hacks). */
static inline int plain8(uint64_t x) {
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t ctl = (x - ones * 0x20) & ~x;          /* a byte < 0x20 (or >= 0x80, tested below) */
    uint64_t quote = x ^ (ones * '"'), bslash = x ^ (ones * '\\');
    uint64_t q = (quote - ones) & ~quote, b = (bslash - ones) & ~bslash;
    return ((x | ctl | q | b) & highs) == 0;
}

size_t tally_json_escape(char *out, const uint8_t *s, size_t len) {
    char *o = out;
    size_t i = 0;
    while (i < len) {
        /* Plain ASCII 8 bytes a step: out has 6 bytes for each input byte, so 8 always fit. */
        uint64_t x;
        if (len - i >= 8 && (memcpy(&x, s + i, 8), plain8(x))) {
            memcpy(o, &x, 8);
            o += 8;
            i += 8;
            continue;
        }
        uint8_t c = s[i];
        if ((uint8_t)(c - 0x20) < 0x60 && c != '"' && c != '\\') {
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
        o = put_utf8(o, s, len, &i);
    }
    return (size_t)(o - out);
}

/* Decimal digits of v written backwards ending at end; returns where they start. Two digits a step
 * from a table: the record's count is the only number tally writes per output record, and sprintf's
 * format parsing cost most of the record's time. */
static char *format_u64(char *end, uint64_t v) {
    static const char pairs[201] = "0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849"
                                   "5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
    while (v > UINT32_MAX) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        end -= 2;
        memcpy(end, pairs + 2 * r, 2);
    }
    uint32_t u = (uint32_t)v; /* most counts: 32-bit division by a constant is cheaper */
    while (u >= 100) {
        unsigned r = u % 100;
        u /= 100;
        end -= 2;
        memcpy(end, pairs + 2 * r, 2);
    }
    if (u >= 10) {
        end -= 2;
        memcpy(end, pairs + 2 * u, 2);
    } else {
        *--end = (char)('0' + u);
    }
    return end;
}

size_t tally_json_word_count(char *out, const uint8_t *word, size_t len, int64_t count) {
    static const char head[] = "{\"word\":\"", mid[] = "\",\"count\":";
    char *o = out;
    memcpy(o, head, sizeof(head) - 1);
    o += sizeof(head) - 1;
    o += tally_json_escape(o, word, len);
    memcpy(o, mid, sizeof(mid) - 1);
    o += sizeof(mid) - 1;
    if (count < 0) *o++ = '-';
    /* The magnitude in unsigned arithmetic: -INT64_MIN does not fit an int64_t. */
    uint64_t mag = count < 0 ? 0 - (uint64_t)count : (uint64_t)count;
    /* Digits end at tmp + 20, so a fixed 20-byte copy from where they start stays inside tmp; the
     * bytes after them land within TALLY_JSON_MAX (at most 9 + 6 len + 10 + 1 + 20 bytes are
     * touched) and past the returned length. */
    char tmp[40];
    char *d = format_u64(tmp + 20, mag);
    memcpy(o, d, 20);
    o += tmp + 20 - d;
    *o++ = '}';
    return (size_t)(o - out);
}

size_t tally_utf8_clean(char *out, const uint8_t *s, size_t len) {
    char *o = out;
    for (size_t i = 0; i < len;) o = put_utf8(o, s, len, &i);
    return (size_t)(o - out);
}

/* Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's civil_from_days), in
 * int64 so that every day of the int64 millisecond range is exact. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11], from March */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

size_t tally_json_timestamp(char *out, int64_t ms) {
    /* Floor division: -1 ms is 1969-12-31T23:59:59.999Z. */
    int64_t days = ms / 86400000, rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int msec = (int)(rem % 1000), sec = (int)(rem / 1000 % 60), min = (int)(rem / 60000 % 60),
        hour = (int)(rem / 3600000);
    int n;
    if (y < 0) n = sprintf(out, "-%04" PRId64, -y);
    else if (y > 9999) n = sprintf(out, "+%" PRId64, y);
    else n = sprintf(out, "%04" PRId64, y);
    n += sprintf(out + n, "-%02d-%02dT%02d:%02d:%02d.%03dZ", m, d, hour, min, sec, msec);
    return (size_t)n;
}

size_t tally_json_window_word_count(char *out, int64_t start_ms, int64_t end_ms, const uint8_t *word,
                                    size_t len, int64_t count) {
    char *o = out;
    o += sprintf(o, "{\"window\":{\"start\":\"");
    o += tally_json_timestamp(o, start_ms);
    o += sprintf(o, "\",\"end\":\"");
    o += tally_json_timestamp(o, end_ms);
    o += sprintf(o, "\"},\"word\":\"");
    o += tally_json_escape(o, word, len);
    o += sprintf(o, "\",\"count\":%" PRId64 "}", count);
    return (size_t)(o - out);
}

size_t tally_json_window_entry(char *out, const uint8_t *key, size_t klen, int64_t size, int64_t count) {
    int64_t start;
    const uint8_t *word;
    size_t wl;
    if (tally_window_key_decode(key, klen, &start, &word, &wl)) return 0;
    return tally_json_window_word_count(out, start, start + size, word, wl, count);
}
