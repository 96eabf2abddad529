/* SPDX-License-Identifier: MIT */
/* kclient: the reader set-up shared by the bench tools and the test harness (see kclient.h). */
#include "kclient.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int tally_kclient_conf_set(rd_kafka_conf_t *c, const char *key, const char *value, char *errstr,
                           size_t errstr_size) {
    char why[512];
    if (rd_kafka_conf_set(c, key, value, why, sizeof(why)) == RD_KAFKA_CONF_OK) return 0;
    snprintf(errstr, errstr_size, "%s=%s: %s", key, value, why);
    return TALLY_KCLIENT_ESETTING;
}

int tally_kclient_consumer_new(rd_kafka_t **rk, const tally_kclient_opts_t *o, char *errstr, size_t errstr_size) {
    char gid[128], wait[16];
    if (!o->group) snprintf(gid, sizeof(gid), "%s-%d", o->name ? o->name : "kclient", (int)getpid());
    snprintf(wait, sizeof(wait), "%d", o->fetch_wait_max_ms);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (tally_kclient_conf_set(c, "bootstrap.servers", o->bootstrap, errstr, errstr_size) ||
        tally_kclient_conf_set(c, "group.id", o->group ? o->group : gid, errstr, errstr_size) ||
        tally_kclient_conf_set(c, "enable.auto.commit", "false", errstr, errstr_size) ||
        tally_kclient_conf_set(c, "isolation.level", o->read_uncommitted ? "read_uncommitted" : "read_committed",
                               errstr, errstr_size) ||
        (o->partition_eof && tally_kclient_conf_set(c, "enable.partition.eof", "true", errstr, errstr_size)) ||
        (o->fetch_wait_max_ms > 0 && tally_kclient_conf_set(c, "fetch.wait.max.ms", wait, errstr, errstr_size)))
        goto bad_setting;
    for (int i = 0; i < o->nkafka; i++) {
        char key[256];
        const char *eq = strchr(o->kafka[i], '=');
        if (!eq) {
            snprintf(errstr, errstr_size, "%s: not KEY=VALUE", o->kafka[i]);
            goto bad_setting;
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - o->kafka[i]), o->kafka[i]);
        if (tally_kclient_conf_set(c, key, eq + 1, errstr, errstr_size)) goto bad_setting;
    }
    /* rd_kafka_new() takes the configuration only when it succeeds. */
    *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, errstr_size);
    if (*rk) return 0;
    rd_kafka_conf_destroy(c);
    return TALLY_KCLIENT_ECLIENT;

bad_setting:
    rd_kafka_conf_destroy(c);
    *rk = NULL;
    return TALLY_KCLIENT_ESETTING;
}

int tally_kclient_partitions(rd_kafka_t *rk, const char *topic, char *errstr, size_t errstr_size) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
    rd_kafka_topic_destroy(t);
    if (!e && (md->topic_cnt != 1 || md->topics[0].err))
        e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    int n = e ? -1 : md->topics[0].partition_cnt;
    if (md) rd_kafka_metadata_destroy(md);
    if (e) snprintf(errstr, errstr_size, "topic %s: %s", topic, rd_kafka_err2str(e));
    return n;
}

rd_kafka_resp_err_t tally_kclient_assign_all(rd_kafka_t *rk, const char *topic, int n) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) rd_kafka_topic_partition_list_add(l, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return e;
}

rd_kafka_resp_err_t tally_kclient_watermarks(rd_kafka_t *rk, const char *topic, int n, int64_t *lo, int64_t *hi,
                                             int timeout_ms) {
    for (int i = 0; i < n; i++) {
        int64_t l;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, i, &l, &hi[i], timeout_ms);
        if (e) return e;
        if (lo) lo[i] = l;
    }
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

bool tally_kclient_group_reached(rd_kafka_t *rk, const char *topic, int n, const int64_t *ends, bool empty_reached) {
    if (n <= 0) return false;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) rd_kafka_topic_partition_list_add(l, topic, i);
    bool done = rd_kafka_committed(rk, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; done && i < n; i++) {
        int64_t lo, hi = 0;
        if (ends) hi = ends[i];
        else if (rd_kafka_query_watermark_offsets(rk, topic, i, &lo, &hi, 10000)) done = false;
        done = done && ((empty_reached && hi == 0) || l->elems[i].offset >= hi);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return done;
}
