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

int tally_sourcelog_ensure(rd_kafka_t *rk, const tally_config_t *conf, char *errstr, size_t n) {
    char topic[300], policy[64];
    tally_sourcelog_topic(conf, topic, sizeof(topic));
    static const char *const compact[][2] = {{"cleanup.policy", "compact"}};
    bool existed = false;
    int r = tally_kafka_create_topic(rk, topic, 1, -1, compact, 1, &existed, errstr, n);
    if (r || !existed) {
        if (!r) tally_info("created topic %s (compacted): the log of the input files read", topic);
        return r;
    }
    /* An existing topic must be compacted: under delete retention the last record, which recovery
     * needs, would go after retention.ms. */
    if ((r = tally_kafka_topic_config(rk, topic, "cleanup.policy", policy, sizeof(policy), errstr, n))) return r;
    if (strstr(policy, "compact")) return 0;
    snprintf(errstr, n, "topic %s (tally's log of the input files) has cleanup.policy=%s, not compact: recovery "
             "needs its last record kept. Set cleanup.policy=compact on it, or delete it while no tally runs",
             topic, policy);
    return TALLY_ECONFIG;
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
    /* Only assigned, never subscribed: the group is not joined, but the consumer API wants one. */
    char group[320];
    snprintf(group, sizeof(group), "%s-reader", topic);
    rd_kafka_t *rk = tally_kafka_reader_new(conf, group, errstr, n);
    if (!rk) return TALLY_EKAFKA;
    int r = 0;
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
