/* SPDX-License-Identifier: MIT */
/* A minimal Parquet reader of what src/parquet.c writes, for its tests and fuzz target (no Parquet
 * C library exists to check against): a Thrift compact decoder of its own, the footer, every page
 * decompressed (none, Snappy, zstd) and its PLAIN values decoded. It is strict on purpose: anything
 * the writer promises and a reader relies on (magic, sizes and offsets adding up, pages ending
 * exactly at the footer, statistics equal to the min/max of the values, REQUIRED leaves, column
 * orders) is checked here and reported as an error. */
#ifndef TALLY_TEST_PQ_READ_H
#define TALLY_TEST_PQ_READ_H

#include <stddef.h>
#include <stdint.h>

/* parquet.thrift numbers, as the file has them. */
enum { PQR_INT64 = 2, PQR_BYTE_ARRAY = 6 };                 /* Type */
enum { PQR_UTF8 = 0, PQR_TIMESTAMP_MILLIS = 9 };            /* ConvertedType */
enum { PQR_LOGICAL_STRING = 1, PQR_LOGICAL_TIMESTAMP = 8 }; /* LogicalType's field ids */
enum { PQR_UNIT_MILLIS = 1 };                               /* TimeUnit's field ids */

typedef struct {
    char *name;
    int phys, repetition;
    int converted;        /* -1: none */
    int logical;          /* LogicalType's field id; 0: none */
    int ts_utc, ts_unit;  /* TIMESTAMP: isAdjustedToUTC, TimeUnit's field id */
    int codec;            /* CompressionCodec */
    int64_t num_values, total_uncompressed, total_compressed, data_page_offset, file_offset;
    int npages;
    int page_stats;       /* pages that had statistics (all checked against their values) */
    /* Column statistics (only with a row group). */
    int has_stats, has_deprecated;
    int64_t null_count;
    uint8_t min_value[64], max_value[64]; /* first 64 bytes; lengths below are the full ones */
    uint32_t min_len, max_len;
    /* Values: ints[i], or string i at sbytes + soff[i], soff[i+1] - soff[i] bytes. */
    int64_t *ints;
    uint8_t *sbytes;
    size_t *soff;
} pq_col_t;

typedef struct {
    int version;
    int64_t num_rows;
    int nrow_groups;
    char *created_by;
    uint32_t footer_len;
    int ncols;
    pq_col_t *cols;
    int64_t rg_total_byte_size, rg_total_compressed;
} pq_file_t;

/* Reads and checks a whole file; 0, or -1 with why in err. pq_free either way. */
int pq_read(const uint8_t *data, size_t len, pq_file_t *f, char *err, size_t errn);
void pq_free(pq_file_t *f);

/* The string value `i` of a column. */
static inline const uint8_t *pq_str(const pq_col_t *c, size_t i, size_t *len) {
    *len = c->soff[i + 1] - c->soff[i];
    return c->sbytes + c->soff[i];
}

#endif
