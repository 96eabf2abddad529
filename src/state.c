/* SPDX-License-Identifier: MIT */
/* RocksDB-backed state. Keys: 'c'+word -> count, 'o'+topic+'\0'+be32(partition) -> offset,
 * 'f'+path -> a read input file's record (filesource.c),
 * "m.epoch" -> epoch, "m.<name>" -> other engine-wide numbers (tally_state_get_meta);
 * numbers as 8 little-endian bytes. */
#include "tally/state.h"

#include <pthread.h>
#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>
#include <sys/statvfs.h>

#include "tally/clock.h"
#include "tally/err.h"
#include "tally/log.h"

/* An epoch handed to the writer thread (tally_state_write_epoch). */
typedef struct job_s {
    struct job_s *next;
    uint64_t epoch;
    int nlists;
    bool sorted;
    tally_state_batch_t *rest;
    size_t bytes;
    tally_changes_t lists[];      /* the caller's buffers, freed by the caller's next call once written */
} job_t;

struct tally_state_s {
    char *dir;
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *table;
    rocksdb_filterpolicy_t *bloom; /* owned by table options once set */
    rocksdb_cache_t *cache;
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;
    /* The writer thread, started by the first tally_state_write_epoch. Under mu: */
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    pthread_t writer;
    bool writer_started, stop;
    int urgent;                   /* threads waiting for the writer: it writes at once */
    double interval_s;            /* tally_state_set_writer */
    size_t max_held;
    double last_write;            /* tally_mono_s() when the last write ended */
    job_t *head, *tail;           /* handed over, not taken yet */
    job_t *done;                  /* written: their lists are freed by the caller's thread (reclaim) */
    bool busy;                    /* the writer holds jobs it is writing */
    size_t held;                  /* bytes of the jobs handed over and not written */
    int werr;                     /* the first failed write: nothing after it is written */
    char werrmsg[512];
    tally_state_write_stats_t stats;
};

/* ranges: the count ranges deleted, [u32 from_len][from][u32 to_len][to] each, kept beside the
 * RocksDB batch and added to it when it is written (after its puts and deletes): the C API's
 * iteration, which appends a batch to another (tally_state_write_epoch), stops at a range deletion. */
struct tally_state_batch_s {
    rocksdb_writebatch_t *wb;
    uint8_t *ranges;
    size_t ranges_len, ranges_cap, nranges;
};

static const char epoch_key[] = "m.epoch";

static void put_i64(char out[8], int64_t v) {
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++) out[i] = (char)(u >> (8 * i));
}

static int64_t get_i64(const char *p) {
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u |= (uint64_t)(uint8_t)p[i] << (8 * i);
    return (int64_t)u;
}

/* mkdir -p */
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

static int open_sized(tally_state_t **out, const char *dir, size_t write_buffer, size_t block_cache, bool *locked,
                      char *errstr, size_t errstr_size) {
    *locked = false;
    if (mkdirs(dir)) {
        snprintf(errstr, errstr_size, "cannot create state.dir %s: %s", dir, strerror(errno));
        return TALLY_ESTATE;
    }
    tally_state_t *st = calloc(1, sizeof(*st));
    if (!st) return TALLY_ENOMEM;
    pthread_mutex_init(&st->mu, NULL);
    st->max_held = SIZE_MAX;
    pthread_cond_init(&st->work_cv, NULL);
    pthread_cond_init(&st->done_cv, NULL);
    st->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(st->opts, 1);
    /* Bloom filters make the Get for a word never seen cheap; a bounded block cache bounds memory. */
    st->table = rocksdb_block_based_options_create();
    st->bloom = rocksdb_filterpolicy_create_bloom(10);
    rocksdb_block_based_options_set_filter_policy(st->table, st->bloom);
    st->cache = rocksdb_cache_create_lru(block_cache);
    rocksdb_block_based_options_set_block_cache(st->table, st->cache);
    rocksdb_options_set_block_based_table_factory(st->opts, st->table);
    /* One column family: its memtables (one filling, one flushing) are all RocksDB writes to memory,
     * so no WriteBufferManager is needed (nor in the C API of Debian's RocksDB 7.8). */
    rocksdb_options_set_write_buffer_size(st->opts, write_buffer);
    rocksdb_options_set_max_write_buffer_number(st->opts, 2);
    rocksdb_options_set_max_open_files(st->opts, 256);
    rocksdb_options_set_compression(st->opts, rocksdb_lz4_compression);
    st->ropts = rocksdb_readoptions_create();
    st->wopts = rocksdb_writeoptions_create();

    char *err = NULL;
    st->dir = strdup(dir);
    st->db = rocksdb_open(st->opts, dir, &err);
    if (!st->db) {
        snprintf(errstr, errstr_size, "cannot open state.dir %s: %s", dir, err ? err : "unknown error");
        if (err && (strstr(err, "lock") || strstr(err, "LOCK"))) *locked = true;
        free(err);
        tally_state_close(st);
        return TALLY_ESTATE;
    }
    *out = st;
    return 0;
}

