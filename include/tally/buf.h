/* SPDX-License-Identifier: MIT */
/* A growable byte buffer for building text (metrics, JSON, progress records). Owned by one thread.
 * An allocation failure is sticky: later appends are ignored and tally_buf_ok() turns false. */
#ifndef TALLY_BUF_H
#define TALLY_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tally_buf_s {
    char *data;   /* NUL-terminated while ok; NULL before the first append */
    size_t len, cap;
    bool oom;
} tally_buf_t;

void tally_buf_init(tally_buf_t *b);
void tally_buf_term(tally_buf_t *b);
/* Empties the buffer, keeping its memory. */
void tally_buf_reset(tally_buf_t *b);
static inline bool tally_buf_ok(const tally_buf_t *b) { return !b->oom; }

void tally_buf_append(tally_buf_t *b, const void *p, size_t n);
void tally_buf_puts(tally_buf_t *b, const char *s);
void tally_buf_printf(tally_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string with quotes: any bytes, escaped and made valid UTF-8 (tally_json_escape). */
void tally_buf_json_str(tally_buf_t *b, const void *s, size_t n);
/* The bytes as valid UTF-8 (tally_utf8_clean: U+FFFD for invalid sequences), no quoting. */
void tally_buf_utf8(tally_buf_t *b, const void *s, size_t n);
/* Appends a whole file: 0, or an errno (ENOMEM when the buffer could not grow). */
int tally_buf_read_file(tally_buf_t *b, const char *path);
/* A JSON number; NaN and infinities (not JSON) become null. */
void tally_buf_json_num(tally_buf_t *b, double v);

#endif
