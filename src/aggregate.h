/*
 * Aggregation routes (backend-for-frontend): one client request, several
 * concurrent calls to upstreams through their pools, one JSON object with a
 * member per call. Templates ("/users/{jwt.sub}") are compiled at load; every
 * substituted value is percent-encoded, so no claim, header or query value can
 * inject a path segment or a query parameter, and a value in the path part
 * that is missing, empty, "." or ".." is refused (400): encoding leaves dots
 * alone, and such a value would make "//", "/./" or "/../" upstream.
 */
#ifndef TG_AGGREGATE_H
#define TG_AGGREGATE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

typedef struct tg_req_s tg_req_t;

typedef enum {
    TG_TPL_LITERAL = 0,
    TG_TPL_JWT,    /* {jwt.<claim>}: the published claim (tg_request_claim) */
    TG_TPL_QUERY,  /* {query.<name>} */
    TG_TPL_HEADER, /* {header.<Name>} */
    TG_TPL_PATH,   /* {path.<group>}: a named group of the route's path_regex */
    TG_TPL_VAR,    /* {var.<key>}: any string request var */
} tg_tpl_kind_t;

typedef struct {
    tg_tpl_kind_t kind;
    char *text; /* literal text, or the name after the prefix */
    size_t len;
    bool in_path; /* before the template's "?": a variable must not be missing, "", "." or ".." */
} tg_tpl_part_t;

typedef struct {
    tg_tpl_part_t *parts;
    size_t nparts;
} tg_template_t;

typedef struct {
    char *key;
    tg_upstream_conf_t *upstream;
    tg_template_t path;
    bool optional;
} tg_agg_call_t;

typedef struct tg_aggregate_s {
    uint64_t timeout_ms;
    tg_agg_call_t *calls;
    size_t ncalls;
    char **pass_headers; /* client headers sent with every call */
    size_t npass;
} tg_aggregate_t;

/* Parses a route's `aggregate:` map (the route's regex, if any, is compiled
 * already: {path.x} must name one of its groups). */
int tg_aggregate_parse(tg_config_t *cfg, tg_route_t *route, const tg_conf_node_t *node,
                       tg_aggregate_t **out, tg_conf_err_t *err);
void tg_aggregate_free(tg_aggregate_t *a);

/* Runs the calls of req's route and answers the request. */
void tg_aggregate_start(tg_req_t *req);

#endif
