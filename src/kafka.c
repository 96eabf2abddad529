/* SPDX-License-Identifier: MIT */
/* librdkafka clients from the configuration, and their callbacks (see the header). */
#include "tally/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tally/budget.h"
#include "tally/clock.h"
#include "tally/engine.h"
#include "tally/err.h"
#include "tally/log.h"
#include "tally/txn.h"

int tally_kafka_conf_set(rd_kafka_conf_t *c, const char *k, const char *v, char *errstr, size_t n) {
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, n, "librdkafka rejected %s=%s: %s", k, v, err);
        return TALLY_ECONFIG;
    }
    return 0;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    /* librdkafka's own threads log under one tag; ours keep theirs. */
    if (strcmp(tally_log_thread(), "main") == 0) tally_log_set_thread("rdk");
    tally_log_level_t l = level <= 3 ? TALLY_LOG_ERROR : level <= 4 ? TALLY_LOG_WARN
                        : level <= 6 ? TALLY_LOG_INFO : TALLY_LOG_DEBUG;
    tally_log(l, "librdkafka %s: %s", fac, buf);
}

static void consumer_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    log_cb(rk, level, fac, buf);
    if (strcmp(fac, "SESSTMOUT") == 0) {
        tally_kafka_hooks_t *h = rd_kafka_opaque(rk);
        atomic_store(&h->session_expired, true);
    }
}

int tally_kafka_conf_common(const tally_config_t *conf, rd_kafka_conf_t *c, char *errstr, size_t n) {
    int r = tally_kafka_conf_set(c, "bootstrap.servers", conf->bootstrap_servers, errstr, n);
    for (int i = 0; !r && i < conf->kafka_cnt; i++) {
        char err[512];
        if (rd_kafka_conf_set(c, conf->kafka[i].key, conf->kafka[i].value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
            snprintf(errstr, n, "kafka.%s: %s", conf->kafka[i].key, err);
            r = TALLY_ECONFIG;
        }
    }
    rd_kafka_conf_set_log_cb(c, log_cb);
    return r;
}

static const char *user_setting(const tally_config_t *conf, const char *key) {
    for (int i = 0; i < conf->kafka_cnt; i++)
        if (strcmp(conf->kafka[i].key, key) == 0) return conf->kafka[i].value;
    return NULL;
}

int tally_kafka_max_poll_ms(const tally_config_t *conf) {
    const char *v = user_setting(conf, "max.poll.interval.ms");
    long ms = v ? strtol(v, NULL, 10) : 0;
    return ms > 0 ? (int)ms : 300000;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    tally_kafka_hooks_t *h = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        bool fenced = tally_txn_code_is_fenced(orig);
        if (!fenced && rd_kafka_type(rk) == RD_KAFKA_PRODUCER) {
            /* The next transactional call reports it, and the transaction manager decides. */
            tally_warn("producer failed: %s", buf);
            return;
        }
        if (fenced && rd_kafka_type(rk) == RD_KAFKA_CONSUMER && atomic_load(&h->session_expired))
            tally_fault_raise(h->fault, TALLY_EXIT_ERROR, TALLY_KAFKA_SELF_FENCED ": %s", buf);
        else if (fenced)
            tally_fault_raise(h->fault, TALLY_EXIT_FENCED,
                              "fenced: another tally instance with application.id=%s%s%s took over (%s)",
                              h->conf->application_id, h->conf->instance_id ? " and instance.id=" : "",
                              h->conf->instance_id ? h->conf->instance_id : "", buf);
        else
            tally_fault_raise(h->fault, TALLY_EXIT_ERROR, "fatal Kafka error: %s", buf);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) tally_warn("all brokers down: %s", reason);
    else if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL)
        tally_fault_raise(h->fault, TALLY_EXIT_ERROR, "cannot connect to Kafka: %s", reason);
    /* The broker's fatal TLS alert (OpenSSL appends "SSL alert number N"): with TLS 1.3 a client
     * certificate the broker does not trust is refused after the handshake, as a receive failure.
     * A broker restart closes without such an alert, so only a refusal stops us. */
    else if (err == RD_KAFKA_RESP_ERR__TRANSPORT && reason && strstr(reason, "SSL alert number"))
        tally_fault_raise(h->fault, TALLY_EXIT_ERROR, "cannot connect to Kafka: the broker refused the TLS session "
                          "(is ssl.certificate.location signed by a CA the broker trusts?): %s", reason);
    else tally_warn("Kafka: %s: %s", rd_kafka_err2name(err), reason);
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    tally_kafka_hooks_t *h = opaque;
    h->stats(h->stats_opaque, rk, json, len);
    return 0; /* librdkafka frees json */
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque) {
    tally_kafka_hooks_t *h = opaque;
    h->rebalance(h->rebalance_opaque, rk, err, parts);
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    tally_kafka_hooks_t *h = opaque;
    h->delivery(h->delivery_opaque, m);
}

