/* SPDX-License-Identifier: MIT */
/* Recovery of an assignment (shared/DESIGN.md): per partition, D = offset in the state store,
 * K = offset committed in Kafka for the group.
 *   K > D: died between the Kafka commit and the state write: replay [D, K) into the state without
 *          output (its output is committed already); counts are sums, so this rebuilds them exactly.
 *   else:  start at D; a partition never seen starts at starting.offsets, resolved to a number and
 *          stored at once, so that D always exists once a partition is assigned.
 * An empty state.dir while Kafka holds offsets would restart the counts from zero: refused unless
 * state.rebuild=true, which replays each partition from its beginning. */
#include "recover.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <xxhash.h>

#include "evtime.h"
#include "scaleout.h"
#include "tally/clock.h"
#include "tally/crashpoint.h"
#include "tally/engine.h"
#include "tally/err.h"
#include "tally/filesource.h"
#include "tally/kafka.h"
#include "tally/log.h"
#include "tally/tokenize.h"
#include "tally/wordtab.h"

/* What a failed recovery reports to its caller. */
typedef struct {
    int status;
    char *errstr;
    size_t size;
} failure_t;

static void fail(failure_t *f, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(failure_t *f, int status, const char *fmt, ...) {
    f->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->errstr, f->size, fmt, ap);
    va_end(ap);
}

typedef struct {
    const tally_config_t *conf;
    tally_wordtab_t *tab;
    uint64_t lines, words, dropped, late;
    /* Windows: the watermark and processing time the replayed epoch ran with (stored with the
     * epoch before it), so it places and drops exactly what the committed run did. */
    tally_evtime_t time;
    int64_t ts;              /* the time of the record being replayed */
    int64_t max_ts;          /* the greatest of them */
    uint8_t *wkey;
    int64_t *wstarts;
    bool oom;
} replay_acc_t;

static void replay_key(replay_acc_t *acc, const uint8_t *key, size_t len) {
    uint64_t h = XXH3_64bits(key, len);
    tally_word_t *w = tally_wordtab_find(acc->tab, h, key, (uint32_t)len);
    if (!w) w = tally_wordtab_insert(acc->tab, h, key, (uint32_t)len, 0);
    if (w) w->count++;
    else acc->oom = true;
}

/* One word: once, or (windows) once per open window holding the record's time, as the partition
 * threads and workers do. */
static bool replay_word(const uint8_t *word, size_t len, void *opaque) {
    replay_acc_t *acc = opaque;
    acc->words++;
    if (!acc->wkey) {
        replay_key(acc, word, len);
        return !acc->oom;
    }
    const tally_config_t *c = acc->conf;
    size_t closed = 0;
    int64_t slide = tally_config_window_slide(c);
    size_t n = tally_window_assign_open(acc->ts, c->window_size_ms, slide, acc->time.wm, acc->wstarts,
                                        tally_window_per_record(c->window_size_ms, slide), &closed);
    acc->late += closed;
    for (size_t i = 0; i < n; i++) replay_key(acc, acc->wkey, tally_window_key(acc->wkey, acc->wstarts[i], word, len));
    return !acc->oom;
}

static int replay_init(replay_acc_t *acc, const tally_config_t *conf, tally_state_t *state) {
    *acc = (replay_acc_t){.conf = conf, .tab = tally_wordtab_new(), .max_ts = TALLY_WATERMARK_NONE};
    int r = tally_evtime_init(&acc->time, conf, state);
    if (!r && conf->window_size_ms > 0) {
        acc->wkey = malloc(TALLY_WINDOW_KEY_PREFIX + (size_t)conf->max_word_bytes + 1);
        acc->wstarts = malloc(tally_window_per_record(conf->window_size_ms, tally_config_window_slide(conf)) *
                              sizeof(int64_t));
        if (!acc->wkey || !acc->wstarts) r = TALLY_ENOMEM;
    }
    return r ? r : acc->tab ? 0 : TALLY_ENOMEM;
}

static void replay_term(replay_acc_t *acc) {
    tally_wordtab_destroy(acc->tab);
    tally_evtime_term(&acc->time);
    free(acc->wkey);
    free(acc->wstarts);
}

