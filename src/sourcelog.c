/* SPDX-License-Identifier: MIT */
/* The input file log in Kafka (see sourcelog.h). */
#include "tally/sourcelog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tally/buf.h"
#include "tally/err.h"
#include "tally/filesink.h"
#include "tally/kafka.h"
#include "tally/log.h"

#define MAGIC "tally-files v1"

void tally_sourcelog_topic(const tally_config_t *conf, char *buf, size_t size) {
    snprintf(buf, size, "%s-files", conf->application_id);
}

static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t type) {
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    if (ev && rd_kafka_event_type(ev) != type) {
        rd_kafka_event_destroy(ev);
        ev = NULL;
    }
    return ev;
}

/* An existing topic must be compacted: under delete retention the last record, which recovery needs,
 * would go after retention.ms. */
static int check_compacted(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *topic, char *errstr, size_t n) {
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
    rd_kafka_ConfigResource_destroy(res);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT);
    if (!ev || rd_kafka_event_error(ev)) {
        snprintf(errstr, n, "cannot read the configuration of topic %s: %s", topic,
                 ev ? rd_kafka_event_error_string(ev) : "timed out");
        if (ev) rd_kafka_event_destroy(ev);
        return TALLY_EKAFKA;
    }
    size_t cnt = 0, ncfg = 0;
    const rd_kafka_ConfigResource_t **rs = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &cnt);
    const char *policy = NULL;
    const rd_kafka_ConfigEntry_t **cfg = cnt ? rd_kafka_ConfigResource_configs(rs[0], &ncfg) : NULL;
    for (size_t i = 0; i < ncfg; i++)
        if (strcmp(rd_kafka_ConfigEntry_name(cfg[i]), "cleanup.policy") == 0) policy = rd_kafka_ConfigEntry_value(cfg[i]);
    int r = 0;
    if (!policy || !strstr(policy, "compact")) {
        snprintf(errstr, n, "topic %s (tally's log of the input files) has cleanup.policy=%s, not compact: recovery "
                 "needs its last record kept. Set cleanup.policy=compact on it, or delete it while no tally runs",
                 topic, policy ? policy : "?");
        r = TALLY_ECONFIG;
    }
    rd_kafka_event_destroy(ev);
    return r;
}

int tally_sourcelog_ensure(rd_kafka_t *rk, const tally_config_t *conf, char *errstr, size_t n) {
    char topic[300];
    tally_sourcelog_topic(conf, topic, sizeof(topic));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, 1, -1, errstr, n);
    if (!nt) {
        rd_kafka_queue_destroy(q);
        return TALLY_EKAFKA;
    }
    rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact");
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT);
    int r = 0;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
    const char *why = "timed out";
    if (ev) {
        size_t cnt = 0;
        const rd_kafka_topic_result_t **res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        e = rd_kafka_event_error(ev) ? rd_kafka_event_error(ev) : cnt ? rd_kafka_topic_result_error(res[0]) : 0;
        why = rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev) : cnt ? rd_kafka_topic_result_error_string(res[0]) : "";
        if (!e) tally_info("created topic %s (compacted): the log of the input files read", topic);
    }
    if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) r = check_compacted(rk, q, topic, errstr, n);
    else if (e) {
        snprintf(errstr, n, "cannot create topic %s (tally's log of the input files): %s", topic, why ? why : rd_kafka_err2str(e));
        r = TALLY_EKAFKA;
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    return r;
}

char *tally_sourcelog_encode(uint64_t epoch, const rd_kafka_topic_partition_list_t *files, size_t *len) {
    tally_buf_t b;
    tally_buf_init(&b);
    tally_buf_printf(&b, MAGIC "\nepoch %" PRIu64 "\n", epoch);
    for (int i = 0; i < files->cnt; i++) tally_buf_printf(&b, "file %" PRId64 " %s\n", files->elems[i].offset, files->elems[i].topic);
    if (!tally_buf_ok(&b)) {
        tally_buf_term(&b);
        return NULL;
    }
    *len = b.len;
    return b.data;
}

static int decode(const char *v, size_t len, uint64_t *epoch, rd_kafka_topic_partition_list_t *files) {
    char *text = strndup(v, len);
    if (!text) return TALLY_ENOMEM;
    int r = strncmp(text, MAGIC "\n", sizeof(MAGIC)) == 0 ? 0 : TALLY_EIO;
    for (char *line = text, *next; !r && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        unsigned long long ep;
        long long size;
        int at = 0;
        if (sscanf(line, "epoch %llu", &ep) == 1) *epoch = ep;
        else if (sscanf(line, "file %lld %n", &size, &at) == 1 && at > 0)
            rd_kafka_topic_partition_list_add(files, line + at, TALLY_FILESINK_FILE)->offset = size;
    }
    free(text);
    return r;
}

int tally_sourcelog_read_last(const tally_config_t *conf, uint64_t *epoch, rd_kafka_topic_partition_list_t **files,
                              char *errstr, size_t n) {
    char topic[300];
    tally_sourcelog_topic(conf, topic, sizeof(topic));
    *epoch = 0;
    *files = rd_kafka_topic_partition_list_new(8);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    int r = tally_kafka_conf_common(conf, c, errstr, n);
    if (!r) r = tally_kafka_conf_set(c, "isolation.level", "read_committed", errstr, n);
    if (!r) r = tally_kafka_conf_set(c, "enable.partition.eof", "true", errstr, n);
    if (!r) r = tally_kafka_conf_set(c, "enable.auto.commit", "false", errstr, n);
    /* Only assigned, never subscribed: the group is not joined, but the consumer API wants one. */
    char group[320];
    snprintf(group, sizeof(group), "%s-reader", topic);
    if (!r) r = tally_kafka_conf_set(c, "group.id", group, errstr, n);
    if (r) {
        rd_kafka_conf_destroy(c);
        return r;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, n);
    if (!rk) {
        rd_kafka_conf_destroy(c);
        return TALLY_EKAFKA;
    }
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, 30000);
    if (e) {
        snprintf(errstr, n, "cannot read the offsets of %s: %s", topic, rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return TALLY_EKAFKA;
    }
    /* Each transaction adds a record and a marker; aborted ones are skipped by read_committed: go back
     * further until a committed record shows up. */
    for (int64_t back = 64; !r && hi > lo && !*epoch; back *= 16) {
        int64_t from = hi - back > lo ? hi - back : lo;
        rd_kafka_topic_partition_list_t *a = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(a, topic, 0)->offset = from;
        rd_kafka_assign(rk, a);
        rd_kafka_topic_partition_list_destroy(a);
        char *last = NULL;
        size_t last_len = 0;
        for (int idle = 0; idle < 300;) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
            if (!m) {
                idle++;
                continue;
            }
            bool eof = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
            if (m->err && !eof) {
                snprintf(errstr, n, "cannot read %s: %s", topic, rd_kafka_message_errstr(m));
                r = TALLY_EKAFKA;
            } else if (!eof && m->len) {
                free(last);
                last = malloc(m->len);
                if (last) memcpy(last, m->payload, m->len);
                last_len = m->len;
            }
            rd_kafka_message_destroy(m);
            if (eof || r) break;
        }
        if (!r && last && decode(last, last_len, epoch, *files)) {
            snprintf(errstr, n, "%s holds a record that is not tally's file log", topic);
            r = TALLY_EIO;
        }
        free(last);
        if (from == lo) break;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return r;
}
