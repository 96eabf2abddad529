/* SPDX-License-Identifier: MIT */
/* The directory source without an engine: reading a file as chunks gives exactly the words and lines
 * of reading it whole with the line tokenizer (every split point, words across the read buffer,
 * words longer than max.word.bytes, CRLF, a last line without a newline, gzip), and planning picks
 * new files oldest first within the bounds, skips hidden and binary ones, and remembers read ones
 * through the state. */
#include <dirent.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include "harness.h"
#include "tally/config.h"
#include "tally/err.h"
#include "tally/filesource.h"
#include "tally/state.h"
#include "tally/tokenize.h"
#include "unit.h"

static char dir[256];

/* An order-independent digest of the words seen: the sum and the xor of their hashes, and a count. */
typedef struct {
    uint64_t sum, x, n;
} digest_t;

static bool add_word(const uint8_t *w, size_t len, void *opaque) {
    digest_t *d = opaque;
    uint64_t h = XXH3_64bits(w, len);
    d->sum += h;
    d->x ^= h * 0x9e3779b97f4a7c15ULL;
    d->n++;
    return true;
}

/* The reference: the text split into lines, each tokenized as the Kafka path does. */
static digest_t reference(const uint8_t *text, size_t len, size_t max, uint64_t *lines, uint64_t *dropped) {
    digest_t d = {0};
    *lines = *dropped = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && text[i] != '\n') continue;
        if (i == len && start == len) break;
        tally_tokenizer_t t;
        const uint8_t *w;
        size_t wl;
        tally_tokenizer_init(&t, text + start, i - start);
        while (tally_tokenizer_next_counted(&t, max, &w, &wl, dropped)) add_word(w, wl, &d);
        (*lines)++;
        start = i + 1;
    }
    return d;
}

static void write_file(const char *path, const uint8_t *text, size_t len) {
    FILE *f = fopen(path, "wb");
    ASSERT(f);
    ASSERT_EQ(fwrite(text, 1, len, f), len);
    fclose(f);
}

/* Reads the file as the given chunks (sorted cut points) and compares with the reference. */
static void check_split(const char *path, const uint8_t *text, size_t len, const int64_t *cuts, int ncuts, size_t max) {
    tally_file_t f = {.path = (char *)path, .size = (int64_t)len};
    atomic_init(&f.status, TALLY_FILE_READ);
    digest_t d = {0};
    uint64_t lines = 0, dropped = 0;
    int64_t from = 0;
    for (int k = 0; k <= ncuts; k++) {
        tally_chunk_t c = {.from = from, .to = k < ncuts ? cuts[k] : (int64_t)len};
        ASSERT_EQ(tally_file_read_chunk(&f, &c, max, add_word, &d, &lines, &dropped), 0);
        from = c.to;
    }
    uint64_t rl, rd;
    digest_t r = reference(text, len, max, &rl, &rd);
    if (d.n != r.n || d.sum != r.sum || d.x != r.x || lines != rl || dropped != rd)
        TH_FAIL("%s split in %d at %lld: words %llu vs %llu, lines %llu vs %llu, dropped %llu vs %llu", path, ncuts + 1,
                ncuts ? (long long)cuts[0] : -1LL, (unsigned long long)d.n, (unsigned long long)r.n,
                (unsigned long long)lines, (unsigned long long)rl, (unsigned long long)dropped, (unsigned long long)rd);
    ASSERT_EQ(atomic_load(&f.status), TALLY_FILE_READ);
}

static size_t random_text(uint64_t *seed, uint8_t *buf, size_t len, size_t longword) {
    static const char *const seps[] = {" ", "  ", "\t", "\n", "\r\n", "\n\n", " \n"};
    size_t n = 0;
    while (n < len) {
        uint64_t r = unit_splitmix64(seed);
        size_t wl = r % 97 == 0 ? longword + (r >> 20) % 5 : 1 + (r >> 8) % 9;
        for (size_t i = 0; i < wl && n < len; i++) buf[n++] = (uint8_t)('a' + (unit_splitmix64(seed) % 26));
        const char *s = seps[(r >> 32) % 7];
        for (size_t i = 0; s[i] && n < len; i++) buf[n++] = (uint8_t)s[i];
    }
    return n;
}

