/* SPDX-License-Identifier: MIT */
/* The Parquet writer (see include/tally/parquet.h). Values are kept per column already PLAIN-encoded
 * (little-endian int64s; 4-byte little-endian length + bytes for strings), so writing is cutting
 * that buffer into pages, compressing each and describing them in a Thrift compact footer. Field ids
 * below are those of parquet-format's parquet.thrift, named in a comment at each use. */
#include "tally/parquet.h"

#include <errno.h>
#include <limits.h>
#include <snappy-c.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#ifndef TALLY_VERSION
#define TALLY_VERSION "unknown"
#endif

/* ---- a growable byte buffer; a failed allocation sets oom and later appends are dropped ---- */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} pbuf_t;

static bool pb_reserve(pbuf_t *b, size_t more) {
    if (b->oom) return false;
    if (more <= b->cap - b->len) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void pb_put(pbuf_t *b, const void *s, size_t n) {
    if (n == 0 || !pb_reserve(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void pb_byte(pbuf_t *b, uint8_t c) { pb_put(b, &c, 1); }

/* Explicit little-endian, whatever the host's order. */
static void le32(uint8_t *o, uint32_t v) {
    for (int i = 0; i < 4; i++) o[i] = (uint8_t)(v >> (8 * i));
}
static void le64(uint8_t *o, uint64_t v) {
    for (int i = 0; i < 8; i++) o[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_le32(const uint8_t *s) {
    return (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
}
static int64_t get_le64(const uint8_t *s) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | s[i];
    return (int64_t)v;
}

/* ---- Thrift compact protocol, the subset the footer and page headers need ---- */

enum { TC_TRUE = 1, TC_FALSE = 2, TC_I16 = 4, TC_I32 = 5, TC_I64 = 6, TC_BINARY = 8, TC_LIST = 9, TC_STRUCT = 12 };

/* Field ids are written as a delta from the previous field of the same struct, so each open
 * struct remembers its last id. Our nesting is at most 7 deep. */
typedef struct {
    pbuf_t *b;
    int16_t last[16];
    int depth;
} tc_t;

static void tc_varint(tc_t *t, uint64_t v) {
    uint8_t o[10];
    int n = 0;
    while (v >= 0x80) {
        o[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    o[n++] = (uint8_t)v;
    pb_put(t->b, o, (size_t)n);
}
static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

static void tc_field(tc_t *t, int16_t id, uint8_t type) {
    int delta = id - t->last[t->depth];
    if (delta > 0 && delta <= 15) {
        pb_byte(t->b, (uint8_t)(delta << 4 | type));
    } else {
        pb_byte(t->b, type);
        tc_varint(t, zigzag(id));
    }
    t->last[t->depth] = id;
}
static void tc_i32(tc_t *t, int16_t id, int32_t v) {
    tc_field(t, id, TC_I32);
    tc_varint(t, zigzag(v));
}
static void tc_i64(tc_t *t, int16_t id, int64_t v) {
    tc_field(t, id, TC_I64);
    tc_varint(t, zigzag(v));
}
static void tc_i16(tc_t *t, int16_t id, int16_t v) {
    tc_field(t, id, TC_I16);
    tc_varint(t, zigzag(v));
}
static void tc_bool(tc_t *t, int16_t id, bool v) { tc_field(t, id, v ? TC_TRUE : TC_FALSE); } /* no body */
static void tc_raw_binary(tc_t *t, const void *s, size_t n) {
    tc_varint(t, n);
    pb_put(t->b, s, n);
}
static void tc_binary(tc_t *t, int16_t id, const void *s, size_t n) {
    tc_field(t, id, TC_BINARY);
    tc_raw_binary(t, s, n);
}
static void tc_list(tc_t *t, int16_t id, uint8_t elem, size_t n) {
    tc_field(t, id, TC_LIST);
    if (n < 15) {
        pb_byte(t->b, (uint8_t)(n << 4 | elem));
    } else {
        pb_byte(t->b, (uint8_t)(0xF0 | elem));
        tc_varint(t, n);
    }
}
/* A struct as a list element (no field header) or, with tc_struct, as a field. */
static void tc_begin(tc_t *t) { t->last[++t->depth] = 0; }
static void tc_struct(tc_t *t, int16_t id) {
    tc_field(t, id, TC_STRUCT);
    tc_begin(t);
}
static void tc_end(tc_t *t) {
    pb_byte(t->b, 0); /* stop */
    t->depth--;
}

/* ---- the writer ---- */

/* parquet.thrift's enums */
enum { PQ_INT64 = 2, PQ_BYTE_ARRAY = 6 };                    /* Type */
enum { PQ_UTF8 = 0, PQ_TIMESTAMP_MILLIS = 9 };               /* ConvertedType */
enum { PQ_PLAIN = 0, PQ_RLE = 3 };                           /* Encoding */
enum { PQ_UNCOMPRESSED = 0, PQ_SNAPPY = 1, PQ_ZSTD = 6 };     /* CompressionCodec */
enum { PQ_DATA_PAGE = 0 };                                   /* PageType */
enum { PQ_REQUIRED = 0 };                                    /* FieldRepetitionType */

typedef struct {
    char *name;
    tally_pq_type_t type;
    pbuf_t data; /* the PLAIN values */
    size_t count;
} col_t;

struct tally_pq_writer_s {
    col_t *cols;
    int ncols;
    tally_pq_codec_t codec;
    size_t page_size;
};

/* Min and max of some values: pointers into the column's data for strings. */
typedef struct {
    bool any;
    int64_t imin, imax;
    const uint8_t *smin, *smax;
    uint32_t lmin, lmax;
} minmax_t;

/* Unsigned byte-wise order, a prefix first: what parquet.thrift's TypeDefinedOrder means for
 * BYTE_ARRAY with a STRING annotation. */
static int bytes_cmp(const uint8_t *a, uint32_t al, const uint8_t *b, uint32_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

static void mm_add_int(minmax_t *m, int64_t v) {
    if (!m->any || v < m->imin) m->imin = v;
    if (!m->any || v > m->imax) m->imax = v;
    m->any = true;
}
static void mm_add_str(minmax_t *m, const uint8_t *s, uint32_t l) {
    if (!m->any || bytes_cmp(s, l, m->smin, m->lmin) < 0) m->smin = s, m->lmin = l;
    if (!m->any || bytes_cmp(s, l, m->smax, m->lmax) > 0) m->smax = s, m->lmax = l;
    m->any = true;
}
static void mm_merge(minmax_t *into, const minmax_t *m, bool is_str) {
    if (!m->any) return;
    if (is_str) {
        mm_add_str(into, m->smin, m->lmin);
        mm_add_str(into, m->smax, m->lmax);
    } else {
        mm_add_int(into, m->imin);
        mm_add_int(into, m->imax);
    }
}

/* Statistics (a struct field of id `id`). Both min_value/max_value (5/6) and, for INT64 only, the
 * deprecated min/max (2/1): the deprecated pair is defined by signed comparison, which is right for
 * INT64 and wrong for strings, so like parquet-mr we give it only where the order is signed (old
 * readers that know only 1/2 then still prune on the integer columns). */
static void write_stats(tc_t *t, int16_t id, const minmax_t *m, bool is_str) {
    uint8_t lo[8], hi[8];
    const uint8_t *minp = lo, *maxp = hi;
    size_t minl = 8, maxl = 8;
    if (is_str) {
        minp = m->smin, minl = m->lmin;
        maxp = m->smax, maxl = m->lmax;
    } else {
        le64(lo, (uint64_t)m->imin);
        le64(hi, (uint64_t)m->imax);
    }
    tc_struct(t, id);
    if (!is_str) {
        tc_binary(t, 1, maxp, maxl); /* max (deprecated) */
        tc_binary(t, 2, minp, minl); /* min (deprecated) */
    }
    tc_i64(t, 3, 0);             /* null_count: REQUIRED columns */
    tc_binary(t, 5, maxp, maxl); /* max_value */
    tc_binary(t, 6, minp, minl); /* min_value */
    tc_bool(t, 7, true);         /* is_max_value_exact: never truncated */
    tc_bool(t, 8, true);         /* is_min_value_exact */
    tc_end(t);
}

int tally_pq_codec_parse(const char *s, tally_pq_codec_t *out) {
    static const char *const names[] = {"none", "snappy", "zstd"};
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, names[i]) == 0) {
            *out = (tally_pq_codec_t)i;
            return 0;
        }
    return -1;
}

const char *tally_pq_codec_name(tally_pq_codec_t c) {
    switch (c) {
    case TALLY_PQ_NONE: return "none";
    case TALLY_PQ_SNAPPY: return "snappy";
    case TALLY_PQ_ZSTD: return "zstd";
    }
    return "?";
}

tally_pq_writer_t *tally_pq_writer_new(const tally_pq_column_t *cols, int ncols, tally_pq_codec_t codec,
                                       char *errstr, size_t n) {
    if (!cols || ncols < 1 || ncols > 1024) {
        snprintf(errstr, n, "parquet: %d columns (1..1024)", ncols);
        return NULL;
    }
    if (codec != TALLY_PQ_NONE && codec != TALLY_PQ_SNAPPY && codec != TALLY_PQ_ZSTD) {
        snprintf(errstr, n, "parquet: unknown codec %d", (int)codec);
        return NULL;
    }
    for (int i = 0; i < ncols; i++) {
        if (!cols[i].name || !cols[i].name[0]) {
            snprintf(errstr, n, "parquet: column %d has no name", i);
            return NULL;
        }
        if (cols[i].type != TALLY_PQ_STRING && cols[i].type != TALLY_PQ_INT64 &&
            cols[i].type != TALLY_PQ_TIMESTAMP_MILLIS) {
            snprintf(errstr, n, "parquet: column %s: unknown type %d", cols[i].name, (int)cols[i].type);
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(cols[i].name, cols[j].name) == 0) {
                snprintf(errstr, n, "parquet: column %s named twice", cols[i].name);
                return NULL;
            }
    }
    tally_pq_writer_t *w = calloc(1, sizeof(*w));
    if (w) w->cols = calloc((size_t)ncols, sizeof(col_t));
    if (!w || !w->cols) goto oom;
    w->ncols = ncols;
    w->codec = codec;
    w->page_size = TALLY_PQ_PAGE_SIZE;
    for (int i = 0; i < ncols; i++) {
        w->cols[i].type = cols[i].type;
        if (!(w->cols[i].name = strdup(cols[i].name))) goto oom;
    }
    return w;
oom:
    tally_pq_writer_free(w);
    snprintf(errstr, n, "parquet: out of memory");
    return NULL;
}

void tally_pq_writer_free(tally_pq_writer_t *w) {
    if (!w) return;
    for (int i = 0; w->cols && i < w->ncols; i++) {
        free(w->cols[i].name);
        free(w->cols[i].data.p);
    }
    free(w->cols);
    free(w);
}

void tally_pq_set_page_size(tally_pq_writer_t *w, size_t bytes) {
    w->page_size = bytes < 1 ? 1 : bytes > (1u << 30) ? (1u << 30) : bytes;
}

int tally_pq_add_string(tally_pq_writer_t *w, int col, const uint8_t *s, uint32_t len) {
    if (col < 0 || col >= w->ncols || w->cols[col].type != TALLY_PQ_STRING || len > TALLY_PQ_MAX_STRING ||
        (!s && len)) {
        errno = EINVAL;
        return -1;
    }
    col_t *c = &w->cols[col];
    if (!pb_reserve(&c->data, 4 + (size_t)len)) {
        c->data.oom = false; /* nothing was appended: the column stays usable */
        errno = ENOMEM;
        return -1;
    }
    le32(c->data.p + c->data.len, len);
    if (len) memcpy(c->data.p + c->data.len + 4, s, len);
    c->data.len += 4 + (size_t)len;
    c->count++;
    return 0;
}

int tally_pq_add_int64(tally_pq_writer_t *w, int col, int64_t v) {
    if (col < 0 || col >= w->ncols || w->cols[col].type == TALLY_PQ_STRING) {
        errno = EINVAL;
        return -1;
    }
    col_t *c = &w->cols[col];
    if (!pb_reserve(&c->data, 8)) {
        c->data.oom = false;
        errno = ENOMEM;
        return -1;
    }
    le64(c->data.p + c->data.len, (uint64_t)v);
    c->data.len += 8;
    c->count++;
    return 0;
}

size_t tally_pq_rows(const tally_pq_writer_t *w) {
    size_t rows = w->cols[0].count;
    for (int i = 1; i < w->ncols; i++)
        if (w->cols[i].count < rows) rows = w->cols[i].count;
    return rows;
}

/* What the footer says of one column chunk. */
typedef struct {
    int64_t data_page_offset, uncompressed, compressed; /* sizes with the page headers */
    minmax_t mm;
} chunk_t;

typedef struct {
    int fd;
    int64_t off; /* the file offset of the next byte */
    pbuf_t hdr, zbuf;
    ZSTD_CCtx *zctx;
} out_t;

static int write_all(out_t *o, const void *p, size_t n) {
    const uint8_t *s = p;
    while (n > 0) {
        ssize_t k = write(o->fd, s, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        s += k;
        n -= (size_t)k;
        o->off += k;
    }
    return 0;
}

/* Compresses raw into o->zbuf (or points at raw for no codec); -1 with errno. */
static int compress_page(out_t *o, tally_pq_codec_t codec, const uint8_t *raw, size_t n, const uint8_t **z,
                         size_t *zn) {
    if (codec == TALLY_PQ_NONE) {
        *z = raw;
        *zn = n;
        return 0;
    }
    size_t cap = codec == TALLY_PQ_SNAPPY ? snappy_max_compressed_length(n) : ZSTD_compressBound(n);
    o->zbuf.len = 0;
    if (!pb_reserve(&o->zbuf, cap)) {
        errno = ENOMEM;
        return -1;
    }
    if (codec == TALLY_PQ_SNAPPY) {
        size_t len = cap;
        if (snappy_compress((const char *)raw, n, (char *)o->zbuf.p, &len) != SNAPPY_OK) {
            errno = EIO;
            return -1;
        }
        *zn = len;
    } else {
        if (!o->zctx && !(o->zctx = ZSTD_createCCtx())) {
            errno = ENOMEM;
            return -1;
        }
        size_t r = ZSTD_compressCCtx(o->zctx, o->zbuf.p, cap, raw, n, ZSTD_CLEVEL_DEFAULT);
        if (ZSTD_isError(r)) {
            errno = EIO;
            return -1;
        }
        *zn = r;
    }
    *z = o->zbuf.p;
    return 0;
}

/* One data page v1 of `nvals` values at raw[0..n): PageHeader (with the page's statistics), then
 * the compressed values. REQUIRED flat columns have no repetition or definition levels, so the
 * page body is the values alone; the level encodings are still required fields (RLE). */
static int write_page(out_t *o, tally_pq_codec_t codec, const uint8_t *raw, size_t n, size_t nvals,
                      const minmax_t *mm, bool is_str, chunk_t *ch) {
    const uint8_t *z;
    size_t zn;
    if (compress_page(o, codec, raw, n, &z, &zn) != 0) return -1;
    if (zn > INT32_MAX) {
        errno = EFBIG;
        return -1;
    }
    o->hdr.len = 0;
    tc_t t = {.b = &o->hdr};
    tc_i32(&t, 1, PQ_DATA_PAGE);       /* type */
    tc_i32(&t, 2, (int32_t)n);         /* uncompressed_page_size */
    tc_i32(&t, 3, (int32_t)zn);        /* compressed_page_size */
    tc_struct(&t, 5);                  /* data_page_header */
    tc_i32(&t, 1, (int32_t)nvals);     /* num_values */
    tc_i32(&t, 2, PQ_PLAIN);           /* encoding */
    tc_i32(&t, 3, PQ_RLE);             /* definition_level_encoding */
    tc_i32(&t, 4, PQ_RLE);             /* repetition_level_encoding */
    write_stats(&t, 5, mm, is_str);    /* statistics */
    tc_end(&t);
    pb_byte(t.b, 0); /* PageHeader's stop */
    if (o->hdr.oom) {
        errno = ENOMEM;
        return -1;
    }
    if (write_all(o, o->hdr.p, o->hdr.len) != 0 || write_all(o, z, zn) != 0) return -1;
    ch->uncompressed += (int64_t)(o->hdr.len + n);
    ch->compressed += (int64_t)(o->hdr.len + zn);
    return 0;
}

/* The column's values cut into pages of at most page_size bytes (one longer value alone). */
static int write_chunk(out_t *o, const tally_pq_writer_t *w, const col_t *c, size_t rows, chunk_t *ch) {
    bool is_str = c->type == TALLY_PQ_STRING;
    const uint8_t *d = c->data.p;
    size_t pos = 0, start = 0, nvals = 0;
    minmax_t page = {0};
    ch->data_page_offset = o->off;
    for (size_t i = 0; i < rows; i++) {
        size_t vlen = is_str ? 4 + (size_t)get_le32(d + pos) : 8;
        if (nvals > 0 && pos - start + vlen > w->page_size) {
            if (write_page(o, w->codec, d + start, pos - start, nvals, &page, is_str, ch) != 0) return -1;
            mm_merge(&ch->mm, &page, is_str);
            memset(&page, 0, sizeof(page));
            start = pos;
            nvals = 0;
        }
        if (is_str) mm_add_str(&page, d + pos + 4, (uint32_t)(vlen - 4));
        else mm_add_int(&page, get_le64(d + pos));
        pos += vlen;
        nvals++;
    }
    if (nvals > 0) {
        if (write_page(o, w->codec, d + start, pos - start, nvals, &page, is_str, ch) != 0) return -1;
        mm_merge(&ch->mm, &page, is_str);
    }
    return 0;
}

static void write_schema_element(tc_t *t, const col_t *c) {
    tc_begin(t);
    tc_i32(t, 1, c->type == TALLY_PQ_STRING ? PQ_BYTE_ARRAY : PQ_INT64); /* type */
    tc_i32(t, 3, PQ_REQUIRED);                                           /* repetition_type */
    tc_binary(t, 4, c->name, strlen(c->name));                           /* name */
    if (c->type == TALLY_PQ_STRING) {
        tc_i32(t, 6, PQ_UTF8); /* converted_type */
        tc_struct(t, 10);      /* logicalType */
        tc_struct(t, 1);       /* STRING: StringType {} */
        tc_end(t);
        tc_end(t);
    } else if (c->type == TALLY_PQ_TIMESTAMP_MILLIS) {
        tc_i32(t, 6, PQ_TIMESTAMP_MILLIS); /* converted_type */
        tc_struct(t, 10);                  /* logicalType */
        tc_struct(t, 8);                   /* TIMESTAMP: TimestampType */
        tc_bool(t, 1, true);               /* isAdjustedToUTC: epoch milliseconds are UTC instants */
        tc_struct(t, 2);                   /* unit: TimeUnit */
        tc_struct(t, 1);                   /* MILLIS: MilliSeconds {} */
        tc_end(t);
        tc_end(t);
        tc_end(t);
        tc_end(t);
    }
    tc_end(t);
}

/* FileMetaData. With no rows there is no row group (what parquet-mr writes for an empty file). */
static void write_footer(pbuf_t *b, const tally_pq_writer_t *w, size_t rows, const chunk_t *ch) {
    static const char created_by[] = "tally version " TALLY_VERSION;
    tc_t t = {.b = b};
    int64_t uncompressed = 0, compressed = 0;
    for (int i = 0; rows && i < w->ncols; i++) {
        uncompressed += ch[i].uncompressed;
        compressed += ch[i].compressed;
    }
    tc_i32(&t, 1, 1);                              /* version */
    tc_list(&t, 2, TC_STRUCT, (size_t)w->ncols + 1); /* schema: the root, then the leaves */
    tc_begin(&t);
    tc_binary(&t, 4, "schema", 6);                 /* name */
    tc_i32(&t, 5, w->ncols);                       /* num_children */
    tc_end(&t);
    for (int i = 0; i < w->ncols; i++) write_schema_element(&t, &w->cols[i]);
    tc_i64(&t, 3, (int64_t)rows);                  /* num_rows */
    tc_list(&t, 4, TC_STRUCT, rows ? 1 : 0);       /* row_groups */
    if (rows) {
        tc_begin(&t);
        tc_list(&t, 1, TC_STRUCT, (size_t)w->ncols); /* columns */
        for (int i = 0; i < w->ncols; i++) {
            const col_t *c = &w->cols[i];
            bool is_str = c->type == TALLY_PQ_STRING;
            tc_begin(&t);
            /* file_offset: deprecated; parquet-mr puts the first page's offset here, so we do too */
            tc_i64(&t, 2, ch[i].data_page_offset);
            tc_struct(&t, 3);                                  /* meta_data: ColumnMetaData */
            tc_i32(&t, 1, is_str ? PQ_BYTE_ARRAY : PQ_INT64);  /* type */
            tc_list(&t, 2, TC_I32, 2);                         /* encodings */
            tc_varint(&t, zigzag(PQ_PLAIN));
            tc_varint(&t, zigzag(PQ_RLE));
            tc_list(&t, 3, TC_BINARY, 1);                      /* path_in_schema */
            tc_raw_binary(&t, c->name, strlen(c->name));
            tc_i32(&t, 4, w->codec == TALLY_PQ_SNAPPY ? PQ_SNAPPY
                          : w->codec == TALLY_PQ_ZSTD ? PQ_ZSTD : PQ_UNCOMPRESSED); /* codec */
            tc_i64(&t, 5, (int64_t)rows);                      /* num_values */
            tc_i64(&t, 6, ch[i].uncompressed);                 /* total_uncompressed_size */
            tc_i64(&t, 7, ch[i].compressed);                   /* total_compressed_size */
            tc_i64(&t, 9, ch[i].data_page_offset);             /* data_page_offset */
            write_stats(&t, 12, &ch[i].mm, is_str);            /* statistics */
            tc_end(&t);
            tc_end(&t);
        }
        tc_i64(&t, 2, uncompressed);                   /* total_byte_size */
        tc_i64(&t, 3, (int64_t)rows);                  /* num_rows */
        tc_i64(&t, 5, ch[0].data_page_offset);         /* file_offset */
        tc_i64(&t, 6, compressed);                     /* total_compressed_size */
        tc_i16(&t, 7, 0);                              /* ordinal */
        tc_end(&t);
    }
    tc_binary(&t, 6, created_by, sizeof(created_by) - 1); /* created_by */
    /* column_orders: TypeDefinedOrder for each column; without it readers must not trust the
     * min/max of strings (their order was once signed bytes). */
    tc_list(&t, 7, TC_STRUCT, (size_t)w->ncols);
    for (int i = 0; i < w->ncols; i++) {
        tc_begin(&t);
        tc_struct(&t, 1); /* TYPE_ORDER */
        tc_end(&t);
        tc_end(&t);
    }
    pb_byte(b, 0); /* FileMetaData's stop */
}

int tally_pq_write(tally_pq_writer_t *w, int fd, char *errstr, size_t n) {
    size_t rows = tally_pq_rows(w);
    int lo = 0, hi = 0;
    for (int i = 1; i < w->ncols; i++) {
        if (w->cols[i].count < w->cols[lo].count) lo = i;
        if (w->cols[i].count > w->cols[hi].count) hi = i;
    }
    if (w->cols[lo].count != w->cols[hi].count) {
        snprintf(errstr, n, "parquet: incomplete row: column %s has %zu values, %s has %zu", w->cols[lo].name,
                 w->cols[lo].count, w->cols[hi].name, w->cols[hi].count);
        errno = EINVAL;
        return -1;
    }
    out_t o = {.fd = fd}; /* offsets count from the magic, wherever fd stands (a pipe too) */
    chunk_t *ch = calloc((size_t)w->ncols, sizeof(*ch));
    pbuf_t footer = {0};
    int rc = -1;
    if (!ch) {
        errno = ENOMEM;
        goto out;
    }
    if (write_all(&o, "PAR1", 4) != 0) goto out;
    for (int i = 0; rows && i < w->ncols; i++)
        if (write_chunk(&o, w, &w->cols[i], rows, &ch[i]) != 0) goto out;
    write_footer(&footer, w, rows, ch);
    if (footer.oom || footer.len > UINT32_MAX) {
        errno = footer.oom ? ENOMEM : EFBIG;
        goto out;
    }
    uint8_t tail[8];
    le32(tail, (uint32_t)footer.len);
    memcpy(tail + 4, "PAR1", 4);
    if (write_all(&o, footer.p, footer.len) != 0 || write_all(&o, tail, 8) != 0) goto out;
    rc = 0;
out:
    if (rc != 0) snprintf(errstr, n, "parquet: write: %s", strerror(errno));
    free(ch);
    free(footer.p);
    free(o.hdr.p);
    free(o.zbuf.p);
    ZSTD_freeCCtx(o.zctx);
    return rc;
}
