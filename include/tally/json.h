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

/* Bytes that always suffice for a windowed record of a word of `len` bytes. */
#define TALLY_JSON_WINDOW_MAX(len) ((len) * 6 + 160)
/* Bytes that always suffice for one timestamp (the longest, INT64_MIN ms, has 30). */
#define TALLY_JSON_TIME_MAX 40

/* The windowed record, as Spark's to_json(struct(window, word, count)) with the UTC session time
 * zone: {"window":{"start":"<ts>","end":"<ts>"},"word":"<word>","count":<n>}. out needs
 * TALLY_JSON_WINDOW_MAX(len) bytes; returns the length. No NUL. */
size_t tally_json_window_word_count(char *out, int64_t start_ms, int64_t end_ms, const uint8_t *word,
                                    size_t len, int64_t count);

/* The windowed record of a state key (tally_window_key) and its count, for windows of `size` ms;
 * out needs TALLY_JSON_WINDOW_MAX(klen) bytes; returns the length, 0 when key is no window key. */
size_t tally_json_window_entry(char *out, const uint8_t *key, size_t klen, int64_t size, int64_t count);

/* A timestamp (ms since the epoch, any int64) as Spark's JSON writer prints it: the pattern
 * yyyy-MM-dd'T'HH:mm:ss.SSSXXX, which Spark turns into uuuu-... for java.time, in UTC: proleptic
 * Gregorian, milliseconds always 3 digits, "Z"; years 0..9999 in 4 digits, earlier ones with '-'
 * (year 0 is 1 BC: "0000", then "-0001"), later ones with '+' ("+10000"), as Java's EXCEEDS_PAD
 * sign style. Writes at most TALLY_JSON_TIME_MAX bytes; returns the length. No NUL. */
size_t tally_json_timestamp(char *out, int64_t ms);

/* Writes the JSON string body for the bytes (no quotes); returns its length. out needs len*6 bytes. */
size_t tally_json_escape(char *out, const uint8_t *s, size_t len);

/* Copies the bytes as valid UTF-8, each maximal invalid subpart replaced by U+FFFD (the rule of the
 * JSON output, for the CSV and Parquet sinks); returns the length. out needs len*3 bytes. */
size_t tally_utf8_clean(char *out, const uint8_t *s, size_t len);

#endif
