/* SPDX-License-Identifier: MIT */
/* Crash test: the engine is SIGKILLed at random moments while input keeps arriving and restarted each
 * time; then the whole read_committed output is checked: per word strictly increasing (exactly_once)
 * or never decreasing (at_least_once, which may repeat), last count equal to the truth, nothing extra.
 *   test_crash exactly_once|at_least_once */
#include <signal.h>
#include <unistd.h>

#include "harness.h"

enum { KILLS = 6 };

int main(int argc, char **argv) {
    const char *guarantee = argc > 1 ? argv[1] : "exactly_once";
    int strict = strcmp(guarantee, "exactly_once") == 0;
    th_bootstrap();
    const char *in = th_unique("crash-in"), *out = th_unique("crash-out"), *app = th_unique("crash");
    th_create_topic(in, 4);
    th_create_topic(out, 4);

    /* About 40k lines/s, so that every kill lands while input flows. */
    th_feeder_t f = {.topics = {in}, .prefix = "k", .vocab = 3000, .max_words = 10, .burst = 1000, .pause_us = 25000};
    th_feeder_start(&f);

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
        th_engine_require_alive(&e, "by itself between kills");
        int st = th_engine_signal_wait(&e, SIGKILL, 30);
        ASSERT_EQ(st, 128 + SIGKILL);
        fprintf(stderr, "kill %d done\n", kills + 1);
        th_engine_start(&e);
    }
    th_feeder_stop(&f);
    double t0 = th_now();
    th_wait_committed(app, in, 300, &e);
    double secs = th_now() - t0;
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    fprintf(stderr, "survived %d kills with %ld lines flowing; final run caught up in %.1f s after input ended\n", kills,
            f.lines, secs);
    th_system("grep -c 'committed:' %s | sed 's/^/commits logged: /' >&2; grep -c 'replaying' %s | sed 's/^/replays: /' >&2",
              e.log, e.log);
    th_system("grep 'epoch .* committed' %s | awk '{l+=$7} END {print \"lines committed over all runs: \" l}' >&2", e.log);

    th_check_state_offsets(&e, app, in);
    th_output_stats_t s = th_check_output(out, f.truth, strict);
    ASSERT_EQ(s.words, (long)th_counts_size(f.truth));
    if (strict) ASSERT_EQ(s.duplicates, 0);
    else
        fprintf(stderr, "at_least_once repeated %ld counts and fell back %ld times after %d kills (exactly_once does "
                "neither)\n", s.duplicates, s.regressions, kills);
    th_counts_destroy(f.truth);
    return 0;
}
