/* SPDX-License-Identifier: MIT */
/* The epoch state machine and the exactly-once protocol (see epoch.h and shared/DESIGN.md):
 *   barrier -> workers produce into the transaction -> send offsets + commit -> one state write. */
#include "epoch.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "tally/clock.h"
#include "tally/crashpoint.h"
#include "tally/engine.h"
#include "tally/err.h"
#include "tally/log.h"

#define FINAL_ATTEMPTS 5 /* final epochs tried before a stop gives up (each after a rollback) */

const char *tally_epoch_state_name(tally_epoch_state_t s) {
    static const char *const names[] = {"IDLE", "BARRIER", "DRAINING", "COMMITTING",
                                        "STORING", "ABORTING", "DRAINED", "FAILED"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

bool tally_epoch_transition_is_valid(tally_epoch_state_t from, tally_epoch_state_t to) {
    switch (to) {
    case TALLY_EPOCH_IDLE:
        return from == TALLY_EPOCH_STORING || from == TALLY_EPOCH_COMMITTING || from == TALLY_EPOCH_ABORTING ||
               from == TALLY_EPOCH_DRAINED;
    case TALLY_EPOCH_BARRIER:
        return from == TALLY_EPOCH_IDLE;
    case TALLY_EPOCH_DRAINING:
        return from == TALLY_EPOCH_IDLE || from == TALLY_EPOCH_ABORTING;
    case TALLY_EPOCH_COMMITTING:
        return from == TALLY_EPOCH_BARRIER || from == TALLY_EPOCH_DRAINING;
    case TALLY_EPOCH_STORING:
        return from == TALLY_EPOCH_COMMITTING;
    case TALLY_EPOCH_ABORTING:
        return from == TALLY_EPOCH_COMMITTING || from == TALLY_EPOCH_IDLE || from == TALLY_EPOCH_BARRIER ||
               from == TALLY_EPOCH_DRAINING;
    case TALLY_EPOCH_DRAINED:
        return from == TALLY_EPOCH_STORING || from == TALLY_EPOCH_COMMITTING || from == TALLY_EPOCH_ABORTING ||
               from == TALLY_EPOCH_IDLE;
    case TALLY_EPOCH_FAILED:
        return from != TALLY_EPOCH_FAILED;
    }
    return false;
}

/* Every change of state goes through here. */
static void set_state(tally_epoch_t *ep, tally_epoch_state_t to) {
    if (ep->st == to) return;
    if (!tally_epoch_transition_is_valid(ep->st, to)) {
        tally_err("internal error: epoch %" PRIu64 " cannot go from %s to %s", ep->epoch,
                  tally_epoch_state_name(ep->st), tally_epoch_state_name(to));
        assert(!"invalid epoch state transition");
    }
    tally_debug("epoch %" PRIu64 ": %s -> %s", ep->epoch, tally_epoch_state_name(ep->st), tally_epoch_state_name(to));
    ep->st = to;
}

void tally_epoch_init(tally_epoch_t *ep, const tally_config_t *conf, tally_pipeline_t *pipe, tally_txn_t *txn,
                      tally_state_t *state, uint64_t committed) {
    tally_evtime_term(&ep->time);
    free(ep->closed.buf);
    free(ep->closing_r);
    *ep = (tally_epoch_t){.st = TALLY_EPOCH_IDLE, .conf = conf, .pipe = pipe, .txn = txn, .state = state,
                          .epoch = committed, .committed = committed};
    int r = tally_evtime_init(&ep->time, conf, state);
    if (r) tally_epoch_fail(ep, TALLY_EXIT_ERROR, "cannot read the watermark from state.dir %s: %s", conf->state_dir,
                            tally_err_str(r));
}

int tally_epoch_start_pipeline(tally_epoch_t *ep) {
    char err[512];
    int r = tally_evtime_start(&ep->time, ep->pipe, ep->state, ep->epoch, err, sizeof(err));
    if (r) {
        tally_err("%s", err);
        return r;
    }
    return tally_pipeline_start(ep->pipe, ep->state, tally_txn_producer(ep->txn), tally_txn_topic(ep->txn),
                                tally_txn_repartition(ep->txn), tally_txn_changelog(ep->txn), ep->epoch);
}

void tally_epoch_term(tally_epoch_t *ep) {
    tally_evtime_term(&ep->time);
    free(ep->closed.buf);
    free(ep->closing_r);
    ep->closing_r = NULL;
    ep->closed = (tally_changes_t){0};
    tally_file_plan_clear(&ep->plan);
    if (ep->final_cut) rd_kafka_topic_partition_list_destroy(ep->final_cut);
    ep->final_cut = NULL;
}

void tally_epoch_fail(tally_epoch_t *ep, int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tally_err("%s", msg);
    if (!ep->status) ep->status = status;
    if (ep->pipe->up) tally_pipeline_kill(ep->pipe);
    set_state(ep, TALLY_EPOCH_FAILED);
}

static bool begin(tally_epoch_t *ep) {
    tally_txn_failure_t f;
    if (tally_txn_begin(ep->txn, &f) == TALLY_TXN_OK) return true;
    tally_epoch_fail(ep, f.status, "%s", f.why);
    return false;
}

static void request(tally_epoch_t *ep, bool final) {
    set_state(ep, final ? TALLY_EPOCH_DRAINING : TALLY_EPOCH_BARRIER);
    ep->epoch++;
    ep->t0 = tally_mono_s();
    tally_evtime_request(&ep->time, ep->pipe);
    tally_pipeline_request(ep->pipe, ep->epoch, final);
}

/* input.path: the next epoch's files, handed to the readers with the request. False: none. */
static bool plan_files(tally_epoch_t *ep) {
    char err[600];
    ep->pipe->plan = NULL;
    tally_file_plan_clear(&ep->plan);
    int r = tally_filesource_plan(ep->source, ep->epoch + 1, ep->pipe->nparts, &ep->plan, err, sizeof(err));
    if (r) {
        tally_epoch_fail(ep, TALLY_EXIT_ERROR, "%s", err);
        return false;
    }
    if (ep->plan.nfiles == 0) return false;
    tally_info("epoch %" PRIu64 ": reading %d new file(s), %" PRId64 " bytes, in %d piece(s)", ep->plan.epoch,
               ep->plan.nfiles, ep->plan.bytes, ep->plan.nchunks);
    ep->pipe->plan = &ep->plan;
    return true;
}

void tally_epoch_trigger(tally_epoch_t *ep) {
    if (ep->st != TALLY_EPOCH_IDLE || !ep->pipe->up) return;
    bool input = ep->source ? plan_files(ep) : tally_pipeline_has_input(ep->pipe);
    if (tally_epoch_failed(ep)) return;
    /* Without input, an epoch still runs to close the windows the watermark passed (Spark's
     * no-data batch): append mode emits them, every mode deletes them. */
    if (!input && !tally_evtime_wants_epoch(&ep->time, ep->pipe, ep->state)) return;
    if (begin(ep)) request(ep, false);
}

/* The input positions the epoch commits: the partitions' cuts, or (input.path) the epoch's files as
 * (path, TALLY_FILESINK_FILE, size). */
static rd_kafka_topic_partition_list_t *positions(tally_epoch_t *ep) {
    if (!ep->source) return tally_pipeline_offsets(ep->pipe, true, NULL);
    bool mine = ep->plan.epoch == ep->epoch;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(mine ? ep->plan.nfiles + 1 : 1);
    for (int i = 0; mine && i < ep->plan.nfiles; i++)
        rd_kafka_topic_partition_list_add(l, ep->plan.files[i].path, TALLY_FILESINK_FILE)->offset = ep->plan.files[i].size;
    return l;
}

/* Back to the last commit: the transaction aborted (or the producer replaced), the tables reloaded
 * from the state, the pipeline restarted at the committed offsets. Draining goes on draining. */
static void rollback(tally_epoch_t *ep, bool draining, const char *why) {
    tally_warn("rolling back to the last committed epoch %" PRIu64 ": %s", ep->committed, why);
    set_state(ep, TALLY_EPOCH_ABORTING);
    tally_pipeline_kill(ep->pipe);
    tally_txn_failure_t f;
    if (tally_txn_abort(ep->txn, &f) != TALLY_TXN_OK) {
        tally_epoch_fail(ep, f.status, "%s", f.why);
        return;
    }
    ep->aborts++;
    ep->epoch = ep->committed;
    if (tally_pipeline_reload(ep->pipe, ep->state)) {
        tally_epoch_fail(ep, TALLY_EXIT_ERROR, "cannot reload the state after a rollback");
        return;
    }
    rd_kafka_topic_partition_list_t *list = tally_pipeline_offsets(ep->pipe, false, NULL);
    tally_pipeline_free_parts(ep->pipe);
    int r = tally_pipeline_prepare(ep->pipe, ep->consumer, list, ep->epoch);
    if (!r) r = tally_pipeline_seek(ep->pipe, list);
    if (!r) r = tally_epoch_start_pipeline(ep);
    rd_kafka_topic_partition_list_destroy(list);
    if (r) {
        tally_epoch_fail(ep, TALLY_EXIT_ERROR, "cannot restart after a rollback: %s", tally_err_str(r));
        return;
    }
    /* Not IDLE while draining: the caller asks for the final epoch again. */
    if (!draining) set_state(ep, TALLY_EPOCH_IDLE);
}

/* The epoch's output, (key, count) by (key, count): the windows closed in append mode, else every
 * worker's changed keys (tally_obs_word_fn's shape, for the sinks and the observer). */
static void each_output(void *opaque, tally_obs_word_fn fn, void *fn_opaque) {
    tally_epoch_t *ep = opaque;
    const uint8_t *word;
    uint32_t len;
    int64_t count;
    if (ep->conf->output_mode == TALLY_OUTPUT_APPEND) {
        for (size_t off = 0; tally_changes_next(&ep->closed, &off, &word, &len, &count);) fn(word, len, count, fn_opaque);
        return;
    }
    for (int w = 0; w < ep->pipe->nworkers; w++)
        for (size_t off = 0; tally_changes_next(&ep->pipe->workers[w].out, &off, &word, &len, &count);)
            fn(word, len, count, fn_opaque);
}

typedef struct {
    const tally_config_t *conf;
    char *buf;
    size_t cap;
} print_ctx_t;

static void print_one(const uint8_t *key, size_t len, int64_t count, void *opaque) {
    print_ctx_t *c = opaque;
    const void *k;
    size_t kl;
    size_t jl = tally_output_record(c->conf, key, (uint32_t)len, count, &c->buf, &c->cap, &k, &kl);
    if (!jl) return;
    fwrite(c->buf, 1, jl, stdout);
    fputc('\n', stdout);
}

static void print_console(tally_epoch_t *ep) {
    fprintf(stderr, "-------------------------------------------\nBatch: %" PRIu64
                    "\n-------------------------------------------\n", ep->epoch);
    print_ctx_t c = {.conf = ep->conf};
    each_output(ep, print_one, &c);
    free(c.buf);
    fflush(stdout);
}

/* append: a closed window's final count, read from the state, into the epoch's output list. */
static void closed_one(const uint8_t *key, size_t len, int64_t count, void *opaque) {
    tally_epoch_t *ep = opaque;
    if (!ep->closed_oom && !tally_changes_add(&ep->closed, key, (uint32_t)len, count)) ep->closed_oom = true;
}

/* distributed: a closed window's key of a partition that closes this epoch. */
static void closed_partition_one(const uint8_t *key, size_t len, int64_t count, void *opaque) {
    tally_epoch_t *ep = opaque;
    int64_t start;
    const uint8_t *word;
    size_t wl;
    if (tally_window_key_decode(key, len, &start, &word, &wl)) return;
    int32_t r = tally_scaleout_partition(XXH3_64bits(key, len), ep->conf->repartition_partitions);
    if (!ep->closing_r[r] || !tally_window_closed(start, ep->conf->window_size_ms, ep->time.wm_r[r])) return;
    closed_one(key, len, count, ep);
}

/* The counts of the state keys [close_begin, close_end) to fn; false (failed) on an error. */
static bool read_closed(tally_epoch_t *ep, tally_obs_word_fn fn) {
    int r = tally_state_foreach_count_range(ep->state, ep->close_begin, sizeof(ep->close_begin), ep->close_end,
                                            sizeof(ep->close_end), fn, ep);
    if (!r && !ep->closed_oom) return true;
    tally_epoch_fail(ep, TALLY_EXIT_ERROR, "%s the closed windows of epoch %" PRIu64,
                     r ? "cannot read from the state" : "out of memory for", ep->epoch);
    return false;
}

/* distributed: each repartition partition that counts here closes the windows its own W_r(e)
 * closed; the state holds other partitions' keys too (of partitions that were here before), so
 * keys are picked one by one, and deleted one by one, with a tombstone in the changelog. */
static bool close_partitions(tally_epoch_t *ep) {
    int nr = ep->time.nr;
    if (!ep->closing_r && !(ep->closing_r = calloc((size_t)nr, 1))) {
        tally_epoch_fail(ep, TALLY_EXIT_ERROR, "out of memory");
        return false;
    }
    memset(ep->closing_r, 0, (size_t)nr);
    int64_t top = TALLY_WATERMARK_NONE;
    for (int i = 0; i < ep->pipe->nparts; i++) {
        tally_part_t *pt = &ep->pipe->parts[i];
        if (!pt->stage2 || atomic_load(&pt->held) || !tally_evtime_closes(&ep->time, pt->partition)) continue;
        ep->closing_r[pt->partition] = 1;
        if (ep->time.wm_r[pt->partition] > top) top = ep->time.wm_r[pt->partition];
    }
    if (top == TALLY_WATERMARK_NONE || !tally_window_key_closed_range(ep->conf->window_size_ms, top, ep->close_begin,
                                                                         ep->close_end))
        return true;
    if (!read_closed(ep, closed_partition_one)) return false;
    ep->closing = true; /* the partitions' passes are recorded even when nothing closed */
    return true;
}

/* The windows W(e) closed: which state keys the epoch deletes and, in append mode, their final
 * counts as its output. They were final before the epoch began: W(e) dropped every record of
 * theirs since, and the state holds everything up to the last epoch. False on a failure. */
static bool close_windows(tally_epoch_t *ep) {
    tally_changes_clear(&ep->closed);
    ep->closed_oom = false;
    ep->closing = false;
    if (ep->time.nr) return close_partitions(ep);
    ep->closing = tally_evtime_closed_range(&ep->time, ep->state, ep->close_begin, ep->close_end);
    if (!ep->closing || ep->conf->output_mode != TALLY_OUTPUT_APPEND) return true;
    return read_closed(ep, closed_one);
}

/* One record into the epoch's transaction from the control thread (value NULL: a tombstone). */
static bool produce_one(tally_epoch_t *ep, rd_kafka_topic_t *rkt, int32_t partition, const void *key, size_t kl,
                        const void *value, size_t vl, tally_txn_failure_t *f) {
    rd_kafka_t *rk = tally_txn_producer(ep->txn);
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                                                    RD_KAFKA_V_KEY(key, kl), RD_KAFKA_V_VALUE((void *)value, vl),
                                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 10);
            continue;
        }
        if (!err) return true;
        f->status = TALLY_EXIT_ERROR;
        snprintf(f->why, sizeof(f->why), "producing to %s in epoch %" PRIu64 " failed: %s", rd_kafka_topic_name(rkt),
                 ep->epoch, rd_kafka_err2str(err));
        return false;
    }
}

