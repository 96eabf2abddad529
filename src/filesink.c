/* SPDX-License-Identifier: MIT */
/* The file sink: part files and Spark's file sink log (see include/tally/filesink.h). */
#include "tally/filesink.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tally/buf.h"
#include "tally/crashpoint.h"
#include "tally/err.h"
#include "tally/json.h"
#include "tally/log.h"
#include "tally/parquet.h"
#include "tally/window.h"

#define LOG_DIR "_spark_metadata"
#define TALLY_DIR "_tally"
/* Spark's default spark.sql.streaming.fileSink.log.compactInterval: its reader expects a
 * "<id>.compact" file, listing every live file, at each batch id with (id + 1) % 10 == 0. */
#define COMPACT_INTERVAL 10
#define TALLY_MAGIC "tally-files v1"
/* Why a windowed row cannot be written (split_row refused its key). */
#define WINDOW_KEY_WHY "a row's key is not a (window start, word) key, or its window ends past the int64 milliseconds"

typedef struct {
    char *topic;
    int32_t partition;
    int64_t offset;
} offset_t;

struct tally_filesink_s {
    const tally_config_t *conf;
    char *dir;                 /* absolute output.path */
    int64_t batch;             /* last committed batch, -1: none */
    uint64_t epoch;            /* its epoch */
    offset_t *offsets;
    int noffsets;
    char **files;              /* every committed part file (absolute paths), for the .compact entries */
    size_t nfiles, capfiles;
    int lock_fd;               /* flock on _tally/lock: one writer per output.path */
};

static int fail(char *errstr, size_t n, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *errstr, size_t n, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, n, fmt, ap);
    va_end(ap);
    return code;
}

static char *path_join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p) return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

/* mkdir -p */
static int make_dirs(const char *path) {
    char *p = strdup(path);
    if (!p) return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int r = mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return r;
}

static int fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

static int add_file(tally_filesink_t *fs, const char *path) {
    if (fs->nfiles == fs->capfiles) {
        size_t cap = fs->capfiles ? 2 * fs->capfiles : 64;
        char **f = realloc(fs->files, cap * sizeof(char *));
        if (!f) return -1;
        fs->files = f;
        fs->capfiles = cap;
    }
    if (!(fs->files[fs->nfiles] = strdup(path))) return -1;
    fs->nfiles++;
    return 0;
}

static bool has_file(const tally_filesink_t *fs, const char *path) {
    for (size_t i = fs->nfiles; i-- > 0;)
        if (strcmp(fs->files[i], path) == 0) return true;
    return false;
}

/* "123" or "123.compact" -> 123; -1 for any other name. */
static int64_t batch_of(const char *name, bool *compact) {
    char *end;
    *compact = false;
    if (name[0] < '0' || name[0] > '9') return -1;
    errno = 0;
    unsigned long long v = strtoull(name, &end, 10);
    if (errno || v > INT64_MAX) return -1;
    *compact = strcmp(end, ".compact") == 0;
    return *end == '\0' || *compact ? (int64_t)v : -1;
}

/* A whole small file as a NUL-terminated string (freed by the caller), or NULL with errno set. */
static char *read_text(const char *path) {
    tally_buf_t b;
    tally_buf_init(&b);
    int err = tally_buf_read_file(&b, path);
    if (err) {
        tally_buf_term(&b);
        errno = err;
        return NULL;
    }
    return b.data;
}

/* Adds the "path" of each entry of one log file ("v1" then JSON lines) to fs->files. */
static int load_log_file(tally_filesink_t *fs, const char *path, char *errstr, size_t n) {
    char *text = read_text(path);
    if (!text) return fail(errstr, n, TALLY_EIO, "cannot read %s: %s", path, strerror(errno));
    int r = 0;
    if (strncmp(text, "v1\n", 3) != 0 && strcmp(text, "v1") != 0)
        r = fail(errstr, n, TALLY_EIO, "%s is not a Spark file sink log entry (no \"v1\" first line)", path);
    for (char *line = text, *next; !r && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        char *p = strstr(line, "\"path\":\"");
        if (!p) continue;
        p += 8;
        /* Unescape the JSON string in place: tally writes \" and \\ only (no control characters). */
        char *start = p, *o = p;
        for (; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1]) p++;
            *o++ = *p;
        }
        *o = '\0';
        const char *file = strncmp(start, "file://", 7) == 0 ? start + 7 : start;
        if (add_file(fs, file)) r = fail(errstr, n, TALLY_ENOMEM, "out of memory");
    }
    free(text);
    return r;
}

