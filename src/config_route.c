/*
 * The `routes:` section: each route's match (host, path, regex, methods,
 * headers), its name, its one action (upstream, split, aggregate, or a
 * route action) and its policies. Compiled once here: regexes JIT-compiled,
 * paths canonicalised as requests are.
 */
#include "aggregate.h"
#include "config_ctx.h"
#include "isolation_conf.h"
#include "retry_policy.h"
#include "route_action.h"
#include "router.h"
#include "split.h"
#include "tollgate/text.h"

/* ---- routes: match ----------------------------------------------------- */

static bool valid_host(const char *h)
{
    size_t len = strlen(h);
    if (len > 2 && h[0] == '[' && h[len - 1] == ']') /* IPv6 literal, RFC 3986 section 3.2.2 */
        return strspn(h + 1, "0123456789abcdef:.") == len - 2;
    return len > 0 && strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789-._") == len;
}

static int parse_match_host(tg_config_ctx_t *c, const tg_conf_node_t *n, tg_route_t *r)
{
    const char *s;
    if (tg_conf_get_string(n, &s, c->err) < 0)
        return -1;
    if (strcmp(s, "*") == 0) /* any host: same as no condition */
        return 0;
    char *h = tg_config_dup_case(c, s, false);
    if (h[0] == '*' && h[1] == '.') {
        r->host_wildcard = true;
        h++; /* keep the dot: ".example.com" matches only real subdomains */
        if (!valid_host(h + 1))
            return tg_conf_error(c->err, n, "invalid host '%s'", s);
    } else if (!valid_host(h)) {
        return tg_conf_error(c->err, n, "invalid host '%s'", s);
    }
    r->host = h;
    return 0;
}

