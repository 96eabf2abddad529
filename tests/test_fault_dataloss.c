/* SPDX-License-Identifier: MIT */
/* Input lost before it was read is never a silent reset:
 *  - records deleted beyond the committed offset: exit 4 naming the partition and the range; with
 *    fail.on.data.loss=false a logged skip, and exact counts for what remains;
 *  - the input topic deleted and recreated (offsets behind the state's): exit 4;
 *  - the group's committed offsets deleted: the state's offsets carry on, counts stay exact. */
#include <signal.h>

#include "harness.h"

static void produce_to(const char *topic, int32_t partition, int lines, const char *word, th_counts_t *truth) {
    rd_kafka_t *p = th_producer();
    char line[64];
    for (int i = 0; i < lines; i++) {
        int n = snprintf(line, sizeof(line), "%s %s%d", word, word, i % 50);
        if (truth) th_counts_add_line(truth, line, (size_t)n);
        th_produce(p, topic, partition, NULL, 0, line, (size_t)n);
    }
    th_flush_destroy(p);
}

static void deleted_records(void) {
    const char *in = th_unique("loss-in"), *out = th_unique("loss-out"), *app = th_unique("loss");
    th_create_topic(in, 2);
    th_create_topic(out, 2);
    th_counts_t *truth = th_counts_new();
    produce_to(in, 0, 1000, "a", truth);
    produce_to(in, 1, 1000, "b", truth);
    th_engine_t e;
    th_engine_init(&e, app, in, out, NULL);
    th_engine_start(&e);
    th_wait_committed(app, in, 60, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);

    /* While it is stopped, partition 0 gets records that are deleted before anyone reads them. */
    produce_to(in, 0, 500, "lost", NULL);
    produce_to(in, 1, 500, "kept", truth);
    th_delete_records(in, 0, th_high_watermark(in, 0));
    th_engine_start(&e);
    int st = th_engine_wait(&e, 60);
    if (st != 4) th_engine_dump_log(&e, 20);
    ASSERT_EQ(st, 4);
    ASSERT_EQ(th_system("grep -q 'input %s\\[0\\]: records \\[1000, 1500) are gone' %s", in, e.log), 0);

    th_engine_append_conf(&e, "fail.on.data.loss=false\n");
    th_engine_start(&e);
    th_wait_committed(app, in, 60, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    ASSERT_EQ(th_system("grep -q 'going on from 1500 because fail.on.data.loss=false' %s", e.log), 0);
    th_output_stats_t s = th_check_output(out, truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(truth));
    th_counts_destroy(truth);
}

static void recreated_topic(void) {
    const char *in = th_unique("recreate-in"), *out = th_unique("recreate-out"), *app = th_unique("recreate");
    th_create_topic(in, 1);
    th_create_topic(out, 1);
    produce_to(in, 0, 2000, "x", NULL);
    th_engine_t e;
    th_engine_init(&e, app, in, out, NULL);
    th_engine_start(&e);
    th_wait_committed(app, in, 60, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);

    th_delete_topic(in);
    th_create_topic(in, 1);
    produce_to(in, 0, 10, "y", NULL);
    th_engine_start(&e);
    int st = th_engine_wait(&e, 60);
    if (st != 4) th_engine_dump_log(&e, 20);
    ASSERT_EQ(st, 4);
    ASSERT_EQ(th_system("grep -q 'input %s\\[0\\]: records \\[10, 2000) are gone' %s", in, e.log), 0);
}

static void deleted_group_offsets(void) {
    const char *in = th_unique("gofs-in"), *out = th_unique("gofs-out"), *app = th_unique("gofs");
    th_create_topic(in, 2);
    th_create_topic(out, 2);
    th_counts_t *truth = th_counts_new();
    th_produce_words(in, 5000, 21, 100, truth);
    th_engine_t e;
    th_engine_init(&e, app, in, out, NULL);
    th_engine_start(&e);
    th_wait_committed(app, in, 60, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);

    th_delete_group_offsets(app, in, 2);
    th_produce_words(in, 5000, 22, 100, truth);
    th_engine_start(&e);
    th_wait_committed(app, in, 60, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    ASSERT_EQ(th_system("grep -q 'has no committed offset for %s\\[0\\]; going on from the state' %s", in, e.log), 0);
    th_output_stats_t s = th_check_output(out, truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(truth));
    th_counts_destroy(truth);
}

int main(void) {
    th_bootstrap();
    deleted_records();
    recreated_topic();
    deleted_group_offsets();
    return 0;
}
