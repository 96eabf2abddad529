/* SPDX-License-Identifier: MIT */
/* The state store (RocksDB in state.dir): per word its committed count, per input partition the
 * offset below which every record is counted, and the last committed epoch. Written only after the
 * Kafka transaction of an epoch committed, in one atomic batch, so it never runs ahead of Kafka.
 * Epochs are written by the store's own thread (tally_state_write_epoch), behind Kafka; every read
 * but tally_state_get_count first waits for what was handed to it. */
#ifndef TALLY_STATE_H
#define TALLY_STATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tally/changes.h"

typedef struct tally_state_s tally_state_t;

/* The store's key order (RocksDB's bytewise comparator): <0, 0 or >0 as a sorts before, with or
 * after b; a proper prefix sorts first. */
static inline int tally_state_key_cmp(const void *a, size_t alen, const void *b, size_t blen) {
    int r = memcmp(a, b, alen < blen ? alen : blen);
    return r ? r : (alen > blen) - (alen < blen);
}
typedef struct tally_state_batch_s tally_state_batch_t;

/* Opens (creating, with its parent directories) the store, with 32 MiB memtables and block cache. *locked is set
 * when another process holds the directory. */
int tally_state_open(tally_state_t **out, const char *dir, bool *locked, char *errstr, size_t errstr_size);
/* tally_state_open() with these memtable (two at most) and block cache sizes, waiting up to wait_s
 * (one log line each 10 s) while another process holds the directory, or until *stop becomes true. */
int tally_state_open_wait(tally_state_t **out, const char *dir, size_t write_buffer, size_t block_cache, int wait_s,
                          _Atomic bool *stop, char *errstr, size_t errstr_size);
void tally_state_close(tally_state_t *st);

/* True when no epoch was ever stored: a new or emptied state.dir. */
bool tally_state_is_fresh(tally_state_t *st);
uint64_t tally_state_epoch(tally_state_t *st);

/* Thread-safe. *count = 0 for a word never stored. Does not wait for the writer thread: a worker
 * reads only words it does not hold, which it dropped from memory after they were written
 * (tally_state_sync). */
int tally_state_get_count(tally_state_t *st, const uint8_t *word, size_t len, int64_t *count);
/* Thread-safe. The stored count of a word and the epoch it was stored with, read together:
 * 1 found, 0 never stored, negative on error. */
int tally_state_lookup(tally_state_t *st, const uint8_t *word, size_t len, int64_t *count, uint64_t *epoch);
/* Returns 1 and sets *offset when stored, 0 when not, negative on error. */
int tally_state_get_offset(tally_state_t *st, const char *topic, int32_t partition, int64_t *offset);

/* Calls fn for every stored word (complete mode loads the whole state). */
int tally_state_foreach_count(tally_state_t *st,
                              void (*fn)(const uint8_t *word, size_t len, int64_t count, void *opaque),
                              void *opaque);

/* Calls fn for every input file recorded with tally_state_batch_put_file (input.path). */
int tally_state_foreach_file(tally_state_t *st, void (*fn)(const char *path, const char *rec, void *opaque),
                             void *opaque);

/* Calls fn for every count whose key is in [from, to) (bytewise; windowed keys sort by window). */
int tally_state_foreach_count_range(tally_state_t *st, const uint8_t *from, size_t from_len, const uint8_t *to,
                                    size_t to_len, void (*fn)(const uint8_t *key, size_t len, int64_t count, void *opaque),
                                    void *opaque);
/* The smallest count key (at most cap bytes of it into out): 1 found, 0 no count, negative error. */
int tally_state_first_count_key(tally_state_t *st, uint8_t *out, size_t cap, size_t *len);
/* How many counts the state holds (a full scan: for tests and tools). */
int tally_state_count_keys(tally_state_t *st, uint64_t *n);
/* An engine-wide number stored with tally_state_batch_put_meta: 1 found, 0 absent, negative error. */
int tally_state_get_meta(tally_state_t *st, const char *name, int64_t *v);

/* Bytes free for the store on its file system (statvfs), or a negative error. */
int64_t tally_state_free_bytes(tally_state_t *st);

tally_state_batch_t *tally_state_batch_new(void);
void tally_state_batch_destroy(tally_state_batch_t *b);
void tally_state_batch_put_count(tally_state_batch_t *b, const uint8_t *word, size_t len, int64_t count);
void tally_state_batch_put_offset(tally_state_batch_t *b, const char *topic, int32_t partition, int64_t offset);
/* An input file's record (a text line that filesource.c writes and reads), keyed by its path. */
void tally_state_batch_put_file(tally_state_batch_t *b, const char *path, const char *rec);
void tally_state_batch_put_epoch(tally_state_batch_t *b, uint64_t epoch);
void tally_state_batch_put_meta(tally_state_batch_t *b, const char *name, int64_t v);
/* Deletes one count. */
void tally_state_batch_delete_count(tally_state_batch_t *b, const uint8_t *word, size_t len);
/* Deletes every count whose key is in [from, to) (a RocksDB range deletion), after the batch's puts
 * and deletes, wherever it was added. */
void tally_state_batch_delete_counts(tally_state_batch_t *b, const uint8_t *from, size_t from_len, const uint8_t *to,
                                     size_t to_len);
size_t tally_state_batch_count(tally_state_batch_t *b);
/* Writes the batch atomically (WAL on; a process crash loses nothing written), after every epoch
 * handed to the writer thread. */
int tally_state_batch_write(tally_state_t *st, tally_state_batch_t *b, char *errstr, size_t errstr_size);

/* The writer thread writes at most every interval_ms (the epochs handed over in between go into one
 * write), sooner when someone waits for it or past max_held / 4 bytes handed over; a hand-off waits
 * while more than max_held bytes are not written. Defaults: 0 ms, no bound. */
void tally_state_set_writer(tally_state_t *st, int interval_ms, size_t max_held);
/* Hands a committed epoch's write to the store's writer thread and returns. lists: the epoch's
 * changed counts (sorted: each list in key order); their buffers are the store's now (the caller
 * forgets them without freeing them), and the caller may still read them until its next call of
 * this. rest: the rest of the write (taken): offsets, epoch, watermark, deletions of counts it does
 * not put. The writer writes everything handed over since its last write as one atomic batch, a
 * count changed in several epochs once. Nonzero (errstr set, the lists still the caller's) when an
 * earlier write failed: nothing more is written then. */
int tally_state_write_epoch(tally_state_t *st, uint64_t epoch, const tally_changes_t *lists, int nlists, bool sorted,
                            tally_state_batch_t *rest, char *errstr, size_t errstr_size);
/* Waits until every epoch handed over is written; nonzero (errstr set) when a write failed. */
int tally_state_sync(tally_state_t *st, char *errstr, size_t errstr_size);

typedef struct {
    uint64_t writes, epochs, keys; /* writes done, epochs and counts they held */
    double seconds;               /* spent in them */
    uint64_t last_epoch;          /* the last epoch written */
} tally_state_write_stats_t;
void tally_state_write_stats(tally_state_t *st, tally_state_write_stats_t *out);

#endif