/* append with sink=kafka: the closed windows into the epoch's transaction (control thread). */
static bool produce_closed(tally_epoch_t *ep, tally_txn_failure_t *f) {
    print_ctx_t c = {.conf = ep->conf};
    const uint8_t *key;
    uint32_t len;
    int64_t count;
    bool ok = true;
    for (size_t off = 0; ok && tally_changes_next(&ep->closed, &off, &key, &len, &count);) {
        const void *k;
        size_t kl;
        size_t jl = tally_output_record(ep->conf, key, len, count, &c.buf, &c.cap, &k, &kl);
        if (!jl) {
            f->status = TALLY_EXIT_ERROR;
            snprintf(f->why, sizeof(f->why), "out of memory for the closed windows of epoch %" PRIu64, ep->epoch);
            ok = false;
        } else ok = produce_one(ep, tally_txn_topic(ep->txn), RD_KAFKA_PARTITION_UA, k, kl, c.buf, jl, f);
    }
    free(c.buf);
    return ok;
}

/* distributed windows: the closed windows' tombstones and the partitions' new watermarks into the
 * changelog, so the next owner of a partition neither restores a closed window nor counts a record
 * this one dropped. */
static bool produce_changelog(tally_epoch_t *ep, tally_txn_failure_t *f) {
    rd_kafka_topic_t *rkt = tally_txn_changelog(ep->txn);
    int nr = ep->conf->repartition_partitions;
    const uint8_t *key;
    uint32_t len;
    int64_t count;
    bool ok = true;
    for (size_t off = 0; ok && tally_changes_next(&ep->closed, &off, &key, &len, &count);)
        ok = produce_one(ep, rkt, tally_scaleout_partition(XXH3_64bits(key, len), nr), key, len, NULL, 0, f);
    for (int i = 0; ok && i < ep->pipe->nparts; i++) {
        tally_part_t *pt = &ep->pipe->parts[i];
        if (!pt->stage2 || atomic_load(&pt->held) || !tally_evtime_send_due(&ep->time, pt->partition)) continue;
        char v[24];
        int vl = snprintf(v, sizeof(v), "%" PRId64, ep->time.wm_next_r[pt->partition]);
        ok = produce_one(ep, rkt, pt->partition, TALLY_SCALEOUT_WATERMARK_KEY, 1, v, (size_t)vl, f);
    }
    return ok;
}

