/* SPDX-License-Identifier: MIT */
/* The file sink's part files without an engine (the files suite drives it through one): the rows of
 * an epoch committed through tally_filesink_commit and read back. Windowed rows (window.size.ms > 0:
 * each row's key is a tally_window_key) in each format and output mode: the JSON line is the Kafka
 * value of Spark's to_json(struct(window, word, count)), CSV has window_start,window_end as Spark's
 * CSV writer prints timestamps, Parquet has them as INT64 TIMESTAMP(UTC, MILLIS); the epoch column
 * in update and complete mode, none in append. Checked byte for byte, through the strict Parquet
 * reader (pq_read.c) and through DuckDB (tests/readers/dump-duckdb.mjs, when `npm ci` installed it
 * there). Plain rows keep their columns; a key that is not a window key fails the commit. */
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "pq_read.h"
#include "tally/buf.h"
#include "tally/config.h"
#include "tally/err.h"
#include "tally/filesink.h"
#include "tally/window.h"
#include "unit.h"

static char root[256];

/* 10-minute windows; the starts below are multiples of it. */
#define SIZE 600000
#define T1300 INT64_C(1796216400000) /* 2026-12-02T13:00:00.000Z */
#define T1310 INT64_C(1796217000000)
#define T1320 INT64_C(1796217600000)

typedef struct {
    int64_t start;
    const char *word;
    size_t len;
    int64_t count;
} wrow_t;

/* Words a CSV writer must quote, a JSON writer escape, and bytes that are not UTF-8 (U+FFFD); a
 * window before the epoch and one ending on it. */
