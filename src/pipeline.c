/* SPDX-License-Identifier: MIT */
/* The pipeline's threads and rings, up and down, and the epoch request (see pipeline.h).
 * @locality control thread, except where a function says otherwise. */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "tally/engine.h"
#include "tally/err.h"
#include "tally/json.h"
#include "tally/log.h"
#include "scaleout.h"

int tally_pipeline_init(tally_pipeline_t *p, const tally_config_t *c, tally_fault_t *fault,
                        void (*wake)(void *opaque), void *wake_opaque) {
    memset(p, 0, sizeof(*p));
    p->conf = c;
    p->fault = fault;
    p->wake = wake;
    p->wake_opaque = wake_opaque;
    pthread_mutex_init(&p->ep_mu, NULL);
    pthread_cond_init(&p->ep_cv, NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p->nworkers = c->workers > 0 ? c->workers : (int)(cores > 0 ? cores : 1);
    p->workers = calloc((size_t)p->nworkers, sizeof(*p->workers));
    if (!p->workers) return TALLY_ENOMEM;
    tally_budget_split(c, &p->budget);
    int64_t cache = c->cache_max_words >= 0 ? c->cache_max_words : tally_budget_cache_words(&p->budget);
    size_t epoch_max = tally_budget_epoch_keys(&p->budget);
    if (c->topology == TALLY_TOPOLOGY_DISTRIBUTED && c->window_size_ms > 0 && c->watermark_delay_ms >= 0) {
        if (!(p->wm_r = calloc((size_t)c->repartition_partitions, sizeof(*p->wm_r)))) return TALLY_ENOMEM;
        for (int r = 0; r < c->repartition_partitions; r++) atomic_init(&p->wm_r[r], TALLY_WATERMARK_NONE);
    }
    for (int w = 0; w < p->nworkers; w++) {
        tally_worker_t *wk = &p->workers[w];
        wk->pipe = p;
        wk->idx = w;
        wk->tab = tally_wordtab_new();
        wk->cache_max = cache > 0 ? ((size_t)cache + (size_t)p->nworkers - 1) / (size_t)p->nworkers : 0;
        /* Half the cache at most: the dirty words cannot leave memory before their epoch commits. */
        wk->epoch_max = (epoch_max + (size_t)p->nworkers - 1) / (size_t)p->nworkers;
        if (wk->cache_max && wk->epoch_max > wk->cache_max / 2) wk->epoch_max = wk->cache_max / 2;
        if (wk->epoch_max < 1) wk->epoch_max = 1;
        pthread_mutex_init(&wk->mu, NULL);
        pthread_cond_init(&wk->cv, NULL);
        if (!wk->tab) return TALLY_ENOMEM;
    }
    return 0;
}

void tally_pipeline_term(tally_pipeline_t *p) {
    if (p->up) tally_pipeline_kill(p);
    tally_pipeline_free_parts(p);
    for (int w = 0; p->workers && w < p->nworkers; w++) {
        tally_worker_t *wk = &p->workers[w];
        tally_wordtab_destroy(wk->tab);
        free(wk->dirty);
        free(wk->out.buf);
        free(wk->blocked);
        pthread_mutex_destroy(&wk->mu);
        pthread_cond_destroy(&wk->cv);
    }
    free(p->workers);
    p->workers = NULL;
    if (p->held) rd_kafka_topic_partition_list_destroy(p->held);
    p->held = NULL;
    free((void *)p->wm_r);
    p->wm_r = NULL;
    pthread_mutex_destroy(&p->ep_mu);
    pthread_cond_destroy(&p->ep_cv);
}

void tally_pipeline_free_parts(tally_pipeline_t *p) {
    for (int i = 0; i < p->nparts; i++) {
        tally_part_t *pt = &p->parts[i];
        if (pt->rings) {
            for (int w = 0; w < p->nworkers; w++) {
                tally_batch_t *b;
                while ((b = tally_spsc_pop(&pt->rings[w]))) tally_batch_destroy(b);
                tally_spsc_term(&pt->rings[w]);
            }
        }
        free(pt->rings);
        free(pt->builders);
        free(pt->wkey);
        free(pt->wstarts);
        tally_wordtab_destroy(pt->agg);
        if (pt->queue) rd_kafka_queue_destroy(pt->queue);
        free(pt->topic);
    }
    free(p->parts);
    p->parts = NULL;
    p->nparts = 0;
}

static int prepare(tally_pipeline_t *p, rd_kafka_t *consumer, const rd_kafka_topic_partition_list_t *l,
                   uint64_t epoch) {
    p->consumer = consumer;
    p->parts = calloc((size_t)(l->cnt ? l->cnt : 1), sizeof(*p->parts));
    if (!p->parts) return TALLY_ENOMEM;
    p->nparts = l->cnt;
    p->ring_cap = tally_budget_ring_batches(&p->budget, l->cnt, p->nworkers);
    p->stage1_max = tally_budget_sum_words(&p->budget, l->cnt);
    for (int i = 0; i < l->cnt; i++) {
        tally_part_t *pt = &p->parts[i];
        pt->pipe = p;
        pt->idx = i;
        pt->topic = strdup(l->elems[i].topic);
        pt->partition = l->elems[i].partition;
        pt->next_offset = pt->committed = l->elems[i].offset;
        atomic_init(&pt->cut, l->elems[i].offset);
        atomic_init(&pt->seen, l->elems[i].offset);
        pt->epoch = epoch;
        pt->max_ts = pt->last_input = pt->sent_max_ts = TALLY_WATERMARK_NONE;
        atomic_init(&pt->cut_max_ts, TALLY_WATERMARK_NONE);
        atomic_init(&pt->cut_last_input, TALLY_WATERMARK_NONE);
        if (p->conf->window_size_ms > 0) {
            pt->wkey = malloc(TALLY_WINDOW_KEY_PREFIX + (size_t)p->conf->max_word_bytes + 1);
            pt->wstarts = malloc(tally_window_per_record(p->conf->window_size_ms, tally_config_window_slide(p->conf)) *
                                 sizeof(int64_t));
            if (!pt->wkey || !pt->wstarts) return TALLY_ENOMEM;
        }
        if (p->conf->topology == TALLY_TOPOLOGY_DISTRIBUTED) {
            pt->stage2 = tally_scaleout_is_repartition(p->conf, pt->topic ? pt->topic : "");
            if (!pt->stage2 && !(pt->agg = tally_wordtab_new())) return TALLY_ENOMEM;
            atomic_init(&pt->held, p->held && rd_kafka_topic_partition_list_find(p->held, pt->topic, pt->partition));
        }
        pt->rings = calloc((size_t)p->nworkers, sizeof(*pt->rings));
        pt->builders = calloc((size_t)p->nworkers, sizeof(*pt->builders));
        if (!pt->topic || !pt->rings || !pt->builders) return TALLY_ENOMEM;
        for (int w = 0; w < p->nworkers; w++) {
            if (tally_spsc_init(&pt->rings[w], p->ring_cap)) return TALLY_ENOMEM;
            tally_batch_builder_init(&pt->builders[w]);
        }
        if (!consumer) continue;
        pt->queue = rd_kafka_queue_get_partition(consumer, pt->topic, pt->partition);
        if (!pt->queue) return TALLY_EKAFKA;
        rd_kafka_queue_forward(pt->queue, NULL);
    }
    return 0;
}

int tally_pipeline_prepare(tally_pipeline_t *p, rd_kafka_t *consumer, const rd_kafka_topic_partition_list_t *l,
                           uint64_t epoch) {
    return consumer ? prepare(p, consumer, l, epoch) : tally_pipeline_prepare_readers(p, l->cnt, epoch);
}

int tally_pipeline_prepare_readers(tally_pipeline_t *p, int n, uint64_t epoch) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++) rd_kafka_topic_partition_list_add(l, "files", i)->offset = 0;
    int r = prepare(p, NULL, l, epoch);
    rd_kafka_topic_partition_list_destroy(l);
    return r;
}

