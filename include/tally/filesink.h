/* SPDX-License-Identifier: MIT */
/* The file sink (sink=files): each epoch's counts become one part file in output.path (JSON lines,
 * CSV or Parquet), committed by one entry in Spark's file sink log, output.path/_spark_metadata/<batch>
 * ("v1" then one JSON line per file; every 10th batch, "<batch>.compact", lists every file), so Spark,
 * and any reader that honours that log, reads exactly the committed files. Beside it,
 * output.path/_tally/<batch> records the epoch and the input offsets the batch covers: recovery takes
 * them as what the sink committed, as it takes a Kafka group's offsets for the Kafka sink.
 *
 * The order of one commit: part file (temporary name, fsync, rename), _tally/<batch> (the same),
 * then _spark_metadata/<batch>, the commit point, and the directories fsynced. At open, part files and
 * _tally entries of batches the log does not hold (a crash before the commit point) are deleted.
 * @locality control thread. */
#ifndef TALLY_FILESINK_H
#define TALLY_FILESINK_H

#include <stddef.h>
#include <stdint.h>

#include "tally/config.h"

typedef struct tally_filesink_s tally_filesink_t;

/* Rows of one epoch: calls row(word, len, count, row_opaque) for each. With window.size.ms > 0
 * `word` is a tally_window_key (window start, then the word) and the part file's rows carry the
 * window [start, start + window.size.ms); a key that is not one fails the commit. The columns:
 * [window_start, window_end,] word, count[, epoch], the epoch in update and complete mode only
 * (docs/files.md). */
typedef void (*tally_filesink_row_fn)(const uint8_t *word, size_t len, int64_t count, void *row_opaque);
typedef void (*tally_filesink_rows_fn)(void *opaque, tally_filesink_row_fn row, void *row_opaque);

/* One input partition's position after a batch; or, with partition TALLY_FILESINK_FILE, an input
 * file (topic: its path) that the batch read whole (offset: its size). */
#define TALLY_FILESINK_FILE (-1)
typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset;
} tally_filesink_offset_t;

/* Opens output.path (made when missing), reads the log and removes what no committed batch names.
 * 0, or a TALLY_E* code with errstr naming the path and the reason. */
int tally_filesink_open(const tally_config_t *conf, tally_filesink_t **out, char *errstr, size_t errstr_size);
void tally_filesink_close(tally_filesink_t *fs);

/* The last committed batch's epoch (0: none yet). */
uint64_t tally_filesink_epoch(const tally_filesink_t *fs);
/* The input offset the last committed batch recorded for a partition; -1 when it recorded none. */
int64_t tally_filesink_offset(const tally_filesink_t *fs, const char *topic, int32_t partition);

/* The positions the last committed batch recorded, by index. */
int tally_filesink_noffsets(const tally_filesink_t *fs);
tally_filesink_offset_t tally_filesink_offset_at(const tally_filesink_t *fs, int i);

/* Writes one epoch's part file and commits it with the offsets (see the order above).
 * 0, or a TALLY_E* code with errstr: nothing of this epoch is committed then. */
int tally_filesink_commit(tally_filesink_t *fs, uint64_t epoch, tally_filesink_rows_fn rows, void *rows_opaque,
                          const tally_filesink_offset_t *offsets, int noffsets, char *errstr, size_t errstr_size);

#endif
