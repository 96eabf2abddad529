/* SPDX-License-Identifier: MIT */
/* hotpath: tally's per-word path without Kafka, on Zipf text generated in memory: tokenize, XXH3, route
 * to a worker, batch builder (pre-combining repeats), wordtab apply (find or insert, add, mark dirty).
 * Stages are timed cumulatively (tokenize; + XXH3; + route and batch; + apply), then the full path with
 * a partition thread and a worker thread joined by a tally_spsc ring, as in the engine. A separate
 * stage times the output record encoder (tally_json_word_count) on every word of the text.
 * Each thread owns its builders and tables; a batch pushed on the ring belongs to the worker. */
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "tally/batch.h"
#include "tally/json.h"
#include "tally/spsc.h"
#include "tally/tokenize.h"
#include "tally/wordtab.h"

#define HP_MAX_WORKERS 64

typedef struct {
    uint64_t lines, vocab, wpl, workers, ring, passes, seed;
    double zipf;
    const char *only; /* --stage: run only that one (NULL: all) */
} hp_opts_t;

typedef struct {
    uint8_t *text;    /* lines back to back */
    uint32_t *start;  /* line i is text[start[i] .. start[i+1]) */
    uint64_t nlines, nwords, bytes;
} hp_text_t;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "hotpath: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* Zipf text: vocabulary of distinct lowercase words of 3..10 bytes, rank k drawn with weight 1/k^s. */
static hp_text_t make_text(const hp_opts_t *o) {
    uint64_t seed = o->seed;
    /* distinct: the last D letters spell the word's index in base 26, D fixed for the vocabulary */
    int digits = 1;
    for (uint64_t cap26 = 26; cap26 < o->vocab; cap26 *= 26) digits++;
    if (digits > 10) { fprintf(stderr, "hotpath: vocab too large\n"); exit(2); }
    char (*words)[12] = xmalloc(o->vocab * sizeof(*words));
    uint8_t *wlen = xmalloc(o->vocab);
    for (uint64_t i = 0; i < o->vocab; i++) {
        int len = 3 + (int)(splitmix(&seed) % 8);
        if (len < digits) len = digits;
        uint64_t x = i;
        for (int k = len - 1; k >= len - digits; k--, x /= 26) words[i][k] = (char)('a' + x % 26);
        for (int k = 0; k < len - digits; k++) words[i][k] = (char)('a' + splitmix(&seed) % 26);
        wlen[i] = (uint8_t)len;
    }
    double *cdf = xmalloc(o->vocab * sizeof(*cdf)), sum = 0;
    for (uint64_t k = 0; k < o->vocab; k++) cdf[k] = (sum += 1.0 / pow((double)(k + 1), o->zipf));
    hp_text_t t = {0};
    t.nlines = o->lines;
    t.start = xmalloc((o->lines + 1) * sizeof(*t.start));
    size_t cap = o->lines * o->wpl * 11 + 16;
    if (cap > UINT32_MAX) { fprintf(stderr, "hotpath: text over 4 GB; fewer --lines\n"); exit(2); }
    t.text = xmalloc(cap);
    size_t at = 0;
    for (uint64_t i = 0; i < o->lines; i++) {
        t.start[i] = (uint32_t)at;
        for (uint64_t j = 0; j < o->wpl; j++) {
            double u = (double)(splitmix(&seed) >> 11) / 9007199254740992.0 * sum;
            uint64_t lo = 0, hi = o->vocab - 1;
            while (lo < hi) {
                uint64_t mid = (lo + hi) / 2;
                if (cdf[mid] < u) lo = mid + 1; else hi = mid;
            }
            if (j) t.text[at++] = ' ';
            memcpy(t.text + at, words[lo], wlen[lo]);
            at += wlen[lo];
            t.nwords++;
        }
    }
    t.start[o->lines] = (uint32_t)at;
    t.bytes = at;
    free(words);
    free(wlen);
    free(cdf);
    return t;
}

static inline int route(uint64_t hash, int nworkers) { /* as the engine's tally_route */
    return (int)(((hash >> 32) * (uint64_t)nworkers) >> 32);
}

/* ---- the worker side: the engine's apply() without the state store (a miss starts at 0) ---------- */

typedef struct {
    tally_wordtab_t *tab;
    tally_word_t **dirty;
    size_t ndirty, capdirty;
    uint64_t applied;
} hp_worker_t;

