/*
 * tollgate.yaml -> tg_config_t. One function per section; the keys of each
 * map are declared as tables read by tg_conf_read() (include/tollgate/conf.h,
 * the reader plugins use too). Everything the config owns lives in one arena
 * released by the last tg_config_unref(), except the compiled regexes and the
 * router.
 */
#include "config.h"
#include "admin_guard.h"
#include "aggregate.h"
#include "chain.h"
#include "tollgate/cidr.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
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
#include "isolation_conf.h"
#include "log_conf.h"
#include "path_norm.h"
#include "redis.h"
#include "resolve.h"
#include "retry_policy.h"
#include "route_action.h"
#include "router.h"
#include "split.h"
#include "tls.h"
#include "tollgate/text.h"
#include "trace_conf.h"
#include "upstream_shared.h"

#define MAX_WORKERS 256

typedef struct {
    tg_config_t super;
    tg_arena_t *arena;
} config_priv_t;

typedef struct {
    tg_config_t *cfg;
    tg_arena_t *arena;
    tg_conf_err_t *err;
    const tg_conf_node_t *plugins, *plugin_path; /* read after every other section */
    const tg_conf_node_t *include_node;          /* never present: merged away */
    bool upstreams_broken;      /* the section failed whole: no "unknown upstream" then */
    const tg_conf_node_t *root; /* includes merged */
    tg_conf_include_t *include; /* the included files, freed after the load */
} ctx_t;

/* A recovery point (src/conf_errors.h): 0 when the load goes on. */
#define RECOVER(c) tg_conf_errors_recover((c)->err)

/* ---- helpers ----------------------------------------------------------- */

static int missing(ctx_t *c, const tg_conf_node_t *map, const char *key)
{
    return tg_conf_error(c->err, map, "missing required key '%s'", key);
}

static int want(ctx_t *c, const tg_conf_node_t *n, tg_conf_type_t type)
{
    if (n->type == type)
        return 0;
    const char *what = type == TG_CONF_MAP ? "a map" : "a sequence";
    if (n->type == TG_CONF_SCALAR)
        return tg_conf_error(c->err, n, "expected %s, got '%s'", what, n->value);
    return tg_conf_error(c->err, n, "expected %s", what);
}

/* A non-empty sequence; what names the items for the error message. */
static int want_items(ctx_t *c, const tg_conf_node_t *n, const char *what)
{
    if (want(c, n, TG_CONF_SEQ) < 0)
        return -1;
    if (n->count == 0)
        return tg_conf_error(c->err, n, "expected at least one %s", what);
    return 0;
}

static char *dup_str(ctx_t *c, const char *s)
{
    return tg_arena_strndup(c->arena, s, strlen(s));
}