/* _tally/<batch>: the epoch and the input offsets of a committed batch. */
static int load_tally_entry(tally_filesink_t *fs, const char *path, char *errstr, size_t n) {
    char *text = read_text(path);
    if (!text)
        return fail(errstr, n, TALLY_EIO, "cannot read %s (%s): output.path holds a Spark file sink log that tally "
                    "did not write, or its _tally directory was removed; use an empty output.path", path,
                    strerror(errno));
    int r = strncmp(text, TALLY_MAGIC "\n", sizeof(TALLY_MAGIC)) == 0
                ? 0 : fail(errstr, n, TALLY_EIO, "%s: not a tally batch entry", path);
    for (char *line = text, *next; !r && line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        unsigned long long ep;
        int part;
        long long off;
        char topic[256];
        int at = 0;
        const char *name = topic;
        if (sscanf(line, "epoch %llu", &ep) == 1) fs->epoch = ep;
        else if (sscanf(line, "offset %d %lld %255s", &part, &off, topic) == 3 ||
                 (sscanf(line, "file %lld %n", &off, &at) == 1 && at > 0 && (name = line + at, part = TALLY_FILESINK_FILE))) {
            offset_t *o = realloc(fs->offsets, (size_t)(fs->noffsets + 1) * sizeof(*o));
            if (!o || !(o[fs->noffsets].topic = strdup(name))) {
                if (o) fs->offsets = o;
                r = fail(errstr, n, TALLY_ENOMEM, "out of memory");
                break;
            }
            fs->offsets = o;
            o[fs->noffsets].partition = part;
            o[fs->noffsets].offset = off;
            fs->noffsets++;
        }
    }
    free(text);
    return r;
}

/* Removes temporary files, and entries of batches past the last committed one. */
static void remove_uncommitted(tally_filesink_t *fs, const char *sub) {
    char *dir = sub ? path_join(fs->dir, sub) : strdup(fs->dir);
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        bool compact, tmp = len > 4 && strcmp(name + len - 4, ".tmp") == 0;
        int64_t b = sub ? batch_of(name, &compact) : -1;
        char *path = path_join(dir, name);
        if (!path) break;
        bool part = !sub && strncmp(name, "part-", 5) == 0 && !has_file(fs, path);
        if (tmp || part || (sub && b > fs->batch)) {
            if (unlink(path) == 0)
                tally_info("removed %s: written by an epoch that never committed", path);
            else
                tally_warn("cannot remove %s, which no commit names: %s", path, strerror(errno));
        }
        free(path);
    }
    if (d) closedir(d);
    free(dir);
}

