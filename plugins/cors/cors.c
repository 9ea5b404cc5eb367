/*
 * cors: the CORS protocol of the Fetch standard (section 3.2), answered by
 * the gateway for the routes it is on.
 *
 *   - name: cors                     # first in the chain: preflights carry no credentials
 *     config:
 *       origins: ["https://app.example.com", "https://\*.example.com"]   # or ["*"]
 *       methods: [GET, POST, PUT, DELETE]        # default GET HEAD POST PUT PATCH DELETE
 *       headers: [Authorization, Content-Type]   # request headers allowed; ["*"]: any
 *       expose_headers: [RateLimit-Remaining]
 *       credentials: true                        # cookies and Authorization (never with "*")
 *       max_age: 10m                             # how long a browser caches a preflight
 *
 * Preflight (OPTIONS with Origin and Access-Control-Request-Method): never
 * forwarded. Allowed, it gets 204 with Access-Control-Allow-Origin (the
 * origin echoed), -Methods, -Headers (when some were asked), -Credentials and
 * -Max-Age (when configured); refused (origin, method or a header not
 * allowed), a 403 with the gateway's JSON error body and no CORS header.
 * Both fail a browser's preflight alike (Fetch's CORS check and its "ok
 * status" check); the 403 says so in the network panel, as Spring does.
 *
 * Any other request: from an allowed origin, the response (the upstream's,
 * or one the gateway or a plugin made: a 401 must reach the page too) gets
 * Access-Control-Allow-Origin echoing the origin, -Credentials and
 * -Expose-Headers as configured; from any other origin, or without Origin,
 * it is forwarded and answered without CORS headers. Either way the
 * upstream's own Access-Control-* response headers are removed: on a route
 * with cors the gateway alone speaks the protocol. Every response gets
 * `Vary: Origin` (Fetch 3.2.5: the answer depends on Origin), unless the
 * config is origins ["*"], whose answer is the same `*` for everyone.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "origin.h"
#include "tollgate/plugin.h"
#include "tollgate/text.h"

typedef struct {
    char **origins_text; /* as written, read by the table */
    size_t n_origins_text;
    char **methods;
    size_t n_methods;
    char **headers;
    size_t n_headers;
    char **expose;
    size_t n_expose;
    bool credentials;
    const tg_conf_node_t *max_age_node; /* during create() only */

    tg_cors_origin_t *origins;
    size_t n_origins;
    bool any_origin;     /* origins: ["*"] */
    bool any_header;     /* headers: ["*"] */
    char *allow_methods; /* "GET, POST": the preflight's Access-Control-Allow-Methods */
    char *allow_headers; /* "Authorization, Content-Type", NULL when none (or any) */
    char *expose_text;   /* Access-Control-Expose-Headers, NULL when none */
    char max_age[24];    /* seconds as text, "" when not configured */
} cors_t;

/* What request_head decided, for response_head. */
typedef enum {
    CORS_UNDECIDED = 0, /* request_head did not run (an earlier plugin answered) */
    CORS_NO,            /* no Origin, or not allowed: no CORS header */
    CORS_YES,           /* allowed origin, actual request */
    CORS_PREFLIGHT,     /* allowed preflight, answered 204 */
} decision_t;

typedef struct {
    decision_t decision;
    bool written;       /* our headers are added once, even if the answer is replaced */
    const char *origin; /* the request's Origin (request lifetime) */
    size_t origin_len;
} cors_ctx_t;

static const char *const default_methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};

/* Response headers the gateway owns on a cors route. */
static const char *const cors_fields[] = {
    "Access-Control-Allow-Origin",   "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Methods",  "Access-Control-Allow-Headers",
    "Access-Control-Expose-Headers", "Access-Control-Max-Age",
};

#define LIST(key, member, count)                                               \
    {                                                                          \
        key, TG_CONF_FIELD_STRINGS, TG_CONF_AT(cors_t, member),                \
            .count_offset = offsetof(cors_t, count), .flags = TG_CONF_NONEMPTY \
    }

static const tg_conf_field_t fields[] = {
    {"origins", TG_CONF_FIELD_STRINGS, TG_CONF_AT(cors_t, origins_text),
     .count_offset = offsetof(cors_t, n_origins_text), .min = 1,
     .flags = TG_CONF_REQUIRED | TG_CONF_NONEMPTY,
     .help = "[\"https://app.example.com\", \"https://*.example.com\"] or [\"*\"]"},
    LIST("methods", methods, n_methods),
    LIST("headers", headers, n_headers),
    LIST("expose_headers", expose, n_expose),
    {"credentials", TG_CONF_FIELD_BOOL, TG_CONF_AT(cors_t, credentials)},
    {"max_age", TG_CONF_FIELD_NODE, TG_CONF_AT(cors_t, max_age_node)},
    TG_CONF_END,
};