static const wrow_t rows[] = {
    {T1300, "cat", 3, 4},
    {-SIZE, "a,b \"q\"", 7, 1},
    {T1300, "caf\xc3\xa9 \xff", 7, 2},
    {T1310, "cat", 3, 9},
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* What each row becomes: the JSON value before ,"count", the CSV fields before the count, and the
 * word as UTF-8 (what Parquet and DuckDB hold). Written out by hand, not by the code under test. */
static const struct {
    const char *json_head, *csv_head, *utf8;
    const char *start_ms, *end_ms;
} want[] = {
    {"{\"window\":{\"start\":\"2026-12-02T13:00:00.000Z\",\"end\":\"2026-12-02T13:10:00.000Z\"},\"word\":\"cat\"",
     "2026-12-02T13:00:00.000Z,2026-12-02T13:10:00.000Z,cat", "cat", "1796216400000", "1796217000000"},
    {"{\"window\":{\"start\":\"1969-12-31T23:50:00.000Z\",\"end\":\"1970-01-01T00:00:00.000Z\"},\"word\":\"a,b \\\"q\\\"\"",
     "1969-12-31T23:50:00.000Z,1970-01-01T00:00:00.000Z,\"a,b \"\"q\"\"\"", "a,b \"q\"", "-600000", "0"},
    {"{\"window\":{\"start\":\"2026-12-02T13:00:00.000Z\",\"end\":\"2026-12-02T13:10:00.000Z\"},\"word\":\"caf\xc3\xa9 \xef\xbf\xbd\"",
     "2026-12-02T13:00:00.000Z,2026-12-02T13:10:00.000Z,caf\xc3\xa9 \xef\xbf\xbd", "caf\xc3\xa9 \xef\xbf\xbd",
     "1796216400000", "1796217000000"},
    {"{\"window\":{\"start\":\"2026-12-02T13:10:00.000Z\",\"end\":\"2026-12-02T13:20:00.000Z\"},\"word\":\"cat\"",
     "2026-12-02T13:10:00.000Z,2026-12-02T13:20:00.000Z,cat", "cat", "1796217000000", "1796217600000"},
};

/* The rows callback: a table of (start, word, count), each word handed over as its window key. */
typedef struct {
    const wrow_t *rows;
    size_t n;
    bool plain; /* the words as they are (no windows) */
} source_t;

static void each_row(void *opaque, tally_filesink_row_fn row, void *row_opaque) {
    const source_t *s = opaque;
    for (size_t i = 0; i < s->n; i++) {
        uint8_t key[TALLY_WINDOW_KEY_PREFIX + 64];
        ASSERT_LE(s->rows[i].len, 64);
        if (s->plain) {
            row((const uint8_t *)s->rows[i].word, s->rows[i].len, s->rows[i].count, row_opaque);
        } else {
            size_t k = tally_window_key(key, s->rows[i].start, (const uint8_t *)s->rows[i].word, s->rows[i].len);
            row(key, k, s->rows[i].count, row_opaque);
        }
    }
}

/* A sink on a new directory root/name with these keys. */
static tally_filesink_t *open_sink(tally_config_t *conf, const char *name, const char *format, const char *mode,
                                   int64_t window_size) {
    char kv[600], err[600] = "";
    tally_config_init(conf);
    snprintf(kv, sizeof(kv), "output.path=%s/%s", root, name);
    ASSERT_EQ(tally_config_set(conf, kv, err, sizeof(err)), 0);
    snprintf(kv, sizeof(kv), "output.format=%s", format);
    ASSERT_EQ(tally_config_set(conf, kv, err, sizeof(err)), 0);
    snprintf(kv, sizeof(kv), "output.mode=%s", mode);
    ASSERT_EQ(tally_config_set(conf, kv, err, sizeof(err)), 0);
    snprintf(kv, sizeof(kv), "window.size.ms=%lld", (long long)window_size);
    ASSERT_EQ(tally_config_set(conf, kv, err, sizeof(err)), 0);
    tally_filesink_t *fs = NULL;
    if (tally_filesink_open(conf, &fs, err, sizeof(err)) != 0) TH_FAIL("tally_filesink_open: %s", err);
    return fs;
}

/* Commits the rows as `epoch` (the directory's first batch) and returns the part file's path. */
static const char *commit(tally_filesink_t *fs, const tally_config_t *conf, uint64_t epoch, const source_t *src) {
    static char path[700];
    char err[600] = "";
    if (tally_filesink_commit(fs, epoch, each_row, (void *)src, NULL, 0, err, sizeof(err)) != 0)
        TH_FAIL("tally_filesink_commit: %s", err);
    ASSERT_EQ(tally_filesink_epoch(fs), epoch);
    const char *ext = conf->output_format == TALLY_FORMAT_CSV ? "csv" : conf->output_format == TALLY_FORMAT_PARQUET ? "parquet" : "jsonl";
    snprintf(path, sizeof(path), "%s/part-00000-e%llu.%s", conf->output_path, (unsigned long long)epoch, ext);
    struct stat st;
    if (stat(path, &st) != 0) TH_FAIL("no part file %s", path);
    return path;
}

static char *slurp(const char *path, size_t *len) {
    tally_buf_t b;
    tally_buf_init(&b);
    if (tally_buf_read_file(&b, path) != 0) TH_FAIL("cannot read %s", path);
    *len = b.len;
    return b.data ? b.data : calloc(1, 1);
}

/* The part file's text against the expected text, byte for byte. */
static void expect_text(const char *path, const tally_buf_t *want_text) {
    size_t len;
    char *got = slurp(path, &len);
    ASSERT_MEM_EQ(got, len, want_text->data, want_text->len);
    free(got);
}

/* ---- DuckDB (npm, tests/readers) ----------------------------------------------------------- */

static bool duckdb_there(void) {
    const char *src = getenv("TALLY_SOURCE_DIR");
    if (src && th_system("command -v node >/dev/null && test -d %s/tests/readers/node_modules/@duckdb/node-api", src) == 0)
        return true;
    const char *req = getenv("TALLY_REQUIRE_BROKER");
    if (req && strcmp(req, "1") == 0) TH_FAIL("DuckDB is not installed in tests/readers (scripts/test runs npm ci there)");
    return false;
}

/* What DuckDB reads from the file: its schema line, then one JSON array a row. */
static void expect_duckdb(const char *format, const char *path, const tally_buf_t *want_out) {
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "node %s/tests/readers/dump-duckdb.mjs %s '%s'", getenv("TALLY_SOURCE_DIR"), format, path);
    FILE *p = popen(cmd, "r");
    ASSERT(p);
    tally_buf_t got;
    tally_buf_init(&got);
    char chunk[4096];
    size_t k;
    while ((k = fread(chunk, 1, sizeof(chunk), p)) > 0) tally_buf_append(&got, chunk, k);
    ASSERT_EQ(pclose(p), 0);
    ASSERT_MEM_EQ(got.data ? got.data : "", got.len, want_out->data, want_out->len);
    tally_buf_term(&got);
}

