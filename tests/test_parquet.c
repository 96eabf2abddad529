/* SPDX-License-Identifier: MIT */
/* Unit tests of the Parquet writer (src/parquet.c), read back with the test reader (pq_read.c, its
 * own Thrift decoder): zero and one row, bytes 0x00/0xff and multi-byte UTF-8, the empty string,
 * INT64 extremes, 300k rows over several pages, every codec, a schema with TIMESTAMP_MILLIS columns
 * (word, count, window_start, window_end; the file sink's own column order is tested in
 * test_filesink.c) and the plain one (word, count, epoch), the page cut, a page header's exact bytes,
 * and the API's refusals. */
#include "harness.h"
#include "unit.h"
#include "pq_read.h"

#include "tally/parquet.h"

#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

static const tally_pq_codec_t codecs[] = {TALLY_PQ_NONE, TALLY_PQ_SNAPPY, TALLY_PQ_ZSTD};
static const int codec_ids[] = {0, 1, 6}; /* CompressionCodec in the file */

static const tally_pq_column_t window_cols[] = {
    {"word", TALLY_PQ_STRING}, {"count", TALLY_PQ_INT64},
    {"window_start", TALLY_PQ_TIMESTAMP_MILLIS}, {"window_end", TALLY_PQ_TIMESTAMP_MILLIS}};
static const tally_pq_column_t epoch_cols[] = {
    {"word", TALLY_PQ_STRING}, {"count", TALLY_PQ_INT64}, {"epoch", TALLY_PQ_INT64}};

static tally_pq_writer_t *new_writer(const tally_pq_column_t *cols, int n, tally_pq_codec_t codec) {
    char err[256] = "";
    tally_pq_writer_t *w = tally_pq_writer_new(cols, n, codec, err, sizeof(err));
    if (!w) TH_FAIL("tally_pq_writer_new: %s", err);
    return w;
}

/* Writes the file into a memfd and returns its bytes (caller frees). */
static uint8_t *write_file(tally_pq_writer_t *w, size_t *len) {
    int fd = memfd_create("pq", 0);
    ASSERT(fd >= 0);
    char err[256] = "";
    if (tally_pq_write(w, fd, err, sizeof(err)) != 0) TH_FAIL("tally_pq_write: %s", err);
    off_t end = lseek(fd, 0, SEEK_END);
    ASSERT(end >= 12);
    uint8_t *buf = malloc((size_t)end);
    ASSERT(buf);
    ASSERT_EQ(pread(fd, buf, (size_t)end, 0), end);
    close(fd);
    *len = (size_t)end;
    return buf;
}

static void read_back(tally_pq_writer_t *w, pq_file_t *f, size_t *len_out) {
    size_t len;
    uint8_t *buf = write_file(w, &len);
    char err[512] = "";
    if (pq_read(buf, len, f, err, sizeof(err)) != 0) TH_FAIL("pq_read: %s", err);
    ASSERT_MEM_EQ(buf, 4, "PAR1", 4);
    ASSERT_MEM_EQ(buf + len - 4, 4, "PAR1", 4);
    ASSERT_LE((size_t)f->footer_len + 12, len);
    free(buf);
    if (len_out) *len_out = len;
}

static void add_str(tally_pq_writer_t *w, int col, const char *s, size_t len) {
    ASSERT_EQ(tally_pq_add_string(w, col, (const uint8_t *)s, (uint32_t)len), 0);
}
#define ADD_LIT(w, col, lit) add_str(w, col, lit, sizeof(lit) - 1)

static void expect_str(const pq_col_t *c, size_t i, const char *s, size_t len) {
    size_t l;
    const uint8_t *v = pq_str(c, i, &l);
    ASSERT_MEM_EQ(v, l, s, len);
}

static void le64(uint8_t *o, int64_t v) {
    for (int i = 0; i < 8; i++) o[i] = (uint8_t)((uint64_t)v >> (8 * i));
}

