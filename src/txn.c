/* SPDX-License-Identifier: MIT */
/* The transaction manager (see the header). Classification follows librdkafka's rd_kafka_error_t
 * flags, as its examples/transactions.c does; the retry bound and the producer replacement are ours. */
#include "tally/txn.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tally/clock.h"
#include "tally/crashpoint.h"
#include "tally/engine.h"
#include "tally/err.h"
#include "tally/log.h"
#include "tally/window.h"
#include "tally/sourcelog.h"
#include "scaleout.h"

#define MAX_ATTEMPTS 10        /* of one retriable call */
#define MAX_REPLACEMENTS 3     /* producers replaced within a minute before we give up */

struct tally_txn_s {
    tally_kafka_hooks_t hooks;   /* a copy: the producer's own (delivery reports come here) */
    const tally_config_t *conf;
    const char *txn_id;
    bool transactional;
    rd_kafka_t *producer;
    rd_kafka_topic_t *topic;
    rd_kafka_topic_t *log;        /* input.path: the file log (sourcelog.h), exactly_once only */
    rd_kafka_topic_t *repartition, *changelog; /* topology=distributed (scaleout.h) */
    bool open;                   /* a transaction is begun and not yet committed or aborted */
    rd_kafka_resp_err_t last_code; /* of the last failed call */
    int budget_ms;               /* longest a retried call may keep the control thread */
    int replacements;
    double replaced_at;
    _Atomic int64_t dr_errors;   /* at_least_once: failed deliveries since the last commit */
};

tally_txn_class_t tally_txn_classify(const rd_kafka_error_t *error) {
    if (!error) return TALLY_TXN_OK;
    if (rd_kafka_error_is_fatal(error)) return TALLY_TXN_FATAL;
    if (rd_kafka_error_txn_requires_abort(error)) return TALLY_TXN_ABORTABLE;
    if (rd_kafka_error_is_retriable(error)) return TALLY_TXN_RETRIABLE;
    /* Neither flag: a state or configuration error, our bug or the user's; never silently go on. */
    return TALLY_TXN_FATAL;
}

const char *tally_txn_class_name(tally_txn_class_t c) {
    switch (c) {
    case TALLY_TXN_OK: return "ok";
    case TALLY_TXN_RETRIABLE: return "retriable";
    case TALLY_TXN_ABORTABLE: return "abortable";
    case TALLY_TXN_FATAL: return "fatal";
    }
    return "?";
}

bool tally_txn_code_is_fenced(rd_kafka_resp_err_t code) {
    switch (code) {
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
        return true;
    default:
        return false;
    }
}

/* Fatal producer states that a broker outage or restart leaves behind, where a new producer (a new
 * epoch for the same transactional.id) goes on safely. Fences and authorization errors are not. */
static bool code_is_replaceable(rd_kafka_resp_err_t code) {
    switch (code) {
    case RD_KAFKA_RESP_ERR_INVALID_TXN_STATE:
    case RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID:
    case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_ID_MAPPING:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
        return true;
    default:
        return false;
    }
}

static void failure(tally_txn_failure_t *f, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void failure(tally_txn_failure_t *f, int status, const char *fmt, ...) {
    f->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->why, sizeof(f->why), fmt, ap);
    va_end(ap);
}

static void on_delivery(void *opaque, const rd_kafka_message_t *m) {
    tally_txn_t *t = opaque;
    if (!m->err) return;
    atomic_fetch_add(&t->dr_errors, 1);
    tally_warn("delivery to %s failed: %s", t->conf->output_topic, rd_kafka_err2str(m->err));
}

/* Windowed keys are "<start> <word>": Java's partitioner over the word alone, so every window of a
 * word lands where the word's plain count would (and a consumer keyed by word sees them in order). */
static int32_t window_partitioner(const rd_kafka_topic_t *rkt, const void *key, size_t klen, int32_t cnt,
                                  void *rkt_opaque, void *msg_opaque) {
    const void *word;
    size_t len;
    tally_window_output_key_word(key, klen, &word, &len);
    return rd_kafka_msg_partitioner_murmur2_random(rkt, word, len, cnt, rkt_opaque, msg_opaque);
}

