/* SPDX-License-Identifier: MIT */
/* tally-gen, the benchmark input generator: produces lines of Zipf-distributed words (or a file's lines)
 * to a Kafka topic, as fast as the broker takes them or at a fixed rate, or writes the same lines into
 * text files in a directory (--to-dir), and keeps the true word counts of what it produced so that a
 * run can be checked (--truth). Single-threaded: every object here is owned by the main thread;
 * librdkafka's callbacks run inside rd_kafka_poll()/rd_kafka_flush() on it. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <xxhash.h>

#include "tally/clock.h"
#include "tally/log.h"

#define GEN_EXIT_FAIL 1
#define GEN_EXIT_USAGE 2
#define GEN_EXIT_INTERRUPTED 130
#define GEN_PROGRESS_S 2.0
#define GEN_WORD_PAD 16 /* slack after every buffer words are copied into / out of (fixed 16-byte copies) */
#define GEN_MAX_FILES 100000 /* --files: names are lines-NNNNN.txt */

/* ------------------------------------------------------------------------------------------------ */
/* Options                                                                                           */

/* Event time, rounds and windows: the --event-time-*, --out-of-order, --late-*, --window-*,
 * --watermark-delay and --pause-* options (parsed by evt_parse_opt, checked by evt_check_opts). */
typedef struct gen_evt_opts_s {
    bool on;                      /* stamp each record's Kafka timestamp (CreateTime) */
    bool set_start;
    int64_t start;                /* event time of line 0, ms since the epoch */
    double step;                  /* event time advance per line, ms (may be fractional) */
    int64_t jitter;               /* --out-of-order: up to this much earlier than the line's clock */
    double late_share;            /* --late-share */
    int64_t late_by;              /* --late-by */
    int64_t size, slide, delay;   /* windows; size 0 = none; delay -1 = no watermark */
    const char *window_truth, *window_late, *late_records;
    uint64_t pause_every;         /* lines per round, 0 = one round */
    int64_t pause_ms;             /* -1 = not given */
    const char *pause_cmd;
    const char *first;            /* the first of these options given ("window-size"), NULL = none */
} gen_evt_opts_t;

typedef struct gen_opts_s {
    const char *bootstrap;
    const char *topic;
    uint64_t lines;
    uint64_t vocab;
    double zipf;
    uint64_t wpl_min, wpl_max; /* words per line, uniform in [min, max] */
    uint64_t len_min, len_max; /* word length */
    uint64_t seed;
    double rate;               /* lines/s, 0 = as fast as possible */
    const char *from_file;
    const char *truth;
    const char *to_dir;        /* write files here instead of producing to Kafka */
    uint32_t files;            /* with to_dir: how many files */
    bool set_files;
    bool stamp, dry_run, quiet;
    const char **kafka;        /* "key=value", argv strings, in command-line order */
    int kafka_cnt;
    bool set_vocab, set_zipf, set_wpl, set_len; /* to warn when --from-file makes them moot */
    gen_evt_opts_t evt;
} gen_opts_t;

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("tally-gen: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(see tally-gen --help)\n", stderr);
    exit(GEN_EXIT_USAGE);
}

/* The --help section of the event-time, round and window options. */
static void evt_print_help(FILE *out) {
    fputs(
        "Event time (each record's Kafka timestamp, CreateTime; not set unless one of these is given;\n"
        "not with --to-dir):\n"
        "  --event-time-start MS   event time of line 0, ms since the Unix epoch (default: the wall clock\n"
        "                          at start; give it for a repeatable run). Every event time must be >= 1\n"
        "  --event-time-step MS    the generator's event-time clock: line n (0-based) is at\n"
        "                          START + floor(n * STEP) (default 1; fractions allowed, 0.1 = 10 lines\n"
        "                          per ms; 0 = every line at START). Not the wall clock: a run stamps the\n"
        "                          same times whatever its pace, pauses or broker\n"
        "  --out-of-order MS       each on-time line is stamped its clock minus a uniform integer in\n"
        "                          [0, MS] (default 0: in order)\n"
        "  --late-share F          this share (0..1) of the lines is stamped --late-by behind its clock\n"
        "                          instead (no jitter): the late lines. With --pause-every, none in the\n"
        "                          first round (no watermark is up yet for them to be late against)\n"
        "  --late-by MS            how far behind the clock a late line is stamped\n"
        "  --pause-every N         produce in rounds of N lines: after each round wait until every record\n"
        "                          is delivered, then pause --pause-ms (not after the last round; with\n"
        "                          --dry-run the rounds count for the truth but nothing sleeps)\n"
        "  --pause-ms MS           the pause between rounds (default 5000, or 0 with --pause-cmd)\n"
        "  --pause-cmd CMD         between rounds, once every record is delivered, run CMD with /bin/sh\n"
        "                          and wait for it (before --pause-ms), TALLY_GEN_ROUND (0-based) and\n"
        "                          TALLY_GEN_LINES (produced so far) in its environment: a test waits\n"
        "                          there until the engine has read the round. Not 0: tally-gen fails\n"
        "Which lines are late, and the jitter, come from --seed in a stream of their own: the words of\n"
        "a run do not change with these options. The topic must keep CreateTime (message.timestamp.type,\n"
        "the default) and accept the times: Kafka 4 refuses by default a time more than 1 h ahead of the\n"
        "broker's clock (\"Invalid timestamp\"; log.message.timestamp.after.max.ms), any past time is taken.\n"
        "\n",
        out);
    fputs(
        "Windows (true counts per event-time window, as Spark's window() and watermark count them):\n"
        "  --window-size MS        window length: windows are [S, S + SIZE) with S a multiple of SLIDE\n"
        "  --window-slide MS       distance between window starts (default SIZE: tumbling); a line counts\n"
        "                          in every window that holds its event time; SIZE/SLIDE <= 1000\n"
        "  --watermark-delay MS    the engine's watermark delay (default: no watermark, nothing dropped)\n"
        "  --window-truth PATH     \"START<TAB>END<TAB>WORD<TAB>COUNT\\n\" per (window, word), START and END\n"
        "                          in ms: the counts of ALL lines, late or not, as if nothing were\n"
        "                          dropped; sorted by START, then word bytewise\n"
        "  --window-late PATH      \"START<TAB>END<TAB>WORD<TAB>DROPPED<TAB>UNSURE\\n\" per (window, word)\n"
        "                          that has either: how many of its COUNT the watermark surely drops and\n"
        "                          how many it may drop (below); same order\n"
        "  --late-records PATH     \"LINE<TAB>PARTITION<TAB>ROUND<TAB>EVENT_MS<TAB>KIND<TAB>WINDOWS<TAB>\n"
        "                          DROPPED<TAB>UNSURE\\n\" for each line generated late (KIND late) and each\n"
        "                          on-time line with a window DROPPED or UNSURE (KIND ontime), in line\n"
        "                          order; LINE is 0-based, PARTITION -1 with --dry-run\n",
        out);
    fputs(
        "What is dropped. The watermark of a batch is the greatest event time of every record read by\n"
        "the batches before it (a record with no word too: withWatermark sees it before explode), minus\n"
        "the delay, never lower than before, 0 at first. An occurrence of a word in window [S, E) is\n"
        "dropped when E <= the late-data watermark of the batch that reads it. In Spark 3.5 that is the\n"
        "watermark of the batch before (PropagateWatermarkSimulator.getInputWatermarkForLateEvents), while\n"
        "windows close and are emitted by the batch's own; Spark runs a batch without data after one\n"
        "that moved the watermark, so the two agree when each round is followed by such a batch. Where\n"
        "batches split is the engine's business; tally-gen knows its rounds (one round without\n"
        "--pause-every). For a line of round r, with M(<r) the greatest event time of the rounds before\n"
        "it and M(<=r) that of the rounds up to and including it:\n"
        "  LO = max(0, M(<r) - delay)     the late-data watermark of round r when the engine, before it\n"
        "                                 reads round r, has run a batch (Spark: one without data) after\n"
        "                                 the batch that read round r-1 to its end\n"
        "  HI = max(LO, M(<=r) - delay)   the highest it can be while round r is read\n"
        "an occurrence in a window with E <= LO is DROPPED, one with E > HI is counted, one in between is\n"
        "UNSURE. An engine's final count of (window, word) is thus in [COUNT - DROPPED - UNSURE,\n"
        "COUNT - DROPPED] (a (window, word) left at 0 is not output), and it is exact when no occurrence\n"
        "is UNSURE (exact=yes below). For that: --watermark-delay >= --out-of-order + the clock's advance\n"
        "over one round (N * STEP), --late-by >= delay + SIZE + --out-of-order + that advance, and pauses\n"
        "long enough for LO (a --pause-cmd that waits for the engine, or a --pause-ms longer than two\n"
        "trigger intervals plus the engine's longest batch: Spark's first, which compiles the query,\n"
        "took 11 s on a busy 2-core machine). Without rounds, late lines are UNSURE or counted.\n"
        "An engine in append mode emits at the end only the windows with E <= watermark_final.\n"
        "Whether a late line is really dropped is the truth's business, not the line's: a late line whose\n"
        "windows are not all DROPPED is counted where they are not (see --late-records).\n"
        "\n",
        out);
}

