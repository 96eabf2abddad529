/* SPDX-License-Identifier: MIT */
/* The test reader of Parquet files (see pq_read.h). Thrift values decode into a small tree first;
 * the footer and page headers are then read from the tree by field id. */
#include "pq_read.h"

#include <snappy-c.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* ---- Thrift compact decoder ---- */

enum { T_TRUE = 1, T_FALSE = 2, T_BYTE = 3, T_I16 = 4, T_I32 = 5, T_I64 = 6, T_DOUBLE = 7, T_BINARY = 8,
       T_LIST = 9, T_SET = 10, T_STRUCT = 12 };

typedef struct tv_s {
    uint8_t type; /* T_*; a bool is T_TRUE with i = 0 or 1 */
    int16_t id;   /* the field id, inside a struct */
    int64_t i;
    const uint8_t *bin;
    uint32_t len;
    uint8_t elem;       /* a list's element type */
    int n;              /* list elements or struct fields */
    struct tv_s *kids;
} tv_t;

typedef struct {
    const uint8_t *p;
    size_t n, pos;
    char *err;
    size_t errn;
    bool failed;
} rd_t;

static int fail(rd_t *r, const char *fmt, ...) {
    if (!r->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errn, fmt, ap);
        va_end(ap);
        r->failed = true;
    }
    return -1;
}

static void tv_free(tv_t *v) {
    for (int i = 0; i < v->n; i++) tv_free(&v->kids[i]);
    free(v->kids);
    v->kids = NULL;
    v->n = 0;
}

static int rd_varint(rd_t *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->pos >= r->n) return fail(r, "thrift: varint runs past the end at %zu", r->pos);
        uint8_t b = r->p[r->pos++];
        if (shift == 63 && b > 1) return fail(r, "thrift: varint over 64 bits");
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return fail(r, "thrift: varint too long");
}

static int rd_zz(rd_t *r, int64_t *out, int64_t lo, int64_t hi) {
    uint64_t u;
    if (rd_varint(r, &u)) return -1;
    int64_t v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    if (v < lo || v > hi) return fail(r, "thrift: integer %lld out of range", (long long)v);
    *out = v;
    return 0;
}

static tv_t *add_kid(rd_t *r, tv_t *v) {
    if (v->n % 16 == 0) {
        tv_t *k = realloc(v->kids, (size_t)(v->n + 16) * sizeof(*k));
        if (!k) {
            fail(r, "out of memory");
            return NULL;
        }
        v->kids = k;
    }
    tv_t *k = &v->kids[v->n++];
    memset(k, 0, sizeof(*k));
    return k;
}

static int rd_value(rd_t *r, uint8_t type, tv_t *v, int depth, bool in_list);

static int rd_struct(rd_t *r, tv_t *v, int depth) {
    v->type = T_STRUCT;
    int16_t last = 0;
    for (;;) {
        if (r->pos >= r->n) return fail(r, "thrift: struct runs past the end");
        uint8_t h = r->p[r->pos++];
        if (h == 0) return 0;
        uint8_t type = h & 15;
        int64_t id;
        if (h >> 4) id = last + (h >> 4);
        else if (rd_zz(r, &id, INT16_MIN, INT16_MAX)) return -1;
        /* Our writer gives fields in increasing id order, once each. */
        if (id <= last) return fail(r, "thrift: field id %lld after %d", (long long)id, last);
        last = (int16_t)id;
        tv_t *k = add_kid(r, v);
        if (!k) return -1;
        k->id = last;
        if (type == T_TRUE || type == T_FALSE) {
            k->type = T_TRUE;
            k->i = type == T_TRUE;
        } else if (rd_value(r, type, k, depth + 1, false)) {
            return -1;
        }
    }
}