static void worker_apply(hp_worker_t *w, tally_batch_t *b) {
    for (uint32_t off = 0; off < b->used;) {
        tally_rec_t *r = tally_batch_rec(b, off);
        off += (uint32_t)tally_rec_size(r->len);
        tally_word_t *e = tally_wordtab_find(w->tab, r->hash, r->bytes, r->len);
        if (!e) e = tally_wordtab_insert(w->tab, r->hash, r->bytes, r->len, 0);
        if (!e) { fprintf(stderr, "hotpath: out of memory\n"); exit(1); }
        e->count += r->delta;
        w->applied += r->delta;
        if (!e->dirty) {
            if (w->ndirty == w->capdirty) {
                w->capdirty = w->capdirty ? w->capdirty * 2 : 4096;
                w->dirty = realloc(w->dirty, w->capdirty * sizeof(*w->dirty));
                if (!w->dirty) { fprintf(stderr, "hotpath: out of memory\n"); exit(1); }
            }
            e->dirty = 1;
            w->dirty[w->ndirty++] = e;
        }
    }
}

static void worker_trigger(hp_worker_t *w) { /* what a trigger does to the dirty set, minus the output */
    for (size_t i = 0; i < w->ndirty; i++) w->dirty[i]->dirty = 0;
    w->ndirty = 0;
}

/* ---- single-threaded stages -------------------------------------------------------------------- */

enum { ST_TOKENIZE, ST_HASH, ST_BATCH, ST_FULL, ST_JSON, ST_N };
static const char *const stage_name[ST_N] = {"tokenize", "tokenize+xxh3", "tokenize+xxh3+route+batch",
                                             "tokenize+xxh3+route+batch+wordtab", "json"};

/* The output record of every word of the text, with counts of 1 to 8 digits (as a trigger emits them,
 * one record per changed word; here one per word so the figure is per word). */
__attribute__((noinline)) static uint64_t run_json(const hp_text_t *t) {
    char out[TALLY_JSON_MAX(64)];
    uint64_t sink = 0, words = 0;
    for (uint64_t i = 0; i < t->nlines; i++) {
        tally_tokenizer_t tk;
        const uint8_t *w;
        size_t len;
        tally_tokenizer_init(&tk, t->text + t->start[i], t->start[i + 1] - t->start[i]);
        while (tally_tokenizer_next(&tk, &w, &len)) {
            int64_t count = (int64_t)((words * 2654435761u) % 100000000u);
            sink += tally_json_word_count(out, w, len, count);
            sink += (uint8_t)out[len];
            words++;
        }
    }
    if (sink == 42) fputc(' ', stderr);
    return words;
}

/* Not inlined: callgrind --toggle-collect=run_stage counts a stage's instructions alone. */
__attribute__((noinline)) static uint64_t run_stage(const hp_text_t *t, int stage, int nworkers, hp_worker_t *ws) {
    if (stage == ST_JSON) return run_json(t);
    tally_batch_builder_t *bb = xmalloc(sizeof(*bb) * (size_t)nworkers);
    for (int i = 0; i < nworkers; i++) tally_batch_builder_init(&bb[i]);
    uint64_t sink = 0, words = 0;
    for (uint64_t i = 0; i < t->nlines; i++) {
        tally_tokenizer_t tk;
        const uint8_t *w;
        size_t len;
        tally_tokenizer_init(&tk, t->text + t->start[i], t->start[i + 1] - t->start[i]);
        while (tally_tokenizer_next(&tk, &w, &len)) {
            words++;
            if (stage == ST_TOKENIZE) { sink += len; continue; }
            uint64_t h = XXH3_64bits(w, len);
            if (stage == ST_HASH) { sink ^= h; continue; }
            int k = route(h, nworkers);
            while (!tally_batch_builder_add(&bb[k], h, w, (uint32_t)len)) {
                tally_batch_t *b = tally_batch_builder_take(&bb[k]);
                if (stage == ST_FULL) worker_apply(&ws[k], b);
                tally_batch_destroy(b);
            }
        }
    }
    for (int k = 0; k < nworkers; k++) {
        tally_batch_t *b = tally_batch_builder_take(&bb[k]);
        if (b && stage == ST_FULL) worker_apply(&ws[k], b);
        tally_batch_destroy(b);
        if (stage == ST_FULL) worker_trigger(&ws[k]);
        tally_batch_builder_term(&bb[k]);
    }
    free(bb);
    if (sink == 42) fputc(' ', stderr); /* keeps the compiler from dropping the loop */
    return words;
}

/* ---- two threads: partition thread -> ring -> worker thread ------------------------------------ */

typedef struct {
    const hp_text_t *t;
    tally_spsc_t ring;
    hp_worker_t w;
    _Atomic bool done;
    uint64_t full_waits;
} hp_pipe_t;