static void print_help(FILE *out) {
    fputs(
        "Usage: tally-gen --bootstrap HOST:PORT --topic TOPIC [options]\n"
        "       tally-gen --to-dir DIR [--files N] [options]\n"
        "       tally-gen --dry-run [options]\n"
        "\n"
        "Produces text lines to a Kafka topic, as fast as the broker takes them or at a fixed rate, or\n"
        "writes them into text files, and knows the true word counts of what it produced. Words are\n"
        "Zipf-distributed over a generated vocabulary, or the lines come from a file.\n"
        "\n"
        "Kafka:\n"
        "  --bootstrap HOST:PORT   brokers (bootstrap.servers); required unless --to-dir or --dry-run\n"
        "  --topic TOPIC           topic to produce to; must exist; required unless --to-dir or --dry-run\n"
        "  --kafka KEY=VALUE       librdkafka producer property, repeatable; applied after tally-gen's\n"
        "                          defaults, so it overrides them. Defaults: enable.idempotence=true,\n"
        "                          linger.ms=20, batch.size=1000000, compression.type=none,\n"
        "                          queue.buffering.max.messages=1000000,\n"
        "                          queue.buffering.max.kbytes=1048576, client.id=tally-gen\n"
        "  --dry-run               generate and count only, no Kafka: measures the generation rate\n"
        "\n"
        "Files (instead of Kafka; no broker needed):\n"
        "  --to-dir DIR            write the lines into N text files in DIR (created if missing; its\n"
        "                          parent must exist), one line per \"\\n\", file i holding the i-th\n"
        "                          share of the line sequence (lines/N, the first lines%N files one\n"
        "                          more). Each file is written under a name starting with \".\" and\n"
        "                          renamed to lines-NNNNN.txt once closed, so a reader that skips\n"
        "                          names starting with \".\" (tally, Spark) never sees half a file.\n"
        "                          Fails before writing if any of those names exists. The lines and\n"
        "                          --truth are the same as those produced to a topic with the same\n"
        "                          options. Not with --bootstrap, --topic, --kafka, --stamp, --dry-run,\n"
        "                          nor with the event-time, round and window options below (files\n"
        "                          carry no event times)\n"
        "  --files N               with --to-dir: how many files (default 1, at most 100000)\n"
        "\n"
        "What to produce:\n"
        "  --lines N               lines to produce (default 1000000); suffixes k, M, G = 10^3, 10^6, 10^9\n"
        "  --vocab V               vocabulary size (default 100000)\n"
        "  --zipf S                Zipf exponent: word of rank k has weight 1/k^S (default 1.0, like\n"
        "                          English text); 0 = uniform\n"
        "  --words-per-line N      words per line (default 10); MIN-MAX for uniform in [MIN, MAX]\n"
        "  --min-word-len N        shortest vocabulary word in bytes (default 3)\n"
        "  --max-word-len N        longest vocabulary word in bytes (default 10)\n"
        "  --seed N                seed of the vocabulary and of the word sequence (default 42)\n"
        "  --from-file PATH        produce the file's lines instead (line ends \\n or \\r\\n removed, empty\n"
        "                          lines kept), cycled until --lines; --vocab, --zipf, --words-per-line\n"
        "                          and the word lengths are then ignored\n"
        "  --rate LINES_PER_S      produce at this rate (token bucket on the monotonic clock);\n"
        "                          default 0 = as fast as possible\n"
        "  --stamp                 add a header \"ts\" to every record: its produce time in microseconds\n"
        "                          since the Unix epoch, as a decimal string. The value stays plain\n"
        "                          words, so the stamp is not counted as a word\n"
        "\n",
        out);
    evt_print_help(out);
    /* Separate strings: C11 compilers need only take 4095 bytes in one. */
    fputs(
        "Output:\n"
        "  --truth PATH            after every record is delivered, write the true counts of the words\n"
        "                          produced: one \"WORD<TAB>COUNT\\n\" per word with COUNT > 0, sorted by\n"
        "                          word bytewise. Not written if any delivery failed\n"
        "  --quiet                 no progress lines on stderr (default: one every 2 s)\n"
        "  --help                  this text\n"
        "\n"
        "The vocabulary is deterministic for a given --seed, --vocab and word lengths: word i is a\n"
        "distinct pseudo-random lowercase ASCII string, and word 0 is the most frequent. A word, to the\n"
        "engine and to --truth, is a maximal run of bytes other than space, \\t, \\n, \\r, \\v, \\f.\n"
        "Lines are words joined by single spaces; records have a null key and go round-robin over all\n"
        "the topic's partitions (record n to partition n mod P).\n"
        "\n"
        "At the end one line on stdout:\n"
        "  tally-gen lines=N words=W bytes=B seconds=S lines_per_s=X mb_per_s=Y distinct=D [files=F]\n"
        "bytes counts record values only (with --to-dir: the lines without their \"\\n\"); MB = 10^6\n"
        "bytes; seconds runs from the first record to the last delivery report, pauses included (with\n"
        "--to-dir: to the last rename); distinct is the number of different words produced; files (with\n"
        "--to-dir) is the number of files renamed into DIR.\n"
        "With --window-size a second line:\n"
        "  tally-gen windows size_ms=Z slide_ms=L delay_ms=D|none rounds=R late_lines=N\n"
        "    dropped_lines=N unsure_lines=N pairs=P occurrences=O dropped=N unsure=N\n"
        "    min_event_ms=T max_event_ms=T watermark_final=W|none exact=yes|no\n"
        "(one line): late_lines were generated late; dropped_lines have every window DROPPED (the lines\n"
        "an engine counts as late), unsure_lines have one UNSURE; pairs are the (window, word) lines of\n"
        "--window-truth, occurrences the sum of COUNT, dropped and unsure the sums of --window-late;\n"
        "watermark_final = max(0, max_event_ms - delay).\n"
        "\n"
        "Exit status: 0 ok; 1 failure (a delivery failed, Kafka or I/O error); 2 usage error;\n"
        "130 interrupted (SIGINT/SIGTERM: stops producing, waits for deliveries, still reports and\n"
        "writes --truth for what was produced; a second signal abandons the wait. With --to-dir the\n"
        "file being written is closed and renamed in with the lines it has, the later files are not\n"
        "written, and --truth holds what the files hold).\n",
        out);
}

/* Decimal unsigned integer, whole string, optional k/M/G suffix when `suffix` is set. */
static uint64_t parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, bool suffix) {
    if (*s < '0' || *s > '9') usage_error("%s: \"%s\" is not a number", opt, s);
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = 1;
    if (suffix && *end && end[1] == '\0') {
        if (*end == 'k' || *end == 'K') mul = 1000, end++;
        else if (*end == 'M') mul = 1000000, end++;
        else if (*end == 'G') mul = 1000000000, end++;
    }
    if (*end) usage_error("%s: \"%s\" is not a number%s", opt, s, suffix ? " (suffixes: k, M, G)" : "");
    if (errno == ERANGE || (mul > 1 && v > UINT64_MAX / mul) || v * mul < lo || v * mul > hi)
        usage_error("%s: \"%s\" is out of range (%" PRIu64 "..%" PRIu64 ")", opt, s, lo, hi);
    return (uint64_t)v * mul;
}

static double parse_double(const char *opt, const char *s, double lo, double hi) {
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || isnan(v)) usage_error("%s: \"%s\" is not a number", opt, s);
    if (errno == ERANGE || v < lo || v > hi) usage_error("%s: \"%s\" is out of range (%g..%g)", opt, s, lo, hi);
    return v;
}

enum {
    OPT_BOOTSTRAP = 256, OPT_TOPIC, OPT_LINES, OPT_VOCAB, OPT_ZIPF, OPT_WPL, OPT_MINLEN, OPT_MAXLEN, OPT_SEED,
    OPT_RATE, OPT_FROM_FILE, OPT_TRUTH, OPT_STAMP, OPT_KAFKA, OPT_DRY_RUN, OPT_QUIET, OPT_HELP, OPT_TO_DIR,
    OPT_FILES,
};

/* Event time, rounds and windows: numbers of their own, so the list above stays as it is. */
enum {
    OPT_EVT_START = 512, OPT_EVT_STEP, OPT_EVT_JITTER, OPT_EVT_LATE_SHARE, OPT_EVT_LATE_BY, OPT_EVT_PAUSE_EVERY,
    OPT_EVT_PAUSE_MS, OPT_EVT_WSIZE, OPT_EVT_WSLIDE, OPT_EVT_DELAY, OPT_EVT_WTRUTH, OPT_EVT_WLATE,
    OPT_EVT_LATE_RECORDS, OPT_EVT_PAUSE_CMD,
};

#define EVT_MAX_MS 1000000000000000LL   /* 10^15 ms, year 33658: Spark's microseconds stay far from overflow */
#define EVT_MAX_SPAN 315360000000LL     /* 10 years, tally's bound for window sizes and delays */
#define EVT_MAX_PER_RECORD 1000         /* windows a line may count in (tally's TALLY_WINDOW_MAX_PER_RECORD) */

static void evt_parse_opt(gen_evt_opts_t *e, int c, const char *arg) {
    switch (c) {
    case OPT_EVT_START: e->start = (int64_t)parse_u64("--event-time-start", arg, 1, EVT_MAX_MS, false);
        e->set_start = e->on = true; break;
    case OPT_EVT_STEP: e->step = parse_double("--event-time-step", arg, 0.0, 1e12); e->on = true; break;
    case OPT_EVT_JITTER: e->jitter = (int64_t)parse_u64("--out-of-order", arg, 0, EVT_MAX_SPAN, false); e->on = true; break;
    case OPT_EVT_LATE_SHARE: e->late_share = parse_double("--late-share", arg, 0.0, 1.0); e->on = true; break;
    case OPT_EVT_LATE_BY: e->late_by = (int64_t)parse_u64("--late-by", arg, 1, EVT_MAX_SPAN, false); e->on = true; break;
    case OPT_EVT_PAUSE_EVERY: e->pause_every = parse_u64("--pause-every", arg, 1, UINT64_MAX / 2, true); break;
    case OPT_EVT_PAUSE_MS: e->pause_ms = (int64_t)parse_u64("--pause-ms", arg, 0, 86400000, false); break;
    case OPT_EVT_WSIZE: e->size = (int64_t)parse_u64("--window-size", arg, 1, EVT_MAX_SPAN, false); e->on = true; break;
    case OPT_EVT_WSLIDE: e->slide = (int64_t)parse_u64("--window-slide", arg, 1, EVT_MAX_SPAN, false); break;
    case OPT_EVT_DELAY: e->delay = (int64_t)parse_u64("--watermark-delay", arg, 0, EVT_MAX_SPAN, false); break;
    case OPT_EVT_WTRUTH: e->window_truth = arg; break;
    case OPT_EVT_WLATE: e->window_late = arg; break;
    case OPT_EVT_LATE_RECORDS: e->late_records = arg; break;
    case OPT_EVT_PAUSE_CMD: e->pause_cmd = arg; break;
    }
}

static void evt_check_opts(gen_opts_t *o) {
    gen_evt_opts_t *e = &o->evt;
    if (e->slide && !e->size) usage_error("--window-slide needs --window-size");
    if (e->delay >= 0 && !e->size) usage_error("--watermark-delay needs --window-size");
    if ((e->window_truth || e->window_late || e->late_records) && !e->size)
        usage_error("--window-truth, --window-late and --late-records need --window-size");
    if (e->late_share > 0 && !e->late_by) usage_error("--late-share needs --late-by");
    if (e->late_by && e->late_share == 0) usage_error("--late-by needs --late-share");
    if ((e->pause_ms >= 0 || e->pause_cmd) && !e->pause_every) usage_error("--pause-ms and --pause-cmd need --pause-every");
    if (e->pause_ms < 0) e->pause_ms = e->pause_cmd ? 0 : 5000;
    if (e->size && !e->slide) e->slide = e->size;
    if (e->slide > e->size)
        usage_error("--window-slide %" PRId64 " is greater than --window-size %" PRId64 " (Spark refuses it too)",
                    e->slide, e->size);
    if (e->size && (e->size + e->slide - 1) / e->slide > EVT_MAX_PER_RECORD)
        usage_error("--window-size / --window-slide: more than %d windows hold a line", EVT_MAX_PER_RECORD);
    if (!e->on) return;
    if (!e->set_start) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        e->start = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    int64_t back = e->jitter > e->late_by ? e->jitter : e->late_by;
    if (e->start - back < 1)
        usage_error("--event-time-start %" PRId64 " minus %s %" PRId64 " is below 1 ms (Kafka takes 0 as \"now\")",
                    e->start, e->jitter > e->late_by ? "--out-of-order" : "--late-by", back);
    if ((double)e->start + (double)o->lines * e->step > (double)EVT_MAX_MS)
        usage_error("the event-time clock would pass %lld ms: lower --event-time-step or --lines", EVT_MAX_MS);
}

