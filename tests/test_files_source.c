/* SPDX-License-Identifier: MIT */
/* The directory source (input.path) into the file sink, with no broker.
 *   test_files_source jsonl|csv|parquet
 *     Files keep arriving (plain and gzip, large ones split between readers, odd words) while the
 *     engine is SIGKILLed at the two points a file commit can be torn and at random moments, then
 *     restarted; a last run with trigger.available.now=true counts what is left and exits 0. The
 *     committed output, read through its log by Python, DuckDB and (in scripts/test) Spark, must hold
 *     the exact count of every word, strictly increasing, and no part file outside a commit.
 *   test_files_source kafka
 *     The same into a Kafka topic (a real broker): the files each transaction read travel in it as a
 *     record of <application.id>-files; a kill between the commit and the state write is replayed
 *     from that record. The read_committed output: exact, strictly increasing per word.
 *   test_files_source bad
 *     A missing input directory, a binary file, a 100 MB line, a file without read permission, a
 *     file deleted and one truncated between listing and reading, and files.clean=archive: each one
 *     logged, with the outcome the docs give (docs/files.md), and the counts exact. */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"

enum { KILLS = 4 };

static unsigned seed;
static int nfiles;
static char in[300];

static int count_lines(const char *path, const char *pattern) {
    char cmd[900];
    snprintf(cmd, sizeof(cmd), "grep -c '%s' %s", pattern, path);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p) {
        if (fscanf(p, "%d", &n) != 1) n = 0;
        pclose(p);
    }
    return n;
}

static int commits(th_engine_t *e) { return count_lines(e->log, "epoch .* committed"); }

/* One new input file of random lines (CRLF now and then, sometimes no last newline); every tenth is
 * gzip, every seventh large enough to be split between readers. */
static void add_file(th_counts_t *truth) {
    int n = nfiles++;
    bool gz = n % 10 == 9, large = n % 7 == 3;
    int lines = large ? 9000 : 50 + rand_r(&seed) % 200;
    size_t cap = (size_t)lines * 80 + 64, len = 0;
    char *text = malloc(cap);
    ASSERT(text);
    for (int l = 0; l < lines; l++) {
        int words = rand_r(&seed) % 11;
        for (int w = 0; w < words; w++)
            len += (size_t)snprintf(text + len, cap - len, "%ss%d", w ? (rand_r(&seed) % 5 ? " " : "\t ") : "",
                                    rand_r(&seed) % 3000);
        if (l < lines - 1 || rand_r(&seed) % 2) len += (size_t)snprintf(text + len, cap - len, "%s", rand_r(&seed) % 4 ? "\n" : "\r\n");
    }
    th_counts_add_line(truth, text, len);
    char name[64];
    snprintf(name, sizeof(name), "in-%05d.txt%s", n, gz ? ".gz" : "");
    if (!gz) {
        th_write_file(in, name, text, len);
    } else {
        char tmp[400], path[400];
        snprintf(tmp, sizeof(tmp), "%s/.%s", in, name);
        snprintf(path, sizeof(path), "%s/%s", in, name);
        gzFile g = gzopen(tmp, "wb");
        ASSERT(g);
        ASSERT_EQ(gzwrite(g, text, (unsigned)len), (int)len);
        ASSERT_EQ(gzclose(g), Z_OK);
        ASSERT_EQ(rename(tmp, path), 0);
    }
    free(text);
}

/* A start armed to die at crash point `at`; the restart's log must show the recovery it calls for. */
static void crash_at(th_engine_t *e, const char *at, const char *expect_next_start, th_counts_t *truth) {
    for (int i = 0; i < 12; i++) add_file(truth);
    setenv("TALLY_CRASH_AT", at, 1);
    th_engine_start(e);
    unsetenv("TALLY_CRASH_AT");
    double deadline = th_now() + 60;
    while (th_engine_alive(e) && th_now() < deadline) usleep(100000);
    if (th_engine_alive(e)) TH_FAIL("crash point %s was not reached within 60 s", at);
    ASSERT_EQ(e->status, 128 + SIGKILL);
    th_engine_start(e);
    th_engine_wait_started(e, 60);
    for (int i = 0; i < 100 && th_system("grep -q '%s' %s", expect_next_start, e->log) != 0; i++) usleep(100000);
    if (th_system("grep -q '%s' %s", expect_next_start, e->log) != 0) th_engine_dump_log(e, 30);
    ASSERT_EQ(th_system("grep -q '%s' %s", expect_next_start, e->log), 0);
}

