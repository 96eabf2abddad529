/* SPDX-License-Identifier: MIT */
/* A stop must not hang when its final epoch fails to commit. The test-only fail point
 * fail_final_commit turns the commit of the final epoch (SIGTERM) into an abortable error: the engine
 * must roll back, ask for a final epoch again and commit it, exit 0 within a bounded time, and leave
 * exact counts (before the fix the rollback restarted the threads without a final barrier and the
 * stop waited for them forever). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* Sum of tally_partition_read_offset over the engine's partitions, from /metrics (-1 on error). */
static long long read_offsets(int port) {
    int status = 0;
    char *body = th_http("GET", port, "/metrics", &status, NULL);
    if (!body || status != 200) {
        free(body);
        return -1;
    }
    long long sum = 0;
    for (char *l = strstr(body, "\ntally_partition_read_offset{"); l; l = strstr(l + 1, "\ntally_partition_read_offset{")) {
        char *v = strchr(l, '}');
        if (v) sum += atoll(v + 1);
    }
    free(body);
    return sum;
}

/* Waits until the partition threads read `lines` records, so the final epoch has them to commit. */
static void wait_read(th_engine_t *e, int port, long long lines) {
    double t0 = th_now();
    while (read_offsets(port) < lines) {
        th_engine_require_alive(e, "reading the input");
        if (th_now() - t0 > 60) TH_FAIL("the engine did not read %lld records within 60 s", lines);
        usleep(100000);
    }
}

int main(void) {
    th_bootstrap();
    const char *in = th_unique("final-in"), *out = th_unique("final-out"), *app = th_unique("final");
    th_create_topic(in, 2);
    th_create_topic(out, 2);
    th_counts_t *truth = th_counts_new();
    int port = th_free_port();
    char extra[256];
    /* No trigger before the stop: the final epoch holds all the input. */
    snprintf(extra, sizeof(extra), "trigger.interval.ms=300000\ntransaction.timeout.ms=600000\nhttp.listen=127.0.0.1:%d\n", port);
    th_engine_t e;
    th_engine_init(&e, app, in, out, extra);
    setenv("TALLY_CRASH_AT", "fail_final_commit:0", 1);
    th_engine_start(&e);
    unsetenv("TALLY_CRASH_AT");
    th_engine_wait_started(&e, 60);

    th_produce_words(in, 6000, 7, 500, truth);
    wait_read(&e, port, 6000);
    int st = th_engine_signal_wait(&e, SIGTERM, 120);
    if (st != 0) th_engine_dump_log(&e, 40);
    ASSERT_EQ(st, 0);
    ASSERT_EQ(th_system("grep -q 'fail point fail_final_commit' %s", e.log), 0);
    ASSERT_EQ(th_system("grep -q 'rolling back to the last committed epoch' %s", e.log), 0);
    ASSERT_EQ(th_system("grep -q 'stopped cleanly' %s", e.log), 0);
    th_check_state_offsets(&e, app, in);
    ASSERT(th_is_committed(app, in));

    /* A restart goes on from there (the fail point fired once): more input, exact. */
    th_produce_words(in, 2000, 8, 500, truth);
    th_engine_start(&e);
    th_engine_wait_started(&e, 60);
    wait_read(&e, port, 8000);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    th_check_state_offsets(&e, app, in);
    th_output_stats_t s = th_check_output(out, truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(truth));
    th_counts_destroy(truth);
    return 0;
}