/* distributed windows: what the committed epoch did for each partition that counts here. */
static void changelog_committed(tally_epoch_t *ep) {
    for (int i = 0; ep->time.nr && i < ep->pipe->nparts; i++) {
        tally_part_t *pt = &ep->pipe->parts[i];
        if (!pt->stage2 || atomic_load(&pt->held)) continue;
        if (ep->closing_r && ep->closing_r[pt->partition]) ep->time.closed_r[pt->partition] = ep->time.wm_r[pt->partition];
        ep->time.sent_r[pt->partition] = ep->time.wm_next_r[pt->partition];
    }
}

static void log_late(tally_epoch_t *ep) {
    uint64_t total = atomic_load(&ep->pipe->late_total);
    if (total != ep->late_logged) {
        tally_warn("%" PRIu64 " (word, window) pairs came after the watermark %" PRId64 " closed their window and were "
                   "not counted (%" PRIu64 " since start)", total - ep->late_logged, ep->time.wm, total);
        ep->late_logged = total;
    }
}

static void log_dropped(tally_epoch_t *ep) {
    uint64_t total = atomic_load(&ep->pipe->dropped_total);
    if (total != ep->dropped_logged) {
        tally_warn("%" PRIu64 " words longer than max.word.bytes=%d were not counted (%" PRIu64 " since start)",
                   total - ep->dropped_logged, ep->conf->max_word_bytes, total);
        ep->dropped_logged = total;
    }
}