/* The last run: what is left, then exit 0 by itself. */
static void finish(th_engine_t *e) {
    th_engine_append_conf(e, "trigger.available.now=true\n");
    th_engine_start(e);
    int st = th_engine_wait(e, 300);
    if (st != 0) th_engine_dump_log(e, 30);
    ASSERT_EQ(st, 0);
}

/* files -> Kafka, exactly once. */
static int into_kafka(void) {
    th_bootstrap();
    th_counts_t *truth = th_counts_new();
    const char *out = th_unique("fsrc-out"), *app = th_unique("fsrck");
    th_create_topic(out, 3);
    th_engine_t e;
    char extra[700];
    snprintf(extra, sizeof(extra), "bootstrap.servers=%s\noutput.topic=%s\nworkers=2\nfiles.readers=2\n"
             "files.split.bytes=65536\nfiles.max.per.trigger=4\n", th_bootstrap(), out);
    th_engine_init_files(&e, app, in, extra);
    crash_at(&e, "after_commit:2", "recovering: Kafka committed epoch", truth);
    for (int kills = 0; kills < KILLS; kills++) {
        int before = commits(&e);
        for (int i = 0; i < 600 && commits(&e) == before; i++) {
            if (i % 2 == 0) add_file(truth);
            usleep(50000);
        }
        for (int i = 0; i < 6; i++) add_file(truth);
        usleep(100000 + (useconds_t)(rand_r(&seed) % 1500) * 1000);
        th_engine_require_alive(&e, "by itself between kills");
        ASSERT_EQ(th_engine_signal_wait(&e, SIGKILL, 30), 128 + SIGKILL);
        th_engine_start(&e);
        th_engine_wait_started(&e, 60);
    }
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    finish(&e);
    fprintf(stderr, "%d input files, %d commits logged\n", nfiles, commits(&e));
    th_output_stats_t st = th_check_output(out, truth, 1);
    ASSERT_EQ(st.words, (long)th_counts_size(truth));
    ASSERT_EQ(st.duplicates, 0);
    th_counts_destroy(truth);
    return 0;
}

static int exactly_once(const char *fmt) {
    th_counts_t *truth = th_counts_new();
    /* Words a CSV writer must quote, and bytes that are not UTF-8 (written as U+FFFD). */
    static const char odd[] = "a,b \"q\" x\nline\rbreak\ncaf\xc3\xa9 \xff\xfe bad\xe2\x82\na,b";
    th_write_file(in, "odd.txt", odd, sizeof(odd) - 1);
    th_counts_add_line(truth, odd, sizeof(odd) - 1);
    th_write_file(in, "empty.txt", "", 0);
    th_write_file(in, ".hidden", "never counted\n", 14);

    th_engine_t e;
    th_engine_init_files(&e, th_unique("fsrc"), in, NULL);
    char extra[700];
    snprintf(extra, sizeof(extra), "sink=files\noutput.path=%s/out\noutput.format=%s\nworkers=2\nfiles.readers=3\n"
             "files.split.bytes=65536\nfiles.max.per.trigger=4\n", e.dir, fmt);
    th_engine_append_conf(&e, extra);

    crash_at(&e, "files_before_commit:2", "written by an epoch that never committed", truth);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGKILL, 30), 128 + SIGKILL);
    crash_at(&e, "after_files_commit:3", "recovering: output.path committed epoch", truth);
    for (int kills = 0; kills < KILLS; kills++) {
        /* Files arrive while epochs commit; the kill lands at a random point of one. */
        int before = commits(&e);
        for (int i = 0; i < 600 && commits(&e) == before; i++) {
            if (i % 2 == 0) add_file(truth);
            usleep(50000);
        }
        for (int i = 0; i < 6; i++) add_file(truth);
        usleep(100000 + (useconds_t)(rand_r(&seed) % 1500) * 1000);
        th_engine_require_alive(&e, "by itself between kills");
        ASSERT_EQ(th_engine_signal_wait(&e, SIGKILL, 30), 128 + SIGKILL);
        th_engine_start(&e);
        th_engine_wait_started(&e, 60);
    }
    for (int i = 0; i < 10; i++) add_file(truth);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    finish(&e);
    fprintf(stderr, "%d input files, %d commits logged\n", nfiles, commits(&e));
    ASSERT_EQ(count_lines(e.log, "changed after"), 0);

    /* Nothing new: the next run reads nothing and commits nothing. */
    int before = commits(&e);
    finish(&e);
    ASSERT_EQ(commits(&e), before);

    char out[600];
    snprintf(out, sizeof(out), "%s/out", e.dir);
    th_check_files(out, fmt, truth);
    th_counts_destroy(truth);
    return 0;
}

