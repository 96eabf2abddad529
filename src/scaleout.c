/* SPDX-License-Identifier: MIT */
/* topology=distributed: internal topics, restore, stored positions and trimming (see the header). */
#include "scaleout.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evtime.h"
#include "tally/clock.h"
#include "tally/err.h"
#include "tally/kafka.h"
#include "tally/log.h"

#define RESTORE_BATCH 50000 /* changelog records per state write while restoring */

void tally_scaleout_topic(const tally_config_t *c, bool changelog, char *buf, size_t size) {
    snprintf(buf, size, "%s-%s", c->application_id, changelog ? "changelog" : "repartition");
}

bool tally_scaleout_is_repartition(const tally_config_t *c, const char *topic) {
    char name[300];
    tally_scaleout_topic(c, false, name, sizeof(name));
    return strcmp(topic, name) == 0;
}

static void position_name(int32_t r, char *buf, size_t size) { snprintf(buf, size, "changelog.%d", (int)r); }

/* One internal topic: created, or checked. */
static int ensure_one(rd_kafka_t *rk, const tally_config_t *c, bool changelog, char *errstr, size_t n) {
    char topic[300], value[64];
    tally_scaleout_topic(c, changelog, topic, sizeof(topic));
    /* Stage 2 reads a repartition record only once it is committed; tally deletes it after its commit,
     * so time-based retention must never remove one before (Kafka Streams sets the same). */
    static const char *const repartition_cfg[][2] = {{"cleanup.policy", "delete"}, {"retention.ms", "-1"}};
    static const char *const changelog_cfg[][2] = {{"cleanup.policy", "compact"}};
    bool existed = false;
    int r = tally_kafka_create_topic(rk, topic, c->repartition_partitions, c->internal_replication,
                                     changelog ? changelog_cfg : repartition_cfg, changelog ? 1 : 2, &existed, errstr, n);
    if (r) return r;
    if (!existed) {
        tally_info("created topic %s: %d partitions (%s)", topic, c->repartition_partitions,
                   changelog ? "compacted: the counts of each repartition partition" : "stage 1 -> stage 2");
        return 0;
    }
    int cnt = 0;
    if ((r = tally_kafka_partition_count(rk, topic, &cnt, errstr, n))) return r;
    if (cnt != c->repartition_partitions) {
        snprintf(errstr, n, "internal topic %s has %d partitions, but repartition.partitions=%d: the count is fixed "
                 "when the topic is first created (each word's state lives in the partition its hash picks). Set "
                 "repartition.partitions=%d, or delete %s-repartition and %s-changelog while no instance runs to "
                 "start this application over", topic, cnt, c->repartition_partitions, cnt, c->application_id,
                 c->application_id);
        return TALLY_ECONFIG;
    }
    if (!changelog) return 0;
    if ((r = tally_kafka_topic_config(rk, topic, "cleanup.policy", value, sizeof(value), errstr, n))) return r;
    if (strstr(value, "compact")) return 0;
    snprintf(errstr, n, "internal topic %s has cleanup.policy=%s, not compact: under delete retention the counts "
             "of words not seen for retention.ms would be lost to the instance that restores them. Set "
             "cleanup.policy=compact on it", topic, value);
    return TALLY_ECONFIG;
}

int tally_scaleout_ensure(rd_kafka_t *rk, const tally_config_t *c, char *errstr, size_t n) {
    int r = ensure_one(rk, c, false, errstr, n);
    return r ? r : ensure_one(rk, c, true, errstr, n);
}

int tally_scaleout_check_state(const tally_config_t *c, tally_state_t *st, char *errstr, size_t n) {
    int64_t mark = 0;
    int have = tally_state_get_meta(st, TALLY_META_TOPOLOGY, &mark);
    if (have < 0) {
        snprintf(errstr, n, "cannot read state.dir %s", c->state_dir);
        return TALLY_ESTATE;
    }
    bool distributed = c->topology == TALLY_TOPOLOGY_DISTRIBUTED;
    if (have ? (mark == 1) == distributed : tally_state_is_fresh(st) || !distributed) return 0;
    snprintf(errstr, n, "state.dir %s holds the state of a topology=%s run, and this one is topology=%s: the two "
             "keep their state differently (%s). Give this run its own state.dir%s", c->state_dir,
             distributed ? "single" : "distributed", distributed ? "distributed" : "single",
             distributed ? "single mode's counts and input offsets are not the changelog's" :
                           "a distributed instance holds only some words",
             distributed ? "; the distributed instances rebuild their counts from the input only if their "
                           "application.id is new" : " and a new application.id");
    return TALLY_ECONFIG;
}

