/* SPDX-License-Identifier: MIT */
/* The runner of the unit tests written as a list of functions: RUN(fn) calls one and prints
 * "ok N fn"; RUN_SUMMARY(name) prints the count at the end. A failing test exits through the
 * harness's assertions, so a test that returns has passed. Also their random generator. */
#ifndef TALLY_TEST_UNIT_H
#define TALLY_TEST_UNIT_H

#include <stdint.h>
#include <stdio.h>

static int tests_run;

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        fn();                                                                                      \
        tests_run++;                                                                               \
        printf("ok %d %s\n", tests_run, #fn);                                                      \
    } while (0)

#define RUN_SUMMARY(name) printf("%s: %d tests passed\n", (name), tests_run)

/* splitmix64 (Steele, Lea, Flood): the random input of the unit tests, reproducible from the seed
 * each test keeps in *state. */
static inline uint64_t unit_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#endif