static void test_every_split_of_a_small_file(void) {
    char path[300];
    snprintf(path, sizeof(path), "%s/small.txt", dir);
    uint64_t seed = 7;
    uint8_t text[400];
    size_t len = random_text(&seed, text, sizeof(text), 12);
    text[len - 1] = 'z'; /* a last line without a newline */
    write_file(path, text, len);
    for (int64_t a = 0; a <= (int64_t)len; a++) check_split(path, text, len, &a, 1, 10);
    for (int i = 0; i < 300; i++) {
        int64_t cuts[3];
        for (int k = 0; k < 3; k++) cuts[k] = (int64_t)(unit_splitmix64(&seed) % (len + 1));
        for (int k = 0; k < 3; k++)
            for (int q = k + 1; q < 3; q++)
                if (cuts[q] < cuts[k]) {
                    int64_t t = cuts[k];
                    cuts[k] = cuts[q];
                    cuts[q] = t;
                }
        check_split(path, text, len, cuts, 3, 10);
    }
}

/* Past the 256 KiB read buffer: words (and long ones) across its edges, a split inside it. */
static void test_large_file_across_buffers(void) {
    char path[300];
    snprintf(path, sizeof(path), "%s/large.txt", dir);
    uint64_t seed = 11;
    size_t cap = 3u << 20;
    uint8_t *text = malloc(cap);
    ASSERT(text);
    size_t len = random_text(&seed, text, cap, 40);
    write_file(path, text, len);
    check_split(path, text, len, NULL, 0, 32);
    int64_t cuts[] = {262143, 262144, 262145, 1000000, 2097152};
    check_split(path, text, len, cuts, 5, 32);
    /* One word far longer than the buffer: dropped once, whatever the split. */
    memset(text + 100, 'q', 700000);
    write_file(path, text, len);
    check_split(path, text, len, NULL, 0, 1024);
    int64_t inside[] = {300000};
    check_split(path, text, len, inside, 1, 1024);
    free(text);
}

static void test_gzip_and_truncation(void) {
    char path[300];
    snprintf(path, sizeof(path), "%s/g.txt.gz", dir);
    const char *text = "one two\r\nthree\n\nfour five six";
    gzFile g = gzopen(path, "wb");
    ASSERT(g);
    gzwrite(g, text, (unsigned)strlen(text));
    gzclose(g);
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    tally_file_t f = {.path = path, .size = st.st_size, .gz = true};
    atomic_init(&f.status, TALLY_FILE_READ);
    tally_chunk_t c = {.from = 0, .to = INT64_MAX};
    digest_t d = {0};
    uint64_t lines = 0, dropped = 0;
    ASSERT_EQ(tally_file_read_chunk(&f, &c, 1024, add_word, &d, &lines, &dropped), 0);
    ASSERT_EQ(d.n, 6);
    ASSERT_EQ(lines, 4);

    /* Listed at 20 bytes, 9 when read: what is there counts, and the file says so. */
    snprintf(path, sizeof(path), "%s/t.txt", dir);
    write_file(path, (const uint8_t *)"cut here\n", 9);
    tally_file_t t = {.path = path, .size = 20};
    atomic_init(&t.status, TALLY_FILE_READ);
    tally_chunk_t tc = {.from = 0, .to = 20};
    d = (digest_t){0};
    lines = 0;
    ASSERT_EQ(tally_file_read_chunk(&t, &tc, 1024, add_word, &d, &lines, &dropped), 0);
    ASSERT_EQ(d.n, 2);
    ASSERT_EQ(atomic_load(&t.status), TALLY_FILE_TRUNCATED);

    snprintf(path, sizeof(path), "%s/none.txt", dir);
    tally_file_t v = {.path = path, .size = 5};
    atomic_init(&v.status, TALLY_FILE_READ);
    ASSERT_EQ(tally_file_read_chunk(&v, &tc, 1024, add_word, &d, &lines, &dropped), 0);
    ASSERT_EQ(atomic_load(&v.status), TALLY_FILE_VANISHED);
}

static void put(const char *sub, const char *name, const char *text, int age_s) {
    char path[400];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    write_file(path, (const uint8_t *)text, strlen(text));
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= age_s;
    tv[1] = tv[0];
    ASSERT_EQ(utimes(path, tv), 0);
}

