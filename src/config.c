/*
 * tollgate.yaml -> tg_config_t. One function per section (upstreams and
 * routes in config_upstream.c and config_route.c); the keys of each
 * map are declared as tables read by tg_conf_read() (include/tollgate/conf.h,
 * the reader plugins use too). Everything the config owns lives in one arena
 * released by the last tg_config_unref(), except the compiled regexes and the
 * router.
 */
#include "config.h"
#include "admin_guard.h"
#include "aggregate.h"
#include "chain.h"
#include "config_ctx.h"
#include "tollgate/cidr.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "conf_errors.h"
#include "conf_include.h"
#include "conf_node.h"
#include "conf_print.h"
#include "cpu_count.h"
#include "h2_session.h"
#include "log_conf.h"
#include "path_norm.h"
#include "redis.h"
#include "resolve.h"
#include "route_action.h"
#include "router.h"
#include "tls.h"
#include "trace_conf.h"
#include "upstream_shared.h"

#define MAX_WORKERS 256

typedef struct {
    tg_config_t super;
    tg_arena_t *arena;
} config_priv_t;

/* ---- helpers ----------------------------------------------------------- */

int tg_config_get_path(tg_config_ctx_t *c, const tg_conf_node_t *n, char **out, size_t *len)
{
    const char *s, *reason = NULL;
    if (tg_conf_get_string(n, &s, c->err) < 0)
        return -1;
    if (s[0] != '/')
        return tg_conf_error(c->err, n, "must start with '/'");
    *out = tg_arena_alloc(c->arena, strlen(s) + 1);
    if (tg_path_normalize(s, strlen(s), c->cfg->limits.path_flags, *out, len, &reason) < 0)
        return tg_conf_error(c->err, n, "invalid path '%s': %s", s, reason);
    (*out)[*len] = '\0';
    return 0;
}

static bool same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

/* ---- workers ----------------------------------------------------------- */

static int parse_workers(tg_config_ctx_t *c, const tg_conf_node_t *n)
{
    if (n == NULL || (n->type == TG_CONF_SCALAR && strcmp(n->value, "auto") == 0)) {
        unsigned cpus = tg_cpu_count(); /* affinity and cgroup quota (src/cpu_count.h) */
        c->cfg->workers = cpus > MAX_WORKERS ? MAX_WORKERS : cpus;
        return 0;
    }
    if (n->type != TG_CONF_SCALAR || strspn(n->value, "0123456789") != n->len || n->len == 0)
        return tg_conf_error(c->err, n, "expected 'auto' or an integer between 1 and %d",
                             MAX_WORKERS);
    uint64_t v;
    if (tg_conf_get_uint(n, 1, MAX_WORKERS, &v, c->err) < 0)
        return -1;
    c->cfg->workers = (unsigned)v;
    return 0;
}

/* ---- listen / admin ---------------------------------------------------- */

/* The keys of a listen entry and of admin; read into this, then resolved. */
typedef struct {
    const tg_conf_node_t *address, *tls, *token, *http2;
    uint32_t backlog;
} listener_keys_t;

static const tg_conf_field_t listen_fields[] = {
    {"address", TG_CONF_FIELD_NODE, TG_CONF_AT(listener_keys_t, address),
     .flags = TG_CONF_REQUIRED},
    {"tls", TG_CONF_FIELD_NODE, TG_CONF_AT(listener_keys_t, tls)},
    /* listen(2) queue of each worker's socket. 4096 is Linux's somaxconn default
     * since 5.4; a burst beyond the queue drops SYNs (a 1 s client stall). The
     * kernel caps the value at net.core.somaxconn (src/server.c logs that). */
    {"backlog", TG_CONF_FIELD_UINT, TG_CONF_AT(listener_keys_t, backlog), .min = 1, .max = 65535,
     .def = TG_LISTEN_BACKLOG},
    /* off | prior_knowledge (tg_h2_mode_t); read in parse_listen, after tls. */
    {"http2", TG_CONF_FIELD_NODE, TG_CONF_AT(listener_keys_t, http2)},
    TG_CONF_END,
};

