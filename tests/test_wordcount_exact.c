/* SPDX-License-Identifier: MIT */
/* Exact counts end to end on the real broker: a few hundred thousand lines with empty lines, tabs,
 * UTF-8, invalid UTF-8, JSON specials, control bytes, nulls and tombstones across 4 partitions; the
 * committed output is compared with counts this test computes on its own. */
#include <signal.h>

#include "harness.h"

static unsigned long long rng = 88172645463325252ULL;
static unsigned long long next_rand(void) { return th_xorshift(&rng); }

static const char *const specials[] = {
    "Hello", "hello", "World!", "cat", "dog", "\"quoted\"", "back\\slash", "tab\tinside", "caf\xc3\xa9",
    "\xe6\x97\xa5\xe6\x9c\xac", "emoji\xf0\x9f\x98\x80", "bad\xff", "\xc3", "trunc\xe2\x82", "\xed\xa0\x80surrogate",
    "ctl\x01\x02", "nul\0byte", "{\"json\":1}", "</script>", "\xef\xbb\xbf" "bom", "\x7f" "del",
};

int main(void) {
    th_bootstrap();
    const char *in = th_unique("exact-in"), *out = th_unique("exact-out"), *app = th_unique("exact");
    th_create_topic(in, 4);
    th_create_topic(out, 4);

    th_counts_t *truth = th_counts_new();
    rd_kafka_t *p = th_producer();
    enum { LINES = 300000 };
    char line[512];
    long produced = 0;
    for (int i = 0; i < LINES; i++) {
        size_t n = 0;
        unsigned kind = (unsigned)(next_rand() % 100);
        if (kind == 0) { /* empty line */
        } else if (kind == 1) {
            memcpy(line, " \t \r\n\v\f ", 8); /* whitespace only */
            n = 8;
        } else {
            int words = (int)(next_rand() % 12);
            for (int w = 0; w < words; w++) {
                const char *sep = (next_rand() % 5) ? " " : "\t";
                if (n) line[n++] = sep[0];
                if (next_rand() % 10 == 0) {
                    size_t k = next_rand() % (sizeof(specials) / sizeof(specials[0]));
                    const char *s = specials[k];
                    size_t sl = strcmp(s, "nul") == 0 ? 8 : strlen(s);
                    if (strncmp(s, "nul", 3) == 0) sl = 8;
                    memcpy(line + n, s, sl);
                    n += sl;
                } else {
                    n += (size_t)snprintf(line + n, sizeof(line) - n, "w%llu", next_rand() % 5000);
                }
            }
        }
        th_counts_add_line(truth, line, n);
        th_produce(p, in, -1, NULL, 0, line, n);
        produced++;
        if (i % 50000 == 0) { /* a null value and a tombstone with a key count nothing */
            th_produce(p, in, -1, NULL, 0, NULL, 0);
            th_produce(p, in, -1, "k", 1, NULL, 0);
        }
    }
    th_flush_destroy(p);
    fprintf(stderr, "produced %ld lines, %zu distinct words\n", produced, th_counts_size(truth));

    th_engine_t e;
    th_engine_init(&e, app, in, out, "workers=2\n");
    th_engine_start(&e);
    th_wait_committed(app, in, 240, &e);
    int st = th_engine_signal_wait(&e, SIGTERM, 60);
    if (st != 0) th_engine_dump_log(&e, 40);
    ASSERT_EQ(st, 0);

    th_output_stats_t s = th_check_output(out, truth, 1);
    ASSERT_EQ(s.words, (long)th_counts_size(truth));
    ASSERT_EQ(s.duplicates, 0);
    th_counts_destroy(truth);
    return 0;
}