static void test_plan_order_bounds_and_memory(void) {
    char in[300], st_dir[300], err[512];
    snprintf(in, sizeof(in), "%s/in", dir);
    snprintf(st_dir, sizeof(st_dir), "%s/state", dir);
    ASSERT_EQ(mkdir(in, 0755), 0);
    put("in", "c.txt", "c c\n", 10);
    put("in", "a.txt", "a\n", 30);
    put("in", "b.txt", "b b b\n", 20);
    put("in", ".hidden", "h\n", 40);
    put("in", "_tmp", "h\n", 40);
    put("in", "bin.dat", "x\0y", 5); /* strlen: "x" only; rewritten below */
    char binpath[400];
    snprintf(binpath, sizeof(binpath), "%s/bin.dat", in);
    write_file(binpath, (const uint8_t *)"x\0y z", 5);

    tally_config_t conf;
    tally_config_init(&conf);
    conf.input_path = in;
    conf.files_max_per_trigger = 2;
    tally_state_t *st;
    bool locked;
    ASSERT_EQ(tally_state_open(&st, st_dir, &locked, err, sizeof(err)), 0);
    tally_filesource_t *fs;
    ASSERT_EQ(tally_filesource_open(&conf, st, &fs, err, sizeof(err)), 0);

    tally_file_plan_t plan;
    ASSERT_EQ(tally_filesource_plan(fs, 1, 3, &plan, err, sizeof(err)), 0);
    ASSERT_EQ(plan.nfiles, 2); /* files.max.per.trigger, oldest first */
    ASSERT(strstr(plan.files[0].path, "/a.txt"));
    ASSERT(strstr(plan.files[1].path, "/b.txt"));
    ASSERT_EQ(plan.nchunks, 2);
    tally_state_batch_t *b = tally_state_batch_new();
    tally_filesource_store(fs, &plan, b);
    tally_state_batch_put_epoch(b, 1);
    ASSERT_EQ(tally_state_batch_write(st, b, err, sizeof(err)), 0);
    tally_state_batch_destroy(b);
    tally_filesource_committed(fs, &plan);
    tally_file_plan_clear(&plan);

    ASSERT_EQ(tally_filesource_plan(fs, 2, 3, &plan, err, sizeof(err)), 0);
    ASSERT_EQ(plan.nfiles, 2);
    ASSERT(strstr(plan.files[0].path, "/c.txt"));
    ASSERT(strstr(plan.files[1].path, "/bin.dat"));
    ASSERT_EQ(atomic_load(&plan.files[1].status), TALLY_FILE_BINARY);
    ASSERT_EQ(plan.nchunks, 1); /* the binary file is not read */
    tally_file_plan_clear(&plan); /* not committed: planned again after a restart */
    tally_filesource_close(fs);
    tally_state_close(st);

    /* A restart remembers a.txt and b.txt, not the uncommitted ones. */
    ASSERT_EQ(tally_state_open(&st, st_dir, &locked, err, sizeof(err)), 0);
    ASSERT_EQ(tally_filesource_open(&conf, st, &fs, err, sizeof(err)), 0);
    char a[400];
    snprintf(a, sizeof(a), "%s/a.txt", in);
    ASSERT(tally_filesource_is_read(fs, a));
    conf.files_max_per_trigger = 0;
    conf.files_max_bytes_per_trigger = 1; /* at least one file per trigger, however large */
    ASSERT_EQ(tally_filesource_plan(fs, 2, 3, &plan, err, sizeof(err)), 0);
    ASSERT_EQ(plan.nfiles, 1);
    ASSERT(strstr(plan.files[0].path, "/c.txt"));
    tally_file_plan_clear(&plan);
    tally_filesource_close(fs);
    tally_state_close(st);

    /* A missing directory is a configuration error naming it. */
    conf.input_path = "/nonexistent/tally-in";
    ASSERT_EQ(tally_filesource_open(&conf, NULL, &fs, err, sizeof(err)), TALLY_ECONFIG);
    ASSERT(strstr(err, "/nonexistent/tally-in"));
    conf.input_path = NULL;
    tally_config_term(&conf);
}

int main(void) {
    snprintf(dir, sizeof(dir), "/tmp/tally-test-filesource-%d", (int)getpid());
    ASSERT_EQ(mkdir(dir, 0755), 0);
    RUN(test_every_split_of_a_small_file);
    RUN(test_large_file_across_buffers);
    RUN(test_gzip_and_truncation);
    RUN(test_plan_order_bounds_and_memory);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd)) return 1;
    RUN_SUMMARY("filesource");
    return 0;
}