static void wait_log(th_engine_t *e, const char *pattern, double timeout_s) {
    double deadline = th_now() + timeout_s;
    while (th_system("grep -q '%s' %s", pattern, e->log) != 0) {
        if (th_now() > deadline || !th_engine_alive(e)) {
            th_engine_dump_log(e, 30);
            TH_FAIL("the log never said \"%s\"", pattern);
        }
        usleep(100000);
    }
}

static int bad_input(void) {
    th_counts_t *truth = th_counts_new();
    th_engine_t e;

    /* A missing input directory: exit 2 naming it, before anything is written. */
    th_engine_init_files(&e, th_unique("fbad"), "/nonexistent/tally-input", "sink=console\n");
    th_engine_start(&e);
    ASSERT_EQ(th_engine_wait(&e, 30), 2);
    ASSERT_EQ(th_system("grep -q 'input.path /nonexistent/tally-input: No such file or directory' %s", e.log), 0);

    th_engine_init_files(&e, th_unique("fbad"), in, NULL);
    char extra[900];
    snprintf(extra, sizeof(extra), "sink=files\noutput.path=%s/out\noutput.format=jsonl\nfiles.readers=1\n"
             "files.clean=archive\nfiles.archive.dir=%s/done\ntrigger.interval.ms=500\n", e.dir, e.dir);
    th_engine_append_conf(&e, extra);

    const char good[] = "one two two\nthree three three";
    th_write_file(in, "good.txt", good, sizeof(good) - 1);
    th_counts_add_line(truth, good, sizeof(good) - 1);
    th_write_file(in, "binary.dat", "ELF\0\1\2 words here\n", 19);
    /* 100 MB in one line, no newline at all: read through a 256 KiB buffer, every word counted. */
    {
        char path[400];
        snprintf(path, sizeof(path), "%s/.long.txt", in);
        FILE *f = fopen(path, "wb");
        ASSERT(f);
        const char unit[] = "alpha beta gamma delta ";
        long reps = (100L << 20) / (long)(sizeof(unit) - 1);
        for (long i = 0; i < reps; i++) fwrite(unit, 1, sizeof(unit) - 1, f);
        fclose(f);
        char to[400];
        snprintf(to, sizeof(to), "%s/long.txt", in);
        ASSERT_EQ(rename(path, to), 0);
        th_counts_add(truth, "alpha", 5, reps);
        th_counts_add(truth, "beta", 4, reps);
        th_counts_add(truth, "gamma", 5, reps);
        th_counts_add(truth, "delta", 5, reps);
    }
    const char doomed[] = "vanishing words\n", cut[] = "kept line\nlost line\n";
    th_write_file(in, "vanish.txt", doomed, sizeof(doomed) - 1);
    th_write_file(in, "trunc.txt", cut, sizeof(cut) - 1);
    th_counts_add_line(truth, "kept line\n", 10);
    const char locked[] = "locked words\n";
    th_write_file(in, "noperm.txt", locked, sizeof(locked) - 1);
    char path[400];
    snprintf(path, sizeof(path), "%s/noperm.txt", in);
    ASSERT_EQ(chmod(path, 0), 0);
    /* root reads any file: the engine runs as nobody then (setpriv), in directories it can use. */
    if (geteuid() == 0) {
        setenv("TH_ENGINE_SETPRIV", "1", 1);
        th_system("chmod 0777 %s %s", e.dir, in);
    }

    /* Paused after listing, before reading: one planned file goes, one shrinks. */
    setenv("TALLY_CRASH_AT", "hold_before_read", 1);
    th_engine_start(&e);
    unsetenv("TALLY_CRASH_AT");
    wait_log(&e, "hold point hold_before_read", 60);
    ASSERT_EQ(th_system("rm %s/vanish.txt && truncate -s 10 %s/trunc.txt", in, in), 0);
    wait_log(&e, "epoch 1 committed", 120);
    ASSERT_EQ(th_system("grep -q 'binary.dat holds NUL bytes' %s", e.log), 0);
    ASSERT_EQ(th_system("grep -q 'vanish.txt vanished before it was read' %s", e.log), 0);
    ASSERT_EQ(th_system("grep -q 'trunc.txt was truncated while read: 10 of 20 bytes counted' %s", e.log), 0);
    ASSERT_EQ(th_system("grep -q 'noperm.txt cannot be read (Permission denied): skipped until it can' %s", e.log), 0);

    /* Readable now: the next trigger counts it. */
    ASSERT_EQ(chmod(path, 0644), 0);
    th_counts_add_line(truth, locked, sizeof(locked) - 1);
    wait_log(&e, "epoch 2 committed", 60);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    unsetenv("TH_ENGINE_SETPRIV");

    /* files.clean=archive moved every file read (the binary one too) out of the input directory. */
    ASSERT_EQ(th_system("test -e %s/done/good.txt && test -e %s/done/long.txt && test -e %s/done/binary.dat && "
                        "test -e %s/done/noperm.txt && test -e %s/done/trunc.txt", e.dir, e.dir, e.dir, e.dir, e.dir), 0);
    ASSERT_EQ(th_system("test -z \"$(ls %s)\"", in), 0);
    char out[600];
    snprintf(out, sizeof(out), "%s/out", e.dir);
    th_check_files(out, "jsonl", truth);
    th_counts_destroy(truth);
    return 0;
}

