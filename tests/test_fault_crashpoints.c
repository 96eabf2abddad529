/* SPDX-License-Identifier: MIT */
/* SIGKILL at each phase of a trigger, through the engine's test-only crash points: after producing,
 * after sending offsets, during the commit, after the Kafka commit but before the state write, and
 * during the state write. After a restart the output is exact and strictly increasing; where Kafka
 * had committed the epoch but the state had not, recovery must have taken the replay path. The
 * protocol's points run with state.write.interval.ms=0 (each epoch written as soon as it commits);
 * one more runs with the state writer far behind Kafka, which a restart must replay too. */
#include <signal.h>
#include <stdlib.h>

#include "harness.h"

static void run(const char *point, int expect_replay, const char *conf) {
    const char *in = th_unique("cp-in"), *out = th_unique("cp-out"), *app = th_unique("cp");
    th_create_topic(in, 2);
    th_create_topic(out, 2);
    th_counts_t *truth = th_counts_new();
    th_engine_t e;
    th_engine_init(&e, app, in, out, conf);

    char armed[64];
    snprintf(armed, sizeof(armed), "%s:3", point);
    setenv("TALLY_CRASH_AT", armed, 1);
    th_engine_start(&e);
    unsetenv("TALLY_CRASH_AT");
    /* Input in waves so that epoch 3 comes. */
    for (int wave = 0; wave < 20 && th_engine_alive(&e); wave++) {
        th_produce_words(in, 2000, 100 + (unsigned long long)wave, 300, truth);
        usleep(300000);
    }
    int st = th_engine_wait(&e, 60);
    if (st != 128 + SIGKILL) th_engine_dump_log(&e, 30);
    ASSERT_EQ(st, 128 + SIGKILL);
    ASSERT_EQ(th_system("grep -q 'crash point %s at epoch 3' %s", point, e.log), 0);

    th_produce_words(in, 3000, 999, 300, truth);
    th_engine_start(&e);
    th_wait_committed(app, in, 120, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    int replayed = th_system("grep -q 'replaying' %s", e.log) == 0;
    fprintf(stderr, "%s: recovery %s the replay path\n", point, replayed ? "took" : "did not take");
    if (expect_replay >= 0) ASSERT_EQ(replayed, expect_replay);
    th_check_state_offsets(&e, app, in);
    th_output_stats_t s = th_check_output(out, truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(truth));
    th_counts_destroy(truth);
}

int main(void) {
    th_bootstrap();
    const char *now = "state.write.interval.ms=0\n";
    run("after_produce", 0, now);
    run("after_send_offsets", 0, now);
    run("during_commit", -1, now);  /* the commit may or may not have reached the coordinator */
    run("after_commit", 1, now);
    run("mid_state_write", -1, now); /* RocksDB's batch is atomic: all of it or none, so either path */
    /* Epoch 1 is written at once (nothing was written before), epoch 2 waits for the interval:
     * Kafka committed it, the state did not, so the restart replays it. */
    run("after_produce", 1, "state.write.interval.ms=600000\n");
    return 0;
}
