/*
 * The `upstreams:` section: each upstream's keys, its targets (weighted,
 * resolved at load or by `resolve:`), TLS toward it and the failure
 * isolation keys (src/isolation_conf.c).
 */
#include "config_address.h"
#include "config_ctx.h"
#include "isolation_conf.h"
#include "resolve.h"
#include "tls.h"
#include "upstream_shared.h"

/* An upstream's keys; targets and the structured keys are read once the
 * rest is known. */
typedef struct {
    tg_upstream_conf_t u;
    const tg_conf_node_t *targets, *tls, *hash_key, *health, *circuit, *outlier, *resolve;
} upstream_keys_t;

/* In the order of tg_balance_t and tg_all_down_t. */
static const char *const balance_names[] = {"round_robin", "least_conn", "p2c_ewma", "hash", NULL};
static const char *const all_down_names[] = {"fail_open", "fail_closed", NULL};

#define UPSTREAM(key, type, field, ...)                                              \
    {                                                                                \
        key, TG_CONF_FIELD_##type, TG_CONF_AT(upstream_keys_t, u.field), __VA_ARGS__ \
    }
#define UPSTREAM_NODE(key, field)                                   \
    {                                                               \
        key, TG_CONF_FIELD_NODE, TG_CONF_AT(upstream_keys_t, field) \
    }

static const tg_conf_field_t upstream_fields[] = {
    {"targets", TG_CONF_FIELD_NODE, TG_CONF_AT(upstream_keys_t, targets),
     .flags = TG_CONF_REQUIRED},
    UPSTREAM("balance", ENUM, balance, .names = balance_names, .def = TG_BALANCE_ROUND_ROBIN),
    UPSTREAM_NODE("hash_key", hash_key),
    UPSTREAM("keepalive", UINT, keepalive, .max = 100000, .def = 32),
    UPSTREAM("keepalive_trim", DURATION, keepalive_trim_ms, .max = 3600000, .def = 1000),
    UPSTREAM("connect_timeout", DURATION, connect_timeout_ms, .min = 1, .def = 1000),
    UPSTREAM("timeout", DURATION, timeout_ms, .min = 1, .def = 30000),
    UPSTREAM("retries", UINT, retries, .max = 10, .def = 1),
    UPSTREAM("max_fails", UINT, max_fails, .max = 1000000, .def = 3),
    UPSTREAM("fail_timeout", DURATION, fail_timeout_ms, .min = 1, .def = 10000),
    UPSTREAM("all_down", ENUM, all_down, .names = all_down_names, .def = TG_ALL_DOWN_FAIL_OPEN),
    UPSTREAM_NODE("health_check", health),
    UPSTREAM_NODE("circuit_breaker", circuit),
    UPSTREAM_NODE("outlier_detection", outlier),
    UPSTREAM("resolve", DURATION, resolve_ms), /* 0: at load only */
    {"tls", TG_CONF_FIELD_NODE, TG_CONF_AT(upstream_keys_t, tls)},
    TG_CONF_END,
};

typedef struct {
    const tg_conf_node_t *address;
    uint32_t weight;
} target_keys_t;

static const tg_conf_field_t target_fields[] = {
    {"address", TG_CONF_FIELD_NODE, TG_CONF_AT(target_keys_t, address), .flags = TG_CONF_REQUIRED},
    {"weight", TG_CONF_FIELD_UINT, TG_CONF_AT(target_keys_t, weight), .min = 1, .max = 10000,
     .def = 1},
    TG_CONF_END,
};

/* "host:port", or {address: "host:port", weight: N}. With `resolve:`, a
 * host name is not resolved here: it becomes slots (src/resolve.h). */
static int parse_target(tg_config_ctx_t *c, const tg_conf_node_t *n, const tg_upstream_conf_t *u,
                        tg_target_t *t)
{
    const char *text;
    tg_hostport_t hp;
    char eb[300];
    t->weight = 1;
    if (n->type == TG_CONF_MAP) {
        target_keys_t k = {0};
        if (tg_conf_read(n, target_fields, "target", &k, c->err) < 0)
            return -1;
        n = k.address;
        t->weight = k.weight;
    }
    if (tg_conf_get_string(n, &text, c->err) < 0)
        return -1;
    if (tg_hostport_split(text, &hp, eb, sizeof(eb)) < 0)
        return tg_conf_error(c->err, n, "%s", eb);
    if (hp.wildcard)
        return tg_conf_error(c->err, n, "target '%s' needs a host", text);
    t->dynamic = u->resolve_ms && !hp.bracketed && tg_resolve_is_name(hp.host);
    if (!t->dynamic && tg_hostport_resolve(&hp, &t->addr, &t->addrlen, eb, sizeof(eb)) < 0)
        return tg_conf_error(c->err, n, "%s", eb);
    t->name = t->key = tg_config_dup(c, text);
    /* RFC 9110 section 7.2: the port is omitted from Host when it is the default. */
    t->host_header = hp.portnum == 80 ? tg_arena_strndup(c->arena, text, hp.host_end) : t->name;
    return 0;
}

