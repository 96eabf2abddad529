/* SPDX-License-Identifier: MIT */
/* Runs a fuzz target's LLVMFuzzerTestOneInput over every file of the corpus directories (or files)
 * named on the command line, in name order, without libFuzzer: the corpora become regression tests
 * under any compiler and sanitizer. No input at all is a failure, so nothing passes by not running. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* Reads a whole file; the buffer is never NULL, even for an empty file. Caller frees. */
static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_regress: cannot read %s: %s\n", path, strerror(errno));
        exit(1);
    }
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fprintf(stderr, "fuzz_regress: out of memory reading %s\n", path);
            exit(1);
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    if (ferror(f)) {
        fprintf(stderr, "fuzz_regress: error reading %s\n", path);
        exit(1);
    }
    fclose(f);
    *len = n;
    return buf;
}

static void run_file(const char *path) {
    size_t len;
    uint8_t *data = read_all(path, &len);
    /* Exactly len bytes on the heap, as libFuzzer hands them, so an over-read is caught. */
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) exit(1);
    memcpy(copy, data, len);
    free(data);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
}

int main(int argc, char **argv) {
    long inputs = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (int a = 1; a < argc; a++) {
        struct stat st;
        if (stat(argv[a], &st) != 0) {
            fprintf(stderr, "fuzz_regress: %s: %s\n", argv[a], strerror(errno));
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            run_file(argv[a]);
            inputs++;
            continue;
        }
        struct dirent **names;
        int n = scandir(argv[a], &names, NULL, alphasort);
        if (n < 0) {
            fprintf(stderr, "fuzz_regress: %s: %s\n", argv[a], strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[a], names[i]->d_name);
            if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                run_file(path);
                inputs++;
            }
            free(names[i]);
        }
        free(names);
    }
    printf("fuzz_regress: %ld inputs passed\n", inputs);
    if (inputs == 0) {
        fprintf(stderr, "fuzz_regress: no input found: an empty corpus tests nothing\n");
        return 1;
    }
    return 0;
}
