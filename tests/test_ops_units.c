/* SPDX-License-Identifier: MIT */
/* The pure parts of operability: top-K against brute force, the librdkafka statistics walker, the
 * Prometheus writer, progress records (valid JSON, per the walker), health rules, snapshots. */
#include <math.h>

#include "harness.h"
#include "tally/buf.h"
#include "tally/health.h"
#include "tally/kstats.h"
#include "tally/progress.h"
#include "tally/prom.h"
#include "tally/snapshot.h"
#include "tally/topk.h"

/* ---- top-K ---- */

#define VOCAB 3000

typedef struct {
    char words[VOCAB][8];
    int64_t counts[VOCAB];
} truth_t;

typedef struct {
    const uint8_t *word[64];
    size_t len[64];
    int64_t count[64];
    size_t n;
} got_t;

static void collect(const uint8_t *word, size_t len, int64_t count, void *opaque) {
    got_t *g = opaque;
    ASSERT_LT(g->n, 64);
    g->word[g->n] = word;
    g->len[g->n] = len;
    g->count[g->n] = count;
    g->n++;
}

static truth_t *sort_truth;

static int by_best(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    if (sort_truth->counts[x] != sort_truth->counts[y]) return sort_truth->counts[x] > sort_truth->counts[y] ? -1 : 1;
    return strcmp(sort_truth->words[x], sort_truth->words[y]);
}

/* Epochs of Zipf-like increments; each epoch offers the words whose count changed, as the engine does. */
static void test_topk_exact(void) {
    truth_t *t = calloc(1, sizeof(*t));
    ASSERT(t);
    for (int i = 0; i < VOCAB; i++) snprintf(t->words[i], sizeof(t->words[i]), "w%d", i);
    tally_topk_t *k = tally_topk_new(50);
    ASSERT(k);
    unsigned long long r = 88172645463325252ULL;
    static int changed[VOCAB];
    for (int epoch = 0; epoch < 200; epoch++) {
        memset(changed, 0, sizeof(changed));
        for (int j = 0; j < 300; j++) {
            th_xorshift(&r);
            /* a drifting skew: late epochs favour other words, so the top set changes over time */
            double u = (double)(r % 1000000) / 1e6;
            int w = (int)(pow(u, 3.0) * VOCAB);
            if (epoch > 100) w = VOCAB - 1 - w;
            t->counts[w] += 1 + (int64_t)(r % 3);
            changed[w] = 1;
        }
        for (int w = 0; w < VOCAB; w++)
            if (changed[w]) ASSERT_EQ(tally_topk_offer(k, (const uint8_t *)t->words[w], strlen(t->words[w]), t->counts[w]), 0);
        ASSERT_LT(tally_topk_size(k), 51);

        int order[VOCAB];
        for (int i = 0; i < VOCAB; i++) order[i] = i;
        sort_truth = t;
        qsort(order, VOCAB, sizeof(int), by_best);
        got_t g = {.n = 0};
        ASSERT_EQ(tally_topk_best(k, 20, collect, &g), 0);
        ASSERT_EQ(g.n, 20);
        for (size_t i = 0; i < g.n; i++) {
            const char *want = t->words[order[i]];
            ASSERT_MEM_EQ(g.word[i], g.len[i], want, strlen(want));
            ASSERT_EQ(g.count[i], t->counts[order[i]]);
        }
    }
    /* n beyond the size gives what there is; clear empties */
    got_t g = {.n = 0};
    tally_topk_t *small = tally_topk_new(3);
    tally_topk_offer(small, (const uint8_t *)"a", 1, 5);
    tally_topk_offer(small, (const uint8_t *)"b", 1, 5);
    ASSERT_EQ(tally_topk_best(small, 10, collect, &g), 0);
    ASSERT_EQ(g.n, 2);
    ASSERT_MEM_EQ(g.word[0], g.len[0], "a", 1); /* ties: bytewise smaller first */
    tally_topk_clear(small);
    ASSERT_EQ(tally_topk_size(small), 0);
    tally_topk_destroy(small);
    tally_topk_destroy(k);
    free(t);
    fprintf(stderr, "topk: exact over 200 epochs\n");
}