/* Column statistics: min_value/max_value are exactly these int64s (8 bytes little-endian). */
static void expect_int_stats(const pq_col_t *c, int64_t min, int64_t max) {
    uint8_t lo[8], hi[8];
    le64(lo, min);
    le64(hi, max);
    ASSERT(c->has_stats);
    ASSERT(c->has_deprecated); /* INT64: the signed deprecated pair too */
    ASSERT_EQ(c->null_count, 0);
    ASSERT_MEM_EQ(c->min_value, c->min_len, lo, 8);
    ASSERT_MEM_EQ(c->max_value, c->max_len, hi, 8);
}
static void expect_str_stats(const pq_col_t *c, const char *min, size_t minl, const char *max, size_t maxl) {
    ASSERT(c->has_stats);
    ASSERT(!c->has_deprecated);
    ASSERT_EQ(c->null_count, 0);
    ASSERT_MEM_EQ(c->min_value, c->min_len, min, minl);
    ASSERT_MEM_EQ(c->max_value, c->max_len, max, maxl);
}

/* The schema as tally declares it: word UTF8/STRING, count INT64 unannotated, timestamps
 * TIMESTAMP(UTC, MILLIS) with ConvertedType TIMESTAMP_MILLIS. */
static void expect_schema(const pq_file_t *f, const tally_pq_column_t *cols, int n) {
    ASSERT_EQ(f->version, 1);
    ASSERT_EQ(f->ncols, n);
    ASSERT(strncmp(f->created_by, "tally version ", 14) == 0 && f->created_by[14] >= '0' && f->created_by[14] <= '9');
    for (int i = 0; i < n; i++) {
        const pq_col_t *c = &f->cols[i];
        ASSERT_STR_EQ(c->name, cols[i].name);
        ASSERT_EQ(c->repetition, 0);
        switch (cols[i].type) {
        case TALLY_PQ_STRING:
            ASSERT_EQ(c->phys, PQR_BYTE_ARRAY);
            ASSERT_EQ(c->converted, PQR_UTF8);
            ASSERT_EQ(c->logical, PQR_LOGICAL_STRING);
            break;
        case TALLY_PQ_INT64:
            ASSERT_EQ(c->phys, PQR_INT64);
            ASSERT_EQ(c->converted, -1);
            ASSERT_EQ(c->logical, 0);
            break;
        case TALLY_PQ_TIMESTAMP_MILLIS:
            ASSERT_EQ(c->phys, PQR_INT64);
            ASSERT_EQ(c->converted, PQR_TIMESTAMP_MILLIS);
            ASSERT_EQ(c->logical, PQR_LOGICAL_TIMESTAMP);
            ASSERT_EQ(c->ts_utc, 1);
            ASSERT_EQ(c->ts_unit, PQR_UNIT_MILLIS);
            break;
        }
    }
}

static void test_zero_rows(void) {
    for (int k = 0; k < 3; k++) {
        tally_pq_writer_t *w = new_writer(epoch_cols, 3, codecs[k]);
        ASSERT_EQ(tally_pq_rows(w), 0);
        pq_file_t f;
        size_t len;
        read_back(w, &f, &len);
        expect_schema(&f, epoch_cols, 3);
        ASSERT_EQ(f.num_rows, 0);
        ASSERT_EQ(f.nrow_groups, 0);
        ASSERT_EQ(len, 4 + (size_t)f.footer_len + 8); /* nothing but the footer */
        pq_free(&f);
        tally_pq_writer_free(w);
    }
}

static void test_one_row(void) {
    for (int k = 0; k < 3; k++) {
        tally_pq_writer_t *w = new_writer(window_cols, 4, codecs[k]);
        ADD_LIT(w, 0, "hello");
        ASSERT_EQ(tally_pq_rows(w), 0);
        ASSERT_EQ(tally_pq_add_int64(w, 1, 42), 0);
        ASSERT_EQ(tally_pq_add_int64(w, 2, 1700000000000), 0);
        ASSERT_EQ(tally_pq_rows(w), 0);
        ASSERT_EQ(tally_pq_add_int64(w, 3, 1700000060000), 0);
        ASSERT_EQ(tally_pq_rows(w), 1);
        pq_file_t f;
        read_back(w, &f, NULL);
        expect_schema(&f, window_cols, 4);
        ASSERT_EQ(f.num_rows, 1);
        ASSERT_EQ(f.nrow_groups, 1);
        for (int i = 0; i < 4; i++) {
            ASSERT_EQ(f.cols[i].codec, codec_ids[k]);
            ASSERT_EQ(f.cols[i].num_values, 1);
            ASSERT_EQ(f.cols[i].npages, 1);
            ASSERT_EQ(f.cols[i].page_stats, 1);
        }
        ASSERT_EQ(f.cols[0].data_page_offset, 4);
        expect_str(&f.cols[0], 0, "hello", 5);
        expect_str_stats(&f.cols[0], "hello", 5, "hello", 5);
        ASSERT_EQ(f.cols[1].ints[0], 42);
        expect_int_stats(&f.cols[1], 42, 42);
        ASSERT_EQ(f.cols[2].ints[0], 1700000000000);
        expect_int_stats(&f.cols[2], 1700000000000, 1700000000000);
        ASSERT_EQ(f.cols[3].ints[0], 1700000060000);
        pq_free(&f);
        tally_pq_writer_free(w);
    }
}