/* The file sink's commit: the part file and the log entry with the offsets; then the group's
 * offsets, which only follow (recovery reads the sink's log), so their failure is a warning. */
static tally_txn_class_t commit_files(tally_epoch_t *ep, rd_kafka_topic_partition_list_t *offsets,
                                      tally_txn_failure_t *f) {
    tally_filesink_offset_t *o = calloc((size_t)offsets->cnt + 1, sizeof(*o));
    if (!o) {
        f->status = TALLY_EXIT_ERROR;
        snprintf(f->why, sizeof(f->why), "out of memory for the offsets of epoch %" PRIu64, ep->epoch);
        return TALLY_TXN_FATAL;
    }
    for (int i = 0; i < offsets->cnt; i++)
        o[i] = (tally_filesink_offset_t){.topic = offsets->elems[i].topic, .partition = offsets->elems[i].partition,
                                         .offset = offsets->elems[i].offset};
    char err[600];
    int r = tally_filesink_commit(ep->files, ep->epoch, each_output, ep, o, offsets->cnt, err, sizeof(err));
    free(o);
    if (r) {
        /* Nothing of the epoch is committed; a restart reads it again. A full disk stays full, so no retry. */
        f->status = TALLY_EXIT_ERROR;
        snprintf(f->why, sizeof(f->why), "%s; epoch %" PRIu64 " is not committed, and a restart goes on from epoch %"
                 PRIu64, err, ep->epoch, ep->committed);
        return TALLY_TXN_FATAL;
    }
    tally_crashpoint("after_files_commit", ep->epoch);
    if (!ep->consumer) return TALLY_TXN_OK;
    rd_kafka_resp_err_t ce = rd_kafka_commit(ep->consumer, offsets, 0);
    if (ce) tally_warn("epoch %" PRIu64 " is committed in output.path, but the group's offsets were not updated: %s",
                       ep->epoch, rd_kafka_err2str(ce));
    return TALLY_TXN_OK;
}