/* Words with every byte value, and many evictions: the index must stay consistent. */
static void test_topk_churn(void) {
    tally_topk_t *k = tally_topk_new(7);
    uint8_t word[3];
    for (int i = 0; i < 20000; i++) {
        word[0] = (uint8_t)(i & 0xff);
        word[1] = (uint8_t)((i >> 8) & 0xff);
        word[2] = 0;
        ASSERT_EQ(tally_topk_offer(k, word, 3, i), 0);
    }
    got_t g = {.n = 0};
    tally_topk_best(k, 7, collect, &g);
    ASSERT_EQ(g.n, 7);
    for (size_t i = 0; i < 7; i++) ASSERT_EQ(g.count[i], 19999 - (int64_t)i);
    /* a word already in the map grows: no duplicate entry */
    word[0] = (uint8_t)(19993 & 0xff);
    word[1] = (uint8_t)(19993 >> 8);
    tally_topk_offer(k, word, 3, 100000);
    g.n = 0;
    tally_topk_best(k, 7, collect, &g);
    ASSERT_EQ(g.count[0], 100000);
    ASSERT_EQ(g.count[6], 19994);
    tally_topk_destroy(k);
}

/* ---- statistics walker ---- */

typedef struct {
    int numbers;
    double sum;
    char last_path[256];
} walk_t;

static void on_num(const char *const *path, int depth, double v, void *opaque) {
    walk_t *w = opaque;
    w->numbers++;
    w->sum += v;
    size_t n = 0;
    for (int i = 0; i < depth; i++) n += (size_t)snprintf(w->last_path + n, sizeof(w->last_path) - n, "/%s", path[i]);
}

static const char stats_json[] =
    "{\"name\":\"rdkafka#consumer-1\",\"type\":\"consumer\",\"ts\":5,\"msg_cnt\":0,\"txmsgs\":12,\"rxmsgs\":200000,"
    "\"brokers\":{\"127.0.0.1:9092/1\":{\"name\":\"x\",\"rtt\":{\"min\":1,\"avg\":2.5e0},\"toppars\":{}}},"
    "\"topics\":{\"in\":{\"topic\":\"in\",\"partitions\":{"
    "\"0\":{\"partition\":0,\"fetchq_cnt\":7,\"hi_offset\":1000,\"app_offset\":990,\"consumer_lag\":10,\"txmsgs\":0},"
    "\"1\":{\"partition\":1,\"fetchq_cnt\":0,\"hi_offset\":5,\"app_offset\":-1001,\"consumer_lag\":-1},"
    "\"-1\":{\"partition\":-1,\"consumer_lag\":-1}}},"
    "\"we\\\"ird\\u0041\":{\"partitions\":{\"3\":{\"hi_offset\":42}}}},"
    "\"cgrp\":{\"state\":\"up\",\"list\":[1,2,[3]],\"t\":true,\"f\":false,\"n\":null}}";