/* Words the JSON output also has to survive: NUL, 0xff, multi-byte UTF-8, empty; int64 extremes. */
static void test_odd_values(void) {
    static const struct {
        const char *s;
        size_t len;
        int64_t count, epoch;
    } rows[] = {
        {"naïve", 6, INT64_MIN, 0},
        {"", 0, INT64_MAX, -1},
        {"\xff\xff", 2, -1, 1},
        {"\x00", 1, 0, INT64_MIN},
        {"日本語", 9, 1, INT64_MAX},
        {"a\x00" "b", 3, -42, 7},
        {"\xf0\x9f\x98\x80", 4, 4611686018427387904LL, -4611686018427387904LL},
        {"\xff", 1, 255, 256},
        {"\x00\xff", 2, -9223372036854775807LL, 9223372036854775806LL},
    };
    const size_t n = sizeof(rows) / sizeof(rows[0]);
    for (int k = 0; k < 3; k++) {
        tally_pq_writer_t *w = new_writer(epoch_cols, 3, codecs[k]);
        for (size_t i = 0; i < n; i++) {
            add_str(w, 0, rows[i].s, rows[i].len);
            ASSERT_EQ(tally_pq_add_int64(w, 1, rows[i].count), 0);
            ASSERT_EQ(tally_pq_add_int64(w, 2, rows[i].epoch), 0);
        }
        ASSERT_EQ(tally_pq_rows(w), n);
        pq_file_t f;
        read_back(w, &f, NULL);
        expect_schema(&f, epoch_cols, 3);
        ASSERT_EQ(f.num_rows, (int64_t)n);
        for (size_t i = 0; i < n; i++) {
            expect_str(&f.cols[0], i, rows[i].s, rows[i].len);
            ASSERT_EQ(f.cols[1].ints[i], rows[i].count);
            ASSERT_EQ(f.cols[2].ints[i], rows[i].epoch);
        }
        /* Unsigned byte order: "" is the least, "\xff\xff" the greatest (above all UTF-8). */
        expect_str_stats(&f.cols[0], "", 0, "\xff\xff", 2);
        expect_int_stats(&f.cols[1], INT64_MIN, INT64_MAX);
        expect_int_stats(&f.cols[2], INT64_MIN, INT64_MAX);
        /* The exact bytes of INT64_MIN little-endian. */
        static const uint8_t min_le[8] = {0, 0, 0, 0, 0, 0, 0, 0x80};
        ASSERT_MEM_EQ(f.cols[1].min_value, 8, min_le, 8);
        pq_free(&f);
        tally_pq_writer_free(w);
    }
}

/* Negative-only ints and strings sharing prefixes: min/max by signed and by unsigned order. */
static void test_order(void) {
    tally_pq_writer_t *w = new_writer(epoch_cols, 3, TALLY_PQ_NONE);
    static const char *const words[] = {"ab", "a", "abc", "b", "\xc3\xa9", "B"};
    static const int64_t counts[] = {-5, -3, -100, -1, -7, -2};
    for (int i = 0; i < 6; i++) {
        add_str(w, 0, words[i], strlen(words[i]));
        ASSERT_EQ(tally_pq_add_int64(w, 1, counts[i]), 0);
        ASSERT_EQ(tally_pq_add_int64(w, 2, 3), 0);
    }
    pq_file_t f;
    read_back(w, &f, NULL);
    expect_str_stats(&f.cols[0], "B", 1, "\xc3\xa9", 2);
    expect_int_stats(&f.cols[1], -100, -1);
    expect_int_stats(&f.cols[2], 3, 3);
    pq_free(&f);
    tally_pq_writer_free(w);
}