int tally_pipeline_start(tally_pipeline_t *p, tally_state_t *state, rd_kafka_t *producer, rd_kafka_topic_t *topic,
                         rd_kafka_topic_t *repartition, rd_kafka_topic_t *changelog, uint64_t epoch) {
    p->state = state;
    p->producer = producer;
    p->topic = topic;
    p->repartition = repartition;
    p->changelog = changelog;
    atomic_store(&p->stop_hard, false);
    atomic_store(&p->produce_failed, false);
    atomic_store(&p->req_final, false);
    atomic_store(&p->req_epoch, epoch);
    for (int i = 0; i < p->nparts; i++) p->parts[i].ptime = atomic_load(&p->ptime_cur);
    for (int w = 0; w < p->nworkers; w++) {
        tally_worker_t *wk = &p->workers[w];
        wk->wm = atomic_load(&p->wm);
        wk->wm_gen = atomic_load(&p->wm_gen);
        free(wk->blocked);
        wk->blocked = calloc((size_t)(p->nparts ? p->nparts : 1), 1);
        if (!wk->blocked) return TALLY_ENOMEM;
    }
    if (p->nparts == 0) return 0;
    p->up = true;
    for (int w = 0; w < p->nworkers; w++) {
        if (pthread_create(&p->workers[w].thread, NULL, tally_worker_main, &p->workers[w])) return TALLY_ENOMEM;
        p->workers[w].started = true;
    }
    for (int i = 0; i < p->nparts; i++) {
        if (pthread_create(&p->parts[i].thread, NULL, p->consumer ? tally_part_main : tally_filereader_main, &p->parts[i]))
            return TALLY_ENOMEM;
        p->parts[i].started = true;
    }
    return 0;
}

