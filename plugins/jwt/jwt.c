/*
 * jwt plugin: bearer token authentication (RFC 6750) for JWS-signed JWTs
 * (RFC 7519), with keys pinned to their algorithms (RFC 8725).
 *
 * request_head takes the token from the configured sources, verifies it
 * (jwt_verify.c) unless the worker's cache (jwt_cache.c) already holds it,
 * checks the claims (jwt_claims.c), and either answers 401 / 403 with a
 * WWW-Authenticate challenge or forwards chosen claims as headers.
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "jwt_cache.h"
#include "jwt_claims.h"
#include "jwt_keys.h"
#include "jwt_reason.h"
#include "jwt_remote.h"
#include "jwt_source.h"
#include "jwt_verify.h"
#include "tollgate/clock.h"
#include "tollgate/plugin.h"
#include "tollgate/text.h"
#include "tollgate/trace.h"

typedef enum { SRC_HEADER, SRC_COOKIE, SRC_QUERY } source_kind_t;

typedef struct {
    source_kind_t kind;
    char *name; /* header, cookie or query parameter name */
} source_t;

typedef struct {
    char *claim;  /* top-level claim name */
    char *header; /* request header it is copied into */
} forward_t;

typedef struct {
    tg_jwt_keyset_t keys;
    tg_jwt_policy_t policy;
    source_t *sources; /* tried in order; the first that has a token wins */
    size_t n_sources;
    forward_t *forward;
    size_t n_forward;
    bool strip_token;
    size_t cache_size;            /* entries per worker; 0 = no cache */
    tg_jwt_remote_conf_t *remote; /* jwks_uri, or NULL */
    char *scope_challenge;        /* WWW-Authenticate of a 403 */
    int m_rejections, m_verifications;
    uint64_t leeway_ms;         /* as configured; policy.leeway in seconds */
    const tg_plugin_env_t *env; /* only during create(): key paths are relative to it */
} jwt_conf_t;

/* Per worker: nothing here is shared between threads. */
typedef struct {
    tg_jwt_cache_t *cache;   /* NULL when cache: 0 */
    tg_jwt_remote_t *remote; /* NULL without jwks_uri */
    /* The cache key digest: SHA256() in OpenSSL 3 fetches the algorithm and
     * allocates a context on every call, which showed in the cached path's
     * profile; a worker reuses one context and one fetched algorithm. */
    EVP_MD *sha256;
    EVP_MD_CTX *md_ctx;
} jwt_worker_t;

static const char *const reason_names[] = TG_JWT_REASON_NAMES;
static const char *const reason_texts[] = TG_JWT_REASON_TEXTS;
static const char *const result_names[] = {"ok", "cached"};

/* ------------------------------------------------------------ config ---- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ); this also keeps
 * the scope="..." challenge parameter free of quotes and backslashes. */
static bool is_scope_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e || *s == '"' || *s == '\\')
            return false;
    return true;
}

static void conf_free(jwt_conf_t *c)
{
    if (c == NULL)
        return;
    tg_jwt_keyset_free(&c->keys);
    tg_jwt_policy_free(&c->policy);
    for (size_t i = 0; i < c->n_sources; i++)
        free(c->sources[i].name);
    free(c->sources);
    for (size_t i = 0; i < c->n_forward; i++) {
        free(c->forward[i].claim);
        free(c->forward[i].header);
    }
    free(c->forward);
    free(c->scope_challenge);
    tg_jwt_remote_conf_free(c->remote);
    free(c);
}