/* 300k rows: several ~1 MiB pages per column, every value back in order. */
static void test_many_rows(void) {
    enum { N = 300000 };
    for (int k = 0; k < 3; k++) {
        tally_pq_writer_t *w = new_writer(window_cols, 4, codecs[k]);
        uint64_t seed = 20261202;
        int64_t cmin = INT64_MAX, cmax = INT64_MIN;
        for (int i = 0; i < N; i++) {
            char word[16];
            snprintf(word, sizeof(word), "w%07d", (int)(unit_splitmix64(&seed) % 10000000));
            add_str(w, 0, word, 8);
            int64_t c = (int64_t)(unit_splitmix64(&seed) % 2000001) - 1000000;
            if (c < cmin) cmin = c;
            if (c > cmax) cmax = c;
            ASSERT_EQ(tally_pq_add_int64(w, 1, c), 0);
            ASSERT_EQ(tally_pq_add_int64(w, 2, 1700000000000 + i), 0);
            ASSERT_EQ(tally_pq_add_int64(w, 3, 1700000060000), 0);
        }
        pq_file_t f;
        size_t len;
        read_back(w, &f, &len);
        ASSERT_EQ(f.num_rows, N);
        /* 12 bytes a word: 87381 a page, 4 pages; 8 bytes an int: 131072 a page, 3 pages. */
        ASSERT_EQ(f.cols[0].npages, 4);
        ASSERT_EQ(f.cols[1].npages, 3);
        ASSERT_EQ(f.cols[2].npages, 3);
        ASSERT_EQ(f.cols[3].npages, 3);
        for (int i = 0; i < 4; i++) ASSERT_EQ(f.cols[i].page_stats, f.cols[i].npages);
        seed = 20261202;
        for (int i = 0; i < N; i++) {
            char word[16];
            snprintf(word, sizeof(word), "w%07d", (int)(unit_splitmix64(&seed) % 10000000));
            expect_str(&f.cols[0], (size_t)i, word, 8);
            ASSERT_EQ(f.cols[1].ints[i], (int64_t)(unit_splitmix64(&seed) % 2000001) - 1000000);
            ASSERT_EQ(f.cols[2].ints[i], 1700000000000 + i);
            ASSERT_EQ(f.cols[3].ints[i], 1700000060000);
        }
        expect_int_stats(&f.cols[1], cmin, cmax);
        expect_int_stats(&f.cols[2], 1700000000000, 1700000000000 + N - 1);
        expect_int_stats(&f.cols[3], 1700000060000, 1700000060000);
        /* A constant column compresses to almost nothing; uncompressed it is 8 bytes a row. */
        if (codecs[k] == TALLY_PQ_NONE) ASSERT_GT(f.cols[3].total_compressed, (int64_t)N * 8);
        else ASSERT_LT(f.cols[3].total_compressed, (int64_t)N * 8 / 20);
        printf("# %s: %d rows, %zu bytes\n", tally_pq_codec_name(codecs[k]), N, len);
        pq_free(&f);
        tally_pq_writer_free(w);
    }
}

/* The page cut: a page never passes the size unless one value alone does. */
static void test_page_cut(void) {
    static const tally_pq_column_t cols[] = {{"s", TALLY_PQ_STRING}, {"i", TALLY_PQ_INT64}};
    tally_pq_writer_t *w = new_writer(cols, 2, TALLY_PQ_SNAPPY);
    tally_pq_set_page_size(w, 20);
    /* strings: 4+5, 4+5 | 4+30 | 4+0, 4+1, 4+2 | 4+3 => 4 pages; ints: 16 bytes a page => 4 pages */
    static const char *const s[] = {"aaaaa", "bbbbb", "cccccccccccccccccccccccccccccc", "", "d", "ee", "fff"};
    for (int i = 0; i < 7; i++) {
        add_str(w, 0, s[i], strlen(s[i]));
        ASSERT_EQ(tally_pq_add_int64(w, 1, i), 0);
    }
    pq_file_t f;
    read_back(w, &f, NULL);
    ASSERT_EQ(f.cols[0].npages, 4);
    ASSERT_EQ(f.cols[1].npages, 4);
    for (int i = 0; i < 7; i++) {
        expect_str(&f.cols[0], (size_t)i, s[i], strlen(s[i]));
        ASSERT_EQ(f.cols[1].ints[i], i);
    }
    expect_str_stats(&f.cols[0], "", 0, "fff", 3);
    pq_free(&f);
    tally_pq_writer_free(w);
}