/* One restore: every assigned repartition partition's changelog read at once by one reader. */
typedef struct {
    int32_t part;
    int64_t from, next;          /* next: -1 until known (a restore from the beginning of an empty log) */
    uint64_t records;
    bool end;
} restore_part_t;

static restore_part_t *restore_find(restore_part_t *rp, int n, int32_t part) {
    for (int i = 0; i < n; i++)
        if (rp[i].part == part) return &rp[i];
    return NULL;
}

/* The counts read so far and how far each partition got, in one write: a restore cut short goes on
 * from there. */
static int restore_write(tally_state_t *st, tally_state_batch_t *b, const restore_part_t *rp, int n, char *errstr,
                         size_t size) {
    char pos_name[32];
    for (int i = 0; i < n; i++) {
        if (rp[i].next < 0) continue;
        position_name(rp[i].part, pos_name, sizeof(pos_name));
        tally_state_batch_put_meta(b, pos_name, rp[i].next);
    }
    tally_state_batch_put_meta(b, TALLY_META_TOPOLOGY, 1);
    return tally_state_batch_write(st, b, errstr, size);
}

bool tally_scaleout_number(const rd_kafka_message_t *m, int64_t *v) {
    char buf[24];
    char *end = NULL;
    if (!m->payload || m->len == 0 || m->len >= sizeof(buf)) return false;
    memcpy(buf, m->payload, m->len);
    buf[m->len] = '\0';
    long long x = strtoll(buf, &end, 10);
    if (*end) return false;
    *v = x;
    return true;
}

/* A changelog record into the batch: key = word, value = its count in decimal; no value: deleted;
 * the partition's watermark. */
static int restore_record(const rd_kafka_message_t *m, tally_state_batch_t *b, char *errstr, size_t size) {
    if (m->key && m->key_len && !m->payload) {
        tally_state_batch_delete_count(b, m->key, m->key_len);
        return 0;
    }
    int64_t count = -1;
    bool num = tally_scaleout_number(m, &count);
    if (m->key && m->key_len == 1 && !memcmp(m->key, TALLY_SCALEOUT_WATERMARK_KEY, 1) && num) {
        char name[32];
        tally_evtime_meta_name(m->partition, name, sizeof(name));
        tally_state_batch_put_meta(b, name, count);
        return 0;
    }
    if (!m->key || !num || count < 0) {
        snprintf(errstr, size, "%s[%d] offset %" PRId64 " is not a (word, count) record of tally's changelog",
                 rd_kafka_topic_name(m->rkt), (int)m->partition, m->offset);
        return TALLY_EIO;
    }
    tally_state_batch_put_count(b, m->key, m->key_len, count);
    return 0;
}

