/* SPDX-License-Identifier: MIT */
/* Recovery's replay must not wait forever. The engine is killed after a Kafka commit and before its
 * state write (crash point after_commit), so the next start replays [D, K). The hold point
 * hold_before_replay pauses it just before the replay; the test freezes the broker (SIGSTOP) then.
 * Nothing arrives, and the engine must stop with recovery.stall.timeout.ms, naming the partition
 * and the range (before the fix it polled forever inside the rebalance callback). With the broker
 * back, a restart replays and the counts are exact. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"

static int broker_pid(void) {
    char path[512];
    const char *dir = getenv("KAFKA_LOCAL_DIR");
    if (!dir) TH_FAIL("KAFKA_LOCAL_DIR is not set (scripts/test sets it)");
    snprintf(path, sizeof(path), "%s/broker.pid", dir);
    size_t len = 0;
    char *s = th_read_file(path, &len);
    if (!s) TH_FAIL("cannot read %s", path);
    int pid = atoi(s);
    free(s);
    ASSERT_GT(pid, 0);
    return pid;
}

int main(void) {
    th_bootstrap();
    const char *in = th_unique("stall-in"), *out = th_unique("stall-out"), *app = th_unique("stall");
    th_create_topic(in, 1);
    th_create_topic(out, 1);
    th_counts_t *truth = th_counts_new();
    th_engine_t e;
    th_engine_init(&e, app, in, out, "recovery.stall.timeout.ms=3000\n");

    setenv("TALLY_CRASH_AT", "after_commit:2", 1);
    th_engine_start(&e);
    unsetenv("TALLY_CRASH_AT");
    for (int wave = 0; wave < 30 && th_engine_alive(&e); wave++) {
        th_produce_words(in, 2000, 300 + (unsigned long long)wave, 200, truth);
        usleep(300000);
    }
    ASSERT_EQ(th_engine_wait(&e, 60), 128 + SIGKILL);

    setenv("TALLY_CRASH_AT", "hold_before_replay", 1);
    th_engine_start(&e);
    unsetenv("TALLY_CRASH_AT");
    double t0 = th_now();
    while (th_system("grep -q 'hold point hold_before_replay' %s", e.log) != 0) {
        th_engine_require_alive(&e, "waiting for the hold point");
        if (th_now() - t0 > 60) TH_FAIL("the engine did not reach the replay within 60 s");
        usleep(50000);
    }
    int pid = broker_pid();
    ASSERT_EQ(kill(pid, SIGSTOP), 0);
    /* The hold lasts 5 s, the stall bound 3 s: the stop must come well within 30 s. */
    t0 = th_now();
    while (th_system("grep -q 'stalled at offset' %s", e.log) != 0 && th_now() - t0 < 30) usleep(100000);
    ASSERT_EQ(kill(pid, SIGCONT), 0);
    int st = th_engine_wait(&e, 60);
    if (st != 1) th_engine_dump_log(&e, 30);
    ASSERT_EQ(st, 1);
    ASSERT_EQ(th_system("grep -q 'replay of %s\\[0\\] \\[[0-9]*, [0-9]*) stalled at offset' %s", in, e.log), 0);

    th_produce_words(in, 2000, 999, 200, truth);
    th_engine_start(&e);
    th_wait_committed(app, in, 120, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    /* The stalled attempt logged no "replayed" line: this one replayed. */
    ASSERT_EQ(th_system("grep -q 'replayed [0-9]* lines' %s", e.log), 0);
    th_check_state_offsets(&e, app, in);
    th_output_stats_t s = th_check_output(out, truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(truth));
    th_counts_destroy(truth);
    return 0;
}
