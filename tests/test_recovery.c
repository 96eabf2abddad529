/* SPDX-License-Identifier: MIT */
/* An empty state.dir while Kafka holds the group's offsets is refused with an error that says how to
 * rebuild; state.rebuild=true replays the input into the state without output for what was
 * committed, and the counts go on exactly. */
#include <signal.h>

#include "harness.h"

int main(void) {
    th_bootstrap();
    const char *in = th_unique("rec-in"), *out = th_unique("rec-out"), *app = th_unique("rec");
    th_create_topic(in, 3);
    th_create_topic(out, 3);
    th_counts_t *truth = th_counts_new();
    th_produce_words(in, 30000, 11, 300, truth);

    th_engine_t e;
    th_engine_init(&e, app, in, out, NULL);
    th_engine_start(&e);
    th_wait_committed(app, in, 120, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    long before = th_consume_all(out, 1, NULL, NULL);

    /* The state is lost. */
    ASSERT_EQ(th_system("rm -rf %s/state", e.dir), 0);
    th_engine_start(&e);
    int st = th_engine_wait(&e, 60);
    if (st != 1) th_engine_dump_log(&e, 20);
    ASSERT_EQ(st, 1);
    ASSERT_EQ(th_system("grep -q 'is empty, but Kafka holds committed offsets.*state.rebuild=true' %s", e.log), 0);
    ASSERT_EQ(th_consume_all(out, 1, NULL, NULL), before);

    /* Rebuild: nothing new is emitted for the replayed input... */
    th_engine_append_conf(&e, "state.rebuild=true\n");
    th_engine_start(&e);
    th_wait_committed(app, in, 120, &e);
    ASSERT_EQ(th_system("grep -q 'replaying' %s", e.log), 0);
    /* ...and new input continues from the rebuilt counts. */
    th_produce_words(in, 10000, 12, 300, truth);
    th_wait_committed(app, in, 120, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    th_output_stats_t s = th_check_output(out, truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(truth));
    th_counts_destroy(truth);
    return 0;
}