/* Relative key files are relative to the main config file's directory. */
static int resolve_path(const tg_plugin_env_t *env, const char *p, char *out, size_t cap)
{
    int n = (p[0] == '/' || env->config_dir == NULL)
                ? snprintf(out, cap, "%s", p)
                : snprintf(out, cap, "%s/%s", env->config_dir, p);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* One item of keys:, read as nodes and then checked together. */
typedef struct {
    const tg_conf_node_t *kid, *algorithm, *public_key, *secret;
} key_spec_t;

static const tg_conf_field_t key_fields[] = {
    {"kid", TG_CONF_FIELD_NODE, TG_CONF_AT(key_spec_t, kid)},
    {"algorithm", TG_CONF_FIELD_NODE, TG_CONF_AT(key_spec_t, algorithm), .flags = TG_CONF_REQUIRED,
     .help = "HS256/384/512, RS256/384/512 or ES256/384/512"},
    {"public_key", TG_CONF_FIELD_NODE, TG_CONF_AT(key_spec_t, public_key)},
    {"secret", TG_CONF_FIELD_NODE, TG_CONF_AT(key_spec_t, secret)},
    TG_CONF_END,
};

static int parse_key(jwt_conf_t *c, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    key_spec_t k;
    if (tg_conf_read(n, key_fields, NULL, &k, err) < 0)
        return -1;
    const tg_conf_node_t *alg_n = k.algorithm, *pub = k.public_key, *sec = k.secret;
    const char *kid = NULL, *alg_s, *v;
    if (k.kid != NULL && tg_conf_get_string(k.kid, &kid, err) < 0)
        return -1;
    if (tg_conf_get_string(alg_n, &alg_s, err) < 0)
        return -1;
    tg_jwt_alg_t alg = tg_jwt_alg_from_name(alg_s, strlen(alg_s));
    if (alg == TG_JWT_ALG_INVALID)
        return tg_conf_error(err, alg_n,
                             "unsupported algorithm \"%s\" (HS256/384/512, "
                             "RS256/384/512, ES256/384/512)",
                             alg_s);
    if ((pub == NULL) == (sec == NULL))
        return tg_conf_error(err, n, "a key needs exactly one of \"public_key\" or \"secret\"");
    char msg[400];
    int rc;
    if (sec != NULL) {
        if (tg_conf_get_string(sec, &v, err) < 0)
            return -1;
        rc = tg_jwt_keyset_add_secret(&c->keys, kid, alg, v, strlen(v), msg, sizeof(msg));
        return rc < 0 ? tg_conf_error(err, sec, "%s", msg) : 0;
    }
    char path[4096];
    if (tg_conf_get_string(pub, &v, err) < 0)
        return -1;
    if (resolve_path(c->env, v, path, sizeof(path)) < 0)
        return tg_conf_error(err, pub, "path too long");
    rc = tg_jwt_keyset_add_pem_file(&c->keys, kid, alg, path, msg, sizeof(msg));
    return rc < 0 ? tg_conf_error(err, pub, "%s", msg) : 0;
}

/* The custom readers of the table get the whole jwt_conf_t as out. */

static int parse_keys(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    if (n->type != TG_CONF_SEQ)
        return tg_conf_error(err, n, "\"keys\" must be a list");
    for (size_t i = 0; i < n->count; i++)
        if (parse_key(out, n->items[i], err) < 0)
            return -1;
    return 0;
}

static int parse_jwks(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    jwt_conf_t *c = out;
    const char *v;
    char path[4096], msg[400];
    size_t added = 0;
    if (tg_conf_get_string(n, &v, err) < 0)
        return -1;
    if (resolve_path(c->env, v, path, sizeof(path)) < 0)
        return tg_conf_error(err, n, "path too long");
    if (tg_jwt_keyset_add_jwks_file(&c->keys, path, &added, msg, sizeof(msg)) < 0)
        return tg_conf_error(err, n, "%s", msg);
    if (added == 0)
        return tg_conf_error(err, n, "%s holds no RSA or EC signature key", path);
    return 0;
}

/* jwks_uri: { upstream, path, refresh }. The upstream's existence is checked
 * by the fetch itself (plugins do not see the upstream list). */
static const tg_conf_field_t jwks_uri_fields[] = {
    {"upstream", TG_CONF_FIELD_STRING, TG_CONF_AT(tg_jwt_remote_conf_t, upstream),
     .flags = TG_CONF_REQUIRED | TG_CONF_NONEMPTY},
    {"path", TG_CONF_FIELD_STRING, TG_CONF_AT(tg_jwt_remote_conf_t, path),
     .flags = TG_CONF_REQUIRED},
    {"refresh", TG_CONF_FIELD_DURATION, TG_CONF_AT(tg_jwt_remote_conf_t, refresh_ms), .min = 1000,
     .def = 10 * 60 * 1000},
    TG_CONF_END,
};

static int parse_jwks_uri(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    jwt_conf_t *c = out;
    if ((c->remote = calloc(1, sizeof(*c->remote))) == NULL)
        return tg_conf_error(err, n, "out of memory");
    if (tg_conf_read(n, jwks_uri_fields, "jwks_uri", c->remote, err) < 0)
        return -1;
    const char *p = c->remote->path;
    if (p[0] != '/' || strpbrk(p, " \t\r\n") != NULL)
        return tg_conf_error(err, tg_conf_map_get(n, "path"),
                             "path must start with \"/\" and hold no white space");
    return 0;
}

static int parse_source(source_t *src, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    static const struct {
        const char *prefix;
        source_kind_t kind;
    } kinds[] = {{"header:", SRC_HEADER}, {"cookie:", SRC_COOKIE}, {"query:", SRC_QUERY}};
    const char *s;
    if (tg_conf_get_string(n, &s, err) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        size_t pl = strlen(kinds[i].prefix);
        if (strncmp(s, kinds[i].prefix, pl) == 0 && tg_token_valid(s + pl, strlen(s + pl))) {
            if (strlen(s + pl) > TG_JWT_SOURCE_NAME_MAX)
                return tg_conf_error(err, n, "name longer than %d bytes",
                                     (int)TG_JWT_SOURCE_NAME_MAX);
            src->kind = kinds[i].kind;
            src->name = strdup(s + pl);
            return src->name ? 0 : tg_conf_error(err, n, "out of memory");
        }
    }
    return tg_conf_error(err, n, "expected \"header:NAME\", \"cookie:NAME\" or \"query:NAME\"");
}

/* Also when token_from is absent (n NULL): the Authorization header. */
static int parse_sources(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    jwt_conf_t *c = out;
    size_t k = n == NULL ? 1 : n->count;
    if (n != NULL && (n->type != TG_CONF_SEQ || n->count == 0))
        return tg_conf_error(err, n, "\"token_from\" must be a non-empty list");
    if ((c->sources = calloc(k, sizeof(*c->sources))) == NULL)
        return tg_conf_error(err, n, "out of memory");
    if (n == NULL) {
        c->sources[0].kind = SRC_HEADER;
        c->sources[0].name = strdup("Authorization");
        c->n_sources = 1;
        return c->sources[0].name ? 0 : tg_conf_error(err, n, "out of memory");
    }
    for (; c->n_sources < k; c->n_sources++)
        if (parse_source(&c->sources[c->n_sources], n->items[c->n_sources], err) < 0)
            return -1;
    return 0;
}

static int parse_forward(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    jwt_conf_t *c = out;
    if (n->type != TG_CONF_MAP)
        return tg_conf_error(err, n, "\"forward_claims\" must be a map claim: Header-Name");
    if ((c->forward = calloc(n->count ? n->count : 1, sizeof(*c->forward))) == NULL)
        return tg_conf_error(err, n, "out of memory");
    for (; c->n_forward < n->count; c->n_forward++) {
        const char *h;
        forward_t *f = &c->forward[c->n_forward];
        if (tg_conf_get_string(n->items[c->n_forward], &h, err) < 0)
            return -1;
        int bad = tg_request_header_check(h, NULL, 0);
        if (bad == TG_EFORBIDDEN)
            return tg_conf_error(err, n->items[c->n_forward],
                                 "header \"%s\" is the gateway's own: a plugin cannot set it", h);
        if (bad < 0)
            return tg_conf_error(err, n->items[c->n_forward], "invalid header name \"%s\"", h);
        f->claim = dup_or_null(n->keys[c->n_forward]->value);
        f->header = strdup(h);
        if (f->claim == NULL || f->header == NULL)
            return tg_conf_error(err, n, "out of memory");
    }
    return 0;
}

/* `Bearer error="insufficient_scope", scope="a b"` (RFC 6750 3, 3.1). */
static int build_scope_challenge(jwt_conf_t *c)
{
    size_t len = 64;
    for (size_t i = 0; i < c->policy.n_scopes; i++)
        len += strlen(c->policy.scopes[i]) + 1;
    if ((c->scope_challenge = malloc(len)) == NULL)
        return -1;
    char *p = c->scope_challenge;
    p += sprintf(p, "Bearer error=\"insufficient_scope\", scope=\"");
    for (size_t i = 0; i < c->policy.n_scopes; i++)
        p += sprintf(p, "%s%s", i ? " " : "", c->policy.scopes[i]);
    strcpy(p, "\"");
    return 0;
}

#define JWT_LIST(key, list, count)                                                        \
    {                                                                                     \
        key, TG_CONF_FIELD_STRINGS, TG_CONF_AT(jwt_conf_t, policy.list),                  \
            .count_offset = offsetof(jwt_conf_t, policy.count), .flags = TG_CONF_NONEMPTY \
    }

/* Keys first: the others do not depend on them, but a config without any is
 * reported once everything else has been read. */
static const tg_conf_field_t fields[] = {
    {"keys", TG_CONF_FIELD_CUSTOM, .parse = parse_keys},
    {"jwks", TG_CONF_FIELD_CUSTOM, .parse = parse_jwks},
    {"jwks_uri", TG_CONF_FIELD_CUSTOM, .parse = parse_jwks_uri},
    JWT_LIST("issuer", issuers, n_issuers),
    JWT_LIST("audience", audiences, n_audiences),
    JWT_LIST("required_claims", required, n_required),
    JWT_LIST("scopes", scopes, n_scopes), /* and scope tokens: check_scopes() */
    /* More than a day defeats exp. */
    {"leeway", TG_CONF_FIELD_DURATION, TG_CONF_AT(jwt_conf_t, leeway_ms), .max = 24 * 3600 * 1000},
    {"token_from", TG_CONF_FIELD_CUSTOM, .parse = parse_sources, .flags = TG_CONF_ABSENT},
    {"forward_claims", TG_CONF_FIELD_CUSTOM, .parse = parse_forward},
    {"strip_token", TG_CONF_FIELD_BOOL, TG_CONF_AT(jwt_conf_t, strip_token)},
    /* entries per worker; 0 = no cache */
    {"cache", TG_CONF_FIELD_UINT, TG_CONF_AT(jwt_conf_t, cache_size), .max = 1000000, .def = 10000},
    TG_CONF_END,
};

/* Each scope is sent back in the 403's challenge: scope tokens only. */
static int check_scopes(const jwt_conf_t *c, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    const tg_conf_node_t *n = tg_conf_map_get(node, "scopes");
    for (size_t i = 0; i < c->policy.n_scopes; i++)
        if (!is_scope_token(c->policy.scopes[i]))
            return tg_conf_error(err, n->type == TG_CONF_SEQ ? n->items[i] : n,
                                 "invalid value \"%s\"", c->policy.scopes[i]);
    return 0;
}

/* Every source's name is a credential: request-log masks its values, whether
 * this plugin accepts the request or not. */
static int mark_sources(const jwt_conf_t *c, const tg_plugin_env_t *env, const tg_conf_node_t *node,
                        tg_conf_err_t *err)
{
    static const tg_sensitive_kind_t kinds[] = {
        [SRC_HEADER] = TG_SENSITIVE_HEADER,
        [SRC_COOKIE] = TG_SENSITIVE_COOKIE,
        [SRC_QUERY] = TG_SENSITIVE_QUERY,
    };
    for (size_t i = 0; i < c->n_sources; i++)
        if (tg_sensitive_add(env->sensitive, kinds[c->sources[i].kind], c->sources[i].name) < 0)
            return tg_conf_error(err, node, "cannot register \"%s\" as a credential name",
                                 c->sources[i].name);
    return 0;
}

static int register_metrics(jwt_conf_t *c, const tg_plugin_env_t *env, const tg_conf_node_t *node,
                            tg_conf_err_t *err)
{
    c->m_rejections = tg_metrics_counter(env->metrics, "tollgate_jwt_rejections_total",
                                         "Requests refused by the jwt plugin, by reason.", "reason",
                                         reason_names, TG_JWT_NREASONS);
    c->m_verifications = tg_metrics_counter(
        env->metrics, "tollgate_jwt_verifications_total",
        "Tokens accepted by the jwt plugin: verified now (ok) or found in the cache (cached).",
        "result", result_names, 2);
    if (c->m_rejections < 0 || c->m_verifications < 0)
        return tg_conf_error(err, node, "cannot register the jwt metrics");
    return 0;
}

static int jwt_create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **instance,
                      tg_conf_err_t *err)
{
    jwt_conf_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return tg_conf_error(err, node, "out of memory");
    c->env = env;
    if (tg_conf_read(node, fields, NULL, c, err) < 0 || check_scopes(c, node, err) < 0)
        goto fail;
    if (c->keys.n == 0 && c->remote == NULL) {
        tg_conf_error(err, node, "jwt needs at least one key (\"keys\", \"jwks\" or \"jwks_uri\")");
        goto fail;
    }
    c->policy.leeway = (double)c->leeway_ms / 1000.0;
    if (build_scope_challenge(c) < 0) {
        tg_conf_error(err, node, "out of memory");
        goto fail;
    }
    if (mark_sources(c, env, node, err) < 0 || register_metrics(c, env, node, err) < 0)
        goto fail;
    c->env = NULL;
    *instance = c;
    return 0;
fail:
    conf_free(c);
    return -1;
}