int tally_filesink_open(const tally_config_t *conf, tally_filesink_t **out, char *errstr, size_t n) {
    *out = NULL;
    tally_filesink_t *fs = calloc(1, sizeof(*fs));
    if (!fs) return fail(errstr, n, TALLY_ENOMEM, "out of memory");
    fs->conf = conf;
    fs->batch = -1;
    fs->lock_fd = -1;
    char *log = NULL, *tdir = NULL;
    int r = 0;
    if (make_dirs(conf->output_path) != 0) {
        r = fail(errstr, n, TALLY_EIO, "output.path %s: cannot create it: %s", conf->output_path, strerror(errno));
        goto out;
    }
    char abs[PATH_MAX];
    if (!realpath(conf->output_path, abs) || !(fs->dir = strdup(abs))) {
        r = fail(errstr, n, TALLY_EIO, "output.path %s: %s", conf->output_path, strerror(errno));
        goto out;
    }
    log = path_join(fs->dir, LOG_DIR);
    tdir = path_join(fs->dir, TALLY_DIR);
    if (!log || !tdir || make_dirs(log) != 0 || make_dirs(tdir) != 0 || access(fs->dir, W_OK) != 0) {
        r = fail(errstr, n, TALLY_EIO, "output.path %s: cannot write there: %s", fs->dir, strerror(errno));
        goto out;
    }
    char *lock = path_join(tdir, "lock");
    fs->lock_fd = lock ? open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644) : -1;
    free(lock);
    if (fs->lock_fd < 0 || flock(fs->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        r = fail(errstr, n, TALLY_EIO, "output.path %s: %s", fs->dir, errno == EWOULDBLOCK
                 ? "another tally process writes there (its _tally/lock is held)" : strerror(errno));
        goto out;
    }
    /* The last batch, and the last compaction at or before it. */
    int64_t last_compact = -1;
    DIR *d = opendir(log);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        bool compact;
        int64_t b = batch_of(de->d_name, &compact);
        if (b > fs->batch) fs->batch = b;
        if (compact && b > last_compact) last_compact = b;
    }
    if (d) closedir(d);
    for (int64_t b = last_compact < 0 ? 0 : last_compact; !r && b <= fs->batch; b++) {
        char name[64];
        snprintf(name, sizeof(name), "%" PRId64 "%s", b, b == last_compact ? ".compact" : "");
        char *p = path_join(log, name);
        r = p ? load_log_file(fs, p, errstr, n) : fail(errstr, n, TALLY_ENOMEM, "out of memory");
        free(p);
    }
    if (!r && fs->batch >= 0) {
        char name[32];
        snprintf(name, sizeof(name), "%" PRId64, fs->batch);
        char *p = path_join(tdir, name);
        r = p ? load_tally_entry(fs, p, errstr, n) : fail(errstr, n, TALLY_ENOMEM, "out of memory");
        free(p);
    }
    if (!r) {
        remove_uncommitted(fs, NULL);
        remove_uncommitted(fs, LOG_DIR);
        remove_uncommitted(fs, TALLY_DIR);
        if (fs->batch >= 0)
            tally_info("output.path %s: %zu committed part file(s), last batch %" PRId64 " (epoch %" PRIu64 ")", fs->dir,
                       fs->nfiles, fs->batch, fs->epoch);
        else
            tally_info("output.path %s: no committed batch yet", fs->dir);
    }
out:
    free(log);
    free(tdir);
    if (r) tally_filesink_close(fs);
    else *out = fs;
    return r;
}

void tally_filesink_close(tally_filesink_t *fs) {
    if (!fs) return;
    for (int i = 0; i < fs->noffsets; i++) free(fs->offsets[i].topic);
    free(fs->offsets);
    for (size_t i = 0; i < fs->nfiles; i++) free(fs->files[i]);
    free(fs->files);
    free(fs->dir);
    if (fs->lock_fd >= 0) close(fs->lock_fd);
    free(fs);
}

uint64_t tally_filesink_epoch(const tally_filesink_t *fs) { return fs->epoch; }

int tally_filesink_noffsets(const tally_filesink_t *fs) { return fs->noffsets; }

tally_filesink_offset_t tally_filesink_offset_at(const tally_filesink_t *fs, int i) {
    return (tally_filesink_offset_t){.topic = fs->offsets[i].topic, .partition = fs->offsets[i].partition,
                                     .offset = fs->offsets[i].offset};
}

int64_t tally_filesink_offset(const tally_filesink_t *fs, const char *topic, int32_t partition) {
    for (int i = 0; i < fs->noffsets; i++)
        if (fs->offsets[i].partition == partition && strcmp(fs->offsets[i].topic, topic) == 0)
            return fs->offsets[i].offset;
    return -1;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* 0 or errno. */
static int write_all(int fd, const char *buf, size_t len) {
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno;
        off += (size_t)w;
    }
    return 0;
}

/* ---- the columns of a part file ---------------------------------------------------------- */

/* With window.size.ms > 0 every row the engine hands over is a (window start, word) key
 * (tally_window_key); the window's end is start + window.size.ms. */
static bool windowed(const tally_config_t *c) { return c->window_size_ms > 0; }

/* The epoch column: in update and complete mode a word (or window) has a row in many part files,
 * and the one with the highest epoch is its current count. Append writes each window's final count
 * once, so a row needs no epoch to be read, and Spark's file sink (append only) writes none. */
static bool epoch_column(const tally_config_t *c) { return c->output_mode != TALLY_OUTPUT_APPEND; }

/* The columns in file order (CSV header, Parquet schema, and the order of the JSON fields):
 * [window_start, window_end,] word, count[, epoch]. Returns how many (at most 5). */
