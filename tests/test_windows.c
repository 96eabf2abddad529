/* SPDX-License-Identifier: MIT */
/* Event-time windows on the real broker, against counts this test computes itself (window
 * assignment from tests/window_check.h, written apart from src/window.c).
 *
 * Input comes in rounds of records whose Kafka timestamps advance, out of order by less than the
 * watermark delay, so no engine may drop them whatever its epochs; from the second round on, each
 * round also holds late records whose every window ended before the watermark the earlier rounds
 * set, so every engine must drop them. A round is produced only once tally committed the one
 * before: the watermark then covers it. So the right output is fixed whatever the epochs:
 *   append         tumbling windows: each (window, word) the final watermark closed, exactly once,
 *                  with its count; no other; then the state holds only the open windows' keys
 *   append_kill    the same with SIGKILLs during and between rounds
 *   update_hopping hopping windows: per (window, word) strictly increasing counts ending at the truth
 *   update_hopping_kill  the same with SIGKILLs
 *   idle_close     append with window.close.idle.ms: the windows close with no input after them
 *   complete       tumbling windows without a watermark: nothing is late, every window stays, each
 *                  epoch emits them all (counts never fall)
 *   min_policy     append with watermark.policy=min: partition 1 lags 120 s of event time behind
 *                  partition 0 and all its records still count (the max policy would drop them);
 *                  partition 2 never gets a record and stops holding the watermark back after
 *                  watermark.idle.ms
 * append also checks /metrics (late pairs counted, the watermark) and /top (the last closed
 * window's words).
 * Every value is checked byte for byte against Spark's to_json(struct(window, word, count)). */
#include <signal.h>
#include <time.h>

#include "harness.h"
#include "tally/state.h"
#include "window_check.h"

#define T0 INT64_C(1764680400000) /* 2025-12-02T13:00:00Z */
/* A round spans ROUND_SPAN of event time, out of order by up to JITTER: ROUND_SPAN + JITTER < DELAY, so
 * no record of a round is ever behind the watermark, even when one partition thread reads the round
 * after another read it all (the max policy takes the greatest event time up to each partition's cut,
 * docs/windows.md). */
#define DELAY 35000
#define JITTER 4000
#define ROUND_SPAN 30000
#define VOCAB 40

static unsigned long long rng = 0x9E3779B97F4A7C15ULL;
static unsigned long long next_rand(void) { return th_xorshift(&rng); }

static int64_t size_ms, slide_ms;
static bool complete; /* no watermark: late records count, and counts repeat */

/* SIGKILL once the instance logged its start (each start is then counted, for the final SIGTERM). */
static void kill_engine(th_engine_t *e) {
    th_engine_wait_started(e, 60);
    ASSERT_EQ(th_engine_signal_wait(e, SIGKILL, 30), 128 + SIGKILL);
}
static th_counts_t *truth; /* "<start> <word>" -> count, late records left out */

static void truth_add(int64_t ts, const char *word) {
    int64_t starts[TALLY_WINDOW_MAX_PER_RECORD];
    size_t n = wc_spark_windows(ts, size_ms, slide_ms, starts, TALLY_WINDOW_MAX_PER_RECORD);
    for (size_t i = 0; i < n; i++) {
        char key[96];
        int kl = snprintf(key, sizeof(key), "%lld %s", (long long)starts[i], word);
        th_counts_add(truth, key, (size_t)kl, 1);
    }
}

/* A line of 1..4 words at ts into partition part (< 0: any of the 3); counted in the truth unless late. */
static void produce_line_to(rd_kafka_t *p, const char *topic, int64_t ts, bool late, int32_t part) {
    char line[128];
    size_t n = 0;
    int words = 1 + (int)(next_rand() % 4);
    for (int w = 0; w < words; w++) {
        char word[16];
        snprintf(word, sizeof(word), "w%llu", next_rand() % VOCAB);
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s", w ? " " : "", word);
        if (!late || complete) truth_add(ts, word);
    }
    th_produce_at(p, topic, part >= 0 ? part : (int32_t)(next_rand() % 3), line, n, ts);
}

static void produce_line(rd_kafka_t *p, const char *topic, int64_t ts, bool late) {
    produce_line_to(p, topic, ts, late, -1);
}

/* Java's DateTimeFormatter ISO output as Spark's JSON writer prints it (years 1970..9999 here). */
static void iso(char *out, size_t cap, int64_t ms) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

typedef struct {
    th_counts_t *seen;     /* key -> times seen */
    th_counts_t *last;     /* key -> last count */
    long records, bad, regressions;
} out_t;