/* ------------------------------------------------------------ config ---- */

static void destroy(void *instance)
{
    cors_t *c = instance;
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n_origins; i++)
        tg_cors_origin_free(&c->origins[i]);
    free(c->origins);
    free(c->allow_methods);
    free(c->allow_headers);
    free(c->expose_text);
    tg_conf_fields_free(fields, c);
    free(c);
}

/* The i-th item of list key (a string is a list of one), for errors. */
static const tg_conf_node_t *item_node(const tg_conf_node_t *node, const char *key, size_t i)
{
    const tg_conf_node_t *n = tg_conf_map_get(node, key);
    return n->type == TG_CONF_SEQ ? n->items[i] : n;
}

static int parse_origins(cors_t *c, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    if ((c->origins = calloc(c->n_origins_text, sizeof(*c->origins))) == NULL)
        return tg_conf_error(err, node, "out of memory");
    for (size_t i = 0; i < c->n_origins_text; i++) {
        const char *s = c->origins_text[i], *why;
        if (strcmp(s, "*") == 0) {
            c->any_origin = true;
            continue;
        }
        if (tg_cors_origin_parse(s, &c->origins[c->n_origins], &why) < 0)
            return tg_conf_error(err, item_node(node, "origins", i), "%s: \"%s\"", why, s);
        c->n_origins++;
    }
    const tg_conf_node_t *at = tg_conf_map_get(node, "origins");
    if (c->any_origin && c->n_origins_text > 1)
        return tg_conf_error(err, at, "\"*\" allows every origin: list nothing else with it");
    if (c->any_origin && c->credentials)
        return tg_conf_error(err, at,
                             "\"*\" with credentials: true would let every site read responses "
                             "made with the user's cookies; list the origins (Fetch forbids * "
                             "with credentials)");
    return 0;
}

/* Methods are case-sensitive (RFC 9110 9.1), but a browser upper-cases the
 * six it normalizes (Fetch "normalize a method") before a preflight: so do
 * we, or `methods: [put]` would never match. */
static void normalize_method(char *m)
{
    static const char *const normalized[] = {"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"};
    for (size_t i = 0; i < sizeof(normalized) / sizeof(normalized[0]); i++)
        if (strcasecmp(m, normalized[i]) == 0)
            memcpy(m, normalized[i], strlen(m));
}

/* A list of tokens, checked and joined with ", " (NULL when empty). */
static int join_tokens(char **items, size_t n, const tg_conf_node_t *node, const char *key,
                       char **out, tg_conf_err_t *err)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        if (!tg_token_valid(items[i], strlen(items[i])))
            return tg_conf_error(err, item_node(node, key, i), "\"%s\" is not a %s", items[i],
                                 strcmp(key, "methods") == 0 ? "method" : "header name");
        len += strlen(items[i]) + 2;
    }
    if (n == 0)
        return 0;
    if ((*out = malloc(len)) == NULL)
        return tg_conf_error(err, node, "out of memory");
    char *p = *out;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(items[i]);
        if (i > 0) {
            memcpy(p, ", ", 2);
            p += 2;
        }
        memcpy(p, items[i], l);
        p += l;
    }
    *p = '\0';
    return 0;
}

static int build_methods(cors_t *c, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    if (c->methods == NULL) {
        size_t n = sizeof(default_methods) / sizeof(default_methods[0]);
        if ((c->methods = calloc(n + 1, sizeof(char *))) == NULL)
            return tg_conf_error(err, node, "out of memory");
        for (; c->n_methods < n; c->n_methods++)
            if ((c->methods[c->n_methods] = strdup(default_methods[c->n_methods])) == NULL)
                return tg_conf_error(err, node, "out of memory");
    }
    for (size_t i = 0; i < c->n_methods; i++)
        normalize_method(c->methods[i]);
    return join_tokens(c->methods, c->n_methods, node, "methods", &c->allow_methods, err);
}

static int build_headers(cors_t *c, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    for (size_t i = 0; i < c->n_headers; i++)
        if (strcmp(c->headers[i], "*") == 0)
            c->any_header = true;
    if (c->any_header && c->n_headers > 1)
        return tg_conf_error(err, tg_conf_map_get(node, "headers"),
                             "\"*\" allows every request header: list nothing else with it");
    if (!c->any_header &&
        join_tokens(c->headers, c->n_headers, node, "headers", &c->allow_headers, err) < 0)
        return -1;
    return join_tokens(c->expose, c->n_expose, node, "expose_headers", &c->expose_text, err);
}

