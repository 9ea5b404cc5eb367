/*
 * Weighted traffic split (canary): a route with `split:` instead of
 * `upstream:` sends each request to one of several upstreams in proportion to
 * their weights. `split_override` forces a side for requests carrying a
 * header value; `sticky` hashes a request key (as hash_key does) onto the
 * weights, so a client keeps its side while the weights stay the same, and
 * when the last side's weight grows (5% -> 25%) clients only ever move
 * toward it. Weights change by reload, without a restart.
 */
#ifndef TG_SPLIT_H
#define TG_SPLIT_H

#include "balance.h"
#include "config.h"

typedef struct {
    tg_upstream_conf_t *upstream;
    uint32_t weight; /* 0..10000; a side at 0 gets nothing */
} tg_split_side_t;

typedef struct tg_split_s {
    tg_split_side_t *sides;
    size_t nsides;
    uint64_t total;        /* sum of the weights, > 0 */
    char *override_header; /* NULL: no split_override */
    char *override_value;
    tg_upstream_conf_t *override_upstream;
    tg_key_spec_t sticky; /* kind TG_KEY_NONE: per-request choice */
} tg_split_t;

/* Reads the route map's split, split_override and sticky into r->split; r
 * gets the heaviest side as its upstream (what the route's checks and the
 * request's pool start from). */
int tg_split_parse(tg_config_t *cfg, tg_arena_t *arena, const tg_conf_node_t *route, tg_route_t *r,
                   tg_conf_err_t *err);

/* The side for req. */
const tg_upstream_conf_t *tg_split_choose(const tg_split_t *s, const tg_request_t *req);

#endif