static void *pipe_worker(void *arg) {
    hp_pipe_t *p = arg;
    for (;;) {
        tally_batch_t *b = tally_spsc_pop(&p->ring);
        if (!b) {
            if (atomic_load_explicit(&p->done, memory_order_acquire) && tally_spsc_size(&p->ring) == 0) break;
            sched_yield();
            continue;
        }
        worker_apply(&p->w, b);
        tally_batch_destroy(b);
    }
    worker_trigger(&p->w);
    return NULL;
}

static void pipe_push(hp_pipe_t *p, tally_batch_t *b) {
    while (!tally_spsc_push(&p->ring, b)) {
        p->full_waits++;
        sched_yield();
    }
}

static uint64_t run_pipe(hp_pipe_t *p) {
    const hp_text_t *t = p->t;
    tally_batch_builder_t bb;
    tally_batch_builder_init(&bb);
    pthread_t th;
    atomic_store(&p->done, false);
    pthread_create(&th, NULL, pipe_worker, p);
    uint64_t words = 0;
    for (uint64_t i = 0; i < t->nlines; i++) {
        tally_tokenizer_t tk;
        const uint8_t *w;
        size_t len;
        tally_tokenizer_init(&tk, t->text + t->start[i], t->start[i + 1] - t->start[i]);
        while (tally_tokenizer_next(&tk, &w, &len)) {
            words++;
            uint64_t h = XXH3_64bits(w, len);
            while (!tally_batch_builder_add(&bb, h, w, (uint32_t)len)) pipe_push(p, tally_batch_builder_take(&bb));
        }
    }
    tally_batch_t *b = tally_batch_builder_take(&bb);
    if (b) pipe_push(p, b);
    tally_batch_builder_term(&bb);
    atomic_store_explicit(&p->done, true, memory_order_release);
    pthread_join(th, NULL);
    return words;
}

static uint64_t parse_count(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (*end == 'k') v *= 1e3;
    else if (*end == 'M') v *= 1e6;
    else if (*end == 'G') v *= 1e9;
    else if (*end) { fprintf(stderr, "hotpath: bad number '%s'\n", s); exit(2); }
    return (uint64_t)v;
}

static void usage(FILE *out) {
    fputs("Usage: hotpath [--lines N] [--vocab V] [--zipf S] [--words-per-line N] [--workers W]\n"
          "               [--ring CAP] [--passes K] [--seed N] [--stage NAME]\n"
          "\n"
          "tally's per-word path without Kafka on Zipf text generated in memory. For each stage (cumulative:\n"
          "tokenize; + XXH3; + route to W workers and batch with pre-combine; + wordtab apply) one thread runs\n"
          "the text K times and the best pass is printed; then the full path on two threads (a partition\n"
          "thread and one worker joined by a tally_spsc ring of CAP batches); then stage json, the output record\n"
          "of every word (tally_json_word_count, counts of 1-8 digits). --stage NAME runs only that stage\n"
          "(tokenize, xxh3, batch, wordtab, json, spsc), e.g. under valgrind. One line per result:\n"
          "  hotpath mode=M stage=S threads=T lines=N words=W vocab=V zipf=Z wpl=L seconds=S words_per_s=X\n"
          "          per_core=Y\n"
          "per_core = words / process CPU seconds of that pass. Defaults: --lines 2M --vocab 100000\n"
          "--zipf 1.0 --words-per-line 10 --workers 2 --ring 256 --passes 3 --seed 42. Suffixes k, M, G.\n",
          out);
}

