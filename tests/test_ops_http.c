/* SPDX-License-Identifier: MIT */
/* The HTTP endpoint against a running engine: status codes of every route; /metrics parsed and
 * checked against what was produced (lines, words, offsets = high watermarks, lag 0); /top's top
 * words for a skewed input; /progress and progress.topic; no secret in /metrics or the log; and the
 * live page rendered by headless Chromium (DOM dump with the top-words rows and a drawn chart, and a
 * screenshot in the test's directory). */
#include <signal.h>
#include <stdbool.h>
#include <unistd.h>

#include "harness.h"

#define SKEW_LINES 2000   /* "zeta alpha zeta": zeta 2 per line, alpha 1 */
#define PLAIN_LINES 3000  /* th_produce_words over 300 words: about 45 each */
#define SECRET "s3cr3t-Pa55word"

typedef struct {
    long long words;
} sum_t;

static void add_words(const void *word, size_t len, long long count, void *opaque) {
    (void)word;
    (void)len;
    ((sum_t *)opaque)->words += count;
}

/* The value of the sample whose name and labels are exactly `key` ("name" or "name{...}"); -1 absent. */
static double metric(const char *text, const char *key) {
    size_t kl = strlen(key);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ') return strtod(line + kl + 1, NULL);
    }
    return -1;
}

/* Every line is a comment or "name[{labels}] value", every sample's family has # HELP and # TYPE. */
static void check_exposition(const char *text) {
    int samples = 0;
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        if (!nl) TH_FAIL("/metrics does not end with a newline");
        char buf[1024];
        size_t n = (size_t)(nl - line);
        ASSERT_LT(n, sizeof(buf));
        memcpy(buf, line, n);
        buf[n] = '\0';
        line = nl + 1;
        if (buf[0] == '#') {
            ASSERT(strncmp(buf, "# HELP ", 7) == 0 || strncmp(buf, "# TYPE ", 7) == 0);
            continue;
        }
        char name[256];
        ASSERT_EQ(sscanf(buf, "%255[a-zA-Z0-9_:]", name), 1);
        char help[300], type[300];
        snprintf(help, sizeof(help), "# HELP %s ", name);
        snprintf(type, sizeof(type), "# TYPE %s ", name);
        if (!strstr(text, help) || !strstr(text, type)) {
            /* A histogram's samples are <family>_bucket, _sum and _count. */
            char *suffix = strrchr(name, '_');
            if (suffix && (!strcmp(suffix, "_bucket") || !strcmp(suffix, "_sum") || !strcmp(suffix, "_count"))) *suffix = '\0';
            snprintf(help, sizeof(help), "# HELP %s ", name);
            snprintf(type, sizeof(type), "# TYPE %s histogram\n", name);
            if (!strstr(text, help) || !strstr(text, type)) TH_FAIL("/metrics: %s has no # HELP or # TYPE", name);
        }
        char *sp = strrchr(buf, ' ');
        ASSERT(sp);
        char *end;
        strtod(sp + 1, &end);
        if (*end) TH_FAIL("/metrics: bad value in \"%s\"", buf);
        samples++;
    }
    ASSERT_GT(samples, 20);
}

static char *get(int port, const char *path, int want_status) {
    int status = 0;
    char *body = th_http("GET", port, path, &status, NULL);
    if (!body) TH_FAIL("GET %s: cannot connect to port %d", path, port);
    if (status != want_status) TH_FAIL("GET %s: status %d, expected %d: %.300s", path, status, want_status, body);
    return body;
}

static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static const char *chromium(void) {
    const char *env = getenv("TALLY_CHROMIUM");
    if (env && *env) return env;
    if (th_system("command -v chromium >/dev/null 2>&1") == 0) return "chromium";
    TH_FAIL("chromium is not installed (scripts/deps installs Debian's chromium)");
}

#define CHROMIUM_FLAGS                                                                                  \
    "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking " \
    "--disable-component-update --disable-sync --disable-dev-shm-usage"