static int restore(const tally_config_t *c, tally_state_t *st, const int32_t *parts, int nparts, _Atomic bool *cancel,
                   _Atomic uint64_t *progress, char *errstr, size_t n) {
    if (nparts == 0) return 0;
    char topic[300], pos_name[32], group[320];
    tally_scaleout_topic(c, true, topic, sizeof(topic));
    restore_part_t *rp = calloc((size_t)nparts, sizeof(*rp));
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(nparts);
    tally_state_batch_t *b = tally_state_batch_new();
    int r = rp && b ? 0 : TALLY_ENOMEM;
    for (int i = 0; !r && i < nparts; i++) {
        position_name(parts[i], pos_name, sizeof(pos_name));
        int have = tally_state_get_meta(st, pos_name, &rp[i].from);
        if (have < 0) {
            snprintf(errstr, n, "cannot read state.dir %s", c->state_dir);
            r = TALLY_ESTATE;
        }
        rp[i].part = parts[i];
        if (!have) rp[i].from = 0;
        rp[i].next = have ? rp[i].from : -1;
        rd_kafka_topic_partition_list_add(l, topic, parts[i])->offset = have ? rp[i].from : RD_KAFKA_OFFSET_BEGINNING;
    }
    snprintf(group, sizeof(group), "%s-restore", c->application_id);
    rd_kafka_t *rk = r ? NULL : tally_kafka_reader_new(c, group, errstr, n);
    if (!r && !rk) r = TALLY_EKAFKA;
    if (!r) rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);

    double t0 = tally_mono_s(), last = t0;
    uint64_t records = 0;
    int ended = 0;
    while (!r && ended < nparts && !atomic_load(cancel)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if ((tally_mono_s() - last) * 1e3 < c->recovery_stall_ms) continue;
            snprintf(errstr, n, "restore of %s stalled: nothing arrived for %d ms (recovery.stall.timeout.ms); is the "
                     "broker reachable?", topic, c->recovery_stall_ms);
            r = TALLY_EKAFKA;
            break;
        }
        last = tally_mono_s();
        restore_part_t *p = m->rkt ? restore_find(rp, nparts, m->partition) : NULL;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && p) {
            p->next = m->offset;
            if (!p->end) ended++;
            p->end = true;
        } else if (m->err) {
            snprintf(errstr, n, "restore of %s: %s%s", topic, rd_kafka_message_errstr(m),
                     m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET
                         ? " (the state's changelog position is past the topic's end: was the changelog recreated? "
                           "start this instance with an empty state.dir)" : "");
            r = TALLY_EKAFKA;
        } else if (p && !(r = restore_record(m, b, errstr, n))) {
            p->next = m->offset + 1;
            p->records++;
            records++;
            atomic_fetch_add_explicit(progress, 1, memory_order_relaxed);
        }
        rd_kafka_message_destroy(m);
        if (!r && tally_state_batch_count(b) >= RESTORE_BATCH) {
            r = restore_write(st, b, rp, nparts, errstr, n);
            tally_state_batch_destroy(b);
            if (!(b = tally_state_batch_new()) && !r) r = TALLY_ENOMEM;
        }
    }
    if (!r) r = restore_write(st, b, rp, nparts, errstr, n);
    tally_state_batch_destroy(b);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    if (!r && atomic_load(cancel)) {
        tally_info("restore of %s stopped by a rebalance after %" PRIu64 " counts (%.3f s): the next one goes on from there",
                   topic, records, tally_mono_s() - t0);
    } else if (!r) {
        char buf[1024];
        size_t len = 0;
        buf[0] = '\0';
        for (int i = 0; i < nparts && len < sizeof(buf) - 64; i++)
            len += (size_t)snprintf(buf + len, sizeof(buf) - len, " [%d] %" PRId64 "..%" PRId64, (int)rp[i].part,
                                    rp[i].from, rp[i].next);
        tally_info("restored %s: %" PRIu64 " counts of %d partition(s) in %.3f s (from..to offsets:%s)", topic, records,
                   nparts, tally_mono_s() - t0, buf);
    }
    free(rp);
    return r;
}

int tally_scaleout_store_positions(rd_kafka_t *rk, const tally_config_t *c, const rd_kafka_topic_partition_list_t *parts,
                                   tally_state_batch_t *b, char *errstr, size_t n) {
    char topic[300], pos_name[32];
    tally_scaleout_topic(c, true, topic, sizeof(topic));
    rd_kafka_topic_partition_list_t *ends = rd_kafka_topic_partition_list_new(parts->cnt + 1);
    for (int i = 0; i < parts->cnt; i++)
        if (tally_scaleout_is_repartition(c, parts->elems[i].topic))
            rd_kafka_topic_partition_list_add(ends, topic, parts->elems[i].partition)->offset = RD_KAFKA_OFFSET_END;
    /* The consumer reads read_committed, so "latest" is the last stable offset: never past a
     * transaction still open, so a restore from it never skips a record that may yet commit. */
    rd_kafka_resp_err_t e = ends->cnt ? rd_kafka_offsets_for_times(rk, ends, 10000) : RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int i = 0; !e && i < ends->cnt; i++) {
        if (ends->elems[i].err) {
            e = ends->elems[i].err;
            break;
        }
        position_name(ends->elems[i].partition, pos_name, sizeof(pos_name));
        tally_state_batch_put_meta(b, pos_name, ends->elems[i].offset);
    }
    rd_kafka_topic_partition_list_destroy(ends);
    tally_state_batch_put_meta(b, TALLY_META_TOPOLOGY, 1);
    if (e) snprintf(errstr, n, "cannot read the end offsets of %s: %s", topic, rd_kafka_err2str(e));
    return e ? TALLY_EKAFKA : 0;
}

struct tally_trim_s {
    rd_kafka_t *rk;
    const tally_config_t *conf;
    rd_kafka_queue_t *q;
    bool in_flight;
    double warned_at;
};

tally_trim_t *tally_trim_new(rd_kafka_t *rk, const tally_config_t *c) {
    tally_trim_t *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->rk = rk;
    t->conf = c;
    if (!(t->q = rd_kafka_queue_new(rk))) {
        free(t);
        return NULL;
    }
    return t;
}

