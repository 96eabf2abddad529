/* SPDX-License-Identifier: MIT */
/* Proves the broker is real and fit for exactly-once with our librdkafka: one transaction committed,
 * one aborted; read_committed sees only the committed records, read_uncommitted sees both. */
#include "harness.h"

static void check(rd_kafka_error_t *e, const char *what) {
    if (e) TH_FAIL("%s: %s", what, rd_kafka_error_string(e));
}

struct seen { int committed, aborted, other; };

static void count_cb(const rd_kafka_message_t *m, void *opaque) {
    struct seen *s = opaque;
    if (m->len >= 9 && memcmp(m->payload, "committed", 9) == 0) s->committed++;
    else if (m->len >= 7 && memcmp(m->payload, "aborted", 7) == 0) s->aborted++;
    else s->other++;
}

int main(void) {
    const char *bootstrap = th_bootstrap();
    const char *topic = th_unique("txn");
    th_create_topic(topic, 2);

    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    ASSERT_EQ(rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err)), RD_KAFKA_CONF_OK);
    ASSERT_EQ(rd_kafka_conf_set(c, "transactional.id", th_unique("txn-id"), err, sizeof(err)), RD_KAFKA_CONF_OK);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (!p) TH_FAIL("producer: %s", err);

    check(rd_kafka_init_transactions(p, 30000), "init_transactions");

    enum { N = 100 };
    check(rd_kafka_begin_transaction(p), "begin 1");
    for (int i = 0; i < N; i++) {
        char v[32];
        int n = snprintf(v, sizeof(v), "committed-%d", i);
        th_produce(p, topic, i % 2, NULL, 0, v, (size_t)n);
    }
    check(rd_kafka_commit_transaction(p, 30000), "commit");

    check(rd_kafka_begin_transaction(p), "begin 2");
    for (int i = 0; i < N; i++) {
        char v[32];
        int n = snprintf(v, sizeof(v), "aborted-%d", i);
        th_produce(p, topic, i % 2, NULL, 0, v, (size_t)n);
    }
    ASSERT_EQ(rd_kafka_flush(p, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    check(rd_kafka_abort_transaction(p, 30000), "abort");
    rd_kafka_destroy(p);

    struct seen rc = {0}, ru = {0};
    th_consume_all(topic, 1, count_cb, &rc);
    th_consume_all(topic, 0, count_cb, &ru);
    fprintf(stderr, "read_committed: %d committed, %d aborted; read_uncommitted: %d committed, %d aborted\n",
            rc.committed, rc.aborted, ru.committed, ru.aborted);
    ASSERT_EQ(rc.committed, N);
    ASSERT_EQ(rc.aborted, 0);
    ASSERT_EQ(rc.other, 0);
    ASSERT_EQ(ru.committed, N);
    ASSERT_EQ(ru.aborted, N);
    return 0;
}
