/* SPDX-License-Identifier: MIT */
/* The HTTP endpoint (http.listen): /metrics, /healthz, /progress, /top and the live page at /.
 * libmicrohttpd parses HTTP and runs the server in its own thread; the handlers read only the
 * snapshots published into a tally_snapbox_t, never the engine. */
#ifndef TALLY_HTTP_H
#define TALLY_HTTP_H

#include <stddef.h>

#include "tally/snapshot.h"

typedef struct tally_http_s tally_http_t;

/* Listens on "host:port" ("[v6]:port" for IPv6; a host name is resolved) and serves from box, which
 * must outlive the server. Errors, with the reason in errstr: TALLY_EIO when the address is in use
 * (worth retrying: an instance being taken over still holds it), TALLY_ECONFIG when it cannot work. */
int tally_http_new(tally_http_t **out, const char *listen_addr, tally_snapbox_t *box, char *errstr,
                   size_t errstr_size);
/* Stops accepting, finishes or drops the requests in hand and joins the server thread. */
void tally_http_destroy(tally_http_t *h);

/* The page (src/ops/page.html), embedded at build time. */
extern const char tally_ops_page[];
extern const size_t tally_ops_page_len;

#endif
