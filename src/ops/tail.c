/* SPDX-License-Identifier: MIT */
/* The output topic's tail for the live page (see the header). */
#include "tally/tail.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tally/buf.h"
#include "tally/err.h"
#include "tally/kafka.h"
#include "tally/log.h"

typedef struct {
    int32_t partition;
    int64_t offset, timestamp;
    char *key, *value;
    size_t klen, vlen;
} rec_t;

struct tally_tail_s {
    const tally_config_t *conf;
    char *topic;
    int n;
    rd_kafka_t *rk;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;               /* under mu */
    tally_blob_t *blob;      /* under mu */
};

static void rec_free(rec_t *r) {
    free(r->key);
    free(r->value);
}

static int newest_first(const void *a, const void *b) {
    const rec_t *x = a, *y = b;
    if (x->timestamp != y->timestamp) return x->timestamp < y->timestamp ? 1 : -1;
    if (x->partition != y->partition) return x->partition < y->partition ? 1 : -1;
    return x->offset < y->offset ? 1 : x->offset > y->offset ? -1 : 0;
}

static char *dup_bytes(const void *p, size_t n) {
    char *s = malloc(n + 1);
    if (s && n) memcpy(s, p, n);
    if (s) s[n] = '\0';
    return s;
}

/* Reads the last n records of every partition (at most n per partition, then the newest n overall). */
static tally_blob_t *read_tail(tally_tail_t *t) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(t->rk, t->topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(t->rk, 0, rkt, &md, 2000);
    rd_kafka_topic_destroy(rkt);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        if (!e) rd_kafka_metadata_destroy(md);
        return NULL;
    }
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    int open = 0;
    for (int p = 0; p < parts; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(t->rk, t->topic, p, &lo, &hi, 2000) || hi <= lo) continue;
        rd_kafka_topic_partition_list_add(l, t->topic, p)->offset = hi - t->n > lo ? hi - t->n : lo;
        open++;
    }
    rec_t *recs = calloc((size_t)t->n * (size_t)(parts ? parts : 1), sizeof(*recs));
    size_t nrec = 0, cap = (size_t)t->n * (size_t)(parts ? parts : 1);
    if (recs && open) {
        rd_kafka_assign(t->rk, l);
        /* Until every partition reported its end (the last stable offset), or 2 s. */
        for (int waited = 0; open > 0 && waited < 20;) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(t->rk, 100);
            if (!m) {
                waited++;
                continue;
            }
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) open--;
            else if (!m->err && nrec < cap) {
                rec_t *r = &recs[nrec++];
                rd_kafka_timestamp_type_t tt;
                *r = (rec_t){.partition = m->partition, .offset = m->offset, .timestamp = rd_kafka_message_timestamp(m, &tt),
                             .key = dup_bytes(m->key, m->key ? m->key_len : 0), .klen = m->key ? m->key_len : 0,
                             .value = dup_bytes(m->payload, m->payload ? m->len : 0), .vlen = m->payload ? m->len : 0};
            }
            rd_kafka_message_destroy(m);
        }
        rd_kafka_assign(t->rk, NULL);
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (!recs) return NULL;
    qsort(recs, nrec, sizeof(*recs), newest_first);
    tally_buf_t b;
    tally_buf_init(&b);
    tally_buf_puts(&b, "[");
    for (size_t i = 0; i < nrec && i < (size_t)t->n; i++) {
        rec_t *r = &recs[i];
        tally_buf_printf(&b, "%s{\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld,\"key\":", i ? "," : "",
                         (int)r->partition, (long long)r->offset, (long long)r->timestamp);
        tally_buf_json_str(&b, r->key ? r->key : "", r->klen);
        tally_buf_puts(&b, ",\"value\":");
        tally_buf_json_str(&b, r->value ? r->value : "", r->vlen);
        tally_buf_puts(&b, "}");
    }
    tally_buf_puts(&b, "]");
    for (size_t i = 0; i < nrec; i++) rec_free(&recs[i]);
    free(recs);
    tally_blob_t *bl = tally_buf_ok(&b) ? tally_blob_new(&b, NULL, 0) : NULL;
    tally_buf_term(&b);
    return bl;
}

static void *tail_main(void *arg) {
    tally_tail_t *t = arg;
    tally_log_set_thread("tail");
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        pthread_mutex_unlock(&t->mu);
        tally_blob_t *bl = read_tail(t);
        pthread_mutex_lock(&t->mu);
        if (bl) {
            tally_blob_unref(t->blob);
            t->blob = bl;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        if (!t->stop) pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int tally_tail_new(tally_tail_t **out, const tally_config_t *conf, const char *topic, int n) {
    tally_tail_t *t = calloc(1, sizeof(*t));
    *out = t;
    if (!t) return TALLY_ENOMEM;
    t->conf = conf;
    t->n = n;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->topic = strdup(topic);
    char errstr[512], group[300];
    /* assign() needs a group id in librdkafka 2.0; it never joins the group nor commits. */
    snprintf(group, sizeof(group), "%s-live-page", conf->application_id);
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (!t->topic || tally_kafka_conf_common(conf, c, errstr, sizeof(errstr)) ||
        tally_kafka_conf_set(c, "group.id", group, errstr, sizeof(errstr)) ||
        tally_kafka_conf_set(c, "isolation.level", "read_committed", errstr, sizeof(errstr)) ||
        tally_kafka_conf_set(c, "enable.partition.eof", "true", errstr, sizeof(errstr)) ||
        tally_kafka_conf_set(c, "enable.auto.commit", "false", errstr, sizeof(errstr))) {
        rd_kafka_conf_destroy(c);
        tally_err("output reader for the live page: %s", errstr);
        return TALLY_ECONFIG;
    }
    t->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof(errstr));
    if (!t->rk) {
        tally_err("output reader for the live page: %s", errstr);
        return TALLY_EKAFKA;
    }
    if (pthread_create(&t->thread, NULL, tail_main, t)) return TALLY_ENOMEM;
    t->started = true;
    return 0;
}

tally_blob_t *tally_tail_get(tally_tail_t *t) {
    pthread_mutex_lock(&t->mu);
    tally_blob_t *bl = t->blob ? tally_blob_ref(t->blob) : NULL;
    pthread_mutex_unlock(&t->mu);
    return bl;
}

void tally_tail_destroy(tally_tail_t *t) {
    if (!t) return;
    if (t->started) {
        pthread_mutex_lock(&t->mu);
        t->stop = true;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
    }
    if (t->rk) {
        rd_kafka_consumer_close(t->rk);
        rd_kafka_destroy(t->rk);
    }
    tally_blob_unref(t->blob);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t->topic);
    free(t);
}