static void test_kstats(void) {
    walk_t w = {0};
    ASSERT_EQ(tally_kstats_walk(stats_json, strlen(stats_json), on_num, &w), 0);
    ASSERT_STR_EQ(w.last_path, "/cgrp/list/#/#");
    ASSERT_EQ(w.numbers, 23);
    /* librdkafka's length may count the terminating NUL */
    ASSERT_EQ(tally_kstats_walk(stats_json, sizeof(stats_json), NULL, NULL), 0);

    tally_kstats_t s;
    tally_kstats_init(&s);
    ASSERT_EQ(tally_kstats_parse(&s, stats_json, strlen(stats_json)), 0);
    ASSERT_EQ(s.msg_cnt, 0);
    ASSERT_EQ(s.txmsgs, 12);
    ASSERT_EQ(s.rxmsgs, 200000);
    ASSERT_EQ(s.nparts, 3);
    ASSERT_STR_EQ(s.parts[0].topic, "in");
    ASSERT_EQ(s.parts[0].partition, 0);
    ASSERT_EQ(s.parts[0].consumer_lag, 10);
    ASSERT_EQ(s.parts[0].fetchq_cnt, 7);
    ASSERT_EQ(s.parts[0].hi_offset, 1000);
    ASSERT_EQ(s.parts[0].app_offset, 990);
    ASSERT_EQ(s.parts[1].consumer_lag, -1);
    ASSERT_STR_EQ(s.parts[2].topic, "we\"irdA");
    ASSERT_EQ(s.parts[2].partition, 3);
    ASSERT_EQ(s.parts[2].hi_offset, 42);
    ASSERT_EQ(s.parts[2].consumer_lag, -1);

    /* malformed texts are refused, never read past their end */
    const char *bad[] = {"", "{", "{\"a\":}", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "01", "1.", "-", "\"abc",
                         "{\"a\":\"\\x\"}", "{\"a\":tru}", "{\"a\":1}x", "\"\\u12\"", "{\"a\":\"\x01\"}", "1e"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (tally_kstats_walk(bad[i], strlen(bad[i]), NULL, NULL) != -1) TH_FAIL("accepted malformed %s", bad[i]);
    /* nesting deeper than the limit */
    char deep[64] = {0};
    for (int i = 0; i < 40; i++) deep[i] = '[';
    ASSERT_EQ(tally_kstats_walk(deep, strlen(deep), NULL, NULL), -1);
    /* a truncated copy of a valid text at every length fails cleanly (ASan/valgrind watch the reads) */
    for (size_t n = 0; n < strlen(stats_json); n++) {
        char *cut = malloc(n ? n : 1);
        memcpy(cut, stats_json, n);
        ASSERT_EQ(tally_kstats_parse(&s, cut, n), -1);
        free(cut);
    }
    tally_kstats_term(&s);
}

/* ---- Prometheus text ---- */

static void test_prom(void) {
    tally_buf_t b;
    tally_buf_init(&b);
    tally_prom_family(&b, "x_total", "counter", "Lines with a \\ and\na newline.");
    const char *labels[] = {"topic", "a\"b\\c\nd", "partition", "3", NULL};
    tally_prom_uint(&b, "x_total", labels, 18446744073709551615ULL);
    tally_prom_int(&b, "x_total", NULL, -5);
    tally_prom_float(&b, "x_total", NULL, 0.25);
    tally_prom_float(&b, "x_total", NULL, NAN);
    tally_prom_float(&b, "x_total", NULL, -INFINITY);
    ASSERT(tally_buf_ok(&b));
    ASSERT_STR_EQ(b.data, "# HELP x_total Lines with a \\\\ and\\na newline.\n"
                          "# TYPE x_total counter\n"
                          "x_total{topic=\"a\\\"b\\\\c\\nd\",partition=\"3\"} 18446744073709551615\n"
                          "x_total -5\n"
                          "x_total 0.25\n"
                          "x_total NaN\n"
                          "x_total -Inf\n");
    tally_buf_term(&b);
}

static void test_prom_hist(void) {
    tally_prom_hist_t h = {0};
    tally_prom_hist_observe(&h, 0.001); /* on a bound: in that bucket (le is inclusive) */
    tally_prom_hist_observe(&h, 0.3);
    tally_prom_hist_observe(&h, 0.3);
    tally_prom_hist_observe(&h, 60);    /* past the last bound: only +Inf */
    tally_buf_t b;
    tally_buf_init(&b);
    const char *labels[] = {"phase", "commit", NULL};
    tally_prom_hist(&b, "p_seconds", labels, &h);
    ASSERT(tally_buf_ok(&b));
    ASSERT(strstr(b.data, "p_seconds_bucket{phase=\"commit\",le=\"0.001\"} 1\n"));
    ASSERT(strstr(b.data, "p_seconds_bucket{phase=\"commit\",le=\"0.25\"} 1\n"));
    ASSERT(strstr(b.data, "p_seconds_bucket{phase=\"commit\",le=\"0.5\"} 3\n"));
    ASSERT(strstr(b.data, "p_seconds_bucket{phase=\"commit\",le=\"10\"} 3\n"));
    ASSERT(strstr(b.data, "p_seconds_bucket{phase=\"commit\",le=\"+Inf\"} 4\n"));
    ASSERT(strstr(b.data, "p_seconds_sum{phase=\"commit\"} 60.601\n"));
    ASSERT(strstr(b.data, "p_seconds_count{phase=\"commit\"} 4\n"));
    tally_buf_term(&b);
}

/* ---- progress records ---- */

static void test_progress(void) {
    tally_progress_source_t src[2] = {
        {.topic = "in", .partition = 0, .start_offset = 10, .end_offset = 20, .high_watermark = 25},
        {.topic = "in\"x", .partition = 1, .start_offset = 0, .end_offset = 5, .high_watermark = -1},
    };
    tally_progress_t p = {.id = "app", .epoch = 7, .timestamp = 1700000000.5, .lines = 15, .words = 40,
                          .dropped = 1, .input_rate = 15, .processed_rate = -1, .keys_updated = 9,
                          .keys_in_memory = 100, .process_ms = 1.5, .commit_ms = 2, .state_ms = 3,
                          .commits = 7, .aborts = 1, .sink = "kafka:out", .sources = src, .nsources = 2};
    tally_buf_t b;
    tally_buf_init(&b);
    tally_progress_json(&p, true, &b);
    ASSERT(tally_buf_ok(&b));
    ASSERT_EQ(tally_kstats_walk(b.data, b.len, NULL, NULL), 0); /* valid JSON */
    const char *want[] = {"\"epoch\":7", "\"timestamp\":\"2023-11-14T22:13:20.500Z\"", "\"numInputLines\":15",
                          "\"numInputWords\":40", "\"numWordsDropped\":1", "\"inputLinesPerSecond\":15",
                          "\"processedLinesPerSecond\":null", "\"keysUpdated\":9", "\"keysInMemory\":100",
                          "\"process\":1.500", "\"total\":6.500", "\"lag\":null",
                          "{\"topic\":\"in\",\"partition\":0,\"startOffset\":10,\"endOffset\":20,\"latestOffset\":25,\"lag\":5}",
                          "\"topic\":\"in\\\"x\"", "\"transactions\":{\"committed\":7,\"aborted\":1}"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(b.data, want[i])) TH_FAIL("progress record lacks %s: %s", want[i], b.data);
    tally_buf_reset(&b);
    tally_progress_json(&p, false, &b);
    ASSERT(strstr(b.data, "\"numSources\":2") && !strstr(b.data, "\"sources\""));

    /* the history keeps the last `cap`, oldest first, as one JSON array */
    tally_progress_hist_t *h = tally_progress_hist_new(3);
    tally_blob_t *bl = tally_progress_hist_blob(h);
    ASSERT_STR_EQ(bl->data, "[]");
    tally_blob_unref(bl);
    for (int i = 1; i <= 5; i++) {
        char rec[32];
        int n = snprintf(rec, sizeof(rec), "{\"epoch\":%d}", i);
        ASSERT_EQ(tally_progress_hist_add(h, rec, (size_t)n), 0);
    }
    bl = tally_progress_hist_blob(h);
    ASSERT_STR_EQ(bl->data, "[{\"epoch\":3},{\"epoch\":4},{\"epoch\":5}]");
    tally_blob_unref(bl);
    tally_progress_hist_destroy(h);
    tally_buf_term(&b);
}

/* ---- health ---- */

static void test_health(void) {
    tally_health_t h;
    tally_health_eval(NULL, 0, &h);
    ASSERT_EQ(h.code, 503);
    ASSERT_STR_EQ(h.status, "starting");

    ASSERT(tally_health_stall_limit(200) == TALLY_HEALTH_STALL_MIN_S);
    ASSERT(tally_health_stall_limit(1000) == 10.0);

    tally_snap_t *s = tally_snap_new();
    s->state = TALLY_SNAP_RUNNING;
    s->stall_limit_s = 10;
    s->published = 100;
    s->commit_ok = 100;
    tally_health_eval(s, 101, &h);
    ASSERT_EQ(h.code, 200);
    ASSERT_STR_EQ(h.status, "ok");
    tally_buf_t b;
    tally_buf_init(&b);
    tally_health_json(s, &h, 101, &b);
    ASSERT_EQ(tally_kstats_walk(b.data, b.len, NULL, NULL), 0);
    ASSERT(strstr(b.data, "\"status\":\"ok\"") && !strstr(b.data, "reason"));

    /* input waiting and no commit for longer than the limit */
    s->published = 111;
    tally_health_eval(s, 111, &h);
    ASSERT_EQ(h.code, 503);
    ASSERT_STR_EQ(h.status, "stalled");
    /* the control thread stopped publishing */
    s->commit_ok = 111;
    tally_health_eval(s, 125, &h);
    ASSERT_EQ(h.code, 503);
    ASSERT_STR_EQ(h.status, "unresponsive");
    /* a stuck partition, reported by control */
    snprintf(s->problem, sizeof(s->problem), "p0 stuck");
    snprintf(s->problem_kind, sizeof(s->problem_kind), "stuck");
    tally_health_eval(s, 112, &h);
    ASSERT_EQ(h.code, 503);
    ASSERT_STR_EQ(h.status, "stuck");
    ASSERT_STR_EQ(h.reason, "p0 stuck");
    /* lifecycle states win */
    s->state = TALLY_SNAP_STOPPING;
    tally_health_eval(s, 112, &h);
    ASSERT_STR_EQ(h.status, "stopping");
    s->fenced = true;
    tally_health_eval(s, 112, &h);
    ASSERT_STR_EQ(h.status, "fenced");
    tally_buf_reset(&b);
    tally_health_json(s, &h, 112, &b);
    ASSERT(strstr(b.data, "\"reason\":\"fenced: "));

    ASSERT(tally_health_part_stuck(10, 5, 3, 10));
    ASSERT(!tally_health_part_stuck(9.9, 5, 3, 10));
    ASSERT(!tally_health_part_stuck(60, 1, 0, 10)); /* a trailing transaction marker: nothing to read */
    ASSERT(!tally_health_part_stuck(60, 0, 0, 10));
    tally_buf_term(&b);
    tally_snap_release(s);
}

/* ---- snapshots ---- */

static void test_snapshot(void) {
    tally_snapbox_t *box = tally_snapbox_new();
    ASSERT(tally_snapbox_acquire(box) == NULL);
    tally_buf_t b;
    tally_buf_init(&b);
    tally_buf_puts(&b, "[1,22]");
    size_t ends[] = {2, 5};
    tally_blob_t *bl = tally_blob_new(&b, ends, 2);
    tally_snap_t *s1 = tally_snap_new();
    s1->top = tally_blob_ref(bl);
    s1->epoch = 1;
    tally_snapbox_publish(box, s1);
    tally_snap_t *held = tally_snapbox_acquire(box);
    tally_snap_t *s2 = tally_snap_new();
    s2->top = tally_blob_ref(bl);
    s2->epoch = 2;
    tally_snapbox_publish(box, s2);
    /* the reader's snapshot outlives its replacement */
    ASSERT_EQ(held->epoch, 1);
    ASSERT_EQ(held->top->item_end[1], 5);
    tally_snap_release(held);
    tally_snap_t *cur = tally_snapbox_acquire(box);
    ASSERT_EQ(cur->epoch, 2);
    tally_snap_release(cur);
    tally_blob_unref(bl);
    tally_snapbox_destroy(box);

    /* JSON strings from any bytes */
    tally_buf_reset(&b);
    tally_buf_json_str(&b, "a\"\\\n\xff", 5);
    ASSERT_STR_EQ(b.data, "\"a\\\"\\\\\\n\xef\xbf\xbd\"");
    tally_buf_reset(&b);
    tally_buf_json_num(&b, 2.0);
    tally_buf_puts(&b, " ");
    tally_buf_json_num(&b, 0.125);
    tally_buf_puts(&b, " ");
    tally_buf_json_num(&b, NAN);
    ASSERT_STR_EQ(b.data, "2 0.125 null");
    tally_buf_term(&b);
}

int main(void) {
    test_topk_exact();
    test_topk_churn();
    test_kstats();
    test_prom();
    test_prom_hist();
    test_progress();
    test_health();
    test_snapshot();
    fprintf(stderr, "ops units: ok\n");
    return 0;
}
