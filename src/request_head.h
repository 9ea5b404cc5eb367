/*
 * From raw head bytes to a request the router and plugins can use: parse,
 * copy into the arena, derive host, canonical path and query, keep only the
 * client's end-to-end fields (client_fields.h), find the client behind
 * trusted proxies (client_addr.h), and the request id.
 */
#ifndef TG_REQUEST_HEAD_H
#define TG_REQUEST_HEAD_H

#include "request.h"

/* Returns the head length, TG_HTTP_INCOMPLETE, or TG_HTTP_ERROR with
 * req->client.http.error_status / error_reason set. */
int tg_request_head_parse(tg_request_t *req, const char *buf, size_t len);

/* Whether header h is hop-by-hop for this message: the fixed list of RFC 9110
 * section 7.6.1 plus Proxy-Connection, plus names listed in Connection. */
bool tg_request_is_hop_header(const tg_http_header_t *h, const tg_span_t *tokens, unsigned ntokens);

/* Collects the names listed in Connection headers into tokens (at most max);
 * used for upstream responses (requests: client_fields.h). */
unsigned tg_request_connection_tokens(const tg_http_header_t *hs, size_t n, tg_span_t *tokens,
                                      unsigned max);

#endif