/* A JSON string as JSON.stringify writes it (the words here need only \" escaped). */
static void js_str(tally_buf_t *b, const char *s) {
    tally_buf_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') tally_buf_puts(b, "\\");
        tally_buf_append(b, s, 1);
    }
    tally_buf_puts(b, "\"");
}

/* ---- windowed rows -------------------------------------------------------------------------- */

static const char *const modes[] = {"update", "complete", "append"};

static void test_windowed_jsonl(void) {
    for (int m = 0; m < 3; m++) {
        bool epoch = m != 2;
        char name[32];
        snprintf(name, sizeof(name), "w-jsonl-%s", modes[m]);
        tally_config_t conf;
        tally_filesink_t *fs = open_sink(&conf, name, "jsonl", modes[m], SIZE);
        source_t src = {rows, NROWS, false};
        const char *path = commit(fs, &conf, 7, &src);
        tally_buf_t w;
        tally_buf_init(&w);
        for (size_t i = 0; i < NROWS; i++)
            tally_buf_printf(&w, "%s,\"count\":%lld%s}\n", want[i].json_head, (long long)rows[i].count,
                             epoch ? ",\"epoch\":7" : "");
        expect_text(path, &w);
        if (duckdb_there()) {
            tally_buf_reset(&w);
            tally_buf_printf(&w, "window STRUCT(\"start\" TIMESTAMP, \"end\" TIMESTAMP), word VARCHAR, count BIGINT%s\n",
                             epoch ? ", epoch BIGINT" : "");
            for (size_t i = 0; i < NROWS; i++) {
                tally_buf_printf(&w, "[\"%s\",\"%s\",", want[i].start_ms, want[i].end_ms);
                js_str(&w, want[i].utf8);
                tally_buf_printf(&w, ",\"%lld\"%s]\n", (long long)rows[i].count, epoch ? ",\"7\"" : "");
            }
            expect_duckdb("jsonl", path, &w);
        }
        tally_buf_term(&w);
        tally_filesink_close(fs);
        tally_config_term(&conf);
    }
}

static void test_windowed_csv(void) {
    for (int m = 0; m < 3; m++) {
        bool epoch = m != 2;
        char name[32];
        snprintf(name, sizeof(name), "w-csv-%s", modes[m]);
        tally_config_t conf;
        tally_filesink_t *fs = open_sink(&conf, name, "csv", modes[m], SIZE);
        source_t src = {rows, NROWS, false};
        const char *path = commit(fs, &conf, 7, &src);
        tally_buf_t w;
        tally_buf_init(&w);
        tally_buf_printf(&w, "window_start,window_end,word,count%s\r\n", epoch ? ",epoch" : "");
        for (size_t i = 0; i < NROWS; i++)
            tally_buf_printf(&w, "%s,%lld%s\r\n", want[i].csv_head, (long long)rows[i].count, epoch ? ",7" : "");
        expect_text(path, &w);
        if (duckdb_there()) {
            /* DuckDB's own CSV sniffing sees the timestamps as instants. */
            tally_buf_reset(&w);
            tally_buf_printf(&w, "window_start TIMESTAMP WITH TIME ZONE, window_end TIMESTAMP WITH TIME ZONE, "
                             "word VARCHAR, count BIGINT%s\n", epoch ? ", epoch BIGINT" : "");
            for (size_t i = 0; i < NROWS; i++) {
                tally_buf_printf(&w, "[\"%s\",\"%s\",", want[i].start_ms, want[i].end_ms);
                js_str(&w, want[i].utf8);
                tally_buf_printf(&w, ",\"%lld\"%s]\n", (long long)rows[i].count, epoch ? ",\"7\"" : "");
            }
            expect_duckdb("csv", path, &w);
        }
        tally_buf_term(&w);
        tally_filesink_close(fs);
        tally_config_term(&conf);
    }
}