static void jwt_destroy(void *instance)
{
    conf_free(instance);
}

static void worker_keys_changed(void *arg)
{
    jwt_worker_t *w = arg;
    if (w->cache != NULL)
        tg_jwt_cache_clear(w->cache);
}

static void jwt_worker_fini(void *instance, void *worker)
{
    (void)instance;
    jwt_worker_t *w = worker;
    if (w == NULL)
        return;
    tg_jwt_remote_stop(w->remote);
    tg_jwt_cache_free(w->cache);
    EVP_MD_CTX_free(w->md_ctx);
    EVP_MD_free(w->sha256);
    free(w);
}

static void *jwt_worker_init(void *instance, struct event_base *base, unsigned worker_id)
{
    (void)worker_id;
    const jwt_conf_t *c = instance;
    jwt_worker_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    if (c->cache_size > 0) {
        w->cache = tg_jwt_cache_new(c->cache_size, c->policy.leeway);
        w->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
        w->md_ctx = EVP_MD_CTX_new();
    }
    if (c->remote != NULL)
        w->remote = tg_jwt_remote_start(c->remote, base, worker_keys_changed, w);
    return w;
}

/* ------------------------------------------------------------ tokens ---- */

typedef struct {
    const char *tok;
    size_t len;
    const source_t *src;
    bool bad;        /* a source had something that cannot be a token */
    bool dup;        /* the source holds more than one token (RFC 6750 3.1) */
    tg_span_t param; /* query source: the parameter, for strip_token */
} found_t;

