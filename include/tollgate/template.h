/*
 * tollgate public API: templates, text with {variables} resolved per request.
 *
 * One engine for every template of the gateway: aggregation call paths, route
 * `rewrite:` and `redirect:`, `respond:` headers and the headers plugin. A
 * template is compiled once at load (create()), immutable afterwards and
 * shared by all worker threads; rendering reads the request and writes into
 * its arena. `${ENV}` is not a template variable: the config loader has
 * already replaced it (conf.h).
 *
 * Variables (an unknown name is a config error at the node's FILE:LINE:COL):
 *   {jwt.<claim>}   a claim the authentication plugin published
 *                   (tg_request_claim; the claims contract in request.h)
 *   {header.<Name>} the first value of a request header
 *   {query.<name>}  a query parameter, percent-decoded ("+" is a space)
 *   {var.<key>}     a string from the plugins' bag (tg_request_var_str)
 *   {client_ip}     the real client address (tg_request_client_ip)
 *   {route}         the route's name
 *   {request_id}    the request id (X-Request-Id)
 *   {consumer}      the consumer an earlier plugin authenticated (key-auth;
 *                   tg_request_consumer), missing when none did
 *   {path_rest}     the client's canonical path after the route's matched
 *                   path_prefix ("" on a `path:` route, the whole path on a
 *                   route without a path condition; missing on a path_regex
 *                   route: use its named groups)
 *   {path.<group>}  a named group of the route's path_regex, percent-decoded,
 *                   and bare {<group>} when no variable above has that name:
 *                   route templates only (aggregate, rewrite, redirect,
 *                   respond), where the group is checked against the regex at
 *                   load; in a plugin's template it is a config error.
 * There is no escape for "{": a "{" always opens a variable.
 */
#ifndef TOLLGATE_TEMPLATE_H
#define TOLLGATE_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "tollgate/conf.h"
#include "tollgate/request.h"

/* Where the rendered text goes, which decides how values are placed. */
typedef enum {
    /* A header field value. Values are inserted as they are, and each must be
     * a valid field value (tg_field_value_valid: no CR, LF, NUL or other
     * control but HTAB); the literal text is checked at load. A missing or
     * invalid value fails the render: the caller leaves the header out (never
     * a half-built value, never a 500 a client can provoke). */
    TG_TEMPLATE_HEADER = 0,
    /* An origin-form path with an optional query: "/users/{id}?v={ver}".
     * Must start with "/". Every value is percent-encoded (all but
     * unreserved, tg_percent_encode), so none can add a segment or a
     * parameter. Before the first literal "?" (the path part) a value that
     * is missing, empty, "." or ".." fails the render: it would make "//",
     * "/./" or "/../". After it (the query part) a missing value is empty.
     * {path_rest} is inserted in the path part as it is (it is already a
     * canonical path) and may be empty; in the query part it is encoded. */
    TG_TEMPLATE_PATH,
    /* A redirect target (Location): like TG_TEMPLATE_PATH, but the literal
     * start may also be "http://" or "https://" and a host (checked as a Host
     * header is): "https://docs.example.com/v2{path_rest}". Variables sit in
     * the path or the query, never in the scheme or the host. */
    TG_TEMPLATE_URL,
} tg_template_mode_t;

typedef struct tg_template_s tg_template_t;

/* Compiles the scalar node for mode. Returns the template, or NULL with err
 * filled ("FILE:LINE:COL: unknown template variable {x}: ..."). Call from
 * create(); free with tg_template_free() in destroy(). */
tg_template_t *tg_template_compile(const tg_conf_node_t *node, tg_template_mode_t mode,
                                   tg_conf_err_t *err);
void tg_template_free(tg_template_t *t);

/* Whether t has no variable at all (then every render gives the same text). */
bool tg_template_is_literal(const tg_template_t *t);

/* Renders t for r. Returns 0 with *out (NUL-terminated, in r's arena or the
 * template's own literal: valid until the request ends) and *len; or -1 when
 * a value is refused (see the modes), with *out a message naming it
 * ("template value {query.id} is '..'") and *len its length. Allocates in the
 * request's arena only. */
int tg_template_render(tg_request_t *r, const tg_template_t *t, const char **out, size_t *len);

#endif