/* Windows over files (event.time=processing): each epoch's lines take its processing time; append
 * mode writes each (window, word) once when the watermark (or window.close.idle.ms) closes it,
 * through a SIGKILL. Tumbling windows: a word's counts over its windows add up to its count. */
static int windows(void) {
    th_engine_t e;
    th_engine_init_files(&e, th_unique("filewin"), in, NULL);
    char extra[700];
    snprintf(extra, sizeof(extra), "sink=files\noutput.path=%s/out\noutput.format=csv\nwindow.size.ms=1000\n"
             "event.time=processing\nwatermark.delay.ms=0\nwindow.close.idle.ms=500\noutput.mode=append\nworkers=2\n",
             e.dir);
    th_engine_append_conf(&e, extra);
    th_counts_t *truth = th_counts_new();
    th_engine_start(&e);
    char out[600], truth_path[700];
    snprintf(out, sizeof(out), "%s/out", e.dir);
    snprintf(truth_path, sizeof(truth_path), "%s.truth.tsv", out);
    for (int f = 0; f < 6; f++) {
        char name[32], text[4096];
        size_t n = 0;
        for (int l = 0; l < 50; l++) {
            n += (size_t)snprintf(text + n, sizeof(text) - n, "w%d w%u x%d\n", f, (unsigned)(rand_r(&seed) % 7), l % 3);
        }
        snprintf(name, sizeof(name), "f%d.txt", f);
        th_counts_add_line(truth, text, n); /* a word per whitespace run, lines included */
        th_write_file(in, name, text, n);
        usleep(700 * 1000);
        if (f == 2) { /* files counted and committed by now or not: either way, exactly once */
            ASSERT_EQ(th_engine_signal_wait(&e, SIGKILL, 30), 128 + SIGKILL);
            th_engine_start(&e);
        }
    }
    th_counts_dump(truth, truth_path);
    const char *src = getenv("TALLY_SOURCE_DIR");
    double deadline = th_now() + 60;
    while (th_system("python3 %s/tests/check_files.py --windows %s csv %s 2>/dev/null", src, out, truth_path) != 0) {
        if (th_now() > deadline) break;
        th_engine_require_alive(&e, "while its windows closed");
        usleep(300 * 1000);
    }
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    ASSERT_EQ(th_system("python3 %s/tests/check_files.py --windows %s csv %s", src, out, truth_path), 0);
    th_counts_destroy(truth);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "jsonl";
    seed = (unsigned)getpid();
    snprintf(in, sizeof(in), "/tmp/tally-test-in-XXXXXX");
    if (!mkdtemp(in)) TH_FAIL("mkdtemp");
    if (strcmp(mode, "kafka") == 0) return into_kafka();
    if (strcmp(mode, "windows") == 0) return windows();
    return strcmp(mode, "bad") == 0 ? bad_input() : exactly_once(mode);
}