static char *dup_lower(ctx_t *c, const char *s)
{
    char *d = dup_str(c, s);
    for (char *p = d; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

static char *dup_upper(ctx_t *c, const char *s)
{
    char *d = dup_str(c, s);
    for (char *p = d; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return d;
}

/* A path that must start with '/', canonicalised as request paths are
 * (src/path_norm.h) so that "/v1/a%3ab" meets a request for "/v1/a:b";
 * limits are parsed before routes. */
static int get_path(ctx_t *c, const tg_conf_node_t *n, char **out, size_t *len)
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

/* ---- addresses --------------------------------------------------------- */

typedef struct {
    char host[256];
    const char *port; /* points into the text */
    unsigned portnum;
    size_t host_end; /* offset in the text where ":port" starts */
    bool bracketed;
    bool wildcard; /* ":port" or "*:port" */
} hostport_t;

static int split_port(const char *text, const char *colon, hostport_t *hp, char *eb, size_t el)
{
    if (colon == NULL || colon[1] == '\0') {
        snprintf(eb, el, "missing port in '%s'", text);
        return -1;
    }
    unsigned long v = 0;
    const char *p = colon + 1;
    for (; *p >= '0' && *p <= '9' && v <= 65535; p++)
        v = v * 10 + (unsigned long)(*p - '0');
    if (*p != '\0' || v == 0 || v > 65535) {
        snprintf(eb, el, "invalid port in '%s': expected 1 to 65535", text);
        return -1;
    }
    hp->port = colon + 1;
    hp->portnum = (unsigned)v;
    hp->host_end = (size_t)(colon - text);
    return 0;
}

static int split_address(const char *text, hostport_t *hp, char *eb, size_t el)
{
    memset(hp, 0, sizeof(*hp));
    const char *host = text, *host_end, *colon;
    if (text[0] == '[') {
        host = text + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL || (host_end[1] != ':' && host_end[1] != '\0')) {
            snprintf(eb, el, "invalid address '%s'", text);
            return -1;
        }
        colon = host_end[1] == ':' ? host_end + 1 : NULL;
        hp->bracketed = true;
    } else {
        colon = strrchr(text, ':');
        host_end = colon != NULL ? colon : text + strlen(text);
        if (memchr(text, ':', (size_t)(host_end - text)) != NULL) {
            snprintf(eb, el, "invalid address '%s': IPv6 addresses must be in brackets", text);
            return -1;
        }
    }
    size_t hl = (size_t)(host_end - host);
    if (hl >= sizeof(hp->host)) {
        snprintf(eb, el, "host name too long in '%s'", text);
        return -1;
    }
    memcpy(hp->host, host, hl);
    hp->host[hl] = '\0';
    hp->wildcard = !hp->bracketed && (hl == 0 || strcmp(hp->host, "*") == 0);
    return split_port(text, colon, hp, eb, el);
}

static int resolve(const hostport_t *hp, struct sockaddr_storage *ss, socklen_t *len, char *eb,
                   size_t el)
{
    memset(ss, 0, sizeof(*ss));
    if (hp->wildcard) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)hp->portnum)};
        sin.sin_addr.s_addr = htonl(INADDR_ANY);
        memcpy(ss, &sin, sizeof(sin));
        *len = sizeof(sin);
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    hints.ai_flags = AI_NUMERICSERV | (hp->bracketed ? AI_NUMERICHOST : 0);
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(hp->host, hp->port, &hints, &res);
    if (rc != 0) {
        snprintf(eb, el, "cannot resolve '%s': %s", hp->host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int tg_config_parse_address(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                            char *errbuf, size_t errlen)
{
    hostport_t hp;
    if (split_address(text, &hp, errbuf, errlen) < 0)
        return -1;
    return resolve(&hp, ss, len, errbuf, errlen);
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

static int parse_workers(ctx_t *c, const tg_conf_node_t *n)
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
static int parse_listen_http2(ctx_t *c, const tg_conf_node_t *n, tg_listen_conf_t *l)
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
static int parse_listener(ctx_t *c, const listener_keys_t *k, tg_listen_conf_t *out)
{
    const char *text;
    char eb[300];
    if (tg_conf_get_string(k->address, &text, c->err) < 0)
        return -1;
    if (tg_config_parse_address(text, &out->addr, &out->addrlen, eb, sizeof(eb)) < 0)
        return tg_conf_error(c->err, k->address, "%s", eb);
    out->name = dup_str(c, text);
    return 0;
}

static int parse_listen_entry(ctx_t *c, const tg_conf_node_t *n, tg_listen_conf_t *l)
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

static int parse_listen(ctx_t *c, const tg_conf_node_t *n)
{
    if (want_items(c, n, "listen address") < 0)
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
static int parse_admin_token(ctx_t *c, const tg_conf_node_t *n)
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

static int parse_admin(ctx_t *c, const tg_conf_node_t *n)
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

static int parse_trusted_proxies(ctx_t *c, const tg_conf_node_t *n)
{
    tg_config_t *cfg = c->cfg;
    if (n == NULL)
        return 0;
    if (want(c, n, TG_CONF_SEQ) < 0)
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
static int parse_limits(ctx_t *c, const tg_conf_node_t *n)
{
    limits_keys_t k = {0};
    if (tg_conf_read(n, limit_fields, "limits", &k, c->err) < 0)
        return -1;
    c->cfg->limits = k.limits;
    if (k.encoded_slashes == 1)
        c->cfg->limits.path_flags |= TG_PATH_KEEP_ENCODED_SLASH;
    return 0;
}

/* ---- upstreams --------------------------------------------------------- */

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
static int parse_target(ctx_t *c, const tg_conf_node_t *n, const tg_upstream_conf_t *u,
                        tg_target_t *t)
{
    const char *text;
    hostport_t hp;
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
    if (split_address(text, &hp, eb, sizeof(eb)) < 0)
        return tg_conf_error(c->err, n, "%s", eb);
    if (hp.wildcard)
        return tg_conf_error(c->err, n, "target '%s' needs a host", text);
    t->dynamic = u->resolve_ms && !hp.bracketed && tg_resolve_is_name(hp.host);
    if (!t->dynamic && resolve(&hp, &t->addr, &t->addrlen, eb, sizeof(eb)) < 0)
        return tg_conf_error(c->err, n, "%s", eb);
    t->name = t->key = dup_str(c, text);
    /* RFC 9110 section 7.2: the port is omitted from Host when it is the default. */
    t->host_header = hp.portnum == 80 ? tg_arena_strndup(c->arena, text, hp.host_end) : t->name;
    return 0;
}

static int add_target(ctx_t *c, const tg_conf_node_t *n, tg_upstream_conf_t *u, tg_target_t *t)
{
    t->shared = tg_tshared_get(u->name, t->key);
    u->ntargets++;
    return t->shared ? 0 : tg_conf_error(c->err, n, "out of memory");
}

static int parse_targets(ctx_t *c, const tg_conf_node_t *n, tg_upstream_conf_t *u)
{
    if (want_items(c, n, "target") < 0)
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

static int parse_upstream(ctx_t *c, const tg_conf_node_t *key, const tg_conf_node_t *n,
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

static int parse_upstreams(ctx_t *c, const tg_conf_node_t *n)
{
    tg_config_t *cfg = c->cfg;
    if (n == NULL)
        return 0;
    if (want(c, n, TG_CONF_MAP) < 0)
        return -1;
    cfg->upstreams = tg_arena_calloc(c->arena, n->count * sizeof(*cfg->upstreams) + 1);
    for (size_t i = 0; i < n->count; i++) {
        tg_upstream_conf_t *u = &cfg->upstreams[i];
        u->index = i;
        /* Named before it is read: a route naming a broken upstream gets no
         * second error, and lookups never meet a NULL name. Counted first:
         * unref releases the shared state a failed parse took. */
        u->name = dup_str(c, n->keys[i]->value);
        cfg->nupstreams++;
        if (parse_upstream(c, n->keys[i], n->items[i], u) < 0 && RECOVER(c) < 0)
            return -1;
    }
    return 0;
}

/* ---- routes: match ----------------------------------------------------- */

static bool valid_host(const char *h)
{
    size_t len = strlen(h);
    if (len > 2 && h[0] == '[' && h[len - 1] == ']') /* IPv6 literal, RFC 3986 section 3.2.2 */
        return strspn(h + 1, "0123456789abcdef:.") == len - 2;
    return len > 0 && strspn(h, "abcdefghijklmnopqrstuvwxyz0123456789-._") == len;
}

static int parse_match_host(ctx_t *c, const tg_conf_node_t *n, tg_route_t *r)
{
    const char *s;
    if (tg_conf_get_string(n, &s, c->err) < 0)
        return -1;
    if (strcmp(s, "*") == 0) /* any host: same as no condition */
        return 0;
    char *h = dup_lower(c, s);
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

static int parse_match_regex(ctx_t *c, const tg_conf_node_t *n, tg_route_t *r)
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

static int parse_match_path(ctx_t *c, const tg_conf_node_t *key, const tg_conf_node_t *n,
                            tg_route_t *r)
{
    if (r->path_kind != TG_PATH_ANY)
        return tg_conf_error(c->err, key,
                             "only one of path, path_prefix and path_regex may be set");
    if (strcmp(key->value, "path_regex") == 0)
        return parse_match_regex(c, n, r);
    r->path_kind = strcmp(key->value, "path") == 0 ? TG_PATH_EXACT : TG_PATH_PREFIX;
    return get_path(c, n, &r->path, &r->path_len);
}

static uint32_t method_bit(const char *m)
{
    static const char *const names[] = {"GET",   "HEAD",    "POST",  "PUT",    "DELETE",
                                        "PATCH", "OPTIONS", "TRACE", "CONNECT"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i], m) == 0)
            return 1u << i; /* same order as TG_METHOD_* */
    return TG_METHOD_OTHER;
}

static int parse_match_methods(ctx_t *c, const tg_conf_node_t *n, tg_route_t *r)
{
    size_t nother = 0;
    if (want_items(c, n, "method") < 0)
        return -1;
    r->method_names = tg_arena_calloc(c->arena, (n->count + 1) * sizeof(char *));
    for (size_t i = 0; i < n->count; i++) {
        const char *s;
        if (tg_conf_get_string(n->items[i], &s, c->err) < 0)
            return -1;
        if (!tg_token_valid(s, n->items[i]->len))
            return tg_conf_error(c->err, n->items[i], "invalid method '%s'", s);
        char *m = dup_upper(c, s);
        uint32_t bit = method_bit(m);
        if (bit == TG_METHOD_OTHER)
            r->method_names[nother++] = m;
        r->methods |= bit;
    }
    if (nother == 0)
        r->method_names = NULL;
    return 0;
}

static int parse_match_headers(ctx_t *c, const tg_conf_node_t *n, tg_route_t *r)
{
    if (want(c, n, TG_CONF_MAP) < 0)
        return -1;
    r->headers = tg_arena_calloc(c->arena, (n->count + 1) * sizeof(*r->headers));
    for (size_t i = 0; i < n->count; i++) {
        const char *value;
        if (!tg_token_valid(n->keys[i]->value, n->keys[i]->len))
            return tg_conf_error(c->err, n->keys[i], "invalid header name '%s'", n->keys[i]->value);
        if (tg_conf_get_string(n->items[i], &value, c->err) < 0)
            return -1;
        r->headers[i].name = dup_lower(c, n->keys[i]->value);
        r->headers[i].value = dup_str(c, value);
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

static int parse_match(ctx_t *c, const tg_conf_node_t *n, tg_route_t *r)
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

static int parse_route_name(ctx_t *c, const tg_conf_node_t *map, tg_route_t *r)
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
        r->name = dup_str(c, s);
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
static int one_action(ctx_t *c, const tg_conf_node_t *map)
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
    return first == NULL ? missing(c, map, "upstream") : 0;
}

static int unknown_upstream(ctx_t *c, const tg_conf_node_t *n, const char *name)
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

static int parse_route_action(ctx_t *c, const tg_conf_node_t *map, tg_route_t *r)
{
    const tg_conf_node_t *sp = tg_conf_map_get(map, "strip_prefix");
    if (sp != NULL && get_path(c, sp, &r->strip_prefix, &r->strip_prefix_len) < 0)
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
static int parse_route(ctx_t *c, tg_route_t *r)
{
    const tg_conf_node_t *m = r->node;
    if (m->type != TG_CONF_MAP) {
        r->node = NULL; /* no plugins to read either */
        want(c, m, TG_CONF_MAP);
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

static int parse_routes(ctx_t *c, const tg_conf_node_t *n)
{
    tg_config_t *cfg = c->cfg;
    if (n == NULL)
        return 0;
    if (want(c, n, TG_CONF_SEQ) < 0)
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

/* ---- redis ------------------------------------------------------------- */

static int parse_redis(ctx_t *c, const tg_conf_node_t *n)
{
    return n == NULL ? 0 : tg_redis_conf_parse(c->cfg, n, c->err);
}

static int parse_log(ctx_t *c, const tg_conf_node_t *n)
{
    return tg_log_conf_parse(c->cfg, n, c->err);
}

static int parse_tracing(ctx_t *c, const tg_conf_node_t *n)
{
    return n == NULL ? 0 : tg_tracing_conf_parse(c->cfg, n, &c->cfg->tracing, c->err);
}

/* ---- top level --------------------------------------------------------- */

static void section_failed(ctx_t *c, const char *name)
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
        (void)err; /* the same as ctx_t's */                                        \
        if (parse_##name(c, optional(n)) == 0)                                      \
            return 0;                                                               \
        section_failed(c, #name);                                                   \
        return RECOVER((ctx_t *)c);                                                 \
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
    ctx_t *c = arg;
    return tg_resolver_conf_parse(n, c->arena, c->cfg, err);
}

/* Required, and "listen:" left empty is an error at its own position. Not
 * TG_CONF_REQUIRED: a missing listen must not keep the other sections from
 * being checked (tg_conf_read skips CUSTOM fields after a failed one). */
static int section_listen(const tg_conf_node_t *n, void *arg, tg_conf_err_t *err)
{
    (void)err;
    ctx_t *c = arg;
    if (n == NULL)
        missing(c, c->root, "listen");
    return n != NULL && parse_listen(c, n) == 0 ? 0 : RECOVER(c);
}

/* Read into the ctx_t. Order matters: routes refer to upstreams, admin is
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
    {"plugins", TG_CONF_FIELD_NODE, TG_CONF_AT(ctx_t, plugins)},
    {"plugin_path", TG_CONF_FIELD_NODE, TG_CONF_AT(ctx_t, plugin_path)},
    /* Resolved before this table is read (src/conf_include.h). */
    {"include", TG_CONF_FIELD_NODE, TG_CONF_AT(ctx_t, include_node)},
    TG_CONF_END,
};

/* Plugins are created after everything else so that their create() sees a
 * complete config; the global chain first, then each route's. */
static int parse_plugins(ctx_t *c)
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

static int load_tree(ctx_t *c, const tg_conf_node_t *root)
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
    ctx_t c = {.cfg = cfg, .arena = ((config_priv_t *)cfg)->arena, .err = err};
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