/* `http2:` of a listener: h2c with prior knowledge is for plain listeners;
 * over TLS the client asks for h2 by ALPN (tls.alpn). */
static int parse_listen_http2(tg_config_ctx_t *c, const tg_conf_node_t *n, tg_listen_conf_t *l)
{
    static const char *const names[] = {"off", "prior_knowledge", NULL};
    const char *s;
    l->http2 = TG_H2_OFF;
    tg_h2_metrics_register(); /* any listener may speak h2 (TLS: by ALPN) */
    if (n == NULL)
        return 0;
    if (tg_conf_get_string(n, &s, c->err) < 0)
        return -1;
    for (unsigned i = 0; names[i] != NULL; i++)
        if (strcmp(s, names[i]) == 0)
            l->http2 = (uint8_t)i;
    if (strcmp(s, names[l->http2]) != 0)
        return tg_conf_error(c->err, n, "invalid http2 '%s' (expected off or prior_knowledge)", s);
    if (l->http2 == TG_H2_PRIOR_KNOWLEDGE && l->tls != NULL)
        return tg_conf_error(c->err, n,
                             "http2: prior_knowledge is for plain listeners; over TLS, h2 is "
                             "chosen by tls.alpn");
    return 0;
}

static const tg_conf_field_t admin_fields[] = {
    {"address", TG_CONF_FIELD_NODE, TG_CONF_AT(listener_keys_t, address),
     .flags = TG_CONF_REQUIRED},
    {"token", TG_CONF_FIELD_NODE, TG_CONF_AT(listener_keys_t, token)},
    TG_CONF_END,
};

/* k->address, already read from the entry's map, into out. */
static int parse_listener(tg_config_ctx_t *c, const listener_keys_t *k, tg_listen_conf_t *out)
{
    const char *text;
    char eb[300];
    if (tg_conf_get_string(k->address, &text, c->err) < 0)
        return -1;
    if (tg_config_parse_address(text, &out->addr, &out->addrlen, eb, sizeof(eb)) < 0)
        return tg_conf_error(c->err, k->address, "%s", eb);
    out->name = tg_config_dup(c, text);
    return 0;
}

static int parse_listen_entry(tg_config_ctx_t *c, const tg_conf_node_t *n, tg_listen_conf_t *l)
{
    tg_config_t *cfg = c->cfg;
    listener_keys_t k;
    if (tg_conf_read(n, listen_fields, "listen", &k, c->err) < 0 || parse_listener(c, &k, l) < 0)
        return -1;
    l->backlog = k.backlog;
    for (size_t j = 0; j < cfg->nlisteners; j++)
        if (same_sockaddr(&cfg->listeners[j].addr, &l->addr))
            return tg_conf_error(c->err, k.address, "duplicate listen address '%s'", l->name);
    if (tg_tls_server_parse(k.tls, cfg->dir, l->name, &l->tls, c->err) < 0)
        return -1;
    return parse_listen_http2(c, k.http2, l);
}

static int parse_listen(tg_config_ctx_t *c, const tg_conf_node_t *n)
{
    if (tg_config_want_items(c, n, "listen address") < 0)
        return -1;
    tg_config_t *cfg = c->cfg;
    cfg->listeners = tg_arena_calloc(c->arena, n->count * sizeof(*cfg->listeners));
    for (size_t i = 0; i < n->count; i++) {
        tg_listen_conf_t *l = &cfg->listeners[cfg->nlisteners];
        if (parse_listen_entry(c, n->items[i], l) < 0) {
            if (RECOVER(c) < 0)
                return -1;
            tg_tls_server_free(l->tls);
            memset(l, 0, sizeof(*l));
            continue;
        }
        cfg->nlisteners++;
    }
    return 0;
}