static void on_output(const rd_kafka_message_t *m, void *opaque) {
    out_t *o = opaque;
    o->records++;
    char key[96], start_s[40], end_s[40], want[256];
    if (!m->key || m->key_len >= sizeof(key) || !m->payload) {
        o->bad++;
        return;
    }
    memcpy(key, m->key, m->key_len);
    key[m->key_len] = '\0';
    long long start;
    char word[32];
    if (sscanf(key, "%lld %31s", &start, word) != 2) {
        fprintf(stderr, "bad key '%s'\n", key);
        o->bad++;
        return;
    }
    /* The count is whatever the value says; the rest of the value is fixed by the key. */
    const char *v = m->payload;
    const char *c = memmem(v, m->len, "\"count\":", 8);
    long long count = c ? strtoll(c + 8, NULL, 10) : -1;
    iso(start_s, sizeof(start_s), start);
    iso(end_s, sizeof(end_s), start + size_ms);
    int wl = snprintf(want, sizeof(want), "{\"window\":{\"start\":\"%s\",\"end\":\"%s\"},\"word\":\"%s\",\"count\":%lld}",
                      start_s, end_s, word, count);
    if ((size_t)wl != m->len || memcmp(want, v, m->len) != 0) {
        fprintf(stderr, "value %.*s, expected %s\n", (int)m->len, v, want);
        o->bad++;
    }
    long long prev = th_counts_get(o->last, key, m->key_len);
    if (th_counts_get(o->seen, key, m->key_len) && (complete ? count < prev : count <= prev)) o->regressions++;
    th_counts_add(o->seen, key, m->key_len, 1);
    th_counts_add(o->last, key, m->key_len, count - prev);
}

static out_t read_output(const char *topic) {
    out_t o = {.seen = th_counts_new(), .last = th_counts_new()};
    th_consume_all(topic, 1, on_output, &o);
    return o;
}

static void out_free(out_t *o) {
    th_counts_destroy(o->seen);
    th_counts_destroy(o->last);
}

typedef struct {
    int64_t wm; /* windows ending at or before it are expected (append) */
    th_counts_t *last, *seen;
    long expected, wrong, missing, twice;
} cmp_t;

static int64_t key_start(const void *key, size_t len) {
    char k[96];
    memcpy(k, key, len < 95 ? len : 95);
    k[len < 95 ? len : 95] = '\0';
    return strtoll(k, NULL, 10);
}

static void cmp_truth(const void *key, size_t len, long long count, void *opaque) {
    cmp_t *c = opaque;
    if (c->wm != INT64_MIN && key_start(key, len) + size_ms > c->wm) return; /* still open */
    c->expected++;
    long long got = th_counts_get(c->last, key, len), times = th_counts_get(c->seen, key, len);
    if (!times) {
        if (c->missing++ < 5) fprintf(stderr, "missing %.*s (%lld)\n", (int)len, (const char *)key, count);
    } else if (got != count) {
        if (c->wrong++ < 5) fprintf(stderr, "%.*s: %lld, truth %lld\n", (int)len, (const char *)key, got, count);
    }
    if (c->wm != INT64_MIN && times > 1 && c->twice++ < 5)
        fprintf(stderr, "%.*s emitted %lld times\n", (int)len, (const char *)key, times);
}

/* How many output keys the truth does not expect (outside it, or not closed yet in append mode). */
typedef struct {
    int64_t wm;
    long extra;
} extra_t;

static void find_extra(const void *key, size_t len, long long n, void *opaque) {
    extra_t *x = opaque;
    (void)n;
    bool known = th_counts_get(truth, key, len) != 0;
    bool closed = x->wm == INT64_MIN || key_start(key, len) + size_ms <= x->wm;
    if ((!known || !closed) && x->extra++ < 5) fprintf(stderr, "unexpected output key %.*s\n", (int)len, (const char *)key);
}

