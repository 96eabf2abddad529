/* SPDX-License-Identifier: MIT */
/* Fencing and takeover: a second instance with the same application.id (and state.dir) fences the
 * running one, which exits 3 saying it was fenced; the second goes on and the counts stay exact. */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "harness.h"

int main(void) {
    th_bootstrap();
    const char *in = th_unique("fence-in"), *out = th_unique("fence-out"), *app = th_unique("fence");
    th_create_topic(in, 2);
    th_create_topic(out, 2);
    th_counts_t *truth = th_counts_new();
    th_produce_words(in, 50000, 7, 500, truth);

    th_engine_t a;
    th_engine_init(&a, app, in, out, NULL);
    th_engine_start(&a);
    th_wait_committed(app, in, 120, &a);

    /* More input keeps the first instance committing, so it learns of the fence at its next commit. */
    th_engine_t b = a;
    snprintf(b.log, sizeof(b.log), "%s/engine-b.log", a.dir);
    b.starts = 0;
    th_produce_words(in, 20000, 8, 500, truth);
    th_engine_start(&b);
    rd_kafka_t *p = th_producer();
    double deadline = th_now() + 90;
    int st = -1;
    while (th_now() < deadline && (st = th_engine_wait(&a, 0.2)) < 0) {
        char line[32];
        int n = snprintf(line, sizeof(line), "w%d tick", (int)(th_now() * 10) % 500);
        th_counts_add_line(truth, line, (size_t)n);
        th_produce(p, in, -1, NULL, 0, line, (size_t)n);
        rd_kafka_flush(p, 5000);
    }
    th_flush_destroy(p);
    if (st != 3) {
        th_engine_dump_log(&a, 30);
        th_engine_dump_log(&b, 30);
    }
    ASSERT_EQ(st, 3);
    ASSERT_EQ(th_system("grep -q 'fenced: another tally instance with application.id=%s' %s", app, a.log), 0);

    th_wait_committed(app, in, 120, &b);
    ASSERT_EQ(th_engine_signal_wait(&b, SIGTERM, 60), 0);
    th_output_stats_t s = th_check_output(out, truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(truth));
    th_counts_destroy(truth);
    return 0;
}