/* The output's commit, per sink: one Kafka transaction, the file sink's log, or printed then the
 * offsets (console). */
static tally_txn_class_t commit_output(tally_epoch_t *ep, rd_kafka_topic_partition_list_t *offsets, bool final,
                                       tally_txn_failure_t *f) {
    if (final && tally_crashpoint_fail("final_commit", ep->epoch)) {
        snprintf(f->why, sizeof(f->why), "test fail point fail_final_commit");
        return TALLY_TXN_ABORTABLE;
    }
    if (ep->files) return commit_files(ep, offsets, f);
    if (!tally_txn_producer(ep->txn)) print_console(ep);
    else if (ep->conf->output_mode == TALLY_OUTPUT_APPEND && ep->closed.n && !produce_closed(ep, f))
        return TALLY_TXN_ABORTABLE;
    if (ep->time.nr && !produce_changelog(ep, f)) return TALLY_TXN_ABORTABLE;
    return tally_txn_commit(ep->txn, offsets, ep->consumer, ep->epoch, f);
}

/* Kafka holds the epoch now; the state follows, written by the state's own thread while the next
 * epochs run (tally_state_write_epoch): the workers' change lists and, in one atomic write with
 * them, the rest built here. Dying before it is written is safe: at start-up the gap between the two
 * is replayed without output. */
