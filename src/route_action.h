/*
 * What a route does besides proxying as is: `redirect:` and `respond:`
 * (answered by the gateway, no upstream), `rewrite:` (the path and query sent
 * upstream, from a template) and `host_header:` (the Host sent upstream).
 * Parsed at load with the route's match at hand, so that templates are
 * checked against its path_regex groups; run at the dispatch step, after the
 * route's request_head plugins (templates may read the claims they publish).
 */
#ifndef TG_ROUTE_ACTION_H
#define TG_ROUTE_ACTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct tg_request_s tg_request_t;

/* host_header: which Host the upstream gets. */
typedef enum {
    TG_HOST_PASS = 0, /* the client's (the default); the target's when it sent none */
    TG_HOST_UPSTREAM, /* the chosen target's, as written in the upstream ("host:port"; no ":80") */
    TG_HOST_LITERAL,  /* the configured one, checked as a Host header is (src/host.h) */
} tg_host_mode_t;

/* A header of a generated reply whose value is a template. */
typedef struct {
    char *name;
    struct tg_template_s *value; /* TG_TEMPLATE_HEADER */
} tg_tpl_header_t;

typedef struct tg_redirect_s {
    struct tg_template_s *to; /* TG_TEMPLATE_URL */
    uint64_t status;          /* 301, 302 (default), 303, 307 or 308 */
    bool keep_query;          /* append the client's query (default: no, as nginx `return`) */
} tg_redirect_t;

typedef struct tg_respond_s {
    uint64_t status;    /* 200..599, default 200 */
    char *body;         /* literal; NULL: none */
    char *content_type; /* NULL: text/plain; charset=utf-8 with a body, none without */
    const tg_conf_node_t *headers_node; /* while parsing only */
    tg_tpl_header_t *headers;
    size_t nheaders;
} tg_respond_t;

/* Reads `redirect:`, `respond:`, `rewrite:` and `host_header:` of route map
 * into r, whose match and upstream/aggregate are already parsed (config.c
 * checks that exactly one of upstream, aggregate, redirect and respond is
 * set). */
int tg_route_action_parse(tg_route_t *r, const tg_conf_node_t *map, tg_conf_err_t *err);
void tg_route_action_free(tg_route_t *r);

/* A redirect or respond route: fills req->run.reply (a 400 when a template value
 * is refused). The caller sends it. */
void tg_route_answer(tg_request_t *req);

/* A route with `rewrite:`: sets the path and query sent upstream. Returns 0,
 * or -1 with req->run.reply holding a 400 naming the refused value. */
int tg_route_rewrite(tg_request_t *req);

/* The Host to send to target t for req (host_header). */
const char *tg_route_host(const tg_request_t *req, const tg_target_t *t, size_t *len);

#endif