static int parse_max_age(cors_t *c, tg_conf_err_t *err)
{
    uint64_t ms;
    if (c->max_age_node == NULL)
        return 0;
    if (tg_conf_get_duration_ms(c->max_age_node, &ms, err) < 0)
        return -1;
    /* Browsers cap it (Chromium at 2 h, Firefox at 24 h); a day is plenty. */
    if (ms > 24 * 3600 * 1000ULL)
        return tg_conf_error(err, c->max_age_node, "max_age above 24h (browsers cap it anyway)");
    snprintf(c->max_age, sizeof(c->max_age), "%llu", (unsigned long long)(ms / 1000));
    return 0;
}

/* A preflight carries no credentials (Fetch 4.8): an authentication plugin
 * before cors would refuse it before cors answers it. */
static void warn_order(const tg_plugin_env_t *env, const tg_conf_node_t *node)
{
    for (const char *const *b = env->before; b != NULL && *b != NULL; b++)
        if (strcmp(*b, "jwt") == 0 || strcmp(*b, "key-auth") == 0)
            tg_log(TG_LOG_WARN,
                   "%s:%u:%u: cors runs after %s: preflights (which carry no credentials) "
                   "will be refused before cors answers them; put cors first",
                   node->file, node->line, node->col, *b);
}

static int create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **instance,
                  tg_conf_err_t *err)
{
    cors_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return tg_conf_error(err, node, "out of memory");
    if (tg_conf_read(node, fields, NULL, c, err) < 0 || parse_origins(c, node, err) < 0 ||
        build_methods(c, node, err) < 0 || build_headers(c, node, err) < 0 ||
        parse_max_age(c, err) < 0) {
        destroy(c);
        return -1;
    }
    c->max_age_node = NULL;
    warn_order(env, node);
    *instance = c;
    return 0;
}

/* ---------------------------------------------------------- deciding ---- */

static bool origin_allowed(const cors_t *c, const char *o, size_t len)
{
    if (c->any_origin)
        return true;
    for (size_t i = 0; i < c->n_origins; i++)
        if (tg_cors_origin_match(&c->origins[i], o, len))
            return true;
    return false;
}

/* The value of the only header called name; NULL when absent, and when
 * repeated (two Origin headers are no origin a browser sends). */
static const char *only_header(const tg_request_t *r, const char *name, size_t *len)
{
    size_t nl = strlen(name), hl, vl, n = 0;
    const char *hn, *v, *found = NULL;
    *len = 0;
    for (size_t i = 0; tg_request_header_at(r, i, &hn, &hl, &v, &vl); i++) {
        if (hl == nl && strncasecmp(hn, name, nl) == 0 && n++ == 0) {
            found = v;
            *len = vl;
        }
    }
    return n == 1 ? found : NULL;
}

static bool method_allowed(const cors_t *c, const char *m, size_t len)
{
    /* Fetch's CORS-preflight check lets a CORS-safelisted method through
     * whatever Allow-Methods says: refusing one here would refuse what the
     * browser itself allows. */
    if ((len == 3 && memcmp(m, "GET", 3) == 0) || (len == 4 && memcmp(m, "HEAD", 4) == 0) ||
        (len == 4 && memcmp(m, "POST", 4) == 0))
        return true;
    for (size_t i = 0; i < c->n_methods; i++)
        if (strlen(c->methods[i]) == len && memcmp(c->methods[i], m, len) == 0)
            return true;
    return false;
}

/* Access-Control-Request-Headers: a list of names (browsers send them
 * lower-cased and sorted); each one must be allowed. */
static bool headers_allowed(const cors_t *c, const char *v, size_t len)
{
    size_t pos = 0;
    tg_span_t e;
    while (tg_list_next(v, len, &pos, &e)) {
        if (!tg_token_valid(e.p, e.len))
            return false;
        if (c->any_header)
            continue;
        bool ok = false;
        for (size_t i = 0; i < c->n_headers && !ok; i++)
            ok = strlen(c->headers[i]) == e.len && strncasecmp(c->headers[i], e.p, e.len) == 0;
        if (!ok)
            return false;
    }
    return true;
}

static bool preflight_allowed(const cors_t *c, const tg_request_t *r)
{
    size_t ml = 0, hl = 0;
    const char *m = only_header(r, "Access-Control-Request-Method", &ml);
    const char *h = tg_request_header(r, "Access-Control-Request-Headers", &hl);
    return m != NULL && tg_token_valid(m, ml) && method_allowed(c, m, ml) &&
           (h == NULL || headers_allowed(c, h, hl));
}