/* The first page of a one-value INT64 column, byte for byte, as the compact protocol spells it. */
static void test_page_header_bytes(void) {
    static const tally_pq_column_t cols[] = {{"n", TALLY_PQ_INT64}};
    tally_pq_writer_t *w = new_writer(cols, 1, TALLY_PQ_NONE);
    ASSERT_EQ(tally_pq_add_int64(w, 0, -2), 0);
    size_t len;
    uint8_t *buf = write_file(w, &len);
#define V 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff /* -2 little-endian */
    static const uint8_t want[] = {
        'P', 'A', 'R', '1',
        0x15, 0x00,             /* 1: type i32 DATA_PAGE (zigzag 0) */
        0x15, 0x10,             /* 2: uncompressed_page_size 8 */
        0x15, 0x10,             /* 3: compressed_page_size 8 */
        0x2c,                   /* 5: data_page_header struct (delta 2) */
        0x15, 0x02,             /*   1: num_values 1 */
        0x15, 0x00,             /*   2: encoding PLAIN */
        0x15, 0x06,             /*   3: definition_level_encoding RLE (3) */
        0x15, 0x06,             /*   4: repetition_level_encoding RLE */
        0x1c,                   /*   5: statistics struct */
        0x18, 0x08, V,          /*     1: max (deprecated) binary of 8 */
        0x18, 0x08, V,          /*     2: min (deprecated) */
        0x16, 0x00,             /*     3: null_count i64 0 */
        0x28, 0x08, V,          /*     5: max_value (delta 2) */
        0x18, 0x08, V,          /*     6: min_value */
        0x11,                   /*     7: is_max_value_exact true */
        0x11,                   /*     8: is_min_value_exact true */
        0x00, 0x00, 0x00,       /* stops: statistics, data_page_header, PageHeader */
        V,                      /* the value */
    };
#undef V
    ASSERT_GE(len, sizeof(want));
    ASSERT(memcmp(buf, want, sizeof(want)) == 0);
    free(buf);
    tally_pq_writer_free(w);
}

static void test_refusals(void) {
    char err[256];
    err[0] = 0;
    ASSERT(!tally_pq_writer_new(epoch_cols, 0, TALLY_PQ_NONE, err, sizeof(err)) && err[0]);
    err[0] = 0;
    ASSERT(!tally_pq_writer_new(epoch_cols, 3, (tally_pq_codec_t)9, err, sizeof(err)) && err[0]);
    static const tally_pq_column_t dup[] = {{"a", TALLY_PQ_INT64}, {"a", TALLY_PQ_STRING}};
    err[0] = 0;
    ASSERT(!tally_pq_writer_new(dup, 2, TALLY_PQ_NONE, err, sizeof(err)) && strstr(err, "twice"));
    static const tally_pq_column_t noname[] = {{"", TALLY_PQ_INT64}};
    ASSERT(!tally_pq_writer_new(noname, 1, TALLY_PQ_NONE, err, sizeof(err)));
    static const tally_pq_column_t badtype[] = {{"x", (tally_pq_type_t)7}};
    ASSERT(!tally_pq_writer_new(badtype, 1, TALLY_PQ_NONE, err, sizeof(err)));

    tally_pq_writer_t *w = new_writer(epoch_cols, 3, TALLY_PQ_ZSTD);
    errno = 0;
    ASSERT_EQ(tally_pq_add_int64(w, 0, 1), -1); /* a string column */
    ASSERT_EQ(errno, EINVAL);
    ASSERT_EQ(tally_pq_add_string(w, 1, (const uint8_t *)"x", 1), -1);
    ASSERT_EQ(tally_pq_add_int64(w, 3, 1), -1);
    ASSERT_EQ(tally_pq_add_int64(w, -1, 1), -1);
    ASSERT_EQ(tally_pq_add_string(w, 0, (const uint8_t *)"x", TALLY_PQ_MAX_STRING + 1), -1);
    ADD_LIT(w, 0, "x");
    ASSERT_EQ(tally_pq_add_int64(w, 1, 1), 0);
    ASSERT_EQ(tally_pq_rows(w), 0);
    int fd = memfd_create("pq", 0);
    err[0] = 0;
    ASSERT_EQ(tally_pq_write(w, fd, err, sizeof(err)), -1); /* epoch has no value */
    ASSERT(strstr(err, "epoch"));
    ASSERT_EQ(lseek(fd, 0, SEEK_END), 0); /* nothing written */
    close(fd);
    ASSERT_EQ(tally_pq_add_int64(w, 2, 1), 0);
    ASSERT_EQ(tally_pq_rows(w), 1);
    /* A write error comes back with its errno text. */
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    ASSERT_EQ(tally_pq_write(w, p[1], err, sizeof(err)), -1);
    ASSERT(strstr(err, strerror(EPIPE)));
    close(p[1]);
    tally_pq_writer_free(w);
    tally_pq_writer_free(NULL);

    tally_pq_codec_t c = TALLY_PQ_NONE;
    ASSERT_EQ(tally_pq_codec_parse("zstd", &c), 0);
    ASSERT_EQ(c, TALLY_PQ_ZSTD);
    ASSERT_EQ(tally_pq_codec_parse("snappy", &c), 0);
    ASSERT_EQ(c, TALLY_PQ_SNAPPY);
    ASSERT_EQ(tally_pq_codec_parse("none", &c), 0);
    ASSERT_EQ(c, TALLY_PQ_NONE);
    ASSERT_EQ(tally_pq_codec_parse("gzip", &c), -1);
    ASSERT_EQ(tally_pq_codec_parse("ZSTD", &c), -1);
    ASSERT_EQ(tally_pq_codec_parse(NULL, &c), -1);
    for (int k = 0; k < 3; k++) {
        ASSERT_EQ(tally_pq_codec_parse(tally_pq_codec_name(codecs[k]), &c), 0);
        ASSERT_EQ(c, codecs[k]);
    }
}