static void parse_args(gen_opts_t *o, int argc, char **argv) {
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"lines", required_argument, NULL, OPT_LINES},
        {"vocab", required_argument, NULL, OPT_VOCAB},
        {"zipf", required_argument, NULL, OPT_ZIPF},
        {"words-per-line", required_argument, NULL, OPT_WPL},
        {"min-word-len", required_argument, NULL, OPT_MINLEN},
        {"max-word-len", required_argument, NULL, OPT_MAXLEN},
        {"seed", required_argument, NULL, OPT_SEED},
        {"rate", required_argument, NULL, OPT_RATE},
        {"from-file", required_argument, NULL, OPT_FROM_FILE},
        {"truth", required_argument, NULL, OPT_TRUTH},
        {"stamp", no_argument, NULL, OPT_STAMP},
        {"event-time-start", required_argument, NULL, OPT_EVT_START},
        {"event-time-step", required_argument, NULL, OPT_EVT_STEP},
        {"out-of-order", required_argument, NULL, OPT_EVT_JITTER},
        {"late-share", required_argument, NULL, OPT_EVT_LATE_SHARE},
        {"late-by", required_argument, NULL, OPT_EVT_LATE_BY},
        {"pause-every", required_argument, NULL, OPT_EVT_PAUSE_EVERY},
        {"pause-ms", required_argument, NULL, OPT_EVT_PAUSE_MS},
        {"window-size", required_argument, NULL, OPT_EVT_WSIZE},
        {"window-slide", required_argument, NULL, OPT_EVT_WSLIDE},
        {"watermark-delay", required_argument, NULL, OPT_EVT_DELAY},
        {"window-truth", required_argument, NULL, OPT_EVT_WTRUTH},
        {"window-late", required_argument, NULL, OPT_EVT_WLATE},
        {"late-records", required_argument, NULL, OPT_EVT_LATE_RECORDS},
        {"pause-cmd", required_argument, NULL, OPT_EVT_PAUSE_CMD},
        {"kafka", required_argument, NULL, OPT_KAFKA},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"help", no_argument, NULL, OPT_HELP},
        {"to-dir", required_argument, NULL, OPT_TO_DIR},
        {"files", required_argument, NULL, OPT_FILES},
        {NULL, 0, NULL, 0},
    };
    *o = (gen_opts_t){
        .lines = 1000000, .vocab = 100000, .zipf = 1.0, .wpl_min = 10, .wpl_max = 10,
        .len_min = 3, .len_max = 10, .seed = 42, .files = 1,
        .evt = {.step = 1.0, .delay = -1, .pause_ms = -1},
    };
    o->kafka = calloc((size_t)argc, sizeof(*o->kafka));
    if (!o->kafka) usage_error("out of memory");
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_BOOTSTRAP: o->bootstrap = optarg; break;
        case OPT_TOPIC: o->topic = optarg; break;
        case OPT_LINES: o->lines = parse_u64("--lines", optarg, 0, UINT64_MAX / 2, true); break;
        case OPT_VOCAB: o->vocab = parse_u64("--vocab", optarg, 1, INT32_MAX, true); o->set_vocab = true; break;
        case OPT_ZIPF: o->zipf = parse_double("--zipf", optarg, 0.0, 100.0); o->set_zipf = true; break;
        case OPT_WPL: {
            o->set_wpl = true;
            const char *dash = strchr(optarg, '-');
            if (!dash) {
                o->wpl_min = o->wpl_max = parse_u64("--words-per-line", optarg, 1, 100000, false);
                break;
            }
            char lo[32];
            size_t n = (size_t)(dash - optarg);
            if (n == 0 || n >= sizeof(lo)) usage_error("--words-per-line: \"%s\" is not N or MIN-MAX", optarg);
            memcpy(lo, optarg, n);
            lo[n] = '\0';
            o->wpl_min = parse_u64("--words-per-line", lo, 0, 100000, false);
            o->wpl_max = parse_u64("--words-per-line", dash + 1, 1, 100000, false);
            if (o->wpl_min > o->wpl_max) usage_error("--words-per-line: \"%s\": MIN is greater than MAX", optarg);
            break;
        }
        case OPT_MINLEN: o->len_min = parse_u64("--min-word-len", optarg, 1, 1024, false); o->set_len = true; break;
        case OPT_MAXLEN: o->len_max = parse_u64("--max-word-len", optarg, 1, 1024, false); o->set_len = true; break;
        case OPT_SEED: o->seed = parse_u64("--seed", optarg, 0, UINT64_MAX, false); break;
        case OPT_RATE: o->rate = parse_double("--rate", optarg, 0.0, 1e9); break;
        case OPT_FROM_FILE: o->from_file = optarg; break;
        case OPT_TRUTH: o->truth = optarg; break;
        case OPT_STAMP: o->stamp = true; break;
        case OPT_EVT_START: case OPT_EVT_STEP: case OPT_EVT_JITTER: case OPT_EVT_LATE_SHARE: case OPT_EVT_LATE_BY:
        case OPT_EVT_PAUSE_EVERY: case OPT_EVT_PAUSE_MS: case OPT_EVT_WSIZE: case OPT_EVT_WSLIDE: case OPT_EVT_DELAY:
        case OPT_EVT_WTRUTH: case OPT_EVT_WLATE: case OPT_EVT_LATE_RECORDS: case OPT_EVT_PAUSE_CMD:
            evt_parse_opt(&o->evt, c, optarg);
            for (const struct option *lo = longopts; !o->evt.first && lo->name; lo++)
                if (lo->val == c) o->evt.first = lo->name;
            break;
        case OPT_KAFKA:
            if (!strchr(optarg, '=') || optarg[0] == '=') usage_error("--kafka: \"%s\" is not KEY=VALUE", optarg);
            o->kafka[o->kafka_cnt++] = optarg;
            break;
        case OPT_DRY_RUN: o->dry_run = true; break;
        case OPT_QUIET: o->quiet = true; break;
        case OPT_TO_DIR:
            if (!*optarg) usage_error("--to-dir: empty path");
            o->to_dir = optarg;
            break;
        case OPT_FILES:
            o->files = (uint32_t)parse_u64("--files", optarg, 1, GEN_MAX_FILES, false);
            o->set_files = true;
            break;
        case 'h':
        case OPT_HELP: print_help(stdout); exit(0);
        case ':': usage_error("%s: missing value", argv[optind - 1]);
        default: usage_error("unknown option \"%s\"", argv[optind - 1]);
        }
    }
    if (optind < argc) usage_error("unexpected argument \"%s\"", argv[optind]);
    if (o->len_min > o->len_max)
        usage_error("--min-word-len %" PRIu64 " is greater than --max-word-len %" PRIu64, o->len_min, o->len_max);
    if (o->to_dir) {
        if (o->dry_run) usage_error("--to-dir and --dry-run: choose one");
        if (o->bootstrap || o->topic || o->kafka_cnt)
            usage_error("--to-dir writes files: --bootstrap, --topic and --kafka do not apply");
        if (o->stamp) usage_error("--stamp adds a Kafka header: it does not apply to --to-dir");
        if (o->evt.first) /* a file line has no timestamp, and rounds would not match the files */
            usage_error("--%s does not apply to --to-dir: the event-time, round and window options are for "
                        "records produced to Kafka, and text files carry no event times", o->evt.first);
    } else if (o->set_files) {
        usage_error("--files needs --to-dir");
    }
    if (!o->dry_run && !o->to_dir && !o->bootstrap) usage_error("--bootstrap is required (or --to-dir, or --dry-run)");
    if (!o->dry_run && !o->to_dir && !o->topic) usage_error("--topic is required (or --to-dir, or --dry-run)");
    if (o->from_file && (o->set_vocab || o->set_zipf || o->set_wpl || o->set_len))
        fprintf(stderr, "tally-gen: note: --vocab, --zipf, --words-per-line and word lengths are ignored with --from-file\n");
    evt_check_opts(o);
}

/* ------------------------------------------------------------------------------------------------ */
/* Clock, random numbers                                                                             */

static int64_t now_epoch_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* xoshiro256** seeded through splitmix64 (Blackman & Vigna): fast, and every bit is usable. */
typedef struct gen_rng_s {
    uint64_t s[4];
} gen_rng_t;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_init(gen_rng_t *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(gen_rng_t *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, n) from 32 random bits, n <= 2^32 (multiply-shift; bias below 2^-32 * n). */
static inline uint32_t below32(uint32_t bits, uint64_t n) { return (uint32_t)(((uint64_t)bits * n) >> 32); }

/* ------------------------------------------------------------------------------------------------ */
/* Vocabulary: word i is a distinct pseudo-random lowercase string; all words in one pool            */

typedef struct gen_word_s {
    uint32_t off, len;
} gen_word_t;

typedef struct gen_vocab_s {
    char *pool;        /* words back to back, GEN_WORD_PAD spare bytes at the end */
    gen_word_t *words;
    uint32_t n;
} gen_vocab_t;

static void vocab_term(gen_vocab_t *v) {
    free(v->pool);
    free(v->words);
    *v = (gen_vocab_t){0};
}

/* How many strings of lowercase letters have a length in [lo, hi]; saturates at 2^62. */
static uint64_t vocab_space(uint64_t lo, uint64_t hi) {
    uint64_t total = 0, p = 1;
    for (uint64_t l = 1; l <= hi; l++) {
        p = p > (1ULL << 62) / 26 ? (1ULL << 62) : p * 26;
        if (l >= lo) total = total + p > (1ULL << 62) ? (1ULL << 62) : total + p;
    }
    return total;
}

/* Draws words with uniform length and letters, rejecting repeats through an open-addressing set;
 * a rejected draw redraws the length too, so a full short length spills into the longer ones. */
static int vocab_build(gen_vocab_t *v, uint32_t n, uint32_t len_min, uint32_t len_max, uint64_t seed,
                       char *errstr, size_t errstr_size) {
    *v = (gen_vocab_t){0};
    size_t cap = 1;
    while (cap < (size_t)n * 2) cap <<= 1;
    uint32_t *set = calloc(cap, sizeof(*set)); /* word index + 1, 0 = empty */
    size_t pool_cap = (size_t)n * (len_min + len_max) / 2 + 4096, pool_len = 0;
    v->pool = malloc(pool_cap);
    v->words = malloc((size_t)n * sizeof(*v->words));
    if (!set || !v->pool || !v->words) goto nomem;
    gen_rng_t rng;
    rng_init(&rng, seed, 1);
    uint32_t span = len_max - len_min + 1;
    for (uint32_t i = 0; i < n; i++) {
        for (;;) {
            if (pool_len + len_max + GEN_WORD_PAD > pool_cap) {
                pool_cap *= 2;
                if (pool_cap > UINT32_MAX) {
                    snprintf(errstr, errstr_size, "the vocabulary needs more than 4 GB; lower --vocab or --max-word-len");
                    goto fail;
                }
                char *p = realloc(v->pool, pool_cap);
                if (!p) goto nomem;
                v->pool = p;
            }
            char *w = v->pool + pool_len;
            uint32_t len = len_min + below32((uint32_t)(rng_next(&rng) >> 32), span);
            for (uint32_t k = 0; k < len; k++) w[k] = (char)('a' + below32((uint32_t)(rng_next(&rng) >> 32), 26));
            size_t h = (size_t)XXH3_64bits(w, len) & (cap - 1);
            bool dup = false;
            while (set[h]) {
                const gen_word_t *o = &v->words[set[h] - 1];
                if (o->len == len && memcmp(v->pool + o->off, w, len) == 0) {
                    dup = true;
                    break;
                }
                h = (h + 1) & (cap - 1);
            }
            if (dup) continue;
            set[h] = i + 1;
            v->words[i] = (gen_word_t){.off = (uint32_t)pool_len, .len = len};
            pool_len += len;
            break;
        }
    }
    memset(v->pool + pool_len, 0, GEN_WORD_PAD);
    v->n = n;
    free(set);
    return 0;
nomem:
    snprintf(errstr, errstr_size, "out of memory building a vocabulary of %" PRIu32 " words", n);
fail:
    free(set);
    vocab_term(v);
    return -1;
}

/* ------------------------------------------------------------------------------------------------ */
/* Zipf sampling: Vose's alias method, O(1) per draw                                                 */

typedef struct gen_alias_s {
    uint32_t thr;   /* keep the slot when the low 32 random bits are below thr, else take alias */
    uint32_t alias;
} gen_alias_t;

/* Rank k (0-based) gets weight 1/(k+1)^s. Returns NULL when out of memory. */
static gen_alias_t *alias_build(uint32_t n, double s) {
    gen_alias_t *tab = malloc((size_t)n * sizeof(*tab));
    double *q = malloc((size_t)n * sizeof(*q));
    uint32_t *stack = malloc((size_t)n * sizeof(*stack)); /* small ones from the front, large from the back */
    if (!tab || !q || !stack) {
        free(tab), free(q), free(stack);
        return NULL;
    }
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) sum += q[i] = pow((double)i + 1.0, -s);
    size_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        q[i] = q[i] * n / sum;
        if (q[i] < 1.0) stack[ns++] = i;
        else stack[n - 1 - nl++] = i;
    }
    while (ns && nl) {
        uint32_t l = stack[--ns], g = stack[n - nl--];
        double t = ldexp(q[l], 32);
        tab[l] = (gen_alias_t){.thr = t >= 4294967295.0 ? UINT32_MAX : (uint32_t)t, .alias = g};
        q[g] = (q[g] + q[l]) - 1.0;
        if (q[g] < 1.0) stack[ns++] = g;
        else stack[n - 1 - nl++] = g;
    }
    /* What remains has probability 1 up to rounding: aliasing to itself makes the threshold moot. */
    while (ns) { uint32_t i = stack[--ns]; tab[i] = (gen_alias_t){.thr = UINT32_MAX, .alias = i}; }
    while (nl) { uint32_t i = stack[n - nl--]; tab[i] = (gen_alias_t){.thr = UINT32_MAX, .alias = i}; }
    free(q);
    free(stack);
    return tab;
}