static const char *trim(const char *s, size_t *len)
{
    while (*len > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        (*len)--;
    }
    while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
        (*len)--;
    return s;
}

static size_t header_count(const tg_request_t *r, const char *name)
{
    size_t n = 0, nl = strlen(name), l, vl;
    const char *hn, *v;
    for (size_t i = 0; tg_request_header_at(r, i, &hn, &l, &v, &vl); i++)
        n += l == nl && strncasecmp(hn, name, nl) == 0;
    return n;
}

/* RFC 6750 2.1: credentials = "Bearer" 1*SP b64token. Authorization with
 * another scheme is not ours (no token); other headers may hold the bare token. */
static void from_header(const tg_request_t *r, const source_t *src, found_t *f)
{
    size_t len;
    const char *v = tg_request_header(r, src->name, &len);
    if (v == NULL)
        return;
    v = trim(v, &len);
    bool bearer = len >= 6 && strncasecmp(v, "Bearer", 6) == 0 && (len == 6 || v[6] == ' ');
    if (!bearer && strcasecmp(src->name, "Authorization") == 0)
        return;
    if (bearer) {
        v += 6;
        len -= 6;
        v = trim(v, &len);
    }
    f->tok = v;
    f->len = len;
    f->bad = len == 0;
    /* Two copies: the upstream might read the one we did not verify. */
    f->dup = header_count(r, src->name) > 1;
}

