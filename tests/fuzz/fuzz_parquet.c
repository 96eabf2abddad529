/* SPDX-License-Identifier: MIT */
/* Fuzz target: the Parquet writer, read back by the test reader (tests/pq_read.c). The input is a
 * program: byte 0 picks the codec (% 3) and the schema (/ 3 % 2: word,count,window_start,
 * window_end or word,count,epoch), byte 1 the page size (0: 1 MiB, else 1..255 bytes, so pages
 * split on small inputs); then rows until the input ends, each a length byte and that many bytes of
 * word (fewer at the end), then 8 bytes (little-endian, zero-padded at the end) per int64 column.
 * The file must read back without a complaint from the reader (sizes, offsets, statistics, schema)
 * and give every value as it went in. */
#include "fuzz.h"
#include "../pq_read.h"

#include "tally/parquet.h"

#include <stdbool.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const tally_pq_column_t window_cols[] = {
    {"word", TALLY_PQ_STRING}, {"count", TALLY_PQ_INT64},
    {"window_start", TALLY_PQ_TIMESTAMP_MILLIS}, {"window_end", TALLY_PQ_TIMESTAMP_MILLIS}};
static const tally_pq_column_t epoch_cols[] = {
    {"word", TALLY_PQ_STRING}, {"count", TALLY_PQ_INT64}, {"epoch", TALLY_PQ_INT64}};

typedef struct {
    const uint8_t *word;
    size_t len;
    int64_t ints[3];
} row_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    tally_pq_codec_t codec = (tally_pq_codec_t)(data[0] % 3);
    bool window = data[0] / 3 % 2 == 0;
    const tally_pq_column_t *cols = window ? window_cols : epoch_cols;
    int ncols = window ? 4 : 3;
    char err[512] = "";
    tally_pq_writer_t *w = tally_pq_writer_new(cols, ncols, codec, err, sizeof(err));
    FUZZ_CHECK(w);
    if (data[1]) tally_pq_set_page_size(w, data[1]);

    /* Each row takes at least one byte: size rows at most. */
    row_t *rows = calloc(size, sizeof(row_t));
    FUZZ_CHECK(rows);
    size_t n = 0, pos = 2;
    while (pos < size) {
        row_t *r = &rows[n++];
        size_t l = data[pos++];
        if (l > size - pos) l = size - pos;
        r->word = data + pos;
        r->len = l;
        pos += l;
        FUZZ_CHECK(tally_pq_add_string(w, 0, r->word, (uint32_t)l) == 0);
        for (int c = 1; c < ncols; c++) {
            uint64_t v = 0;
            for (int b = 0; b < 8 && pos < size; b++) v |= (uint64_t)data[pos++] << (8 * b);
            r->ints[c - 1] = (int64_t)v;
            FUZZ_CHECK(tally_pq_add_int64(w, c, (int64_t)v) == 0);
        }
        FUZZ_CHECK(tally_pq_rows(w) == n);
    }

    int fd = memfd_create("fuzz_parquet", 0);
    FUZZ_CHECK(fd >= 0);
    if (tally_pq_write(w, fd, err, sizeof(err)) != 0) {
        fprintf(stderr, "tally_pq_write: %s\n", err);
        FUZZ_CHECK(0);
    }
    off_t len = lseek(fd, 0, SEEK_END);
    FUZZ_CHECK(len >= 12);
    uint8_t *file = malloc((size_t)len);
    FUZZ_CHECK(file && pread(fd, file, (size_t)len, 0) == len);
    close(fd);

    pq_file_t f;
    if (pq_read(file, (size_t)len, &f, err, sizeof(err)) != 0) {
        fprintf(stderr, "pq_read: %s\n", err);
        FUZZ_CHECK(0);
    }
    FUZZ_CHECK(f.num_rows == (int64_t)n && f.ncols == ncols);
    FUZZ_CHECK(f.nrow_groups == (n ? 1 : 0));
    for (int c = 0; c < ncols; c++) {
        FUZZ_CHECK(strcmp(f.cols[c].name, cols[c].name) == 0);
        if (n) FUZZ_CHECK(f.cols[c].codec == (codec == TALLY_PQ_NONE ? 0 : codec == TALLY_PQ_SNAPPY ? 1 : 6));
    }
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const uint8_t *s = pq_str(&f.cols[0], i, &l);
        FUZZ_CHECK(l == rows[i].len && (l == 0 || memcmp(s, rows[i].word, l) == 0));
        for (int c = 1; c < ncols; c++) FUZZ_CHECK(f.cols[c].ints[i] == rows[i].ints[c - 1]);
    }
    /* The reader checked the statistics against what it decoded; the values are the input, so the
     * statistics are the input's min/max. Pages: one unless the page size was small. */
    if (n && !data[1]) FUZZ_CHECK(f.cols[0].npages == 1);
    pq_free(&f);
    free(file);
    free(rows);
    tally_pq_writer_free(w);
    return 0;
}