/* ------------------------------------------------------------------------------------------------ */
/* --from-file: the file's lines, their words interned once, so cycling costs no tokenizing           */

typedef struct gen_fline_s {
    size_t off;       /* into data */
    size_t tok_first; /* into toks */
    uint32_t len;
    uint32_t tok_cnt;
} gen_fline_t;

typedef struct gen_fword_s {
    size_t off;
    uint64_t hash;
    uint32_t len;
} gen_fword_t;

typedef struct gen_file_s {
    char *data;
    size_t size;
    gen_fline_t *lines;
    size_t nlines;
    uint32_t *toks; /* word ids, each line's contiguous */
    size_t ntoks;
    gen_fword_t *words;
    uint32_t nwords;
} gen_file_t;

static void file_term(gen_file_t *f) {
    free(f->data);
    free(f->lines);
    free(f->toks);
    free(f->words);
    *f = (gen_file_t){0};
}

static inline bool is_space(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Grows *p (elements of `size` bytes) to hold at least `need`; 0 or -1 when out of memory. */
static int grow(void *p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *n = realloc(*(void **)p, c * size);
    if (!n) return -1;
    *(void **)p = n;
    *cap = c;
    return 0;
}

static int file_load(gen_file_t *f, const char *path, char *errstr, size_t errstr_size) {
    *f = (gen_file_t){0};
    uint32_t *slots = NULL; /* word id + 1 */
    size_t slot_cap = 0, lines_cap = 0, toks_cap = 0, words_cap = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(errstr, errstr_size, "--from-file: \"%s\": %s", path, strerror(errno));
        return -1;
    }
    size_t data_cap = 0;
    for (;;) {
        if (grow(&f->data, &data_cap, f->size + (1 << 20), 1)) goto nomem;
        size_t r = fread(f->data + f->size, 1, data_cap - f->size, fp);
        f->size += r;
        if (r == 0) break;
    }
    if (ferror(fp)) {
        snprintf(errstr, errstr_size, "--from-file: \"%s\": read error", path);
        fclose(fp);
        goto fail;
    }
    fclose(fp);
    if (f->size == 0) {
        snprintf(errstr, errstr_size, "--from-file: \"%s\" is empty", path);
        goto fail;
    }
    slot_cap = 1 << 16;
    if (!(slots = calloc(slot_cap, sizeof(*slots)))) goto nomem;
    for (size_t pos = 0; pos < f->size;) {
        const char *nl = memchr(f->data + pos, '\n', f->size - pos);
        size_t end = nl ? (size_t)(nl - f->data) : f->size, next = nl ? end + 1 : end;
        if (end > pos && f->data[end - 1] == '\r') end--;
        if (end - pos > INT32_MAX) {
            snprintf(errstr, errstr_size, "--from-file: \"%s\": line %zu is longer than 2 GB", path, f->nlines + 1);
            goto fail;
        }
        if (grow(&f->lines, &lines_cap, f->nlines + 1, sizeof(*f->lines))) goto nomem;
        gen_fline_t *ln = &f->lines[f->nlines++];
        *ln = (gen_fline_t){.off = pos, .len = (uint32_t)(end - pos), .tok_first = f->ntoks};
        for (size_t i = pos; i < end;) {
            while (i < end && is_space((unsigned char)f->data[i])) i++;
            if (i == end) break;
            size_t w = i;
            while (i < end && !is_space((unsigned char)f->data[i])) i++;
            uint32_t wlen = (uint32_t)(i - w);
            uint64_t h = XXH3_64bits(f->data + w, wlen);
            size_t s = (size_t)h & (slot_cap - 1);
            while (slots[s]) {
                const gen_fword_t *o = &f->words[slots[s] - 1];
                if (o->hash == h && o->len == wlen && memcmp(f->data + o->off, f->data + w, wlen) == 0) break;
                s = (s + 1) & (slot_cap - 1);
            }
            uint32_t id;
            if (slots[s]) {
                id = slots[s] - 1;
            } else {
                if (f->nwords == UINT32_MAX - 1) {
                    snprintf(errstr, errstr_size, "--from-file: \"%s\" has too many distinct words", path);
                    goto fail;
                }
                if (grow(&f->words, &words_cap, (size_t)f->nwords + 1, sizeof(*f->words))) goto nomem;
                id = f->nwords++;
                f->words[id] = (gen_fword_t){.off = w, .len = wlen, .hash = h};
                slots[s] = id + 1;
                if ((size_t)f->nwords * 2 > slot_cap) { /* rehash at half full */
                    size_t ncap = slot_cap * 2;
                    uint32_t *ns = calloc(ncap, sizeof(*ns));
                    if (!ns) goto nomem;
                    for (uint32_t k = 0; k < f->nwords; k++) {
                        size_t t = (size_t)f->words[k].hash & (ncap - 1);
                        while (ns[t]) t = (t + 1) & (ncap - 1);
                        ns[t] = k + 1;
                    }
                    free(slots);
                    slots = ns;
                    slot_cap = ncap;
                }
            }
            if (grow(&f->toks, &toks_cap, f->ntoks + 1, sizeof(*f->toks))) goto nomem;
            f->toks[f->ntoks++] = id;
            ln->tok_cnt++;
        }
        pos = next;
    }
    free(slots);
    return 0;
nomem:
    snprintf(errstr, errstr_size, "--from-file: \"%s\": out of memory", path);
fail:
    free(slots);
    file_term(f);
    return -1;
}

/* ------------------------------------------------------------------------------------------------ */
/* --truth                                                                                           */

typedef struct gen_count_s {
    const char *word;
    uint64_t count;
    uint32_t len;
} gen_count_t;