static int64_t le64_at(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return (int64_t)v;
}

static void expect_int_stats(const pq_col_t *c, int64_t min, int64_t max) {
    ASSERT(c->has_stats && c->has_deprecated);
    ASSERT_EQ(c->null_count, 0);
    ASSERT_EQ(c->min_len, 8);
    ASSERT_EQ(c->max_len, 8);
    ASSERT_EQ(le64_at(c->min_value), min);
    ASSERT_EQ(le64_at(c->max_value), max);
}

static void test_windowed_parquet(void) {
    for (int m = 0; m < 3; m++) {
        bool epoch = m != 2;
        char name[32];
        snprintf(name, sizeof(name), "w-parquet-%s", modes[m]);
        tally_config_t conf;
        tally_filesink_t *fs = open_sink(&conf, name, "parquet", modes[m], SIZE);
        source_t src = {rows, NROWS, false};
        const char *path = commit(fs, &conf, 7, &src);
        size_t len;
        char *data = slurp(path, &len);
        pq_file_t f;
        char err[512] = "";
        if (pq_read((const uint8_t *)data, len, &f, err, sizeof(err)) != 0) TH_FAIL("pq_read %s: %s", path, err);
        ASSERT_EQ(f.ncols, epoch ? 5 : 4);
        ASSERT_EQ(f.num_rows, (int64_t)NROWS);
        static const char *const names[] = {"window_start", "window_end", "word", "count", "epoch"};
        for (int c = 0; c < f.ncols; c++) {
            const pq_col_t *col = &f.cols[c];
            ASSERT_STR_EQ(col->name, names[c]);
            ASSERT_EQ(col->repetition, 0); /* REQUIRED */
            if (c < 2) {
                /* INT64, LogicalType TIMESTAMP(isAdjustedToUTC=true, MILLIS), ConvertedType TIMESTAMP_MILLIS */
                ASSERT_EQ(col->phys, PQR_INT64);
                ASSERT_EQ(col->logical, PQR_LOGICAL_TIMESTAMP);
                ASSERT_EQ(col->ts_utc, 1);
                ASSERT_EQ(col->ts_unit, PQR_UNIT_MILLIS);
                ASSERT_EQ(col->converted, PQR_TIMESTAMP_MILLIS);
            } else if (c == 2) {
                ASSERT_EQ(col->phys, PQR_BYTE_ARRAY);
                ASSERT_EQ(col->logical, PQR_LOGICAL_STRING);
            } else {
                ASSERT_EQ(col->phys, PQR_INT64);
                ASSERT_EQ(col->logical, 0);
                ASSERT_EQ(col->converted, -1);
            }
        }
        for (size_t i = 0; i < NROWS; i++) {
            ASSERT_EQ(f.cols[0].ints[i], rows[i].start);
            ASSERT_EQ(f.cols[1].ints[i], rows[i].start + SIZE);
            size_t wl;
            const uint8_t *wd = pq_str(&f.cols[2], i, &wl);
            ASSERT_MEM_EQ(wd, wl, want[i].utf8, strlen(want[i].utf8));
            ASSERT_EQ(f.cols[3].ints[i], rows[i].count);
            if (epoch) ASSERT_EQ(f.cols[4].ints[i], 7);
        }
        /* Statistics as for every INT64 column (pq_read also checks them against the values). */
        expect_int_stats(&f.cols[0], -SIZE, T1310);
        expect_int_stats(&f.cols[1], 0, T1320);
        expect_int_stats(&f.cols[3], 1, 9);
        if (epoch) expect_int_stats(&f.cols[4], 7, 7);
        pq_free(&f);
        free(data);
        if (duckdb_there()) {
            tally_buf_t w;
            tally_buf_init(&w);
            tally_buf_printf(&w, "window_start TIMESTAMP WITH TIME ZONE, window_end TIMESTAMP WITH TIME ZONE, "
                             "word VARCHAR, count BIGINT%s\n", epoch ? ", epoch BIGINT" : "");
            for (size_t i = 0; i < NROWS; i++) {
                tally_buf_printf(&w, "[\"%s\",\"%s\",", want[i].start_ms, want[i].end_ms);
                js_str(&w, want[i].utf8);
                tally_buf_printf(&w, ",\"%lld\"%s]\n", (long long)rows[i].count, epoch ? ",\"7\"" : "");
            }
            expect_duckdb("parquet", path, &w);
            tally_buf_term(&w);
        }
        tally_filesink_close(fs);
        tally_config_term(&conf);
    }
}

