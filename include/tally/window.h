/* SPDX-License-Identifier: MIT */
/* Event-time windows: which windows hold a timestamp, the watermark that closes them, and the state
 * key (window start, word) that sorts window-major. Pure functions: every time (event or wall
 * clock) comes from the caller, in milliseconds, so tests drive time.
 *
 * Windows follow Spark's window(ts, size, slide) with startTime 0 (TimeWindowing in
 * ResolveTimeWindows.scala / TimeWindowResolution.scala): the windows [start, start+size) with start
 * a multiple of slide that hold ts, start = ts - floorMod(ts, slide) - i*slide. When slide does not
 * divide size, Spark over-generates ceil(size/slide) candidates and filters start <= ts < end, so a
 * record lands in floor(size/slide) or ceil(size/slide) windows depending on where it falls; so does
 * tally. Spark computes in wrapping int64 microseconds; tally assigns only windows whose start and end
 * are both representable in int64 milliseconds (a record at INT64_MAX is in no window).
 *
 * Late data follows Spark's WatermarkSupport.watermarkExpression (statefulOperators.scala): a
 * (record, window) pair is dropped when window.end <= watermark, per window. A record of a sliding
 * window can thus be dropped from its older windows and still count in newer ones; the record is
 * "late" (the metric) only when every window that holds it is closed. */
#ifndef TALLY_WINDOW_H
#define TALLY_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most windows a record may count in (size / slide, rounded up): a tally limit, Spark has none,
 * but a record written into a million windows is a configuration mistake. */
#define TALLY_WINDOW_MAX_PER_RECORD 1000

/* 0 when (size, slide) is usable: size > 0, 0 < slide <= size, ceil(size/slide) <=
 * TALLY_WINDOW_MAX_PER_RECORD. Otherwise -1 and a sentence in why. */
int tally_window_check(int64_t size, int64_t slide, char *why, size_t why_size);

/* How many windows can hold one timestamp at most: ceil(size / slide). */
size_t tally_window_per_record(int64_t size, int64_t slide);

/* The starts of the windows that hold ts, ascending, into out_starts (at most max of them); returns
 * how many windows hold ts (may exceed max: then only the first max are written). size and slide
 * must pass tally_window_check. */
size_t tally_window_assign(int64_t ts, int64_t size, int64_t slide, int64_t *out_starts, size_t max);

/* Spark's late rule: the window [start, start+size) is closed when its end <= watermark. */
bool tally_window_closed(int64_t start, int64_t size, int64_t watermark);

/* tally_window_assign without the closed windows: writes the open ones (ascending) and returns
 * their count; *closed gets how many windows holding ts were closed (dropped, to count). */
size_t tally_window_assign_open(int64_t ts, int64_t size, int64_t slide, int64_t watermark,
                                int64_t *out_starts, size_t max, size_t *closed);

/* ---- watermark ------------------------------------------------------------------------------- */

typedef enum {
    TALLY_WATERMARK_MAX = 0, /* Spark: max event time over all partitions - delay */
    TALLY_WATERMARK_MIN,     /* Flink: min over partitions of each one's max event time - delay */
} tally_watermark_policy_t;

/* No watermark yet / no value. */
#define TALLY_WATERMARK_NONE INT64_MIN
/* Spark's first watermark (WatermarkTracker starts at 0 ms): windows ending at or before
 * 1970-01-01T00:00:00Z are closed from the first batch. Flink's first is Long.MIN_VALUE. */
#define TALLY_WATERMARK_SPARK_INITIAL 0

typedef struct {
    int64_t max_ts;     /* greatest event time seen, TALLY_WATERMARK_NONE before the first */
    int64_t last_input; /* wall clock of its last record, or of its registration */
} tally_watermark_part_t;

/* The watermark, in Spark's convention: the window [s, e) is closed when e <= watermark. (Flink's
 * watermark t, "no more records at or before t", closes [s, e) when e - 1 <= t: the same windows
 * with t = watermark - 1, so the min policy equals Flink's BoundedOutOfOrderness with idleness.) */
