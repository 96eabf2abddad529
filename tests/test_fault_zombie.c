/* SPDX-License-Identifier: MIT */
/* Zombie fencing: the engine is frozen (SIGSTOP), a second instance with the same application.id
 * starts and fences it, the first is thawed (SIGCONT) and must exit fenced (status 3) without
 * committing anything more; the second carries on and the counts stay exact. */
#include <signal.h>
#include <unistd.h>

#include "harness.h"

int main(void) {
    th_bootstrap();
    const char *in = th_unique("zombie-in"), *out = th_unique("zombie-out"), *app = th_unique("zombie");
    th_create_topic(in, 2);
    th_create_topic(out, 2);
    th_feeder_t f = {.topics = {in}, .prefix = "z", .vocab = 97, .max_words = 2, .burst = 200, .pause_us = 10000};
    th_feeder_start(&f);

    th_engine_t a;
    th_engine_init(&a, app, in, out, NULL);
    th_engine_start(&a);
    th_engine_wait_started(&a, 60);
    sleep(2);
    kill(a.pid, SIGSTOP);

    th_engine_t b = a;
    snprintf(b.log, sizeof(b.log), "%s/engine-b.log", a.dir);
    b.starts = 0;
    th_engine_start(&b);
    /* b fences a in init_transactions, then waits for a's lock on state.dir. */
    double deadline = th_now() + 60;
    while (th_system("grep -q 'locked by another tally process' %s", b.log) != 0) {
        if (th_now() > deadline) {
            th_engine_dump_log(&b, 20);
            TH_FAIL("second instance never reached the state.dir lock");
        }
        usleep(100000);
    }
    int commits_before = th_system("exit $(grep -c 'epoch .* committed' %s)", a.log);
    kill(a.pid, SIGCONT);
    int st = th_engine_wait(&a, 60);
    if (st != 3) th_engine_dump_log(&a, 20);
    ASSERT_EQ(st, 3);
    ASSERT_EQ(th_system("grep -q 'fenced: another tally instance' %s", a.log), 0);
    ASSERT_EQ(th_system("exit $(grep -c 'epoch .* committed' %s)", a.log), commits_before);

    sleep(2);
    th_feeder_stop(&f);
    th_wait_committed(app, in, 120, &b);
    ASSERT_EQ(th_engine_signal_wait(&b, SIGTERM, 60), 0);
    th_check_state_offsets(&b, app, in);
    th_output_stats_t s = th_check_output(out, f.truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(f.truth));
    th_counts_destroy(f.truth);
    return 0;
}