static int rd_value(rd_t *r, uint8_t type, tv_t *v, int depth, bool in_list) {
    if (depth > 32) return fail(r, "thrift: nested too deep");
    v->type = type;
    switch (type) {
    case T_TRUE:
    case T_FALSE:
        if (!in_list) return fail(r, "thrift: bool value outside a list");
        if (r->pos >= r->n) return fail(r, "thrift: bool past the end");
        v->type = T_TRUE;
        v->i = r->p[r->pos++] == T_TRUE;
        return 0;
    case T_BYTE:
        if (r->pos >= r->n) return fail(r, "thrift: byte past the end");
        v->i = (int8_t)r->p[r->pos++];
        return 0;
    case T_I16: return rd_zz(r, &v->i, INT16_MIN, INT16_MAX);
    case T_I32: return rd_zz(r, &v->i, INT32_MIN, INT32_MAX);
    case T_I64: return rd_zz(r, &v->i, INT64_MIN, INT64_MAX);
    case T_DOUBLE:
        if (r->n - r->pos < 8) return fail(r, "thrift: double past the end");
        r->pos += 8;
        return 0;
    case T_BINARY: {
        uint64_t l;
        if (rd_varint(r, &l)) return -1;
        if (l > r->n - r->pos) return fail(r, "thrift: binary of %llu bytes past the end", (unsigned long long)l);
        v->bin = r->p + r->pos;
        v->len = (uint32_t)l;
        r->pos += l;
        return 0;
    }
    case T_LIST:
    case T_SET: {
        if (r->pos >= r->n) return fail(r, "thrift: list past the end");
        uint8_t h = r->p[r->pos++];
        uint64_t cnt = h >> 4;
        v->elem = h & 15;
        if (cnt == 15) {
            if (rd_varint(r, &cnt)) return -1;
            if (cnt < 15) return fail(r, "thrift: long list header for %llu elements", (unsigned long long)cnt);
        }
        if (cnt > r->n - r->pos) return fail(r, "thrift: list of %llu elements past the end", (unsigned long long)cnt);
        v->type = T_LIST;
        for (uint64_t i = 0; i < cnt; i++) {
            tv_t *k = add_kid(r, v);
            if (!k || rd_value(r, v->elem, k, depth + 1, true)) return -1;
        }
        return 0;
    }
    case T_STRUCT: return rd_struct(r, v, depth);
    default: return fail(r, "thrift: unexpected type %u", type);
    }
}

static const tv_t *fld(const tv_t *s, int16_t id) {
    for (int i = 0; s && i < s->n; i++)
        if (s->kids[i].id == id) return &s->kids[i];
    return NULL;
}

/* A field that must be there with that type. */
static const tv_t *need(rd_t *r, const tv_t *s, int16_t id, uint8_t type, const char *what) {
    const tv_t *v = fld(s, id);
    if (!v) {
        fail(r, "%s (field %d) missing", what, id);
        return NULL;
    }
    if (v->type != type) {
        fail(r, "%s (field %d) has type %u, not %u", what, id, v->type, type);
        return NULL;
    }
    return v;
}

/* ---- the file ---- */

typedef struct {
    bool any;
    int64_t imin, imax;
    const uint8_t *smin, *smax;
    size_t lmin, lmax;
} mm_t;

static int bcmp_u(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : al < bl ? -1 : al > bl;
}

static void put_le64(uint8_t *o, int64_t v) {
    for (int i = 0; i < 8; i++) o[i] = (uint8_t)((uint64_t)v >> (8 * i));
}

static bool bin_is(const tv_t *v, const uint8_t *p, size_t n) {
    return v && v->type == T_BINARY && v->len == n && (n == 0 || memcmp(v->bin, p, n) == 0);
}