static int parse_match_regex(tg_config_ctx_t *c, const tg_conf_node_t *n, tg_route_t *r)
{
    const char *s;
    int code;
    PCRE2_SIZE off;
    if (tg_conf_get_string(n, &s, c->err) < 0)
        return -1;
    r->regex = pcre2_compile((PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (r->regex == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof(msg));
        return tg_conf_error(c->err, n, "invalid path_regex: %s at offset %zu", (char *)msg,
                             (size_t)off);
    }
    /* JIT is only faster: when it is unavailable, the interpreter still matches. */
    pcre2_jit_compile(r->regex, PCRE2_JIT_COMPLETE);
    r->path_kind = TG_PATH_REGEX;
    return 0;
}

static int parse_match_path(tg_config_ctx_t *c, const tg_conf_node_t *key, const tg_conf_node_t *n,
                            tg_route_t *r)
{
    if (r->path_kind != TG_PATH_ANY)
        return tg_conf_error(c->err, key,
                             "only one of path, path_prefix and path_regex may be set");
    if (strcmp(key->value, "path_regex") == 0)
        return parse_match_regex(c, n, r);
    r->path_kind = strcmp(key->value, "path") == 0 ? TG_PATH_EXACT : TG_PATH_PREFIX;
    return tg_config_get_path(c, n, &r->path, &r->path_len);
}

static int parse_match_methods(tg_config_ctx_t *c, const tg_conf_node_t *n, tg_route_t *r)
{
    size_t nother = 0;
    if (tg_config_want_items(c, n, "method") < 0)
        return -1;
    r->method_names = tg_arena_calloc(c->arena, (n->count + 1) * sizeof(char *));
    for (size_t i = 0; i < n->count; i++) {
        const char *s;
        if (tg_conf_get_string(n->items[i], &s, c->err) < 0)
            return -1;
        if (!tg_token_valid(s, n->items[i]->len))
            return tg_conf_error(c->err, n->items[i], "invalid method '%s'", s);
        char *m = tg_config_dup_case(c, s, true);
        uint32_t bit = tg_router_method_bit(m, strlen(m));
        if (bit == TG_METHOD_OTHER)
            r->method_names[nother++] = m;
        r->methods |= bit;
    }
    if (nother == 0)
        r->method_names = NULL;
    return 0;
}

static int parse_match_headers(tg_config_ctx_t *c, const tg_conf_node_t *n, tg_route_t *r)
{
    if (tg_config_want(c, n, TG_CONF_MAP) < 0)
        return -1;
    r->headers = tg_arena_calloc(c->arena, (n->count + 1) * sizeof(*r->headers));
    for (size_t i = 0; i < n->count; i++) {
        const char *value;
        if (!tg_token_valid(n->keys[i]->value, n->keys[i]->len))
            return tg_conf_error(c->err, n->keys[i], "invalid header name '%s'", n->keys[i]->value);
        if (tg_conf_get_string(n->items[i], &value, c->err) < 0)
            return -1;
        r->headers[i].name = tg_config_dup_case(c, n->keys[i]->value, false);
        r->headers[i].value = tg_config_dup(c, value);
        r->nheaders++;
    }
    return 0;
}

static const char *const match_keys[] = {"host",    "path",    "path_prefix", "path_regex",
                                         "methods", "headers", NULL};

static bool is_match_key(const char *k)
{
    for (size_t i = 0; match_keys[i] != NULL; i++)
        if (strcmp(match_keys[i], k) == 0)
            return true;
    return false;
}

static int parse_match(tg_config_ctx_t *c, const tg_conf_node_t *n, tg_route_t *r)
{
    if (n == NULL || n->type == TG_CONF_NULL)
        return 0;
    if (tg_conf_check_keys_in(n, match_keys, "match", c->err) < 0 &&
        (n->type != TG_CONF_MAP || RECOVER(c) < 0))
        return -1;
    for (size_t i = 0; i < n->count; i++) {
        const char *k = n->keys[i]->value;
        const tg_conf_node_t *v = n->items[i];
        int rc = 0;
        if (!is_match_key(k))
            continue; /* reported above */
        if (strcmp(k, "host") == 0)
            rc = parse_match_host(c, v, r);
        else if (strcmp(k, "methods") == 0)
            rc = parse_match_methods(c, v, r);
        else if (strcmp(k, "headers") == 0)
            rc = parse_match_headers(c, v, r);
        else
            rc = parse_match_path(c, n->keys[i], v, r);
        if (rc < 0 && RECOVER(c) < 0)
            return -1;
    }
    return 0;
}

/* ---- routes ------------------------------------------------------------ */

static int parse_route_name(tg_config_ctx_t *c, const tg_conf_node_t *map, tg_route_t *r)
{
    const tg_conf_node_t *n = tg_conf_map_get(map, "name");
    const char *s;
    if (n == NULL) {
        r->name = tg_arena_printf(c->arena, "route-%zu", r->index);
        n = map;
    } else if (tg_conf_get_string(n, &s, c->err) < 0) {
        return -1;
    } else if (*s == '\0') {
        return tg_conf_error(c->err, n, "route name must not be empty");
    } else {
        r->name = tg_config_dup(c, s);
    }
    for (size_t i = 0; i < r->index; i++)
        if (c->cfg->routes[i].name != NULL && strcmp(c->cfg->routes[i].name, r->name) == 0)
            return tg_conf_error(c->err, n, "duplicate route name '%s'", r->name);
    return 0;
}

/* What a route does with a request: exactly one of these. */
static const char *const action_keys[] = {"upstream", "split",   "aggregate",
                                          "redirect", "respond", NULL};

static bool written_before(const tg_conf_node_t *a, const tg_conf_node_t *b)
{
    return a->line < b->line || (a->line == b->line && a->col < b->col);
}

/* Two actions: the error sits at the one written second. */
static int one_action(tg_config_ctx_t *c, const tg_conf_node_t *map)
{
    const tg_conf_node_t *first = NULL;
    const char *first_key = NULL;
    for (size_t i = 0; action_keys[i] != NULL; i++) {
        const tg_conf_node_t *n = tg_conf_map_get(map, action_keys[i]);
        if (n == NULL)
            continue;
        if (first == NULL) {
            first = n;
            first_key = action_keys[i];
            continue;
        }
        bool later = written_before(first, n);
        return tg_conf_error(c->err, later ? n : first,
                             "a route has one of upstream, split, aggregate, redirect and respond: "
                             "'%s' and '%s' are both set",
                             later ? first_key : action_keys[i],
                             later ? action_keys[i] : first_key);
    }
    return first == NULL ? tg_config_missing(c, map, "upstream") : 0;
}

static int unknown_upstream(tg_config_ctx_t *c, const tg_conf_node_t *n, const char *name)
{
    tg_config_t *cfg = c->cfg;
    if (c->upstreams_broken) /* already reported: the section itself is wrong */
        return tg_conf_errors_collecting() ? 0 : tg_conf_error(c->err, n, "unknown upstream");
    const char **names = tg_arena_calloc(c->arena, (cfg->nupstreams + 1) * sizeof(*names));
    for (size_t i = 0; i < cfg->nupstreams; i++)
        names[i] = cfg->upstreams[i].name;
    char hint[400];
    tg_conf_suggest(names, name, hint, sizeof(hint));
    if (cfg->nupstreams == 0)
        return tg_conf_error(c->err, n, "unknown upstream '%s' (no upstreams are defined)", name);
    return tg_conf_error(c->err, n, "unknown upstream '%s' (%s)", name, hint);
}

static int parse_route_action(tg_config_ctx_t *c, const tg_conf_node_t *map, tg_route_t *r)
{
    const tg_conf_node_t *sp = tg_conf_map_get(map, "strip_prefix");
    if (sp != NULL && tg_config_get_path(c, sp, &r->strip_prefix, &r->strip_prefix_len) < 0)
        return -1;
    const tg_conf_node_t *n = tg_conf_map_get(map, "upstream");
    const tg_conf_node_t *agg = tg_conf_map_get(map, "aggregate");
    const tg_conf_node_t *ws = tg_conf_map_get(map, "websocket");
    const char *s;
    if (one_action(c, map) < 0)
        return -1;
    if (ws != NULL && tg_conf_get_bool(ws, &r->websocket, c->err) < 0)
        return -1;
    if (tg_split_parse(c->cfg, c->arena, map, r, c->err) < 0)
        return -1;
    if (ws != NULL && r->websocket && n == NULL && r->split == NULL)
        return tg_conf_error(c->err, ws, "a websocket route needs an upstream");
    if (agg != NULL && tg_aggregate_parse(c->cfg, r, agg, &r->aggregate, c->err) < 0)
        return -1;
    if (n != NULL) {
        if (tg_conf_get_string(n, &s, c->err) < 0)
            return -1;
        r->upstream = tg_config_upstream(c->cfg, s);
        if (r->upstream == NULL)
            return unknown_upstream(c, n, s);
    }
    return tg_route_action_parse(r, map, c->err);
}

static const char *const route_keys[] = {
    "name",          "match",   "strip_prefix", "upstream",       "plugins",     "aggregate",
    "redirect",      "respond", "rewrite",      "websocket",      "host_header", "timeout",
    "max_body_size", "retry",   "split",        "split_override", "sticky",      NULL};

/* Each step is a recovery point: a wrong match does not hide a wrong
 * upstream of the same route. A route that is not a map is one error. */
static int parse_route(tg_config_ctx_t *c, tg_route_t *r)
{
    const tg_conf_node_t *m = r->node;
    if (m->type != TG_CONF_MAP) {
        r->node = NULL; /* no plugins to read either */
        tg_config_want(c, m, TG_CONF_MAP);
        return RECOVER(c);
    }
    if (tg_conf_check_keys_in(m, route_keys, "routes", c->err) < 0 && RECOVER(c) < 0)
        return -1;
    if (parse_route_name(c, m, r) < 0) {
        if (RECOVER(c) < 0)
            return -1;
        r->name = tg_arena_printf(c->arena, "route-%zu", r->index);
    }
    if (parse_match(c, tg_conf_map_get(m, "match"), r) < 0 && RECOVER(c) < 0)
        return -1;
    if (parse_route_action(c, m, r) < 0 && RECOVER(c) < 0)
        return -1;
    if (tg_route_policy_parse(m, c->arena, &r->timeout_ms, &r->max_body_size, &r->has_max_body_size,
                              &r->retry, c->err) < 0 &&
        RECOVER(c) < 0)
        return -1;
    return 0;
}

int tg_config_parse_routes(tg_config_ctx_t *c, const tg_conf_node_t *n)
{
    tg_config_t *cfg = c->cfg;
    if (n == NULL)
        return 0;
    if (tg_config_want(c, n, TG_CONF_SEQ) < 0)
        return -1;
    /* All slots exist up front so that unref can free the regexes of a failed load. */
    cfg->routes = tg_arena_calloc(c->arena, n->count * sizeof(*cfg->routes) + 1);
    cfg->nroutes = n->count;
    for (size_t i = 0; i < n->count; i++) {
        tg_route_t *r = &cfg->routes[i];
        r->index = i;
        r->node = n->items[i];
        if (parse_route(c, r) < 0)
            return -1;
    }
    tg_isolation_mark_counted(cfg);
    return 0;
}
