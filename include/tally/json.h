/* SPDX-License-Identifier: MIT */
/* The output record's value: {"word":"<word>","count":<n>}, valid JSON and valid UTF-8 whatever the
 * word's bytes: quotes, backslashes and control bytes escaped, invalid UTF-8 replaced by U+FFFD. */
#ifndef TALLY_JSON_H
#define TALLY_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Bytes that always suffice for a word of `len` bytes. */
#define TALLY_JSON_MAX(len) ((len) * 6 + 48)

/* Writes the record into out (at least TALLY_JSON_MAX(len) bytes); returns its length. No NUL. */
size_t tally_json_word_count(char *out, const uint8_t *word, size_t len, int64_t count);

/* Writes the JSON string body for the bytes (no quotes); returns its length. out needs len*6 bytes. */
size_t tally_json_escape(char *out, const uint8_t *s, size_t len);

/* Copies the bytes as valid UTF-8, each maximal invalid subpart replaced by U+FFFD (the rule of the
 * JSON output, for the CSV and Parquet sinks); returns the length. out needs len*3 bytes. */
size_t tally_utf8_clean(char *out, const uint8_t *s, size_t len);

#endif
