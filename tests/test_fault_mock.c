/* SPDX-License-Identifier: MIT */
/* How the engine reacts to each class of transactional error, injected with librdkafka's mock
 * cluster (fine for reactions; never used here to judge exactly-once or speed):
 *   retriable coordinator errors -> retried: no rollback, no exit, commits go on;
 *   abortable errors             -> rollback to the last commit, then commits go on;
 *   fatal authorization error    -> exit 1 naming the cause;
 *   fencing                      -> exit 3 saying it was fenced.
 * Needs no broker: it runs (and may not skip) with or without $TALLY_BOOTSTRAP. */
#include <signal.h>
#include <unistd.h>

#include "harness.h"
/* After rdkafka.h (through harness.h), as the header demands. */
#include <librdkafka/rdkafka_mock.h>

/* Kafka protocol ApiKeys (librdkafka 2.0.2 keeps its RD_KAFKAP_* names internal). */
enum { API_ADD_PARTITIONS_TO_TXN = 24, API_ADD_OFFSETS_TO_TXN = 25, API_END_TXN = 26 };

static rd_kafka_mock_cluster_t *mcluster;
static rd_kafka_t *mock_rk;
static const char *bootstrap;

static int commits(th_engine_t *e) {
    return th_system("exit $(grep -c 'epoch .* committed' %s)", e->log);
}

static void feed(const char *topic, int lines) {
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    ASSERT(p);
    for (int i = 0; i < lines; i++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "m%d m%d", i % 50, i % 7);
        th_produce(p, topic, -1, NULL, 0, line, (size_t)n);
    }
    th_flush_destroy(p);
}

/* Starts an engine on a fresh topic pair and waits for its first commits. */
static void start(th_engine_t *e, const char *tag) {
    const char *in = th_unique(tag), *out = th_unique("mock-out");
    rd_kafka_mock_topic_create(mcluster, in, 2, 1);
    rd_kafka_mock_topic_create(mcluster, out, 2, 1);
    th_engine_init(e, th_unique("mock"), in, out, "trigger.interval.ms=300\n");
    th_engine_start(e);
    th_engine_wait_started(e, 60);
    double deadline = th_now() + 60;
    while (commits(e) < 2) {
        feed(in, 200);
        if (!th_engine_alive(e) || th_now() > deadline) {
            th_engine_dump_log(e, 30);
            TH_FAIL("%s: no commits on the mock cluster", tag);
        }
        usleep(300000);
    }
}

/* Feeds input for a while; returns when the engine exited or the time is up. */
static void keep_feeding(th_engine_t *e, double seconds) {
    char in[256];
    FILE *f = fopen(e->conf, "r");
    ASSERT(f);
    char line[512];
    in[0] = '\0';
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "input.topic=%255s", in) == 1) break;
    fclose(f);
    double end = th_now() + seconds;
    while (th_now() < end && th_engine_alive(e)) {
        feed(in, 100);
        usleep(200000);
    }
}

int main(void) {
    /* No th_bootstrap() check: this test brings its own cluster and runs with or without a broker
     * configured; the mock cluster's address replaces any $TALLY_BOOTSTRAP for the engines below. */
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", "", err, sizeof(err));
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    ASSERT(mock_rk);
    mcluster = rd_kafka_mock_cluster_new(mock_rk, 1);
    ASSERT(mcluster);
    bootstrap = rd_kafka_mock_cluster_bootstraps(mcluster);
    setenv("TALLY_BOOTSTRAP", bootstrap, 1);
    fprintf(stderr, "mock cluster at %s\n", bootstrap);

    /* Retriable: the coordinator is loading or moving; librdkafka and the engine retry. */
    th_engine_t e;
    start(&e, "mock-retriable");
    int before = commits(&e);
    rd_kafka_mock_push_request_errors(mcluster, API_END_TXN, 3, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                                      RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);
    rd_kafka_mock_push_request_errors(mcluster, API_ADD_OFFSETS_TO_TXN, 2, RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);
    keep_feeding(&e, 4);
    ASSERT(th_engine_alive(&e));
    ASSERT_GT(commits(&e), before);
    ASSERT_NE(th_system("grep -q 'rolling back' %s", e.log), 0);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    fprintf(stderr, "retriable: retried, %d commits, no rollback\n", commits(&e));

    /* Abortable: the broker refuses a partition of the transaction. */
    start(&e, "mock-abortable");
    before = commits(&e);
    rd_kafka_mock_push_request_errors(mcluster, API_ADD_PARTITIONS_TO_TXN, 1,
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    keep_feeding(&e, 4);
    if (!th_engine_alive(&e)) th_engine_dump_log(&e, 30);
    ASSERT(th_engine_alive(&e));
    ASSERT_EQ(th_system("grep -q 'rolling back to the last committed epoch' %s", e.log), 0);
    ASSERT_GT(commits(&e), before);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    fprintf(stderr, "abortable: rolled back and went on\n");

    /* Fatal: the transactional id is not authorized. */
    start(&e, "mock-fatal");
    rd_kafka_mock_push_request_errors(mcluster, API_ADD_OFFSETS_TO_TXN, 1,
                                      RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
    keep_feeding(&e, 10);
    int st = th_engine_wait(&e, 30);
    if (st != 1) th_engine_dump_log(&e, 30);
    ASSERT_EQ(st, 1);
    ASSERT_EQ(th_system("grep -qi 'authoriz' %s", e.log), 0);
    fprintf(stderr, "fatal: exit 1 with the cause\n");

    /* Fenced: a newer producer epoch exists. */
    start(&e, "mock-fenced");
    rd_kafka_mock_push_request_errors(mcluster, API_END_TXN, 1, RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
    keep_feeding(&e, 10);
    st = th_engine_wait(&e, 30);
    if (st != 3) th_engine_dump_log(&e, 30);
    ASSERT_EQ(st, 3);
    ASSERT_EQ(th_system("grep -q 'fenced' %s", e.log), 0);
    fprintf(stderr, "fenced: exit 3\n");

    rd_kafka_mock_cluster_destroy(mcluster);
    rd_kafka_destroy(mock_rk);
    return 0;
}
