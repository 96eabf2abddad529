/* SPDX-License-Identifier: MIT */
/* The control thread: owns the libuv loop, the consumer group, the transactional producer and the
 * state store; starts epochs on the trigger timer and commits them (shared/DESIGN.md):
 *   barrier -> workers emit into the transaction -> send offsets + commit -> one state write. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "engine_int.h"
#include "ops/observe.h"
#include "tally/crashpoint.h"
#include "tally/err.h"
#include "tally/json.h"
#include "tally/log.h"
#include "tally/txn.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *state_name(tally_eng_state_t s) {
    static const char *const names[] = {"starting", "running", "stopping", "stopped"};
    return names[s];
}

static void set_state(tally_engine_t *eng, tally_eng_state_t s) {
    if (eng->state_ == s) return;
    tally_debug("engine %s -> %s", state_name(eng->state_), state_name(s));
    eng->state_ = s;
    tally_obs_state(eng);
}

void tally_engine_raise(tally_engine_t *eng, int exit_status, const char *fmt, ...) {
    pthread_mutex_lock(&eng->err_mu);
    if (!eng->async_err) {
        eng->async_err = exit_status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(eng->async_errstr, sizeof(eng->async_errstr), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&eng->err_mu);
    /* Wakes a control thread waiting in ep_wait() as well as the loop. */
    pthread_mutex_lock(&eng->ep_mu);
    pthread_cond_broadcast(&eng->ep_cv);
    pthread_mutex_unlock(&eng->ep_mu);
    uv_async_send(&eng->wake);
}

/* The raised error's status and message (0 and "" when none). */
static int take_error(tally_engine_t *eng, char *msg, size_t size) {
    pthread_mutex_lock(&eng->err_mu);
    int status = eng->async_err;
    snprintf(msg, size, "%s", eng->async_errstr);
    pthread_mutex_unlock(&eng->err_mu);
    return status;
}

static int pending_error(tally_engine_t *eng) {
    pthread_mutex_lock(&eng->err_mu);
    int e = eng->async_err;
    pthread_mutex_unlock(&eng->err_mu);
    return e;
}

void tally_engine_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    /* librdkafka's own threads log under one tag; ours keep theirs. */
    if (strcmp(tally_log_thread(), "main") == 0) tally_log_set_thread("rdk");
    tally_log_level_t l = level <= 3 ? TALLY_LOG_ERROR : level <= 4 ? TALLY_LOG_WARN
                        : level <= 6 ? TALLY_LOG_INFO : TALLY_LOG_DEBUG;
    tally_log(l, "librdkafka %s: %s", fac, buf);
}

static int conf_set(rd_kafka_conf_t *c, const char *k, const char *v, char *errstr, size_t n) {
    char err[512];
    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, n, "librdkafka rejected %s=%s: %s", k, v, err);
        return TALLY_ECONFIG;
    }
    return 0;
}

int tally_engine_kafka_conf(tally_engine_t *eng, rd_kafka_conf_t *c, char *errstr, size_t n) {
    int r = conf_set(c, "bootstrap.servers", eng->conf.bootstrap_servers, errstr, n);
    for (int i = 0; !r && i < eng->conf.kafka_cnt; i++) {
        char err[512];
        if (rd_kafka_conf_set(c, eng->conf.kafka[i].key, eng->conf.kafka[i].value, err, sizeof(err)) !=
            RD_KAFKA_CONF_OK) {
            snprintf(errstr, n, "kafka.%s: %s", eng->conf.kafka[i].key, err);
            r = TALLY_ECONFIG;
        }
    }
    rd_kafka_conf_set_log_cb(c, tally_engine_log_cb);
    return r;
}

static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    tally_engine_t *eng = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        bool fenced = orig == RD_KAFKA_RESP_ERR__FENCED || orig == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
                      orig == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH ||
                      orig == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
        if (!fenced && rd_kafka_type(rk) == RD_KAFKA_PRODUCER) {
            /* The next transactional call reports it, and the control thread replaces the producer. */
            tally_warn("producer failed: %s", buf);
            return;
        }
        if (fenced)
            tally_engine_raise(eng, TALLY_EXIT_FENCED,
                               "fenced: another tally instance with application.id=%s took over (%s)",
                               eng->conf.application_id, buf);
        else
            tally_engine_raise(eng, TALLY_EXIT_ERROR, "fatal Kafka error: %s", buf);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) tally_warn("all brokers down: %s", reason);
    else if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION || err == RD_KAFKA_RESP_ERR__SSL)
        tally_engine_raise(eng, TALLY_EXIT_ERROR, "cannot connect to Kafka: %s", reason);
    /* The broker's fatal TLS alert (OpenSSL appends "SSL alert number N"): with TLS 1.3 a client
     * certificate the broker does not trust is refused after the handshake, as a receive failure.
     * A broker restart closes without such an alert, so only a refusal stops us. */
    else if (err == RD_KAFKA_RESP_ERR__TRANSPORT && reason && strstr(reason, "SSL alert number"))
        tally_engine_raise(eng, TALLY_EXIT_ERROR, "cannot connect to Kafka: the broker refused the TLS session "
                           "(is ssl.certificate.location signed by a CA the broker trusts?): %s", reason);
    else tally_warn("Kafka: %s: %s", rd_kafka_err2name(err), reason);
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    tally_engine_t *eng = opaque;
    if (m->err) {
        atomic_fetch_add(&eng->dr_errors, 1);
        tally_warn("delivery to %s failed: %s", eng->conf.output_topic, rd_kafka_err2str(m->err));
    }
}

/* ---- pipeline: partition threads, worker threads and the rings between them ---- */

static void pipeline_free_parts(tally_engine_t *eng) {
    for (int i = 0; i < eng->nparts; i++) {
        tally_part_t *p = &eng->parts[i];
        if (p->rings) {
            for (int w = 0; w < eng->nworkers; w++) {
                tally_batch_t *b;
                while ((b = tally_spsc_pop(&p->rings[w]))) tally_batch_destroy(b);
                tally_spsc_term(&p->rings[w]);
            }
        }
        free(p->rings);
        free(p->builders);
        if (p->queue) rd_kafka_queue_destroy(p->queue);
        free(p->topic);
    }
    free(eng->parts);
    eng->parts = NULL;
    eng->nparts = 0;
}

/* Creates the parts for an assignment (offsets = start positions) and takes their fetch queues out of
 * the consumer queue's forwarding, so that each partition thread alone drains its partition. */