typedef struct {
    tally_watermark_policy_t policy;
    int64_t delay;         /* watermark.delay.ms */
    int64_t idle;          /* watermark.idle.ms (min policy), -1 = off */
    int64_t close_idle;    /* window.close.idle.ms, -1 = off */
    int64_t watermark;     /* current; only moves forward */
    int64_t max_ts;        /* greatest event time over all partitions */
    int64_t last_input;    /* wall clock of the last record of any partition, NONE before any */
    tally_watermark_part_t *parts;
    int nparts;
} tally_watermark_t;

/* Sets the rules; the watermark starts at `initial` (restored from the state, or
 * TALLY_WATERMARK_SPARK_INITIAL / TALLY_WATERMARK_NONE). No partitions yet. */
void tally_watermark_init(tally_watermark_t *wm, tally_watermark_policy_t policy, int64_t delay,
                          int64_t idle, int64_t close_idle, int64_t initial);
void tally_watermark_term(tally_watermark_t *wm);
/* Grows the partition table to n (new partitions registered at wall clock now: with the min
 * policy they hold the watermark back until their first record or until idle). Never shrinks.
 * 0 or TALLY_ENOMEM. */
int tally_watermark_partitions(tally_watermark_t *wm, int n, int64_t now);
/* A record of partition p (< nparts) with event time ts, read at wall clock now. */
void tally_watermark_observe(tally_watermark_t *wm, int p, int64_t ts, int64_t now);
/* At a trigger's end (Spark moves the watermark between batches): the watermark for the next
 * epoch, computed from what was observed and the wall clock now, never lower than before. */
int64_t tally_watermark_advance(tally_watermark_t *wm, int64_t now);

/* ---- state key ------------------------------------------------------------------------------- */

/* The key of a (window start, word) count: 8 bytes big-endian of start with the sign bit flipped
 * (so memcmp order is signed order), then the word. RocksDB's bytewise comparator thus keeps one
 * window's words together, windows in time order. */
#define TALLY_WINDOW_KEY_PREFIX 8

/* Writes the key into out (TALLY_WINDOW_KEY_PREFIX + len bytes); returns its length. */
size_t tally_window_key(uint8_t *out, int64_t start, const uint8_t *word, size_t len);
/* Splits a key; -1 when shorter than the prefix. */
int tally_window_key_decode(const uint8_t *key, size_t klen, int64_t *start, const uint8_t **word,
                            size_t *len);
/* The DeleteRange bounds [begin, end) of every key of the windows whose start is in [from, to):
 * two prefixes of TALLY_WINDOW_KEY_PREFIX bytes. One window is [start, start + 1). Returns false
 * when from >= to (nothing to delete). */
bool tally_window_key_range(int64_t from, int64_t to, uint8_t begin[TALLY_WINDOW_KEY_PREFIX],
                            uint8_t end[TALLY_WINDOW_KEY_PREFIX]);
/* The bounds of every window closed at watermark (end <= watermark, i.e. start <= watermark - size);
 * false when none can be. */
bool tally_window_key_closed_range(int64_t size, int64_t watermark, uint8_t begin[TALLY_WINDOW_KEY_PREFIX],
                                   uint8_t end[TALLY_WINDOW_KEY_PREFIX]);

/* ---- output key ------------------------------------------------------------------------------ */

/* Bytes that always suffice for the output key of a state key of klen bytes. */
#define TALLY_WINDOW_OUTPUT_KEY_MAX(klen) ((klen) + 24)
/* The Kafka key of a windowed count: "<window start ms> <word>" (decimal start, one space, the
 * word's bytes). The partitioner hashes only what follows the first space, so every window of a
 * word goes to the word's partition. Returns the length; 0 when key is no window key. */
size_t tally_window_output_key(char *out, const uint8_t *key, size_t klen);
/* The word of an output key (what follows the first space; the whole key when there is none). */
void tally_window_output_key_word(const void *key, size_t klen, const void **word, size_t *len);

#endif