/* kafka.* and the hooks, then the client. Takes c. */
static rd_kafka_t *client_new(tally_kafka_hooks_t *h, rd_kafka_type_t type, rd_kafka_conf_t *c, int r, char *errstr,
                              size_t n) {
    if (!r) r = tally_kafka_conf_common(h->conf, c, errstr, n);
    if (!r && h->stats && !user_setting(h->conf, "statistics.interval.ms"))
        r = tally_kafka_conf_set(c, "statistics.interval.ms", "5000", errstr, n);
    if (r) {
        rd_kafka_conf_destroy(c);
        tally_err("%s", errstr);
        return NULL;
    }
    if (type == RD_KAFKA_CONSUMER) rd_kafka_conf_set_log_cb(c, consumer_log_cb);
    if (h->stats) rd_kafka_conf_set_stats_cb(c, stats_cb);
    if (h->rebalance) rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
    if (h->delivery) rd_kafka_conf_set_dr_msg_cb(c, dr_msg_cb);
    rd_kafka_conf_set_error_cb(c, error_cb);
    rd_kafka_conf_set_opaque(c, h);
    rd_kafka_t *rk = rd_kafka_new(type, c, errstr, n);
    if (!rk) tally_err("cannot create the %s: %s", type == RD_KAFKA_CONSUMER ? "consumer" : "producer", errstr);
    return rk;
}

rd_kafka_t *tally_kafka_consumer_new(tally_kafka_hooks_t *h, const char *instance_id) {
    char errstr[512], refresh[32];
    snprintf(refresh, sizeof(refresh), "%d", h->conf->metadata_refresh_ms);
    bool distributed = h->conf->topology == TALLY_TOPOLOGY_DISTRIBUTED;
    const char *const kv[][2] = {
        {"group.id", h->conf->application_id},
        /* Static membership: one instance per application.id, so a restarted (or taking-over)
         * instance replaces the old member at once instead of waiting out its session. Not when
         * instances share the work: a static member that stops does not leave the group, so its
         * partitions would wait out its session before the others take them. */
        {"group.instance.id", distributed ? NULL : instance_id},
        /* Kafka's default since 3.0. With 10 s, a broker that stalled for 13 s on a loaded 2-core
         * machine expired the session, and librdkafka's rejoin under the same group.instance.id then
         * fenced its own member for good (librdkafka issue #3437). A static member's restart takes
         * its partitions back at once whatever this is; it bounds only how long a dead member holds
         * them. */
        {"session.timeout.ms", "45000"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"isolation.level", "read_committed"},
        /* Start positions are ours (state, group offsets, starting.offsets); never a silent reset. */
        {"auto.offset.reset", "error"},
        /* distributed: range balances each topic on its own (cooperative-sticky balances the sum
         * of both topics' partitions, and gave one of two instances all 6 input partitions and
         * the other only repartition partitions: all of stage 1 on one machine). Range is eager:
         * every rebalance moves all partitions, each kept repartition partition's state then being
         * checked against its changelog again (held about 1.5 s). */
        {"partition.assignment.strategy", distributed ? "range" : "cooperative-sticky"},
        {"topic.metadata.refresh.interval.ms", refresh},
    };
    /* A partition whose local queue is full is not fetched again until fetch.queue.backoff.ms has
     * passed; librdkafka 2.0 (before the setting existed, 2.1) waited about a second, so there the
     * queues must be large enough never to fill (up to 64 MB of prefetched input per partition:
     * 270k -> 970k lines/s on one partition). From 2.1 a short backoff lets them stay small.
     * From 2.1 the per-partition queue is the consumer's share of memory.max.bytes (budget.h). */
    tally_budget_t b;
    tally_budget_split(h->conf, &b);
    char qkb[32];
    snprintf(qkb, sizeof(qkb), "%" PRId64, tally_budget_consumer_queue_kb(&b));
    const char *const queues_old[][2] = {{"queued.min.messages", "1000000"}, {"queued.max.messages.kbytes", "65536"}};
    const char *const queues_new[][2] = {{"fetch.queue.backoff.ms", "10"}, {"queued.max.messages.kbytes", qkb}};
    const char *const (*queues)[2] = rd_kafka_version() >= 0x020100ff ? queues_new : queues_old;
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    int r = 0;
    for (size_t i = 0; !r && i < sizeof(kv) / sizeof(kv[0]); i++)
        if (kv[i][1]) r = tally_kafka_conf_set(c, kv[i][0], kv[i][1], errstr, sizeof(errstr));
    for (size_t i = 0; !r && i < 2; i++) r = tally_kafka_conf_set(c, queues[i][0], queues[i][1], errstr, sizeof(errstr));
    return client_new(h, RD_KAFKA_CONSUMER, c, r, errstr, sizeof(errstr));
}