/* Statistics against the values' min/max. */
static int check_stats(rd_t *r, const tv_t *st, const mm_t *m, int phys, const char *where) {
    uint8_t lo[8], hi[8];
    const uint8_t *minp = lo, *maxp = hi;
    size_t minl = 8, maxl = 8;
    if (phys == PQR_BYTE_ARRAY) {
        minp = m->smin, minl = m->lmin, maxp = m->smax, maxl = m->lmax;
    } else {
        put_le64(lo, m->imin);
        put_le64(hi, m->imax);
    }
    const tv_t *nc = need(r, st, 3, T_I64, "null_count");
    if (!nc) return -1;
    if (nc->i != 0) return fail(r, "%s: null_count %lld", where, (long long)nc->i);
    if (!bin_is(fld(st, 6), minp, minl)) return fail(r, "%s: min_value is not the values' minimum", where);
    if (!bin_is(fld(st, 5), maxp, maxl)) return fail(r, "%s: max_value is not the values' maximum", where);
    if (phys == PQR_INT64) {
        if (!bin_is(fld(st, 2), minp, minl) || !bin_is(fld(st, 1), maxp, maxl))
            return fail(r, "%s: deprecated min/max missing or wrong", where);
    } else if (fld(st, 1) || fld(st, 2)) {
        return fail(r, "%s: deprecated (signed) min/max on a byte array", where);
    }
    const tv_t *ex = fld(st, 7), *en = fld(st, 8);
    if (!ex || ex->type != T_TRUE || !ex->i || !en || en->type != T_TRUE || !en->i)
        return fail(r, "%s: is_max/min_value_exact not true", where);
    return 0;
}

/* The page's values appended to the column; min/max into *m. */
static int decode_plain(rd_t *r, pq_col_t *c, const uint8_t *p, size_t n, int64_t nv, size_t *have, mm_t *m) {
    if (c->phys == PQR_INT64) {
        if (n != (size_t)nv * 8) return fail(r, "%s: page of %zu bytes for %lld int64s", c->name, n, (long long)nv);
        for (int64_t i = 0; i < nv; i++) {
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--) u = u << 8 | p[i * 8 + b];
            int64_t v = (int64_t)u;
            c->ints[(*have)++] = v;
            if (!m->any || v < m->imin) m->imin = v;
            if (!m->any || v > m->imax) m->imax = v;
            m->any = true;
        }
        return 0;
    }
    size_t pos = 0;
    size_t base = c->soff[*have];
    uint8_t *sb = realloc(c->sbytes, base + n + 1);
    if (!sb) return fail(r, "out of memory");
    c->sbytes = sb;
    for (int64_t i = 0; i < nv; i++) {
        if (n - pos < 4) return fail(r, "%s: string length past the page's end", c->name);
        size_t l = (size_t)p[pos] | (size_t)p[pos + 1] << 8 | (size_t)p[pos + 2] << 16 | (size_t)p[pos + 3] << 24;
        pos += 4;
        if (l > n - pos) return fail(r, "%s: string of %zu bytes past the page's end", c->name, l);
        size_t at = c->soff[*have];
        memcpy(sb + at, p + pos, l);
        c->soff[++*have] = at + l;
        if (!m->any || bcmp_u(p + pos, l, m->smin, m->lmin) < 0) m->smin = p + pos, m->lmin = l;
        if (!m->any || bcmp_u(p + pos, l, m->smax, m->lmax) > 0) m->smax = p + pos, m->lmax = l;
        m->any = true;
        pos += l;
    }
    if (pos != n) return fail(r, "%s: %zu bytes after the page's last value", c->name, n - pos);
    return 0;
}

static int decompress(rd_t *r, int codec, const uint8_t *z, size_t zn, uint8_t *out, size_t n) {
    switch (codec) {
    case 0:
        if (zn != n) return fail(r, "uncompressed page: %zu bytes stored, %zu said", zn, n);
        memcpy(out, z, n);
        return 0;
    case 1: {
        size_t l;
        if (snappy_uncompressed_length((const char *)z, zn, &l) != SNAPPY_OK || l != n)
            return fail(r, "snappy page: bad length");
        if (snappy_uncompress((const char *)z, zn, (char *)out, &l) != SNAPPY_OK || l != n)
            return fail(r, "snappy page: does not decompress");
        return 0;
    }
    case 6: {
        if (ZSTD_getFrameContentSize(z, zn) != n) return fail(r, "zstd page: frame content size is not %zu", n);
        size_t l = ZSTD_decompress(out, n, z, zn);
        if (ZSTD_isError(l) || l != n) return fail(r, "zstd page: does not decompress to %zu bytes", n);
        return 0;
    }
    default: return fail(r, "codec %d", codec);
    }
}