void tally_pipeline_join(tally_pipeline_t *p) {
    for (int i = 0; i < p->nparts; i++)
        if (p->parts[i].started) {
            if (p->parts[i].queue) rd_kafka_queue_yield(p->parts[i].queue);
            pthread_join(p->parts[i].thread, NULL);
            p->parts[i].started = false;
        }
    for (int w = 0; w < p->nworkers; w++)
        if (p->workers[w].started) {
            tally_worker_wake(&p->workers[w]);
            pthread_join(p->workers[w].thread, NULL);
            p->workers[w].started = false;
        }
    p->up = false;
}

void tally_pipeline_kill(tally_pipeline_t *p) {
    atomic_store(&p->stop_hard, true);
    tally_pipeline_join(p);
    for (int w = 0; w < p->nworkers; w++) {
        tally_worker_t *wk = &p->workers[w];
        tally_changes_clear(&wk->out);
        for (size_t i = 0; i < wk->ndirty; i++) wk->dirty[i]->dirty = 0;
        wk->ndirty = 0;
    }
}

void tally_pipeline_request(tally_pipeline_t *p, uint64_t epoch, bool final) {
    pthread_mutex_lock(&p->ep_mu);
    p->ep_done = 0;
    pthread_mutex_unlock(&p->ep_mu);
    atomic_store_explicit(&p->req_final, final, memory_order_release);
    atomic_store_explicit(&p->req_epoch, epoch, memory_order_release);
    for (int i = 0; i < p->nparts; i++)
        if (p->parts[i].queue) rd_kafka_queue_yield(p->parts[i].queue);
}

bool tally_pipeline_all_done(tally_pipeline_t *p) {
    pthread_mutex_lock(&p->ep_mu);
    bool done = p->ep_done == p->nworkers;
    pthread_mutex_unlock(&p->ep_mu);
    return done;
}

bool tally_pipeline_wait(tally_pipeline_t *p) {
    pthread_mutex_lock(&p->ep_mu);
    while (p->ep_done < p->nworkers && !tally_fault_get(p->fault, NULL, 0)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&p->ep_cv, &p->ep_mu, &ts);
    }
    bool done = p->ep_done == p->nworkers;
    pthread_mutex_unlock(&p->ep_mu);
    return done;
}