static int part_columns(const tally_config_t *c, tally_pq_column_t cols[5]) {
    int n = 0;
    if (windowed(c)) {
        cols[n++] = (tally_pq_column_t){"window_start", TALLY_PQ_TIMESTAMP_MILLIS};
        cols[n++] = (tally_pq_column_t){"window_end", TALLY_PQ_TIMESTAMP_MILLIS};
    }
    cols[n++] = (tally_pq_column_t){"word", TALLY_PQ_STRING};
    cols[n++] = (tally_pq_column_t){"count", TALLY_PQ_INT64};
    if (epoch_column(c)) cols[n++] = (tally_pq_column_t){"epoch", TALLY_PQ_INT64};
    return n;
}

/* One row as the sink writes it: the word without its window prefix, and the window. */
typedef struct {
    const uint8_t *word;
    size_t len;
    int64_t start, end; /* windowed rows only */
} row_t;

/* Splits a windowed key: false for a key shorter than the window prefix or a window whose end is
 * past int64 (the engine assigns no such window; WINDOW_KEY_WHY says so). */
static bool split_row(const tally_config_t *c, const uint8_t *key, size_t klen, row_t *r) {
    r->word = key;
    r->len = klen;
    if (!windowed(c)) return true;
    return tally_window_key_decode(key, klen, &r->start, &r->word, &r->len) == 0 &&
           !__builtin_add_overflow(r->start, c->window_size_ms, &r->end);
}

/* A text part file: rows gathered in a buffer that goes out through the descriptor (so that it
 * can be fsynced) each time it passes FLUSH_BYTES. */
#define FLUSH_BYTES (1u << 20)
typedef struct {
    const tally_config_t *conf;
    int fd;
    int err;            /* first errno */
    bool bad_key;       /* err is EINVAL for a key split_row refused */
    tally_buf_t buf, word;
    char *rec;          /* scratch for a windowed JSON record */
    size_t rec_cap;
    uint64_t epoch;
    size_t rows;
} text_out_t;

static void text_flush(text_out_t *o) {
    if (!o->err && !tally_buf_ok(&o->buf)) o->err = ENOMEM;
    if (!o->err) o->err = write_all(o->fd, o->buf.data ? o->buf.data : "", o->buf.len);
    tally_buf_reset(&o->buf);
}

/* CSV, RFC 4180: a field holding a comma, quote, CR or LF is quoted, its quotes doubled. By
 * length: a word may hold NUL bytes. */
static void csv_word(text_out_t *o, const uint8_t *word, size_t len) {
    tally_buf_reset(&o->word);
    tally_buf_utf8(&o->word, word, len);
    const char *w = o->word.data ? o->word.data : "";
    size_t wl = o->word.len;
    bool quote = false;
    for (size_t i = 0; i < wl && !quote; i++) quote = w[i] == ',' || w[i] == '"' || w[i] == '\r' || w[i] == '\n';
    if (!quote) {
        tally_buf_append(&o->buf, w, wl);
    } else {
        tally_buf_puts(&o->buf, "\"");
        for (size_t i = 0; i < wl; i++) {
            if (w[i] == '"') tally_buf_puts(&o->buf, "\"");
            tally_buf_append(&o->buf, &w[i], 1);
        }
        tally_buf_puts(&o->buf, "\"");
    }
    if (!tally_buf_ok(&o->word)) o->err = ENOMEM;
}

/* A timestamp as Spark's CSV writer prints it with a UTC session time zone: its default
 * timestampFormat (yyyy-MM-dd'T'HH:mm:ss[.SSS][XXX], .SSSXXX under the legacy parser) prints
 * "2026-12-02T13:00:00.000Z", the text of its JSON writer. Never quoted: no comma or quote. */
static void csv_time(text_out_t *o, int64_t ms) {
    char t[TALLY_JSON_TIME_MAX];
    tally_buf_append(&o->buf, t, tally_json_timestamp(t, ms));
}

/* The windowed JSON line: Spark's to_json(struct(window, word, count)) (the Kafka sink's value),
 * with ,"epoch":N before its closing brace when there is an epoch column, as for plain rows. */