static void check_page(th_engine_t *e, int port, long long zeta) {
    const char *chrome = chromium();
    char dom[400], png[400], want[64];
    snprintf(dom, sizeof(dom), "%s/page-dom.html", e->dir);
    snprintf(png, sizeof(png), "%s/page.png", e->dir);
    /* Its own profile directory each time; stderr (D-Bus noise in containers) kept in the test dir. */
    int st = th_system("HOME=%s timeout 120 %s " CHROMIUM_FLAGS " --user-data-dir=$(mktemp -d) "
                       "--virtual-time-budget=5000 --dump-dom http://127.0.0.1:%d/ > %s 2>%s/chromium.log",
                       e->dir, chrome, port, dom, e->dir);
    if (st != 0) {
        th_system("tail -n 20 %s/chromium.log >&2", e->dir);
        TH_FAIL("chromium --dump-dom exited with %d", st);
    }
    char *html = th_read_file(dom, NULL);
    ASSERT(html);
    if (!strstr(html, "<td class=\"word\">zeta</td>") || !strstr(html, "<td class=\"word\">alpha</td>"))
        TH_FAIL("the rendered page has no top-words rows for zeta and alpha:\n%.2000s", strstr(html, "top-body") ? strstr(html, "top-body") : html);
    snprintf(want, sizeof(want), "data-count=\"%lld\"", zeta);
    if (!strstr(html, want)) TH_FAIL("the rendered top-words table lacks %s", want);
    const char *dp = strstr(html, "data-points=\"");
    ASSERT(dp);
    int points = atoi(dp + strlen("data-points=\""));
    if (points <= 0) TH_FAIL("the chart was not drawn (data-points=%d)", points);
    ASSERT(strstr(html, "<td class=\"count\">"));
    ASSERT_EQ(count_of(strstr(html, "id=\"commits-body\""), "<tr>") > 0, 1);
    const char *mb = strstr(html, "id=\"messages-body\"");
    ASSERT(mb);
    if (count_of(mb, "<tr>") == 0 || !strstr(mb, "{\"word\":\""))
        TH_FAIL("the rendered page has no Messages rows with count records:\n%.1500s", mb);
    fprintf(stderr, "page: top-words and messages rows rendered, chart drawn with %d points\n", points);
    free(html);

    st = th_system("HOME=%s timeout 120 %s " CHROMIUM_FLAGS " --user-data-dir=$(mktemp -d) "
                   "--virtual-time-budget=5000 --window-size=1200,900 --screenshot=%s http://127.0.0.1:%d/ "
                   ">>%s/chromium.log 2>&1",
                   e->dir, chrome, png, port, e->dir);
    ASSERT_EQ(st, 0);
    size_t len = 0;
    char *img = th_read_file(png, &len);
    ASSERT(img);
    ASSERT_GT(len, 10000);
    ASSERT_MEM_EQ(img, 8, "\x89PNG\r\n\x1a\n", 8);
    free(img);
    printf("screenshot: %s\n", png);
    fprintf(stderr, "screenshot: %s (%zu bytes)\n", png, len);
}

/* Names live until exit (th_unique's strings), reachable from here for the leak checker. */
static const char *in, *out, *prog, *app;