/* The column chunk's pages from *pos (exactly total_compressed_size bytes). */
static int read_chunk(rd_t *r, const uint8_t *data, size_t end, size_t *pos, pq_col_t *c, mm_t *cm) {
    size_t have = 0;
    int64_t unc = 0, comp = 0, values = 0;
    c->ints = calloc((size_t)c->num_values + 1, sizeof(int64_t));
    c->soff = calloc((size_t)c->num_values + 1, sizeof(size_t));
    if (!c->ints || !c->soff) return fail(r, "out of memory");
    while (comp < c->total_compressed) {
        rd_t hr = {.p = data, .n = end, .pos = *pos, .err = r->err, .errn = r->errn};
        tv_t h = {0};
        int rc = rd_struct(&hr, &h, 0);
        if (rc) {
            r->failed = true;
            tv_free(&h);
            return -1;
        }
        size_t hlen = hr.pos - *pos;
        const tv_t *type = need(r, &h, 1, T_I32, "PageHeader.type"), *us = need(r, &h, 2, T_I32, "uncompressed_page_size"),
                   *cs = need(r, &h, 3, T_I32, "compressed_page_size"), *dp = need(r, &h, 5, T_STRUCT, "data_page_header");
        const tv_t *nv = dp ? need(r, dp, 1, T_I32, "num_values") : NULL, *enc = dp ? need(r, dp, 2, T_I32, "encoding") : NULL;
        const tv_t *dle = dp ? need(r, dp, 3, T_I32, "definition_level_encoding") : NULL;
        const tv_t *rle = dp ? need(r, dp, 4, T_I32, "repetition_level_encoding") : NULL;
        if (!type || !us || !cs || !dp || !nv || !enc || !dle || !rle) goto bad;
        if (type->i != 0) { fail(r, "%s: page type %lld", c->name, (long long)type->i); goto bad; }
        if (enc->i != 0) { fail(r, "%s: page encoding %lld, not PLAIN", c->name, (long long)enc->i); goto bad; }
        if (nv->i <= 0 || values + nv->i > c->num_values) { fail(r, "%s: page of %lld values", c->name, (long long)nv->i); goto bad; }
        if (us->i < 0 || cs->i < 0 || (size_t)cs->i > end - hr.pos) { fail(r, "%s: page sizes", c->name); goto bad; }
        uint8_t *raw = malloc((size_t)us->i + 1);
        if (!raw) { fail(r, "out of memory"); goto bad; }
        mm_t pm = {0};
        if (decompress(r, c->codec, data + hr.pos, (size_t)cs->i, raw, (size_t)us->i) ||
            decode_plain(r, c, raw, (size_t)us->i, nv->i, &have, &pm)) {
            free(raw);
            goto bad;
        }
        const tv_t *st = fld(dp, 5);
        if (st) {
            char where[300];
            snprintf(where, sizeof(where), "%s: page %d statistics", c->name, c->npages);
            if (st->type != T_STRUCT || check_stats(r, st, &pm, c->phys, where)) {
                free(raw);
                goto bad;
            }
            c->page_stats++;
        }
        /* Column min/max from the page's (the pointers die with raw: merge by value below). */
        if (c->phys == PQR_INT64) {
            if (!cm->any || pm.imin < cm->imin) cm->imin = pm.imin;
            if (!cm->any || pm.imax > cm->imax) cm->imax = pm.imax;
        }
        cm->any = true;
        free(raw);
        values += nv->i;
        unc += (int64_t)hlen + us->i;
        comp += (int64_t)hlen + cs->i;
        *pos = hr.pos + (size_t)cs->i;
        c->npages++;
        tv_free(&h);
        continue;
    bad:
        tv_free(&h);
        return -1;
    }
    if (comp != c->total_compressed) return fail(r, "%s: pages span %lld bytes, total_compressed_size %lld", c->name, (long long)comp, (long long)c->total_compressed);
    if (unc != c->total_uncompressed) return fail(r, "%s: pages hold %lld bytes, total_uncompressed_size %lld", c->name, (long long)unc, (long long)c->total_uncompressed);
    if (values != c->num_values) return fail(r, "%s: pages hold %lld values, num_values %lld", c->name, (long long)values, (long long)c->num_values);
    /* String min/max over the decoded values (they now live in sbytes). */
    if (c->phys == PQR_BYTE_ARRAY) {
        cm->any = false;
        for (size_t i = 0; i < have; i++) {
            size_t l;
            const uint8_t *s = pq_str(c, i, &l);
            if (!cm->any || bcmp_u(s, l, cm->smin, cm->lmin) < 0) cm->smin = s, cm->lmin = l;
            if (!cm->any || bcmp_u(s, l, cm->smax, cm->lmax) > 0) cm->smax = s, cm->lmax = l;
            cm->any = true;
        }
    }
    return 0;
}