/* What the replayed epoch deleted: the windows its watermark closed; and the watermark it computed
 * for the next epoch, which its lost state write held. With the max policy that is exact: the
 * stored one already covers every earlier record. The min policy's per-partition maxima are not
 * stored: the next epoch then runs under the replayed epoch's watermark (it only ever lags). */
static void replay_closed(replay_acc_t *acc, tally_state_t *state, tally_state_batch_t *b) {
    uint8_t begin[TALLY_WINDOW_KEY_PREFIX], end[TALLY_WINDOW_KEY_PREFIX];
    if (tally_evtime_closed_range(&acc->time, state, begin, end))
        tally_state_batch_delete_counts(b, begin, sizeof(begin), end, sizeof(end));
    if (acc->time.wm_on && acc->conf->watermark_policy == TALLY_WATERMARK_MAX && acc->max_ts != TALLY_WATERMARK_NONE) {
        tally_watermark_t t;
        tally_watermark_init(&t, TALLY_WATERMARK_MAX, acc->conf->watermark_delay_ms, -1, -1, acc->time.wm);
        tally_watermark_partitions(&t, 1, 0);
        tally_watermark_observe(&t, 0, acc->max_ts, 0);
        int64_t wm = tally_watermark_advance(&t, 0);
        tally_watermark_term(&t);
        if (wm > acc->time.wm) tally_state_batch_put_meta(b, TALLY_META_WATERMARK, wm);
    }
    if (acc->late)
        tally_info("replay: %" PRIu64 " (word, window) pairs were late under watermark %" PRId64 ", as in the run "
                   "that committed them", acc->late, acc->time.wm);
}

static void replay_line(const tally_config_t *conf, replay_acc_t *acc, const rd_kafka_message_t *m) {
    tally_tokenizer_t t;
    const uint8_t *word;
    size_t len;
    if (acc->wkey) {
        acc->ts = conf->event_time == TALLY_EVENT_TIME_RECORD ? rd_kafka_message_timestamp(m, NULL) : -1;
        if (acc->ts < 0) acc->ts = acc->time.ptime;
        if (acc->ts > acc->max_ts) acc->max_ts = acc->ts;
    }
    tally_tokenizer_init(&t, m->payload, m->payload ? m->len : 0);
    while (tally_tokenizer_next_counted(&t, (size_t)conf->max_word_bytes, &word, &len, &acc->dropped))
        replay_word(word, len, acc);
    acc->lines++;
}

/* Reads [from, to) of one partition, read_committed, into acc. Gives up when nothing arrives for
 * recovery.stall.timeout.ms: a replay must never wait forever inside the rebalance callback. */
static int replay_range(const tally_config_t *conf, const char *topic, int32_t partition, int64_t from, int64_t to,
                        replay_acc_t *acc, failure_t *f) {
    char errstr[512];
    rd_kafka_t *rk = tally_kafka_reader_new(conf, conf->application_id, errstr, sizeof(errstr));
    if (!rk) {
        fail(f, TALLY_EXIT_ERROR, "replay consumer: %s", errstr);
        return TALLY_EKAFKA;
    }
    /* assign() without subscribe(): no group membership, the group's offsets are never touched. */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = from;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    int r = 0;
    int64_t next = from;
    double last = tally_mono_s();
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m) {
            double idle = tally_mono_s() - last;
            if (idle * 1e3 < conf->recovery_stall_ms) continue;
            fail(f, TALLY_EXIT_ERROR, "replay of %s[%d] [%" PRId64 ", %" PRId64 ") stalled at offset %" PRId64
                 ": nothing arrived for %.0f s (recovery.stall.timeout.ms=%d; is the broker reachable, the "
                 "input readable?). Nothing was stored; a restart replays again", topic, (int)partition, from,
                 to, next, idle, conf->recovery_stall_ms);
            r = TALLY_EKAFKA;
            break;
        }
        last = tally_mono_s();
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            int64_t pos = m->offset;
            rd_kafka_message_destroy(m);
            if (pos >= to) break;
            fail(f, TALLY_EXIT_DATALOSS, "replay of %s[%d] [%" PRId64 ", %" PRId64 ") reached the end at %" PRId64
                 " before the committed offset", topic, (int)partition, from, to, pos);
            r = TALLY_EDATALOSS;
            break;
        }
        if (m->err) {
            bool lost = m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET;
            fail(f, lost ? TALLY_EXIT_DATALOSS : TALLY_EXIT_ERROR, "replay of %s[%d] [%" PRId64 ", %" PRId64 "): %s",
                 topic, (int)partition, from, to, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            r = lost ? TALLY_EDATALOSS : TALLY_EKAFKA;
            break;
        }
        int64_t off = m->offset;
        next = off + 1;
        if (off < to) replay_line(conf, acc, m);
        rd_kafka_message_destroy(m);
        if (off + 1 >= to) break;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return r;
}