/* Reads progress.topic (one partition) from its start to its end. Returns the records. */
static long read_progress(void) {
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    static char group[64];
    snprintf(group, sizeof(group), "ops-progress-reader-%d", (int)getpid());
    if (rd_kafka_conf_set(c, "bootstrap.servers", th_bootstrap(), err, sizeof(err)) ||
        rd_kafka_conf_set(c, "group.id", group, err, sizeof(err)) ||
        rd_kafka_conf_set(c, "enable.partition.eof", "true", err, sizeof(err)))
        TH_FAIL("conf: %s", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk) TH_FAIL("consumer: %s", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, prog, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ASSERT_EQ(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    long n = 0;
    double deadline = th_now() + 60;
    for (;;) {
        if (th_now() > deadline) TH_FAIL("reading %s did not reach its end", prog);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) continue;
        bool eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
        if (m->err && !eof) TH_FAIL("consume %s: %s", prog, rd_kafka_message_errstr(m));
        if (!m->err) {
            char *v = strndup(m->payload, m->len);
            if (!strstr(v, "\"epoch\":") || !strstr(v, app)) TH_FAIL("not a progress record: %s", v);
            free(v);
            n++;
        }
        rd_kafka_message_destroy(m);
        if (eof) break;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

int main(void) {
    th_bootstrap();
    in = th_unique("ops-in");
    out = th_unique("ops-out");
    prog = th_unique("ops-progress");
    app = th_unique("ops");
    th_create_topic(in, 3);
    th_create_topic(out, 2);
    th_create_topic(prog, 1);

    th_counts_t *truth = th_counts_new();
    th_produce_words(in, PLAIN_LINES, 11, 300, truth);
    const long lines = PLAIN_LINES + SKEW_LINES;

    int port = th_free_port();
    char extra[512];
    snprintf(extra, sizeof(extra), "http.listen=127.0.0.1:%d\nprogress.topic=%s\nworkers=2\nkafka.sasl.password=%s\n",
             port, prog, SECRET);
    th_engine_t e;
    th_engine_init(&e, app, in, out, extra);
    th_engine_start(&e);

    /* Up and healthy once running and committing. */
    double deadline = th_now() + 60;
    for (;;) {
        int status = 0;
        char *body = th_http("GET", port, "/healthz", &status, NULL);
        if (body && status == 200) {
            ASSERT(strstr(body, "\"status\":\"ok\""));
            free(body);
            break;
        }
        if (body && status != 503) TH_FAIL("/healthz: status %d: %s", status, body);
        free(body);
        if (!th_engine_alive(&e) || th_now() > deadline) {
            th_engine_dump_log(&e, 40);
            TH_FAIL("/healthz did not answer 200 within 60 s");
        }
        usleep(100000);
    }

    th_wait_committed(app, in, 120, &e);
    /* A second epoch with the skewed words: /top then has them through the epoch's changed list
     * (the first commit seeded it from the state). */
    rd_kafka_t *p = th_producer();
    const char *skew = "zeta alpha zeta";
    for (int i = 0; i < SKEW_LINES; i++) {
        th_counts_add_line(truth, skew, strlen(skew));
        th_produce(p, in, -1, NULL, 0, skew, strlen(skew));
    }
    th_flush_destroy(p);
    sum_t sum = {0};
    th_counts_foreach(truth, add_words, &sum);
    th_wait_committed(app, in, 120, &e);
    /* The snapshot follows the commit within an epoch or a second. */
    char *m = NULL;
    deadline = th_now() + 30;
    for (;;) {
        m = get(port, "/metrics", 200);
        if (metric(m, "tally_input_lines_total") == (double)lines) break;
        if (th_now() > deadline)
            TH_FAIL("tally_input_lines_total is %.0f, %ld lines were produced", metric(m, "tally_input_lines_total"), lines);
        free(m);
        usleep(200000);
    }
    check_exposition(m);
    ASSERT_EQ((long long)metric(m, "tally_input_words_total"), sum.words);
    ASSERT_EQ((long long)metric(m, "tally_words_dropped_total"), 0);
    ASSERT_EQ((long long)metric(m, "tally_up"), 1);
    ASSERT_EQ((long long)metric(m, "tally_transactions_aborted_total"), 0);
    ASSERT_GE((long long)metric(m, "tally_epochs_committed_total"), 2);
    /* Every committed epoch is in each phase's histogram. */
    ASSERT_EQ((long long)metric(m, "tally_epoch_phase_seconds_count{phase=\"commit\"}"),
              (long long)metric(m, "tally_epochs_committed_total"));
    ASSERT_EQ((long long)metric(m, "tally_epoch_phase_seconds_bucket{phase=\"state\",le=\"+Inf\"}"),
              (long long)metric(m, "tally_epochs_committed_total"));
    ASSERT_EQ((long long)metric(m, "tally_keys_in_memory"), (long long)th_counts_size(truth));
    ASSERT_EQ((long long)metric(m, "tally_output_records_total") >= (long long)th_counts_size(truth), 1);
    ASSERT_GT(metric(m, "tally_process_resident_bytes"), 1e6);
    ASSERT_GT(metric(m, "tally_last_commit_timestamp_seconds"), 1.6e9);
    for (int part = 0; part < 3; part++) {
        char key[512];
        int64_t hi = th_high_watermark(in, part);
        snprintf(key, sizeof(key), "tally_partition_committed_offset{topic=\"%s\",partition=\"%d\"}", in, part);
        ASSERT_EQ((long long)metric(m, key), hi);
        snprintf(key, sizeof(key), "tally_partition_lag{topic=\"%s\",partition=\"%d\"}", in, part);
        ASSERT_EQ((long long)metric(m, key), 0);
        snprintf(key, sizeof(key), "tally_ring_occupancy{topic=\"%s\",partition=\"%d\",worker=\"1\"}", in, part);
        ASSERT_GE(metric(m, key), 0);
        fprintf(stderr, "%s[%d]: committed offset = high watermark = %lld\n", in, part, (long long)hi);
    }
    if (strstr(m, SECRET)) TH_FAIL("/metrics shows the secret");
    fprintf(stderr, "/metrics: %ld lines, %lld words, %zu keys, %.0f epochs\n", lines, sum.words,
            th_counts_size(truth), metric(m, "tally_epochs_committed_total"));
    free(m);

    /* /top: the skewed words first, with their true counts. */
    long long zeta = th_counts_get(truth, "zeta", 4), alpha = th_counts_get(truth, "alpha", 5);
    ASSERT_EQ(zeta, 2 * SKEW_LINES);
    char *top = get(port, "/top?n=3", 200);
    char w1[32], w2[32];
    long long c1, c2;
    if (sscanf(top, "[{\"word\":\"%31[^\"]\",\"count\":%lld},{\"word\":\"%31[^\"]\",\"count\":%lld}", w1, &c1, w2, &c2) != 4)
        TH_FAIL("/top?n=3: %s", top);
    ASSERT_STR_EQ(w1, "zeta");
    ASSERT_EQ(c1, zeta);
    ASSERT_STR_EQ(w2, "alpha");
    ASSERT_EQ(c2, alpha);
    ASSERT_EQ(count_of(top, "{\"word\":"), 3);
    free(top);
    top = get(port, "/top", 200);
    ASSERT_EQ(count_of(top, "{\"word\":"), 20);
    free(top);
    free(get(port, "/top?n=0", 400));
    free(get(port, "/top?n=abc", 400));

    /* /messages: the output topic's newest records (read each second by the tail reader), newest
     * first; each value is the count record of its key. */
    char *msgs = NULL;
    for (double t0 = th_now(); !msgs || count_of(msgs, "\"partition\":") == 0; usleep(200000)) {
        free(msgs);
        if (th_now() - t0 > 20) TH_FAIL("/messages stayed empty for 20 s");
        msgs = get(port, "/messages", 200);
    }
    int nmsg = count_of(msgs, "\"partition\":");
    ASSERT(nmsg <= 50);
    long long prev_ts = -1;
    for (const char *q = msgs; (q = strstr(q, "{\"partition\":")); q++) {
        const char *ts = strstr(q, "\"timestamp\":"), *k = strstr(q, "\"key\":\""), *v = strstr(q, "\"value\":\"");
        ASSERT(ts && k && v);
        long long t = atoll(ts + 12);
        if (prev_ts >= 0) ASSERT(t <= prev_ts);
        prev_ts = t;
        char key[64], word[64];
        if (sscanf(k, "\"key\":\"%63[^\"]\"", key) != 1 || sscanf(v, "\"value\":\"{\\\"word\\\":\\\"%63[^\\]", word) != 1)
            TH_FAIL("/messages record not understood: %.200s", q);
        ASSERT_STR_EQ(key, word);
    }
    fprintf(stderr, "/messages: %d records, newest first, each value the count of its key\n", nmsg);
    free(msgs);

    /* /progress: the records, whose lines add up to the input (all commits fit in the history). */
    char *pr = get(port, "/progress", 200);
    ASSERT(pr[0] == '[' && pr[strlen(pr) - 1] == ']');
    int records = count_of(pr, "\"epoch\":");
    ASSERT_GT(records, 0);
    long long sum_lines = 0;
    for (const char *q = pr; (q = strstr(q, "\"numInputLines\":")); q++) sum_lines += atoll(q + 16);
    if (records < 100) ASSERT_EQ(sum_lines, lines);
    free(pr);

    /* the other routes */
    char *hz = get(port, "/healthz", 200);
    ASSERT(strstr(hz, "\"status\":\"ok\"") && strstr(hz, "\"state\":\"running\""));
    free(hz);
    int status = 0;
    char *ctype = NULL;
    char *page = th_http("GET", port, "/", &status, &ctype);
    ASSERT_EQ(status, 200);
    ASSERT(ctype && strncmp(ctype, "text/html", 9) == 0);
    ASSERT(strstr(page, "<canvas id=\"chart\""));
    free(page);
    free(ctype);
    free(get(port, "/nope", 404));
    char *b = th_http("POST", port, "/metrics", &status, NULL);
    ASSERT_EQ(status, 405);
    free(b);
    b = th_http("HEAD", port, "/metrics", &status, NULL);
    ASSERT_EQ(status, 200);
    ASSERT_EQ(strlen(b), 0);
    free(b);

    check_page(&e, port, zeta);

    /* Takeover: a second instance with the same configuration (application.id, state.dir and
     * http.listen) fences the first; it waits for the port while the first still holds it, then
     * serves it. /top stays exact across the handover (seeded from the state, then per epoch). */
    char extra_b[768];
    snprintf(extra_b, sizeof(extra_b), "%sstate.dir=%s/state\n", extra, e.dir);
    th_engine_t b2;
    th_engine_init(&b2, app, in, out, extra_b);
    th_engine_start(&b2);
    rd_kafka_t *tick = th_producer();
    deadline = th_now() + 90;
    int st = -1;
    while (th_now() < deadline && (st = th_engine_wait(&e, 0.2)) < 0) {
        th_counts_add_line(truth, "zeta", 4);
        th_produce(tick, in, -1, NULL, 0, "zeta", 4);
        rd_kafka_flush(tick, 5000);
    }
    th_flush_destroy(tick);
    if (st != 3) {
        th_engine_dump_log(&e, 30);
        th_engine_dump_log(&b2, 30);
    }
    ASSERT_EQ(st, 3);
    ASSERT_EQ(th_system("grep -q 'stopped with exit status 3 (fenced' %s", e.log), 0);
    th_wait_committed(app, in, 120, &b2);
    zeta = th_counts_get(truth, "zeta", 4);
    deadline = th_now() + 30;
    for (;;) {
        int code = 0;
        char *t = th_http("GET", port, "/top?n=1", &code, NULL);
        long long got = -1;
        if (t && code == 200) sscanf(t, "[{\"word\":\"zeta\",\"count\":%lld}]", &got);
        free(t);
        if (got == zeta) break;
        if (th_now() > deadline) {
            th_engine_dump_log(&b2, 30);
            TH_FAIL("after the takeover /top?n=1 does not say zeta=%lld (got %lld)", zeta, got);
        }
        usleep(200000);
    }
    hz = get(port, "/healthz", 200);
    free(hz);
    ASSERT_EQ(th_system("grep -q 'in use; trying again every second' %s", b2.log), 0);
    fprintf(stderr, "takeover: the new instance serves http.listen, /top says zeta=%lld\n", zeta);

    ASSERT_EQ(th_engine_signal_wait(&b2, SIGTERM, 60), 0);
    ASSERT(th_http("GET", port, "/healthz", &status, NULL) == NULL); /* the server stopped with the engine */

    /* progress.topic got the records; the log has the progress line and a masked config line. */
    long records_on_topic = read_progress();
    ASSERT_GT(records_on_topic, 0);
    const char *logs[] = {e.log, b2.log};
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(th_system("grep -q 'epoch [0-9]* committed: [0-9]* lines, .*; progress {\"id\":' %s", logs[i]), 0);
        ASSERT_EQ(th_system("grep -q 'config: .*kafka.sasl.password=\\*\\*\\*\\*\\*\\*\\*\\*' %s", logs[i]), 0);
        if (th_system("grep -q '%s' %s", SECRET, logs[i]) == 0) TH_FAIL("the log shows the secret");
        if (th_system("grep -q 'runtime error\\|Sanitizer' %s", logs[i]) == 0) TH_FAIL("sanitizer report in %s", logs[i]);
    }
    fprintf(stderr, "progress.topic: %ld records\n", records_on_topic);
    th_counts_destroy(truth);
    return 0;
}
