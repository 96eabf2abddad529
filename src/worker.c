/* SPDX-License-Identifier: MIT */
/* A worker thread: applies word batches from every partition's ring to its shard of the counts,
 * aligns on epoch barriers (Chandy-Lamport, as Flink), and at each barrier emits its changed keys
 * into the open transaction and hands the (word, count) list to the control thread. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "pipeline.h"
#include "scaleout.h"
#include "tally/clock.h"
#include "tally/engine.h"
#include "tally/log.h"

/* A worker that found its rings empty sleeps on its condition variable; pushers wake it. The ring's
 * release store and this seq_cst load may pass each other, so a wake-up can be missed: the sleep is
 * therefore bounded (5 ms), which bounds the cost of that race without a full fence on every push. */
void tally_worker_wake(tally_worker_t *w) {
    if (atomic_load_explicit(&w->sleeping, memory_order_seq_cst)) {
        pthread_mutex_lock(&w->mu);
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
}

static bool rings_empty(tally_worker_t *w) {
    tally_pipeline_t *pipe = w->pipe;
    for (int p = 0; p < pipe->nparts; p++)
        if (!w->blocked[p] && tally_spsc_size(&pipe->parts[p].rings[w->idx])) return false;
    return true;
}

/* Sleeps on the condition variable for at most ms (a bound on any missed wake-up). */
static void nap(tally_worker_t *w, long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&w->mu);
    pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    pthread_mutex_unlock(&w->mu);
}

static void idle(tally_worker_t *w) {
    atomic_store(&w->sleeping, 1);
    if (rings_empty(w) && !atomic_load(&w->pipe->stop_hard)) nap(w, 5);
    atomic_store(&w->sleeping, 0);
}

static bool mark_dirty(tally_worker_t *w, tally_word_t *e) {
    if (e->dirty) return true;
    if (w->ndirty == w->capdirty) {
        size_t cap = w->capdirty ? w->capdirty * 2 : 4096;
        tally_word_t **d = realloc(w->dirty, cap * sizeof(*d));
        if (!d) return false;
        w->dirty = d;
        w->capdirty = cap;
    }
    e->dirty = 1;
    w->dirty[w->ndirty++] = e;
    return true;
}

/* Spark's late rule, per (record, window): a window the epoch's watermark closed takes nothing
 * more (its final count may be out already, and its state is deleted). */
static bool window_closed(const tally_worker_t *w, uint64_t hash, const uint8_t *key, size_t len) {
    int64_t start;
    const uint8_t *word;
    size_t wl;
    if (tally_window_key_decode(key, len, &start, &word, &wl)) return false;
    return tally_window_closed(start, w->pipe->conf->window_size_ms, tally_pipeline_wm(w->pipe, hash, w->wm));
}

static bool apply(tally_worker_t *w, tally_batch_t *b) {
    tally_pipeline_t *pipe = w->pipe;
    bool late_check = pipe->conf->window_size_ms > 0 && w->wm != TALLY_WATERMARK_NONE;
    uint64_t late = 0;
    for (uint32_t off = 0; off < b->used;) {
        tally_rec_t *r = tally_batch_rec(b, off);
        off += (uint32_t)tally_rec_size(r->len);
        if (late_check && window_closed(w, r->hash, r->bytes, r->len)) {
            late += r->delta;
            continue;
        }
        tally_word_t *e = tally_wordtab_find(w->tab, r->hash, r->bytes, r->len);
        if (!e) {
            int64_t stored = 0;
            if (!w->complete && tally_state_get_count(pipe->state, r->bytes, r->len, &stored) != 0) {
                tally_fault_raise(pipe->fault, TALLY_EXIT_ERROR, "state read failed in worker %d", w->idx);
                return false;
            }
            e = tally_wordtab_insert(w->tab, r->hash, r->bytes, r->len, stored);
            if (!e) {
                tally_fault_raise(pipe->fault, TALLY_EXIT_ERROR, "out of memory in worker %d", w->idx);
                return false;
            }
        }
        e->count += r->delta;
        if (!mark_dirty(w, e)) {
            tally_fault_raise(pipe->fault, TALLY_EXIT_ERROR, "out of memory in worker %d", w->idx);
            return false;
        }
    }
    if (late) atomic_fetch_add_explicit(&pipe->late_total, late, memory_order_relaxed);
    /* Published for metrics: other threads never read the table itself (shrink() replaces it). */
    atomic_store_explicit(&w->keys, tally_wordtab_size(w->tab), memory_order_relaxed);
    /* Changed words cannot leave memory before they are committed: a large dirty set asks for an
     * early trigger, which also splits a flood of new words into several transactions. */
    if (w->ndirty >= w->epoch_max / 2 && !atomic_load_explicit(&pipe->epoch_wanted, memory_order_relaxed)) {
        atomic_store(&pipe->epoch_wanted, true);
        pipe->wake(pipe->wake_opaque);
    }
    return true;
}

