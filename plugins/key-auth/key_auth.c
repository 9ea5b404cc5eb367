/*
 * key-auth: API keys (Kong's key-auth, APISIX's key-auth) checked against
 * the SHA-256 digests of a keys file (keys_file.h).
 *
 *   - name: key-auth
 *     config:
 *       header: X-Api-Key            # or query: api_key (one source; default header X-Api-Key)
 *       keys_file: api-keys.yaml     # relative to the main config's directory
 *       forward_consumer: X-Consumer # optional: the consumer's name for the upstream
 *       strip_key: true              # the upstream never sees the key
 *       scopes: [orders:read]        # optional: the consumer must hold all of them (else 403)
 *
 * A request passes with exactly one key in its source that matches a
 * consumer; it then carries the consumer's name (tg_request_set_consumer)
 * for rate-limit (`key: consumer`), request-log (`consumer`) and the
 * upstream (forward_consumer). Otherwise 401 with the gateway's JSON error
 * body: "missing API key", "more than one API key" (the gateway would check
 * one copy and the upstream might read the other, the jwt plugin's rule) or
 * "invalid API key"; a wrong key and a revoked one read the same. The key's
 * name is marked as a credential (tg_sensitive_add), so loggers mask it.
 */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "keys_file.h"
#include "tollgate/plugin.h"
#include "tollgate/text.h"
#include "tollgate/trace.h"

typedef enum { WHY_MISSING, WHY_DUPLICATE, WHY_INVALID, WHY_SCOPE, WHY_COUNT } why_t;

static const char *const why_names[WHY_COUNT] = {"missing", "duplicate", "invalid",
                                                 "insufficient_scope"};
static const char *const why_texts[WHY_COUNT] = {"missing API key", "more than one API key",
                                                 "invalid API key", "insufficient scope"};

typedef struct {
    char *header; /* the key's header, or NULL */
    char *query;  /* the key's query parameter, or NULL */
    char *keys_file;
    char *forward; /* forward_consumer header, or NULL */
    bool strip_key;
    char **scopes; /* required of the consumer, NULL-terminated, or NULL */
    size_t n_scopes;
    tg_ka_keys_t keys;
    int m_rejections;
} ka_t;

/* Per worker: one digest context, reused (SHA256() in OpenSSL 3 fetches the
 * algorithm and allocates a context per call: the jwt plugin measured it). */
typedef struct {
    EVP_MD *sha256;
    EVP_MD_CTX *ctx;
} ka_worker_t;

static const tg_conf_field_t fields[] = {
    {"header", TG_CONF_FIELD_STRING, TG_CONF_AT(ka_t, header), .flags = TG_CONF_NONEMPTY,
     .max = TG_SENSITIVE_NAME_MAX},
    {"query", TG_CONF_FIELD_STRING, TG_CONF_AT(ka_t, query), .flags = TG_CONF_NONEMPTY,
     .max = TG_QUERY_NAME_MAX},
    {"keys_file", TG_CONF_FIELD_STRING, TG_CONF_AT(ka_t, keys_file),
     .flags = TG_CONF_REQUIRED | TG_CONF_NONEMPTY, .help = "a YAML file of consumers"},
    {"forward_consumer", TG_CONF_FIELD_STRING, TG_CONF_AT(ka_t, forward),
     .flags = TG_CONF_NONEMPTY},
    {"strip_key", TG_CONF_FIELD_BOOL, TG_CONF_AT(ka_t, strip_key)},
    {"scopes", TG_CONF_FIELD_STRINGS, TG_CONF_AT(ka_t, scopes),
     .count_offset = offsetof(ka_t, n_scopes), .flags = TG_CONF_NONEMPTY},
    TG_CONF_END,
};

/* ------------------------------------------------------------ config ---- */

static void destroy(void *instance)
{
    ka_t *c = instance;
    if (c == NULL)
        return;
    tg_conf_fields_free(fields, c);
    tg_ka_keys_free(&c->keys);
    free(c);
}

/* header or query, not both; neither is the default header. */
static int check_source(ka_t *c, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    if (c->header != NULL && c->query != NULL)
        return tg_conf_error(err, tg_conf_map_get(node, "query"),
                             "\"header\" and \"query\" together: the key has one source");
    if (c->query != NULL)
        return tg_token_valid(c->query, strlen(c->query))
                   ? 0
                   : tg_conf_error(err, tg_conf_map_get(node, "query"), "invalid parameter name");
    if (c->header == NULL && (c->header = strdup("X-Api-Key")) == NULL)
        return tg_conf_error(err, node, "out of memory");
    const tg_conf_node_t *at = tg_conf_map_get(node, "header");
    int bad = tg_request_header_check(c->header, NULL, 0);
    if (bad == TG_EFORBIDDEN)
        return tg_conf_error(err, at, "header \"%s\" is the gateway's own", c->header);
    return bad < 0 ? tg_conf_error(err, at, "invalid header name \"%s\"", c->header) : 0;
}