/* Every Cookie header line counts: a second one is as good as a second pair
 * to an upstream (RFC 6265 5.4 says one line, clients do not all obey). */
static void from_cookie(const tg_request_t *r, const source_t *src, found_t *f)
{
    size_t n = 0, hl, vl;
    const char *hn, *v;
    tg_span_t val = {0}, later;
    for (size_t i = 0; tg_request_header_at(r, i, &hn, &hl, &v, &vl); i++)
        if (hl == 6 && strncasecmp(hn, "Cookie", 6) == 0)
            n += tg_jwt_cookie_find(v, vl, src->name, n ? &later : &val);
    if (n == 0)
        return;
    f->tok = val.p;
    f->len = val.len;
    f->bad = val.len == 0;
    f->dup = n > 1;
}

/* The parameter's value, percent-decoded (RFC 3986 2.1) into the arena. */
static void from_query(tg_request_t *r, const source_t *src, found_t *f)
{
    size_t qlen;
    const char *q = tg_request_query(r, &qlen);
    tg_span_t val;
    size_t n = q ? tg_query_find(q, qlen, src->name, &f->param, &val) : 0;
    if (n == 0)
        return;
    char *out = tg_arena_alloc(tg_request_arena(r), val.len + 1);
    f->tok = out;
    f->len = tg_percent_decode(val.p, val.len, out);
    f->bad = f->len == 0;
    f->dup = n > 1;
}

