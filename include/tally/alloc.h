/* SPDX-License-Identifier: MIT */
/* alloc: the allocator the tally binary runs on (glibc's malloc, or mimalloc with -Dallocator=mimalloc).
 * Only the binary links it (src/alloc.c is not in libtally), so the unit tests and valgrind keep
 * glibc's malloc. docs/design.md, "The allocator", says why and what it measured. */
#ifndef TALLY_ALLOC_H
#define TALLY_ALLOC_H

#include <stddef.h>

/* "mimalloc 2.0.9" or "glibc malloc" into buf; says so when mimalloc is linked but malloc() is not
 * its (another library loaded first). Returns buf. */
const char *tally_alloc_describe(char *buf, size_t n);

#endif