/* Only the digest is kept: /config and a core dump have no token to show. */
static int parse_admin_token(tg_config_ctx_t *c, const tg_conf_node_t *n)
{
    const char *s;
    if (n == NULL)
        return 0;
    if (tg_conf_get_string(n, &s, c->err) < 0)
        return -1;
    if (!tg_admin_token_valid(s))
        return tg_conf_error(c->err, n,
                             "admin token must be at least %d characters of A-Z a-z 0-9 "
                             "- . _ ~ + / (then '=' padding): what a Bearer header carries",
                             TG_ADMIN_TOKEN_MIN);
    tg_admin_token_digest(s, strlen(s), c->cfg->admin_token_sha256);
    c->cfg->has_admin_token = true;
    return 0;
}

static int parse_admin(tg_config_ctx_t *c, const tg_conf_node_t *n)
{
    tg_config_t *cfg = c->cfg;
    listener_keys_t k;
    if (n == NULL)
        return 0;
    /* Named errors rather than "unknown key": they are listen's keys. */
    if (tg_conf_map_get(n, "tls") != NULL)
        return tg_conf_error(c->err, tg_conf_map_get(n, "tls"), "tls is not supported on admin");
    if (tg_conf_map_get(n, "backlog") != NULL)
        return tg_conf_error(c->err, tg_conf_map_get(n, "backlog"),
                             "backlog is not supported on admin");
    if (tg_conf_map_get(n, "http2") != NULL)
        return tg_conf_error(c->err, tg_conf_map_get(n, "http2"),
                             "http2 is not supported on admin");
    if (tg_conf_read(n, admin_fields, "admin", &k, c->err) < 0 ||
        parse_listener(c, &k, &cfg->admin) < 0)
        return -1;
    for (size_t j = 0; j < cfg->nlisteners; j++)
        if (same_sockaddr(&cfg->listeners[j].addr, &cfg->admin.addr))
            return tg_conf_error(c->err, k.address, "admin address '%s' is also a listen address",
                                 cfg->admin.name);
    cfg->has_admin = true;
    return parse_admin_token(c, k.token);
}

/* ---- trusted_proxies --------------------------------------------------- */

static int parse_trusted_proxies(tg_config_ctx_t *c, const tg_conf_node_t *n)
{
    tg_config_t *cfg = c->cfg;
    if (n == NULL)
        return 0;
    if (tg_config_want(c, n, TG_CONF_SEQ) < 0)
        return -1;
    cfg->trusted_proxies = tg_arena_calloc(c->arena, (n->count + 1) * sizeof(tg_cidr_t));
    for (size_t i = 0; i < n->count; i++) {
        const char *text = NULL;
        if (tg_conf_get_string(n->items[i], &text, c->err) == 0 &&
            tg_cidr_parse(text, &cfg->trusted_proxies[cfg->ntrusted_proxies]) == 0) {
            cfg->ntrusted_proxies++;
            continue;
        }
        if (n->items[i]->type == TG_CONF_SCALAR)
            tg_conf_error(c->err, n->items[i], "invalid IP address or CIDR '%s'", text);
        if (RECOVER(c) < 0)
            return -1;
    }
    return 0;
}

/* ---- limits ------------------------------------------------------------ */

/* tg_limits_t and the words that become its flags. */
typedef struct {
    tg_limits_t limits;
    unsigned encoded_slashes; /* index in encoded_slashes_names */
} limits_keys_t;

/* encoded_slashes: reject (default) answers 400 to %2F; keep forwards it as
 * an ordinary character of its segment (src/path_norm.h). */
static const char *const encoded_slashes_names[] = {"reject", "keep", NULL};
/* headers_with_underscores: drop | reject | allow (src/client_fields.h), in
 * the order of tg_underscores_t. */
static const char *const underscores_names[] = {"drop", "reject", "allow", NULL};

/* limits.http2: RFC 9113 bounds (a window of at most 2^31-1, stream counts
 * that fit SETTINGS); at least 1 stream, a window of at least one frame's
 * worth so that a stream can move at all, and a header list that holds a
 * request line's worth of fields. */