static int producer_start(tally_txn_t *t) {
    t->producer = tally_kafka_producer_new(&t->hooks, t->transactional ? t->txn_id : NULL);
    if (!t->producer) return TALLY_EKAFKA;
    int r = tally_kafka_wait_topic(t->producer, &t->hooks, t->conf->output_topic, "output.topic");
    if (r) return r;
    if (t->transactional) {
        /* First: fences an older instance and settles its open transaction (DESIGN: start-up order). */
        rd_kafka_error_t *e = rd_kafka_init_transactions(t->producer, t->conf->transaction_timeout_ms);
        if (e) {
            tally_err("cannot initialise transactions (transactional.id=%s): %s", t->txn_id, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            return TALLY_EKAFKA;
        }
    }
    rd_kafka_topic_conf_t *tc = NULL;
    if (t->conf->window_size_ms > 0) {
        tc = rd_kafka_topic_conf_new();
        rd_kafka_topic_conf_set_partitioner_cb(tc, window_partitioner);
    }
    t->topic = rd_kafka_topic_new(t->producer, t->conf->output_topic, tc);
    if (!t->topic) return TALLY_EKAFKA;
    if (t->conf->topology == TALLY_TOPOLOGY_DISTRIBUTED) {
        char name[300], err[1024];
        if ((r = tally_scaleout_ensure(t->producer, t->conf, err, sizeof(err)))) {
            tally_err("%s", err);
            if (r == TALLY_ECONFIG) tally_fault_raise(t->hooks.fault, TALLY_EXIT_USAGE, "%s", err);
            return r;
        }
        tally_scaleout_topic(t->conf, false, name, sizeof(name));
        t->repartition = rd_kafka_topic_new(t->producer, name, NULL);
        tally_scaleout_topic(t->conf, true, name, sizeof(name));
        t->changelog = rd_kafka_topic_new(t->producer, name, NULL);
        if (!t->repartition || !t->changelog) return TALLY_EKAFKA;
    }
    if (t->conf->input_path && t->transactional) {
        char name[300], err[512];
        tally_sourcelog_topic(t->conf, name, sizeof(name));
        if ((r = tally_sourcelog_ensure(t->producer, t->conf, err, sizeof(err)))) {
            tally_err("%s", err);
            return r;
        }
        if (!(t->log = rd_kafka_topic_new(t->producer, name, NULL))) return TALLY_EKAFKA;
    }
    return 0;
}

static void producer_stop(tally_txn_t *t, bool failed) {
    if (t->topic) rd_kafka_topic_destroy(t->topic);
    if (t->log) rd_kafka_topic_destroy(t->log);
    if (t->repartition) rd_kafka_topic_destroy(t->repartition);
    if (t->changelog) rd_kafka_topic_destroy(t->changelog);
    t->topic = t->log = t->repartition = t->changelog = NULL;
    if (!t->producer) return;
    /* After a failure nothing may be flushed: purge what is queued, then destroy. */
    if (failed) rd_kafka_purge(t->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy_flags(t->producer, failed ? RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE : 0);
    t->producer = NULL;
}

int tally_txn_new(tally_txn_t **out, tally_kafka_hooks_t *hooks, const char *txn_id) {
    tally_txn_t *t = calloc(1, sizeof(*t));
    if (!t) return TALLY_ENOMEM;
    *out = t;
    t->hooks = *hooks;
    t->hooks.rebalance = NULL;
    t->conf = hooks->conf;
    t->txn_id = txn_id;
    t->transactional = t->conf->guarantee == TALLY_EXACTLY_ONCE;
    /* Half the consumer's poll interval: a retried call never outlasts it (the group would drop us). */
    t->budget_ms = tally_kafka_max_poll_ms(t->conf) / 2;
    if (t->conf->sink != TALLY_SINK_KAFKA) return 0;
    if (!t->transactional) {
        t->hooks.delivery = on_delivery;
        t->hooks.delivery_opaque = t;
    }
    return producer_start(t);
}

void tally_txn_destroy(tally_txn_t *t, bool failed) {
    if (!t) return;
    producer_stop(t, failed);
    free(t);
}

rd_kafka_t *tally_txn_producer(const tally_txn_t *t) { return t->producer; }
rd_kafka_topic_t *tally_txn_topic(const tally_txn_t *t) { return t->topic; }
rd_kafka_topic_t *tally_txn_repartition(const tally_txn_t *t) { return t ? t->repartition : NULL; }
rd_kafka_topic_t *tally_txn_changelog(const tally_txn_t *t) { return t ? t->changelog : NULL; }
bool tally_txn_is_open(const tally_txn_t *t) { return t->open; }

/* The producer failed for good without being fenced, e.g. the coordinator aborted a transaction that
 * outlived transaction.timeout.ms while the broker was away. A new producer with the same
 * transactional.id bumps the epoch; nothing uncommitted survives. Only a few in a row: a producer
 * that fails again at once is a real problem. */
static int replace_producer(tally_txn_t *t, const char *why) {
    double now = tally_mono_s();
    if (now - t->replaced_at > 60) t->replacements = 0;
    if (++t->replacements > MAX_REPLACEMENTS) {
        tally_err("the producer failed %d times within a minute; giving up", t->replacements - 1);
        return TALLY_EKAFKA;
    }
    t->replaced_at = now;
    tally_warn("replacing the producer after: %s", why);
    producer_stop(t, true);
    t->open = false;
    return producer_start(t);
}

typedef enum { STEP_BEGIN, STEP_SEND_OFFSETS, STEP_COMMIT, STEP_ABORT } step_t;

static const char *const step_names[] = {"begin_transaction", "send_offsets_to_transaction", "commit_transaction",
                                         "abort_transaction"};

/* One transactional call, retried while librdkafka says retriable, for at most MAX_ATTEMPTS and
 * budget_ms in all; a retriable error past the bound counts as abortable. */
static tally_txn_class_t run_step(tally_txn_t *t, step_t step, const rd_kafka_topic_partition_list_t *offsets,
                                  rd_kafka_consumer_group_metadata_t *cgmd, tally_txn_failure_t *f) {
    double deadline = tally_mono_s() + t->budget_ms / 1e3;
    for (int attempt = 1;; attempt++) {
        int left_ms = (int)((deadline - tally_mono_s()) * 1e3);
        int timeout = t->conf->transaction_timeout_ms < left_ms ? t->conf->transaction_timeout_ms : left_ms;
        if (timeout < 1000) timeout = 1000;
        rd_kafka_error_t *e = NULL;
        switch (step) {
        case STEP_BEGIN: e = rd_kafka_begin_transaction(t->producer); break;
        case STEP_SEND_OFFSETS: e = rd_kafka_send_offsets_to_transaction(t->producer, offsets, cgmd, timeout); break;
        case STEP_COMMIT: e = rd_kafka_commit_transaction(t->producer, timeout); break;
        case STEP_ABORT: e = rd_kafka_abort_transaction(t->producer, timeout); break;
        }
        tally_txn_class_t cls = tally_txn_classify(e);
        if (cls == TALLY_TXN_OK) return cls;
        t->last_code = rd_kafka_error_code(e);
        if (tally_txn_code_is_fenced(t->last_code))
            failure(f, TALLY_EXIT_FENCED,
                    "fenced: another tally instance with application.id=%s%s%s took over, or the broker aborted a "
                    "transaction that outlived transaction.timeout.ms=%d (%s: %s)",
                    t->conf->application_id, t->conf->instance_id ? " and instance.id=" : "",
                    t->conf->instance_id ? t->conf->instance_id : "", t->conf->transaction_timeout_ms, step_names[step],
                    rd_kafka_error_string(e));
        else
            failure(f, TALLY_EXIT_ERROR, "%s failed (%s): %s", step_names[step], tally_txn_class_name(cls),
                    rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        if (cls != TALLY_TXN_RETRIABLE) return cls;
        /* Another thread raised a fatal error meanwhile (a fenced consumer, a refused login): retrying
         * cannot help, and the engine stops with that cause. */
        int raised = tally_fault_get(t->hooks.fault, NULL, 0);
        if (raised) {
            tally_fault_get(t->hooks.fault, f->why, sizeof(f->why));
            f->status = raised;
            t->last_code = RD_KAFKA_RESP_ERR__FATAL; /* not a state a new producer clears */
            return TALLY_TXN_FATAL;
        }
        if (attempt >= MAX_ATTEMPTS || tally_mono_s() >= deadline) {
            tally_warn("%s; giving up on this epoch after %d attempts in %.0f s", f->why, attempt,
                       t->budget_ms / 1e3 - (deadline - tally_mono_s()));
            return TALLY_TXN_ABORTABLE;
        }
        tally_warn("%s; retrying (%d)", f->why, attempt);
    }
}

tally_txn_class_t tally_txn_begin(tally_txn_t *t, tally_txn_failure_t *f) {
    if (!t->producer || !t->transactional || t->open) return TALLY_TXN_OK;
    tally_txn_class_t cls = run_step(t, STEP_BEGIN, NULL, NULL, f);
    if (cls != TALLY_TXN_OK) return TALLY_TXN_FATAL; /* begin is local: no failure of it is transient */
    t->open = true;
    return cls;
}

tally_txn_class_t tally_txn_abort(tally_txn_t *t, tally_txn_failure_t *f) {
    if (!t->open) return TALLY_TXN_OK;
    tally_txn_class_t cls = run_step(t, STEP_ABORT, NULL, NULL, f);
    t->open = false;
    if (cls == TALLY_TXN_OK) return cls;
    if (f->status != TALLY_EXIT_FENCED && code_is_replaceable(t->last_code) && replace_producer(t, f->why) == 0)
        return TALLY_TXN_OK;
    return TALLY_TXN_FATAL;
}

/* input.path: the epoch's files go into the transaction as one record of the file log. */
static tally_txn_class_t log_files(tally_txn_t *t, rd_kafka_topic_partition_list_t *files, uint64_t epoch,
                                   tally_txn_failure_t *f) {
    size_t len = 0;
    char *v = tally_sourcelog_encode(epoch, files, &len);
    if (!v) {
        failure(f, TALLY_EXIT_ERROR, "out of memory for the file log record of epoch %" PRIu64, epoch);
        return TALLY_TXN_FATAL;
    }
    if (rd_kafka_produce(t->log, 0, RD_KAFKA_MSG_F_FREE, v, len, "files", 5, NULL) != 0) {
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        free(v);
        failure(f, TALLY_EXIT_ERROR, "cannot produce the file log record of epoch %" PRIu64 ": %s", epoch,
                rd_kafka_err2str(e));
        return TALLY_TXN_ABORTABLE;
    }
    return TALLY_TXN_OK;
}

/* exactly_once: offsets and output in the epoch's transaction. */
static tally_txn_class_t commit_transaction(tally_txn_t *t, rd_kafka_topic_partition_list_t *offsets,
                                            rd_kafka_t *consumer, uint64_t epoch, tally_txn_failure_t *f) {
    rd_kafka_consumer_group_metadata_t *cgmd = consumer ? rd_kafka_consumer_group_metadata(consumer) : NULL;
    tally_crashpoint("after_produce", epoch);
    tally_txn_class_t cls = consumer ? run_step(t, STEP_SEND_OFFSETS, offsets, cgmd, f) : log_files(t, offsets, epoch, f);
    tally_crashpoint("after_send_offsets", epoch);
    tally_crashpoint_soon("during_commit", epoch, 2000);
    if (cls == TALLY_TXN_OK) cls = run_step(t, STEP_COMMIT, NULL, NULL, f);
    if (cgmd) rd_kafka_consumer_group_metadata_destroy(cgmd);
    if (cls == TALLY_TXN_OK) {
        t->open = false;
        return cls;
    }
    if (cls == TALLY_TXN_ABORTABLE) {
        tally_txn_failure_t f2;
        if (tally_txn_abort(t, &f2) != TALLY_TXN_OK) {
            *f = f2;
            return TALLY_TXN_FATAL;
        }
        return TALLY_TXN_ABORTABLE;
    }
    /* Fatal: a fence stops us; a state a new producer clears is a rollback. */
    t->open = false;
    if (f->status != TALLY_EXIT_FENCED && code_is_replaceable(t->last_code) && replace_producer(t, f->why) == 0)
        return TALLY_TXN_ABORTABLE;
    return TALLY_TXN_FATAL;
}

tally_txn_class_t tally_txn_commit(tally_txn_t *t, rd_kafka_topic_partition_list_t *offsets, rd_kafka_t *consumer,
                                   uint64_t epoch, tally_txn_failure_t *f) {
    if (t->producer && t->transactional) return commit_transaction(t, offsets, consumer, epoch, f);
    /* at_least_once and the console sink: the output first, then the offsets; a crash between the
     * two repeats the epoch's output. */
    if (t->producer) {
        rd_kafka_resp_err_t fe = rd_kafka_flush(t->producer, t->conf->transaction_timeout_ms);
        if (fe || atomic_exchange(&t->dr_errors, 0)) {
            failure(f, TALLY_EXIT_ERROR, "%s", fe ? rd_kafka_err2str(fe) : "output records were not delivered");
            return TALLY_TXN_ABORTABLE;
        }
    }
    /* input.path: the state write that follows is the commit. */
    rd_kafka_resp_err_t ce = consumer ? rd_kafka_commit(consumer, offsets, 0) : RD_KAFKA_RESP_ERR_NO_ERROR;
    if (ce) {
        failure(f, TALLY_EXIT_ERROR, "offset commit failed: %s", rd_kafka_err2str(ce));
        return TALLY_TXN_ABORTABLE;
    }
    return TALLY_TXN_OK;
}