rd_kafka_t *tally_kafka_producer_new(tally_kafka_hooks_t *h, const char *txn_id) {
    char errstr[512], timeout[32], kb[32], msgs[32];
    snprintf(timeout, sizeof(timeout), "%d", h->conf->transaction_timeout_ms);
    tally_budget_t b;
    tally_budget_split(h->conf, &b);
    snprintf(kb, sizeof(kb), "%" PRId64, tally_budget_producer_kb(&b));
    snprintf(msgs, sizeof(msgs), "%" PRId64, tally_budget_producer_messages(&b));
    const char *const kv[][2] = {
        /* Java's default partitioner, so Java consumers and Kafka Streams agree on where a word lives. */
        {"partitioner", "murmur2_random"},
        {"enable.idempotence", "true"},
        {"linger.ms", "5"},
        /* The producer's share of memory.max.bytes: a full queue blocks the workers' produce calls
         * (backpressure) until the epoch's records are sent. */
        {"queue.buffering.max.messages", msgs},
        {"queue.buffering.max.kbytes", kb},
        {"transactional.id", txn_id},
        {"transaction.timeout.ms", timeout},
    };
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    int r = 0;
    for (size_t i = 0; !r && i < sizeof(kv) / sizeof(kv[0]) - (txn_id ? 0 : 2); i++)
        r = tally_kafka_conf_set(c, kv[i][0], kv[i][1], errstr, sizeof(errstr));
    return client_new(h, RD_KAFKA_PRODUCER, c, r, errstr, sizeof(errstr));
}

int tally_kafka_wait_topic(rd_kafka_t *rk, tally_kafka_hooks_t *h, const char *topic, const char *key) {
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    /* Short waits, serving the error callback between them: a refused login or TLS handshake raises
     * there and ends the start-up now, not after 30 s of retries. */
    rd_kafka_resp_err_t e;
    double deadline = tally_mono_s() + 30;
    do {
        e = rd_kafka_metadata(rk, 0, t, &md, 1000);
        if (e) rd_kafka_poll(rk, 100);
    } while (e && !tally_fault_get(h->fault, NULL, 0) && tally_mono_s() < deadline);
    rd_kafka_topic_destroy(t);
    if (e) {
        char why[512];
        tally_fault_get(h->fault, why, sizeof(why));
        tally_err("cannot read metadata of %s=%s from %s: %s", key, topic, h->conf->bootstrap_servers,
                  *why ? why : rd_kafka_err2str(e));
        return TALLY_EKAFKA;
    }
    e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    rd_kafka_metadata_destroy(md);
    if (e) {
        tally_err("%s=%s: %s on %s (create it first)", key, topic, rd_kafka_err2str(e), h->conf->bootstrap_servers);
        return TALLY_EKAFKA;
    }
    return 0;
}

void tally_kafka_log_partitions(const char *what, const rd_kafka_topic_partition_list_t *l) {
    char buf[1024];
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < l->cnt && n < sizeof(buf) - 64; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s[%d]", i ? " " : "", l->elems[i].topic,
                              (int)l->elems[i].partition);
    tally_info("%s %d partition(s): %s", what, l->cnt, buf);
}