static void stop_writer(tally_state_t *st);

void tally_state_close(tally_state_t *st) {
    if (!st) return;
    stop_writer(st);
    if (st->db) rocksdb_close(st->db);
    if (st->ropts) rocksdb_readoptions_destroy(st->ropts);
    if (st->wopts) rocksdb_writeoptions_destroy(st->wopts);
    if (st->opts) rocksdb_options_destroy(st->opts);
    if (st->table) rocksdb_block_based_options_destroy(st->table);
    if (st->cache) rocksdb_cache_destroy(st->cache);
    free(st->dir);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->work_cv);
    pthread_cond_destroy(&st->done_cv);
    free(st);
}

/* Returns 1 found, 0 absent, negative error. */
static int get_num_with(tally_state_t *st, const rocksdb_readoptions_t *ro, const char *key, size_t klen, int64_t *v) {
    char *err = NULL;
    size_t vlen = 0;
    char *val = rocksdb_get(st->db, ro, key, klen, &vlen, &err);
    if (err) {
        free(err);
        return TALLY_ESTATE;
    }
    if (!val) return 0;
    int found = vlen == 8;
    if (found) *v = get_i64(val);
    rocksdb_free(val);
    return found ? 1 : TALLY_ESTATE;
}

static int get_num(tally_state_t *st, const char *key, size_t klen, int64_t *v) {
    return get_num_with(st, st->ropts, key, klen, v);
}

/* Under mu: waits until the writer wrote everything handed to it, asking it to write at once. */
static void wait_written(tally_state_t *st) {
    if (!st->head && !st->busy) return;
    st->urgent++;
    pthread_cond_signal(&st->work_cv);
    while (st->head || st->busy) pthread_cond_wait(&st->done_cv, &st->mu);
    st->urgent--;
}

/* Every read but a worker's word lookup (tally_state_get_count) sees the state as of the last
 * epoch handed over. */
static void settle(tally_state_t *st) {
    pthread_mutex_lock(&st->mu);
    wait_written(st);
    pthread_mutex_unlock(&st->mu);
}

bool tally_state_is_fresh(tally_state_t *st) {
    settle(st);
    int64_t e;
    return get_num(st, epoch_key, sizeof(epoch_key) - 1, &e) != 1;
}

uint64_t tally_state_epoch(tally_state_t *st) {
    settle(st);
    int64_t e = 0;
    return get_num(st, epoch_key, sizeof(epoch_key) - 1, &e) == 1 ? (uint64_t)e : 0;
}

int tally_state_get_count(tally_state_t *st, const uint8_t *word, size_t len, int64_t *count) {
    char stackkey[256];
    char *key = len + 1 <= sizeof(stackkey) ? stackkey : malloc(len + 1);
    if (!key) return TALLY_ENOMEM;
    key[0] = 'c';
    memcpy(key + 1, word, len);
    *count = 0;
    int r = get_num(st, key, len + 1, count);
    if (key != stackkey) free(key);
    return r < 0 ? r : 0;
}

