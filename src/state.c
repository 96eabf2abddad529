/* SPDX-License-Identifier: MIT */
/* RocksDB-backed state. Keys: 'c'+word -> count, 'o'+topic+'\0'+be32(partition) -> offset,
 * 'f'+path -> a read input file's record (filesource.c),
 * "m.epoch" -> epoch, "m.<name>" -> other engine-wide numbers (tally_state_get_meta);
 * numbers as 8 little-endian bytes. */
#include "tally/state.h"

#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/statvfs.h>

#include "tally/err.h"
#include "tally/log.h"

struct tally_state_s {
    char *dir;
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *table;
    rocksdb_filterpolicy_t *bloom; /* owned by table options once set */
    rocksdb_cache_t *cache;
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wopts;
};

struct tally_state_batch_s {
    rocksdb_writebatch_t *wb;
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

void tally_state_close(tally_state_t *st) {
    if (!st) return;
    if (st->db) rocksdb_close(st->db);
    if (st->ropts) rocksdb_readoptions_destroy(st->ropts);
    if (st->wopts) rocksdb_writeoptions_destroy(st->wopts);
    if (st->opts) rocksdb_options_destroy(st->opts);
    if (st->table) rocksdb_block_based_options_destroy(st->table);
    if (st->cache) rocksdb_cache_destroy(st->cache);
    free(st->dir);
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

bool tally_state_is_fresh(tally_state_t *st) {
    int64_t e;
    return get_num(st, epoch_key, sizeof(epoch_key) - 1, &e) != 1;
}

uint64_t tally_state_epoch(tally_state_t *st) {
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
    return b;
}

void tally_state_batch_destroy(tally_state_batch_t *b) {
    if (!b) return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

void tally_state_batch_put_count(tally_state_batch_t *b, const uint8_t *word, size_t len, int64_t count) {
    const char pre = 'c';
    const char *parts[2] = {&pre, (const char *)word};
    size_t sizes[2] = {1, len};
    char v[8];
    put_i64(v, count);
    const char *vp = v;
    size_t vs = 8;
    rocksdb_writebatch_putv(b->wb, 2, parts, sizes, 1, &vp, &vs);
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
    rocksdb_writebatch_delete_range(b->wb, lo, from_len + 1, hi, to_len + 1);
}

size_t tally_state_batch_count(tally_state_batch_t *b) { return (size_t)rocksdb_writebatch_count(b->wb); }

int tally_state_batch_write(tally_state_t *st, tally_state_batch_t *b, char *errstr, size_t errstr_size) {
    char *err = NULL;
    rocksdb_write(st->db, st->wopts, b->wb, &err);
    if (err) {
        snprintf(errstr, errstr_size, "state write failed: %s", err);
        free(err);
        return TALLY_ESTATE;
    }
    return 0;
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
