/* SPDX-License-Identifier: MIT */
/* The HTTP endpoint (http.listen): /metrics, /healthz, /progress, /top, /count and the live page at
 * /. libmicrohttpd parses HTTP and runs the server in its own thread; the handlers read only the
 * snapshots published into a tally_snapbox_t, and /count the lookup it was given. */
#ifndef TALLY_HTTP_H
#define TALLY_HTTP_H

#include <stddef.h>

#include "tally/snapshot.h"

typedef struct tally_http_s tally_http_t;

/* /count's look-up of one word's committed count (any thread): 1 found, 0 never counted,
 * TALLY_ESTOPPED while there is no state yet, another negative code on error. */
typedef int (*tally_http_count_fn)(void *opaque, const uint8_t *word, size_t len, int64_t *count, uint64_t *epoch);

/* Listens on "host:port" ("[v6]:port" for IPv6; a host name is resolved) and serves from box, which
 * must outlive the server. Errors, with the reason in errstr: TALLY_EIO when the address is in use
 * (worth retrying: an instance being taken over still holds it), TALLY_ECONFIG when it cannot work. */
int tally_http_new(tally_http_t **out, const char *listen_addr, tally_snapbox_t *box, tally_http_count_fn count,
                   void *count_opaque, char *errstr, size_t errstr_size);
/* Stops accepting, finishes or drops the requests in hand and joins the server thread. */
void tally_http_destroy(tally_http_t *h);

/* The page (src/ops/page.html), embedded at build time. */
extern const char tally_ops_page[];
extern const size_t tally_ops_page_len;

#endif