/* Years outside 0000..9999 as Spark's writers spell them (the same text in CSV and JSON). */
static void test_windowed_far_years(void) {
    static const wrow_t far[] = {
        {INT64_C(253402300800000), "x", 1, 1},   /* +10000-01-01T00:00:00.000Z */
        {INT64_C(-62198755200000), "y", 1, 2},   /* -0001-01-01T00:00:00.000Z (2 BC) */
    };
    tally_config_t conf;
    tally_filesink_t *fs = open_sink(&conf, "w-far", "csv", "append", 1000);
    source_t src = {far, 2, false};
    const char *path = commit(fs, &conf, 3, &src);
    tally_buf_t w;
    tally_buf_init(&w);
    tally_buf_puts(&w, "window_start,window_end,word,count\r\n"
                       "+10000-01-01T00:00:00.000Z,+10000-01-01T00:00:01.000Z,x,1\r\n"
                       "-0001-01-01T00:00:00.000Z,-0001-01-01T00:00:01.000Z,y,2\r\n");
    expect_text(path, &w);
    tally_buf_term(&w);
    tally_filesink_close(fs);
    tally_config_term(&conf);
}

/* A key that holds no window, or a window whose end is past int64, fails the commit: nothing of
 * the epoch stays, and the next epoch commits as the first batch. */
static void test_windowed_bad_key(void) {
    static const char *const formats[] = {"jsonl", "csv", "parquet"};
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof(name), "w-bad-%s", formats[k]);
        tally_config_t conf;
        tally_filesink_t *fs = open_sink(&conf, name, formats[k], "update", SIZE);
        char err[600] = "";
        source_t plain = {rows, 1, true}; /* "cat": 3 bytes, shorter than the window prefix */
        ASSERT_NE(tally_filesink_commit(fs, 1, each_row, &plain, NULL, 0, err, sizeof(err)), 0);
        ASSERT(strstr(err, "window"));
        static const wrow_t late[] = {{INT64_MAX - 5, "z", 1, 1}};
        source_t over = {late, 1, false};
        err[0] = 0;
        ASSERT_NE(tally_filesink_commit(fs, 1, each_row, &over, NULL, 0, err, sizeof(err)), 0);
        ASSERT(strstr(err, "window"));
        ASSERT_EQ(tally_filesink_epoch(fs), 0);
        /* Nothing left behind: no part file, no temporary, no log entry. */
        DIR *d = opendir(conf.output_path);
        ASSERT(d);
        struct dirent *de;
        while ((de = readdir(d)))
            if (strncmp(de->d_name, "part-", 5) == 0) TH_FAIL("%s left in %s", de->d_name, conf.output_path);
        closedir(d);
        char p[700];
        snprintf(p, sizeof(p), "%s/_spark_metadata/0", conf.output_path);
        ASSERT(access(p, F_OK) != 0);
        source_t good = {rows, NROWS, false};
        commit(fs, &conf, 1, &good);
        tally_filesink_close(fs);
        tally_config_term(&conf);
    }
}