static int add_target(tg_config_ctx_t *c, const tg_conf_node_t *n, tg_upstream_conf_t *u,
                      tg_target_t *t)
{
    t->shared = tg_tshared_get(u->name, t->key);
    u->ntargets++;
    return t->shared ? 0 : tg_conf_error(c->err, n, "out of memory");
}

static int parse_targets(tg_config_ctx_t *c, const tg_conf_node_t *n, tg_upstream_conf_t *u)
{
    if (tg_config_want_items(c, n, "target") < 0)
        return -1;
    size_t per = u->resolve_ms ? TG_RESOLVE_SLOTS : 1;
    u->targets = tg_arena_calloc(c->arena, n->count * per * sizeof(*u->targets));
    for (size_t i = 0; i < n->count; i++) {
        tg_target_t *t = &u->targets[u->ntargets];
        if (parse_target(c, n->items[i], u, t) < 0 || add_target(c, n->items[i], u, t) < 0)
            return -1;
        for (size_t k = 1; t->dynamic && k < TG_RESOLVE_SLOTS; k++) {
            tg_target_t *slot = &u->targets[u->ntargets];
            *slot = *t;
            slot->slot = (uint8_t)k;
            slot->key = tg_arena_printf(c->arena, "%s#%zu", t->name, k);
            if (add_target(c, n->items[i], u, slot) < 0)
                return -1;
        }
        if (t->dynamic) {
            tg_tshared_put(t->shared);
            t->key = tg_arena_printf(c->arena, "%s#0", t->name);
            t->shared = tg_tshared_get(u->name, t->key);
            if (t->shared == NULL)
                return tg_conf_error(c->err, n->items[i], "out of memory");
        }
    }
    if (u->ntargets > 64 * 1024)
        return tg_conf_error(c->err, n, "too many targets");
    return 0;
}

static int parse_upstream(tg_config_ctx_t *c, const tg_conf_node_t *key, const tg_conf_node_t *n,
                          tg_upstream_conf_t *u)
{
    if (key->len == 0)
        return tg_conf_error(c->err, key, "upstream name must not be empty");
    const char *where = tg_arena_printf(c->arena, "upstream '%s'", key->value);
    upstream_keys_t k = {.u = *u};
    if (tg_conf_read(n, upstream_fields, where, &k, c->err) < 0)
        return -1;
    *u = k.u;
    if (u->resolve_ms > 0 && u->resolve_ms < 100)
        return tg_conf_error(c->err, tg_conf_map_get(n, "resolve"),
                             "resolve must be at least 100ms (or 0s: at load only)");
    u->shared = tg_ushared_get(u->name);
    if (u->shared == NULL)
        return tg_conf_error(c->err, key, "out of memory");
    if (parse_targets(c, k.targets, u) < 0 ||
        tg_isolation_conf_parse(n, k.hash_key, k.health, k.circuit, k.outlier, c->arena, u,
                                c->err) < 0)
        return -1;
    /* Last: server_name defaults to the targets' hosts. */
    return tg_tls_client_parse(k.tls, c->cfg->dir, u->targets, u->ntargets, &u->tls, c->err);
}

int tg_config_parse_upstreams(tg_config_ctx_t *c, const tg_conf_node_t *n)
{
    tg_config_t *cfg = c->cfg;
    if (n == NULL)
        return 0;
    if (tg_config_want(c, n, TG_CONF_MAP) < 0)
        return -1;
    cfg->upstreams = tg_arena_calloc(c->arena, n->count * sizeof(*cfg->upstreams) + 1);
    for (size_t i = 0; i < n->count; i++) {
        tg_upstream_conf_t *u = &cfg->upstreams[i];
        u->index = i;
        /* Named before it is read: a route naming a broken upstream gets no
         * second error, and lookups never meet a NULL name. Counted first:
         * unref releases the shared state a failed parse took. */
        u->name = tg_config_dup(c, n->keys[i]->value);
        cfg->nupstreams++;
        if (parse_upstream(c, n->keys[i], n->items[i], u) < 0 && RECOVER(c) < 0)
            return -1;
    }
    return 0;
}
