/* SPDX-License-Identifier: MIT */
/* Crash test: the engine is SIGKILLed at random moments while input keeps arriving and restarted each
 * time; then the whole read_committed output is checked: per word strictly increasing (exactly_once)
 * or never decreasing (at_least_once, which may repeat), last count equal to the truth, nothing extra.
 *   test_crash exactly_once|at_least_once */
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "harness.h"

enum { KILLS = 6 };

typedef struct {
    const char *topic;
    th_counts_t *truth;
    volatile int stop;
    long lines;
} feeder_t;

/* Produces until told to stop, at roughly 40k lines/s, so that every kill lands while input flows. */
static void *feed(void *arg) {
    feeder_t *f = arg;
    rd_kafka_t *p = th_producer();
    unsigned long long r = 0x9E3779B97F4A7C15ULL;
    char line[256];
    for (int i = 0; !f->stop; i++) {
        size_t n = 0;
        int words = 1 + (int)(r % 10);
        for (int w = 0; w < words; w++) {
            r ^= r << 13; r ^= r >> 7; r ^= r << 17;
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%sk%llu", w ? " " : "", (r >> 20) % 3000);
        }
        th_counts_add_line(f->truth, line, n);
        th_produce(p, f->topic, -1, NULL, 0, line, n);
        f->lines++;
        if (i % 1000 == 999) usleep(25000);
    }
    th_flush_destroy(p);
    return NULL;
}

int main(int argc, char **argv) {
    const char *guarantee = argc > 1 ? argv[1] : "exactly_once";
    int strict = strcmp(guarantee, "exactly_once") == 0;
    th_bootstrap();
    const char *in = th_unique("crash-in"), *out = th_unique("crash-out"), *app = th_unique("crash");
    th_create_topic(in, 4);
    th_create_topic(out, 4);

    feeder_t f = {.topic = in, .truth = th_counts_new()};
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, feed, &f), 0);

    char extra[128];
    snprintf(extra, sizeof(extra), "processing.guarantee=%s\nworkers=2\n", guarantee);
    th_engine_t e;
    th_engine_init(&e, app, in, out, extra);
    th_engine_start(&e);
    unsigned seed = (unsigned)getpid();
    int kills = 0;
    for (; kills < KILLS; kills++) {
        th_engine_wait_started(&e, 60);
        usleep(300000 + (useconds_t)(rand_r(&seed) % 2500) * 1000);
        if (!th_engine_alive(&e)) {
            th_engine_dump_log(&e, 40);
            TH_FAIL("engine died by itself before kill %d", kills + 1);
        }
        int st = th_engine_signal_wait(&e, SIGKILL, 30);
        ASSERT_EQ(st, 128 + SIGKILL);
        fprintf(stderr, "kill %d done\n", kills + 1);
        th_engine_start(&e);
    }
    f.stop = 1;
    pthread_join(t, NULL);
    double t0 = th_now();
    th_wait_committed(app, in, 300, &e);
    double secs = th_now() - t0;
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    fprintf(stderr, "survived %d kills with %ld lines flowing; final run caught up in %.1f s after input ended\n", kills,
            f.lines, secs);
    th_system("grep -c 'committed:' %s | sed 's/^/commits logged: /' >&2; grep -c 'replaying' %s | sed 's/^/replays: /' >&2",
              e.log, e.log);
    th_system("grep 'epoch .* committed' %s | awk '{l+=$7} END {print \"lines committed over all runs: \" l}' >&2", e.log);

    th_output_stats_t s = th_check_output(out, f.truth, strict);
    ASSERT_EQ(s.words, (long)th_counts_size(f.truth));
    if (strict) ASSERT_EQ(s.duplicates, 0);
    else fprintf(stderr, "at_least_once repeated %ld counts after %d kills (exactly_once repeats none)\n", s.duplicates, kills);
    th_counts_destroy(f.truth);
    return 0;
}