static void json_window(text_out_t *o, const row_t *r, int64_t count) {
    if (r->len > (SIZE_MAX - 160) / 6) {
        o->err = ENOMEM;
        return;
    }
    size_t need = TALLY_JSON_WINDOW_MAX(r->len);
    if (need > o->rec_cap) {
        char *p = realloc(o->rec, need);
        if (!p) {
            o->err = ENOMEM;
            return;
        }
        o->rec = p;
        o->rec_cap = need;
    }
    size_t n = tally_json_window_word_count(o->rec, r->start, r->end, r->word, r->len, count);
    if (epoch_column(o->conf)) {
        tally_buf_append(&o->buf, o->rec, n - 1); /* without its '}' */
        tally_buf_printf(&o->buf, ",\"epoch\":%" PRIu64 "}", o->epoch);
    } else {
        tally_buf_append(&o->buf, o->rec, n);
    }
    tally_buf_puts(&o->buf, "\n");
}

static void row_text(const uint8_t *key, size_t klen, int64_t count, void *opaque) {
    text_out_t *o = opaque;
    if (o->err) return;
    row_t r;
    if (!split_row(o->conf, key, klen, &r)) {
        o->err = EINVAL;
        o->bad_key = true;
        return;
    }
    o->rows++;
    bool epoch = epoch_column(o->conf);
    if (o->conf->output_format == TALLY_FORMAT_JSONL) {
        if (windowed(o->conf)) {
            json_window(o, &r, count);
        } else {
            tally_buf_puts(&o->buf, "{\"word\":");
            tally_buf_json_str(&o->buf, r.word, r.len);
            tally_buf_printf(&o->buf, ",\"count\":%" PRId64, count);
            if (epoch) tally_buf_printf(&o->buf, ",\"epoch\":%" PRIu64, o->epoch);
            tally_buf_puts(&o->buf, "}\n");
        }
    } else {
        if (windowed(o->conf)) {
            csv_time(o, r.start);
            tally_buf_puts(&o->buf, ",");
            csv_time(o, r.end);
            tally_buf_puts(&o->buf, ",");
        }
        csv_word(o, r.word, r.len);
        tally_buf_printf(&o->buf, ",%" PRId64, count);
        if (epoch) tally_buf_printf(&o->buf, ",%" PRIu64, o->epoch);
        tally_buf_puts(&o->buf, "\r\n");
    }
    if (o->buf.len >= FLUSH_BYTES) text_flush(o);
}

/* Parquet rows: the writer holds the whole part file until it writes it. */
typedef struct {
    const tally_config_t *conf;
    tally_pq_writer_t *w;
    uint64_t epoch;
    size_t rows;
    int err;
    bool bad_key;
    tally_buf_t word;
} pq_rows_t;

static void row_parquet(const uint8_t *key, size_t klen, int64_t count, void *opaque) {
    pq_rows_t *pr = opaque;
    if (pr->err) return;
    row_t r;
    if (!split_row(pr->conf, key, klen, &r)) {
        pr->err = EINVAL;
        pr->bad_key = true;
        return;
    }
    /* Column numbers as part_columns lays them out. */
    int col = 0;
    if (windowed(pr->conf) &&
        (tally_pq_add_int64(pr->w, col++, r.start) || tally_pq_add_int64(pr->w, col++, r.end))) {
        pr->err = errno ? errno : EINVAL;
        return;
    }
    /* STRING columns hold UTF-8: the rule of the JSON output. */
    tally_buf_reset(&pr->word);
    tally_buf_utf8(&pr->word, r.word, r.len);
    if (!tally_buf_ok(&pr->word)) pr->err = ENOMEM;
    else if (tally_pq_add_string(pr->w, col, (const uint8_t *)(pr->word.data ? pr->word.data : ""), (uint32_t)pr->word.len) ||
             tally_pq_add_int64(pr->w, col + 1, count) ||
             (epoch_column(pr->conf) && tally_pq_add_int64(pr->w, col + 2, (int64_t)pr->epoch)))
        pr->err = errno ? errno : EINVAL;
    pr->rows++;
}