/* The same writer written twice gives the same bytes (tally may retry a failed write). */
static void test_write_twice(void) {
    tally_pq_writer_t *w = new_writer(epoch_cols, 3, TALLY_PQ_ZSTD);
    for (int i = 0; i < 1000; i++) {
        char word[16];
        int l = snprintf(word, sizeof(word), "word%d", i);
        add_str(w, 0, word, (size_t)l);
        ASSERT_EQ(tally_pq_add_int64(w, 1, i * 3), 0);
        ASSERT_EQ(tally_pq_add_int64(w, 2, 9), 0);
    }
    size_t a, b;
    uint8_t *x = write_file(w, &a), *y = write_file(w, &b);
    ASSERT_MEM_EQ(x, a, y, b);
    free(x);
    free(y);
    tally_pq_writer_free(w);
}

/* Offsets count from the file's own first byte, wherever the fd stood (e.g. after other bytes). */
static void test_fd_not_at_start(void) {
    tally_pq_writer_t *w = new_writer(epoch_cols, 3, TALLY_PQ_SNAPPY);
    ADD_LIT(w, 0, "x");
    ASSERT_EQ(tally_pq_add_int64(w, 1, 1), 0);
    ASSERT_EQ(tally_pq_add_int64(w, 2, 2), 0);
    size_t alone;
    uint8_t *want = write_file(w, &alone);
    int fd = memfd_create("pq", 0);
    ASSERT(fd >= 0);
    char junk[100], err[256];
    memset(junk, 'j', sizeof(junk));
    ASSERT_EQ(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    ASSERT_EQ(tally_pq_write(w, fd, err, sizeof(err)), 0);
    ASSERT_EQ(lseek(fd, 0, SEEK_END), (off_t)(sizeof(junk) + alone));
    uint8_t *got = malloc(alone);
    ASSERT(got);
    ASSERT_EQ(pread(fd, got, alone, sizeof(junk)), (ssize_t)alone);
    ASSERT_MEM_EQ(got, alone, want, alone);
    close(fd);
    free(got);
    free(want);
    tally_pq_writer_free(w);
}

int main(void) {
    RUN(test_zero_rows);
    RUN(test_one_row);
    RUN(test_odd_values);
    RUN(test_order);
    RUN(test_many_rows);
    RUN(test_page_cut);
    RUN(test_page_header_bytes);
    RUN(test_refusals);
    RUN(test_write_twice);
    RUN(test_fd_not_at_start);
    RUN_SUMMARY("parquet");
    return 0;
}
