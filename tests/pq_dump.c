/* SPDX-License-Identifier: MIT */
/* pq_dump FILE...: every row of tally's Parquet part files as one JSON line each
 * ({"word":...,"count":...,"epoch":...}, string columns JSON-escaped, integers as they are), through
 * the strict test reader (pq_read.h), for tests/check_files.py. Exit 1 with the reason on a file it
 * cannot read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pq_read.h"
#include "tally/json.h"

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

int main(int argc, char **argv) {
    for (int a = 1; a < argc; a++) {
        size_t len;
        uint8_t *data = slurp(argv[a], &len);
        if (!data) {
            fprintf(stderr, "pq_dump: cannot read %s\n", argv[a]);
            return 1;
        }
        pq_file_t f;
        char err[512];
        if (pq_read(data, len, &f, err, sizeof(err)) != 0) {
            fprintf(stderr, "pq_dump: %s: %s\n", argv[a], err);
            return 1;
        }
        char *esc = NULL;
        for (int64_t r = 0; r < f.num_rows; r++) {
            putchar('{');
            for (int c = 0; c < f.ncols; c++) {
                const pq_col_t *col = &f.cols[c];
                printf("%s\"%s\":", c ? "," : "", col->name);
                if (col->phys == PQR_BYTE_ARRAY) {
                    size_t n;
                    const uint8_t *s = pq_str(col, (size_t)r, &n);
                    esc = realloc(esc, n * 6 + 1);
                    if (!esc) return 1;
                    size_t k = tally_json_escape(esc, s, n);
                    printf("\"%.*s\"", (int)k, esc);
                } else {
                    printf("%lld", (long long)col->ints[r]);
                }
            }
            puts("}");
        }
        free(esc);
        pq_free(&f);
        free(data);
    }
    return 0;
}