static int read_schema(rd_t *r, const tv_t *schema, pq_file_t *f) {
    if (schema->elem != T_STRUCT || schema->n < 2) return fail(r, "schema: %d elements", schema->n);
    const tv_t *root = &schema->kids[0];
    const tv_t *nc = need(r, root, 5, T_I32, "root num_children");
    if (!nc || !need(r, root, 4, T_BINARY, "root name")) return -1;
    if (fld(root, 1)) return fail(r, "schema root has a type");
    if (nc->i != schema->n - 1) return fail(r, "root has %lld children, schema %d leaves", (long long)nc->i, schema->n - 1);
    f->ncols = schema->n - 1;
    f->cols = calloc((size_t)f->ncols, sizeof(pq_col_t));
    if (!f->cols) return fail(r, "out of memory");
    for (int i = 0; i < f->ncols; i++) {
        const tv_t *e = &schema->kids[i + 1];
        pq_col_t *c = &f->cols[i];
        const tv_t *type = need(r, e, 1, T_I32, "type"), *rep = need(r, e, 3, T_I32, "repetition_type"),
                   *name = need(r, e, 4, T_BINARY, "name");
        if (!type || !rep || !name) return -1;
        if (fld(e, 5)) return fail(r, "leaf %d has children", i);
        c->name = strndup((const char *)name->bin, name->len);
        if (!c->name) return fail(r, "out of memory");
        c->phys = (int)type->i;
        c->repetition = (int)rep->i;
        if (c->phys != PQR_INT64 && c->phys != PQR_BYTE_ARRAY) return fail(r, "%s: type %d", c->name, c->phys);
        if (c->repetition != 0) return fail(r, "%s: not REQUIRED", c->name);
        const tv_t *conv = fld(e, 6), *lt = fld(e, 10);
        c->converted = conv ? (int)conv->i : -1;
        if (lt) {
            if (lt->type != T_STRUCT || lt->n != 1 || lt->kids[0].type != T_STRUCT) return fail(r, "%s: logicalType is no union", c->name);
            c->logical = lt->kids[0].id;
            if (c->logical == PQR_LOGICAL_STRING && lt->kids[0].n != 0) return fail(r, "%s: StringType not empty", c->name);
            if (c->logical == PQR_LOGICAL_TIMESTAMP) {
                const tv_t *ts = &lt->kids[0], *utc = need(r, ts, 1, T_TRUE, "isAdjustedToUTC"), *unit = need(r, ts, 2, T_STRUCT, "unit");
                if (!utc || !unit) return -1;
                if (unit->n != 1 || unit->kids[0].type != T_STRUCT || unit->kids[0].n != 0) return fail(r, "%s: TimeUnit", c->name);
                c->ts_utc = (int)utc->i;
                c->ts_unit = unit->kids[0].id;
            }
        }
    }
    return 0;
}

