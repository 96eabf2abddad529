/* SPDX-License-Identifier: MIT */
/* A file reader thread (input.path): at each epoch request it reads the chunks the epoch's plan gave
 * it, sends their words to the workers, then the epoch's barriers; its "offset" counts the bytes it
 * read, so the epoch machine sees that input moved. */
#include <stdio.h>
#include <time.h>

#include "pipeline.h"
#include "tally/clock.h"
#include "tally/crashpoint.h"
#include "tally/engine.h"
#include "tally/log.h"

typedef struct {
    tally_part_t *p;
    int64_t ts;       /* windows: the epoch's processing time (files carry no record time) */
    uint64_t words;
    bool failed;
} read_ctx_t;

static bool on_word(const uint8_t *word, size_t len, void *opaque) {
    read_ctx_t *x = opaque;
    if (atomic_load_explicit(&x->p->pipe->stop_hard, memory_order_relaxed) || !tally_part_add_at(x->p, word, len, x->ts)) {
        x->failed = true;
        return false;
    }
    x->words++;
    return true;
}

/* Reads this reader's chunks of the plan. False when the engine stops hard. */
static bool read_plan(tally_part_t *p, const tally_file_plan_t *plan) {
    tally_pipeline_t *pipe = p->pipe;
    tally_crashpoint_hold("before_read"); /* a test changes the planned files meanwhile */
    const int *mine = plan->assign[p->idx % plan->nreaders];
    for (int k = 0; p->idx < plan->nreaders && mine[k] >= 0; k++) {
        const tally_chunk_t *c = &plan->chunks[mine[k]];
        tally_file_t *f = &plan->files[c->file];
        read_ctx_t x = {.p = p, .ts = atomic_load_explicit(&pipe->ptime_cur, memory_order_relaxed)};
        if (p->wkey) {
            if (x.ts > p->max_ts) p->max_ts = x.ts;
            p->last_input = tally_wall_ms();
        }
        uint64_t lines = 0, dropped = 0;
        tally_file_read_chunk(f, c, (size_t)pipe->conf->max_word_bytes, on_word, &x, &lines, &dropped);
        if (x.failed) return false;
        if (!tally_part_flush(p)) return false;
        p->next_offset += (c->to == INT64_MAX ? f->size : c->to - c->from) + 1;
        atomic_store_explicit(&p->seen, p->next_offset, memory_order_release);
        atomic_fetch_add_explicit(&p->lines, lines, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->words, x.words, memory_order_relaxed);
        if (dropped) {
            atomic_fetch_add_explicit(&p->dropped, dropped, memory_order_relaxed);
            atomic_fetch_add_explicit(&pipe->dropped_total, dropped, memory_order_relaxed);
        }
    }
    return true;
}

void *tally_filereader_main(void *arg) {
    tally_part_t *p = arg;
    tally_pipeline_t *pipe = p->pipe;
    char tag[16];
    snprintf(tag, sizeof(tag), "r%d", p->idx);
    tally_log_set_thread(tag);
    for (;;) {
        uint64_t e = atomic_load_explicit(&pipe->req_epoch, memory_order_acquire);
        if (e > p->epoch) {
            bool final = atomic_load_explicit(&pipe->req_final, memory_order_acquire);
            const tally_file_plan_t *plan = pipe->plan;
            if (plan && plan->epoch == e && !read_plan(p, plan)) break;
            if (!tally_part_barrier(p, e, final) || final) break;
        }
        if (atomic_load(&pipe->stop_hard)) break;
        /* Epochs come at most once per trigger: a short nap costs nothing measurable. */
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int w = 0; w < pipe->nworkers; w++) tally_batch_builder_term(&p->builders[w]);
    return NULL;
}