static int store(tally_epoch_t *ep) {
    tally_state_batch_t *b = tally_state_batch_new();
    if (ep->closing && ep->time.nr) {
        const uint8_t *key;
        uint32_t len;
        int64_t count;
        for (size_t off = 0; tally_changes_next(&ep->closed, &off, &key, &len, &count);)
            tally_state_batch_delete_count(b, key, len);
    } else if (ep->closing)
        tally_state_batch_delete_counts(b, ep->close_begin, sizeof(ep->close_begin), ep->close_end, sizeof(ep->close_end));
    tally_evtime_store(&ep->time, b);
    if (ep->source && ep->plan.epoch == ep->epoch) tally_filesource_store(ep->source, &ep->plan, b);
    for (int i = 0; !ep->source && i < ep->pipe->nparts; i++)
        tally_state_batch_put_offset(b, ep->pipe->parts[i].topic, ep->pipe->parts[i].partition,
                                      atomic_load_explicit(&ep->pipe->parts[i].cut, memory_order_relaxed));
    tally_state_batch_put_epoch(b, ep->epoch);
    char err[512];
    if (ep->trim) {
        /* distributed: where a restore of this state would start reading the changelog. */
        /* Not of partitions still being restored: their state is not at the changelog's end yet. */
        rd_kafka_topic_partition_list_t *parts = tally_pipeline_reading(ep->pipe);
        int r = tally_scaleout_store_positions(ep->consumer, ep->conf, parts, b, err, sizeof(err));
        rd_kafka_topic_partition_list_destroy(parts);
        if (r) {
            tally_state_batch_destroy(b);
            tally_epoch_fail(ep, TALLY_EXIT_ERROR, "%s; epoch %" PRIu64 " is committed in Kafka and the next owner of "
                             "its partitions restores it from the changelog", err, ep->epoch);
            return r;
        }
    }
    tally_crashpoint_soon("mid_state_write", ep->epoch, 0);
    tally_pipeline_t *p = ep->pipe;
    tally_changes_t *lists = calloc((size_t)p->nworkers + 1, sizeof(*lists));
    if (!lists) {
        tally_state_batch_destroy(b);
        tally_epoch_fail(ep, TALLY_EXIT_ERROR, "out of memory storing epoch %" PRIu64 "; it is committed in Kafka and "
                         "will be replayed into the state at the next start", ep->epoch);
        return TALLY_ENOMEM;
    }
    for (int w = 0; w < p->nworkers; w++) lists[w] = p->workers[w].out;
    int r = tally_state_write_epoch(ep->state, ep->epoch, lists, p->nworkers,
                                    ep->conf->output_mode != TALLY_OUTPUT_COMPLETE, b, err, sizeof(err));
    free(lists);
    if (r) {
        tally_epoch_fail(ep, TALLY_EXIT_ERROR, "%s", err);
        return r;
    }
    return 0;
}