typedef struct {
    tally_worker_t *w;
    tally_wordtab_t *keep;
    bool ok;
} purge_ctx_t;

static void keep_open(tally_word_t *e, void *opaque) {
    purge_ctx_t *c = opaque;
    if (!c->ok || window_closed(c->w, e->hash, e->bytes, e->len)) return;
    if (!tally_wordtab_insert(c->keep, e->hash, e->bytes, e->len, e->count)) c->ok = false;
}

/* The watermark moved: the windows it closed leave memory (control deletes them from the state
 * with the epoch that emits them). Runs between epochs, when nothing is dirty. */
static bool purge_closed(tally_worker_t *w) {
    purge_ctx_t c = {.w = w, .keep = tally_wordtab_new(), .ok = true};
    if (!c.keep) return false;
    tally_wordtab_foreach(w->tab, keep_open, &c);
    if (!c.ok) {
        tally_wordtab_destroy(c.keep);
        return false;
    }
    tally_wordtab_destroy(w->tab);
    w->tab = c.keep;
    atomic_store_explicit(&w->keys, tally_wordtab_size(w->tab), memory_order_relaxed);
    return true;
}

/* Windows with a watermark: after an epoch's barriers, the next epoch's records are applied only
 * under the watermark control computes from that epoch's cut (evtime.h). False when stopped. */
static bool await_watermark(tally_worker_t *w, uint64_t epoch) {
    tally_pipeline_t *pipe = w->pipe;
    while (atomic_load_explicit(&pipe->wm_epoch, memory_order_acquire) <= epoch) {
        if (atomic_load(&pipe->stop_hard)) return false;
        atomic_store(&w->sleeping, 1);
        if (atomic_load_explicit(&pipe->wm_epoch, memory_order_acquire) <= epoch) nap(w, 1);
        atomic_store(&w->sleeping, 0);
    }
    uint64_t gen = atomic_load_explicit(&pipe->wm_gen, memory_order_relaxed);
    if (gen == w->wm_gen) return true;
    w->wm_gen = gen;
    w->wm = atomic_load_explicit(&pipe->wm, memory_order_relaxed);
    if (purge_closed(w)) return true;
    tally_fault_raise(pipe->fault, TALLY_EXIT_ERROR, "out of memory in worker %d", w->idx);
    return false;
}

/* Keeps only the words of this epoch (not stored yet); every other word is in RocksDB once the
 * epochs before this one are written. */
static bool shrink(tally_worker_t *w) {
    /* A word dropped here is read from the state when it comes again: the epochs before this one
     * must be written first (the state writer may be behind). */
    char err[512];
    if (tally_state_sync(w->pipe->state, err, sizeof(err))) {
        tally_fault_raise(w->pipe->fault, TALLY_EXIT_ERROR, "%s", err); /* the first fault is the one reported */
        return false;
    }
    tally_wordtab_t *keep = tally_wordtab_new();
    if (!keep) return false;
    for (size_t i = 0; i < w->ndirty; i++) {
        tally_word_t *e = w->dirty[i];
        tally_word_t *n = tally_wordtab_insert(keep, e->hash, e->bytes, e->len, e->count);
        if (!n) {
            tally_wordtab_destroy(keep);
            return false;
        }
        w->dirty[i] = n;
        n->dirty = 1;
    }
    w->evicted += tally_wordtab_size(w->tab) - w->ndirty;
    w->complete = false;
    tally_wordtab_destroy(w->tab);
#ifdef __GLIBC__
    /* glibc keeps the freed table's chunks in this thread's arena (and the RocksDB blocks read since
     * in others): hand the free pages back, or memory.max.bytes is exceeded by what the allocator
     * holds (4.5M distinct words: 319 -> 245 MiB peak RSS). Only here, where the cache bound was
     * reached: it walks every arena. */
    malloc_trim(0);
#endif
    w->tab = keep;
    atomic_store_explicit(&w->keys, tally_wordtab_size(keep), memory_order_relaxed);
    return true;
}