/* ---- plain rows: the columns of before, and append's without an epoch ----------------------- */

static void test_plain_columns(void) {
    static const wrow_t plain[] = {{0, "cat", 3, 4}, {0, "a,b", 3, 1}};
    for (int m = 0; m < 3; m++) {
        bool epoch = m != 2;
        char name[32];
        tally_buf_t w;
        tally_buf_init(&w);
        source_t src = {plain, 2, true};

        snprintf(name, sizeof(name), "p-jsonl-%s", modes[m]);
        tally_config_t conf;
        tally_filesink_t *fs = open_sink(&conf, name, "jsonl", modes[m], 0);
        const char *path = commit(fs, &conf, 5, &src);
        tally_buf_printf(&w, "{\"word\":\"cat\",\"count\":4%s}\n{\"word\":\"a,b\",\"count\":1%s}\n",
                         epoch ? ",\"epoch\":5" : "", epoch ? ",\"epoch\":5" : "");
        expect_text(path, &w);
        tally_filesink_close(fs);
        tally_config_term(&conf);

        snprintf(name, sizeof(name), "p-csv-%s", modes[m]);
        fs = open_sink(&conf, name, "csv", modes[m], 0);
        path = commit(fs, &conf, 5, &src);
        tally_buf_reset(&w);
        tally_buf_printf(&w, "word,count%s\r\ncat,4%s\r\n\"a,b\",1%s\r\n", epoch ? ",epoch" : "", epoch ? ",5" : "",
                         epoch ? ",5" : "");
        expect_text(path, &w);
        tally_filesink_close(fs);
        tally_config_term(&conf);

        snprintf(name, sizeof(name), "p-parquet-%s", modes[m]);
        fs = open_sink(&conf, name, "parquet", modes[m], 0);
        path = commit(fs, &conf, 5, &src);
        size_t len;
        char *data = slurp(path, &len);
        pq_file_t f;
        char err[512] = "";
        if (pq_read((const uint8_t *)data, len, &f, err, sizeof(err)) != 0) TH_FAIL("pq_read %s: %s", path, err);
        ASSERT_EQ(f.ncols, epoch ? 3 : 2);
        ASSERT_STR_EQ(f.cols[0].name, "word");
        ASSERT_STR_EQ(f.cols[1].name, "count");
        if (epoch) {
            ASSERT_STR_EQ(f.cols[2].name, "epoch");
            ASSERT_EQ(f.cols[2].ints[1], 5);
        }
        ASSERT_EQ(f.cols[1].ints[1], 1);
        pq_free(&f);
        free(data);
        tally_filesink_close(fs);
        tally_config_term(&conf);
        tally_buf_term(&w);
    }
}

int main(void) {
    snprintf(root, sizeof(root), "%s/tally-filesink-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ASSERT(mkdtemp(root));
    if (!duckdb_there()) printf("# DuckDB checks skipped: run `npm ci` in tests/readers to have them\n");
    RUN(test_windowed_jsonl);
    RUN(test_windowed_csv);
    RUN(test_windowed_parquet);
    RUN(test_windowed_far_years);
    RUN(test_windowed_bad_key);
    RUN(test_plain_columns);
    th_system("rm -rf '%s'", root);
    RUN_SUMMARY("filesink");
    return 0;
}