int pq_read(const uint8_t *data, size_t len, pq_file_t *f, char *err, size_t errn) {
    memset(f, 0, sizeof(*f));
    rd_t r = {.err = err, .errn = errn};
    tv_t md = {0};
    if (len < 12) return fail(&r, "%zu bytes: too short", len);
    if (memcmp(data, "PAR1", 4) || memcmp(data + len - 4, "PAR1", 4)) return fail(&r, "no PAR1 magic");
    const uint8_t *t = data + len - 8;
    f->footer_len = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    if (f->footer_len > len - 12) return fail(&r, "footer of %u bytes in a file of %zu", f->footer_len, len);
    size_t fstart = len - 8 - f->footer_len;
    r.p = data + fstart;
    r.n = f->footer_len;
    if (rd_struct(&r, &md, 0)) goto out;
    if (r.pos != r.n) { fail(&r, "footer: %zu bytes after FileMetaData", r.n - r.pos); goto out; }
    const tv_t *ver = need(&r, &md, 1, T_I32, "version"), *schema = need(&r, &md, 2, T_LIST, "schema"),
               *nrows = need(&r, &md, 3, T_I64, "num_rows"), *rgs = need(&r, &md, 4, T_LIST, "row_groups"),
               *cb = need(&r, &md, 6, T_BINARY, "created_by"), *co = need(&r, &md, 7, T_LIST, "column_orders");
    if (!ver || !schema || !nrows || !rgs || !cb || !co) goto out;
    f->version = (int)ver->i;
    f->num_rows = nrows->i;
    f->nrow_groups = rgs->n;
    f->created_by = strndup((const char *)cb->bin, cb->len);
    if (!f->created_by) { fail(&r, "out of memory"); goto out; }
    if (read_schema(&r, schema, f)) goto out;
    if (co->n != f->ncols) { fail(&r, "%d column orders for %d columns", co->n, f->ncols); goto out; }
    for (int i = 0; i < co->n; i++) {
        const tv_t *o = &co->kids[i];
        if (o->type != T_STRUCT || o->n != 1 || o->kids[0].id != 1 || o->kids[0].type != T_STRUCT || o->kids[0].n != 0) {
            fail(&r, "column order %d is not TYPE_ORDER", i);
            goto out;
        }
    }
    if (rgs->n > 1) { fail(&r, "%d row groups", rgs->n); goto out; }
    if (rgs->n == 0) {
        if (f->num_rows != 0) fail(&r, "no row group for %lld rows", (long long)f->num_rows);
        else if (fstart != 4) fail(&r, "%zu bytes between the magic and the footer", fstart - 4);
        if (r.failed) goto out;
        for (int i = 0; i < f->ncols; i++) {
            f->cols[i].ints = calloc(1, sizeof(int64_t));
            f->cols[i].soff = calloc(1, sizeof(size_t));
        }
        tv_free(&md);
        return 0;
    }
    const tv_t *rg = &rgs->kids[0];
    const tv_t *cols = need(&r, rg, 1, T_LIST, "columns"), *tbs = need(&r, rg, 2, T_I64, "total_byte_size"),
               *rgn = need(&r, rg, 3, T_I64, "num_rows"), *rgo = need(&r, rg, 5, T_I64, "file_offset"),
               *rgc = need(&r, rg, 6, T_I64, "total_compressed_size");
    if (!cols || !tbs || !rgn || !rgo || !rgc) goto out;
    if (rgn->i != f->num_rows || f->num_rows <= 0) { fail(&r, "row group of %lld rows in a file of %lld", (long long)rgn->i, (long long)f->num_rows); goto out; }
    if (cols->n != f->ncols) { fail(&r, "%d column chunks for %d columns", cols->n, f->ncols); goto out; }
    if (rgo->i != 4) { fail(&r, "row group file_offset %lld", (long long)rgo->i); goto out; }
    f->rg_total_byte_size = tbs->i;
    f->rg_total_compressed = rgc->i;
    size_t pos = 4;
    int64_t sum_unc = 0, sum_comp = 0;
    for (int i = 0; i < f->ncols; i++) {
        pq_col_t *c = &f->cols[i];
        const tv_t *cc = &cols->kids[i];
        const tv_t *fo = need(&r, cc, 2, T_I64, "file_offset"), *m = need(&r, cc, 3, T_STRUCT, "meta_data");
        if (!fo || !m) goto out;
        const tv_t *type = need(&r, m, 1, T_I32, "type"), *enc = need(&r, m, 2, T_LIST, "encodings"),
                   *path = need(&r, m, 3, T_LIST, "path_in_schema"), *codec = need(&r, m, 4, T_I32, "codec"),
                   *nv = need(&r, m, 5, T_I64, "num_values"), *tu = need(&r, m, 6, T_I64, "total_uncompressed_size"),
                   *tc = need(&r, m, 7, T_I64, "total_compressed_size"), *dpo = need(&r, m, 9, T_I64, "data_page_offset"),
                   *st = need(&r, m, 12, T_STRUCT, "statistics");
        if (!type || !enc || !path || !codec || !nv || !tu || !tc || !dpo || !st) goto out;
        if (type->i != c->phys) { fail(&r, "%s: chunk type %lld, schema %d", c->name, (long long)type->i, c->phys); goto out; }
        bool plain = false;
        for (int k = 0; k < enc->n; k++) plain |= enc->kids[k].i == 0;
        if (!plain) { fail(&r, "%s: PLAIN not among the encodings", c->name); goto out; }
        if (path->n != 1 || !bin_is(&path->kids[0], (const uint8_t *)c->name, strlen(c->name))) { fail(&r, "%s: path_in_schema", c->name); goto out; }
        c->codec = (int)codec->i;
        c->num_values = nv->i;
        c->total_uncompressed = tu->i;
        c->total_compressed = tc->i;
        c->data_page_offset = dpo->i;
        c->file_offset = fo->i;
        if (nv->i != f->num_rows) { fail(&r, "%s: %lld values in %lld rows", c->name, (long long)nv->i, (long long)f->num_rows); goto out; }
        if ((size_t)dpo->i != pos || fo->i != dpo->i) { fail(&r, "%s: chunk at %lld (file_offset %lld), previous ended at %zu", c->name, (long long)dpo->i, (long long)fo->i, pos); goto out; }
        if (tc->i < 0 || (uint64_t)tc->i > fstart - pos) { fail(&r, "%s: chunk of %lld bytes past the footer", c->name, (long long)tc->i); goto out; }
        mm_t cm = {0};
        if (read_chunk(&r, data, fstart, &pos, c, &cm)) goto out;
        char where[300];
        snprintf(where, sizeof(where), "%s: column statistics", c->name);
        if (check_stats(&r, st, &cm, c->phys, where)) goto out;
        c->has_stats = 1;
        c->has_deprecated = fld(st, 1) != NULL;
        c->null_count = fld(st, 3)->i;
        const tv_t *mn = fld(st, 6), *mx = fld(st, 5);
        c->min_len = mn->len;
        c->max_len = mx->len;
        memcpy(c->min_value, mn->bin, mn->len < 64 ? mn->len : 64);
        memcpy(c->max_value, mx->bin, mx->len < 64 ? mx->len : 64);
        sum_unc += tu->i;
        sum_comp += tc->i;
    }
    if (pos != fstart) { fail(&r, "%zu bytes between the last page and the footer", fstart - pos); goto out; }
    if (sum_unc != f->rg_total_byte_size) { fail(&r, "total_byte_size %lld, chunks %lld", (long long)f->rg_total_byte_size, (long long)sum_unc); goto out; }
    if (sum_comp != f->rg_total_compressed) { fail(&r, "row group total_compressed_size %lld, chunks %lld", (long long)f->rg_total_compressed, (long long)sum_comp); goto out; }
out:
    tv_free(&md);
    return r.failed ? -1 : 0;
}

void pq_free(pq_file_t *f) {
    for (int i = 0; f->cols && i < f->ncols; i++) {
        free(f->cols[i].name);
        free(f->cols[i].ints);
        free(f->cols[i].sbytes);
        free(f->cols[i].soff);
    }
    free(f->cols);
    free(f->created_by);
    memset(f, 0, sizeof(*f));
}
