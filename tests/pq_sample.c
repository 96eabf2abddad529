/* SPDX-License-Identifier: MIT */
/* Writes sample Parquet files from tally's writer (src/parquet.c), each with the rows it holds
 * beside it, for checking the files with a real reader (e.g. the Java one under bench/peers/spark):
 *
 *   build/tests/pq_sample DIR
 *
 * DIR (created when missing) gets, for SCHEMA in window (word, count, window_start, window_end)
 * and epoch (word, count, epoch) and CODEC in none, snappy, zstd:
 *   SCHEMA-CODEC.parquet           ten rows: ASCII, multi-byte UTF-8, the empty word, quotes...
 *   SCHEMA-CODEC.expected.jsonl    the same rows in order, one JSON object a line, with the
 *                                  column names as keys; timestamps as integer epoch milliseconds
 *   SCHEMA-empty.parquet           no rows (no row group); its .expected.jsonl is empty
 *   epoch-zstd-many.parquet        300000 rows over several pages ("w0000000".."w0299999",
 *                                  count i + 1, epoch 7), with its .expected.jsonl
 * Every word is valid UTF-8, so the JSON strings are the words exactly. Built, not installed. */
#include "tally/json.h"
#include "tally/parquet.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const tally_pq_column_t window_cols[] = {
    {"word", TALLY_PQ_STRING}, {"count", TALLY_PQ_INT64},
    {"window_start", TALLY_PQ_TIMESTAMP_MILLIS}, {"window_end", TALLY_PQ_TIMESTAMP_MILLIS}};
static const tally_pq_column_t epoch_cols[] = {
    {"word", TALLY_PQ_STRING}, {"count", TALLY_PQ_INT64}, {"epoch", TALLY_PQ_INT64}};

static const char *const words[] = {"the", "naïve", "日本語", "😀", "", "tab\there", "quote\"back\\slash",
                                    "Zürich", "a", "zzz"};
static const int64_t counts[] = {1, 42, 7, 1000000, 3, 2, 5, INT64_MAX, 9, 1};
#define NSAMPLE 10

static void die(const char *what, const char *detail) {
    fprintf(stderr, "pq_sample: %s: %s\n", what, detail);
    exit(1);
}

/* One row's values; cols[2..] get int64s from `ints`. */
static void add_row(tally_pq_writer_t *w, FILE *jl, const tally_pq_column_t *cols, int ncols, const char *word,
                    const int64_t *ints) {
    size_t len = strlen(word);
    if (tally_pq_add_string(w, 0, (const uint8_t *)word, (uint32_t)len) != 0) die("add", strerror(errno));
    char esc[6 * 64 + 1];
    if (len > 64) die("add", "sample word too long");
    size_t el = tally_json_escape(esc, (const uint8_t *)word, len);
    fprintf(jl, "{\"word\":\"%.*s\"", (int)el, esc);
    for (int c = 1; c < ncols; c++) {
        if (tally_pq_add_int64(w, c, ints[c - 1]) != 0) die("add", strerror(errno));
        fprintf(jl, ",\"%s\":%" PRId64, cols[c].name, ints[c - 1]);
    }
    fputs("}\n", jl);
}

typedef enum { ROWS_SAMPLE, ROWS_NONE, ROWS_MANY } rows_t;

static void sample(const char *dir, const char *schema, tally_pq_codec_t codec, rows_t rows, const char *suffix) {
    int window = strcmp(schema, "window") == 0;
    const tally_pq_column_t *cols = window ? window_cols : epoch_cols;
    int ncols = window ? 4 : 3;
    char path[4096], err[256];
    snprintf(path, sizeof(path), "%s/%s-%s.expected.jsonl", dir, schema, suffix);
    FILE *jl = fopen(path, "w");
    if (!jl) die(path, strerror(errno));
    tally_pq_writer_t *w = tally_pq_writer_new(cols, ncols, codec, err, sizeof(err));
    if (!w) die("writer", err);
    if (rows == ROWS_SAMPLE) {
        for (int i = 0; i < NSAMPLE; i++) {
            int64_t ints[3] = {counts[i], 1700000000000 + 60000 * (i % 3), 1700000060000 + 60000 * (i % 3)};
            if (!window) ints[1] = i / 4;
            add_row(w, jl, cols, ncols, words[i], ints);
        }
    } else if (rows == ROWS_MANY) {
        for (int i = 0; i < 300000; i++) {
            char word[16];
            snprintf(word, sizeof(word), "w%07d", i);
            int64_t ints[3] = {i + 1, 7, 0};
            add_row(w, jl, cols, ncols, word, ints);
        }
    }
    if (fclose(jl) != 0) die(path, strerror(errno));
    snprintf(path, sizeof(path), "%s/%s-%s.parquet", dir, schema, suffix);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die(path, strerror(errno));
    if (tally_pq_write(w, fd, err, sizeof(err)) != 0) die(path, err);
    if (close(fd) != 0) die(path, strerror(errno));
    printf("%s: %zu rows\n", path, tally_pq_rows(w));
    tally_pq_writer_free(w);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    if (mkdir(argv[1], 0755) != 0 && errno != EEXIST) die(argv[1], strerror(errno));
    static const char *const schemas[] = {"window", "epoch"};
    static const tally_pq_codec_t codecs[] = {TALLY_PQ_NONE, TALLY_PQ_SNAPPY, TALLY_PQ_ZSTD};
    for (int s = 0; s < 2; s++) {
        for (int c = 0; c < 3; c++) sample(argv[1], schemas[s], codecs[c], ROWS_SAMPLE, tally_pq_codec_name(codecs[c]));
        sample(argv[1], schemas[s], TALLY_PQ_SNAPPY, ROWS_NONE, "empty");
    }
    sample(argv[1], "epoch", TALLY_PQ_ZSTD, ROWS_MANY, "zstd-many");
    return 0;
}
