/* SPDX-License-Identifier: MIT */
/* Broker faults while input flows: a hard bounce (kill -9 of the broker JVM, restart on the same
 * data), a clean restart, then the broker down for longer than transaction.timeout.ms. The engine
 * rides out the first two (retrying, or rolling back to its last commit). The long outage lets the
 * coordinator abort the open transaction and bump the producer epoch, which librdkafka 2.0.2
 * reports as fatal: the engine replaces its producer, or stops with the cause (status 1 or 3) and a
 * restart resumes exactly. With librdkafka 2.8 a bounce can also expire the static group member's
 * session, whose rejoin then fences its own old member id: the consumer fails for good and the
 * engine stops with that cause; a restart resumes exactly. Afterwards the counts are exact and
 * strictly increasing, and no transaction is left hanging. */
#include <signal.h>
#include <unistd.h>

#include "harness.h"

/* kill -9 of the broker JVM, down_s seconds down, restart on its data, settle_s seconds to recover. */
static void broker_down(unsigned down_s, unsigned settle_s) {
    ASSERT_EQ(th_kafka_local("kill"), 0);
    sleep(down_s);
    ASSERT_EQ(th_kafka_local("start"), 0);
    sleep(settle_s);
}

static int restarts;

/* The engine rode out the fault, or stopped with one of the causes above; then it is restarted
 * (twice at most in the whole test) and must go on exactly. */
static void ride_out(th_engine_t *e, const char *during) {
    if (th_engine_alive(e)) return;
    if (th_system("grep -qE 'ERROR .*(fenced|transaction|Kafka|group consumer failed for good)' %s", e->log) != 0)
        th_engine_require_alive(e, during);
    ASSERT_LT(restarts, 2);
    restarts++;
    fprintf(stderr, "engine stopped %s; restarting (%d)\n", during, restarts);
    th_engine_start(e);
    th_engine_wait_started(e, 60);
}

int main(void) {
    th_bootstrap();
    const char *in = th_unique("bounce-in"), *out = th_unique("bounce-out"), *app = th_unique("bounce");
    th_create_topic(in, 3);
    th_create_topic(out, 3);
    /* The producer is idempotent and outlives the broker restarts (librdkafka retries). */
    th_feeder_t f = {.topics = {in}, .prefix = "b", .vocab = 211, .max_words = 3, .burst = 500, .pause_us = 20000};
    th_feeder_start(&f);

    th_engine_t e;
    th_engine_init(&e, app, in, out, NULL);
    th_engine_start(&e);
    th_engine_wait_started(&e, 60);
    sleep(3);

    fprintf(stderr, "hard bounce: kill -9 of the broker, restart on its data\n");
    broker_down(1, 4);
    ride_out(&e, "in the hard bounce");

    fprintf(stderr, "clean restart of the broker (SIGTERM, same data)\n");
    ASSERT_EQ(th_kafka_local("restart"), 0);
    sleep(4);
    ride_out(&e, "in the clean broker restart");

    /* The last fault wants a short transaction timeout; the faults above ran with the default. A
     * consumer fenced by its own rejoin may also end the engine now, before or during this stop. */
    if (th_engine_signal_wait(&e, SIGTERM, 60) != 0) {
        ASSERT_EQ(th_system("grep -q 'group consumer failed for good' %s", e.log), 0);
        ASSERT_LT(restarts, 2);
        restarts++;
    }
    th_engine_append_conf(&e, "transaction.timeout.ms=6000\n");
    th_engine_start(&e);
    th_engine_wait_started(&e, 60);
    sleep(3);
    fprintf(stderr, "broker down for 10 s, longer than transaction.timeout.ms=6000\n");
    broker_down(10, 5);
    th_feeder_stop(&f);
    double deadline = th_now() + 240;
    while (!th_is_committed(app, in)) {
        /* Only a clear stop with the cause is acceptable; a restart must then recover exactly. */
        ride_out(&e, "after the outage");
        if (th_now() > deadline) TH_FAIL("input not committed within 240 s");
        usleep(200000);
    }
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    th_system("grep -c 'rolling back' %s | sed 's/^/rollbacks: /' >&2", e.log);
    fprintf(stderr, "%ld lines through three broker faults, %d engine restart(s)\n", f.lines, restarts);
    th_check_state_offsets(&e, app, in);
    th_output_stats_t s = th_check_output(out, f.truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(f.truth));
    th_counts_destroy(f.truth);
    return 0;
}