/* Every worker finished the epoch in flight: make it durable, Kafka first, then the state. */
static void finish(tally_epoch_t *ep) {
    bool final = ep->st == TALLY_EPOCH_DRAINING;
    set_state(ep, TALLY_EPOCH_COMMITTING);
    double t_process = tally_mono_s() - ep->t0, t_barrier = 0;
    tally_pipeline_t *p = ep->pipe;
    for (int w = 0; w < p->nworkers; w++)
        if (p->workers[w].aligned_s - ep->t0 > t_barrier) t_barrier = p->workers[w].aligned_s - ep->t0;
    if (t_barrier > t_process) t_barrier = t_process;
    /* First: the workers wait for the next epoch's watermark. */
    tally_evtime_barrier(&ep->time, p, ep->epoch);
    if (!close_windows(ep)) return;
    size_t keys = tally_pipeline_out_keys(p);
    /* distributed windows: a pass that closed nothing, or a new watermark, still commits (the
     * changelog must carry the watermark the epoch's decisions were made with). */
    bool moved = ep->closing || tally_evtime_partitions_due(&ep->time, p);
    for (int i = 0; i < p->nparts; i++) moved = moved || atomic_load_explicit(&p->parts[i].cut, memory_order_relaxed) != p->parts[i].committed;
    /* Files that gave no words (empty, binary, vanished) still commit: they are read for good. */
    if (ep->source && ep->plan.epoch == ep->epoch && ep->plan.nfiles > 0) moved = true;
    log_dropped(ep);
    log_late(ep);
    if (!moved && keys == 0) {
        /* Nothing read: no empty transaction (an open one stays open for the next epoch). */
        char err[512];
        if (tally_evtime_store_alone(&ep->time, ep->state, err, sizeof(err))) {
            tally_epoch_fail(ep, TALLY_EXIT_ERROR, "%s", err);
            return;
        }
        set_state(ep, final ? TALLY_EPOCH_DRAINED : TALLY_EPOCH_IDLE);
        return;
    }

    /* The state write must not fail after Kafka committed: RocksDB 7.8 aborts the process on a full
     * disk. So check the room first, and stop before this epoch's Kafka commit when it is short. */
    int64_t room = tally_state_free_bytes(ep->state),
            need = (int64_t)(2 * tally_pipeline_out_bytes(p)) + p->budget.epoch / 2 + (16 << 20); /* + what waits to be written */
    if (room >= 0 && room < need) {
        tally_epoch_fail(ep, TALLY_EXIT_ERROR, "state.dir %s has %" PRId64 " MB free, less than the %" PRId64 " MB epoch %"
                         PRIu64 " needs: stopping before committing it (free space, then restart: nothing is lost)",
                         ep->conf->state_dir, room >> 20, (need + (1 << 20) - 1) >> 20, ep->epoch);
        return;
    }

    /* The state may lag Kafka by many epochs only where the next start can replay them all from
     * the input (Kafka offsets, without event time): files are known only for the last epoch the
     * sink committed, and a replay over several epochs would apply one watermark to all of them. */
    char err[512];
    if ((ep->source || ep->time.on) && tally_state_sync(ep->state, err, sizeof(err))) {
        tally_epoch_fail(ep, TALLY_EXIT_ERROR, "%s", err);
        return;
    }

    double t0 = tally_mono_s();
    rd_kafka_topic_partition_list_t *offsets = positions(ep);
    tally_txn_failure_t f;
    tally_txn_class_t cls;
    /* A record the transaction refused: never commit the epoch without it. */
    if (atomic_exchange(&p->produce_failed, false)) {
        snprintf(f.why, sizeof(f.why), "a record of epoch %" PRIu64 " was refused by the failed transaction", ep->epoch);
        cls = TALLY_TXN_ABORTABLE;
    } else cls = commit_output(ep, offsets, final, &f);
    if (cls == TALLY_TXN_ABORTABLE) {
        if (final && !ep->source) {
            if (ep->final_cut) rd_kafka_topic_partition_list_destroy(ep->final_cut);
            ep->final_cut = offsets; /* the retry covers at least this */
        } else {
            rd_kafka_topic_partition_list_destroy(offsets);
        }
        rollback(ep, final, f.why);
        return;
    }
    rd_kafka_topic_partition_list_destroy(offsets);
    if (cls != TALLY_TXN_OK) {
        tally_epoch_fail(ep, f.status, "%s", f.why);
        return;
    }
    double t_commit = tally_mono_s() - t0;
    tally_crashpoint("after_commit", ep->epoch);

    set_state(ep, TALLY_EPOCH_STORING);
    t0 = tally_mono_s();
    if (store(ep)) return;
    uint64_t late = atomic_load(&p->late_total);
    tally_obs_epoch_t rec = {.epoch = ep->epoch, .keys = ep->conf->output_mode == TALLY_OUTPUT_APPEND ? ep->closed.n : keys,
                             .process_s = t_process, .commit_s = t_commit, .state_s = tally_mono_s() - t0,
                             .barrier_s = t_barrier, .produce_s = t_process - t_barrier,
                             .each_change = each_output, .each_opaque = ep, .windowed = ep->time.on,
                             .late = late - ep->late_committed, .watermark = ep->time.wm};
    ep->late_committed = late;
    changelog_committed(ep);
    tally_evtime_committed(&ep->time);
    for (int i = 0; i < p->nparts; i++) {
        rec.lines += atomic_exchange(&p->parts[i].lines, 0);
        rec.words += atomic_exchange(&p->parts[i].words, 0);
        rec.dropped += atomic_exchange(&p->parts[i].dropped, 0);
    }
    ep->committed = ep->epoch;
    ep->commits++;
    /* Logs "epoch N committed: ..." with the progress record; reads committed..cut and the lists. */
    if (ep->obs) tally_obs_epoch(ep->obs, &rec);
    else
        tally_info("epoch %" PRIu64 " committed: %" PRIu64 " lines, %" PRIu64 " keys updated", rec.epoch, rec.lines,
                   rec.keys);
    tally_pipeline_committed(p);
    if (ep->trim) {
        rd_kafka_topic_partition_list_t *done = tally_pipeline_offsets(p, false, NULL);
        tally_trim_request(ep->trim, done);
        rd_kafka_topic_partition_list_destroy(done);
    }
    if (ep->source && ep->plan.epoch == ep->epoch) {
        tally_filesource_committed(ep->source, &ep->plan);
        p->plan = NULL;
        tally_file_plan_clear(&ep->plan);
    }
    if (ep->obs) tally_obs_publish(ep->obs);
    set_state(ep, final ? TALLY_EPOCH_DRAINED : TALLY_EPOCH_IDLE);
}