int tally_kafka_unassigned(rd_kafka_t *consumer, char *const *topics, int ntopics) {
    rd_kafka_topic_partition_list_t *mine = NULL;
    if (rd_kafka_assignment(consumer, &mine)) return 0;
    int missing = 0;
    for (int i = 0; i < ntopics; i++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *t = rd_kafka_topic_new(consumer, topics[i], NULL);
        rd_kafka_resp_err_t e = rd_kafka_metadata(consumer, 0, t, &md, 5000);
        rd_kafka_topic_destroy(t);
        if (e) continue;
        if (md->topic_cnt == 1 && !md->topics[0].err)
            for (int p = 0; p < md->topics[0].partition_cnt; p++)
                if (!rd_kafka_topic_partition_list_find(mine, topics[i], md->topics[0].partitions[p].id)) missing++;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_partition_list_destroy(mine);
    return missing;
}

int tally_kafka_subscribe(rd_kafka_t *consumer, char *const *topics, int ntopics) {
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(ntopics);
    for (int i = 0; i < ntopics; i++) rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(consumer, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e) {
        tally_err("subscribe failed: %s", rd_kafka_err2str(e));
        return TALLY_EKAFKA;
    }
    return 0;
}

rd_kafka_t *tally_kafka_reader_new(const tally_config_t *conf, const char *group, char *errstr, size_t n) {
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    int r = tally_kafka_conf_common(conf, c, errstr, n);
    const char *const kv[][2] = {
        {"isolation.level", "read_committed"}, {"enable.partition.eof", "true"}, {"auto.offset.reset", "error"},
        {"enable.auto.commit", "false"},       {"group.id", group},
    };
    for (size_t i = 0; !r && i < sizeof(kv) / sizeof(kv[0]); i++) r = tally_kafka_conf_set(c, kv[i][0], kv[i][1], errstr, n);
    if (r) {
        rd_kafka_conf_destroy(c);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, n);
    if (!rk) rd_kafka_conf_destroy(c);
    return rk;
}

static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t type) {
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
    if (ev && rd_kafka_event_type(ev) != type) {
        rd_kafka_event_destroy(ev);
        ev = NULL;
    }
    return ev;
}

int tally_kafka_create_topic(rd_kafka_t *rk, const char *topic, int partitions, int replication,
                             const char *const (*configs)[2], int nconfigs, bool *existed, char *errstr, size_t n) {
    *existed = false;
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, replication, errstr, n);
    if (!nt) return TALLY_EKAFKA;
    for (int i = 0; i < nconfigs; i++) rd_kafka_NewTopic_set_config(nt, configs[i][0], configs[i][1]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT);
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
    const char *why = "timed out";
    if (ev) {
        size_t cnt = 0;
        const rd_kafka_topic_result_t **res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
        e = rd_kafka_event_error(ev) ? rd_kafka_event_error(ev) : cnt ? rd_kafka_topic_result_error(res[0]) : 0;
        why = rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev) : cnt ? rd_kafka_topic_result_error_string(res[0]) : "";
    }
    int r = 0;
    if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) *existed = true;
    else if (e) {
        snprintf(errstr, n, "cannot create topic %s: %s", topic, why && *why ? why : rd_kafka_err2str(e));
        r = TALLY_EKAFKA;
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    return r;
}

int tally_kafka_topic_config(rd_kafka_t *rk, const char *topic, const char *name, char *out, size_t outsz, char *errstr,
                             size_t n) {
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
    rd_kafka_ConfigResource_destroy(res);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT);
    int r = 0;
    if (!ev || rd_kafka_event_error(ev)) {
        snprintf(errstr, n, "cannot read the configuration of topic %s: %s", topic,
                 ev ? rd_kafka_event_error_string(ev) : "timed out");
        r = TALLY_EKAFKA;
    } else {
        size_t cnt = 0, ncfg = 0;
        const rd_kafka_ConfigResource_t **rs =
            rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &cnt);
        const rd_kafka_ConfigEntry_t **cfg = cnt ? rd_kafka_ConfigResource_configs(rs[0], &ncfg) : NULL;
        snprintf(out, outsz, "?");
        for (size_t i = 0; i < ncfg; i++)
            if (strcmp(rd_kafka_ConfigEntry_name(cfg[i]), name) == 0 && rd_kafka_ConfigEntry_value(cfg[i]))
                snprintf(out, outsz, "%s", rd_kafka_ConfigEntry_value(cfg[i]));
    }
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    return r;
}

int tally_kafka_partition_count(rd_kafka_t *rk, const char *topic, int *cnt, char *errstr, size_t n) {
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e;
    /* A topic another client just created may take a moment to reach every broker's metadata. */
    double deadline = tally_mono_s() + 30;
    do {
        const struct rd_kafka_metadata *md = NULL;
        e = rd_kafka_metadata(rk, 0, t, &md, 5000);
        if (!e) e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        if (!e) *cnt = md->topics[0].partition_cnt;
        if (md) rd_kafka_metadata_destroy(md);
        if (e) nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
    } while (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART && tally_mono_s() < deadline);
    rd_kafka_topic_destroy(t);
    if (e) snprintf(errstr, n, "cannot read the metadata of topic %s: %s", topic, rd_kafka_err2str(e));
    return e ? TALLY_EKAFKA : 0;
}