typedef struct {
    tally_state_t *state;
    tally_state_batch_t *b;
    int err;
} merge_ctx_t;

static void merge_one(tally_word_t *w, void *opaque) {
    merge_ctx_t *m = opaque;
    int64_t stored = 0;
    if (tally_state_get_count(m->state, w->bytes, w->len, &stored)) m->err = TALLY_ESTATE;
    tally_state_batch_put_count(m->b, w->bytes, w->len, stored + w->count);
}

static int recover(const tally_config_t *c, rd_kafka_t *consumer, tally_state_t *state, uint64_t epoch,
                   const tally_filesink_t *files, rd_kafka_topic_partition_list_t *parts, bool *stored, failure_t *f);

int tally_recover_assignment(const tally_config_t *c, rd_kafka_t *consumer, tally_state_t *state, uint64_t epoch,
                             const tally_filesink_t *files, rd_kafka_topic_partition_list_t *parts, bool *stored, int *status, char *errstr,
                             size_t errstr_size) {
    failure_t f = {.status = TALLY_EXIT_ERROR, .errstr = errstr, .size = errstr_size};
    int r = recover(c, consumer, state, epoch, files, parts, stored, &f);
    *status = f.status;
    return r;
}

/* The partition's [lo, hi), waiting up to 30 s through the errors of a partition whose leader is
 * not known yet (a topic just created, a broker restarting). */
static rd_kafka_resp_err_t watermarks(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t *lo, int64_t *hi) {
    double deadline = tally_mono_s() + 30;
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, partition, lo, hi, 30000);
        bool transient = e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION || e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
                         e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
        if (!transient || tally_mono_s() > deadline) return e;
        nanosleep(&(struct timespec){0, 200 * 1000 * 1000}, NULL);
    }
}

/* An offset outside what the partition holds: records were deleted before they were read. False when
 * that stops the engine (fail.on.data.loss); else *start moves to the partition's beginning. */
static bool data_lost(const tally_config_t *c, const rd_kafka_topic_partition_t *tp, int64_t *start, int64_t lo,
                      int64_t hi, failure_t *f) {
    int64_t D = *start;
    if (D >= lo && D <= hi) return true;
    if (c->fail_on_data_loss) {
        fail(f, TALLY_EXIT_DATALOSS,
             "input %s[%d]: records [%" PRId64 ", %" PRId64 ") are gone (retention, deleted records or a recreated "
             "topic; the partition now holds [%" PRId64 ", %" PRId64 ")); stopping because fail.on.data.loss=true",
             tp->topic, (int)tp->partition, D < lo ? D : hi, D < lo ? lo : D, lo, hi);
        return false;
    }
    tally_warn("input %s[%d]: records [%" PRId64 ", %" PRId64 ") are gone; going on from %" PRId64
               " because fail.on.data.loss=false", tp->topic, (int)tp->partition, D < lo ? D : hi, D < lo ? lo : D, lo);
    *start = lo;
    return true;
}

/* topology=distributed: stage 1 keeps no state, so an input partition starts at the group's
 * offset; a repartition partition too, once its state is brought up to the changelog's end, which
 * the same transactions wrote with those offsets (the engine restores it, scaleout.h). The offsets are read stable (read_committed:
 * KIP-447), so a transaction of the partition's previous owner still open is settled first. */