static int count_cmp(const void *a, const void *b) {
    const gen_count_t *x = a, *y = b;
    int c = memcmp(x->word, y->word, x->len < y->len ? x->len : y->len);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Sorts `c` by word and writes it through a temporary file renamed into place, so a reader never
 * sees half a truth. */
static int truth_write(const char *path, gen_count_t *c, size_t n, char *errstr, size_t errstr_size) {
    qsort(c, n, sizeof(*c), count_cmp);
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        snprintf(errstr, errstr_size, "--truth: path too long");
        return -1;
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        snprintf(errstr, errstr_size, "--truth: \"%s\": %s", tmp, strerror(errno));
        return -1;
    }
    static char buf[1 << 20];
    setvbuf(fp, buf, _IOFBF, sizeof(buf));
    for (size_t i = 0; i < n; i++) {
        fwrite(c[i].word, 1, c[i].len, fp);
        fprintf(fp, "\t%" PRIu64 "\n", c[i].count);
    }
    bool bad = ferror(fp) != 0;
    if (fclose(fp) != 0) bad = true;
    if (bad || rename(tmp, path) != 0) {
        snprintf(errstr, errstr_size, "--truth: \"%s\": %s", bad ? tmp : path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Kafka producer                                                                                    */

typedef struct gen_kafka_s {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    int32_t partitions;
    uint64_t delivered; /* delivery reports, written by the callbacks on the main thread */
    uint64_t failed;
    bool fatal;
    char first_err[512];
} gen_kafka_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    gen_kafka_t *k = opaque;
    if (m->err) {
        if (!k->failed++)
            snprintf(k->first_err, sizeof(k->first_err), "partition %" PRId32 ": %s", m->partition,
                     rd_kafka_err2str(m->err));
    } else {
        k->delivered++;
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    gen_kafka_t *k = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof(buf));
        tally_err("fatal Kafka error: %s: %s", rd_kafka_err2name(orig), buf);
        k->fatal = true;
        return;
    }
    /* Transient (broker down, all brokers down...): librdkafka retries; message.timeout.ms decides. */
    tally_warn("Kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* librdkafka's own log lines, through ours. Called on librdkafka's threads: tally_log_write() is one
 * write(2) per line and touches no shared state. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    tally_log_level_t l = level <= 3 ? TALLY_LOG_ERROR : level == 4 ? TALLY_LOG_WARN : level <= 6 ? TALLY_LOG_INFO
                                                                                                 : TALLY_LOG_DEBUG;
    if (strcmp(tally_log_thread(), "gen") != 0) tally_log_set_thread("rdk"); /* thread-local; main stays [gen] */
    tally_log(l, "rdkafka %s: %s", fac, buf);
}

static int conf_set(rd_kafka_conf_t *c, const char *opt, const char *key, const char *val, char *errstr,
                    size_t errstr_size) {
    char err[512];
    if (rd_kafka_conf_set(c, key, val, err, sizeof(err)) == RD_KAFKA_CONF_OK) return 0;
    snprintf(errstr, errstr_size, "%s: \"%s=%s\": %s", opt, key, val, err);
    return -1;
}

/* Returns 0, -1 on a Kafka error, -2 on a bad --kafka property (a usage error). */
static int kafka_open(gen_kafka_t *k, const gen_opts_t *o, char *errstr, size_t errstr_size) {
    static const char *const defaults[][2] = {
        {"client.id", "tally-gen"},
        {"enable.idempotence", "true"},
        {"linger.ms", "20"},
        {"batch.size", "1000000"},
        {"compression.type", "none"},
        {"queue.buffering.max.messages", "1000000"},
        {"queue.buffering.max.kbytes", "1048576"},
    };
    *k = (gen_kafka_t){0};
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (conf_set(c, "--bootstrap", "bootstrap.servers", o->bootstrap, errstr, errstr_size)) goto usage;
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (conf_set(c, "default", defaults[i][0], defaults[i][1], errstr, errstr_size)) goto fail;
    for (int i = 0; i < o->kafka_cnt; i++) {
        const char *eq = strchr(o->kafka[i], '=');
        char key[256];
        size_t n = (size_t)(eq - o->kafka[i]);
        if (n >= sizeof(key)) {
            snprintf(errstr, errstr_size, "--kafka: \"%s\": key too long", o->kafka[i]);
            goto usage;
        }
        memcpy(key, o->kafka[i], n);
        key[n] = '\0';
        if (conf_set(c, "--kafka", key, eq + 1, errstr, errstr_size)) goto usage;
    }
    rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
    rd_kafka_conf_set_error_cb(c, error_cb);
    rd_kafka_conf_set_log_cb(c, log_cb);
    rd_kafka_conf_set_opaque(c, k);
    char err[512];
    k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (!k->rk) {
        snprintf(errstr, errstr_size, "cannot create the producer: %s", err);
        goto fail; /* rd_kafka_new() failed: c is still ours */
    }
    c = NULL;
    k->rkt = rd_kafka_topic_new(k->rk, o->topic, NULL);
    if (!k->rkt) {
        snprintf(errstr, errstr_size, "topic \"%s\": %s", o->topic, rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    /* The partition count, for explicit round-robin: retried while the broker or leaders come up. */
    double deadline = tally_mono_s() + 30.0;
    rd_kafka_resp_err_t last = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(k->rk, 0, k->rkt, &md, 5000);
        if (!e) {
            e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
            if (!e) {
                k->partitions = md->topics[0].partition_cnt;
                for (int i = 0; i < md->topics[0].partition_cnt; i++)
                    if (md->topics[0].partitions[i].leader < 0) e = RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
            }
            rd_kafka_metadata_destroy(md);
        }
        if (!e && k->partitions > 0) break;
        if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
            snprintf(errstr, errstr_size, "topic \"%s\" does not exist on %s (create it first, e.g. "
                     "scripts/kafka-local topic %s 4)", o->topic, o->bootstrap, o->topic);
            goto fail;
        }
        if (tally_mono_s() > deadline) {
            snprintf(errstr, errstr_size, "no metadata for topic \"%s\" from %s within 30 s: %s", o->topic,
                     o->bootstrap, rd_kafka_err2str(e));
            goto fail;
        }
        if (e != last) tally_warn("metadata for \"%s\": %s; retrying for up to 30 s", o->topic, rd_kafka_err2str(e));
        last = e;
        rd_kafka_poll(k->rk, 500);
        if (k->fatal) {
            snprintf(errstr, errstr_size, "fatal producer error on %s (see above)", o->bootstrap);
            goto fail;
        }
    }
    return 0;
usage:
    rd_kafka_conf_destroy(c);
    return -2;
fail:
    if (c) rd_kafka_conf_destroy(c);
    if (k->rkt) rd_kafka_topic_destroy(k->rkt);
    if (k->rk) rd_kafka_destroy(k->rk);
    *k = (gen_kafka_t){0};
    return -1;
}

static void kafka_close(gen_kafka_t *k) {
    if (k->rkt) rd_kafka_topic_destroy(k->rkt);
    if (k->rk) rd_kafka_destroy(k->rk);
    k->rkt = NULL;
    k->rk = NULL;
}

/* Decimal digits of v into buf (no terminator needed by Kafka headers); returns the length. */
static size_t fmt_u64(char *buf, uint64_t v) {
    char tmp[24];
    size_t n = 0;
    do tmp[n++] = (char)('0' + v % 10), v /= 10; while (v);
    for (size_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    return n;
}

/* 0, or -1 on an error other than a full queue (which is waited out by serving delivery reports).
 * ts_ms: the record's timestamp (CreateTime), 0 = librdkafka's default, the time of producing. */
static int produce(gen_kafka_t *k, const char *val, size_t len, int32_t partition, bool stamp, int64_t ts_ms,
                   volatile sig_atomic_t *stop) {
    for (;;) {
        rd_kafka_resp_err_t e;
        if (stamp) {
            char ts[24];
            size_t n = fmt_u64(ts, (uint64_t)now_epoch_us()); /* taken on every try: the time it enters the queue */
            e = rd_kafka_producev(k->rk, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_PARTITION(partition),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE((void *)val, len),
                                  RD_KAFKA_V_HEADER("ts", ts, (ssize_t)n), RD_KAFKA_V_TIMESTAMP(ts_ms),
                                  RD_KAFKA_V_END);
        } else {
            e = rd_kafka_producev(k->rk, RD_KAFKA_V_RKT(k->rkt), RD_KAFKA_V_PARTITION(partition),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE((void *)val, len),
                                  RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_END);
        }
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || k->fatal || *stop >= 2) {
            tally_err("produce to partition %" PRId32 ": %s", partition, rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(k->rk, 5);
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* --to-dir: the lines into N files, each written under a hidden name and renamed in when closed      */

typedef struct gen_dir_s {
    const char *dir;
    uint32_t nfiles;   /* files to write */
    uint32_t next;     /* index of the next file to open */
    uint32_t renamed;  /* files renamed into dir */
    uint64_t share, extra; /* file i holds share lines, one more if i < extra */
    uint64_t left;     /* lines still to write into the open file */
    FILE *fp;          /* the open file, NULL when none */
    char tmp[4096], final[4096];
    char buf[1 << 20]; /* stdio buffer of the open file */
} gen_dir_t;

static int dir_name(const gen_dir_t *d, char *out, size_t size, uint32_t i, bool hidden) {
    return (size_t)snprintf(out, size, "%s/%slines-%05" PRIu32 ".txt%s", d->dir, hidden ? "." : "", i,
                            hidden ? ".tmp" : "") >= size ? -1 : 0;
}

/* Creates DIR when missing and checks that none of the names to be written exists. */
static int dir_open(gen_dir_t *d, const gen_opts_t *o, char *errstr, size_t errstr_size) {
    d->dir = o->to_dir;
    d->nfiles = o->files;
    d->share = o->lines / o->files;
    d->extra = o->lines % o->files;
    if (mkdir(d->dir, 0777) != 0 && errno != EEXIST) {
        snprintf(errstr, errstr_size, "--to-dir: cannot create \"%s\": %s", d->dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(d->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(errstr, errstr_size, "--to-dir: \"%s\" is not a directory", d->dir);
        return -1;
    }
    for (uint32_t i = 0; i < d->nfiles; i++) {
        if (dir_name(d, d->final, sizeof(d->final), i, false) || dir_name(d, d->tmp, sizeof(d->tmp), i, true)) {
            snprintf(errstr, errstr_size, "--to-dir: path too long");
            return -1;
        }
        if (lstat(d->final, &st) == 0) {
            snprintf(errstr, errstr_size, "--to-dir: \"%s\" exists already (use an empty directory)", d->final);
            return -1;
        }
    }
    return 0;
}

/* Closes the open file and renames it in; on failure removes it. */
static int dir_close(gen_dir_t *d, char *errstr, size_t errstr_size) {
    if (!d->fp) return 0;
    bool bad = ferror(d->fp) != 0;
    int e = errno;
    if (fclose(d->fp) != 0 && !bad) bad = true, e = errno;
    d->fp = NULL;
    if (!bad && rename(d->tmp, d->final) != 0) bad = true, e = errno;
    if (bad) {
        snprintf(errstr, errstr_size, "--to-dir: \"%s\": %s", d->tmp, strerror(e));
        remove(d->tmp);
        return -1;
    }
    d->renamed++;
    return 0;
}

/* Closes the open file (if any) and opens the next one; 1 when every file has been opened. */
static int dir_next(gen_dir_t *d, char *errstr, size_t errstr_size) {
    if (dir_close(d, errstr, errstr_size)) return -1;
    if (d->next == d->nfiles) return 1;
    uint32_t i = d->next++;
    dir_name(d, d->final, sizeof(d->final), i, false); /* lengths checked in dir_open */
    dir_name(d, d->tmp, sizeof(d->tmp), i, true);
    d->fp = fopen(d->tmp, "wb");
    if (!d->fp) {
        snprintf(errstr, errstr_size, "--to-dir: \"%s\": %s", d->tmp, strerror(errno));
        return -1;
    }
    setvbuf(d->fp, d->buf, _IOFBF, sizeof(d->buf));
    d->left = d->share + (i < d->extra);
    return 0;
}

/* Writes one line into the file it belongs to, opening the next file(s) as the shares run out. */
static int dir_write(gen_dir_t *d, const char *val, size_t len, char *errstr, size_t errstr_size) {
    while (!d->fp || d->left == 0) {
        int r = dir_next(d, errstr, errstr_size);
        if (r < 0) return -1;
        if (r > 0) {
            snprintf(errstr, errstr_size, "--to-dir: internal error: more lines than the files' shares");
            return -1;
        }
    }
    if ((len && fwrite(val, 1, len, d->fp) != len) || putc('\n', d->fp) == EOF) {
        snprintf(errstr, errstr_size, "--to-dir: \"%s\": %s", d->tmp, strerror(errno));
        fclose(d->fp);
        d->fp = NULL;
        remove(d->tmp);
        return -1;
    }
    d->left--;
    return 0;
}

/* After the last line: the open file, then (unless interrupted) any files left, empty ones included. */
static int dir_finish(gen_dir_t *d, bool interrupted, char *errstr, size_t errstr_size) {
    if (interrupted) return dir_close(d, errstr, errstr_size);
    for (;;) {
        int r = dir_next(d, errstr, errstr_size);
        if (r) return r < 0 ? -1 : 0;
    }
}

static void dir_abandon(gen_dir_t *d) {
    if (!d->fp) return;
    fclose(d->fp);
    d->fp = NULL;
    remove(d->tmp);
}

/* ------------------------------------------------------------------------------------------------ */
/* Rate limiting: token bucket on the monotonic clock                                                */

typedef struct gen_bucket_s {
    double rate;   /* tokens (lines) per second */
    double cap;    /* 50 ms worth: absorbs sleep overshoot, yet no long catch-up burst after a stall */
    double tokens;
    double last;
} gen_bucket_t;

static void bucket_init(gen_bucket_t *b, double rate) {
    *b = (gen_bucket_t){.rate = rate, .cap = fmax(1.0, rate * 0.05), .tokens = 1.0, .last = tally_mono_s()};
}

/* Takes one token, sleeping until there is one (or a stop signal). Reads the clock only when empty. */
static void bucket_take(gen_bucket_t *b, volatile sig_atomic_t *stop) {
    while (b->tokens < 1.0 && !*stop) {
        double t = tally_mono_s();
        b->tokens = fmin(b->cap, b->tokens + (t - b->last) * b->rate);
        b->last = t;
        if (b->tokens >= 1.0) break;
        double wait = (1.0 - b->tokens) / b->rate;
        if (wait > 0.1) wait = 0.1; /* stay responsive to signals */
        struct timespec ts = {.tv_sec = (time_t)wait, .tv_nsec = (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
    }
    b->tokens -= 1.0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Event time, rounds and windows                                                                    */

/* Each line's event time comes from the line's own clock (START + floor(n * STEP)), minus a jitter or
 * --late-by, drawn from a stream of --seed of its own (two draws a line whatever the options, so one
 * option does not shift another's draws). With --window-size every (line, window, word) occurrence
 * is counted per (window start, word), and classified when its round ends, against the lowest (LO)
 * and highest (HI) watermark an engine following Spark's rules can have while it reads the round
 * (--help explains them). The window assignment is written here again from Spark's TimeWindowing,
 * not taken from the engine's window.c, so that the truth checks the engine instead of sharing it. */

#define EVT_NONE INT64_MIN

typedef struct evt_word_s {
    uint64_t hash;
    uint32_t off, len;
} evt_word_t;

typedef struct evt_pair_s {
    int64_t start;
    uint64_t all, dropped, unsure;
    uint64_t in_round; /* occurrences of the current round, classified at its end */
    uint32_t word;
} evt_pair_t;

typedef struct evt_line_s {
    uint64_t line;
    int64_t t;
    int32_t partition;
    bool late;
} evt_line_t;

typedef struct gen_evt_s {
    const gen_evt_opts_t *o;
    gen_rng_t rng;
    int64_t min_t, max_t;  /* over every line so far */
    int64_t max_before;    /* M(<r): over the rounds before the current one */
    uint64_t rounds, late_lines, dropped_lines, unsure_lines;
    uint64_t expected;     /* sum over lines of words * windows: checks the table */
    char *pool;            /* the words, back to back */
    size_t pool_len, pool_cap;
    evt_word_t *words;
    size_t nwords, words_cap;
    uint32_t *wslots;      /* word id + 1 */
    size_t wslot_cap;
    evt_pair_t *pairs;
    size_t npairs, pairs_cap;
    uint32_t *pslots;      /* pair index + 1 */
    size_t pslot_cap;
    uint32_t *touched;     /* pairs with in_round > 0 */
    size_t ntouched, touched_cap;
    evt_line_t *lines;     /* the current round's */
    size_t nlines, lines_cap;
    FILE *late_fp;         /* --late-records, written to late_tmp round by round */
    char late_tmp[4096];
} gen_evt_t;

static int64_t evt_floor_mod(int64_t a, int64_t b) {
    int64_t m = a % b;
    return m < 0 ? m + b : m;
}

/* Spark's TimeWindowing with startTime 0: lastStart = t - floorMod(t, slide), candidates lastStart - i*slide
 * for i < ceil(size/slide), kept when start <= t < start + size. Ascending starts; returns how many. */
static size_t evt_windows(int64_t t, int64_t size, int64_t slide, int64_t *starts) {
    int64_t last = t - evt_floor_mod(t, slide);
    int64_t k = (size + slide - 1) / slide;
    size_t n = 0;
    for (int64_t i = k - 1; i >= 0; i--) {
        int64_t s = last - i * slide;
        if (s <= t && t < s + size) starts[n++] = s;
    }
    return n;
}

static void evt_term(gen_evt_t *v) {
    if (v->late_fp) {
        fclose(v->late_fp);
        remove(v->late_tmp);
    }
    free(v->pool);
    free(v->words);
    free(v->wslots);
    free(v->pairs);
    free(v->pslots);
    free(v->touched);
    free(v->lines);
    *v = (gen_evt_t){0};
}

static int evt_init(gen_evt_t *v, const gen_evt_opts_t *o, uint64_t seed, char *errstr, size_t errstr_size) {
    *v = (gen_evt_t){.o = o, .min_t = EVT_NONE, .max_t = EVT_NONE, .max_before = EVT_NONE};
    rng_init(&v->rng, seed, 3);
    if (!o->size) return 0;
    v->wslot_cap = v->pslot_cap = 1 << 12;
    v->wslots = calloc(v->wslot_cap, sizeof(*v->wslots));
    v->pslots = calloc(v->pslot_cap, sizeof(*v->pslots));
    if (!v->wslots || !v->pslots) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (o->late_records) {
        if ((size_t)snprintf(v->late_tmp, sizeof(v->late_tmp), "%s.tmp", o->late_records) >= sizeof(v->late_tmp)) {
            snprintf(errstr, errstr_size, "--late-records: path too long");
            return -1;
        }
        if (!(v->late_fp = fopen(v->late_tmp, "wb"))) {
            snprintf(errstr, errstr_size, "--late-records: \"%s\": %s", v->late_tmp, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static inline uint64_t evt_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

/* The id of the word w[0..len), added when new; -1 when out of memory. */
static int64_t evt_word(gen_evt_t *v, const char *w, uint32_t len) {
    uint64_t h = XXH3_64bits(w, len);
    size_t s = (size_t)h & (v->wslot_cap - 1);
    while (v->wslots[s]) {
        const evt_word_t *x = &v->words[v->wslots[s] - 1];
        if (x->hash == h && x->len == len && memcmp(v->pool + x->off, w, len) == 0) return v->wslots[s] - 1;
        s = (s + 1) & (v->wslot_cap - 1);
    }
    if (v->nwords >= UINT32_MAX - 1 || v->pool_len + len > UINT32_MAX) return -1;
    if (grow(&v->pool, &v->pool_cap, v->pool_len + len, 1) ||
        grow(&v->words, &v->words_cap, v->nwords + 1, sizeof(*v->words)))
        return -1;
    memcpy(v->pool + v->pool_len, w, len);
    uint32_t id = (uint32_t)v->nwords++;
    v->words[id] = (evt_word_t){.hash = h, .off = (uint32_t)v->pool_len, .len = len};
    v->pool_len += len;
    v->wslots[s] = id + 1;
    if (v->nwords * 2 > v->wslot_cap) { /* rehash at half full */
        size_t ncap = v->wslot_cap * 2;
        uint32_t *ns = calloc(ncap, sizeof(*ns));
        if (!ns) return -1;
        for (size_t k = 0; k < v->nwords; k++) {
            size_t t = (size_t)v->words[k].hash & (ncap - 1);
            while (ns[t]) t = (t + 1) & (ncap - 1);
            ns[t] = (uint32_t)k + 1;
        }
        free(v->wslots);
        v->wslots = ns;
        v->wslot_cap = ncap;
    }
    return id;
}

static inline size_t evt_pair_slot(int64_t start, uint32_t word, size_t cap) {
    return (size_t)evt_mix((uint64_t)start * 0x9e3779b97f4a7c15ULL ^ word) & (cap - 1);
}

/* One more occurrence of (start, word) in the current round; -1 when out of memory. */
static int evt_count(gen_evt_t *v, int64_t start, uint32_t word) {
    size_t s = evt_pair_slot(start, word, v->pslot_cap);
    while (v->pslots[s]) {
        evt_pair_t *p = &v->pairs[v->pslots[s] - 1];
        if (p->start == start && p->word == word) {
            if (!p->in_round++) {
                if (grow(&v->touched, &v->touched_cap, v->ntouched + 1, sizeof(*v->touched))) return -1;
                v->touched[v->ntouched++] = v->pslots[s] - 1;
            }
            return 0;
        }
        s = (s + 1) & (v->pslot_cap - 1);
    }
    if (v->npairs >= UINT32_MAX - 1 || grow(&v->pairs, &v->pairs_cap, v->npairs + 1, sizeof(*v->pairs)) ||
        grow(&v->touched, &v->touched_cap, v->ntouched + 1, sizeof(*v->touched)))
        return -1;
    uint32_t idx = (uint32_t)v->npairs++;
    v->pairs[idx] = (evt_pair_t){.start = start, .word = word, .in_round = 1};
    v->touched[v->ntouched++] = idx;
    v->pslots[s] = idx + 1;
    if (v->npairs * 2 > v->pslot_cap) {
        size_t ncap = v->pslot_cap * 2;
        uint32_t *ns = calloc(ncap, sizeof(*ns));
        if (!ns) return -1;
        for (size_t k = 0; k < v->npairs; k++) {
            size_t t = evt_pair_slot(v->pairs[k].start, v->pairs[k].word, ncap);
            while (ns[t]) t = (t + 1) & (ncap - 1);
            ns[t] = (uint32_t)k + 1;
        }
        free(v->pslots);
        v->pslots = ns;
        v->pslot_cap = ncap;
    }
    return 0;
}

/* Line n (0-based), going to `partition` (-1: none): its event time into *ts_ms, and with windows its
 * occurrences counted. 0, or -1 when out of memory. */
static int evt_next(gen_evt_t *v, uint64_t n, int32_t partition, const char *line, size_t len, int64_t *ts_ms) {
    const gen_evt_opts_t *o = v->o;
    int64_t clock = o->start + (int64_t)floor((double)n * o->step);
    uint64_t r_late = rng_next(&v->rng), r_jitter = rng_next(&v->rng);
    bool late = o->late_share > 0 && (double)(r_late >> 11) * 0x1.0p-53 < o->late_share &&
                !(o->pause_every && n < o->pause_every); /* the first round has no watermark to be late against */
    int64_t t = late ? clock - o->late_by : clock - (int64_t)(r_jitter % (uint64_t)(o->jitter + 1));
    *ts_ms = t;
    if (v->min_t == EVT_NONE || t < v->min_t) v->min_t = t;
    if (v->max_t == EVT_NONE || t > v->max_t) v->max_t = t;
    v->late_lines += late;
    if (!o->size) return 0;
    if (grow(&v->lines, &v->lines_cap, v->nlines + 1, sizeof(*v->lines))) return -1;
    v->lines[v->nlines++] = (evt_line_t){.line = n, .t = t, .partition = partition, .late = late};
    int64_t starts[EVT_MAX_PER_RECORD];
    size_t nw = evt_windows(t, o->size, o->slide, starts);
    for (size_t i = 0; i < len;) { /* words as tally and --truth see them */
        while (i < len && is_space((unsigned char)line[i])) i++;
        if (i == len) break;
        size_t w = i;
        while (i < len && !is_space((unsigned char)line[i])) i++;
        int64_t id = evt_word(v, line + w, (uint32_t)(i - w));
        if (id < 0) return -1;
        for (size_t k = 0; k < nw; k++)
            if (evt_count(v, starts[k], (uint32_t)id)) return -1;
        v->expected += nw;
    }
    return 0;
}

/* The lowest and highest watermark while the current round is read (EVT_NONE: no watermark). */
static void evt_bounds(const gen_evt_t *v, int64_t *lo, int64_t *hi) {
    const gen_evt_opts_t *o = v->o;
    *lo = *hi = EVT_NONE;
    if (o->delay < 0) return;
    *lo = v->max_before == EVT_NONE || v->max_before - o->delay < 0 ? 0 : v->max_before - o->delay;
    *hi = v->max_t == EVT_NONE || v->max_t - o->delay < *lo ? *lo : v->max_t - o->delay;
}

/* The round is over: classify its occurrences and lines against LO and HI. 0, or -1 on a write error. */
static int evt_round_end(gen_evt_t *v) {
    const gen_evt_opts_t *o = v->o;
    if (!o->size || (v->nlines == 0 && v->ntouched == 0)) {
        v->max_before = v->max_t;
        return 0;
    }
    int64_t lo, hi;
    evt_bounds(v, &lo, &hi);
    for (size_t i = 0; i < v->ntouched; i++) {
        evt_pair_t *p = &v->pairs[v->touched[i]];
        int64_t end = p->start + o->size;
        p->all += p->in_round;
        if (lo != EVT_NONE && end <= lo) p->dropped += p->in_round;
        else if (hi != EVT_NONE && end <= hi) p->unsure += p->in_round;
        p->in_round = 0;
    }
    for (size_t i = 0; i < v->nlines; i++) {
        const evt_line_t *l = &v->lines[i];
        int64_t starts[EVT_MAX_PER_RECORD];
        size_t nw = evt_windows(l->t, o->size, o->slide, starts), d = 0, u = 0;
        for (size_t k = 0; k < nw; k++) {
            int64_t end = starts[k] + o->size;
            if (lo != EVT_NONE && end <= lo) d++;
            else if (hi != EVT_NONE && end <= hi) u++;
        }
        v->dropped_lines += nw > 0 && d == nw;
        v->unsure_lines += u > 0;
        if (v->late_fp && (l->late || d || u))
            fprintf(v->late_fp, "%" PRIu64 "\t%" PRId32 "\t%" PRIu64 "\t%" PRId64 "\t%s\t%zu\t%zu\t%zu\n", l->line,
                    l->partition, v->rounds, l->t, l->late ? "late" : "ontime", nw, d, u);
    }
    v->ntouched = v->nlines = 0;
    v->max_before = v->max_t;
    v->rounds++;
    return v->late_fp && ferror(v->late_fp) ? -1 : 0;
}

static const gen_evt_t *evt_sort_ctx; /* qsort has no context argument */

static int evt_pair_cmp(const void *a, const void *b) {
    const evt_pair_t *x = &evt_sort_ctx->pairs[*(const uint32_t *)a], *y = &evt_sort_ctx->pairs[*(const uint32_t *)b];
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    const evt_word_t *wx = &evt_sort_ctx->words[x->word], *wy = &evt_sort_ctx->words[y->word];
    int c = memcmp(evt_sort_ctx->pool + wx->off, evt_sort_ctx->pool + wy->off, wx->len < wy->len ? wx->len : wy->len);
    if (c) return c;
    return (wx->len > wy->len) - (wx->len < wy->len);
}

/* Writes path through path.tmp, renamed into place: the (window, word) lines, all of them (late = false)
 * or those with a dropped or unsure occurrence (late = true). */
static int evt_write_pairs(const gen_evt_t *v, const uint32_t *order, const char *opt, const char *path, bool late,
                           char *errstr, size_t errstr_size) {
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        snprintf(errstr, errstr_size, "%s: path too long", opt);
        return -1;
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        snprintf(errstr, errstr_size, "%s: \"%s\": %s", opt, tmp, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < v->npairs; i++) {
        const evt_pair_t *p = &v->pairs[order[i]];
        if (late && !p->dropped && !p->unsure) continue;
        const evt_word_t *w = &v->words[p->word];
        fprintf(fp, "%" PRId64 "\t%" PRId64 "\t", p->start, p->start + v->o->size);
        fwrite(v->pool + w->off, 1, w->len, fp);
        if (late) fprintf(fp, "\t%" PRIu64 "\t%" PRIu64 "\n", p->dropped, p->unsure);
        else fprintf(fp, "\t%" PRIu64 "\n", p->all);
    }
    bool bad = ferror(fp) != 0;
    if (fclose(fp) != 0) bad = true;
    if (bad || rename(tmp, path) != 0) {
        snprintf(errstr, errstr_size, "%s: \"%s\": %s", opt, bad ? tmp : path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* At the end, every line delivered: checks the table, writes the files, prints the summary line. */
static int evt_finish(gen_evt_t *v, char *errstr, size_t errstr_size) {
    const gen_evt_opts_t *o = v->o;
    if (!o->size) return 0;
    uint64_t all = 0, dropped = 0, unsure = 0;
    for (size_t i = 0; i < v->npairs; i++) {
        all += v->pairs[i].all;
        dropped += v->pairs[i].dropped;
        unsure += v->pairs[i].unsure;
    }
    if (all != v->expected) { /* our own bug, but a wrong truth must never be written */
        snprintf(errstr, errstr_size, "internal error: %" PRIu64 " window occurrences counted, %" PRIu64 " expected",
                 all, v->expected);
        return -1;
    }
    if (v->late_fp) {
        bool bad = ferror(v->late_fp) != 0;
        if (fclose(v->late_fp) != 0) bad = true;
        v->late_fp = NULL;
        if (bad || rename(v->late_tmp, o->late_records) != 0) {
            snprintf(errstr, errstr_size, "--late-records: \"%s\": %s", bad ? v->late_tmp : o->late_records,
                     strerror(errno));
            remove(v->late_tmp);
            return -1;
        }
    }
    uint32_t *order = malloc((v->npairs ? v->npairs : 1) * sizeof(*order));
    if (!order) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < v->npairs; i++) order[i] = (uint32_t)i;
    evt_sort_ctx = v;
    qsort(order, v->npairs, sizeof(*order), evt_pair_cmp);
    int rc = 0;
    if (o->window_truth) rc = evt_write_pairs(v, order, "--window-truth", o->window_truth, false, errstr, errstr_size);
    if (!rc && o->window_late) rc = evt_write_pairs(v, order, "--window-late", o->window_late, true, errstr, errstr_size);
    free(order);
    if (rc) return -1;
    char delay[24] = "none", wm[24] = "none";
    if (o->delay >= 0) {
        snprintf(delay, sizeof(delay), "%" PRId64, o->delay);
        int64_t w = v->max_t == EVT_NONE || v->max_t - o->delay < 0 ? 0 : v->max_t - o->delay;
        snprintf(wm, sizeof(wm), "%" PRId64, w);
    }
    printf("tally-gen windows size_ms=%" PRId64 " slide_ms=%" PRId64 " delay_ms=%s rounds=%" PRIu64
           " late_lines=%" PRIu64 " dropped_lines=%" PRIu64 " unsure_lines=%" PRIu64 " pairs=%zu occurrences=%" PRIu64
           " dropped=%" PRIu64 " unsure=%" PRIu64 " min_event_ms=%" PRId64 " max_event_ms=%" PRId64
           " watermark_final=%s exact=%s\n",
           o->size, o->slide, delay, v->rounds, v->late_lines, v->dropped_lines, v->unsure_lines, v->npairs, all,
           dropped, unsure, v->min_t == EVT_NONE ? 0 : v->min_t, v->max_t == EVT_NONE ? 0 : v->max_t, wm,
           unsure ? "no" : "yes");
    if (unsure)
        tally_warn("the window truth is not exact: %" PRIu64 " occurrences in %" PRIu64 " lines are dropped or not "
                   "depending on where the engine's batches split (see --help: raise --watermark-delay, --late-by, "
                   "or produce in rounds with --pause-every)", unsure, v->unsure_lines);
    return 0;
}

/* Between rounds (`round` just ended, `lines` produced so far): every record delivered (so the round
 * is whole in the log before the pause starts), then --pause-cmd, then --pause-ms, serving delivery
 * reports. Without k (--dry-run) nothing runs or sleeps. 0, or -1 when the command failed. */
static int evt_pause(gen_kafka_t *k, const gen_evt_opts_t *o, uint64_t round, uint64_t lines,
                     volatile sig_atomic_t *stop) {
    if (!k) return 0;
    while (rd_kafka_outq_len(k->rk) > 0 && !k->fatal && !*stop) rd_kafka_flush(k->rk, 100);
    if (o->pause_cmd && !*stop && !k->fatal) {
        char v[24];
        snprintf(v, sizeof(v), "%" PRIu64, round);
        setenv("TALLY_GEN_ROUND", v, 1);
        snprintf(v, sizeof(v), "%" PRIu64, lines);
        setenv("TALLY_GEN_LINES", v, 1);
        fflush(NULL); /* the child shares our stdout */
        int st = system(o->pause_cmd);
        if (st != 0) {
            if (st == -1) tally_err("--pause-cmd: %s", strerror(errno));
            else if (WIFEXITED(st)) tally_err("--pause-cmd exited with status %d after round %" PRIu64, WEXITSTATUS(st), round);
            else tally_err("--pause-cmd ended by a signal after round %" PRIu64, round);
            return -1;
        }
    }
    double end = tally_mono_s() + (double)o->pause_ms / 1000.0;
    for (double t = tally_mono_s(); t < end && !*stop && !k->fatal; t = tally_mono_s()) {
        double left = end - t;
        rd_kafka_poll(k->rk, left > 0.1 ? 100 : (int)(left * 1000.0) + 1);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Main loop                                                                                         */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    if (stop_flag < 2) stop_flag++;
}

typedef struct gen_s {
    const gen_opts_t *o;
    gen_vocab_t vocab;
    gen_alias_t *alias; /* NULL: uniform */
    uint64_t *counts;   /* per vocabulary word */
    gen_file_t file;
    gen_rng_t rng;
    char *line;         /* the line being built */
    uint64_t lines, words, bytes;
} gen_t;

/* Builds one line of Zipf words into g->line; returns its length. Hot path: no allocation, one random
 * number per word, words copied in fixed 16-byte moves when they fit (buffers have GEN_WORD_PAD slack). */
static inline size_t gen_line(gen_t *g) {
    const gen_opts_t *o = g->o;
    uint32_t n = (uint32_t)o->wpl_min;
    if (o->wpl_max != o->wpl_min) n += below32((uint32_t)rng_next(&g->rng), o->wpl_max - o->wpl_min + 1);
    const uint64_t V = g->vocab.n;
    const gen_word_t *words = g->vocab.words;
    const char *pool = g->vocab.pool;
    const gen_alias_t *alias = g->alias;
    uint64_t *counts = g->counts;
    char *p = g->line;
    if (n == 0) return 0;
    if (o->len_max <= GEN_WORD_PAD) {
        for (uint32_t i = 0; i < n; i++) {
            uint64_t r = rng_next(&g->rng);
            uint32_t idx = below32((uint32_t)(r >> 32), V);
            if (alias && (uint32_t)r >= alias[idx].thr) idx = alias[idx].alias;
            counts[idx]++;
            gen_word_t w = words[idx];
            memcpy(p, pool + w.off, GEN_WORD_PAD);
            p += w.len;
            *p++ = ' ';
        }
    } else {
        for (uint32_t i = 0; i < n; i++) {
            uint64_t r = rng_next(&g->rng);
            uint32_t idx = below32((uint32_t)(r >> 32), V);
            if (alias && (uint32_t)r >= alias[idx].thr) idx = alias[idx].alias;
            counts[idx]++;
            gen_word_t w = words[idx];
            memcpy(p, pool + w.off, w.len);
            p += w.len;
            *p++ = ' ';
        }
    }
    g->words += n;
    return (size_t)(p - g->line) - 1;
}

static void progress(const gen_t *g, const gen_kafka_t *k, double t0, double *last_t, uint64_t *last_lines,
                     uint64_t *last_bytes) {
    double t = tally_mono_s();
    if (t - *last_t < GEN_PROGRESS_S) return;
    double dt = t - *last_t;
    if (k)
        tally_info("%" PRIu64 " lines (%.1f s): %.0f lines/s, %.1f MB/s; delivered %" PRIu64 ", failed %" PRIu64
                   ", queued %d",
                   g->lines, t - t0, (double)(g->lines - *last_lines) / dt,
                   (double)(g->bytes - *last_bytes) / dt / 1e6, k->delivered, k->failed, rd_kafka_outq_len(k->rk));
    else
        tally_info("%" PRIu64 " lines (%.1f s): %.0f lines/s, %.1f MB/s", g->lines, t - t0,
                   (double)(g->lines - *last_lines) / dt, (double)(g->bytes - *last_bytes) / dt / 1e6);
    *last_t = t;
    *last_lines = g->lines;
    *last_bytes = g->bytes;
}

int main(int argc, char **argv) {
    gen_opts_t o;
    parse_args(&o, argc, argv);
    uint64_t space = vocab_space(o.len_min, o.len_max);
    if (!o.from_file && o.vocab > space)
        usage_error("--vocab %" PRIu64 ": only %" PRIu64 " distinct words have %" PRIu64 "..%" PRIu64
                    " letters (raise --max-word-len)", o.vocab, space, o.len_min, o.len_max);
    tally_log_set_thread("gen");
    tally_log_set_level(o.quiet ? TALLY_LOG_WARN : TALLY_LOG_INFO);

    char err[8192]; /* holds paths (up to PATH_MAX) in messages */
    int rc = GEN_EXIT_FAIL;
    gen_t g = {.o = &o};
    gen_kafka_t k = {0};
    gen_count_t *truth = NULL;
    gen_dir_t *dir = NULL;
    gen_evt_t evt = {0};
    bool kafka = !o.dry_run && !o.to_dir;

    /* Kafka first: a bad --kafka property or a missing topic fails before any work. */
    if (kafka) {
        int e = kafka_open(&k, &o, err, sizeof(err));
        if (e == -2) usage_error("%s", err);
        if (e) {
            fprintf(stderr, "tally-gen: %s\n", err);
            goto out;
        }
        tally_info("topic %s: %" PRId32 " partitions on %s", o.topic, k.partitions, o.bootstrap);
    }
    if (o.to_dir) {
        if (!(dir = calloc(1, sizeof(*dir)))) {
            fprintf(stderr, "tally-gen: out of memory\n");
            goto out;
        }
        if (dir_open(dir, &o, err, sizeof(err))) {
            fprintf(stderr, "tally-gen: %s\n", err);
            goto out;
        }
        tally_info("%s: %" PRIu32 " files of about %" PRIu64 " lines", o.to_dir, o.files, o.lines / o.files);
    }

    double tb = tally_mono_s();
    if (o.from_file) {
        if (file_load(&g.file, o.from_file, err, sizeof(err))) {
            fprintf(stderr, "tally-gen: %s\n", err);
            goto out;
        }
        tally_info("%s: %zu lines, %zu words, %" PRIu32 " distinct (%.2f s)", o.from_file, g.file.nlines,
                   g.file.ntoks, g.file.nwords, tally_mono_s() - tb);
    } else {
        if (vocab_build(&g.vocab, (uint32_t)o.vocab, (uint32_t)o.len_min, (uint32_t)o.len_max, o.seed, err,
                        sizeof(err))) {
            fprintf(stderr, "tally-gen: %s\n", err);
            goto out;
        }
        g.counts = calloc(g.vocab.n, sizeof(*g.counts));
        g.line = malloc(o.wpl_max * (o.len_max + 1) + GEN_WORD_PAD);
        if (o.zipf > 0) g.alias = alias_build(g.vocab.n, o.zipf);
        if (!g.counts || !g.line || (o.zipf > 0 && !g.alias)) {
            fprintf(stderr, "tally-gen: out of memory\n");
            goto out;
        }
        rng_init(&g.rng, o.seed, 2);
        tally_info("vocabulary: %" PRIu32 " words of %" PRIu64 "..%" PRIu64 " letters, zipf %g (%.2f s)", g.vocab.n,
                   o.len_min, o.len_max, o.zipf, tally_mono_s() - tb);
    }

    if (o.evt.on && evt_init(&evt, &o.evt, o.seed, err, sizeof(err))) {
        fprintf(stderr, "tally-gen: %s\n", err);
        goto out;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    gen_bucket_t bucket = {0};
    if (o.rate > 0) bucket_init(&bucket, o.rate);
    const uint64_t housekeep_mask = o.rate > 0 ? 0 : 1023; /* clock and poll every line when paced */
    double t0 = tally_mono_s(), last_t = t0;
    uint64_t last_lines = 0, last_bytes = 0;
    int32_t partition = 0;
    bool failed = false;
    for (uint64_t n = 0; n < o.lines && !stop_flag; n++) {
        if (o.rate > 0) bucket_take(&bucket, &stop_flag);
        const char *val;
        size_t len;
        if (o.from_file) {
            const gen_fline_t *ln = &g.file.lines[n % g.file.nlines];
            val = g.file.data + ln->off;
            len = ln->len;
            g.words += ln->tok_cnt;
        } else {
            len = gen_line(&g);
            val = g.line;
        }
        int64_t ts_ms = 0;
        if (o.evt.on && evt_next(&evt, n, kafka ? partition : -1, val, len, &ts_ms)) {
            tally_err("out of memory counting windows");
            failed = true;
            break;
        }
        if (kafka) {
            if (produce(&k, val, len, partition, o.stamp, ts_ms, &stop_flag)) {
                failed = true;
                break;
            }
            if (++partition == k.partitions) partition = 0;
        } else if (dir) {
            if (dir_write(dir, val, len, err, sizeof(err))) {
                tally_err("%s", err);
                failed = true;
                break;
            }
        } else {
            if (o.stamp) {
                char ts[24];
                size_t tn = fmt_u64(ts, (uint64_t)now_epoch_us());
                __asm__ __volatile__("" : : "r"(ts), "r"(tn) : "memory");
            }
            __asm__ __volatile__("" : : "r"(val) : "memory"); /* the line counts as used */
        }
        g.lines++;
        g.bytes += len;
        if ((n & housekeep_mask) == 0) {
            if (kafka) {
                rd_kafka_poll(k.rk, 0);
                if (k.fatal) {
                    failed = true;
                    break;
                }
            }
            if (!o.quiet) progress(&g, kafka ? &k : NULL, t0, &last_t, &last_lines, &last_bytes);
        }
        if (o.evt.pause_every && (n + 1) % o.evt.pause_every == 0) { /* a round ends */
            if (o.evt.on && evt_round_end(&evt)) {
                tally_err("--late-records: write error");
                failed = true;
                break;
            }
            if (n + 1 < o.lines && !stop_flag) {
                if (!o.quiet) tally_info("round %" PRIu64 " done (%" PRIu64 " lines); pausing", n / o.evt.pause_every,
                                         n + 1);
                if (evt_pause(kafka ? &k : NULL, &o.evt, n / o.evt.pause_every, n + 1, &stop_flag)) {
                    failed = true;
                    break;
                }
                if (o.rate > 0) bucket_init(&bucket, o.rate);
            }
        }
    }
    if (o.evt.on && !failed && evt_round_end(&evt)) { /* the last round, when not a whole one */
        tally_err("--late-records: write error");
        failed = true;
    }

    if (kafka) {
        /* Wait for every delivery report: the truth holds only for delivered records. */
        while (rd_kafka_outq_len(k.rk) > 0 && !k.fatal && stop_flag < 2) {
            rd_kafka_flush(k.rk, 200);
            if (!o.quiet) progress(&g, &k, t0, &last_t, &last_lines, &last_bytes);
        }
        if (rd_kafka_outq_len(k.rk) > 0) {
            tally_err("%d records not delivered (%s)", rd_kafka_outq_len(k.rk),
                      k.fatal ? "fatal producer error" : "interrupted twice");
            rd_kafka_purge(k.rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            rd_kafka_poll(k.rk, 0);
            failed = true;
        }
        if (k.failed || k.fatal || k.delivered != g.lines) {
            tally_err("%" PRIu64 " of %" PRIu64 " records failed%s%s", g.lines - k.delivered, g.lines,
                      k.failed ? ", first: " : "", k.first_err);
            failed = true;
        }
    }
    if (dir && !failed && dir_finish(dir, stop_flag != 0, err, sizeof(err))) {
        tally_err("%s", err);
        failed = true;
    }
    double secs = tally_mono_s() - t0;
    if (failed) {
        if (o.truth)
            fprintf(stderr, "tally-gen: not writing --truth: %s\n",
                    dir ? "a file could not be written" : "some records were not delivered");
        goto out;
    }

    /* The counts of what was produced, and the distinct words among them. */
    uint64_t distinct = 0, total = 0;
    size_t nentries = o.from_file ? g.file.nwords : g.vocab.n;
    if (o.truth && !(truth = malloc((nentries ? nentries : 1) * sizeof(*truth)))) {
        fprintf(stderr, "tally-gen: out of memory\n");
        goto out;
    }
    if (o.from_file) {
        uint64_t *counts = calloc(g.file.nwords ? g.file.nwords : 1, sizeof(*counts));
        if (!counts) {
            fprintf(stderr, "tally-gen: out of memory\n");
            goto out;
        }
        /* Lines were produced in cycle order: line j went out `full` times, once more if j < rem. */
        uint64_t full = g.lines / g.file.nlines, rem = g.lines % g.file.nlines;
        for (size_t j = 0; j < g.file.nlines; j++) {
            uint64_t times = full + (j < rem);
            const gen_fline_t *ln = &g.file.lines[j];
            for (uint32_t t = 0; t < ln->tok_cnt; t++) counts[g.file.toks[ln->tok_first + t]] += times;
        }
        for (uint32_t i = 0; i < g.file.nwords; i++) {
            if (!counts[i]) continue;
            if (truth)
                truth[distinct] = (gen_count_t){.word = g.file.data + g.file.words[i].off,
                                                .len = g.file.words[i].len, .count = counts[i]};
            distinct++;
            total += counts[i];
        }
        free(counts);
    } else {
        for (uint32_t i = 0; i < g.vocab.n; i++) {
            if (!g.counts[i]) continue;
            if (truth)
                truth[distinct] = (gen_count_t){.word = g.vocab.pool + g.vocab.words[i].off,
                                                .len = g.vocab.words[i].len, .count = g.counts[i]};
            distinct++;
            total += g.counts[i];
        }
    }
    if (total != g.words) { /* our own bug, but a wrong truth must never be written */
        fprintf(stderr, "tally-gen: internal error: counted %" PRIu64 " words, produced %" PRIu64 "\n", total, g.words);
        goto out;
    }
    if (o.truth) {
        if (truth_write(o.truth, truth, (size_t)distinct, err, sizeof(err))) {
            fprintf(stderr, "tally-gen: %s\n", err);
            goto out;
        }
        tally_info("truth: %" PRIu64 " words, %" PRIu64 " occurrences in %s", distinct, total, o.truth);
    }

    printf("tally-gen lines=%" PRIu64 " words=%" PRIu64 " bytes=%" PRIu64 " seconds=%.3f lines_per_s=%.0f "
           "mb_per_s=%.2f distinct=%" PRIu64,
           g.lines, g.words, g.bytes, secs, secs > 0 ? (double)g.lines / secs : 0.0,
           secs > 0 ? (double)g.bytes / secs / 1e6 : 0.0, distinct);
    if (dir) printf(" files=%" PRIu32, dir->renamed);
    putchar('\n');
    if (o.evt.on && evt_finish(&evt, err, sizeof(err))) {
        fprintf(stderr, "tally-gen: %s\n", err);
        goto out;
    }
    fflush(stdout);
    rc = stop_flag ? GEN_EXIT_INTERRUPTED : 0;
    if (stop_flag) tally_warn("interrupted after %" PRIu64 " of %" PRIu64 " lines", g.lines, o.lines);
out:
    if (dir) dir_abandon(dir);
    free(dir);
    kafka_close(&k);
    evt_term(&evt);
    free(truth);
    free(g.alias);
    free(g.counts);
    free(g.line);
    vocab_term(&g.vocab);
    file_term(&g.file);
    free(o.kafka);
    return rc;
}
