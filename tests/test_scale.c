/* SPDX-License-Identifier: MIT */
/* Scaling by adding partitions: two input topics count into one state; partitions are added to one of
 * them (2 -> 4 -> 8) while input flows to all of them, the engine is SIGKILLed once in between and
 * restarted later with another `workers` value. Every count must stay exact and strictly increasing. */
#include <signal.h>
#include <unistd.h>

#include "harness.h"

int main(void) {
    th_bootstrap();
    const char *a = th_unique("scale-a"), *b = th_unique("scale-b"), *out = th_unique("scale-out"),
               *app = th_unique("scale");
    th_create_topic(a, 2);
    th_create_topic(b, 1);
    th_create_topic(out, 4);

    char inputs[512];
    snprintf(inputs, sizeof(inputs), "%s,%s", a, b);
    th_engine_t e;
    th_engine_init(&e, app, inputs, out, "workers=2\nmetadata.refresh.interval.ms=1000\nstarting.offsets=latest\n");
    th_engine_start(&e);
    /* latest: the engine must have resolved "the end" of every partition before the input that counts
     * begins, or the first lines fall before its start and are never counted. */
    th_engine_wait_positioned(&e, a, 2, 120);
    th_engine_wait_positioned(&e, b, 1, 120);

    th_feeder_t f = {.topics = {a, b}, .prefix = "s", .vocab = 700, .max_words = 2, .burst = 500, .pause_us = 10000};
    th_feeder_start(&f);
    sleep(2);
    th_add_partitions(a, 4);
    fprintf(stderr, "added partitions: %s has 4\n", a);
    sleep(3);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGKILL, 30), 128 + SIGKILL);
    th_engine_start(&e);
    sleep(2);
    th_add_partitions(a, 8);
    fprintf(stderr, "added partitions: %s has 8\n", a);
    sleep(4);
    th_feeder_stop(&f);
    th_wait_committed(app, a, 120, &e);
    th_wait_committed(app, b, 120, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);

    ASSERT_EQ(th_system("grep -q 'assigned.*%s\\[7\\]' %s", a, e.log), 0);
    fprintf(stderr, "fed %ld lines across %s (2->4->8 partitions) and %s\n", f.lines, a, b);

    /* Another worker count on the same state. */
    th_engine_append_conf(&e, "workers=1\n");
    th_engine_start(&e);
    th_produce_words(a, 5000, 5, 700, f.truth);
    th_produce_words(b, 5000, 6, 700, f.truth);
    th_wait_committed(app, a, 120, &e);
    th_wait_committed(app, b, 120, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    ASSERT_EQ(th_system("grep -q 'workers=1' %s", e.log), 0);

    th_output_stats_t s = th_check_output(out, f.truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(f.truth));
    th_counts_destroy(f.truth);
    return 0;
}