static void find_token(tg_request_t *r, const jwt_conf_t *c, found_t *f)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < c->n_sources && f->tok == NULL; i++) {
        const source_t *src = &c->sources[i];
        if (src->kind == SRC_HEADER)
            from_header(r, src, f);
        else if (src->kind == SRC_COOKIE)
            from_cookie(r, src, f);
        else
            from_query(r, src, f);
        if (f->tok != NULL)
            f->src = src;
    }
}

/* ----------------------------------------------------------- answers ---- */

static tg_filter_status_t reject(tg_request_t *r, const jwt_conf_t *c, tg_jwt_reason_t why)
{
    tg_metrics_add(r, c->m_rejections, (size_t)why, 1);
    tg_request_var_set_str(r, "auth.error", reason_names[why], strlen(reason_names[why]));
    tg_request_span_event(r, "jwt.rejected", "jwt.reject_reason", reason_names[why]);
    const char *challenge;
    int status = 401;
    if (why == TG_JWT_MISSING) {
        /* RFC 6750 3.1: no error code when the request had no credentials. */
        challenge = "Bearer realm=\"tollgate\"";
    } else if (why == TG_JWT_DUPLICATE) {
        /* RFC 6750 3.1: invalid_request "repeats the same parameter". */
        challenge = "Bearer error=\"invalid_request\", error_description=\"more than one token\"";
    } else if (why == TG_JWT_INSUFFICIENT_SCOPE) {
        challenge = c->scope_challenge;
        status = 403;
    } else {
        challenge = tg_arena_printf(tg_request_arena(r),
                                    "Bearer error=\"invalid_token\", error_description=\"%s\"",
                                    reason_texts[why]);
    }
    tg_request_add_response_header(r, "WWW-Authenticate", challenge, strlen(challenge));
    tg_request_respond_error(r, status, reason_texts[why]);
    return TG_FILTER_RESPONDED;
}

