/* SPDX-License-Identifier: MIT */
/* alloc: see alloc.h. With -DTALLY_MIMALLOC the binary links libmimalloc, whose malloc() and free()
 * replace glibc's for the whole process (librdkafka and RocksDB included). mimalloc's options keep
 * their defaults (MIMALLOC_* variables set them): a longer delay before it returns freed pages to the
 * kernel made it faster and put peak RSS at 10^6 words 20-33 MiB above glibc's (bench/RESULTS.md). */
#include "tally/alloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef TALLY_MIMALLOC
#include <mimalloc.h>
#endif

const char *tally_alloc_describe(char *buf, size_t n) {
#ifdef TALLY_MIMALLOC
    bool redirected = false;
    void *p = calloc(1, 64); /* calloc: gcc takes a const pointer argument for a read of the memory */
    if (p) {
        redirected = mi_is_in_heap_region(p);
        free(p);
    }
    int v = mi_version();
    snprintf(buf, n, "mimalloc %d.%d.%d%s", v / 100, v / 10 % 10, v % 10,
             redirected ? "" : " (linked, but malloc() is not mimalloc's)");
#else
    snprintf(buf, n, "glibc malloc");
#endif
    return buf;
}
