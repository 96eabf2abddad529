/* SPDX-License-Identifier: MIT */
/* The file sink from Kafka, exactly once (sink=files): input keeps flowing while the engine is
 * SIGKILLed at random moments and at the two points a file commit can be torn (after the part file,
 * before the log entry; after the log entry, before the state write), then restarted. The committed
 * output, read the way Spark reads it (through _spark_metadata) by Python's csv and json modules
 * (tests/check_files.py), must hold every word with strictly increasing counts whose last one is the
 * truth, and no part file outside a commit.
 *   test_files_sink jsonl|csv|parquet */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "harness.h"

enum { KILLS = 4 };

static int commits(th_engine_t *e) {
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "grep -c 'epoch .* committed' %s", e->log);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = 0;
        pclose(p);
    }
    return n;
}

/* A start armed to die at crash point `at` (e.g. "files_before_commit:2" = at its second epoch). */
static void crash_at(th_engine_t *e, const char *at, const char *expect_next_start) {
    setenv("TALLY_CRASH_AT", at, 1);
    th_engine_start(e);
    unsetenv("TALLY_CRASH_AT");
    double deadline = th_now() + 60;
    while (th_engine_alive(e) && th_now() < deadline) usleep(100000);
    if (th_engine_alive(e)) TH_FAIL("crash point %s was not reached within 60 s", at);
    ASSERT_EQ(e->status, 128 + SIGKILL);
    th_engine_start(e);
    th_engine_wait_started(e, 60);
    /* What the restart found proves the crash landed where it was meant to. */
    for (int i = 0; i < 100 && th_system("grep -q '%s' %s", expect_next_start, e->log) != 0; i++) usleep(100000);
    ASSERT_EQ(th_system("grep -q '%s' %s", expect_next_start, e->log), 0);
}

int main(int argc, char **argv) {
    const char *fmt = argc > 1 ? argv[1] : "jsonl";
    th_bootstrap();
    const char *in = th_unique("files-in"), *app = th_unique("files");
    th_create_topic(in, 4);

    /* Words a CSV writer must quote, and bytes that are not UTF-8 (written as U+FFFD). */
    static const char *const odd[] = {"a,b \"q\" x", "line\rbreak", "caf\xc3\xa9 \xff\xfe bad\xe2\x82", "a,b"};
    rd_kafka_t *p = th_producer();
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) th_produce(p, in, -1, NULL, 0, odd[i], strlen(odd[i]));
    th_flush_destroy(p);

    th_feeder_t f = {.topics = {in}, .prefix = "f", .vocab = 2000, .max_words = 10, .burst = 500, .pause_us = 25000};
    th_feeder_start(&f);
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) th_counts_add_line(f.truth, odd[i], strlen(odd[i]));

    th_engine_t e;
    char extra[512];
    th_engine_init(&e, app, in, NULL, NULL);
    snprintf(extra, sizeof(extra), "sink=files\noutput.path=%s/out\noutput.format=%s\nworkers=2\n", e.dir, fmt);
    th_engine_append_conf(&e, extra);

    crash_at(&e, "files_before_commit:2", "written by an epoch that never committed");
    ASSERT_EQ(th_engine_signal_wait(&e, SIGKILL, 30), 128 + SIGKILL);
    crash_at(&e, "after_files_commit:3", "output.path committed");
    unsigned seed = (unsigned)getpid();
    for (int kills = 0; kills < KILLS; kills++) {
        th_engine_wait_started(&e, 60);
        /* Past recovery: kill while epochs commit, at a random point of one. */
        int before = commits(&e);
        for (int i = 0; i < 600 && commits(&e) == before; i++) usleep(100000);
        usleep(100000 + (useconds_t)(rand_r(&seed) % 1500) * 1000);
        th_engine_require_alive(&e, "by itself between kills");
        ASSERT_EQ(th_engine_signal_wait(&e, SIGKILL, 30), 128 + SIGKILL);
        th_engine_start(&e);
    }
    th_feeder_stop(&f);
    th_wait_committed(app, in, 300, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    th_system("grep -c 'committed:' %s | sed 's/^/commits logged: /' >&2", e.log);

    char out[600];
    snprintf(out, sizeof(out), "%s/out", e.dir);
    th_check_files(out, fmt, f.truth);
    th_counts_destroy(f.truth);
    return 0;
}