int tally_state_lookup(tally_state_t *st, const uint8_t *word, size_t len, int64_t *count, uint64_t *epoch) {
    settle(st);
    char *key = malloc(len + 1);
    if (!key) return TALLY_ENOMEM;
    key[0] = 'c';
    memcpy(key + 1, word, len);
    /* One snapshot for both reads: the count is the one stored with that epoch. */
    const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(st->db);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, snap);
    int64_t e = 0;
    *count = 0;
    int r = get_num_with(st, ro, key, len + 1, count);
    int re = get_num_with(st, ro, epoch_key, sizeof(epoch_key) - 1, &e);
    rocksdb_readoptions_destroy(ro);
    rocksdb_release_snapshot(st->db, snap);
    free(key);
    if (re < 0) return re;
    *epoch = re == 1 ? (uint64_t)e : 0;
    return r;
}

static size_t offset_key(char *key, size_t cap, const char *topic, int32_t partition) {
    size_t tl = strlen(topic);
    if (tl + 6 > cap) return 0;
    key[0] = 'o';
    memcpy(key + 1, topic, tl);
    key[1 + tl] = '\0';
    uint32_t p = (uint32_t)partition;
    key[2 + tl] = (char)(p >> 24);
    key[3 + tl] = (char)(p >> 16);
    key[4 + tl] = (char)(p >> 8);
    key[5 + tl] = (char)p;
    return tl + 6;
}

int tally_state_get_offset(tally_state_t *st, const char *topic, int32_t partition, int64_t *offset) {
    char key[300];
    size_t kl = offset_key(key, sizeof(key), topic, partition);
    if (!kl) return TALLY_EINVAL;
    settle(st);
    return get_num(st, key, kl, offset);
}

/* The iterator's error, if any, as a tally error; destroys it. */
static int iter_finish(rocksdb_iterator_t *it) {
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (!err) return 0;
    free(err);
    return TALLY_ESTATE;
}