static int check_forward(const ka_t *c, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    const tg_conf_node_t *at = tg_conf_map_get(node, "forward_consumer");
    if (c->forward == NULL)
        return 0;
    int bad = tg_request_header_check(c->forward, NULL, 0);
    if (bad == TG_EFORBIDDEN)
        return tg_conf_error(err, at, "header \"%s\" is the gateway's own: a plugin cannot set it",
                             c->forward);
    if (bad < 0)
        return tg_conf_error(err, at, "invalid header name \"%s\"", c->forward);
    if (c->header != NULL && strcasecmp(c->header, c->forward) == 0)
        return tg_conf_error(err, at, "the key's own header cannot carry the consumer");
    return 0;
}

static int load_keys(ka_t *c, const tg_plugin_env_t *env, const tg_conf_node_t *node,
                     tg_conf_err_t *err)
{
    char path[4096];
    const char *f = c->keys_file;
    int n = (f[0] == '/' || env->config_dir == NULL)
                ? snprintf(path, sizeof(path), "%s", f)
                : snprintf(path, sizeof(path), "%s/%s", env->config_dir, f);
    if (n < 0 || (size_t)n >= sizeof(path))
        return tg_conf_error(err, tg_conf_map_get(node, "keys_file"), "path too long");
    if (tg_ka_keys_load(path, &c->keys, err) == 0)
        return 0;
    /* "cannot open" errors carry no position: say which entry named the file. */
    if (strncmp(err->msg, path, strlen(path)) == 0 && strstr(err->msg, ": cannot open:") != NULL) {
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%s", err->msg);
        return tg_conf_error(err, tg_conf_map_get(node, "keys_file"), "%s", msg);
    }
    return -1;
}

static int create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **instance,
                  tg_conf_err_t *err)
{
    ka_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return tg_conf_error(err, node, "out of memory");
    if (tg_conf_read(node, fields, NULL, c, err) < 0 || check_source(c, node, err) < 0 ||
        check_forward(c, node, err) < 0 || load_keys(c, env, node, err) < 0)
        goto fail;
    /* The key's name is a credential whether this plugin accepts the request or not. */
    int marked = c->header ? tg_sensitive_add(env->sensitive, TG_SENSITIVE_HEADER, c->header)
                           : tg_sensitive_add(env->sensitive, TG_SENSITIVE_QUERY, c->query);
    if (marked < 0) {
        tg_conf_error(err, node, "cannot register the key's name as a credential");
        goto fail;
    }
    c->m_rejections = tg_metrics_counter(env->metrics, "tollgate_key_auth_rejections_total",
                                         "Requests refused by the key-auth plugin, by reason.",
                                         "reason", why_names, WHY_COUNT);
    *instance = c;
    return 0;
fail:
    destroy(c);
    return -1;
}

static void *worker_init(void *instance, struct event_base *base, unsigned worker_id)
{
    (void)instance;
    (void)base;
    (void)worker_id;
    ka_worker_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    w->ctx = EVP_MD_CTX_new();
    return w;
}

static void worker_fini(void *instance, void *worker)
{
    (void)instance;
    ka_worker_t *w = worker;
    if (w == NULL)
        return;
    EVP_MD_CTX_free(w->ctx);
    EVP_MD_free(w->sha256);
    free(w);
}

/* ------------------------------------------------------------- keys ---- */

typedef struct {
    const char *key;
    size_t len;
    size_t count;    /* copies of the source in the request */
    tg_span_t param; /* query source: the parameter, for strip_key */
} found_t;

/* Header names equal case-insensitively with '_' and '-' alike: a client's
 * X_Api_Key is a second copy to an upstream that reads both as one. */
static bool same_header(const char *a, size_t al, const char *b, size_t bl)
{
    if (al != bl)
        return false;
    for (size_t i = 0; i < al; i++) {
        char x = a[i] == '_' ? '-' : a[i], y = b[i] == '_' ? '-' : b[i];
        x = x >= 'A' && x <= 'Z' ? (char)(x + 32) : x;
        y = y >= 'A' && y <= 'Z' ? (char)(y + 32) : y;
        if (x != y)
            return false;
    }
    return true;
}

static void from_header(const tg_request_t *r, const char *name, found_t *f)
{
    size_t nl = strlen(name), hl, vl;
    const char *hn, *v;
    for (size_t i = 0; tg_request_header_at(r, i, &hn, &hl, &v, &vl); i++) {
        if (!same_header(hn, hl, name, nl) || f->count++ > 0)
            continue;
        while (vl > 0 && (v[0] == ' ' || v[0] == '\t')) {
            v++;
            vl--;
        }
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        f->key = v;
        f->len = vl;
    }
}