static void count_open(const void *key, size_t len, long long n, void *opaque) {
    (void)n;
    int64_t *a = opaque; /* [0] watermark, [1] open keys */
    if (key_start(key, len) + size_ms > a[0]) a[1]++;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "append";
    bool append = strncmp(mode, "append", 6) == 0 || !strcmp(mode, "idle_close");
    size_t ml = strlen(mode);
    bool kills = ml > 5 && !strcmp(mode + ml - 5, "_kill"), idle = !strcmp(mode, "idle_close");
    complete = !strcmp(mode, "complete");
    bool minp = !strcmp(mode, "min_policy");
    bool http = !strcmp(mode, "append");
    int port = http ? th_free_port() : 0;
    size_ms = idle ? 2000 : 60000;
    slide_ms = !strncmp(mode, "update_hopping", 14) ? 20000 : size_ms;
    int64_t delay = idle ? 500 : DELAY, jitter = idle ? 300 : JITTER;
    th_bootstrap();
    truth = th_counts_new();
    const char *in = th_unique("win-in"), *out = th_unique("win-out"), *app = th_unique("win");
    th_create_topic(in, 3);
    th_create_topic(out, 3);

    char extra[512], wm_line[64] = "", http_line[64] = "";
    if (!complete) snprintf(wm_line, sizeof(wm_line), "watermark.delay.ms=%lld\n", (long long)delay);
    if (http) snprintf(http_line, sizeof(http_line), "http.listen=127.0.0.1:%d\n", port);
    snprintf(extra, sizeof(extra), "workers=2\nwindow.size.ms=%lld\nwindow.slide.ms=%lld\n%soutput.mode=%s\n%s%s%s",
             (long long)size_ms, (long long)slide_ms, wm_line, append || minp ? "append" : complete ? "complete" : "update",
             idle ? "window.close.idle.ms=1000\n" : "", http_line,
             minp ? "watermark.policy=min\nwatermark.idle.ms=8000\n" : "");
    th_engine_t e;
    th_engine_init(&e, app, in, out, extra);
    th_engine_start(&e);
    th_engine_wait_positioned(&e, in, 3, 60);

    if (minp) append = true;
    int rounds = idle ? 1 : minp ? 3 : 6, per_round = 1500, kills_done = 0;
    int64_t base = idle ? (th_now() * 1000 - 3000) : T0, span = idle ? 1500 : ROUND_SPAN, max_ts = INT64_MIN;
    for (int r = 0; r < rounds; r++) {
        if (kills && r == 2) { /* armed before the round, so its first commit is the round's */
            kill_engine(&e);
            setenv("TALLY_CRASH_AT", "after_commit:1", 1);
            th_engine_start(&e);
        }
        rd_kafka_t *p = th_producer();
        if (minp) {
            /* Round 0: partition 0 to 150 s, partition 1 to 30 s; round 1: partition 1 from 30 s
             * to 150 s (behind max - delay = 115 s, not behind min - delay); round 2: both to 240 s. */
            for (int i = 0; i < per_round; i++) {
                int64_t f = (int64_t)i * 1000 / per_round; /* per mille of the round */
                int64_t a0 = r == 0 ? 0 : 150000, b0 = r == 0 ? 150000 : 240000;
                int64_t a1 = r == 0 ? 0 : r == 1 ? 30000 : 150000, b1 = r == 0 ? 30000 : r == 1 ? 150000 : 240000;
                if (r != 1) produce_line_to(p, in, T0 + a0 + f * (b0 - a0) / 1000, false, 0);
                produce_line_to(p, in, T0 + a1 + f * (b1 - a1) / 1000, false, 1);
            }
            th_flush_destroy(p);
            max_ts = T0 + (r == 2 ? 240000 : 150000) - 1;
            th_wait_committed(app, in, 120, &e);
            continue;
        }
        int64_t known_wm = max_ts == INT64_MIN ? INT64_MIN : max_ts - delay;
        for (int i = 0; i < per_round; i++) {
            int64_t ts = base + r * span + (int64_t)i * span / per_round - (int64_t)(next_rand() % (uint64_t)jitter);
            produce_line(p, in, ts, false);
            if (ts > max_ts) max_ts = ts;
            /* Late: every window holding it ended before the watermark the earlier rounds set. */
            if (known_wm != INT64_MIN && i % 15 == 0)
                produce_line(p, in, known_wm - size_ms - (int64_t)(next_rand() % (uint64_t)size_ms), true);
        }
        th_flush_destroy(p);
        if (kills && r == 2) {
            /* Killed between the round's Kafka commit and its state write: the restart replays
             * the epoch under the watermark stored with the one before, and stores the next. */
            ASSERT_EQ(th_engine_wait(&e, 120), 128 + SIGKILL);
            unsetenv("TALLY_CRASH_AT");
            kills_done++;
            th_engine_start(&e);
        } else if (kills && r % 2 == 0) { /* while the round is being counted, or just after */
            usleep((useconds_t)(next_rand() % 1500) * 1000);
            kill_engine(&e);
            kills_done++;
            th_engine_start(&e);
        }
        th_wait_committed(app, in, 120, &e);
        if (kills && r % 2 == 1) { /* between the Kafka commit and the next round */
            kill_engine(&e);
            kills_done++;
            th_engine_start(&e);
        }
    }
    int64_t final_wm = append ? max_ts - delay : INT64_MIN;
    if (idle) final_wm = INT64_MAX; /* the wall clock closes every window */

    /* Wait for the expected output: in append mode the last windows come from an epoch with no
     * input (the watermark moved at the last round's end), or from idleness. */
    cmp_t c = {0};
    out_t o = {0};
    double deadline = th_now() + 90;
    for (;;) {
        o = read_output(out);
        c = (cmp_t){.wm = final_wm, .last = o.last, .seen = o.seen};
        th_counts_foreach(truth, cmp_truth, &c);
        if ((c.missing == 0 && c.wrong == 0) || th_now() > deadline) break;
        out_free(&o);
        usleep(500000);
    }
    th_engine_require_alive(&e, "while its output was read");
    if (http) {
        int status = 0;
        char *m = th_http("GET", port, "/metrics", &status, NULL);
        ASSERT_EQ(status, 200);
        const char *late = strstr(m, "\ntally_late_rows_dropped_total ");
        ASSERT(late && strtoll(late + 32, NULL, 10) > 0);
        const char *wm = strstr(m, "\ntally_watermark_seconds ");
        ASSERT(wm && (int64_t)(strtod(wm + 25, NULL) * 1000 + 0.5) == max_ts - delay);
        free(m);
        /* The last closed window's top words: every item in it, the largest count first. */
        char *top = th_http("GET", port, "/top?n=5", &status, NULL);
        ASSERT_EQ(status, 200);
        char last_start[40], want[64];
        iso(last_start, sizeof(last_start), (max_ts - delay) / size_ms * size_ms - size_ms);
        snprintf(want, sizeof(want), "{\"window\":{\"start\":\"%s\"", last_start);
        int items = 0;
        for (const char *q = top; (q = strstr(q, "{\"window\"")); q++, items++)
            if (strncmp(q, want, strlen(want)) != 0) TH_FAIL("/top item not of window %s: %.80s", last_start, q);
        fprintf(stderr, "/top: %d items of window %s\n", items, last_start);
        ASSERT_EQ(items, 5);
        free(top);
    }
    int st = th_engine_signal_wait(&e, SIGTERM, 60);
    if (st) th_engine_dump_log(&e, 40);
    ASSERT_EQ(st, 0);
    out_free(&o);
    o = read_output(out); /* after the stop: nothing more may have come */
    c = (cmp_t){.wm = final_wm, .last = o.last, .seen = o.seen};
    th_counts_foreach(truth, cmp_truth, &c);
    extra_t x = {.wm = final_wm};
    th_counts_foreach(o.seen, find_extra, &x);
    fprintf(stderr, "%s: %d round(s), %d kill(s); %ld output records, %ld (window, word) expected: %ld missing, %ld "
            "wrong, %ld twice, %ld unexpected, %ld malformed, %ld not increasing\n", mode, rounds, kills_done, o.records,
            c.expected, c.missing, c.wrong, c.twice, x.extra, o.bad, o.regressions);
    ASSERT(c.expected > 0);
    ASSERT_EQ(c.missing, 0);
    ASSERT_EQ(c.wrong, 0);
    ASSERT_EQ(c.twice, 0);
    ASSERT_EQ(x.extra, 0);
    ASSERT_EQ(o.bad, 0);
    ASSERT_EQ(o.regressions, 0);
    if (append) ASSERT_EQ(o.records, c.expected);
    if (kills) ASSERT_EQ(th_system("grep -q 'replaying .* without output' %s", e.log), 0);

    /* The state keeps only the windows still open: closed ones were deleted with their emission. */
    if (append) {
        char dir[400];
        snprintf(dir, sizeof(dir), "%s/state", e.dir);
        tally_state_t *s = NULL;
        bool locked = false;
        char err[512];
        ASSERT_EQ(tally_state_open(&s, dir, &locked, err, sizeof(err)), 0);
        uint64_t keys = 0;
        ASSERT_EQ(tally_state_count_keys(s, &keys), 0);
        tally_state_close(s);
        int64_t a[2] = {final_wm, 0};
        th_counts_foreach(truth, count_open, a);
        fprintf(stderr, "state: %llu keys; open windows hold %lld (window, word) pairs, all windows %zu\n",
                (unsigned long long)keys, (long long)a[1], th_counts_size(truth));
        ASSERT_EQ((long long)keys, (long long)a[1]);
    }
    out_free(&o);
    th_counts_destroy(truth);
    return 0;
}