static int write_parquet(const tally_config_t *c, int fd, uint64_t epoch, tally_filesink_rows_fn rows,
                         void *rows_opaque, size_t *nrows, char *errstr, size_t n) {
    tally_pq_column_t cols[5];
    int ncols = part_columns(c, cols);
    tally_pq_codec_t codec = c->parquet_codec == TALLY_PARQUET_ZSTD   ? TALLY_PQ_ZSTD
                             : c->parquet_codec == TALLY_PARQUET_NONE ? TALLY_PQ_NONE
                                                                      : TALLY_PQ_SNAPPY;
    pq_rows_t pr = {.conf = c, .epoch = epoch};
    tally_buf_init(&pr.word);
    if (!(pr.w = tally_pq_writer_new(cols, ncols, codec, errstr, n))) return -1;
    rows(rows_opaque, row_parquet, &pr);
    *nrows = pr.rows;
    int r = 0;
    if (pr.err) {
        snprintf(errstr, n, "%s", pr.bad_key ? WINDOW_KEY_WHY : strerror(pr.err));
        r = -1;
    } else {
        r = tally_pq_write(pr.w, fd, errstr, n);
    }
    tally_pq_writer_free(pr.w);
    tally_buf_term(&pr.word);
    return r;
}

static const char *extension(tally_output_format_t f) {
    return f == TALLY_FORMAT_CSV ? "csv" : f == TALLY_FORMAT_PARQUET ? "parquet" : "jsonl";
}

/* Writes text to path through a temporary file, fsynced, then renamed into place. */
static int write_file_atomic(const char *path, const char *text, size_t len, char *errstr, size_t n) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return fail(errstr, n, TALLY_EIO, "cannot create %s: %s", tmp, strerror(errno));
    int err = write_all(fd, text, len);
    if (!err && fsync(fd) != 0) err = errno;
    if (close(fd) != 0 && !err) err = errno;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) {
        unlink(tmp);
        return fail(errstr, n, TALLY_EIO, "cannot write %s: %s", path, strerror(err));
    }
    return 0;
}

/* One entry of Spark's log: the file's URI (tally's paths hold no control characters:
 * check_output_path), size and modification time. */
static int append_entry(tally_buf_t *b, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    tally_buf_puts(b, "\n{\"path\":\"file://");
    for (const char *p = path; *p; p++) {
        if (*p == '"' || *p == '\\') tally_buf_puts(b, "\\");
        tally_buf_append(b, p, 1);
    }
    tally_buf_printf(b, "\",\"size\":%lld,\"isDir\":false,\"modificationTime\":%lld,\"blockReplication\":1,"
                     "\"blockSize\":33554432,\"action\":\"add\"}", (long long)st.st_size,
                     (long long)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000);
    return 0;
}

/* Writes the buffer to dir/name through a temporary file (write_file_atomic). */
static int write_entry(tally_filesink_t *fs, const char *name, const tally_buf_t *b, char *errstr, size_t n) {
    if (!tally_buf_ok(b)) return fail(errstr, n, TALLY_ENOMEM, "out of memory");
    char *path = path_join(fs->dir, name);
    int r = path ? write_file_atomic(path, b->data, b->len, errstr, n) : fail(errstr, n, TALLY_ENOMEM, "out of memory");
    free(path);
    return r;
}

/* The part file: rows into a temporary file, fsynced, renamed. Its path is in `path`. */
static int write_part(tally_filesink_t *fs, int64_t batch, uint64_t epoch, tally_filesink_rows_fn rows,
                      void *rows_opaque, char *path, size_t path_size, size_t *nrows, char *errstr, size_t n) {
    const tally_config_t *c = fs->conf;
    snprintf(path, path_size, "%s/part-%05" PRId64 "-e%" PRIu64 ".%s", fs->dir, batch, epoch, extension(c->output_format));
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return fail(errstr, n, TALLY_EIO, "cannot create %s: %s", tmp, strerror(errno));
    text_out_t o = {.conf = c, .fd = fd, .epoch = epoch};
    tally_buf_init(&o.buf);
    tally_buf_init(&o.word);
    if (c->output_format == TALLY_FORMAT_PARQUET) {
        char why[512];
        if (write_parquet(c, fd, epoch, rows, rows_opaque, nrows, why, sizeof(why))) {
            close(fd);
            unlink(tmp);
            return fail(errstr, n, TALLY_EIO, "cannot write %s: %s", path, why);
        }
    } else {
        if (c->output_format == TALLY_FORMAT_CSV) { /* the header row */
            tally_pq_column_t cols[5];
            int ncols = part_columns(c, cols);
            for (int i = 0; i < ncols; i++) tally_buf_printf(&o.buf, "%s%s", i ? "," : "", cols[i].name);
            tally_buf_puts(&o.buf, "\r\n");
        }
        rows(rows_opaque, row_text, &o);
        text_flush(&o);
        *nrows = o.rows;
    }
    if (!o.err && fsync(fd) != 0) o.err = errno;
    if (close(fd) != 0 && !o.err) o.err = errno;
    if (!o.err && rename(tmp, path) != 0) o.err = errno;
    tally_buf_term(&o.buf);
    tally_buf_term(&o.word);
    free(o.rec);
    if (o.err) {
        unlink(tmp);
        return fail(errstr, n, TALLY_EIO, "cannot write %s: %s", path,
                    o.bad_key ? WINDOW_KEY_WHY : strerror(o.err));
    }
    return 0;
}