void tally_epoch_poll(tally_epoch_t *ep) {
    if (ep->st == TALLY_EPOCH_BARRIER && tally_pipeline_all_done(ep->pipe)) finish(ep);
}

void tally_epoch_drain(tally_epoch_t *ep) {
    if (ep->st == TALLY_EPOCH_FAILED || ep->st == TALLY_EPOCH_DRAINED) return;
    if (!ep->pipe->up) {
        set_state(ep, TALLY_EPOCH_DRAINED);
        return;
    }
    if (ep->st == TALLY_EPOCH_BARRIER) {
        if (!tally_pipeline_wait(ep->pipe)) return; /* a fault: the caller fails */
        finish(ep);
    }
    /* IDLE: ask for the final epoch; ABORTING: it rolled back, so ask again (the threads were
     * restarted and exit only after a final barrier). */
    for (int attempt = 1; ep->st == TALLY_EPOCH_IDLE || ep->st == TALLY_EPOCH_ABORTING; attempt++) {
        if (attempt > FINAL_ATTEMPTS) {
            tally_epoch_fail(ep, TALLY_EXIT_ERROR, "the final epoch did not commit in %d attempts, each rolled back; "
                             "nothing after epoch %" PRIu64 " is committed, and a restart goes on from there",
                             FINAL_ATTEMPTS, ep->committed);
            return;
        }
        /* After a rollback the threads read again from the last commit: let them reach the failed
         * final epoch's cut first, so the retry commits the work that was in hand. */
        if (ep->final_cut && !tally_pipeline_wait_read(ep->pipe, ep->final_cut, 60))
            tally_warn("the retried final epoch covers less than the one that rolled back: the rest is read "
                       "again at the next start");
        if (!begin(ep)) return;
        request(ep, true);
        if (!tally_pipeline_wait(ep->pipe)) return;
        finish(ep);
    }
    if (ep->st == TALLY_EPOCH_DRAINED) tally_pipeline_join(ep->pipe);
    /* Stopping: every committed epoch in the state, or the exit status says it is not. */
    char err[512];
    if (ep->st == TALLY_EPOCH_DRAINED && ep->state && tally_state_sync(ep->state, err, sizeof(err)))
        tally_epoch_fail(ep, TALLY_EXIT_ERROR, "%s", err);
}

void tally_epoch_drop(tally_epoch_t *ep) {
    if (ep->st == TALLY_EPOCH_FAILED) return;
    if (ep->st == TALLY_EPOCH_DRAINED && !ep->pipe->up) return;
    set_state(ep, TALLY_EPOCH_ABORTING);
    tally_pipeline_kill(ep->pipe);
    tally_txn_failure_t f;
    if (tally_txn_abort(ep->txn, &f) != TALLY_TXN_OK) tally_warn("%s", f.why);
    if (tally_pipeline_reload(ep->pipe, ep->state)) {
        tally_epoch_fail(ep, TALLY_EXIT_ERROR, "cannot reload the state after a lost assignment");
        return;
    }
    ep->epoch = ep->committed;
    set_state(ep, TALLY_EPOCH_DRAINED);
}

void tally_epoch_resume(tally_epoch_t *ep) {
    if (ep->st == TALLY_EPOCH_DRAINED) set_state(ep, TALLY_EPOCH_IDLE);
}