void tally_trim_destroy(tally_trim_t *t) {
    if (!t) return;
    rd_kafka_queue_destroy(t->q);
    free(t);
}

void tally_trim_request(tally_trim_t *t, const rd_kafka_topic_partition_list_t *committed) {
    tally_trim_poll(t);
    if (t->in_flight) return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(committed->cnt + 1);
    for (int i = 0; i < committed->cnt; i++)
        if (committed->elems[i].offset > 0 && tally_scaleout_is_repartition(t->conf, committed->elems[i].topic))
            rd_kafka_topic_partition_list_add(l, committed->elems[i].topic, committed->elems[i].partition)->offset =
                committed->elems[i].offset;
    if (l->cnt) {
        rd_kafka_DeleteRecords_t *d = rd_kafka_DeleteRecords_new(l);
        rd_kafka_DeleteRecords(t->rk, &d, 1, NULL, t->q);
        rd_kafka_DeleteRecords_destroy(d);
        t->in_flight = true;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

void tally_trim_poll(tally_trim_t *t) {
    rd_kafka_event_t *ev;
    while (t->in_flight && (ev = rd_kafka_queue_poll(t->q, 0))) {
        if (rd_kafka_event_type(ev) != RD_KAFKA_EVENT_DELETERECORDS_RESULT) {
            rd_kafka_event_destroy(ev);
            continue;
        }
        t->in_flight = false;
        const char *why = rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev) : NULL;
        const rd_kafka_topic_partition_list_t *res =
            why ? NULL : rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
        for (int i = 0; res && !why && i < res->cnt; i++)
            if (res->elems[i].err) why = rd_kafka_err2str(res->elems[i].err);
        /* Not a failure of the job: the records stay until a later trim. Once a minute at most. */
        if (why && tally_mono_s() - t->warned_at > 60) {
            tally_warn("cannot trim the repartition topic (the next commit tries again): %s", why);
            t->warned_at = tally_mono_s();
        }
        rd_kafka_event_destroy(ev);
    }
}

struct tally_restore_s {
    const tally_config_t *conf;
    tally_state_t *state;
    int32_t *parts;
    int nparts;
    void (*wake)(void *opaque);
    void *wake_opaque;
    pthread_t thread;
    _Atomic bool cancel, finished;
    _Atomic uint64_t records;
    int result;
    char why[1024];
};

static void *restore_main(void *arg) {
    tally_restore_t *rs = arg;
    tally_log_set_thread("restore");
    rs->result = restore(rs->conf, rs->state, rs->parts, rs->nparts, &rs->cancel, &rs->records, rs->why, sizeof(rs->why));
    atomic_store(&rs->finished, true);
    rs->wake(rs->wake_opaque);
    return NULL;
}

int tally_restore_start(tally_restore_t **out, const tally_config_t *c, tally_state_t *st,
                        const rd_kafka_topic_partition_list_t *parts, void (*wake)(void *opaque), void *opaque) {
    tally_restore_t *rs = calloc(1, sizeof(*rs));
    if (!rs || !(rs->parts = calloc((size_t)parts->cnt + 1, sizeof(int32_t)))) {
        free(rs);
        return TALLY_ENOMEM;
    }
    *rs = (tally_restore_t){.conf = c, .state = st, .parts = rs->parts, .nparts = parts->cnt, .wake = wake,
                            .wake_opaque = opaque};
    for (int i = 0; i < parts->cnt; i++) rs->parts[i] = parts->elems[i].partition;
    tally_kafka_log_partitions("restoring from the changelog before counting them:", parts);
    if (pthread_create(&rs->thread, NULL, restore_main, rs)) {
        free(rs->parts);
        free(rs);
        return TALLY_ENOMEM;
    }
    *out = rs;
    return 0;
}

bool tally_restore_finished(tally_restore_t *rs) { return atomic_load(&rs->finished); }
uint64_t tally_restore_records(tally_restore_t *rs) { return atomic_load_explicit(&rs->records, memory_order_relaxed); }

int tally_restore_end(tally_restore_t *rs, bool cancel, uint64_t *records, char *errstr, size_t n) {
    if (cancel) atomic_store(&rs->cancel, true);
    pthread_join(rs->thread, NULL);
    int r = rs->result;
    if (r) snprintf(errstr, n, "%s", rs->why);
    if (!r && atomic_load(&rs->cancel)) r = TALLY_ESTOPPED;
    if (records) *records += tally_restore_records(rs);
    free(rs->parts);
    free(rs);
    return r;
}
