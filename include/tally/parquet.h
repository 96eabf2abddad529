/* SPDX-License-Identifier: MIT */
/* A small Parquet file writer for tally's part files: flat schemas of REQUIRED columns (STRING,
 * INT64, TIMESTAMP_MILLIS), all rows in memory until tally_pq_write puts out the whole file: "PAR1",
 * one row group, data pages v1 of about 1 MiB (uncompressed) in PLAIN encoding, each compressed
 * with the chosen codec (none, Snappy, zstd), then the Thrift compact footer with the schema's
 * logical types, column statistics (min/max, null_count 0) and column orders.
 *
 * No dictionary encoding: a part file holds one epoch's changed counts, so each word appears at
 * most once in it; a dictionary of unique strings stores every string once plus an index per row,
 * so it never saves space for `word` (and the numeric columns are mostly distinct as well).
 * No nulls, no nesting, no page index, no bloom filter. */
#ifndef TALLY_PARQUET_H
#define TALLY_PARQUET_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TALLY_PQ_NONE = 0, TALLY_PQ_SNAPPY, TALLY_PQ_ZSTD } tally_pq_codec_t;
typedef enum { TALLY_PQ_STRING = 0, TALLY_PQ_INT64, TALLY_PQ_TIMESTAMP_MILLIS } tally_pq_type_t;
typedef struct {
    const char *name;
    tally_pq_type_t type;
} tally_pq_column_t;
typedef struct tally_pq_writer_s tally_pq_writer_t;

/* The uncompressed size at which a page is cut (a single longer value makes a page of its own). */
#define TALLY_PQ_PAGE_SIZE (1024 * 1024)
/* The longest string value: page sizes are 32-bit signed in the format. */
#define TALLY_PQ_MAX_STRING (256u * 1024 * 1024)

/* A writer of the columns (names copied; 1..1024 columns, names unique, non-empty). Columns are
 * REQUIRED (no nulls). Returns NULL on bad arguments or no memory (errstr says why). */
tally_pq_writer_t *tally_pq_writer_new(const tally_pq_column_t *cols, int ncols, tally_pq_codec_t codec,
                                       char *errstr, size_t n);

/* Append one value to column `col`; rows are complete when every column got the same number of
 * values. 0, or -1 (errno: EINVAL for a wrong column, type or length; ENOMEM). */
int tally_pq_add_string(tally_pq_writer_t *w, int col, const uint8_t *s, uint32_t len);
int tally_pq_add_int64(tally_pq_writer_t *w, int col, int64_t v); /* INT64 and TIMESTAMP_MILLIS */

/* Complete rows so far (the fewest values any column has). */
size_t tally_pq_rows(const tally_pq_writer_t *w);

/* Writes the whole file (magic, one row group, footer) to fd with sequential writes (a pipe will do;
 * the file's offsets count from its first byte, so give it a new file); 0 or -1 with errstr (errno
 * text, or why the rows are incomplete). Does not fsync or close. May be called again (it writes
 * the same bytes). */
int tally_pq_write(tally_pq_writer_t *w, int fd, char *errstr, size_t n);

void tally_pq_writer_free(tally_pq_writer_t *w);

/* "none", "snappy" or "zstd" into *out: 0, or -1 for another name. */
int tally_pq_codec_parse(const char *s, tally_pq_codec_t *out);
/* The name tally_pq_codec_parse takes. */
const char *tally_pq_codec_name(tally_pq_codec_t c);

/* For tests: cut pages at `bytes` instead of TALLY_PQ_PAGE_SIZE (at least 1), so small inputs
 * span many pages. */
void tally_pq_set_page_size(tally_pq_writer_t *w, size_t bytes);

#endif
