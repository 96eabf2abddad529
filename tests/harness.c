/* SPDX-License-Identifier: MIT */
/* Broker helpers for the kafka and fault suites. */
#include "harness.h"

#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double th_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *th_bootstrap(void) {
    const char *b = getenv("TALLY_BOOTSTRAP");
    if (b && *b) return b;
    const char *req = getenv("TALLY_REQUIRE_BROKER");
    if (req && strcmp(req, "1") == 0) {
        fprintf(stderr, "FAIL: TALLY_REQUIRE_BROKER=1 but TALLY_BOOTSTRAP is not set\n");
        exit(1);
    }
    fprintf(stderr, "SKIP: no broker (set TALLY_BOOTSTRAP, e.g. with scripts/kafka-local start)\n");
    exit(TH_SKIP);
}

const char *th_unique(const char *prefix) {
    static int n;
    char *s = malloc(128);
    ASSERT(s);
    snprintf(s, 128, "%s-%d-%ld-%d", prefix, (int)getpid(), (long)time(NULL), n++);
    return s; /* lives until exit: tests name a handful of topics */
}

static rd_kafka_conf_t *base_conf(void) {
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", th_bootstrap(), err, sizeof(err)) != RD_KAFKA_CONF_OK)
        TH_FAIL("conf: %s", err);
    return c;
}

static void conf_set(rd_kafka_conf_t *c, const char *k, const char *v) {
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) TH_FAIL("conf %s=%s: %s", k, v, err);
}

static void admin_wait(rd_kafka_t *rk, rd_kafka_queue_t *q, rd_kafka_event_type_t type) {
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (!ev) TH_FAIL("admin request timed out");
    if (rd_kafka_event_type(ev) != type) TH_FAIL("admin: unexpected event %s", rd_kafka_event_name(ev));
    if (rd_kafka_event_error(ev)) TH_FAIL("admin: %s", rd_kafka_event_error_string(ev));
    const rd_kafka_topic_result_t **res = NULL;
    size_t n = 0;
    if (type == RD_KAFKA_EVENT_CREATETOPICS_RESULT)
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    else
        res = rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
    for (size_t i = 0; i < n; i++)
        if (rd_kafka_topic_result_error(res[i]) && rd_kafka_topic_result_error(res[i]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            TH_FAIL("admin on %s: %s", rd_kafka_topic_result_name(res[i]), rd_kafka_topic_result_error_string(res[i]));
    rd_kafka_event_destroy(ev);
    (void)rk;
}

static void wait_partitions(rd_kafka_t *rk, const char *topic, int partitions) {
    for (int tries = 0; tries < 300; tries++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
        int ok = 0;
        if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt == partitions) {
                ok = 1;
                for (int i = 0; i < partitions; i++)
                    if (md->topics[0].partitions[i].leader < 0) ok = 0;
            }
            rd_kafka_metadata_destroy(md);
        }
        rd_kafka_topic_destroy(t);
        if (ok) return;
        usleep(100000);
    }
    TH_FAIL("topic %s did not get %d partitions with leaders", topic, partitions);
}

void th_create_topic(const char *topic, int partitions) {
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, base_conf(), err, sizeof(err));
    if (!rk) TH_FAIL("rd_kafka_new: %s", err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, err, sizeof(err));
    if (!nt) TH_FAIL("NewTopic: %s", err);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    admin_wait(rk, q, RD_KAFKA_EVENT_CREATETOPICS_RESULT);
    rd_kafka_NewTopic_destroy(nt);
    wait_partitions(rk, topic, partitions);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

void th_add_partitions(const char *topic, int total) {
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, base_conf(), err, sizeof(err));
    if (!rk) TH_FAIL("rd_kafka_new: %s", err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(topic, (size_t)total, err, sizeof(err));
    if (!np) TH_FAIL("NewPartitions: %s", err);
    rd_kafka_CreatePartitions(rk, &np, 1, NULL, q);
    admin_wait(rk, q, RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT);
    rd_kafka_NewPartitions_destroy(np);
    wait_partitions(rk, topic, total);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

rd_kafka_t *th_producer(void) {
    char err[512];
    rd_kafka_conf_t *c = base_conf();
    conf_set(c, "enable.idempotence", "true");
    conf_set(c, "linger.ms", "5");
    conf_set(c, "queue.buffering.max.messages", "1000000");
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (!p) TH_FAIL("producer: %s", err);
    return p;
}

void th_produce(rd_kafka_t *p, const char *topic, int32_t partition, const void *key, size_t klen,
                const void *val, size_t vlen) {
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
            RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) TH_FAIL("produce to %s: %s", topic, rd_kafka_err2str(e));
        rd_kafka_poll(p, 10);
    }
}

void th_flush_destroy(rd_kafka_t *p) {
    rd_kafka_resp_err_t e = rd_kafka_flush(p, 60000);
    if (e) TH_FAIL("flush: %s", rd_kafka_err2str(e));
    rd_kafka_destroy(p);
}

long th_consume_all(const char *topic, int read_committed, th_record_cb cb, void *opaque) {
    char err[512];
    rd_kafka_conf_t *c = base_conf();
    conf_set(c, "group.id", th_unique("th-reader"));
    conf_set(c, "enable.auto.commit", "false");
    conf_set(c, "enable.partition.eof", "true");
    conf_set(c, "isolation.level", read_committed ? "read_committed" : "read_uncommitted");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    if (!rk) TH_FAIL("consumer: %s", err);
    rd_kafka_poll_set_consumer(rk);

    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, t, &md, 10000)) TH_FAIL("metadata for %s", topic);
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);

    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int i = 0; i < parts; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, l)) TH_FAIL("assign");
    rd_kafka_topic_partition_list_destroy(l);

    long n = 0;
    int eofs = 0;
    char *at_eof = calloc((size_t)parts, 1);
    ASSERT(at_eof);
    double deadline = th_now() + 120;
    while (eofs < parts) {
        if (th_now() > deadline) TH_FAIL("reading %s did not reach the end within 120 s", topic);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!at_eof[m->partition]) { at_eof[m->partition] = 1; eofs++; }
        }
        else if (m->err) TH_FAIL("consume %s: %s", topic, rd_kafka_message_errstr(m));
        else { n++; if (cb) cb(m, opaque); }
        rd_kafka_message_destroy(m);
    }
    free(at_eof);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

int th_system(const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1) return -1;
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}
