/* SPDX-License-Identifier: MIT */
/* The growable text buffer of the ops modules. */
#include "tally/buf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/json.h"

void tally_buf_init(tally_buf_t *b) { memset(b, 0, sizeof(*b)); }

void tally_buf_term(tally_buf_t *b) {
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void tally_buf_reset(tally_buf_t *b) {
    b->len = 0;
    b->oom = false;
    if (b->data) b->data[0] = '\0';
}

/* Makes room for n more bytes and the NUL. */
static bool reserve(tally_buf_t *b, size_t n) {
    if (b->oom) return false;
    if (b->len + n + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void tally_buf_append(tally_buf_t *b, const void *p, size_t n) {
    if (!reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void tally_buf_puts(tally_buf_t *b, const char *s) { tally_buf_append(b, s, strlen(s)); }

void tally_buf_printf(tally_buf_t *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof(small)) {
        tally_buf_append(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void tally_buf_json_str(tally_buf_t *b, const void *s, size_t n) {
    if (n > (SIZE_MAX - 2) / 6 || !reserve(b, n * 6 + 2)) {
        b->oom = true;
        return;
    }
    b->data[b->len++] = '"';
    b->len += tally_json_escape(b->data + b->len, s, n);
    b->data[b->len++] = '"';
    b->data[b->len] = '\0';
}

void tally_buf_json_num(tally_buf_t *b, double v) {
    if (!isfinite(v)) tally_buf_puts(b, "null");
    else if (v == floor(v) && fabs(v) < 9e15) tally_buf_printf(b, "%.0f", v);
    else tally_buf_printf(b, "%.3f", v);
}

void tally_buf_utf8(tally_buf_t *b, const void *s, size_t n) {
    if (n > SIZE_MAX / 3 || !reserve(b, 3 * n)) return;
    b->len += tally_utf8_clean(b->data + b->len, s, n);
    b->data[b->len] = '\0';
}

int tally_buf_read_file(tally_buf_t *b, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return errno ? errno : EIO;
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) tally_buf_append(b, chunk, got);
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (!err && !b->data) tally_buf_append(b, "", 0); /* an empty file: data is "" */
    return err ? err : b->oom ? ENOMEM : 0;
}
