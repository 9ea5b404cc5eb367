/*
 * An upstream's failure-isolation keys, read for config.c once its targets
 * are known: balance: hash's key and Maglev table, circuit_breaker,
 * outlier_detection and health_check; and, once routes are read, which
 * upstreams count their requests in flight (max_requests, a route's retry
 * budget: one shared atomic per request, so only where needed).
 */
#ifndef TG_ISOLATION_CONF_H
#define TG_ISOLATION_CONF_H

#include "config.h"

/* map is the upstream's map (for errors about a missing key); the other
 * nodes are its keys' values, NULL when absent. */
int tg_isolation_conf_parse(const tg_conf_node_t *map, const tg_conf_node_t *hash_key,
                            const tg_conf_node_t *health, const tg_conf_node_t *circuit,
                            const tg_conf_node_t *outlier, tg_arena_t *arena, tg_upstream_conf_t *u,
                            tg_conf_err_t *err);

void tg_isolation_mark_counted(tg_config_t *cfg);

#endif