static int pipeline_prepare(tally_engine_t *eng, const rd_kafka_topic_partition_list_t *l) {
    eng->parts = calloc((size_t)(l->cnt ? l->cnt : 1), sizeof(*eng->parts));
    if (!eng->parts) return TALLY_ENOMEM;
    eng->nparts = l->cnt;
    for (int i = 0; i < l->cnt; i++) {
        tally_part_t *p = &eng->parts[i];
        p->eng = eng;
        p->idx = i;
        p->topic = strdup(l->elems[i].topic);
        p->partition = l->elems[i].partition;
        p->next_offset = p->committed = p->cut = l->elems[i].offset;
        atomic_init(&p->seen, l->elems[i].offset);
        p->epoch = eng->epoch;
        p->rings = calloc((size_t)eng->nworkers, sizeof(*p->rings));
        p->builders = calloc((size_t)eng->nworkers, sizeof(*p->builders));
        if (!p->topic || !p->rings || !p->builders) return TALLY_ENOMEM;
        for (int w = 0; w < eng->nworkers; w++) {
            if (tally_spsc_init(&p->rings[w], TALLY_RING_CAP)) return TALLY_ENOMEM;
            tally_batch_builder_init(&p->builders[w]);
        }
        p->queue = rd_kafka_queue_get_partition(eng->consumer, p->topic, p->partition);
        if (!p->queue) return TALLY_EKAFKA;
        rd_kafka_queue_forward(p->queue, NULL);
    }
    return 0;
}

static int pipeline_start(tally_engine_t *eng) {
    atomic_store(&eng->stop_hard, false);
    atomic_store(&eng->req_final, false);
    atomic_store(&eng->req_epoch, eng->epoch);
    for (int w = 0; w < eng->nworkers; w++) {
        tally_worker_t *wk = &eng->workers[w];
        free(wk->blocked);
        wk->blocked = calloc((size_t)(eng->nparts ? eng->nparts : 1), 1);
        if (!wk->blocked) return TALLY_ENOMEM;
    }
    if (eng->nparts == 0) return 0;
    for (int w = 0; w < eng->nworkers; w++) {
        if (pthread_create(&eng->workers[w].thread, NULL, tally_worker_main, &eng->workers[w])) return TALLY_ENOMEM;
        eng->workers[w].started = true;
    }
    for (int i = 0; i < eng->nparts; i++) {
        if (pthread_create(&eng->parts[i].thread, NULL, tally_part_main, &eng->parts[i])) return TALLY_ENOMEM;
        eng->parts[i].started = true;
    }
    eng->pipeline_up = true;
    return 0;
}

static void pipeline_join(tally_engine_t *eng) {
    for (int i = 0; i < eng->nparts; i++)
        if (eng->parts[i].started) {
            rd_kafka_queue_yield(eng->parts[i].queue);
            pthread_join(eng->parts[i].thread, NULL);
            eng->parts[i].started = false;
        }
    for (int w = 0; w < eng->nworkers; w++)
        if (eng->workers[w].started) {
            tally_worker_wake(&eng->workers[w]);
            pthread_join(eng->workers[w].thread, NULL);
            eng->workers[w].started = false;
        }
    eng->pipeline_up = false;
}

/* Stops every thread now, discarding what is in flight (it was never committed). The workers'
 * tables may then hold uncommitted counts: callers that go on must clear them. */
static void pipeline_kill(tally_engine_t *eng) {
    atomic_store(&eng->stop_hard, true);
    pipeline_join(eng);
    for (int w = 0; w < eng->nworkers; w++) {
        eng->workers[w].out_len = eng->workers[w].out_n = 0;
        for (size_t i = 0; i < eng->workers[w].ndirty; i++) eng->workers[w].dirty[i]->dirty = 0;
        eng->workers[w].ndirty = 0;
    }
    eng->epoch_in_flight = false;
}

static void clear_tables(tally_engine_t *eng) {
    for (int w = 0; w < eng->nworkers; w++) tally_wordtab_clear(eng->workers[w].tab);
}

static void preload_one(const uint8_t *word, size_t len, int64_t count, void *opaque);

/* ---- epochs ---- */

static bool any_progress(tally_engine_t *eng) {
    for (int i = 0; i < eng->nparts; i++)
        if (atomic_load_explicit(&eng->parts[i].seen, memory_order_acquire) != eng->parts[i].committed) return true;
    return false;
}

static void epoch_start(tally_engine_t *eng, bool final) {
    eng->epoch++;
    eng->epoch_in_flight = true;
    eng->epoch_t0 = now_s();
    pthread_mutex_lock(&eng->ep_mu);
    eng->ep_done = 0;
    pthread_mutex_unlock(&eng->ep_mu);
    atomic_store_explicit(&eng->req_final, final, memory_order_release);
    atomic_store_explicit(&eng->req_epoch, eng->epoch, memory_order_release);
    for (int i = 0; i < eng->nparts; i++) rd_kafka_queue_yield(eng->parts[i].queue);
}

static bool epoch_all_done(tally_engine_t *eng) {
    pthread_mutex_lock(&eng->ep_mu);
    bool done = eng->ep_done == eng->nworkers;
    pthread_mutex_unlock(&eng->ep_mu);
    return done;
}

/* Blocks until every worker finished the epoch in flight, or an error was raised. */
static bool epoch_wait(tally_engine_t *eng) {
    pthread_mutex_lock(&eng->ep_mu);
    while (eng->ep_done < eng->nworkers && !pending_error(eng)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&eng->ep_cv, &eng->ep_mu, &ts);
    }
    bool done = eng->ep_done == eng->nworkers;
    pthread_mutex_unlock(&eng->ep_mu);
    return done;
}

