/* SPDX-License-Identifier: MIT */
/* The directory source (input.path): which files each epoch reads, how they are read, and what is
 * remembered of them.
 *
 * An epoch reads whole files, as Spark's file source does: at a trigger the control thread lists
 * input.path and plans the new files (oldest modification time first, within files.max.*), split
 * into chunks (large uncompressed files into several, at word boundaries) that the reader threads
 * share; the epoch ends when every chunk is read. Each planned file gets a record in the same state
 * write as the epoch's counts (and its path and size go into the sink's commit), so after a crash a
 * file is either wholly counted or not at all, and never twice. @locality control thread, except
 * tally_file_read_chunk (any thread). */
#ifndef TALLY_FILESOURCE_H
#define TALLY_FILESOURCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tally/config.h"
#include "tally/state.h"

/* What became of a planned file. */
typedef enum {
    TALLY_FILE_READ = 0,     /* counted */
    TALLY_FILE_BINARY,       /* NUL bytes in its first 8 KiB: not text, not counted */
    TALLY_FILE_VANISHED,     /* deleted between listing and reading */
    TALLY_FILE_UNREADABLE,   /* could not be opened or read (permission, I/O error) */
    TALLY_FILE_TRUNCATED,    /* shorter when read than when listed: what was there is counted */
} tally_file_status_t;

typedef struct tally_file_s {
    char *path;
    int64_t size;            /* bytes when listed (compressed size for .gz) */
    int64_t mtime_ns;
    uint64_t dev, ino;
    bool gz;
    _Atomic int status;      /* tally_file_status_t; readers may downgrade READ */
} tally_file_t;

/* Words that start in [from, to) of a file; a gz file is one chunk [0, its end). */
typedef struct tally_chunk_s {
    int file;
    int64_t from, to;
} tally_chunk_t;

/* One epoch's files and who reads what. */
typedef struct tally_file_plan_s {
    uint64_t epoch;
    tally_file_t *files;
    int nfiles;
    tally_chunk_t *chunks;
    int nchunks;
    int **assign;            /* [reader] -> chunk indexes, -1 terminated */
    int nreaders;
    int64_t bytes;
} tally_file_plan_t;

typedef struct tally_filesource_s tally_filesource_t;

/* Loads what the state remembers of read files and checks input.path. 0, or TALLY_ECONFIG (input.path
 * is missing or not a directory) / TALLY_ESTATE / TALLY_ENOMEM with errstr. */
int tally_filesource_open(const tally_config_t *conf, tally_state_t *state, tally_filesource_t **out, char *errstr,
                          size_t errstr_size);
void tally_filesource_close(tally_filesource_t *fs);

/* Lists input.path and fills plan with the next epoch's files for nreaders readers; plan->nfiles 0
 * when nothing is new. Also cleans (files.clean) files read before whose clean-up a crash cut short. */
int tally_filesource_plan(tally_filesource_t *fs, uint64_t epoch, int nreaders, tally_file_plan_t *plan, char *errstr,
                          size_t errstr_size);
void tally_file_plan_clear(tally_file_plan_t *plan);

/* The records of a plan's files, for the epoch's state write. */
void tally_filesource_store(const tally_filesource_t *fs, const tally_file_plan_t *plan, tally_state_batch_t *b);
/* The plan's epoch is stored: its files are read for good; files.clean applies to them now. */
void tally_filesource_committed(tally_filesource_t *fs, const tally_file_plan_t *plan);
/* True once trigger.available.now has nothing more to read. */
bool tally_filesource_done(const tally_filesource_t *fs);
/* Whether a path is recorded as read. */
bool tally_filesource_is_read(const tally_filesource_t *fs, const char *path);

/* Counters for /metrics (control thread). */
typedef struct {
    uint64_t files_read, bytes_read, skipped_binary, vanished, unreadable, truncated, changed_after_read;
} tally_filesource_stats_t;
void tally_filesource_stats(const tally_filesource_t *fs, tally_filesource_stats_t *out);

/* Reads one chunk: word(w, len, opaque) for each word of at most max_word bytes that starts in it
 * (longer ones add to *dropped); false from word stops the read (returns 1). *lines gets its lines
 * (a last line without a newline counts). Sets f->status on vanish, truncation or a read error.
 * 0 when read (whatever the status says), 1 when stopped. */
typedef bool (*tally_file_word_fn)(const uint8_t *word, size_t len, void *opaque);
int tally_file_read_chunk(tally_file_t *f, const tally_chunk_t *c, size_t max_word, tally_file_word_fn word,
                          void *opaque, uint64_t *lines, uint64_t *dropped);

#endif
