/* SPDX-License-Identifier: MIT */
/* Partitions added while tally is down. A static group member that rejoins gets its old assignment
 * back without a rebalance, so the new partitions were never assigned (librdkafka 2.0.2, Kafka 3.9:
 * 2 of 6 partitions assigned, the other 4 never read). The engine must notice and rejoin: every
 * record of all six partitions is counted, exactly. */
#include <signal.h>
#include <unistd.h>

#include "harness.h"

int main(void) {
    th_bootstrap();
    const char *in = th_unique("down-in"), *out = th_unique("down-out"), *app = th_unique("down");
    th_create_topic(in, 2);
    th_create_topic(out, 2);
    th_counts_t *truth = th_counts_new();
    th_engine_t e;
    th_engine_init(&e, app, in, out, "metadata.refresh.interval.ms=1000\n");
    th_engine_start(&e);
    th_produce_words(in, 3000, 21, 300, truth);
    th_wait_committed(app, in, 60, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGKILL, 30), 128 + SIGKILL);

    th_add_partitions(in, 6);
    /* A producer whose first metadata still shows 2 partitions writes none to the new ones (seen
     * once in CI, under load): produce until each new partition holds records. */
    for (int round = 0, filled = 0; !filled; round++) {
        ASSERT_LT(round, 20);
        th_produce_words(in, 6000, 22 + (unsigned long long)round, 300, truth);
        filled = 1;
        for (int p = 2; p < 6; p++) filled = filled && th_high_watermark(in, p) > 0;
        if (!filled) sleep(1);
    }
    th_engine_start(&e);
    th_wait_committed(app, in, 90, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    ASSERT_EQ(th_system("grep -q 'assigned.*%s\\[5\\]' %s", in, e.log), 0);
    th_check_state_offsets(&e, app, in);
    th_output_stats_t s = th_check_output(out, truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(truth));
    th_counts_destroy(truth);
    return 0;
}