/* The parameter's value, percent-decoded (RFC 3986 2.1) into the arena. */
static void from_query(tg_request_t *r, const char *name, found_t *f)
{
    size_t qlen;
    const char *q = tg_request_query(r, &qlen);
    tg_span_t val;
    f->count = q ? tg_query_find(q, qlen, name, &f->param, &val) : 0;
    if (f->count == 0)
        return;
    char *out = tg_arena_alloc(tg_request_arena(r), val.len + 1);
    f->key = out;
    f->len = tg_percent_decode(val.p, val.len, out);
}

static void digest_of(const ka_worker_t *w, const char *key, size_t len,
                      unsigned char out[TG_KA_DIGEST])
{
    if (w == NULL || w->ctx == NULL || w->sha256 == NULL ||
        EVP_DigestInit_ex(w->ctx, w->sha256, NULL) != 1 ||
        EVP_DigestUpdate(w->ctx, key, len) != 1 || EVP_DigestFinal_ex(w->ctx, out, NULL) != 1)
        SHA256((const unsigned char *)key, len, out);
}

/* --------------------------------------------------------- answers ---- */

static tg_filter_status_t reject(tg_request_t *r, const ka_t *c, why_t why)
{
    tg_metrics_add(r, c->m_rejections, (size_t)why, 1);
    tg_request_var_set_str(r, "auth.error", why_names[why], strlen(why_names[why]));
    tg_request_span_event(r, "key_auth.rejected", "key_auth.reject_reason", why_names[why]);
    int status = 403;
    if (why != WHY_SCOPE) {
        /* RFC 9110 15.5.2: a 401 carries a challenge. API keys have no
         * registered scheme; "Key" is what Kong sends. */
        static const char challenge[] = "Key realm=\"tollgate\"";
        tg_request_add_response_header(r, "WWW-Authenticate", challenge, sizeof(challenge) - 1);
        status = 401;
    }
    tg_request_respond_error(r, status, why_texts[why]);
    return TG_FILTER_RESPONDED;
}

static bool has_scopes(const ka_t *c, const tg_ka_consumer_t *who)
{
    for (size_t i = 0; i < c->n_scopes; i++) {
        bool found = false;
        for (size_t j = 0; j < who->n_scopes && !found; j++)
            found = strcmp(c->scopes[i], who->scopes[j]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* The query without the key parameter, the others byte for byte; no query
 * at all when it was the only one. */
static int strip_query(tg_request_t *r, const found_t *f)
{
    size_t qlen;
    const char *q = tg_request_query(r, &qlen);
    char *out = tg_arena_alloc(tg_request_arena(r), qlen + 1);
    size_t n = tg_query_without(q, qlen, f->param, out);
    return tg_request_set_query(r, n ? out : NULL, n);
}

static tg_filter_status_t request_head(tg_request_t *r, const tg_filter_t *flt)
{
    const ka_t *c = flt->instance;
    /* Always first: a client-sent header of that name never reaches the upstream. */
    if (c->forward != NULL)
        tg_request_remove_header(r, c->forward);
    found_t f = {0};
    if (c->header != NULL)
        from_header(r, c->header, &f);
    else
        from_query(r, c->query, &f);
    if (f.count == 0 || (f.count == 1 && f.len == 0))
        return reject(r, c, WHY_MISSING);
    if (f.count > 1)
        return reject(r, c, WHY_DUPLICATE);
    unsigned char digest[TG_KA_DIGEST];
    digest_of(flt->worker, f.key, f.len, digest);
    const tg_ka_consumer_t *who = tg_ka_keys_match(&c->keys, digest);
    if (who == NULL)
        return reject(r, c, WHY_INVALID);
    if (!has_scopes(c, who))
        return reject(r, c, WHY_SCOPE);
    if (c->strip_key) {
        if (c->header != NULL)
            tg_request_remove_header(r, c->header);
        else if (strip_query(r, &f) < 0)
            return TG_FILTER_ERROR; /* never send the key on */
    }
    size_t nlen = strlen(who->name);
    tg_request_set_consumer(r, who->name, nlen);
    /* The name was checked at load (visible ASCII): the setter accepts it. */
    if (c->forward != NULL && tg_request_set_header(r, c->forward, who->name, nlen) < 0)
        return TG_FILTER_ERROR;
    return TG_FILTER_CONTINUE;
}

TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "key-auth",
    .version = TG_VERSION,
    .create = create,
    .destroy = destroy,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .request_head = request_head,
};
