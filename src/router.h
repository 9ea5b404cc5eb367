/*
 * Route table: built once from the config's routes, read-only afterwards.
 * Precedence (docs/design.md): host-specific routes before host-less ones
 * (exact host, then wildcard hosts by longest suffix, then any host); within a
 * host group: exact path, then longest prefix, then regexes in file order, then
 * routes without a path condition in file order. A candidate whose method or
 * header conditions fail does not stop the search.
 */
#ifndef TG_ROUTER_H
#define TG_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http_parser.h"

typedef struct {
    const char
        *host; /* Host header value as received (port and case are handled here); NULL = none */
    size_t host_len;
    const char *path; /* normalized path, without query */
    size_t path_len;
    const char *method;
    size_t method_len;
    uint32_t method_bit; /* tg_router_method_bit(method) */
    const tg_http_header_t *headers;
    size_t nheaders;
} tg_route_query_t;

/* Builds cfg->router from cfg->routes. Regexes are already compiled. */
int tg_router_build(tg_config_t *cfg, tg_conf_err_t *err);
void tg_router_free(tg_router_t *router);

/* md: a per-worker pcre2_match_data (pcre2 match data is not shareable between
 * threads). Returns NULL when nothing matches. Allocates nothing. */
const tg_route_t *tg_router_match(const tg_router_t *router, const tg_route_query_t *q,
                                  pcre2_match_data *md);

/* TG_METHOD_* bit of a method token; TG_METHOD_OTHER for extension methods. */
uint32_t tg_router_method_bit(const char *method, size_t len);

#endif