static int recover_distributed(const tally_config_t *c, rd_kafka_t *consumer, tally_state_t *state,
                               rd_kafka_topic_partition_list_t *parts, failure_t *f) {
    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t e = rd_kafka_committed(consumer, committed, 60000);
    int r = 0;
    if (e) {
        fail(f, TALLY_EXIT_ERROR, "cannot read the committed offsets of group %s: %s", c->application_id,
             rd_kafka_err2str(e));
        r = TALLY_EKAFKA;
    }
    rd_kafka_topic_partition_list_t *fresh = rd_kafka_topic_partition_list_new(parts->cnt + 1);
    for (int i = 0; !r && i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        bool stage2 = tally_scaleout_is_repartition(c, tp->topic);
        int64_t K = committed->elems[i].offset, lo = 0, hi = 0;
        if ((e = watermarks(consumer, tp->topic, tp->partition, &lo, &hi))) {
            fail(f, TALLY_EXIT_ERROR, "cannot read the offsets of %s[%d]: %s", tp->topic, (int)tp->partition,
                 rd_kafka_err2str(e));
            r = TALLY_EKAFKA;
            break;
        }
        int64_t start = K >= 0 ? K : stage2 || c->starting_offsets == TALLY_START_EARLIEST ? lo : hi;
        if (!data_lost(c, tp, &start, lo, hi, f)) {
            r = TALLY_EDATALOSS;
            break;
        }
        /* latest: the start must outlive this instance, or the next owner would pick a later one. */
        if (K < 0 && !stage2 && c->starting_offsets == TALLY_START_LATEST)
            rd_kafka_topic_partition_list_add(fresh, tp->topic, tp->partition)->offset = start;
        tp->offset = start;
        tally_info("%s[%d] starts at offset %" PRId64 " (partition holds [%" PRId64 ", %" PRId64 "))", tp->topic,
                   (int)tp->partition, start, lo, hi);
    }
    if (!r && fresh->cnt && (e = rd_kafka_commit(consumer, fresh, 0)))
        tally_warn("cannot commit the start offsets of newly read partitions: %s", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(fresh);
    rd_kafka_topic_partition_list_destroy(committed);
    return r;
}

static int recover(const tally_config_t *c, rd_kafka_t *consumer, tally_state_t *state, uint64_t epoch,
                   const tally_filesink_t *files, rd_kafka_topic_partition_list_t *parts, bool *stored, failure_t *f) {
    bool fresh = tally_state_is_fresh(state);
    *stored = false;
    if (c->topology == TALLY_TOPOLOGY_DISTRIBUTED) {
        *stored = true; /* restored counts, and the cached ones of partitions that left may be stale */
        return recover_distributed(c, consumer, state, parts, f);
    }

    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t e = rd_kafka_committed(consumer, committed, 30000);
    if (e) {
        rd_kafka_topic_partition_list_destroy(committed);
        fail(f, TALLY_EXIT_ERROR, "cannot read the committed offsets of group %s: %s",
                           c->application_id, rd_kafka_err2str(e));
        return TALLY_EKAFKA;
    }
    /* With the file sink, what the sink committed is in its log, not in the group's offsets (which
     * follow it, best effort). */
    for (int i = 0; files && i < committed->cnt; i++)
        committed->elems[i].offset = tally_filesink_offset(files, committed->elems[i].topic, committed->elems[i].partition);
    if (fresh && !c->state_rebuild) {
        for (int i = 0; i < committed->cnt; i++) {
            if (committed->elems[i].offset < 0) continue;
            fail(f, TALLY_EXIT_ERROR,
                               "state.dir %s is empty, but %s holds committed offsets for group %s (%s[%d] at "
                               "%" PRId64 "): starting would restart every count from zero. Point state.dir at the "
                               "state of this application, or set state.rebuild=true to rebuild it by replaying "
                               "the input from the beginning (no output for what was already committed)",
                               c->state_dir, files ? "output.path" : "Kafka", c->application_id, committed->elems[i].topic,
                               (int)committed->elems[i].partition, committed->elems[i].offset);
            rd_kafka_topic_partition_list_destroy(committed);
            return TALLY_ESTATE;
        }
    }

    tally_state_batch_t *b = tally_state_batch_new();
    replay_acc_t acc;
    int r = replay_init(&acc, c, state);
    if (!r && !b) r = TALLY_ENOMEM;
    if (r) fail(f, TALLY_EXIT_ERROR, "cannot prepare the recovery: %s", tally_err_str(r));
    for (int i = 0; !r && i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t D = -1, K = committed->elems[i].offset, lo = 0, hi = 0;
        int have = tally_state_get_offset(state, tp->topic, tp->partition, &D);
        if (have < 0) {
            fail(f, TALLY_EXIT_ERROR, "cannot read the offset of %s[%d] from the state", tp->topic, (int)tp->partition);
            r = TALLY_ESTATE;
            break;
        }
        e = watermarks(consumer, tp->topic, tp->partition, &lo, &hi);
        if (e) {
            fail(f, TALLY_EXIT_ERROR, "cannot read the offsets of %s[%d]: %s", tp->topic,
                               (int)tp->partition, rd_kafka_err2str(e));
            r = TALLY_EKAFKA;
            break;
        }
        bool store = false;
        if (!have) {
            /* K >= 0: rebuild, or committed in Kafka but never stored: from its start. A partition added
             * to a topic we already count starts at its beginning too: its records were produced after
             * we started, and starting.offsets=latest must not skip them. */
            int64_t any;
            bool known_topic = tally_state_get_offset(state, tp->topic, 0, &any) == 1;
            if (K >= 0 || known_topic) D = lo;
            else D = c->starting_offsets == TALLY_START_EARLIEST ? lo : hi;
            store = true;
        }
        if (D < lo || D > hi) {
            if (!data_lost(c, tp, &D, lo, hi, f)) {
                r = TALLY_EDATALOSS;
                break;
            }
            store = true;
        }
        if (K > D) {
            tally_info("recovering %s[%d]: state at %" PRId64 ", %s committed %" PRId64
                       ": replaying [%" PRId64 ", %" PRId64 ") without output", tp->topic, (int)tp->partition, D,
                       files ? "output.path" : "Kafka", K, D, K);
            tally_crashpoint_hold("before_replay");
            r = replay_range(c, tp->topic, tp->partition, D, K, &acc, f);
            if (r) break;
            D = K;
            store = true;
        } else if (K < 0 && have) {
            tally_info("group %s has no committed offset for %s[%d]; going on from the state's offset %" PRId64,
                       c->application_id, tp->topic, (int)tp->partition, D);
        } else if (K >= 0 && K < D) {
            tally_info("%s[%d]: state at %" PRId64 " is ahead of the group's committed %" PRId64
                       " (offsets committed outside tally?); starting at %" PRId64, tp->topic, (int)tp->partition, D, K, D);
        }
        if (store) tally_state_batch_put_offset(b, tp->topic, tp->partition, D);
        tp->offset = D;
        tally_info("%s[%d] starts at offset %" PRId64 " (partition holds [%" PRId64 ", %" PRId64 "))", tp->topic,
                   (int)tp->partition, D, lo, hi);
    }
    rd_kafka_topic_partition_list_destroy(committed);
    if (!r && acc.words + acc.lines > 0) {
        merge_ctx_t m = {.state = state, .b = b};
        tally_wordtab_foreach(acc.tab, merge_one, &m);
        r = m.err;
        if (r) fail(f, TALLY_EXIT_ERROR, "cannot read counts from the state during recovery");
        if (acc.oom && !r) {
            r = TALLY_ENOMEM;
            fail(f, TALLY_EXIT_ERROR, "out of memory replaying into the state");
        }
        replay_closed(&acc, state, b);
        tally_info("replayed %" PRIu64 " lines, %" PRIu64 " words, %zu distinct into the state", acc.lines, acc.words,
                   tally_wordtab_size(acc.tab));
    }
    if (!r && b && tally_state_batch_count(b) > 0) {
        char err[512];
        if (tally_state_is_fresh(state)) tally_state_batch_put_epoch(b, epoch);
        r = tally_state_batch_write(state, b, err, sizeof(err));
        if (r) fail(f, TALLY_EXIT_ERROR, "%s", err);
        /* Cached counts may predate the replay. */
        *stored = r == 0 && acc.words > 0;
    }
    replay_term(&acc);
    tally_state_batch_destroy(b);
    return r;
}

/* ---- input.path ---- */

int tally_recover_files(const tally_config_t *c, tally_state_t *state, uint64_t sink_epoch, const char *sink_name,
                        const rd_kafka_topic_partition_list_t *files, char *errstr, size_t errstr_size) {
    uint64_t have = tally_state_epoch(state);
    if (sink_epoch <= have) return 0;
    if (sink_epoch > have + 1) {
        snprintf(errstr, errstr_size, "state.dir %s is at epoch %" PRIu64 ", but %s committed epoch %" PRIu64 ": this "
                 "state does not belong to that output (or was lost), and counting on would restart counts that were "
                 "already written. Point state.dir at this application's state, or start with an empty state.dir "
                 "and an empty output", c->state_dir, have, sink_name, sink_epoch);
        return TALLY_ESTATE;
    }
    tally_info("recovering: %s committed epoch %" PRIu64 " (%d file(s)) but the state holds epoch %" PRIu64
               ": replaying those files into the state without output", sink_name, sink_epoch, files->cnt, have);
    tally_crashpoint_hold("before_replay");
    tally_file_plan_t plan = {.epoch = sink_epoch, .files = calloc((size_t)files->cnt + 1, sizeof(tally_file_t))};
    replay_acc_t acc;
    tally_state_batch_t *b = tally_state_batch_new();
    int r = replay_init(&acc, c, state);
    if (!r && (!plan.files || !b)) r = TALLY_ENOMEM;
    if (r) snprintf(errstr, errstr_size, "cannot prepare the recovery: %s", tally_err_str(r));
    acc.ts = acc.max_ts = acc.time.ptime; /* files: the epoch's processing time */
    for (int i = 0; !r && i < files->cnt; i++) {
        tally_file_t *f = &plan.files[plan.nfiles];
        const char *path = files->elems[i].topic;
        struct stat st;
        if (stat(path, &st) != 0) {
            snprintf(errstr, errstr_size, "input file %s, whose words %s committed in epoch %" PRIu64 ", is gone (%s): "
                     "they cannot be replayed into the state. Put the file back and restart", path, sink_name, sink_epoch,
                     strerror(errno));
            r = TALLY_EIO;
            break;
        }
        size_t pl = strlen(path);
        *f = (tally_file_t){.path = strdup(path), .size = files->elems[i].offset,
                            .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
                            .dev = (uint64_t)st.st_dev, .ino = (uint64_t)st.st_ino, .gz = pl > 3 && !strcmp(path + pl - 3, ".gz")};
        atomic_init(&f->status, TALLY_FILE_READ);
        if (!f->path) {
            r = TALLY_ENOMEM;
            break;
        }
        plan.nfiles++;
        if (!f->gz && (int64_t)st.st_size != f->size)
            tally_warn("input file %s is %lld bytes now, %" PRId64 " when epoch %" PRIu64 " read it: replaying those bytes",
                       path, (long long)st.st_size, f->size, sink_epoch);
        tally_chunk_t ch = {.file = plan.nfiles - 1, .from = 0, .to = f->gz ? INT64_MAX : f->size};
        if (tally_file_read_chunk(f, &ch, (size_t)c->max_word_bytes, replay_word, &acc, &acc.lines, &acc.dropped)) {
            snprintf(errstr, errstr_size, "out of memory replaying %s", path);
            r = TALLY_ENOMEM;
        }
    }
    if (!r) {
        merge_ctx_t m = {.state = state, .b = b};
        tally_wordtab_foreach(acc.tab, merge_one, &m);
        if ((r = m.err)) snprintf(errstr, errstr_size, "cannot read counts from the state during recovery");
        replay_closed(&acc, state, b);
    }
    if (!r) {
        tally_filesource_store(NULL, &plan, b);
        tally_state_batch_put_epoch(b, sink_epoch);
        r = tally_state_batch_write(state, b, errstr, errstr_size);
    }
    if (!r)
        tally_info("replayed %" PRIu64 " lines, %" PRIu64 " words, %zu distinct into the state", acc.lines, acc.words,
                   tally_wordtab_size(acc.tab));
    tally_file_plan_clear(&plan);
    replay_term(&acc);
    tally_state_batch_destroy(b);
    return r;
}