bool tally_pipeline_wait_read(tally_pipeline_t *p, const rd_kafka_topic_partition_list_t *targets, double timeout_s) {
    for (double waited = 0;; waited += 0.01) {
        bool all = true;
        for (int i = 0; all && i < p->nparts; i++) {
            const rd_kafka_topic_partition_t *t =
                rd_kafka_topic_partition_list_find(targets, p->parts[i].topic, p->parts[i].partition);
            all = !t || atomic_load_explicit(&p->parts[i].seen, memory_order_acquire) >= t->offset;
        }
        if (all) return true;
        if (waited >= timeout_s || tally_fault_get(p->fault, NULL, 0)) return false;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

bool tally_pipeline_has_input(tally_pipeline_t *p) {
    for (int i = 0; i < p->nparts; i++)
        if (atomic_load_explicit(&p->parts[i].seen, memory_order_acquire) != p->parts[i].committed) return true;
    return false;
}

rd_kafka_topic_partition_list_t *tally_pipeline_offsets(const tally_pipeline_t *p, bool cut,
                                                        const rd_kafka_topic_partition_list_t *minus) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(p->nparts + 1);
    for (int i = 0; i < p->nparts; i++) {
        const tally_part_t *pt = &p->parts[i];
        if (minus && rd_kafka_topic_partition_list_find(minus, pt->topic, pt->partition)) continue;
        rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition)->offset =
            cut ? atomic_load_explicit(&pt->cut, memory_order_relaxed) : pt->committed;
    }
    return l;
}

void tally_pipeline_committed(tally_pipeline_t *p) {
    for (int i = 0; i < p->nparts; i++) p->parts[i].committed = atomic_load_explicit(&p->parts[i].cut, memory_order_relaxed);
    /* Their buffers are the state writer's (tally_state_write_epoch): new lists for the next epoch. */
    for (int w = 0; w < p->nworkers; w++) p->workers[w].out = (tally_changes_t){0};
}

