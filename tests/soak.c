/* SPDX-License-Identifier: MIT */
/* Soak: input at a fixed rate for MINUTES, the engine SIGKILLed every 20-60 s and the broker hard
 * bounced every few minutes; then every check of the fault suite. Not a meson test (it runs for as
 * long as asked): scripts/soak builds the broker and runs it.
 *   tally-soak MINUTES LINES_PER_SECOND */
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tally-soak MINUTES LINES_PER_SECOND\n");
        return 2;
    }
    double minutes = atof(argv[1]), rate = atof(argv[2]);
    th_bootstrap();
    const char *in = th_unique("soak-in"), *out = th_unique("soak-out"), *app = th_unique("soak");
    th_create_topic(in, 4);
    th_create_topic(out, 4);
    /* Bursts every 10 ms make the rate (roughly: producing takes time too). */
    int burst = (int)(rate / 100) > 0 ? (int)(rate / 100) : 1;
    th_feeder_t f = {.topics = {in}, .prefix = "s", .vocab = 20000, .max_words = 8, .burst = burst, .pause_us = 10000};
    th_feeder_start(&f);

    th_engine_t e;
    th_engine_init(&e, app, in, out, "trigger.interval.ms=1000\n");
    th_engine_start(&e);
    unsigned seed = (unsigned)time(NULL);
    double end = th_now() + minutes * 60, next_kill = th_now() + 20 + rand_r(&seed) % 41,
           next_bounce = th_now() + 120 + rand_r(&seed) % 120;
    int kills = 0, bounces = 0, restarts = 0;
    while (th_now() < end) {
        sleep(1);
        if (!th_engine_alive(&e)) {
            /* Only a clear stop is acceptable; count it and restart. */
            th_engine_dump_log(&e, 5);
            restarts++;
            th_engine_start(&e);
        }
        if (th_now() >= next_kill) {
            th_engine_signal_wait(&e, SIGKILL, 30);
            kills++;
            th_engine_start(&e);
            next_kill = th_now() + 20 + rand_r(&seed) % 41;
        }
        if (th_now() >= next_bounce) {
            ASSERT_EQ(th_kafka_local("kill"), 0);
            sleep(2);
            ASSERT_EQ(th_kafka_local("start"), 0);
            bounces++;
            next_bounce = th_now() + 120 + rand_r(&seed) % 120;
        }
        fprintf(stderr, "\rsoak: %.0f s left, %ld lines, %d kills, %d bounces   ", end - th_now(), f.lines, kills, bounces);
    }
    th_feeder_stop(&f);
    fprintf(stderr, "\n");
    double deadline = th_now() + 600;
    while (!th_is_committed(app, in)) {
        if (!th_engine_alive(&e)) { restarts++; th_engine_start(&e); }
        if (th_now() > deadline) TH_FAIL("the engine did not catch up within 600 s after the input stopped");
        sleep(1);
    }
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    th_output_stats_t s = th_check_output(out, f.truth, 0);
    printf("soak minutes=%.0f rate=%.0f lines=%ld kills=%d bounces=%d clear_stops=%d output_records=%ld "
           "duplicates=%ld lost=0 words_exact=%ld\n", minutes, rate, f.lines, kills, bounces, restarts, s.records,
           s.duplicates, s.words);
    return s.duplicates == 0 && s.words == (long)th_counts_size(f.truth) ? 0 : 1;
}
