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
#include "tollgate/plugin.h"

/* Past this many top-level string claims, no more "jwt.<claim>" vars: each
 * var is a list insertion, and the claims are the client's choice. */
#define MAX_CLAIM_VARS 32

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

/* RFC 9110 5.6.2 token characters (header names). */
static bool is_token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!strchr("!#$%&'*+-.^_`|~", *s) &&
            !((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
            return false;
    return true;
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

/* A string, or a list of strings, into a malloc'ed array. */
static int parse_str_list(const tg_conf_node_t *n, bool (*valid)(const char *), char ***out,
                          size_t *count, tg_conf_err_t *err)
{
    bool one = n->type == TG_CONF_SCALAR;
    if (!one && n->type != TG_CONF_SEQ)
        return tg_conf_error(err, n, "expected a string or a list of strings");
    size_t k = one ? 1 : n->count;
    char **list = calloc(k ? k : 1, sizeof(*list));
    *out = list;
    *count = 0;
    for (size_t i = 0; list != NULL && i < k; i++) {
        const tg_conf_node_t *item = one ? n : n->items[i];
        const char *s;
        if (tg_conf_get_string(item, &s, err) < 0)
            return -1;
        if (*s == '\0' || (valid != NULL && !valid(s)))
            return tg_conf_error(err, item, "invalid value \"%s\"", s);
        if ((list[i] = strdup(s)) == NULL)
            break;
        (*count)++;
    }
    return *count == k ? 0 : tg_conf_error(err, n, "out of memory");
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

static int parse_key(jwt_conf_t *c, const tg_conf_node_t *n, const tg_plugin_env_t *env,
                     tg_conf_err_t *err)
{
    static const char *const allowed[] = {"kid", "algorithm", "public_key", "secret", NULL};
    if (tg_conf_check_keys(n, allowed, err) < 0)
        return -1;
    const tg_conf_node_t *kid_n = tg_conf_map_get(n, "kid"),
                         *alg_n = tg_conf_map_get(n, "algorithm");
    const tg_conf_node_t *pub = tg_conf_map_get(n, "public_key"),
                         *sec = tg_conf_map_get(n, "secret");
    const char *kid = NULL, *alg_s, *v;
    if (kid_n != NULL && tg_conf_get_string(kid_n, &kid, err) < 0)
        return -1;
    if (alg_n == NULL)
        return tg_conf_error(err, n, "a key needs \"algorithm\"");
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
    if (resolve_path(env, v, path, sizeof(path)) < 0)
        return tg_conf_error(err, pub, "path too long");
    rc = tg_jwt_keyset_add_pem_file(&c->keys, kid, alg, path, msg, sizeof(msg));
    return rc < 0 ? tg_conf_error(err, pub, "%s", msg) : 0;
}

static int parse_keys(jwt_conf_t *c, const tg_conf_node_t *n, const tg_plugin_env_t *env,
                      tg_conf_err_t *err)
{
    if (n->type != TG_CONF_SEQ)
        return tg_conf_error(err, n, "\"keys\" must be a list");
    for (size_t i = 0; i < n->count; i++)
        if (parse_key(c, n->items[i], env, err) < 0)
            return -1;
    return 0;
}

static int parse_jwks(jwt_conf_t *c, const tg_conf_node_t *n, const tg_plugin_env_t *env,
                      tg_conf_err_t *err)
{
    const char *v;
    char path[4096], msg[400];
    size_t added = 0;
    if (tg_conf_get_string(n, &v, err) < 0)
        return -1;
    if (resolve_path(env, v, path, sizeof(path)) < 0)
        return tg_conf_error(err, n, "path too long");
    if (tg_jwt_keyset_add_jwks_file(&c->keys, path, &added, msg, sizeof(msg)) < 0)
        return tg_conf_error(err, n, "%s", msg);
    if (added == 0)
        return tg_conf_error(err, n, "%s holds no RSA or EC signature key", path);
    return 0;
}

/* jwks_uri: { upstream, path, refresh }. The upstream's existence is checked
 * by the fetch itself (plugins do not see the upstream list). */
static int parse_jwks_uri(jwt_conf_t *c, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    static const char *const allowed[] = {"upstream", "path", "refresh", NULL};
    const tg_conf_node_t *up = tg_conf_map_get(n, "upstream"), *path = tg_conf_map_get(n, "path");
    const tg_conf_node_t *refresh = tg_conf_map_get(n, "refresh");
    const char *u, *p;
    uint64_t ms = 10 * 60 * 1000;
    if (tg_conf_check_keys(n, allowed, err) < 0)
        return -1;
    if (up == NULL || path == NULL)
        return tg_conf_error(err, n, "jwks_uri needs \"upstream\" and \"path\"");
    if (tg_conf_get_string(up, &u, err) < 0 || tg_conf_get_string(path, &p, err) < 0)
        return -1;
    if (*u == '\0')
        return tg_conf_error(err, up, "empty upstream name");
    if (p[0] != '/' || strpbrk(p, " \t\r\n") != NULL)
        return tg_conf_error(err, path, "path must start with \"/\" and hold no white space");
    if (refresh != NULL && tg_conf_get_duration_ms(refresh, &ms, err) < 0)
        return -1;
    if (ms < 1000)
        return tg_conf_error(err, refresh, "refresh below 1s");
    if ((c->remote = calloc(1, sizeof(*c->remote))) == NULL ||
        (c->remote->upstream = strdup(u)) == NULL || (c->remote->path = strdup(p)) == NULL)
        return tg_conf_error(err, n, "out of memory");
    c->remote->refresh_ms = ms;
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
        if (strncmp(s, kinds[i].prefix, pl) == 0 && is_token(s + pl)) {
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

static int parse_sources(jwt_conf_t *c, const tg_conf_node_t *n, tg_conf_err_t *err)
{
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

static int parse_forward(jwt_conf_t *c, const tg_conf_node_t *n, tg_conf_err_t *err)
{
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

static int parse_policy(jwt_conf_t *c, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    tg_jwt_policy_t *p = &c->policy;
    const tg_conf_node_t *n;
    uint64_t ms = 0;
    if ((n = tg_conf_map_get(node, "issuer")) &&
        parse_str_list(n, NULL, &p->issuers, &p->n_issuers, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "audience")) &&
        parse_str_list(n, NULL, &p->audiences, &p->n_audiences, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "required_claims")) &&
        parse_str_list(n, NULL, &p->required, &p->n_required, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "scopes")) &&
        parse_str_list(n, is_scope_token, &p->scopes, &p->n_scopes, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "leeway")) && tg_conf_get_duration_ms(n, &ms, err) < 0)
        return -1;
    if (ms > 24 * 3600 * 1000)
        return tg_conf_error(err, n, "leeway above one day defeats exp");
    p->leeway = (double)ms / 1000.0;
    return build_scope_challenge(c) < 0 ? tg_conf_error(err, node, "out of memory") : 0;
}

static int parse_options(jwt_conf_t *c, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    const tg_conf_node_t *n;
    uint64_t size = 10000;
    if ((n = tg_conf_map_get(node, "strip_token")) && tg_conf_get_bool(n, &c->strip_token, err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "cache")) && tg_conf_get_uint(n, 0, 1000000, &size, err) < 0)
        return -1;
    c->cache_size = (size_t)size;
    if (parse_sources(c, tg_conf_map_get(node, "token_from"), err) < 0)
        return -1;
    if ((n = tg_conf_map_get(node, "forward_claims")) && parse_forward(c, n, err) < 0)
        return -1;
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
    static const char *const allowed[] = {
        "keys",       "jwks",           "jwks_uri",        "issuer",
        "audience",   "leeway",         "required_claims", "scopes",
        "token_from", "forward_claims", "strip_token",     "cache",
        NULL};
    if (node == NULL || node->type != TG_CONF_MAP) {
        if (node != NULL && node->file != NULL)
            return tg_conf_error(err, node, "jwt needs a config map with \"keys\" or \"jwks\"");
        snprintf(err->msg, sizeof(err->msg), "jwt needs a config map with \"keys\" or \"jwks\"");
        return -1;
    }
    if (tg_conf_check_keys(node, allowed, err) < 0)
        return -1;
    const tg_conf_node_t *keys = tg_conf_map_get(node, "keys"),
                         *jwks = tg_conf_map_get(node, "jwks");
    const tg_conf_node_t *uri = tg_conf_map_get(node, "jwks_uri");
    jwt_conf_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return tg_conf_error(err, node, "out of memory");
    if ((keys && parse_keys(c, keys, env, err) < 0) ||
        (jwks && parse_jwks(c, jwks, env, err) < 0) || (uri && parse_jwks_uri(c, uri, err) < 0) ||
        parse_policy(c, node, err) < 0 || parse_options(c, node, err) < 0 ||
        mark_sources(c, env, node, err) < 0 || register_metrics(c, env, node, err) < 0) {
        conf_free(c);
        return -1;
    }
    if (c->keys.n == 0 && c->remote == NULL) {
        conf_free(c);
        return tg_conf_error(err, node,
                             "jwt needs at least one key (\"keys\", \"jwks\" or \"jwks_uri\")");
    }
    *instance = c;
    return 0;
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
    bool bad;            /* a source had something that cannot be a token */
    bool dup;            /* the source holds more than one token (RFC 6750 3.1) */
    tg_jwt_span_t param; /* query source: the parameter, for strip_token */
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
    tg_jwt_span_t val = {0}, later;
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
    tg_jwt_span_t val;
    size_t n = q ? tg_jwt_query_find(q, qlen, src->name, &f->param, &val) : 0;
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

static void claims_release(void *claims)
{
    json_decref(claims);
}

static void set_vars(tg_request_t *r, json_t *claims)
{
    const char *name;
    json_t *v;
    size_t n = 0;
    json_object_foreach(claims, name, v) {
        if (!json_is_string(v) || strcmp(name, "claims") == 0)
            continue;
        if (n++ == MAX_CLAIM_VARS)
            break;
        char *key = tg_arena_printf(tg_request_arena(r), "jwt.%s", name);
        tg_request_var_set_str(r, key, json_string_value(v), json_string_length(v));
    }
    /* Borrowed by other plugins until the request ends. */
    tg_request_var_set_ptr(r, "jwt.claims", json_incref(claims));
    tg_request_on_cleanup(r, claims_release, claims);
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
    size_t n = tg_jwt_query_without(q, qlen, f->param, out);
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
    set_vars(r, claims);
    return TG_FILTER_CONTINUE;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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
    double now = now_seconds();
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
    .api_version = TG_PLUGIN_API_VERSION,
    .name = "jwt",
    .ctx_size = 0,
    .create = jwt_create,
    .destroy = jwt_destroy,
    .worker_init = jwt_worker_init,
    .worker_fini = jwt_worker_fini,
    .request_head = jwt_request_head,
};
