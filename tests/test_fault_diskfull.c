/* SPDX-License-Identifier: MIT */
/* State disk full: state.dir on a small tmpfs that fills up. The engine stops with a clear error
 * before the next Kafka commit (it checks the room before committing, since a failed state write
 * after the commit would need the replay, and RocksDB 7.8 aborts on a full disk); once space is
 * freed a restart goes on and the counts are exact. Needs root (mount). */
#include <signal.h>
#include <unistd.h>

#include "harness.h"

int main(void) {
    th_bootstrap();
    const char *dir = th_tmpfs("64m");
    if (!dir) return TH_SKIP;
    const char *in = th_unique("full-in"), *out = th_unique("full-out"), *app = th_unique("full");
    th_create_topic(in, 2);
    th_create_topic(out, 2);
    th_counts_t *truth = th_counts_new();
    char extra[256];
    snprintf(extra, sizeof(extra), "state.dir=%s/state\n", dir);
    th_engine_t e;
    th_engine_init(&e, app, in, out, extra);
    th_engine_start(&e);
    th_produce_words(in, 5000, 1, 1000, truth);
    th_wait_committed(app, in, 60, &e);

    /* Fill the disk, then send words that must be written. */
    th_system("dd if=/dev/zero of=%s/filler bs=64k >/dev/null 2>&1", dir);
    int st = -1;
    for (int wave = 0; wave < 60 && (st = th_engine_wait(&e, 0.5)) < 0; wave++)
        th_produce_words(in, 20000, 1000 + (unsigned long long)wave, 2000000, truth);
    if (st != 1) th_engine_dump_log(&e, 20);
    ASSERT_EQ(st, 1);
    ASSERT_EQ(th_system("grep -q 'MB free, less than the .* stopping before committing it' %s", e.log), 0);

    ASSERT_EQ(th_system("rm -f %s/filler", dir), 0);
    th_engine_start(&e);
    th_wait_committed(app, in, 180, &e);
    ASSERT_EQ(th_engine_signal_wait(&e, SIGTERM, 60), 0);
    th_output_stats_t s = th_check_output(out, truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(truth));
    th_tmpfs_unmount();
    th_counts_destroy(truth);
    return 0;
}
