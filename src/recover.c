/* SPDX-License-Identifier: MIT */
/* Recovery of an assignment (shared/DESIGN.md): per partition, D = offset in the state store,
 * K = offset committed in Kafka for the group.
 *   K > D: died between the Kafka commit and the state write: replay [D, K) into the state without
 *          output (its output is committed already); counts are sums, so this rebuilds them exactly.
 *   else:  start at D; a partition never seen starts at starting.offsets, resolved to a number and
 *          stored at once, so that D always exists once a partition is assigned.
 * An empty state.dir while Kafka holds offsets would restart the counts from zero: refused unless
 * state.rebuild=true, which replays each partition from its beginning. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "engine_int.h"
#include "tally/err.h"
#include "tally/log.h"
#include "tally/tokenize.h"

typedef struct {
    tally_wordtab_t *tab;
    uint64_t lines, words, dropped;
} replay_acc_t;

static void replay_line(tally_engine_t *eng, replay_acc_t *acc, const rd_kafka_message_t *m) {
    tally_tokenizer_t t;
    const uint8_t *word;
    size_t len;
    tally_tokenizer_init(&t, m->payload, m->payload ? m->len : 0);
    while (tally_tokenizer_next(&t, &word, &len)) {
        if (len > (size_t)eng->conf.max_word_bytes) {
            acc->dropped++;
            continue;
        }
        uint64_t h = XXH3_64bits(word, len);
        tally_word_t *w = tally_wordtab_find(acc->tab, h, word, (uint32_t)len);
        if (!w) w = tally_wordtab_insert(acc->tab, h, word, (uint32_t)len, 0);
        if (w) w->count++;
        acc->words++;
    }
    acc->lines++;
}

/* Reads [from, to) of one partition, read_committed, into acc. */
static int replay_range(tally_engine_t *eng, const char *topic, int32_t partition, int64_t from, int64_t to,
                        replay_acc_t *acc) {
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (tally_engine_kafka_conf(eng, c, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(c, "isolation.level", "read_committed", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(c, "enable.partition.eof", "true", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(c, "auto.offset.reset", "error", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(c, "group.id", eng->conf.application_id, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(c, "enable.auto.commit", "false", errstr, sizeof(errstr))) {
        rd_kafka_conf_destroy(c);
        tally_err("replay consumer: %s", errstr);
        return TALLY_ECONFIG;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof(errstr));
    if (!rk) {
        tally_err("replay consumer: %s", errstr);
        return TALLY_EKAFKA;
    }
    /* assign() without subscribe(): no group membership, the group's offsets are never touched. */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = from;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    int r = 0;
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m) continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            int64_t pos = m->offset;
            rd_kafka_message_destroy(m);
            if (pos >= to) break;
            tally_err("replay of %s[%d] reached the end at %" PRId64 " before the committed offset %" PRId64,
                      topic, (int)partition, pos, to);
            r = TALLY_EDATALOSS;
            break;
        }
        if (m->err) {
            tally_err("replay of %s[%d]: %s", topic, (int)partition, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            r = m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ? TALLY_EDATALOSS : TALLY_EKAFKA;
            break;
        }
        int64_t off = m->offset;
        if (off < to) replay_line(eng, acc, m);
        rd_kafka_message_destroy(m);
        if (off + 1 >= to) break;
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return r;
}

typedef struct {
    tally_engine_t *eng;
    tally_state_batch_t *b;
    int err;
} merge_ctx_t;

static void merge_one(tally_word_t *w, void *opaque) {
    merge_ctx_t *m = opaque;
    int64_t stored = 0;
    if (tally_state_get_count(m->eng->state, w->bytes, w->len, &stored)) m->err = TALLY_ESTATE;
    tally_state_batch_put_count(m->b, w->bytes, w->len, stored + w->count);
}

int tally_recover_assignment(tally_engine_t *eng, rd_kafka_topic_partition_list_t *parts) {
    const tally_config_t *c = &eng->conf;
    bool fresh = tally_state_is_fresh(eng->state);

    rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_resp_err_t e = rd_kafka_committed(eng->consumer, committed, 30000);
    if (e) {
        rd_kafka_topic_partition_list_destroy(committed);
        tally_engine_raise(eng, TALLY_EXIT_ERROR, "cannot read the committed offsets of group %s: %s",
                           c->application_id, rd_kafka_err2str(e));
        return TALLY_EKAFKA;
    }
    if (fresh && !c->state_rebuild) {
        for (int i = 0; i < committed->cnt; i++) {
            if (committed->elems[i].offset < 0) continue;
            tally_engine_raise(eng, TALLY_EXIT_ERROR,
                               "state.dir %s is empty, but Kafka holds committed offsets for group %s (%s[%d] at "
                               "%" PRId64 "): starting would restart every count from zero. Point state.dir at the "
                               "state of this application, or set state.rebuild=true to rebuild it by replaying "
                               "the input from the beginning (no output for what was already committed)",
                               c->state_dir, c->application_id, committed->elems[i].topic,
                               (int)committed->elems[i].partition, committed->elems[i].offset);
            rd_kafka_topic_partition_list_destroy(committed);
            return TALLY_ESTATE;
        }
    }

    tally_state_batch_t *b = tally_state_batch_new();
    replay_acc_t acc = {.tab = tally_wordtab_new()};
    int r = acc.tab && b ? 0 : TALLY_ENOMEM;
    for (int i = 0; !r && i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t D = -1, K = committed->elems[i].offset, lo = 0, hi = 0;
        int have = tally_state_get_offset(eng->state, tp->topic, tp->partition, &D);
        if (have < 0) { r = TALLY_ESTATE; break; }
        e = rd_kafka_query_watermark_offsets(eng->consumer, tp->topic, tp->partition, &lo, &hi, 30000);
        if (e) {
            tally_engine_raise(eng, TALLY_EXIT_ERROR, "cannot read the offsets of %s[%d]: %s", tp->topic,
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
            bool known_topic = tally_state_get_offset(eng->state, tp->topic, 0, &any) == 1;
            if (K >= 0 || known_topic) D = lo;
            else D = c->starting_offsets == TALLY_START_EARLIEST ? lo : hi;
            store = true;
        }
        if (D < lo || D > hi) {
            if (c->fail_on_data_loss) {
                tally_engine_raise(eng, TALLY_EXIT_DATALOSS,
                                   "input %s[%d]: records [%" PRId64 ", %" PRId64 ") are gone (retention, deleted "
                                   "records or a recreated topic; the partition now holds [%" PRId64 ", %" PRId64
                                   ")); stopping because fail.on.data.loss=true",
                                   tp->topic, (int)tp->partition, D < lo ? D : hi, D < lo ? lo : D, lo, hi);
                r = TALLY_EDATALOSS;
                break;
            }
            tally_warn("input %s[%d]: records [%" PRId64 ", %" PRId64 ") are gone; going on from %" PRId64
                       " because fail.on.data.loss=false", tp->topic, (int)tp->partition, D < lo ? D : hi,
                       D < lo ? lo : D, lo);
            D = lo;
            store = true;
        }
        if (K > D) {
            tally_info("recovering %s[%d]: state at %" PRId64 ", Kafka committed %" PRId64
                       ": replaying [%" PRId64 ", %" PRId64 ") without output", tp->topic, (int)tp->partition, D, K, D, K);
            r = replay_range(eng, tp->topic, tp->partition, D, K, &acc);
            if (r) {
                tally_engine_raise(eng, r == TALLY_EDATALOSS ? TALLY_EXIT_DATALOSS : TALLY_EXIT_ERROR,
                                   "replay of %s[%d] [%" PRId64 ", %" PRId64 ") failed", tp->topic, (int)tp->partition, D, K);
                break;
            }
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
        merge_ctx_t m = {.eng = eng, .b = b};
        tally_wordtab_foreach(acc.tab, merge_one, &m);
        r = m.err;
        tally_info("replayed %" PRIu64 " lines, %" PRIu64 " words, %zu distinct into the state", acc.lines, acc.words,
                   tally_wordtab_size(acc.tab));
    }
    if (!r && b && tally_state_batch_count(b) > 0) {
        char err[512];
        if (tally_state_is_fresh(eng->state)) tally_state_batch_put_epoch(b, eng->epoch);
        r = tally_state_batch_write(eng->state, b, err, sizeof(err));
        if (r) tally_engine_raise(eng, TALLY_EXIT_ERROR, "%s", err);
        /* Cached counts may predate the replay. */
        if (!r) r = tally_engine_reload_tables(eng);
    }
    tally_wordtab_destroy(acc.tab);
    tally_state_batch_destroy(b);
    return r;
}
