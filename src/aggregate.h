/*
 * Aggregation routes (backend-for-frontend): one client request, several
 * concurrent calls to upstreams through their pools, one JSON object with a
 * member per call. Call paths are templates ("/users/{jwt.sub}", the shared
 * engine's TG_TEMPLATE_PATH mode, src/template.h): every value is
 * percent-encoded, so none can add a path segment or a query parameter, and a
 * value in the path part that is missing, empty, "." or ".." is refused (400).
 */
#ifndef TG_AGGREGATE_H
#define TG_AGGREGATE_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "tollgate/template.h"

typedef struct tg_request_s tg_request_t;

typedef struct {
    char *key;
    tg_upstream_conf_t *upstream;
    tg_template_t *path; /* TG_TEMPLATE_PATH (src/template.h) */
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
void tg_aggregate_start(tg_request_t *req);

#endif