#define H2_LIMIT(key, type, field, ...)                                           \
    {                                                                             \
        key, TG_CONF_FIELD_##type, TG_CONF_AT(tg_h2_limits_t, field), __VA_ARGS__ \
    }
static const tg_conf_field_t h2_limit_fields[] = {
    H2_LIMIT("max_concurrent_streams", UINT, max_concurrent_streams, .min = 1, .max = 65536,
             .def = 128),
    H2_LIMIT("initial_window_size", SIZE, initial_window_size, .min = 16384, .max = 0x7fffffff,
             .def = 256 * 1024),
    H2_LIMIT("max_header_list_size", SIZE, max_header_list_size, .min = 1024, .max = 16u << 20,
             .def = 32 * 1024),
    H2_LIMIT("idle_timeout", DURATION, idle_timeout_ms, .min = 1, .def = 60000),
    TG_CONF_END,
};

static int parse_h2_limits(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    /* Absent: defaults only, and no name (`tollgate -T` would show an absent
     * named map as a section of its own). */
    return tg_conf_read(n, h2_limit_fields, n != NULL ? "limits.http2" : NULL, out, err);
}

#define LIMIT(key, type, field, ...)                                                    \
    {                                                                                   \
        key, TG_CONF_FIELD_##type, TG_CONF_AT(limits_keys_t, limits.field), __VA_ARGS__ \
    }

static const tg_conf_field_t limit_fields[] = {
    LIMIT("header_timeout", DURATION, header_timeout_ms, .min = 1, .def = 10000),
    LIMIT("idle_timeout", DURATION, idle_timeout_ms, .min = 1, .def = 60000),
    LIMIT("body_timeout", DURATION, body_timeout_ms, .min = 1, .def = 60000),
    LIMIT("send_timeout", DURATION, send_timeout_ms, .min = 1, .def = 60000),
    /* 0: close at once on shutdown. */
    LIMIT("drain_timeout", DURATION, drain_timeout_ms, .def = 30000),
    /* A request head must hold at least a request line; 1 MiB bounds the
     * per-connection buffer that has to hold it whole. */
    LIMIT("max_header_size", SIZE, max_header_size, .min = 1024, .max = 1u << 20, .def = 16 * 1024),
    LIMIT("max_body_size", SIZE, max_body_size, .def = 10 * 1024 * 1024),
    LIMIT("max_headers", UINT, max_headers, .min = 1, .max = 10000, .def = 100),
    {"encoded_slashes", TG_CONF_FIELD_ENUM, TG_CONF_AT(limits_keys_t, encoded_slashes),
     .names = encoded_slashes_names},
    LIMIT("headers_with_underscores", ENUM, headers_with_underscores, .names = underscores_names,
          .def = TG_UNDERSCORES_DROP),
    {"http2", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(limits_keys_t, limits.http2),
     .parse = parse_h2_limits, .flags = TG_CONF_ABSENT},
    TG_CONF_END,
};

/* Also when limits: is absent (n NULL): the table holds the defaults. */
static int parse_limits(tg_config_ctx_t *c, const tg_conf_node_t *n)
{
    limits_keys_t k = {0};
    if (tg_conf_read(n, limit_fields, "limits", &k, c->err) < 0)
        return -1;
    c->cfg->limits = k.limits;
    if (k.encoded_slashes == 1)
        c->cfg->limits.path_flags |= TG_PATH_KEEP_ENCODED_SLASH;
    return 0;
}

/* ---- upstreams and routes: config_upstream.c, config_route.c ----------- */

static int parse_upstreams(tg_config_ctx_t *c, const tg_conf_node_t *n)
{
    return tg_config_parse_upstreams(c, n);
}

static int parse_routes(tg_config_ctx_t *c, const tg_conf_node_t *n)
{
    return tg_config_parse_routes(c, n);
}

/* ---- redis ------------------------------------------------------------- */

static int parse_redis(tg_config_ctx_t *c, const tg_conf_node_t *n)
{
    return n == NULL ? 0 : tg_redis_conf_parse(c->cfg, n, c->err);
}

