#include "isolation_conf.h"

#include "health_check.h"
#include "split.h"

static const tg_conf_field_t circuit_fields[] = {
    {"max_connections", TG_CONF_FIELD_UINT, TG_CONF_AT(tg_circuit_conf_t, max_connections),
     .max = 10000000},
    {"max_pending", TG_CONF_FIELD_UINT, TG_CONF_AT(tg_circuit_conf_t, max_pending),
     .max = 10000000},
    {"max_requests", TG_CONF_FIELD_UINT, TG_CONF_AT(tg_circuit_conf_t, max_requests),
     .max = 10000000},
    TG_CONF_END,
};

static const tg_conf_field_t outlier_fields[] = {
    {"consecutive_5xx", TG_CONF_FIELD_UINT, TG_CONF_AT(tg_outlier_conf_t, consecutive_5xx),
     .max = 1000000, .def = 5},
    {"consecutive_gateway_errors", TG_CONF_FIELD_UINT,
     TG_CONF_AT(tg_outlier_conf_t, consecutive_gateway_errors), .max = 1000000, .def = 3},
    {"base_ejection_time", TG_CONF_FIELD_DURATION,
     TG_CONF_AT(tg_outlier_conf_t, base_ejection_time_ms), .min = 1, .def = 30000},
    {"max_ejection_percent", TG_CONF_FIELD_UINT,
     TG_CONF_AT(tg_outlier_conf_t, max_ejection_percent), .max = 100, .def = 50},
    TG_CONF_END,
};

/* balance: hash needs hash_key, and only it reads one. */
static int parse_hash(const tg_conf_node_t *map, const tg_conf_node_t *hash_key, tg_arena_t *arena,
                      tg_upstream_conf_t *u, tg_conf_err_t *err)
{
    if (u->balance != TG_BALANCE_HASH)
        return hash_key ? tg_conf_error(err, hash_key, "hash_key needs balance: hash") : 0;
    if (hash_key == NULL)
        return tg_conf_error(err, map, "balance: hash needs hash_key");
    if (tg_key_spec_parse(hash_key, arena, &u->hash_key, err) < 0)
        return -1;
    const char **names = tg_arena_calloc(arena, u->ntargets * sizeof(char *));
    uint32_t *weights = tg_arena_calloc(arena, u->ntargets * sizeof(uint32_t));
    for (size_t i = 0; i < u->ntargets; i++) {
        names[i] = u->targets[i].key;
        weights[i] = u->targets[i].weight;
    }
    if (tg_maglev_build(&u->maglev, arena, names, weights, u->ntargets) < 0)
        return tg_conf_error(err, map, "balance: hash takes at most %d targets",
                             TG_MAGLEV_MAX_TARGETS);
    return 0;
}

int tg_isolation_conf_parse(const tg_conf_node_t *map, const tg_conf_node_t *hash_key,
                            const tg_conf_node_t *health, const tg_conf_node_t *circuit,
                            const tg_conf_node_t *outlier, tg_arena_t *arena, tg_upstream_conf_t *u,
                            tg_conf_err_t *err)
{
    if (parse_hash(map, hash_key, arena, u, err) < 0)
        return -1;
    if (circuit != NULL &&
        tg_conf_read(circuit, circuit_fields, "circuit_breaker", &u->circuit, err) < 0)
        return -1;
    if (outlier != NULL &&
        tg_conf_read(outlier, outlier_fields, "outlier_detection", &u->outlier, err) < 0)
        return -1;
    if (health != NULL && tg_health_conf_parse(health, arena, u, err) < 0)
        return -1;
    return 0;
}

void tg_isolation_mark_counted(tg_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nupstreams; i++)
        cfg->upstreams[i].counts_requests = cfg->upstreams[i].circuit.max_requests > 0;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const tg_route_t *r = &cfg->routes[i];
        if (r->retry == NULL || r->upstream == NULL)
            continue;
        r->upstream->counts_requests = true;
        for (size_t k = 0; r->split != NULL && k < r->split->nsides; k++)
            r->split->sides[k].upstream->counts_requests = true;
        if (r->split != NULL && r->split->override_upstream != NULL)
            r->split->override_upstream->counts_requests = true;
    }
}