int main(int argc, char **argv) {
    hp_opts_t o = {.lines = 2000000, .vocab = 100000, .wpl = 10, .workers = 2, .ring = 256, .passes = 3,
                   .seed = 42, .zipf = 1.0};
    static const struct option opts[] = {
        {"lines", required_argument, NULL, 'l'},  {"vocab", required_argument, NULL, 'v'},
        {"zipf", required_argument, NULL, 'z'},   {"words-per-line", required_argument, NULL, 'w'},
        {"workers", required_argument, NULL, 'W'}, {"ring", required_argument, NULL, 'r'},
        {"passes", required_argument, NULL, 'p'}, {"seed", required_argument, NULL, 's'},
        {"stage", required_argument, NULL, 'S'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "l:v:z:w:W:r:p:s:S:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'l': o.lines = parse_count(optarg); break;
        case 'v': o.vocab = parse_count(optarg); break;
        case 'z': o.zipf = atof(optarg); break;
        case 'w': o.wpl = parse_count(optarg); break;
        case 'W': o.workers = parse_count(optarg); break;
        case 'r': o.ring = parse_count(optarg); break;
        case 'p': o.passes = parse_count(optarg); break;
        case 's': o.seed = parse_count(optarg); break;
        case 'S': o.only = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!o.lines || !o.vocab || !o.wpl || !o.passes || o.workers < 1 || o.workers > HP_MAX_WORKERS ||
        o.ring < 2 || (o.ring & (o.ring - 1))) {
        fprintf(stderr, "hotpath: bad parameters (workers 1..%d, ring a power of two)\n", HP_MAX_WORKERS);
        return 2;
    }
    static const char *const short_name[ST_N + 1] = {"tokenize", "xxh3", "batch", "wordtab", "json", "spsc"};
    int only = -1;
    for (int k = 0; o.only && k <= ST_N; k++)
        if (strcmp(o.only, short_name[k]) == 0) only = k;
    if (o.only && only < 0) { fprintf(stderr, "hotpath: unknown stage '%s'\n", o.only); return 2; }
    double g0 = mono_s();
    hp_text_t t = make_text(&o);
    fprintf(stderr, "hotpath: generated %" PRIu64 " lines, %" PRIu64 " words, %.1f MB in %.1f s\n", t.nlines,
            t.nwords, (double)t.bytes / 1e6, mono_s() - g0);

    int nw = (int)o.workers;
    for (int stage = 0; stage < ST_N; stage++) {
        if (only >= 0 && stage != only) continue;
        double best = 0, best_cpu = 0;
        hp_worker_t *ws = calloc((size_t)nw, sizeof(*ws));
        for (int k = 0; k < nw; k++) ws[k].tab = tally_wordtab_new();
        for (uint64_t pass = 0; pass < o.passes; pass++) {
            double c0 = cpu_s(), m0 = mono_s();
            uint64_t words = run_stage(&t, stage, nw, ws);
            double secs = mono_s() - m0, cs = cpu_s() - c0;
            if (words != t.nwords) { fprintf(stderr, "hotpath: counted %" PRIu64 " words\n", words); return 1; }
            if (!best || secs < best) { best = secs; best_cpu = cs; }
        }
        if (stage == ST_FULL) { /* every word must have landed, each pass */
            uint64_t applied = 0;
            for (int k = 0; k < nw; k++) applied += ws[k].applied;
            if (applied != t.nwords * o.passes) { fprintf(stderr, "hotpath: applied %" PRIu64 "\n", applied); return 1; }
        }
        for (int k = 0; k < nw; k++) { tally_wordtab_destroy(ws[k].tab); free(ws[k].dirty); }
        free(ws);
        printf("hotpath mode=single stage=%s threads=1 workers=%d lines=%" PRIu64 " words=%" PRIu64
               " vocab=%" PRIu64 " zipf=%.2f wpl=%" PRIu64 " seconds=%.3f words_per_s=%.0f per_core=%.0f\n",
               stage_name[stage], nw, t.nlines, t.nwords, o.vocab, o.zipf, o.wpl, best, (double)t.nwords / best,
               (double)t.nwords / best_cpu);
        fflush(stdout);
    }

    if (only >= 0 && only != ST_N) goto done;
    double best = 0, best_cpu = 0;
    uint64_t waits = 0;
    hp_pipe_t p = {.t = &t};
    if (tally_spsc_init(&p.ring, o.ring) != 0) { fprintf(stderr, "hotpath: ring init failed\n"); return 1; }
    p.w.tab = tally_wordtab_new();
    for (uint64_t pass = 0; pass < o.passes; pass++) {
        p.full_waits = 0;
        double c0 = cpu_s(), m0 = mono_s();
        uint64_t words = run_pipe(&p);
        double secs = mono_s() - m0, cs = cpu_s() - c0;
        if (words != t.nwords) return 1;
        if (!best || secs < best) { best = secs; best_cpu = cs; waits = p.full_waits; }
    }
    if (p.w.applied != t.nwords * o.passes) { fprintf(stderr, "hotpath: ring lost words\n"); return 1; }
    printf("hotpath mode=spsc stage=%s threads=2 workers=1 lines=%" PRIu64 " words=%" PRIu64 " vocab=%" PRIu64
           " zipf=%.2f wpl=%" PRIu64 " ring=%" PRIu64 " ring_full_waits=%" PRIu64
           " seconds=%.3f words_per_s=%.0f per_core=%.0f\n",
           stage_name[ST_FULL], t.nlines, t.nwords, o.vocab, o.zipf, o.wpl, o.ring, waits, best,
           (double)t.nwords / best, (double)t.nwords / best_cpu);
    tally_wordtab_destroy(p.w.tab);
    free(p.w.dirty);
    tally_spsc_term(&p.ring);
done:
    free(t.text);
    free(t.start);
    return 0;
}
