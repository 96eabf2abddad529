/* SPDX-License-Identifier: MIT */
/* The file sink's disk full (Parquet, zstd): output.path on a small tmpfs that fills up. The engine
 * stops with status 1 and a message naming the file and the epoch that is not committed; what was
 * committed stays readable and whole (no part file outside a commit), and once space is freed a
 * restart goes on with exact counts. Needs root (mount). */
#include <signal.h>
#include <unistd.h>

#include "harness.h"

int main(void) {
    th_bootstrap();
    const char *dir = th_tmpfs("4m");
    if (!dir) return TH_SKIP;
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