static void fail(tally_engine_t *eng, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Stops with an error: nothing more is committed, in Kafka or in the state. */
static void fail(tally_engine_t *eng, int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tally_err("%s", msg);
    if (!eng->exit_status) eng->exit_status = status;
    pipeline_kill(eng);
    set_state(eng, ENG_STOPPED);
    uv_stop(&eng->loop);
}

static void rewind_to_commit(tally_engine_t *eng, const char *why);
static void replace_producer(tally_engine_t *eng, const char *why);

/* Fatal producer states that a broker outage or restart leaves behind, where a new producer (a new
 * epoch for the same transactional.id) goes on safely. Fences and authorization errors are not. */
static bool producer_replaceable(rd_kafka_resp_err_t code) {
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

typedef enum { TXN_BEGIN, TXN_SEND_OFFSETS, TXN_COMMIT, TXN_ABORT } txn_step_t;

static const char *const txn_step_names[] = {"begin_transaction", "send_offsets_to_transaction",
                                             "commit_transaction", "abort_transaction"};

/* One transactional call, retried while librdkafka says retriable. On failure *why says what and
 * *fenced whether a newer instance took over. */
static tally_txn_class_t txn_run(tally_engine_t *eng, txn_step_t step, const rd_kafka_topic_partition_list_t *offsets,
                                 char *why, size_t why_size, bool *fenced) {
    int timeout = eng->conf.transaction_timeout_ms;
    for (int attempt = 1;; attempt++) {
        rd_kafka_error_t *e = NULL;
        switch (step) {
        case TXN_BEGIN: e = rd_kafka_begin_transaction(eng->producer); break;
        case TXN_SEND_OFFSETS: e = rd_kafka_send_offsets_to_transaction(eng->producer, offsets, eng->cgmd, timeout); break;
        case TXN_COMMIT: e = rd_kafka_commit_transaction(eng->producer, timeout); break;
        case TXN_ABORT: e = rd_kafka_abort_transaction(eng->producer, timeout); break;
        }
        tally_txn_class_t cls = tally_txn_classify(e);
        if (cls == TALLY_TXN_OK) return cls;
        *fenced = tally_txn_is_fenced(e);
        eng->txn_err_code = rd_kafka_error_code(e);
        if (*fenced)
            snprintf(why, why_size, "fenced: another tally instance with application.id=%s took over, or the "
                     "broker aborted a transaction that outlived transaction.timeout.ms=%d (%s: %s)",
                     eng->conf.application_id, eng->conf.transaction_timeout_ms, txn_step_names[step],
                     rd_kafka_error_string(e));
        else
            snprintf(why, why_size, "%s failed (%s): %s", txn_step_names[step], tally_txn_class_name(cls),
                     rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        if (cls != TALLY_TXN_RETRIABLE || attempt >= 10) return cls == TALLY_TXN_RETRIABLE ? TALLY_TXN_ABORTABLE : cls;
        tally_warn("%s; retrying (%d)", why, attempt);
    }
}

static bool txn_begin(tally_engine_t *eng) {
    if (!eng->producer || eng->conf.guarantee != TALLY_EXACTLY_ONCE || eng->txn_open) return true;
    char why[1024];
    bool fenced = false;
    if (txn_run(eng, TXN_BEGIN, NULL, why, sizeof(why), &fenced) != TALLY_TXN_OK) {
        fail(eng, fenced ? TALLY_EXIT_FENCED : TALLY_EXIT_ERROR, "%s", why);
        return false;
    }
    eng->txn_open = true;
    return true;
}

static void print_console(tally_engine_t *eng) {
    fprintf(stderr, "-------------------------------------------\nBatch: %" PRIu64
                    "\n-------------------------------------------\n", eng->epoch);
    char *json = NULL;
    size_t cap = 0;
    for (int w = 0; w < eng->nworkers; w++) {
        const uint8_t *word;
        uint32_t len;
        int64_t count;
        for (size_t off = 0; tally_out_next(&eng->workers[w], &off, &word, &len, &count);) {
            if (TALLY_JSON_MAX(len) > cap) {
                cap = TALLY_JSON_MAX(len);
                char *j = realloc(json, cap);
                if (!j) break;
                json = j;
            }
            size_t jl = tally_json_word_count(json, word, len, count);
            fwrite(json, 1, jl, stdout);
            fputc('\n', stdout);
        }
    }
    free(json);
    fflush(stdout);
}

static void log_dropped(tally_engine_t *eng) {
    static _Thread_local uint64_t logged;
    uint64_t total = atomic_load(&eng->dropped_total);
    if (total != logged) {
        tally_warn("%" PRIu64 " words longer than max.word.bytes=%d were not counted (%" PRIu64 " since start)",
                   total - logged, eng->conf.max_word_bytes, total);
        logged = total;
    }
}

/* Every worker finished the epoch in flight: make it durable, Kafka first, then the state. */
static void epoch_finish(tally_engine_t *eng) {
    eng->epoch_in_flight = false;
    double t_process = now_s() - eng->epoch_t0;
    size_t keys = 0;
    for (int w = 0; w < eng->nworkers; w++) keys += eng->workers[w].out_n;
    bool moved = false;
    for (int i = 0; i < eng->nparts; i++) moved = moved || eng->parts[i].cut != eng->parts[i].committed;
    log_dropped(eng);
    if (!moved && keys == 0) return;

    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(eng->nparts);
    for (int i = 0; i < eng->nparts; i++)
        rd_kafka_topic_partition_list_add(offsets, eng->parts[i].topic, eng->parts[i].partition)->offset =
            eng->parts[i].cut;

    /* The state write must not fail after Kafka committed: RocksDB 7.8 aborts the process on a full
     * disk. So check the room first, and stop before this epoch's Kafka commit when it is short. */
    size_t out_bytes = 0;
    for (int w = 0; w < eng->nworkers; w++) out_bytes += eng->workers[w].out_len;
    int64_t room = tally_state_free_bytes(eng->state), need = (int64_t)(2 * out_bytes) + (16 << 20);
    if (room >= 0 && room < need) {
        rd_kafka_topic_partition_list_destroy(offsets);
        fail(eng, TALLY_EXIT_ERROR, "state.dir %s has %" PRId64 " MB free, less than the %" PRId64 " MB epoch %" PRIu64
             " needs: stopping before committing it (free space, then restart: nothing is lost)",
             eng->conf.state_dir, room >> 20, (need + (1 << 20) - 1) >> 20, eng->epoch);
        return;
    }

    double t0 = now_s();
    char why[1024];
    bool fenced = false;
    if (eng->producer && eng->conf.guarantee == TALLY_EXACTLY_ONCE) {
        rd_kafka_consumer_group_metadata_t *cgmd = rd_kafka_consumer_group_metadata(eng->consumer);
        eng->cgmd = cgmd;
        tally_crashpoint("after_produce", eng->epoch);
        tally_txn_class_t cls = txn_run(eng, TXN_SEND_OFFSETS, offsets, why, sizeof(why), &fenced);
        tally_crashpoint("after_send_offsets", eng->epoch);
        tally_crashpoint_soon("during_commit", eng->epoch, 2000);
        if (cls == TALLY_TXN_OK) cls = txn_run(eng, TXN_COMMIT, NULL, why, sizeof(why), &fenced);
        eng->cgmd = NULL;
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        if (cls != TALLY_TXN_OK) {
            rd_kafka_topic_partition_list_destroy(offsets);
            if (cls == TALLY_TXN_ABORTABLE) rewind_to_commit(eng, why);
            else if (producer_replaceable(eng->txn_err_code)) replace_producer(eng, why);
            else fail(eng, fenced ? TALLY_EXIT_FENCED : TALLY_EXIT_ERROR, "%s", why);
            return;
        }
        eng->txn_open = false;
    } else {
        if (eng->producer) {
            rd_kafka_resp_err_t fe = rd_kafka_flush(eng->producer, eng->conf.transaction_timeout_ms);
            if (fe || atomic_exchange(&eng->dr_errors, 0)) {
                rd_kafka_topic_partition_list_destroy(offsets);
                rewind_to_commit(eng, fe ? rd_kafka_err2str(fe) : "output records were not delivered");
                return;
            }
        } else {
            print_console(eng);
        }
        rd_kafka_resp_err_t ce = rd_kafka_commit(eng->consumer, offsets, 0);
        if (ce) {
            rd_kafka_topic_partition_list_destroy(offsets);
            rewind_to_commit(eng, rd_kafka_err2str(ce));
            return;
        }
    }
    rd_kafka_topic_partition_list_destroy(offsets);
    double t_commit = now_s() - t0;
    tally_crashpoint("after_commit", eng->epoch);

    /* Kafka holds the epoch now; the state follows in one atomic write. Dying before it is safe:
     * at start-up the gap between the two is replayed without output. */
    t0 = now_s();
    tally_state_batch_t *b = tally_state_batch_new();
    for (int w = 0; w < eng->nworkers; w++) {
        const uint8_t *word;
        uint32_t len;
        int64_t count;
        for (size_t off = 0; tally_out_next(&eng->workers[w], &off, &word, &len, &count);)
            tally_state_batch_put_count(b, word, len, count);
    }
    for (int i = 0; i < eng->nparts; i++)
        tally_state_batch_put_offset(b, eng->parts[i].topic, eng->parts[i].partition, eng->parts[i].cut);
    tally_state_batch_put_epoch(b, eng->epoch);
    char err[512];
    tally_crashpoint_soon("mid_state_write", eng->epoch, 0);
    int r = tally_state_batch_write(eng->state, b, err, sizeof(err));
    tally_state_batch_destroy(b);
    if (r) {
        fail(eng, TALLY_EXIT_ERROR, "%s; epoch %" PRIu64 " is committed in Kafka and will be replayed into the "
             "state at the next start", err, eng->epoch);
        return;
    }
    tally_obs_epoch_t ep = {.keys = keys, .process_s = t_process, .commit_s = t_commit, .state_s = now_s() - t0};
    for (int i = 0; i < eng->nparts; i++) {
        ep.lines += atomic_exchange(&eng->parts[i].lines, 0);
        ep.words += atomic_exchange(&eng->parts[i].words, 0);
        ep.dropped += atomic_exchange(&eng->parts[i].dropped, 0);
    }
    eng->committed_epoch = eng->epoch;
    eng->commits++;
    /* Logs "epoch N committed: ..." with the progress record; reads committed..cut and the out lists. */
    tally_obs_epoch(eng, &ep);
    for (int i = 0; i < eng->nparts; i++) eng->parts[i].committed = eng->parts[i].cut;
    for (int w = 0; w < eng->nworkers; w++) eng->workers[w].out_len = eng->workers[w].out_n = 0;
    tally_obs_publish(eng);
}

/* Aligns every partition and worker on a last epoch, commits it, and joins the threads. */
static void pipeline_drain(tally_engine_t *eng) {
    if (!eng->pipeline_up) return;
    if (eng->epoch_in_flight) {
        if (!epoch_wait(eng)) return;
        epoch_finish(eng);
        if (eng->state_ == ENG_STOPPED) return;
    }
    if (!txn_begin(eng)) return;
    epoch_start(eng, true);
    if (!epoch_wait(eng)) return;
    epoch_finish(eng);
    if (eng->state_ == ENG_STOPPED) return;
    pipeline_join(eng);
}

static void preload_one(const uint8_t *word, size_t len, int64_t count, void *opaque) {
    tally_engine_t *eng = opaque;
    uint64_t h = XXH3_64bits(word, len);
    tally_wordtab_insert(eng->workers[tally_route(h, eng->nworkers)].tab, h, word, (uint32_t)len, count);
}

/* complete mode emits every key at every trigger, so the whole state lives in the tables. */
static int preload(tally_engine_t *eng) {
    if (eng->conf.output_mode != TALLY_OUTPUT_COMPLETE) return 0;
    return tally_state_foreach_count(eng->state, preload_one, eng);
}

int tally_engine_reload_tables(tally_engine_t *eng) {
    clear_tables(eng);
    return preload(eng);
}

/* The running partitions with their committed offsets, less those in `minus`. */
static rd_kafka_topic_partition_list_t *committed_list(tally_engine_t *eng, const rd_kafka_topic_partition_list_t *minus) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(eng->nparts + 1);
    for (int i = 0; i < eng->nparts; i++) {
        tally_part_t *p = &eng->parts[i];
        if (minus && rd_kafka_topic_partition_list_find(minus, p->topic, p->partition)) continue;
        rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = p->committed;
    }
    return l;
}

/* Moves the fetch positions back to the list's offsets; records fetched beyond them are dropped by
 * librdkafka's version barrier, so partition threads see the committed offset next. */
static int seek_to(tally_engine_t *eng, rd_kafka_topic_partition_list_t *list) {
    if (list->cnt == 0) return 0;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(eng->consumer, list, 30000);
    if (e) {
        tally_err("seek failed: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return TALLY_EKAFKA;
    }
    for (int i = 0; i < list->cnt; i++)
        if (list->elems[i].err) {
            tally_err("seek of %s[%d] failed: %s", list->elems[i].topic, (int)list->elems[i].partition,
                      rd_kafka_err2str(list->elems[i].err));
            return TALLY_EKAFKA;
        }
    return 0;
}

static int make_producer(tally_engine_t *eng);

/* The producer failed for good without being fenced, e.g. the coordinator aborted a transaction that
 * outlived transaction.timeout.ms while the broker was away, which librdkafka 2.0.2 reports as fatal.
 * A new producer with the same transactional.id bumps the epoch; nothing uncommitted survives. Only
 * a few replacements in a row: a producer that fails again at once is a real problem. */
static int new_producer(tally_engine_t *eng, const char *why) {
    double now = now_s();
    if (now - eng->producer_reset_at > 60) eng->producer_resets = 0;
    if (++eng->producer_resets > 3) {
        tally_err("the producer failed %d times within a minute; giving up", eng->producer_resets - 1);
        return TALLY_EKAFKA;
    }
    eng->producer_reset_at = now;
    tally_warn("replacing the producer after: %s", why);
    for (int w = 0; w < eng->nworkers; w++)
        if (eng->workers[w].out_topic) {
            rd_kafka_topic_destroy(eng->workers[w].out_topic);
            eng->workers[w].out_topic = NULL;
        }
    rd_kafka_purge(eng->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(eng->producer);
    eng->producer = NULL;
    eng->txn_open = false;
    return make_producer(eng);
}

static void rewind_to_commit(tally_engine_t *eng, const char *why);

static void replace_producer(tally_engine_t *eng, const char *why) {
    pipeline_kill(eng);
    eng->txn_open = false;
    if (new_producer(eng, why) != 0) {
        fail(eng, TALLY_EXIT_ERROR, "%s", why);
        return;
    }
    rewind_to_commit(eng, why);
}

/* Abortable failure: drop everything since the last commit and read again from its offsets. */
static void rewind_to_commit(tally_engine_t *eng, const char *why) {
    tally_warn("rolling back to the last committed epoch %" PRIu64 ": %s", eng->committed_epoch, why);
    pipeline_kill(eng);
    if (eng->txn_open) {
        char w2[1024];
        bool fenced = false;
        tally_txn_class_t cls = txn_run(eng, TXN_ABORT, NULL, w2, sizeof(w2), &fenced);
        eng->txn_open = false;
        if (cls != TALLY_TXN_OK && (!producer_replaceable(eng->txn_err_code) || new_producer(eng, w2) != 0)) {
            fail(eng, fenced ? TALLY_EXIT_FENCED : TALLY_EXIT_ERROR, "%s", w2);
            return;
        }
    }
    eng->aborts++;
    eng->epoch = eng->committed_epoch;
    for (int w = 0; w < eng->nworkers; w++) eng->workers[w].out_len = eng->workers[w].out_n = 0;
    if (tally_engine_reload_tables(eng)) {
        fail(eng, TALLY_EXIT_ERROR, "cannot reload the state after a rollback");
        return;
    }
    rd_kafka_topic_partition_list_t *list = committed_list(eng, NULL);
    pipeline_free_parts(eng);
    int r = pipeline_prepare(eng, list);
    if (!r) r = seek_to(eng, list);
    if (!r) r = pipeline_start(eng);
    rd_kafka_topic_partition_list_destroy(list);
    if (r) fail(eng, TALLY_EXIT_ERROR, "cannot restart after a rollback: %s", tally_err_str(r));
}

static void log_partitions(const char *what, const rd_kafka_topic_partition_list_t *l) {
    char buf[1024];
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < l->cnt && n < sizeof(buf) - 64; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s[%d]", i ? " " : "", l->elems[i].topic,
                              (int)l->elems[i].partition);
    tally_info("%s %d partition(s): %s", what, l->cnt, buf);
}

/* Drops everything since the last commit: a lost assignment may belong to another member already. */
static void drop_uncommitted(tally_engine_t *eng) {
    pipeline_kill(eng);
    if (eng->txn_open) {
        char why[1024];
        bool fenced = false;
        if (txn_run(eng, TXN_ABORT, NULL, why, sizeof(why), &fenced) != TALLY_TXN_OK) tally_warn("%s", why);
        eng->txn_open = false;
    }
    tally_engine_reload_tables(eng);
    eng->epoch = eng->committed_epoch;
}

/* Assignment changes are applied between epochs: the pipeline commits the epoch in hand and stops,
 * the partition set changes, and it starts again. Under the cooperative protocol partitions that
 * stay keep their fetch queues (records past the cut wait there); after a loss they are sought back
 * to their committed offsets. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
    tally_engine_t *eng = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    bool assign = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    bool lost = !assign && rd_kafka_assignment_lost(rk);
    log_partitions(assign ? "assigned" : lost ? "lost" : "revoked", parts);

    if (eng->pipeline_up) {
        if (lost) drop_uncommitted(eng);
        else pipeline_drain(eng);
        if (eng->pipeline_up) pipeline_kill(eng);
    }
    if (eng->state_ == ENG_STOPPED) {
        if (cooperative) {
            rd_kafka_error_t *e = assign ? NULL : rd_kafka_incremental_unassign(rk, parts);
            if (e) rd_kafka_error_destroy(e);
        } else rd_kafka_assign(rk, NULL);
        return;
    }
    /* Partitions that stay, at their committed offsets, and (on assign) the new ones after them. */
    rd_kafka_topic_partition_list_t *keep = committed_list(eng, assign ? NULL : parts);
    rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_copy(keep);
    int r = 0;
    if (assign && eng->state_ < ENG_STOPPING) {
        r = tally_recover_assignment(eng, parts);
        for (int i = 0; !r && i < parts->cnt; i++)
            rd_kafka_topic_partition_list_add(all, parts->elems[i].topic, parts->elems[i].partition)->offset =
                parts->elems[i].offset;
    }
    pipeline_free_parts(eng);
    if (!r && eng->state_ < ENG_STOPPING) r = pipeline_prepare(eng, all);
    if (!r) {
        rd_kafka_error_t *e = NULL;
        rd_kafka_resp_err_t ee = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (cooperative) e = assign ? rd_kafka_incremental_assign(rk, parts) : rd_kafka_incremental_unassign(rk, parts);
        else ee = rd_kafka_assign(rk, assign ? all : NULL);
        if (e || ee) {
            tally_err("%s failed: %s", assign ? "assign" : "unassign", e ? rd_kafka_error_string(e) : rd_kafka_err2str(ee));
            if (e) rd_kafka_error_destroy(e);
            r = TALLY_EKAFKA;
        }
    }
    /* Partitions that stay must go on exactly at their cut. librdkafka pauses and resumes them around
     * a rebalance and may resume fetching past records that were queued but never read (seen in
     * tests/test_scale.c with 2.0.2), so the position is set explicitly. */
    if (!r && cooperative && eng->state_ < ENG_STOPPING) r = seek_to(eng, keep);
    if (!r && eng->state_ < ENG_STOPPING && eng->nparts > 0) r = pipeline_start(eng);
    rd_kafka_topic_partition_list_destroy(keep);
    rd_kafka_topic_partition_list_destroy(all);
    if (r) {
        char msg[512];
        int status = take_error(eng, msg, sizeof(msg));
        fail(eng, status ? status : TALLY_EXIT_ERROR, "%s", *msg ? msg : tally_err_str(r));
        if (!cooperative) rd_kafka_assign(rk, NULL);
    }
}

/* ---- the loop ---- */

static void shutdown_engine(tally_engine_t *eng) {
    if (eng->state_ >= ENG_STOPPING) return;
    set_state(eng, ENG_STOPPING);
    tally_info("stopping: committing the work in hand");
    pipeline_drain(eng);
    if (eng->state_ == ENG_STOPPED) return;
    uv_timer_stop(&eng->trigger_timer);
    rd_kafka_consumer_close(eng->consumer);
    if (eng->txn_open) {
        char why[1024];
        bool fenced = false;
        if (txn_run(eng, TXN_ABORT, NULL, why, sizeof(why), &fenced) != TALLY_TXN_OK) tally_warn("%s", why);
        eng->txn_open = false;
    }
    set_state(eng, ENG_STOPPED);
    uv_stop(&eng->loop);
}

static void on_trigger(uv_timer_t *t);

static void on_wake(uv_async_t *h) {
    tally_engine_t *eng = h->data;
    if (eng->state_ == ENG_STOPPED) return;
    char msg[512];
    int status = take_error(eng, msg, sizeof(msg));
    if (status) {
        fail(eng, status, "%s", msg);
        return;
    }
    if (eng->epoch_in_flight && epoch_all_done(eng)) epoch_finish(eng);
    if (atomic_load(&eng->stop_requested) && eng->state_ == ENG_RUNNING) shutdown_engine(eng);
    else if (!eng->epoch_in_flight && atomic_exchange(&eng->epoch_wanted, false)) on_trigger(&eng->trigger_timer);
}

static void on_trigger(uv_timer_t *t) {
    tally_engine_t *eng = t->data;
    if (eng->state_ != ENG_RUNNING || !eng->pipeline_up || eng->epoch_in_flight || !any_progress(eng)) return;
    if (!txn_begin(eng)) return;
    epoch_start(eng, false);
}

static void on_poll(uv_timer_t *t) {
    tally_engine_t *eng = t->data;
    if (eng->state_ == ENG_STOPPED) return;
    /* The consumer queue carries only group events and errors: records go to partition queues. */
    rd_kafka_message_t *m;
    while (eng->state_ != ENG_STOPPED && (m = rd_kafka_consumer_poll(eng->consumer, 0))) {
        if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
            fail(eng, TALLY_EXIT_ERROR, "input topic %s does not exist on %s",
                 m->rkt ? rd_kafka_topic_name(m->rkt) : "?", eng->conf.bootstrap_servers);
        else if (m->err) tally_warn("consumer: %s", rd_kafka_message_errstr(m));
        else
            fail(eng, TALLY_EXIT_ERROR, "internal error: a record of %s[%d] reached the consumer queue",
                 rd_kafka_topic_name(m->rkt), (int)m->partition);
        rd_kafka_message_destroy(m);
    }
    if (eng->producer) rd_kafka_poll(eng->producer, 0);
}

static void on_signal(uv_signal_t *s, int signum) {
    tally_engine_t *eng = s->data;
    tally_info("received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    if (eng->state_ == ENG_STOPPING) {
        tally_warn("second signal: exiting without committing the work in hand");
        _exit(TALLY_EXIT_ERROR);
    }
    tally_engine_stop(eng);
}

void tally_engine_stop(tally_engine_t *eng) {
    atomic_store(&eng->stop_requested, true);
    uv_async_send(&eng->wake);
}

/* ---- set-up ---- */

static int ensure_topic(tally_engine_t *eng, rd_kafka_t *rk, const char *topic, const char *key) {
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    /* Up to 30 s in short waits, serving the error callback between them: a refused login or TLS
     * handshake raises there (kafka_error_cb) and ends the start-up now, not after 30 s of retries. */
    rd_kafka_resp_err_t e;
    double deadline = now_s() + 30;
    do {
        e = rd_kafka_metadata(rk, 0, t, &md, 1000);
        if (e) rd_kafka_poll(rk, 100);
    } while (e && !pending_error(eng) && now_s() < deadline);
    rd_kafka_topic_destroy(t);
    if (e) {
        char why[512];
        take_error(eng, why, sizeof(why));
        tally_err("cannot read metadata of %s=%s from %s: %s", key, topic, eng->conf.bootstrap_servers,
                  *why ? why : rd_kafka_err2str(e));
        return TALLY_EKAFKA;
    }
    e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    rd_kafka_metadata_destroy(md);
    if (e) {
        tally_err("%s=%s: %s on %s (create it first)", key, topic, rd_kafka_err2str(e), eng->conf.bootstrap_servers);
        return TALLY_EKAFKA;
    }
    return 0;
}

static int make_producer(tally_engine_t *eng) {
    eng->producer = NULL;
    char errstr[512], buf[32];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    int r = 0;
    /* Java's default partitioner, so Java consumers and Kafka Streams agree on where a word lives. */
    if (!r) r = conf_set(c, "partitioner", "murmur2_random", errstr, sizeof(errstr));
    if (!r) r = conf_set(c, "enable.idempotence", "true", errstr, sizeof(errstr));
    if (!r) r = conf_set(c, "linger.ms", "5", errstr, sizeof(errstr));
    /* Bounds what an epoch holds in the producer (an early trigger keeps epochs near this size). */
    if (!r) r = conf_set(c, "queue.buffering.max.messages", "200000", errstr, sizeof(errstr));
    if (!r) r = conf_set(c, "queue.buffering.max.kbytes", "65536", errstr, sizeof(errstr));
    snprintf(buf, sizeof(buf), "%d", eng->conf.transaction_timeout_ms);
    if (!r && eng->conf.guarantee == TALLY_EXACTLY_ONCE) {
        r = conf_set(c, "transactional.id", eng->txn_id, errstr, sizeof(errstr));
        if (!r) r = conf_set(c, "transaction.timeout.ms", buf, errstr, sizeof(errstr));
    }
    /* kafka.* wins over the defaults above (tuning), as for the consumer. */
    if (!r) r = tally_engine_kafka_conf(eng, c, errstr, sizeof(errstr));
    if (r) {
        rd_kafka_conf_destroy(c);
        tally_err("%s", errstr);
        return r;
    }
    if (eng->conf.guarantee == TALLY_AT_LEAST_ONCE) rd_kafka_conf_set_dr_msg_cb(c, dr_msg_cb);
    tally_obs_kafka_conf(eng, c);
    rd_kafka_conf_set_error_cb(c, kafka_error_cb);
    rd_kafka_conf_set_opaque(c, eng);
    eng->producer = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof(errstr));
    if (!eng->producer) {
        tally_err("cannot create the producer: %s", errstr);
        return TALLY_EKAFKA;
    }
    if ((r = ensure_topic(eng, eng->producer, eng->conf.output_topic, "output.topic"))) return r;
    if (eng->conf.guarantee == TALLY_EXACTLY_ONCE) {
        /* First: fences an older instance and settles its open transaction (DESIGN: start-up order). */
        rd_kafka_error_t *e = rd_kafka_init_transactions(eng->producer, eng->conf.transaction_timeout_ms);
        if (e) {
            tally_err("cannot initialise transactions (transactional.id=%s): %s", eng->txn_id,
                      rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            return TALLY_EKAFKA;
        }
    }
    for (int w = 0; w < eng->nworkers; w++)
        eng->workers[w].out_topic = rd_kafka_topic_new(eng->producer, eng->conf.output_topic, NULL);
    return 0;
}

static int make_consumer(tally_engine_t *eng) {
    char errstr[512], buf[32];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    int r = 0;
    snprintf(buf, sizeof(buf), "%d", eng->conf.metadata_refresh_ms);
    const char *const kv[][2] = {
        {"group.id", eng->conf.application_id},
        /* Static membership: one instance per application.id, so a restarted (or taking-over)
         * instance replaces the old member at once instead of waiting out its session. */
        {"group.instance.id", eng->txn_id},
        {"session.timeout.ms", "10000"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"isolation.level", "read_committed"},
        /* Start positions are ours (state, group offsets, starting.offsets); never a silent reset. */
        {"auto.offset.reset", "error"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        /* librdkafka 2.0.2 stops fetching a partition whose local queue passed these bounds and only
         * looks again about a second later (2.1 made that wait configurable): with the defaults
         * a partition thread sat idle most of the time (270k lines/s on one partition; with
         * these, 970k). The price is up to 64 MB of prefetched input per partition. */
        {"queued.min.messages", "1000000"},
        {"queued.max.messages.kbytes", "65536"},
        {"topic.metadata.refresh.interval.ms", buf},
    };
    for (size_t i = 0; !r && i < sizeof(kv) / sizeof(kv[0]); i++) r = conf_set(c, kv[i][0], kv[i][1], errstr, sizeof(errstr));
    /* kafka.* wins over our defaults where the user set the same key. */
    if (!r) r = tally_engine_kafka_conf(eng, c, errstr, sizeof(errstr));
    if (r) {
        rd_kafka_conf_destroy(c);
        tally_err("%s", errstr);
        return r;
    }
    rd_kafka_conf_set_rebalance_cb(c, rebalance_cb);
    tally_obs_kafka_conf(eng, c);
    rd_kafka_conf_set_error_cb(c, kafka_error_cb);
    rd_kafka_conf_set_opaque(c, eng);
    eng->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof(errstr));
    if (!eng->consumer) {
        tally_err("cannot create the consumer: %s", errstr);
        return TALLY_EKAFKA;
    }
    /* Before the main queue is forwarded, ensure_topic's rd_kafka_poll() serves the error callback. */
    for (int i = 0; i < eng->conf.input_topic_cnt; i++)
        if ((r = ensure_topic(eng, eng->consumer, eng->conf.input_topics[i], "input.topic"))) return r;
    rd_kafka_poll_set_consumer(eng->consumer);
    return 0;
}

static int mkdirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

static int open_state(tally_engine_t *eng) {
    const char *dir = eng->conf.state_dir;
    if (mkdirs(dir)) {
        tally_err("cannot create state.dir %s: %s", dir, strerror(errno));
        return TALLY_ESTATE;
    }
    char err[1024];
    for (int waited = 0;; waited++) {
        bool locked = false;
        if (tally_state_open(&eng->state, dir, &locked, err, sizeof(err)) == 0) break;
        if (!locked || waited >= 120 || atomic_load(&eng->stop_requested)) {
            tally_err("%s", err);
            return TALLY_ESTATE;
        }
        /* A fenced predecessor holds it until its next commit fails and it exits. */
        if (waited % 10 == 0)
            tally_info("state.dir %s is locked by another tally process; waiting for it to exit", dir);
        sleep(1);
    }
    eng->epoch = eng->committed_epoch = tally_state_epoch(eng->state);
    tally_info("state %s: %s, last committed epoch %" PRIu64, dir,
               tally_state_is_fresh(eng->state) ? "new" : "recovered", eng->epoch);
    return preload(eng);
}

static int strdup_into(char **dst, const char *src) {
    if (!src) return 0;
    *dst = strdup(src);
    return *dst ? 0 : TALLY_ENOMEM;
}

int tally_engine_new(tally_engine_t **out, const tally_config_t *conf, char *errstr, size_t errstr_size) {
    tally_engine_t *eng = calloc(1, sizeof(*eng));
    if (!eng) return TALLY_ENOMEM;
    /* A private deep copy: the caller's configuration may go away. */
    tally_config_t *c = &eng->conf;
    *c = *conf;
    c->bootstrap_servers = c->application_id = c->output_topic = c->state_dir = c->http_listen = c->progress_topic = NULL;
    c->input_topics = NULL;
    c->kafka = NULL;
    int r = strdup_into(&c->bootstrap_servers, conf->bootstrap_servers);
    r |= strdup_into(&c->application_id, conf->application_id);
    r |= strdup_into(&c->output_topic, conf->output_topic);
    r |= strdup_into(&c->http_listen, conf->http_listen);
    r |= strdup_into(&c->progress_topic, conf->progress_topic);
    if (conf->state_dir) r |= strdup_into(&c->state_dir, conf->state_dir);
    else if (conf->application_id && (c->state_dir = malloc(strlen(conf->application_id) + 16)))
        sprintf(c->state_dir, "./state/%s", conf->application_id);
    c->input_topics = calloc((size_t)conf->input_topic_cnt + 1, sizeof(char *));
    c->kafka = calloc((size_t)conf->kafka_cnt + 1, sizeof(tally_kv_t));
    if (!c->input_topics || !c->kafka || !c->state_dir) r = TALLY_ENOMEM;
    for (int i = 0; !r && i < conf->input_topic_cnt; i++) r = strdup_into(&c->input_topics[i], conf->input_topics[i]);
    for (int i = 0; !r && i < conf->kafka_cnt; i++) {
        r = strdup_into(&c->kafka[i].key, conf->kafka[i].key);
        if (!r) r = strdup_into(&c->kafka[i].value, conf->kafka[i].value);
    }
    if (r) {
        snprintf(errstr, errstr_size, "out of memory");
        tally_engine_destroy(eng);
        return TALLY_ENOMEM;
    }
    snprintf(eng->txn_id, sizeof(eng->txn_id), "%s-tally", c->application_id);
    tally_crashpoint_init();
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    eng->nworkers = c->workers > 0 ? c->workers : (int)(cores > 0 ? cores : 1);
    eng->workers = calloc((size_t)eng->nworkers, sizeof(*eng->workers));
    if (!eng->workers) {
        tally_engine_destroy(eng);
        return TALLY_ENOMEM;
    }
    for (int w = 0; w < eng->nworkers; w++) {
        tally_worker_t *wk = &eng->workers[w];
        wk->eng = eng;
        wk->idx = w;
        wk->tab = tally_wordtab_new();
        wk->cache_max = c->cache_max_words > 0 ? ((size_t)c->cache_max_words + (size_t)eng->nworkers - 1) / (size_t)eng->nworkers : 0;
        pthread_mutex_init(&wk->mu, NULL);
        pthread_cond_init(&wk->cv, NULL);
        if (!wk->tab) {
            tally_engine_destroy(eng);
            return TALLY_ENOMEM;
        }
    }
    pthread_mutex_init(&eng->ep_mu, NULL);
    pthread_cond_init(&eng->ep_cv, NULL);
    pthread_mutex_init(&eng->err_mu, NULL);
    uv_loop_init(&eng->loop);
    *out = eng;
    return 0;
}

static void close_cb(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

int tally_engine_run(tally_engine_t *eng) {
    tally_log_set_thread("ctl");
    const tally_config_t *c = &eng->conf;
    tally_info("starting: application.id=%s input=%s%s output=%s sink=%s guarantee=%s workers=%d trigger=%d ms",
               c->application_id, c->input_topics[0], c->input_topic_cnt > 1 ? ",..." : "",
               c->output_topic ? c->output_topic : "-", c->sink == TALLY_SINK_KAFKA ? "kafka" : "console",
               c->guarantee == TALLY_EXACTLY_ONCE ? "exactly_once" : "at_least_once", eng->nworkers,
               c->trigger_interval_ms);

    uv_async_init(&eng->loop, &eng->wake, on_wake);
    eng->wake.data = eng;
    uv_timer_init(&eng->loop, &eng->trigger_timer);
    uv_timer_init(&eng->loop, &eng->poll_timer);
    eng->trigger_timer.data = eng->poll_timer.data = eng;
    uv_signal_init(&eng->loop, &eng->sigint);
    uv_signal_init(&eng->loop, &eng->sigterm);
    eng->sigint.data = eng->sigterm.data = eng;
    uv_signal_start(&eng->sigint, on_signal, SIGINT);
    uv_signal_start(&eng->sigterm, on_signal, SIGTERM);
    /* main() blocks them until here; a request that came early is delivered now. Threads started
     * from here on inherit the unblocked mask, which is harmless: the handler only wakes the loop. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);

    int r = tally_obs_start(eng);
    if (!r && c->sink == TALLY_SINK_KAFKA) r = make_producer(eng);
    if (!r) r = open_state(eng);
    if (!r) r = make_consumer(eng);
    if (!r) {
        rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(c->input_topic_cnt);
        for (int i = 0; i < c->input_topic_cnt; i++)
            rd_kafka_topic_partition_list_add(subs, c->input_topics[i], RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(eng->consumer, subs);
        rd_kafka_topic_partition_list_destroy(subs);
        if (e) {
            tally_err("subscribe failed: %s", rd_kafka_err2str(e));
            r = TALLY_EKAFKA;
        }
    }
    if (r || atomic_load(&eng->stop_requested)) {
        eng->exit_status = r ? (pending_error(eng) ? pending_error(eng) : TALLY_EXIT_ERROR) : TALLY_EXIT_OK;
        set_state(eng, ENG_STOPPED);
    } else {
        set_state(eng, ENG_RUNNING);
        uv_timer_start(&eng->trigger_timer, on_trigger, (uint64_t)c->trigger_interval_ms, (uint64_t)c->trigger_interval_ms);
        uv_timer_start(&eng->poll_timer, on_poll, 0, 20);
        uv_run(&eng->loop, UV_RUN_DEFAULT);
    }
    if (eng->pipeline_up) pipeline_kill(eng);
    tally_obs_stop(eng);
    uv_walk(&eng->loop, close_cb, NULL);
    uv_run(&eng->loop, UV_RUN_DEFAULT);
    if (eng->exit_status == TALLY_EXIT_OK) tally_info("stopped cleanly after %" PRIu64 " commits", eng->commits);
    return eng->exit_status;
}

void tally_engine_destroy(tally_engine_t *eng) {
    if (!eng) return;
    if (eng->pipeline_up) pipeline_kill(eng);
    pipeline_free_parts(eng);
    for (int w = 0; eng->workers && w < eng->nworkers; w++) {
        tally_worker_t *wk = &eng->workers[w];
        if (wk->out_topic) rd_kafka_topic_destroy(wk->out_topic);
        tally_wordtab_destroy(wk->tab);
        free(wk->dirty);
        free(wk->out);
        free(wk->blocked);
        pthread_mutex_destroy(&wk->mu);
        pthread_cond_destroy(&wk->cv);
    }
    free(eng->workers);
    if (eng->consumer) {
        if (eng->state_ != ENG_STOPPED || eng->exit_status) rd_kafka_consumer_close(eng->consumer);
        rd_kafka_destroy(eng->consumer);
    }
    if (eng->producer) {
        /* After a fatal error nothing may be flushed: purge what is queued, then destroy. */
        if (eng->exit_status) rd_kafka_purge(eng->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy_flags(eng->producer, eng->exit_status ? RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE : 0);
    }
    /* RocksDB 7.8 aborts the process when closing on a full disk; its WAL holds every write we made,
     * so a store that is short of room is left for the process exit to release. */
    if (eng->state && tally_state_free_bytes(eng->state) >= (16 << 20)) tally_state_close(eng->state);
    else if (eng->state) tally_warn("state.dir is short of room: leaving the store to the process exit");
    tally_obs_destroy(eng);
    uv_loop_close(&eng->loop);
    pthread_mutex_destroy(&eng->ep_mu);
    pthread_cond_destroy(&eng->ep_cv);
    pthread_mutex_destroy(&eng->err_mu);
    tally_config_term(&eng->conf);
    free(eng);
}