static void forward_claims(tg_request_t *r, const jwt_conf_t *c, json_t *claims)
{
    for (size_t i = 0; i < c->n_forward; i++) {
        const forward_t *f = &c->forward[i];
        /* Always: a client-sent header of that name must never reach the upstream. */
        tg_request_remove_header(r, f->header);
        json_t *v = json_object_get(claims, f->claim);
        if (v == NULL || json_is_null(v))
            continue;
        /* A value with CR, LF, NUL or another control is refused by the
         * core (TG_EINVAL), so the header stays absent: a signed claim is
         * still the token issuer's text, not ours. The name was checked at
         * load. */
        if (json_is_string(v)) {
            tg_request_set_header(r, f->header, json_string_value(v), json_string_length(v));
            continue;
        }
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text != NULL)
            tg_request_set_header(r, f->header, text, strlen(text));
        free(text);
    }
}

/* One claim as the core's claim contract wants it (request.h): a string as
 * its value, null not at all, anything else as compact JSON text. */
static void publish_claim(tg_request_t *r, const char *name, const json_t *v)
{
    if (json_is_string(v)) {
        tg_request_set_claim(r, name, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) { /* exp, iat, nbf on every request: no printf */
        char buf[24], *p = buf + sizeof(buf);
        json_int_t i = json_integer_value(v);
        unsigned long long m = i < 0 ? 0ull - (unsigned long long)i : (unsigned long long)i;
        do
            *--p = (char)('0' + m % 10);
        while ((m /= 10) != 0);
        if (i < 0)
            *--p = '-';
        tg_request_set_claim(r, name, p, (size_t)(buf + sizeof(buf) - p));
    } else if (json_is_boolean(v)) {
        tg_request_set_claim(r, name, json_is_true(v) ? "true" : "false", json_is_true(v) ? 4 : 5);
    } else if (!json_is_null(v)) {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text != NULL)
            tg_request_set_claim(r, name, text, strlen(text));
        free(text);
    }
}

/* The token's subject and its first TG_REQUEST_CLAIMS_MAX top-level claims,
 * published through the core; nothing of our JSON leaves the plugin. */
static void publish(tg_request_t *r, const json_t *claims)
{
    const json_t *sub = json_object_get(claims, "sub");
    if (json_is_string(sub))
        tg_request_set_subject(r, json_string_value(sub), json_string_length(sub));
    const char *name;
    const json_t *v;
    size_t n = 0;
    json_object_foreach((json_t *)claims, name, v) {
        if (n++ == TG_REQUEST_CLAIMS_MAX)
            break;
        publish_claim(r, name, v);
    }
}

/* The Cookie header without the token's cookie (the lines of several headers
 * joined into one), or no Cookie header when nothing else is left. */
static void strip_cookie(tg_request_t *r, const char *name)
{
    size_t cap = 0, len = 0, hl, vl;
    const char *hn, *v;
    for (size_t i = 0; tg_request_header_at(r, i, &hn, &hl, &v, &vl); i++)
        if (hl == 6 && strncasecmp(hn, "Cookie", 6) == 0)
            cap += 2 * vl + 2;
    char *out = tg_arena_alloc(tg_request_arena(r), cap + 1);
    for (size_t i = 0; tg_request_header_at(r, i, &hn, &hl, &v, &vl); i++)
        if (hl == 6 && strncasecmp(hn, "Cookie", 6) == 0)
            len = tg_jwt_cookie_without(v, vl, name, out, len);
    if (len == 0)
        tg_request_remove_header(r, "Cookie");
    else
        tg_request_set_header(r, "Cookie", out, len);
}

/* The query without the token parameter, the others byte for byte; no query
 * at all when it was the only one. */
static int strip_query(tg_request_t *r, const found_t *f)
{
    size_t qlen;
    const char *q = tg_request_query(r, &qlen);
    char *out = tg_arena_alloc(tg_request_arena(r), qlen + 1);
    size_t n = tg_query_without(q, qlen, f->param, out);
    return tg_request_set_query(r, n ? out : NULL, n);
}

static int strip_token(tg_request_t *r, const found_t *f)
{
    switch (f->src->kind) {
    case SRC_HEADER:
        tg_request_remove_header(r, f->src->name);
        return 0;
    case SRC_COOKIE:
        strip_cookie(r, f->src->name);
        return 0;
    case SRC_QUERY:
    default:
        return strip_query(r, f);
    }
}