static bool is_options(const tg_request_t *r)
{
    size_t len;
    const char *m = tg_request_method(r, &len);
    return m != NULL && len == 7 && memcmp(m, "OPTIONS", 7) == 0;
}

static void decide(const cors_t *c, tg_request_t *r, cors_ctx_t *x)
{
    x->origin = only_header(r, "Origin", &x->origin_len);
    bool allowed = x->origin != NULL && origin_allowed(c, x->origin, x->origin_len);
    x->decision = allowed ? CORS_YES : CORS_NO;
}

static tg_filter_status_t request_head(tg_request_t *r, const tg_filter_t *f)
{
    const cors_t *c = f->instance;
    cors_ctx_t *x = f->ctx;
    decide(c, r, x);
    /* Any Origin counts here: a preflight with two is refused, not forwarded. */
    size_t len;
    bool preflight = is_options(r) && tg_request_header(r, "Origin", &len) != NULL &&
                     tg_request_header(r, "Access-Control-Request-Method", &len) != NULL;
    if (!preflight)
        return TG_FILTER_CONTINUE;
    if (x->decision == CORS_YES && preflight_allowed(c, r)) {
        x->decision = CORS_PREFLIGHT;
        tg_request_respond(r, 204, NULL, NULL, 0);
    } else {
        x->decision = CORS_NO;
        tg_request_var_set_str(r, "auth.error", "cors_preflight", 14);
        tg_request_respond_error(r, 403, "CORS preflight refused");
    }
    return TG_FILTER_RESPONDED;
}

/* ------------------------------------------------------------ answers ---- */

static void add(tg_request_t *r, const char *name, const char *value)
{
    tg_request_add_response_header(r, name, value, strlen(value));
}

static void add_vary(tg_request_t *r)
{
    size_t len;
    const char *v = tg_response_header(r, "Vary", &len);
    if (v == NULL || (!tg_list_has(v, len, "origin", 6) && !tg_list_has(v, len, "*", 1)))
        add(r, "Vary", "Origin");
}

static void write_allowed(const cors_t *c, tg_request_t *r, const cors_ctx_t *x)
{
    if (c->any_origin)
        add(r, "Access-Control-Allow-Origin", "*");
    else
        tg_request_add_response_header(r, "Access-Control-Allow-Origin", x->origin, x->origin_len);
    if (c->credentials)
        add(r, "Access-Control-Allow-Credentials", "true");
    if (x->decision == CORS_PREFLIGHT) {
        size_t hl = 0;
        const char *h = tg_request_header(r, "Access-Control-Request-Headers", &hl);
        add(r, "Access-Control-Allow-Methods", c->allow_methods);
        /* Explicit names (the asked ones for "*"): with credentials a "*"
         * would be taken literally. Nothing when nothing was asked. */
        const char *allow = c->any_header ? h : c->allow_headers;
        size_t pos = 0;
        tg_span_t e;
        if (h != NULL && allow != NULL && tg_list_next(h, hl, &pos, &e))
            tg_request_add_response_header(r, "Access-Control-Allow-Headers", allow,
                                           c->any_header ? hl : strlen(allow));
        if (c->max_age[0] != '\0')
            add(r, "Access-Control-Max-Age", c->max_age);
    } else if (c->expose_text != NULL) {
        add(r, "Access-Control-Expose-Headers", c->expose_text);
    }
}

static tg_filter_status_t response_head(tg_request_t *r, const tg_filter_t *f)
{
    const cors_t *c = f->instance;
    cors_ctx_t *x = f->ctx;
    for (size_t i = 0; i < sizeof(cors_fields) / sizeof(cors_fields[0]); i++)
        tg_response_remove_header(r, cors_fields[i]);
    if (x->written)
        return TG_FILTER_CONTINUE;
    x->written = true;
    if (x->decision == CORS_UNDECIDED)
        decide(c, r, x);
    if (c->any_origin) {
        /* The same answer for every request: nothing to vary on. */
        if (x->decision != CORS_NO || x->origin == NULL)
            write_allowed(c, r, x);
        return TG_FILTER_CONTINUE;
    }
    if (x->decision == CORS_YES || x->decision == CORS_PREFLIGHT)
        write_allowed(c, r, x);
    add_vary(r);
    return TG_FILTER_CONTINUE;
}

TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "cors",
    .version = TG_VERSION,
    .ctx_size = sizeof(cors_ctx_t),
    .create = create,
    .destroy = destroy,
    .request_head = request_head,
    .response_head = response_head,
};