static int parse_log(tg_config_ctx_t *c, const tg_conf_node_t *n)
{
    return tg_log_conf_parse(c->cfg, n, c->err);
}

static int parse_tracing(tg_config_ctx_t *c, const tg_conf_node_t *n)
{
    return n == NULL ? 0 : tg_tracing_conf_parse(c->cfg, n, &c->cfg->tracing, c->err);
}

/* ---- top level --------------------------------------------------------- */

static void section_failed(tg_config_ctx_t *c, const char *name)
{
    if (strcmp(name, "upstreams") == 0)
        c->upstreams_broken = true;
}

/* An optional section left empty ("limits:") means its defaults. */
static const tg_conf_node_t *optional(const tg_conf_node_t *n)
{
    return n != NULL && n->type == TG_CONF_NULL ? NULL : n;
}

/* The sections as tg_conf_read() callbacks, also run when absent (n NULL).
 * Each is a recovery point: an error in limits does not hide one in routes. */
#define SECTION(name)                                                               \
    static int section_##name(const tg_conf_node_t *n, void *c, tg_conf_err_t *err) \
    {                                                                               \
        (void)err; /* the same as tg_config_ctx_t's */                              \
        if (parse_##name(c, optional(n)) == 0)                                      \
            return 0;                                                               \
        section_failed(c, #name);                                                   \
        return RECOVER((tg_config_ctx_t *)c);                                       \
    }
SECTION(workers)
SECTION(admin)
SECTION(trusted_proxies)
SECTION(limits)
SECTION(upstreams)
SECTION(routes)
SECTION(redis)
SECTION(tracing)
SECTION(log)

static int section_resolver(const tg_conf_node_t *n, void *arg, tg_conf_err_t *err)
{
    tg_config_ctx_t *c = arg;
    return tg_resolver_conf_parse(n, c->arena, c->cfg, err);
}

/* Required, and "listen:" left empty is an error at its own position. Not
 * TG_CONF_REQUIRED: a missing listen must not keep the other sections from
 * being checked (tg_conf_read skips CUSTOM fields after a failed one). */
static int section_listen(const tg_conf_node_t *n, void *arg, tg_conf_err_t *err)
{
    (void)err;
    tg_config_ctx_t *c = arg;
    if (n == NULL)
        tg_config_missing(c, c->root, "listen");
    return n != NULL && parse_listen(c, n) == 0 ? 0 : RECOVER(c);
}

/* Read into the tg_config_ctx_t. Order matters: routes refer to upstreams, admin is
 * checked against listen, limits come before the paths of routes. */
static const tg_conf_field_t root_fields[] = {
    {"workers", TG_CONF_FIELD_CUSTOM, .parse = section_workers, .flags = TG_CONF_ABSENT},
    {"listen", TG_CONF_FIELD_CUSTOM, .parse = section_listen, .flags = TG_CONF_ABSENT},
    {"admin", TG_CONF_FIELD_CUSTOM, .parse = section_admin, .flags = TG_CONF_ABSENT},
    {"trusted_proxies", TG_CONF_FIELD_CUSTOM, .parse = section_trusted_proxies,
     .flags = TG_CONF_ABSENT},
    {"limits", TG_CONF_FIELD_CUSTOM, .parse = section_limits, .flags = TG_CONF_ABSENT},
    {"resolver", TG_CONF_FIELD_CUSTOM, .parse = section_resolver},
    {"upstreams", TG_CONF_FIELD_CUSTOM, .parse = section_upstreams, .flags = TG_CONF_ABSENT},
    {"routes", TG_CONF_FIELD_CUSTOM, .parse = section_routes, .flags = TG_CONF_ABSENT},
    {"redis", TG_CONF_FIELD_CUSTOM, .parse = section_redis, .flags = TG_CONF_ABSENT},
    {"tracing", TG_CONF_FIELD_CUSTOM, .parse = section_tracing, .flags = TG_CONF_ABSENT},
    {"log", TG_CONF_FIELD_CUSTOM, .parse = section_log, .flags = TG_CONF_ABSENT},
    {"plugins", TG_CONF_FIELD_NODE, TG_CONF_AT(tg_config_ctx_t, plugins)},
    {"plugin_path", TG_CONF_FIELD_NODE, TG_CONF_AT(tg_config_ctx_t, plugin_path)},
    /* Resolved before this table is read (src/conf_include.h). */
    {"include", TG_CONF_FIELD_NODE, TG_CONF_AT(tg_config_ctx_t, include_node)},
    TG_CONF_END,
};

/* Plugins are created after everything else so that their create() sees a
 * complete config; the global chain first, then each route's. */
static int parse_plugins(tg_config_ctx_t *c)
{
    tg_config_t *cfg = c->cfg;
    const tg_conf_node_t *pp = c->plugin_path;
    const char *dir = tg_chain_default_plugin_dir();
    if (pp != NULL && tg_conf_get_string(pp, &dir, c->err) < 0)
        return -1;
    if (pp != NULL && dir[0] != '/')
        cfg->plugin_path = tg_arena_printf(c->arena, "%s/%s", cfg->dir, dir);
    else
        cfg->plugin_path = tg_arena_strndup(c->arena, dir, strlen(dir));
    if (tg_chain_parse(cfg, c->plugins, NULL, NULL, &cfg->global_chain, c->err) < 0)
        return -1;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        tg_route_t *r = &cfg->routes[i];
        const tg_conf_node_t *list = tg_conf_map_get(r->node, "plugins");
        if (list == NULL)
            r->chain = tg_chain_copy(cfg->global_chain);
        else if (tg_chain_parse(cfg, list, r, cfg->global_chain, &r->chain, c->err) < 0)
            return -1;
    }
    return 0;
}

static tg_config_t *config_new(const char *path)
{
    config_priv_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->arena = tg_arena_create(16384);
    tg_config_t *cfg = &p->super;
    atomic_init(&cfg->refcount, 1);
    cfg->file = tg_arena_strndup(p->arena, path, strlen(path));
    const char *slash = strrchr(path, '/');
    cfg->dir = slash ? tg_arena_strndup(p->arena, path, (size_t)(slash - path) + (slash == path))
                     : tg_arena_strndup(p->arena, ".", 1);
    return cfg;
}

/* The first message, and how many more there are, for callers that show one. */
static void first_error(const tg_conf_errors_t *errs, tg_conf_err_t *err)
{
    if (errs->total == 1) {
        memcpy(err->msg, errs->msgs[0], sizeof(err->msg));
        return;
    }
    char more[48];
    snprintf(more, sizeof(more), " (and %zu more error%s)", errs->total - 1,
             errs->total == 2 ? "" : "s");
    size_t room = sizeof(err->msg) - strlen(more) - 1;
    snprintf(err->msg, sizeof(err->msg), "%.*s%s", (int)room, errs->msgs[0], more);
}

static int load_tree(tg_config_ctx_t *c, const tg_conf_node_t *root)
{
    tg_config_t *cfg = c->cfg;
    if (tg_conf_include(root, cfg->dir, &c->include, &root, c->err) < 0 && RECOVER(c) < 0)
        return -1;
    c->root = root;
    if (tg_conf_read(root, root_fields, NULL, c, c->err) < 0 && RECOVER(c) < 0)
        return -1;
    /* Names are resolved once the upstreams read cleanly (src/resolve.h). */
    if (tg_conf_errors_mark() == 0 && tg_resolve_load(cfg, c->err) < 0 && RECOVER(c) < 0)
        return -1;
    if (parse_plugins(c) < 0 && RECOVER(c) < 0)
        return -1;
    /* Routes that failed are half read: the router is built from a clean load only. */
    if (tg_conf_errors_mark() == 0) {
        if (tg_router_build(cfg, c->err) < 0 && RECOVER(c) < 0)
            return -1;
    }
    return 0;
}

int tg_config_load_opts(const char *path, const tg_config_opts_t *opts, tg_config_t **out,
                        tg_conf_err_t *err)
{
    tg_conf_doc_t *doc;
    tg_conf_errors_t local, *errs = opts != NULL && opts->errors != NULL ? opts->errors : &local;
    *out = NULL;
    memset(errs, 0, sizeof(*errs));
    if (tg_conf_doc_load(path, &doc, err) < 0) {
        errs->total = errs->n = 1;
        memcpy(errs->msgs[0], err->msg, sizeof(err->msg));
        return -1;
    }
    tg_config_t *cfg = config_new(path);
    if (cfg == NULL) {
        tg_conf_doc_free(doc);
        return tg_conf_error(err, NULL, "%s: out of memory", path);
    }
    cfg->check_only = opts != NULL && opts->check_only;
    tg_config_ctx_t c = {.cfg = cfg, .arena = ((config_priv_t *)cfg)->arena, .err = err};
    tg_conf_print_t *print = opts != NULL && opts->print != NULL ? tg_conf_print_start() : NULL;
    tg_conf_errors_begin(errs);
    int rc = load_tree(&c, tg_conf_doc_root(doc));
    tg_conf_errors_end();
    if (rc == 0 && errs->total > 0) {
        first_error(errs, err);
        rc = -1;
    }
    if (rc == 0 && print != NULL)
        tg_conf_print_write(print, c.root, cfg, opts->print);
    tg_conf_print_free(print);
    /* The nodes die with the document. */
    for (size_t i = 0; i < cfg->nroutes; i++)
        cfg->routes[i].node = NULL;
    tg_conf_include_free(c.include);
    tg_conf_doc_free(doc);
    if (rc < 0) {
        tg_config_unref(cfg);
        return -1;
    }
    *out = cfg;
    return 0;
}

int tg_config_load(const char *path, tg_config_t **out, tg_conf_err_t *err)
{
    return tg_config_load_opts(path, NULL, out, err);
}

tg_config_t *tg_config_ref(tg_config_t *cfg)
{
    unsigned old = atomic_fetch_add(&cfg->refcount, 1);
    assert(old > 0);
    (void)old;
    return cfg;
}

void tg_config_unref(tg_config_t *cfg)
{
    if (cfg == NULL)
        return;
    unsigned old = atomic_fetch_sub(&cfg->refcount, 1);
    assert(old > 0);
    if (old != 1)
        return;
    if (cfg->router != NULL)
        tg_router_free(cfg->router);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        tg_chain_free(cfg->routes[i].chain);
        tg_aggregate_free(cfg->routes[i].aggregate);
        tg_route_action_free(&cfg->routes[i]);
    }
    tg_chain_free(cfg->global_chain);
    tg_chain_destroy_instances(cfg);
    for (size_t i = 0; i < cfg->nroutes; i++)
        pcre2_code_free(cfg->routes[i].regex);
    tg_redis_conf_free(cfg->redis);
    tg_tracing_conf_unref(cfg->tracing);
    free(cfg->log.path);
    for (size_t i = 0; i < cfg->nlisteners; i++)
        tg_tls_server_free(cfg->listeners[i].tls);
    tg_resolve_free(cfg);
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        tg_upstream_conf_t *u = &cfg->upstreams[i];
        tg_tls_client_free(u->tls);
        for (size_t j = 0; j < u->ntargets; j++)
            tg_tshared_put(u->targets[j].shared);
        tg_ushared_put(u->shared);
    }
    config_priv_t *p = (config_priv_t *)cfg;
    tg_arena_destroy(p->arena);
    free(p);
}

tg_upstream_conf_t *tg_config_upstream(const tg_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nupstreams; i++)
        if (strcmp(cfg->upstreams[i].name, name) == 0)
            return &cfg->upstreams[i];
    return NULL;
}

bool tg_config_is_trusted_proxy(const tg_config_t *cfg, const struct sockaddr *addr)
{
    return tg_cidr_list_contains(cfg->trusted_proxies, cfg->ntrusted_proxies, addr);
}