static tg_filter_status_t accept_token(tg_request_t *r, const jwt_conf_t *c, const found_t *f,
                                       json_t *claims, bool cached)
{
    /* A query we could not rewrite: never send the token on. */
    if (c->strip_token && strip_token(r, f) < 0)
        return TG_FILTER_ERROR;
    tg_metrics_add(r, c->m_verifications, cached ? 1 : 0, 1);
    forward_claims(r, c, claims);
    publish(r, claims);
    return TG_FILTER_CONTINUE;
}

static void cache_key(const jwt_worker_t *w, const char *tok, size_t len,
                      unsigned char key[TG_JWT_CACHE_KEY])
{
    if (w->md_ctx == NULL || w->sha256 == NULL ||
        EVP_DigestInit_ex(w->md_ctx, w->sha256, NULL) != 1 ||
        EVP_DigestUpdate(w->md_ctx, tok, len) != 1 || EVP_DigestFinal_ex(w->md_ctx, key, NULL) != 1)
        SHA256((const unsigned char *)tok, len, key);
}

/* Claims of the token from the worker's cache or from a full verification
 * (then cached when within its validity window). A new reference, or NULL
 * with *why set. */
static json_t *claims_of(const jwt_conf_t *c, const jwt_worker_t *w, const found_t *f, double now,
                         tg_jwt_reason_t *why, bool *cached)
{
    tg_jwt_cache_t *cache = w ? w->cache : NULL;
    /* The configured keys first, then this worker's fetched ones. */
    tg_jwt_keyset_t keys = c->keys;
    keys.next = w && w->remote ? tg_jwt_remote_keys(w->remote) : NULL;
    unsigned char key[TG_JWT_CACHE_KEY];
    json_t *claims = NULL;
    *cached = false;
    if (cache != NULL && f->len <= TG_JWT_MAX_TOKEN) {
        cache_key(w, f->tok, f->len, key);
        if ((claims = tg_jwt_cache_get(cache, key, now)) != NULL) {
            *cached = true;
            return json_incref(claims);
        }
    }
    *why = tg_jwt_verify(&keys, f->tok, f->len, &claims);
    if (*why == TG_JWT_UNKNOWN_KEY && w && w->remote)
        tg_jwt_remote_poke(w->remote); /* key rotation: the IdP may know it by now */
    if (*why != TG_JWT_OK)
        return NULL;
    if (cache != NULL && tg_jwt_check_times(claims, now, c->policy.leeway) == TG_JWT_OK)
        tg_jwt_cache_put(cache, key, claims);
    return claims;
}

static tg_filter_status_t jwt_request_head(tg_request_t *r, const tg_filter_t *flt)
{
    const jwt_conf_t *c = flt->instance;
    found_t f;
    find_token(r, c, &f);
    if (f.tok == NULL)
        return reject(r, c, TG_JWT_MISSING);
    if (f.dup)
        return reject(r, c, TG_JWT_DUPLICATE);
    if (f.bad)
        return reject(r, c, TG_JWT_MALFORMED);
    double now = (double)tg_wall_us() / 1e6; /* exp, nbf and iat are wall-clock seconds */
    tg_jwt_reason_t why = TG_JWT_OK;
    bool cached;
    json_t *claims = claims_of(c, flt->worker, &f, now, &why, &cached);
    if (claims == NULL)
        return reject(r, c, why);
    why = tg_jwt_check_claims(&c->policy, claims, now);
    tg_filter_status_t st =
        why == TG_JWT_OK ? accept_token(r, c, &f, claims, cached) : TG_FILTER_CONTINUE;
    json_decref(claims);
    return why == TG_JWT_OK ? st : reject(r, c, why);
}

TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "jwt",
    .version = TG_VERSION,
    .ctx_size = 0,
    .create = jwt_create,
    .destroy = jwt_destroy,
    .worker_init = jwt_worker_init,
    .worker_fini = jwt_worker_fini,
    .request_head = jwt_request_head,
};