int tally_pipeline_seek(tally_pipeline_t *p, rd_kafka_topic_partition_list_t *list) {
    if (list->cnt == 0 || !p->consumer) return 0;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(p->consumer, list, 30000);
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

static void preload_one(const uint8_t *word, size_t len, int64_t count, void *opaque) {
    tally_pipeline_t *p = opaque;
    uint64_t h = XXH3_64bits(word, len);
    tally_worker_t *w = &p->workers[tally_route(h, p->nworkers)];
    tally_wordtab_insert(w->tab, h, word, (uint32_t)len, count);
}

int tally_pipeline_reload(tally_pipeline_t *p, tally_state_t *state) {
    for (int w = 0; w < p->nworkers; w++) tally_wordtab_clear(p->workers[w].tab);
    /* complete mode emits every key at every trigger, so the whole state lives in the tables. */
    bool all = p->conf->output_mode == TALLY_OUTPUT_COMPLETE;
    int r = all ? tally_state_foreach_count(state, preload_one, p) : 0;
    if (!r && !all) {
        uint8_t k[1];
        size_t kl;
        r = tally_state_first_count_key(state, k, sizeof(k), &kl);
        all = r == 0;
        if (r > 0) r = 0;
    }
    /* distributed: restores write counts into the state behind the workers' backs. */
    all = all && !r && p->conf->topology == TALLY_TOPOLOGY_SINGLE;
    for (int w = 0; w < p->nworkers; w++) {
        p->workers[w].complete = all;
        atomic_store_explicit(&p->workers[w].keys, tally_wordtab_size(p->workers[w].tab), memory_order_relaxed);
    }
    return r;
}

size_t tally_pipeline_out_keys(const tally_pipeline_t *p) {
    size_t n = 0;
    for (int w = 0; w < p->nworkers; w++) n += p->workers[w].out.n;
    return n;
}

size_t tally_pipeline_out_bytes(const tally_pipeline_t *p) {
    size_t n = 0;
    for (int w = 0; w < p->nworkers; w++) n += p->workers[w].out.len;
    return n;
}

uint64_t tally_pipeline_keys_in_memory(tally_pipeline_t *p) {
    uint64_t n = 0;
    for (int w = 0; w < p->nworkers; w++) n += atomic_load_explicit(&p->workers[w].keys, memory_order_relaxed);
    return n;
}

void tally_pipeline_view(tally_pipeline_t *p, tally_obs_view_t *v) {
    v->pipeline_up = p->up;
    v->nworkers = p->nworkers;
    v->keys_in_memory = tally_pipeline_keys_in_memory(p);
    v->parts = calloc((size_t)(p->nparts ? p->nparts : 1), sizeof(*v->parts));
    if (!v->parts) return;
    v->nparts = p->nparts;
    for (int i = 0; i < p->nparts; i++) {
        tally_part_t *pt = &p->parts[i];
        tally_obs_part_t *o = &v->parts[i];
        int64_t lo = -1, hi = -1;
        /* Cached from the last fetch response: never blocks. */
        if (!p->consumer || rd_kafka_get_watermark_offsets(p->consumer, pt->topic, pt->partition, &lo, &hi)) hi = -1;
        *o = (tally_obs_part_t){.topic = pt->topic, .partition = pt->partition, .committed = pt->committed,
                                .cut = atomic_load_explicit(&pt->cut, memory_order_relaxed), .read = atomic_load_explicit(&pt->seen, memory_order_acquire),
                                .high_watermark = hi,
                                .fetch_queue = pt->queue ? (int64_t)rd_kafka_queue_length(pt->queue) : 0};
        if (pt->rings && (o->rings = calloc((size_t)p->nworkers, sizeof(size_t))))
            for (int w = 0; w < p->nworkers; w++) o->rings[w] = tally_spsc_size(&pt->rings[w]);
    }
}

size_t tally_output_record(const tally_config_t *c, const uint8_t *key, uint32_t len, int64_t count, char **buf,
                           size_t *cap, const void **okey, size_t *oklen) {
    bool windowed = c->window_size_ms > 0;
    size_t need = windowed ? TALLY_JSON_WINDOW_MAX(len) + TALLY_WINDOW_OUTPUT_KEY_MAX(len) : TALLY_JSON_MAX(len);
    if (need > *cap) {
        char *b = realloc(*buf, need);
        if (!b) return 0;
        *buf = b;
        *cap = need;
    }
    if (!windowed) {
        *okey = key;
        *oklen = len;
        return tally_json_word_count(*buf, key, len, count);
    }
    size_t jl = tally_json_window_entry(*buf, key, len, c->window_size_ms, count);
    char *k = *buf + jl;
    *okey = k;
    *oklen = jl ? tally_window_output_key(k, key, len) : 0;
    return *oklen ? jl : 0;
}

bool tally_pipeline_produce(tally_pipeline_t *p, rd_kafka_topic_t *rkt, int32_t partition, const void *key, size_t klen,
                            const void *value, size_t vlen) {
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(p->producer, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                                                    RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)value, vlen),
                                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return true;
        if (err == RD_KAFKA_RESP_ERR__STATE || err == RD_KAFKA_RESP_ERR__FATAL) {
            /* The transaction failed under us (a rebalance fenced its offsets, the producer needs an
             * epoch bump): the epoch cannot commit; control rolls it back instead of committing. */
            if (!atomic_exchange(&p->produce_failed, true))
                tally_warn("producing to %s failed: %s; the epoch rolls back", rd_kafka_topic_name(rkt),
                           rd_kafka_err2str(err));
            return true;
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            tally_fault_raise(p->fault, TALLY_EXIT_ERROR, "producing to %s failed: %s", rd_kafka_topic_name(rkt),
                              rd_kafka_err2str(err));
            return false;
        }
        if (atomic_load(&p->stop_hard)) return false;
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void tally_pipeline_release(tally_pipeline_t *p, const rd_kafka_topic_partition_list_t *restored) {
    for (int i = 0; i < restored->cnt; i++) {
        const char *t = restored->elems[i].topic;
        int32_t part = restored->elems[i].partition;
        if (p->held) rd_kafka_topic_partition_list_del(p->held, t, part);
        for (int k = 0; k < p->nparts; k++) {
            tally_part_t *pt = &p->parts[k];
            if (pt->partition != part || strcmp(pt->topic, t) != 0) continue;
            atomic_store_explicit(&pt->held, false, memory_order_release);
            if (pt->queue) rd_kafka_queue_yield(pt->queue);
        }
    }
}

rd_kafka_topic_partition_list_t *tally_pipeline_reading(const tally_pipeline_t *p) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(p->nparts + 1);
    for (int i = 0; i < p->nparts; i++) {
        tally_part_t *pt = &p->parts[i];
        if (!atomic_load_explicit(&pt->held, memory_order_acquire))
            rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition)->offset =
                atomic_load_explicit(&pt->cut, memory_order_relaxed);
    }
    return l;
}
