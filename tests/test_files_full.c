/* SPDX-License-Identifier: MIT */
/* The file sink's disk full (Parquet, zstd): output.path on a small tmpfs that fills up. The engine
 * stops with status 1 and a message naming the file and the epoch that is not committed; what was
 * committed stays readable and whole (no part file outside a commit), and once space is freed a
 * restart goes on with exact counts. Needs root (mount).
 *   test_files_full [files]: from Kafka, or (files) from a directory of input files. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"

/* Input files of generated lines "f<k> ...", added to truth. */
static void add_files(const char *in, int n, int lines, int vocab, th_counts_t *truth) {
    static int seq;
    unsigned seed = 7;
    for (int i = 0; i < n; i++, seq++) {
        size_t cap = (size_t)lines * 120, len = 0;
        char *text = malloc(cap), name[32];
        ASSERT(text);
        for (int l = 0; l < lines; l++) {
            for (int w = 0; w < 8; w++) len += (size_t)snprintf(text + len, cap - len, "f%d ", rand_r(&seed) % vocab + seq);
            text[len++] = '\n';
        }
        th_counts_add_line(truth, text, len);
        snprintf(name, sizeof(name), "in-%04d.txt", seq);
        th_write_file(in, name, text, len);
        free(text);
    }
}

/* The same from input.path: the files that arrive after the disk filled are counted after the restart. */
static int from_files(const char *dir) {
    char in[300], out[128], extra[512];
    snprintf(in, sizeof(in), "/tmp/tally-test-in-XXXXXX");
    if (!mkdtemp(in)) TH_FAIL("mkdtemp");
    snprintf(out, sizeof(out), "%s/out", dir);
    th_counts_t *truth = th_counts_new();
    snprintf(extra, sizeof(extra), "sink=files\noutput.path=%s\noutput.format=parquet\noutput.parquet.compression=zstd\n"
             "files.max.per.trigger=2\n", out);
    th_engine_t e;
    th_engine_init_files(&e, th_unique("outfullf"), in, extra);
    add_files(in, 2, 2000, 1000, truth);
    th_engine_start(&e);
    for (int i = 0; i < 300 && th_system("grep -q 'epoch 1 committed' %s", e.log) != 0; i++) usleep(100000);
    ASSERT_EQ(th_system("grep -q 'epoch 1 committed' %s", e.log), 0);

    th_system("dd if=/dev/zero of=%s/filler bs=4k >/dev/null 2>&1", dir);
    int st = -1;
    for (int wave = 0; wave < 60 && (st = th_engine_wait(&e, 0.5)) < 0; wave++) add_files(in, 1, 3000, 2000000, truth);
    if (st != 1) th_engine_dump_log(&e, 20);
    ASSERT_EQ(st, 1);
    ASSERT_EQ(th_system("grep -q 'cannot write .*No space left on device; epoch [0-9]* is not committed' %s", e.log), 0);

    ASSERT_EQ(th_system("rm -f %s/filler", dir), 0);
    th_engine_append_conf(&e, "trigger.available.now=true\n");
    th_engine_start(&e);
    ASSERT_EQ(th_engine_wait(&e, 180), 0);
    th_check_files(out, "parquet", truth);
    th_tmpfs_unmount();
    th_counts_destroy(truth);
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = th_tmpfs("4m");
    if (!dir) return TH_SKIP;
    if (argc > 1 && strcmp(argv[1], "files") == 0) return from_files(dir);
    th_bootstrap();
    const char *in = th_unique("outfull-in"), *app = th_unique("outfull");
    th_create_topic(in, 2);
    th_counts_t *truth = th_counts_new();
    char extra[256], out[128];
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(extra, sizeof(extra), "sink=files\noutput.path=%s\noutput.format=parquet\noutput.parquet.compression=zstd\n", out);
    th_engine_t e;
    th_engine_init(&e, app, in, NULL, extra);
    th_engine_start(&e);
    th_produce_words(in, 5000, 1, 1000, truth);
    th_wait_committed(app, in, 60, &e);

    /* Fill the disk, then send words that must be written. */
    th_system("dd if=/dev/zero of=%s/filler bs=4k >/dev/null 2>&1", dir);
    int st = -1;
    for (int wave = 0; wave < 60 && (st = th_engine_wait(&e, 0.5)) < 0; wave++)
        th_produce_words(in, 2000, 1000 + (unsigned long long)wave, 2000000, truth);
    if (st != 1) th_engine_dump_log(&e, 20);
    ASSERT_EQ(st, 1);
    ASSERT_EQ(th_system("grep -q 'cannot write .*No space left on device; epoch [0-9]* is not committed' %s", e.log), 0);

    ASSERT_EQ(th_system("rm -f %s/filler", dir), 0);
    th_engine_start(&e);
    th_wait_committed(app, in, 180, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    th_check_files(out, "parquet", truth);
    th_tmpfs_unmount();
    th_counts_destroy(truth);
    return 0;
}
