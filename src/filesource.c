/* SPDX-License-Identifier: MIT */
/* The directory source: listing, planning, reading and cleaning input files (see filesource.h). */
#include "tally/filesource.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include "tally/err.h"
#include "tally/log.h"
#include "tally/tokenize.h"

#define READ_BUF (256u * 1024u)
#define SNIFF_BYTES 8192

static const char *const status_names[] = {"read", "binary", "vanished", "unreadable", "truncated"};

/* ---- what is known of a path: read (with its record) or only warned about ---- */

typedef struct known_s {
    struct known_s *next;
    int64_t size, mtime_ns;
    uint64_t dev, ino, epoch;
    int status;
    bool read;           /* recorded as read (else: only a warning was given) */
    bool warned;         /* the one warning about it (changed, unreadable) was given */
    bool cleaned;
    char path[];
} known_t;

typedef struct {
    known_t **slot;
    size_t cap, n;
} known_set_t;

static known_t *known_find(const known_set_t *s, const char *path) {
    if (!s->cap) return NULL;
    for (known_t *k = s->slot[XXH3_64bits(path, strlen(path)) & (s->cap - 1)]; k; k = k->next)
        if (strcmp(k->path, path) == 0) return k;
    return NULL;
}

static known_t *known_get(known_set_t *s, const char *path) {
    known_t *k = known_find(s, path);
    if (k) return k;
    if (s->n >= s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        known_t **slot = calloc(cap, sizeof(*slot));
        if (!slot) return NULL;
        for (size_t i = 0; i < s->cap; i++)
            for (known_t *e = s->slot[i], *next; e; e = next) {
                next = e->next;
                size_t h = XXH3_64bits(e->path, strlen(e->path)) & (cap - 1);
                e->next = slot[h];
                slot[h] = e;
            }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    size_t len = strlen(path);
    if (!(k = calloc(1, sizeof(*k) + len + 1))) return NULL;
    memcpy(k->path, path, len + 1);
    size_t h = XXH3_64bits(path, len) & (s->cap - 1);
    k->next = s->slot[h];
    s->slot[h] = k;
    s->n++;
    return k;
}

static void known_free(known_set_t *s) {
    for (size_t i = 0; i < s->cap; i++)
        for (known_t *e = s->slot[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(s->slot);
}

struct tally_filesource_s {
    const tally_config_t *conf;
    bool glob;                    /* input.path is a pattern, not a directory */
    known_set_t known;
    char **now;                   /* trigger.available.now: the paths present at start, still to read */
    size_t nnow;
    bool now_listed;
    tally_filesource_stats_t stats;
};

static bool is_pattern(const char *p) { return strpbrk(p, "*?[") != NULL; }

static void load_one(const char *path, const char *rec, void *opaque) {
    tally_filesource_t *fs = opaque;
    long long size, mtime, epoch;
    unsigned long long dev, ino;
    char status[16];
    if (sscanf(rec, "v1 %lld %15s %lld %lld %llu %llu", &epoch, status, &size, &mtime, &dev, &ino) != 6) {
        tally_warn("state: unreadable record for input file %s: \"%s\" (taken as read)", path, rec);
        size = mtime = -1;
        dev = ino = 0;
        epoch = 0;
        strcpy(status, "read");
    }
    known_t *e = known_get(&fs->known, path);
    if (!e) return;
    e->read = true;
    e->size = size;
    e->mtime_ns = mtime;
    e->dev = dev;
    e->ino = ino;
    e->epoch = (uint64_t)epoch;
    for (int i = 0; i < (int)(sizeof(status_names) / sizeof(status_names[0])); i++)
        if (strcmp(status, status_names[i]) == 0) e->status = i;
}

int tally_filesource_open(const tally_config_t *conf, tally_state_t *state, tally_filesource_t **out, char *errstr,
                          size_t errstr_size) {
    *out = NULL;
    struct stat st;
    bool glob = is_pattern(conf->input_path);
    if (!glob && stat(conf->input_path, &st) != 0) {
        snprintf(errstr, errstr_size, "input.path %s: %s (create the directory, or fix input.path)", conf->input_path,
                 strerror(errno));
        return TALLY_ECONFIG;
    }
    if (!glob && !S_ISDIR(st.st_mode)) {
        snprintf(errstr, errstr_size, "input.path %s is not a directory (a glob pattern such as %s/*.txt names files)",
                 conf->input_path, conf->input_path);
        return TALLY_ECONFIG;
    }
    tally_filesource_t *fs = calloc(1, sizeof(*fs));
    if (!fs) return TALLY_ENOMEM;
    fs->conf = conf;
    fs->glob = glob;
    if (tally_state_foreach_file(state, load_one, fs)) {
        snprintf(errstr, errstr_size, "cannot read the input files' records from the state");
        tally_filesource_close(fs);
        return TALLY_ESTATE;
    }
    tally_info("input.path %s: %zu file(s) read before", conf->input_path, fs->known.n);
    *out = fs;
    return 0;
}

void tally_filesource_close(tally_filesource_t *fs) {
    if (!fs) return;
    known_free(&fs->known);
    for (size_t i = 0; i < fs->nnow; i++) free(fs->now[i]);
    free(fs->now);
    free(fs);
}

bool tally_filesource_is_read(const tally_filesource_t *fs, const char *path) {
    const known_t *k = known_find(&fs->known, path);
    return k && k->read;
}

void tally_filesource_stats(const tally_filesource_t *fs, tally_filesource_stats_t *out) { *out = fs->stats; }

bool tally_filesource_done(const tally_filesource_t *fs) {
    return fs->conf->trigger_available_now && fs->now_listed && fs->nnow == 0;
}

/* ---- listing ---- */

typedef struct {
    tally_file_t *v;
    int n, cap;
} file_list_t;

static void list_free(file_list_t *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i].path);
    free(l->v);
    *l = (file_list_t){0};
}

/* Clean-up of a read file (files.clean); once per path and process. */
static void clean_file(tally_filesource_t *fs, known_t *k) {
    const tally_config_t *c = fs->conf;
    if (c->files_clean == TALLY_CLEAN_OFF || k->cleaned) return;
    k->cleaned = true;
    if (c->files_clean == TALLY_CLEAN_DELETE) {
        if (unlink(k->path) != 0 && errno != ENOENT) tally_warn("files.clean=delete: cannot delete %s: %s", k->path, strerror(errno));
        return;
    }
    const char *base = strrchr(k->path, '/');
    base = base ? base + 1 : k->path;
    char *to = NULL;
    if (asprintf(&to, "%s/%s", c->files_archive_dir, base) < 0) return;
    mkdir(c->files_archive_dir, 0755);
    if (rename(k->path, to) != 0 && errno != ENOENT)
        tally_warn("files.clean=archive: cannot move %s to %s: %s (it stays)", k->path, to, strerror(errno));
    free(to);
}

/* A listed path: new (added to l), read before (cleaned, or reported once when it changed since), or
 * not a file to read. */
static int consider(tally_filesource_t *fs, file_list_t *l, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    /* Hidden and underscore names are files being written or metadata, as Hadoop's and Spark's listers say. */
    if (base[0] == '.' || base[0] == '_') return 0;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    known_t *k = known_find(&fs->known, path);
    if (k && k->read) {
        bool same = k->size == (int64_t)st.st_size && k->mtime_ns == mtime && k->ino == (uint64_t)st.st_ino;
        if (same) clean_file(fs, k);
        else if (!k->warned) {
            k->warned = true;
            fs->stats.changed_after_read++;
            tally_warn("input file %s changed after epoch %" PRIu64 " read it (size %" PRId64 " -> %lld): it is not read "
                       "again; place new input under a new name", path, k->epoch, k->size, (long long)st.st_size);
        }
        return 0;
    }
    if (strchr(path, '\n')) {
        if ((k = known_get(&fs->known, path)) && !k->warned) {
            k->warned = true;
            tally_warn("input file name with a newline is not read: %s", path);
        }
        return 0;
    }
    if (access(path, R_OK) != 0) {
        /* Tried again at each trigger (a file placed before its permissions were set); said once. */
        if ((k = known_get(&fs->known, path)) && !k->warned) {
            k->warned = true;
            fs->stats.unreadable++;
            tally_warn("input file %s cannot be read (%s): skipped until it can", path, strerror(errno));
        }
        return 0;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        tally_file_t *v = realloc(l->v, (size_t)cap * sizeof(*v));
        if (!v) return TALLY_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    tally_file_t *f = &l->v[l->n];
    *f = (tally_file_t){.path = strdup(path), .size = (int64_t)st.st_size, .mtime_ns = mtime, .dev = (uint64_t)st.st_dev,
                        .ino = (uint64_t)st.st_ino};
    size_t pl = strlen(path);
    f->gz = pl > 3 && strcmp(path + pl - 3, ".gz") == 0;
    atomic_init(&f->status, TALLY_FILE_READ);
    if (!f->path) return TALLY_ENOMEM;
    l->n++;
    return 0;
}

static int list_input(tally_filesource_t *fs, file_list_t *l, char *errstr, size_t n) {
    const char *in = fs->conf->input_path;
    if (fs->glob) {
        glob_t g;
        int r = glob(in, 0, NULL, &g);
        if (r == GLOB_NOMATCH) return 0;
        if (r) {
            snprintf(errstr, n, "input.path %s: cannot list it (%s)", in, r == GLOB_NOSPACE ? "out of memory" : "read error");
            return TALLY_EIO;
        }
        for (size_t i = 0; !r && i < g.gl_pathc; i++) r = consider(fs, l, g.gl_pathv[i]);
        globfree(&g);
        return r;
    }
    DIR *d = opendir(in);
    if (!d) {
        snprintf(errstr, n, "input.path %s: cannot list it: %s", in, strerror(errno));
        return TALLY_EIO;
    }
    int r = 0;
    struct dirent *e;
    while (!r && (e = readdir(d))) {
        char *path = NULL;
        if (asprintf(&path, "%s%s%s", in, in[strlen(in) - 1] == '/' ? "" : "/", e->d_name) < 0) r = TALLY_ENOMEM;
        else r = consider(fs, l, path);
        free(path);
    }
    closedir(d);
    return r;
}

static int by_age(const void *a, const void *b) {
    const tally_file_t *x = a, *y = b;
    if (x->mtime_ns != y->mtime_ns) return x->mtime_ns < y->mtime_ns ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* NUL in the first bytes: a binary file, whose "words" would only pollute the counts. */
static bool looks_binary(const tally_file_t *f) {
    char buf[SNIFF_BYTES];
    int n = -1;
    if (f->gz) {
        gzFile g = gzopen(f->path, "rb");
        if (!g) return false;
        n = gzread(g, buf, sizeof(buf));
        gzclose(g);
    } else {
        int fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return false;
        n = (int)read(fd, buf, sizeof(buf));
        close(fd);
    }
    return n > 0 && memchr(buf, 0, (size_t)n) != NULL;
}

/* ---- planning ---- */

void tally_file_plan_clear(tally_file_plan_t *plan) {
    for (int i = 0; i < plan->nfiles; i++) free(plan->files[i].path);
    free(plan->files);
    free(plan->chunks);
    for (int r = 0; plan->assign && r < plan->nreaders; r++) free(plan->assign[r]);
    free(plan->assign);
    *plan = (tally_file_plan_t){0};
}

static bool in_now(tally_filesource_t *fs, const char *path) {
    for (size_t i = 0; i < fs->nnow; i++)
        if (strcmp(fs->now[i], path) == 0) return true;
    return false;
}

/* Chunks go to readers largest first, each to the least loaded one. */
static int by_size_desc(const void *a, const void *b, void *arg) {
    const tally_chunk_t *c = arg;
    int64_t x = c[*(const int *)a].to - c[*(const int *)a].from, y = c[*(const int *)b].to - c[*(const int *)b].from;
    return x > y ? -1 : x < y;
}

static int split(const tally_config_t *conf, tally_file_plan_t *plan, int nreaders) {
    int cap = 0;
    for (int i = 0; i < plan->nfiles; i++) {
        const tally_file_t *f = &plan->files[i];
        if (atomic_load(&f->status) != TALLY_FILE_READ) continue;
        cap += f->gz ? 1 : (int)(f->size / conf->files_split_bytes) + 1;
    }
    plan->chunks = calloc((size_t)cap + 1, sizeof(*plan->chunks));
    plan->assign = calloc((size_t)nreaders, sizeof(*plan->assign));
    int *order = calloc((size_t)cap + 1, sizeof(int));
    int64_t *load = calloc((size_t)nreaders, sizeof(int64_t));
    int *fill = calloc((size_t)nreaders, sizeof(int));
    int r = plan->chunks && plan->assign && order && load && fill ? 0 : TALLY_ENOMEM;
    plan->nreaders = nreaders;
    for (int k = 0; !r && k < nreaders; k++)
        if (!(plan->assign[k] = malloc(((size_t)cap + 1) * sizeof(int)))) r = TALLY_ENOMEM;
    for (int i = 0; !r && i < plan->nfiles; i++) {
        const tally_file_t *f = &plan->files[i];
        if (atomic_load(&f->status) != TALLY_FILE_READ) continue;
        if (f->gz) {
            plan->chunks[plan->nchunks++] = (tally_chunk_t){.file = i, .from = 0, .to = INT64_MAX};
            continue;
        }
        int64_t pieces = f->size / conf->files_split_bytes + 1, step = (f->size + pieces - 1) / pieces;
        for (int64_t from = 0; from < f->size || (from == 0 && f->size == 0); from += step ? step : 1) {
            int64_t to = from + step < f->size ? from + step : f->size;
            plan->chunks[plan->nchunks++] = (tally_chunk_t){.file = i, .from = from, .to = to};
            if (to >= f->size) break;
        }
    }
    for (int k = 0; !r && k < plan->nchunks; k++) order[k] = k;
    if (!r) qsort_r(order, (size_t)plan->nchunks, sizeof(int), by_size_desc, plan->chunks);
    for (int k = 0; !r && k < plan->nchunks; k++) {
        int best = 0;
        for (int q = 1; q < nreaders; q++)
            if (load[q] < load[best]) best = q;
        const tally_chunk_t *ch = &plan->chunks[order[k]];
        load[best] += (ch->to == INT64_MAX ? plan->files[ch->file].size * 4 : ch->to - ch->from) + 4096;
        plan->assign[best][fill[best]++] = order[k];
    }
    for (int k = 0; !r && k < nreaders; k++) plan->assign[k][fill[k]] = -1;
    free(order);
    free(load);
    free(fill);
    return r;
}

int tally_filesource_plan(tally_filesource_t *fs, uint64_t epoch, int nreaders, tally_file_plan_t *plan, char *errstr,
                          size_t errstr_size) {
    const tally_config_t *c = fs->conf;
    *plan = (tally_file_plan_t){.epoch = epoch};
    file_list_t l = {0};
    int r = list_input(fs, &l, errstr, errstr_size);
    if (r) {
        list_free(&l);
        return r;
    }
    if (c->trigger_available_now && !fs->now_listed) {
        /* What is there now is all this run reads (Spark's Trigger.AvailableNow). */
        fs->now = calloc((size_t)l.n + 1, sizeof(char *));
        for (int i = 0; fs->now && i < l.n; i++)
            if ((fs->now[fs->nnow] = strdup(l.v[i].path))) fs->nnow++;
        fs->now_listed = fs->now != NULL;
        tally_info("trigger.available.now: %zu file(s) to read, then stop", fs->nnow);
    }
    if (l.n > 1) qsort(l.v, (size_t)l.n, sizeof(*l.v), by_age);
    int take = 0;
    int64_t bytes = 0;
    for (int i = 0; i < l.n; i++) {
        if (c->trigger_available_now && !in_now(fs, l.v[i].path)) continue;
        if (take > 0 && c->files_max_per_trigger && take >= c->files_max_per_trigger) break;
        if (take > 0 && c->files_max_bytes_per_trigger && bytes + l.v[i].size > c->files_max_bytes_per_trigger) break;
        bytes += l.v[i].size;
        if (i != take) {
            tally_file_t t = l.v[take];
            l.v[take] = l.v[i];
            l.v[i] = t;
        }
        take++;
    }
    for (int i = take; i < l.n; i++) free(l.v[i].path);
    plan->files = l.v;
    plan->nfiles = take;
    plan->bytes = bytes;
    for (int i = 0; i < take; i++)
        if (looks_binary(&plan->files[i])) {
            atomic_store(&plan->files[i].status, TALLY_FILE_BINARY);
            fs->stats.skipped_binary++;
            tally_warn("input file %s holds NUL bytes in its first %d bytes: not text, not counted (recorded as read)",
                       plan->files[i].path, SNIFF_BYTES);
        }
    if (take == 0) {
        tally_file_plan_clear(plan);
        plan->epoch = epoch;
        return 0;
    }
    r = split(c, plan, nreaders < 1 ? 1 : nreaders);
    if (r) snprintf(errstr, errstr_size, "out of memory planning %d input file(s)", take);
    return r;
}

void tally_filesource_store(const tally_filesource_t *fs, const tally_file_plan_t *plan, tally_state_batch_t *b) {
    (void)fs;
    for (int i = 0; i < plan->nfiles; i++) {
        const tally_file_t *f = &plan->files[i];
        char rec[160];
        snprintf(rec, sizeof(rec), "v1 %" PRIu64 " %s %" PRId64 " %" PRId64 " %" PRIu64 " %" PRIu64, plan->epoch,
                 status_names[atomic_load(&f->status)], f->size, f->mtime_ns, f->dev, f->ino);
        tally_state_batch_put_file(b, f->path, rec);
    }
}

void tally_filesource_committed(tally_filesource_t *fs, const tally_file_plan_t *plan) {
    for (int i = 0; i < plan->nfiles; i++) {
        const tally_file_t *f = &plan->files[i];
        known_t *k = known_get(&fs->known, f->path);
        int st = atomic_load(&f->status);
        if (k) {
            *k = (known_t){.next = k->next, .size = f->size, .mtime_ns = f->mtime_ns, .dev = f->dev, .ino = f->ino,
                           .epoch = plan->epoch, .status = st, .read = true};
            memcpy(k->path, f->path, strlen(f->path) + 1);
        }
        if (st == TALLY_FILE_READ || st == TALLY_FILE_TRUNCATED) {
            fs->stats.files_read++;
            fs->stats.bytes_read += (uint64_t)f->size;
        }
        if (st == TALLY_FILE_VANISHED) fs->stats.vanished++;
        if (st == TALLY_FILE_UNREADABLE) fs->stats.unreadable++;
        if (st == TALLY_FILE_TRUNCATED) fs->stats.truncated++;
        if (k && st != TALLY_FILE_VANISHED) clean_file(fs, k);
        for (size_t j = 0; j < fs->nnow; j++)
            if (strcmp(fs->now[j], f->path) == 0) {
                free(fs->now[j]);
                fs->now[j] = fs->now[--fs->nnow];
                break;
            }
    }
}

/* ---- reading ---- */

typedef struct {
    int fd;
    gzFile gz;
} src_t;

static ssize_t src_read(src_t *s, uint8_t *buf, size_t n) {
    if (s->gz) {
        int r = gzread(s->gz, buf, (unsigned)n);
        return r;
    }
    for (;;) {
        ssize_t r = read(s->fd, buf, n);
        if (r >= 0 || errno != EINTR) return r;
    }
}

static void set_status(tally_file_t *f, int st) {
    int expected = TALLY_FILE_READ;
    atomic_compare_exchange_strong(&f->status, &expected, st);
}

/* The stream of one chunk: words that start in [from, to) (word offsets relative to the file).
 * The buffer keeps the unfinished word at its front between reads. */
int tally_file_read_chunk(tally_file_t *f, const tally_chunk_t *c, size_t max_word, tally_file_word_fn word,
                          void *opaque, uint64_t *lines, uint64_t *dropped) {
    src_t s = {.fd = -1};
    if (f->gz) {
        int fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && !(s.gz = gzdopen(fd, "rb"))) close(fd);
        if (s.gz) gzbuffer(s.gz, 128 * 1024);
    } else {
        s.fd = open(f->path, O_RDONLY | O_CLOEXEC);
    }
    if (s.fd < 0 && !s.gz) {
        int e = errno;
        set_status(f, e == ENOENT ? TALLY_FILE_VANISHED : TALLY_FILE_UNREADABLE);
        tally_warn("input file %s %s: not counted", f->path, e == ENOENT ? "vanished before it was read" : strerror(e));
        return 0;
    }
    /* A word that starts before `from` belongs to the previous chunk: start after it. */
    int64_t pos = c->from;
    bool skip_first = false;
    if (!f->gz && c->from > 0) {
        uint8_t prev;
        if (pread(s.fd, &prev, 1, c->from - 1) == 1) skip_first = !tally_tokenize_space[prev];
        lseek(s.fd, c->from, SEEK_SET);
    }
    /* Uncompressed: never past the size listed (a file must not grow; one that did is read as listed). */
    int64_t eof = f->gz ? INT64_MAX : f->size;
    uint8_t *buf = malloc(READ_BUF + max_word + 1);
    if (!buf) {
        if (s.gz) gzclose(s.gz);
        else close(s.fd);
        set_status(f, TALLY_FILE_UNREADABLE);
        tally_warn("input file %s: out of memory for reading it", f->path);
        return 0;
    }
    size_t keep = 0;       /* bytes of an unfinished word at buf[0] */
    int64_t base = pos;    /* file offset of buf[0] */
    bool overlong = false; /* inside a word longer than max_word: skipping to its end */
    bool stopped = false, ended = false;
    uint8_t last = '\n';
    int rc = 0;
    while (!ended && !stopped) {
        size_t want = READ_BUF;
        if (!f->gz && (int64_t)want > eof - (base + (int64_t)keep)) want = (size_t)(eof - (base + (int64_t)keep));
        ssize_t n = want ? src_read(&s, buf + keep, want) : 0;
        if (n < 0) {
            set_status(f, TALLY_FILE_UNREADABLE);
            tally_warn("input file %s: read error at byte %" PRId64 ": %s; the words before it are counted", f->path,
                       base + (int64_t)keep, f->gz ? "corrupt or truncated gzip data" : strerror(errno));
            n = 0;
        }
        ended = n == 0;
        if (ended && !f->gz && base + (int64_t)keep < eof && atomic_load(&f->status) == TALLY_FILE_READ) {
            set_status(f, TALLY_FILE_TRUNCATED);
            tally_warn("input file %s was truncated while read: %" PRId64 " of %" PRId64 " bytes counted", f->path,
                       base + (int64_t)keep, f->size);
        }
        size_t len = keep + (size_t)n;
        /* Lines: the newlines of this chunk's range; the last line without one counts at the file's end. */
        for (size_t i = keep; i < len; i++) {
            int64_t at = base + (int64_t)i;
            if (at < c->to && buf[i] == '\n') (*lines)++;
        }
        if (n > 0) last = buf[len - 1];
        size_t i = 0;
        if (skip_first || overlong) {
            while (i < len && !tally_tokenize_space[buf[i]]) i++;
            if (i < len) {
                if (overlong) (*dropped)++;
                skip_first = overlong = false;
            }
        }
        tally_tokenizer_t t;
        tally_tokenizer_init(&t, buf + i, len - i);
        const uint8_t *w;
        size_t wl;
        keep = 0;
        while (tally_tokenizer_next(&t, &w, &wl)) {
            int64_t at = base + (w - buf);
            if (at >= c->to) {
                ended = true;
                break;
            }
            if (w + wl == buf + len && !ended) {
                /* May go on in the next read. */
                if (wl > max_word) overlong = true;
                else {
                    memmove(buf, w, wl);
                    keep = wl;
                }
                break;
            }
            if (wl > max_word) (*dropped)++;
            else if (!word(w, wl, opaque)) {
                stopped = true;
                rc = 1;
                break;
            }
        }
        if (overlong && ended) (*dropped)++;
        base += (int64_t)len - (int64_t)keep;
    }
    bool at_end = f->gz || c->to >= f->size;
    if (at_end && !stopped && last != '\n' && base > 0) (*lines)++;
    free(buf);
    if (s.gz) gzclose(s.gz);
    else close(s.fd);
    return rc;
}