/* Every count whose key (without the 'c') is in [from, to), bytewise; to == NULL: no upper bound. */
static int scan_counts(tally_state_t *st, const uint8_t *from, size_t from_len, const uint8_t *to, size_t to_len,
                       void (*fn)(const uint8_t *key, size_t len, int64_t count, void *opaque), void *opaque) {
    char lo[64], hi[64];
    if (from_len + 1 > sizeof(lo) || to_len + 1 > sizeof(hi)) return TALLY_EINVAL;
    lo[0] = hi[0] = 'c';
    if (from_len) memcpy(lo + 1, from, from_len);
    if (to_len) memcpy(hi + 1, to, to_len);
    settle(st);
    rocksdb_iterator_t *it = rocksdb_create_iterator(st->db, st->ropts);
    for (rocksdb_iter_seek(it, lo, from_len + 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (kl < 1 || k[0] != 'c') break;
        if (to && tally_state_key_cmp(k, kl, hi, to_len + 1) >= 0) break;
        if (vl == 8) fn((const uint8_t *)k + 1, kl - 1, get_i64(v), opaque);
    }
    return iter_finish(it);
}

int tally_state_foreach_count(tally_state_t *st,
                              void (*fn)(const uint8_t *word, size_t len, int64_t count, void *opaque),
                              void *opaque) {
    return scan_counts(st, NULL, 0, NULL, 0, fn, opaque);
}

int tally_state_foreach_file(tally_state_t *st, void (*fn)(const char *path, const char *rec, void *opaque),
                             void *opaque) {
    settle(st);
    rocksdb_iterator_t *it = rocksdb_create_iterator(st->db, st->ropts);
    char *path = NULL, *rec = NULL;
    int r = 0;
    for (rocksdb_iter_seek(it, "f", 1); !r && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (kl < 1 || k[0] != 'f') break;
        path = strndup(k + 1, kl - 1);
        rec = strndup(v, vl);
        if (path && rec) fn(path, rec, opaque);
        else r = TALLY_ENOMEM;
        free(path);
        free(rec);
    }
    int e = iter_finish(it);
    return r ? r : e;
}

int tally_state_foreach_count_range(tally_state_t *st, const uint8_t *from, size_t from_len, const uint8_t *to,
                                    size_t to_len, void (*fn)(const uint8_t *key, size_t len, int64_t count, void *opaque),
                                    void *opaque) {
    return scan_counts(st, from, from_len, to, to_len, fn, opaque);
}

int tally_state_first_count_key(tally_state_t *st, uint8_t *out, size_t cap, size_t *len) {
    settle(st);
    rocksdb_iterator_t *it = rocksdb_create_iterator(st->db, st->ropts);
    rocksdb_iter_seek(it, "c", 1);
    int found = 0;
    if (rocksdb_iter_valid(it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl >= 1 && k[0] == 'c') {
            found = 1;
            *len = kl - 1 < cap ? kl - 1 : cap;
            memcpy(out, k + 1, *len);
        }
    }
    int r = iter_finish(it);
    return r ? r : found;
}

static void count_one(const uint8_t *key, size_t len, int64_t count, void *opaque) {
    (void)key, (void)len, (void)count;
    (*(uint64_t *)opaque)++;
}

int tally_state_count_keys(tally_state_t *st, uint64_t *n) {
    *n = 0;
    return scan_counts(st, NULL, 0, NULL, 0, count_one, n);
}

/* "m." + name: engine-wide numbers stored with the epoch (the watermark, the processing time). */
static size_t meta_key(char *key, size_t cap, const char *name) {
    size_t n = strlen(name);
    if (n + 3 > cap) return 0;
    memcpy(key, "m.", 2);
    memcpy(key + 2, name, n);
    return n + 2;
}

int tally_state_get_meta(tally_state_t *st, const char *name, int64_t *v) {
    char key[64];
    size_t kl = meta_key(key, sizeof(key), name);
    if (!kl) return TALLY_EINVAL;
    settle(st);
    return get_num(st, key, kl, v);
}

int64_t tally_state_free_bytes(tally_state_t *st) {
    struct statvfs v;
    if (!st->dir || statvfs(st->dir, &v) != 0) return TALLY_EIO;
    return (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

tally_state_batch_t *tally_state_batch_new(void) {
    tally_state_batch_t *b = malloc(sizeof(*b));
    if (!b) return NULL;
    b->wb = rocksdb_writebatch_create();
    b->ranges = NULL;
    b->ranges_len = b->ranges_cap = b->nranges = 0;
    return b;
}

void tally_state_batch_destroy(tally_state_batch_t *b) {
    if (!b) return;
    rocksdb_writebatch_destroy(b->wb);
    free(b->ranges);
    free(b);
}

static void put_count(rocksdb_writebatch_t *wb, const uint8_t *word, size_t len, int64_t count) {
    const char pre = 'c';
    const char *parts[2] = {&pre, (const char *)word};
    size_t sizes[2] = {1, len};
    char v[8];
    put_i64(v, count);
    const char *vp = v;
    size_t vs = 8;
    rocksdb_writebatch_putv(wb, 2, parts, sizes, 1, &vp, &vs);
}

void tally_state_batch_put_count(tally_state_batch_t *b, const uint8_t *word, size_t len, int64_t count) {
    put_count(b->wb, word, len, count);
}

void tally_state_batch_delete_count(tally_state_batch_t *b, const uint8_t *word, size_t len) {
    const char pre = 'c';
    const char *parts[2] = {&pre, (const char *)word};
    size_t sizes[2] = {1, len};
    rocksdb_writebatch_deletev(b->wb, 2, parts, sizes);
}

void tally_state_batch_put_offset(tally_state_batch_t *b, const char *topic, int32_t partition, int64_t offset) {
    char key[300], v[8];
    size_t kl = offset_key(key, sizeof(key), topic, partition);
    put_i64(v, offset);
    if (kl) rocksdb_writebatch_put(b->wb, key, kl, v, 8);
}

void tally_state_batch_put_file(tally_state_batch_t *b, const char *path, const char *rec) {
    const char pre = 'f';
    const char *parts[2] = {&pre, path};
    size_t sizes[2] = {1, strlen(path)};
    const char *vp = rec;
    size_t vs = strlen(rec);
    rocksdb_writebatch_putv(b->wb, 2, parts, sizes, 1, &vp, &vs);
}

void tally_state_batch_put_epoch(tally_state_batch_t *b, uint64_t epoch) {
    char v[8];
    put_i64(v, (int64_t)epoch);
    rocksdb_writebatch_put(b->wb, epoch_key, sizeof(epoch_key) - 1, v, 8);
}

void tally_state_batch_put_meta(tally_state_batch_t *b, const char *name, int64_t v) {
    char key[64], val[8];
    size_t kl = meta_key(key, sizeof(key), name);
    put_i64(val, v);
    if (kl) rocksdb_writebatch_put(b->wb, key, kl, val, 8);
}

void tally_state_batch_delete_counts(tally_state_batch_t *b, const uint8_t *from, size_t from_len, const uint8_t *to,
                                     size_t to_len) {
    char lo[64], hi[64];
    if (from_len + 1 > sizeof(lo) || to_len + 1 > sizeof(hi)) return;
    lo[0] = hi[0] = 'c';
    memcpy(lo + 1, from, from_len);
    memcpy(hi + 1, to, to_len);
    size_t need = 8 + from_len + to_len + 2;
    if (b->ranges_len + need > b->ranges_cap) {
        size_t cap = b->ranges_cap ? 2 * b->ranges_cap : 256;
        while (cap < b->ranges_len + need) cap *= 2;
        uint8_t *r = realloc(b->ranges, cap);
        if (!r) abort(); /* as RocksDB's own batch does on a failed allocation */
        b->ranges = r;
        b->ranges_cap = cap;
    }
    uint32_t fl = (uint32_t)from_len + 1, tl = (uint32_t)to_len + 1;
    memcpy(b->ranges + b->ranges_len, &fl, 4);
    memcpy(b->ranges + b->ranges_len + 4, lo, fl);
    memcpy(b->ranges + b->ranges_len + 4 + fl, &tl, 4);
    memcpy(b->ranges + b->ranges_len + 8 + fl, hi, tl);
    b->ranges_len += 8 + fl + tl;
    b->nranges++;
}

size_t tally_state_batch_count(tally_state_batch_t *b) { return (size_t)rocksdb_writebatch_count(b->wb) + b->nranges; }

static void append_ranges(rocksdb_writebatch_t *wb, const tally_state_batch_t *b);

static int write_wb(tally_state_t *st, rocksdb_writebatch_t *wb, char *errstr, size_t errstr_size) {
    char *err = NULL;
    rocksdb_write(st->db, st->wopts, wb, &err);
    if (err) {
        snprintf(errstr, errstr_size, "state write failed: %s", err);
        free(err);
        return TALLY_ESTATE;
    }
    return 0;
}

int tally_state_batch_write(tally_state_t *st, tally_state_batch_t *b, char *errstr, size_t errstr_size) {
    settle(st); /* after the epochs handed over, in their order */
    append_ranges(b->wb, b);
    b->ranges_len = b->nranges = 0;
    return write_wb(st, b->wb, errstr, errstr_size);
}

/* ---- the writer thread ---- */

static void append_put(void *opaque, const char *k, size_t kl, const char *v, size_t vl) {
    rocksdb_writebatch_put(opaque, k, kl, v, vl);
}

static void append_delete(void *opaque, const char *k, size_t kl) { rocksdb_writebatch_delete(opaque, k, kl); }

/* b's range deletions into wb. */
static void append_ranges(rocksdb_writebatch_t *wb, const tally_state_batch_t *b) {
    for (size_t off = 0; off < b->ranges_len;) {
        uint32_t fl, tl;
        memcpy(&fl, b->ranges + off, 4);
        const char *lo = (const char *)b->ranges + off + 4;
        memcpy(&tl, b->ranges + off + 4 + fl, 4);
        const char *hi = (const char *)b->ranges + off + 8 + fl;
        rocksdb_writebatch_delete_range(wb, lo, fl, hi, tl);
        off += 8 + (size_t)fl + tl;
    }
}

/* Appends b's operations to wb: its puts and deletes in order, then its range deletions. */
static void append_batch(rocksdb_writebatch_t *wb, tally_state_batch_t *b) {
    rocksdb_writebatch_iterate(b->wb, wb, append_put, append_delete);
    append_ranges(wb, b);
}

typedef struct {
    const tally_changes_t *list;
    int job;                      /* later jobs hold later counts */
    size_t next;
    const uint8_t *key;           /* NULL: the list is done */
    uint32_t len;
    int64_t count;
} cursor_t;

static void cursor_step(cursor_t *c) {
    if (!tally_changes_next(c->list, &c->next, &c->key, &c->len, &c->count)) c->key = NULL;
}

/* The lists of the cursors into wb as one list in key order (RocksDB's memtable inserts sorted keys
 * fastest); a key in several lists once, with the count of the latest job. Lists out of order
 * (complete mode) are merged one job at a time by the caller, so a later count still comes last. */
static size_t merge_lists(rocksdb_writebatch_t *wb, cursor_t *cur, int n) {
    size_t keys = 0;
    for (int i = 0; i < n; i++) cursor_step(&cur[i]);
    for (;;) {
        int m = -1;
        for (int i = 0; i < n; i++) {
            if (!cur[i].key) continue;
            int c = m < 0 ? -1 : tally_state_key_cmp(cur[i].key, cur[i].len, cur[m].key, cur[m].len);
            if (c < 0 || (c == 0 && cur[i].job > cur[m].job)) m = i;
        }
        if (m < 0) return keys;
        put_count(wb, cur[m].key, cur[m].len, cur[m].count);
        keys++;
        const uint8_t *key = cur[m].key;
        uint32_t len = cur[m].len;
        for (int i = 0; i < n; i++)
            if (i != m && cur[i].key && tally_state_key_cmp(cur[i].key, cur[i].len, key, len) == 0) cursor_step(&cur[i]);
        cursor_step(&cur[m]);
    }
}

/* The jobs (in epoch order) as one atomic write: their counts merged, then the rest of each. */
static int write_jobs(tally_state_t *st, job_t *jobs, size_t *keys, char *errstr, size_t errstr_size) {
    int ncur = 0;
    bool sorted = true;
    for (job_t *j = jobs; j; j = j->next) {
        ncur += j->nlists;
        sorted = sorted && j->sorted;
    }
    cursor_t *cur = calloc((size_t)ncur + 1, sizeof(*cur));
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    if (!cur) {
        rocksdb_writebatch_destroy(wb);
        snprintf(errstr, errstr_size, "state write failed: out of memory");
        return TALLY_ENOMEM;
    }
    *keys = 0;
    int n = 0, k = 0;
    for (job_t *j = jobs; j; j = j->next, k++) {
        for (int i = 0; i < j->nlists; i++) cur[n++] = (cursor_t){.list = &j->lists[i], .job = k};
        if (!sorted) {
            *keys += merge_lists(wb, cur, n);
            n = 0;
        }
    }
    if (sorted) *keys += merge_lists(wb, cur, n);
    free(cur);
    for (job_t *j = jobs; j; j = j->next) append_batch(wb, j->rest);
    int r = write_wb(st, wb, errstr, errstr_size);
    rocksdb_writebatch_destroy(wb);
    return r;
}

static void free_jobs(job_t *j) {
    while (j) {
        job_t *next = j->next;
        for (int i = 0; i < j->nlists; i++) tally_changes_free(&j->lists[i]);
        tally_state_batch_destroy(j->rest);
        free(j);
        j = next;
    }
}

/* The lists of the jobs written: the thread that hands epochs over may read them until its next
 * hand-off, so they are freed there (and at close). */
static void reclaim(tally_state_t *st) {
    pthread_mutex_lock(&st->mu);
    job_t *done = st->done;
    st->done = NULL;
    pthread_mutex_unlock(&st->mu);
    free_jobs(done);
}

static void *writer_main(void *arg) {
    tally_state_t *st = arg;
    tally_log_set_thread("state");
    pthread_mutex_lock(&st->mu);
    for (;;) {
        /* Work: what was handed over, once the interval since the last write passed, or at once
         * when someone waits for it, when stopping, or past a quarter of the hand-off bound (what
         * comes in during the write then still fits under it). */
        for (;;) {
            if (!st->head && st->stop) break;
            double due = st->last_write + st->interval_s;
            if (st->head && (st->stop || st->urgent || st->held >= st->max_held / 4 || tally_mono_s() >= due)) break;
            if (!st->head) {
                pthread_cond_wait(&st->work_cv, &st->mu);
                continue;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            double wait = due - tally_mono_s();
            if (wait < 0) wait = 0;
            long ns = ts.tv_nsec + (long)(wait * 1e9);
            ts.tv_sec += ns / 1000000000L;
            ts.tv_nsec = ns % 1000000000L;
            pthread_cond_timedwait(&st->work_cv, &st->mu, &ts);
        }
        if (!st->head) break;
        /* Everything handed over since the last write goes in one: a word changed in each of them is
         * written once, so a slow write makes the next one cheaper instead of falling behind. */
        job_t *jobs = st->head;
        st->head = st->tail = NULL;
        st->busy = true;
        bool failed = st->werr != 0;
        pthread_mutex_unlock(&st->mu);

        size_t bytes = 0, keys = 0;
        uint64_t first = jobs->epoch, last = first, epochs = 0;
        for (job_t *j = jobs; j; j = j->next, epochs++) {
            bytes += j->bytes;
            last = j->epoch;
        }
        char err[512] = "";
        double t0 = tally_mono_s();
        /* After a failed write nothing more is written: the state would skip that epoch's counts.
         * The next start replays from the last epoch written. */
        int r = failed ? 0 : write_jobs(st, jobs, &keys, err, sizeof(err));
        double took = tally_mono_s() - t0;
        if (!failed && !r)
            tally_debug("state write: epochs %" PRIu64 "..%" PRIu64 ", %zu keys, %.1f ms", first, last, keys, took * 1e3);

        pthread_mutex_lock(&st->mu);
        st->last_write = tally_mono_s();
        job_t *last_job = jobs;
        while (last_job->next) last_job = last_job->next;
        last_job->next = st->done;
        st->done = jobs;
        st->busy = false;
        st->held -= bytes;
        if (r && !st->werr) {
            st->werr = r;
            snprintf(st->werrmsg, sizeof(st->werrmsg), "%s; epochs %" PRIu64 "..%" PRIu64 " are committed in Kafka "
                     "and will be replayed into the state at the next start", err, first, last);
        }
        if (!failed && !r) {
            st->stats.writes++;
            st->stats.epochs += epochs;
            st->stats.keys += keys;
            st->stats.seconds += took;
            st->stats.last_epoch = last;
        }
        pthread_cond_broadcast(&st->done_cv);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static void stop_writer(tally_state_t *st) {
    if (!st->writer_started) return;
    pthread_mutex_lock(&st->mu);
    st->stop = true;
    pthread_cond_signal(&st->work_cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->writer, NULL);
    st->writer_started = false;
    if (st->werr) tally_err("%s", st->werrmsg);
    reclaim(st);
}

void tally_state_set_writer(tally_state_t *st, int interval_ms, size_t max_held) {
    pthread_mutex_lock(&st->mu);
    st->interval_s = interval_ms / 1000.0;
    st->max_held = max_held;
    pthread_mutex_unlock(&st->mu);
}

int tally_state_write_epoch(tally_state_t *st, uint64_t epoch, const tally_changes_t *lists, int nlists, bool sorted,
                            tally_state_batch_t *rest, char *errstr, size_t errstr_size) {
    reclaim(st);
    job_t *j = calloc(1, sizeof(*j) + (size_t)nlists * sizeof(j->lists[0]));
    if (!j) {
        tally_state_batch_destroy(rest);
        snprintf(errstr, errstr_size, "out of memory handing epoch %" PRIu64 " to the state writer", epoch);
        return TALLY_ENOMEM;
    }
    j->epoch = epoch;
    j->nlists = nlists;
    j->sorted = sorted;
    j->rest = rest;
    size_t rest_bytes = 0;
    rocksdb_writebatch_data(rest->wb, &rest_bytes);
    j->bytes = rest_bytes + rest->ranges_len;
    for (int i = 0; i < nlists; i++) {
        j->lists[i] = lists[i];
        j->bytes += lists[i].cap;
    }
    pthread_mutex_lock(&st->mu);
    int r = 0;
    if (!st->writer_started) {
        if (pthread_create(&st->writer, NULL, writer_main, st) == 0) st->writer_started = true;
        else r = TALLY_ENOMEM;
    }
    /* Bounded: past max_held bytes waiting to be written, the caller waits for the writer. */
    while (!r && !st->werr && st->held && st->held + j->bytes > st->max_held) {
        st->urgent++;
        pthread_cond_signal(&st->work_cv);
        pthread_cond_wait(&st->done_cv, &st->mu);
        st->urgent--;
    }
    if (r) snprintf(errstr, errstr_size, "cannot start the state writer thread");
    else if (st->werr) {
        r = st->werr;
        snprintf(errstr, errstr_size, "%s", st->werrmsg);
    } else {
        if (st->tail) st->tail->next = j;
        else st->head = j;
        st->tail = j;
        st->held += j->bytes;
        pthread_cond_signal(&st->work_cv);
    }
    pthread_mutex_unlock(&st->mu);
    if (r) { /* the lists stay the caller's */
        tally_state_batch_destroy(rest);
        free(j);
    }
    return r;
}

int tally_state_sync(tally_state_t *st, char *errstr, size_t errstr_size) {
    pthread_mutex_lock(&st->mu);
    wait_written(st);
    int r = st->werr;
    if (r) snprintf(errstr, errstr_size, "%s", st->werrmsg);
    pthread_mutex_unlock(&st->mu);
    return r;
}

void tally_state_write_stats(tally_state_t *st, tally_state_write_stats_t *out) {
    pthread_mutex_lock(&st->mu);
    *out = st->stats;
    pthread_mutex_unlock(&st->mu);
}

int tally_state_open(tally_state_t **out, const char *dir, bool *locked, char *errstr, size_t errstr_size) {
    return open_sized(out, dir, 32u << 20, 32u << 20, locked, errstr, errstr_size);
}

int tally_state_open_wait(tally_state_t **out, const char *dir, size_t write_buffer, size_t block_cache, int wait_s,
                          _Atomic bool *stop, char *errstr, size_t errstr_size) {
    for (int waited = 0;; waited++) {
        bool locked = false;
        int r = open_sized(out, dir, write_buffer, block_cache, &locked, errstr, errstr_size);
        if (r == 0 || !locked || waited >= wait_s || atomic_load(stop)) return r;
        if (waited % 10 == 0) tally_info("state.dir %s is locked by another tally process; waiting for it to exit", dir);
        sleep(1);
    }
}
