/*
 * Which of the client's header fields may go past this hop. Decided once, when
 * the head is parsed, so that routing, plugins and the upstream all see the
 * same fields; what the gateway and its plugins set afterwards is never
 * subject to the client's Connection header (RFC 9110 section 7.6.1 applies to
 * fields that were received). Pure: header arrays in, header arrays out.
 */
#ifndef TG_CLIENT_FIELDS_H
#define TG_CLIENT_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include "http_parser.h"

/* limits.headers_with_underscores: what to do with a client field whose name
 * has a '_' (CGI/WSGI/Rails read X_User_Id as X-User-Id). */
typedef enum {
    TG_UNDERSCORES_DROP = 0, /* default (nginx's too): the field is removed */
    TG_UNDERSCORES_REJECT,   /* 400, connection closed */
    TG_UNDERSCORES_ALLOW,    /* kept, except spellings of fields the gateway owns */
} tg_underscores_t;

/* More Connection options than this in one request -> 400: the options are
 * matched against every field, so their number is bounded. */
#define TG_MAX_CONN_OPTIONS 64

typedef struct {
    tg_underscores_t underscores; /* limits.headers_with_underscores */
    bool trusted_peer;            /* the peer is in trusted_proxies: its forwarding fields stay */
} tg_client_fields_policy_t;

/*
 * Removes from hs[0..*n), in place and keeping the order:
 *  - hop-by-hop fields: Connection, Keep-Alive, TE, Trailer, Transfer-Encoding,
 *    Upgrade, Proxy-Connection, and every field named in Connection;
 *  - forwarding fields (X-Forwarded-For/-Proto/-Host/-Port/-Prefix, Forwarded,
 *    X-Real-IP) unless the peer is trusted;
 *  - names with '_' as the policy says, and always those that equal a field the
 *    gateway owns (the lists above, Host, Content-Length, Expect, X-Request-Id)
 *    once '_' is read as '-'.
 * The framing facts (Content-Length, chunked, Connection flags) were taken by
 * the parser before. *track, when not NULL, is an index into hs that is moved
 * with its field (-1 when the field is removed).
 * Returns 0, or -1 with *reason (static text) when the request must be
 * refused with 400.
 */
int tg_client_fields_filter(tg_http_header_t *hs, size_t *n, const tg_client_fields_policy_t *p,
                            int *track, const char **reason);

/* Field names compared case-insensitively with '_' and '-' alike, as CGI,
 * WSGI and Rails map a name to a variable. */
bool tg_field_name_folded_eq(const char *a, size_t alen, const char *b, size_t blen);

/* Whether a plugin may not set a field of this name (request.h,
 * tg_request_set_header and tg_request_add_response_header): this hop's, or
 * one the gateway writes itself in that direction (response true: toward the
 * client). Names compare as tg_field_name_folded_eq does. */
bool tg_field_gateway_owned(const char *name, size_t len, bool response);

#endif