typedef struct {
    tally_worker_t *w;
    char *json;
    size_t json_cap;
    bool ok;
} emit_ctx_t;

static void emit_one(tally_word_t *e, void *opaque) {
    emit_ctx_t *c = opaque;
    tally_worker_t *w = c->w;
    if (!c->ok) return;
    if (!tally_changes_add(&w->out, e->bytes, e->len, e->count)) {
        tally_fault_raise(w->pipe->fault, TALLY_EXIT_ERROR, "out of memory in worker %d", w->idx);
        c->ok = false;
        return;
    }
    if (!w->pipe->producer) return;
    /* topology=distributed: every new count goes to the changelog, for the next owner (in append
     * mode too, where nothing else of it is written yet). */
    if (w->pipe->changelog) {
        char v[24];
        int vl = snprintf(v, sizeof(v), "%" PRId64, e->count);
        c->ok = tally_pipeline_produce(w->pipe, w->pipe->changelog,
                                       tally_scaleout_partition(e->hash, w->pipe->conf->repartition_partitions), e->bytes,
                                       e->len, v, (size_t)vl);
        if (!c->ok) return;
    }
    /* append: the output is the windows the watermark closed, which control reads from the state. */
    if (w->pipe->conf->output_mode == TALLY_OUTPUT_APPEND) return;
    const void *key;
    size_t kl;
    size_t jl = tally_output_record(w->pipe->conf, e->bytes, e->len, e->count, &c->json, &c->json_cap, &key, &kl);
    if (!jl) {
        tally_fault_raise(w->pipe->fault, TALLY_EXIT_ERROR, "out of memory in worker %d", w->idx);
        c->ok = false;
        return;
    }
    c->ok = tally_pipeline_produce(w->pipe, w->pipe->topic, RD_KAFKA_PARTITION_UA, key, kl, c->json, jl);
}

/* A changed word with its first 8 key bytes as a big-endian number (zero-padded): the sort compares
 * the numbers and reads the words only on a tie. Comparing the words themselves (a pointer chase
 * and a memcmp per comparison) took 6% of tally's CPU at a 100 ms trigger (perf). */
typedef struct {
    uint64_t prefix;
    tally_word_t *e;
} sort_ent_t;

static int word_order(const void *a, const void *b) {
    const sort_ent_t *x = a, *y = b;
    if (x->prefix != y->prefix) return x->prefix < y->prefix ? -1 : 1;
    return tally_state_key_cmp(x->e->bytes, x->e->len, y->e->bytes, y->e->len);
}

/* The dirty list in key order; false when out of memory. */
static bool sort_dirty(tally_worker_t *w) {
    sort_ent_t *s = malloc(w->ndirty * sizeof(*s));
    if (!s) return false;
    for (size_t i = 0; i < w->ndirty; i++) {
        const tally_word_t *e = w->dirty[i];
        uint64_t p = 0;
        for (uint32_t k = 0; k < 8; k++) p = p << 8 | (k < e->len ? e->bytes[k] : 0);
        s[i] = (sort_ent_t){.prefix = p, .e = w->dirty[i]};
    }
    qsort(s, w->ndirty, sizeof(*s), word_order);
    for (size_t i = 0; i < w->ndirty; i++) w->dirty[i] = s[i].e;
    free(s);
    return true;
}

/* All barriers of the epoch are in: emit, hand over, report done. The changed words go out in
 * key order, so the epoch's change list is sorted: the state writer merges the workers' lists (and
 * those of the epochs it writes together, a word once) in key order, which RocksDB's memtable
 * inserts 1.5x faster than random order (its skip list reuses the last insert's position), and the
 * sort runs here, on the workers, in parallel. */