int tally_filesink_commit(tally_filesink_t *fs, uint64_t epoch, tally_filesink_rows_fn rows, void *rows_opaque,
                          const tally_filesink_offset_t *offsets, int noffsets, char *errstr, size_t n) {
    int64_t batch = fs->batch + 1;
    char part[PATH_MAX], name[64];
    size_t nrows = 0;
    int r = write_part(fs, batch, epoch, rows, rows_opaque, part, sizeof(part), &nrows, errstr, n);
    if (r) return r;

    /* _tally/<batch>: epoch and offsets. */
    tally_buf_t b;
    tally_buf_init(&b);
    tally_buf_printf(&b, TALLY_MAGIC "\nepoch %" PRIu64 "\n", epoch);
    for (int i = 0; i < noffsets; i++)
        if (offsets[i].partition == TALLY_FILESINK_FILE)
            tally_buf_printf(&b, "file %" PRId64 " %s\n", offsets[i].offset, offsets[i].topic);
        else
            tally_buf_printf(&b, "offset %d %" PRId64 " %s\n", (int)offsets[i].partition, offsets[i].offset, offsets[i].topic);
    snprintf(name, sizeof(name), TALLY_DIR "/%" PRId64, batch);
    r = write_entry(fs, name, &b, errstr, n);

    /* The commit point: _spark_metadata/<batch>, or <batch>.compact listing every live file. */
    bool compact = (batch + 1) % COMPACT_INTERVAL == 0;
    tally_buf_reset(&b);
    tally_buf_puts(&b, "v1");
    for (size_t i = 0; !r && compact && i < fs->nfiles; i++)
        if (append_entry(&b, fs->files[i]))
            r = fail(errstr, n, TALLY_EIO, "cannot list %s in batch %" PRId64 ": %s", fs->files[i], batch, strerror(errno));
    if (!r && append_entry(&b, part))
        r = fail(errstr, n, TALLY_EIO, "cannot list %s in batch %" PRId64 ": %s", part, batch, strerror(errno));
    tally_buf_puts(&b, "\n");
    if (!r) {
        tally_crashpoint("files_before_commit", epoch);
        snprintf(name, sizeof(name), LOG_DIR "/%" PRId64 "%s", batch, compact ? ".compact" : "");
        r = write_entry(fs, name, &b, errstr, n);
    }
    tally_buf_term(&b);
    if (r) return r;
    char *log = path_join(fs->dir, LOG_DIR), *tdir = path_join(fs->dir, TALLY_DIR);
    if (!log || !tdir || fsync_dir(fs->dir) || fsync_dir(tdir) || fsync_dir(log))
        tally_warn("cannot fsync the directories of %s: %s", fs->dir, strerror(errno));
    free(log);
    free(tdir);

    /* Committed: the in-memory view follows. */
    fs->batch = batch;
    fs->epoch = epoch;
    if (add_file(fs, part)) return fail(errstr, n, TALLY_ENOMEM, "out of memory");
    for (int i = 0; i < fs->noffsets; i++) free(fs->offsets[i].topic);
    free(fs->offsets);
    fs->offsets = calloc((size_t)noffsets + 1, sizeof(offset_t));
    fs->noffsets = 0;
    for (int i = 0; fs->offsets && i < noffsets; i++) {
        fs->offsets[i] = (offset_t){.topic = strdup(offsets[i].topic), .partition = offsets[i].partition,
                                    .offset = offsets[i].offset};
        fs->noffsets++;
    }
    tally_debug("batch %" PRId64 " committed: %s, %zu rows", batch, part, nrows);
    return 0;
}