static bool epoch_done(tally_worker_t *w) {
    tally_pipeline_t *pipe = w->pipe;
    emit_ctx_t c = {.w = w, .ok = true};
    if (pipe->conf->output_mode == TALLY_OUTPUT_COMPLETE) tally_wordtab_foreach(w->tab, emit_one, &c);
    else {
        if (w->ndirty > 1 && !sort_dirty(w)) {
            tally_fault_raise(pipe->fault, TALLY_EXIT_ERROR, "out of memory in worker %d", w->idx);
            c.ok = false;
        }
        for (size_t i = 0; i < w->ndirty && c.ok; i++) emit_one(w->dirty[i], &c);
    }
    if (c.ok && w->cache_max && pipe->conf->output_mode != TALLY_OUTPUT_COMPLETE && tally_wordtab_size(w->tab) > w->cache_max &&
        !shrink(w)) {
        tally_fault_raise(pipe->fault, TALLY_EXIT_ERROR, "out of memory in worker %d", w->idx);
        c.ok = false;
    }
    for (size_t i = 0; i < w->ndirty; i++) w->dirty[i]->dirty = 0;
    w->ndirty = 0;
    free(c.json);

    pthread_mutex_lock(&pipe->ep_mu);
    pipe->ep_done++;
    pthread_cond_broadcast(&pipe->ep_cv);
    pthread_mutex_unlock(&pipe->ep_mu);
    pipe->wake(pipe->wake_opaque);
    return c.ok;
}

static void drain_discard(tally_worker_t *w) {
    tally_pipeline_t *pipe = w->pipe;
    for (int p = 0; p < pipe->nparts; p++) {
        tally_batch_t *b;
        while ((b = tally_spsc_pop(&pipe->parts[p].rings[w->idx]))) tally_batch_destroy(b);
    }
}

void *tally_worker_main(void *arg) {
    tally_worker_t *w = arg;
    tally_pipeline_t *pipe = w->pipe;
    char tag[16];
    snprintf(tag, sizeof(tag), "w%d", w->idx);
    tally_log_set_thread(tag);

    int nblocked = 0;
    bool final = false;
    bool wait_wm = pipe->conf->window_size_ms > 0 && pipe->conf->watermark_delay_ms >= 0;
    memset(w->blocked, 0, (size_t)pipe->nparts);
    w->done_epoch = atomic_load(&pipe->req_epoch);
    for (;;) {
        if (atomic_load(&pipe->stop_hard)) break;
        /* An epoch's worth of changed words (memory.max.bytes, budget.h): wait for the early trigger
         * asked for at half of it before taking more. What the rings and the partition threads' last
         * reads hold before the barriers is still applied (measured: up to as much again). */
        if (w->ndirty >= w->epoch_max && nblocked == 0 &&
            atomic_load_explicit(&pipe->req_epoch, memory_order_acquire) <= w->done_epoch) {
            idle(w);
            continue;
        }
        bool progressed = false;
        for (int p = 0; p < pipe->nparts; p++) {
            if (w->blocked[p]) continue;
            tally_spsc_t *ring = &pipe->parts[p].rings[w->idx];
            for (int k = 0; k < 16; k++) {
                tally_batch_t *b = tally_spsc_pop(ring);
                if (!b) break;
                progressed = true;
                if (b->kind == TALLY_BATCH_WORDS) {
                    bool ok = apply(w, b);
                    tally_batch_destroy(b);
                    if (!ok) goto out;
                    continue;
                }
                w->blocked[p] = 1;
                nblocked++;
                final = final || b->final;
                tally_batch_destroy(b);
                break;
            }
        }
        if (pipe->nparts > 0 && nblocked == pipe->nparts) {
            w->aligned_s = tally_mono_s();
            w->done_epoch = atomic_load_explicit(&pipe->req_epoch, memory_order_acquire);
            if (!epoch_done(w)) break;
            memset(w->blocked, 0, (size_t)pipe->nparts);
            nblocked = 0;
            if (final) break;
            if (wait_wm && !await_watermark(w, w->done_epoch)) break;
            continue;
        }
        if (!progressed) idle(w);
    }
out:
    drain_discard(w);
    return NULL;
}
