/*
 * response-shape plugin: per-client JSON response shaping (backend for
 * frontend). The request picks a profile (header, query parameter, JWT claim
 * or User-Agent regex); a 2xx JSON response is then buffered whole, shaped by
 * the profile's include / exclude / rename paths (shape.h) and sent with an
 * exact Content-Length.
 *
 *   - name: response-shape
 *     config:
 *       client: "header:X-Client"   # header:<Name> | jwt.<claim> | query:<name> | user_agent
 *       user_agent: { mobile: "(?i)(android|iphone)" }  # client: user_agent; first match wins
 *       default: web                # profile when nothing (or an unknown name) matches
 *       max_body: 4MiB              # larger bodies cannot be shaped (see on_invalid)
 *       on_invalid: error           # pass | error: every profile's default (below)
 *       profiles:
 *         mobile:
 *           include: [id, "orders[].id"]
 *           exclude: ["orders[].cost_price"]
 *           rename: { avatar_url: avatar }
 *           set_headers: { Cache-Control: "private, max-age=60" }
 *           remove_headers: [X-Internal-Trace]
 *           on_invalid: pass        # overrides the plugin's on_invalid
 *
 * Phases:
 *   request_head   selects the profile (request var "shape.profile"); when
 *                  the profile has body rules, asks the upstream for an
 *                  unencoded body (Accept-Encoding: identity), since a
 *                  compressed body cannot be shaped.
 *   response_head  2xx with a JSON media type (application/json or any
 *                  +json, RFC 6839 section 3.1) only: buffers the body when
 *                  the profile has body rules and the body is not encoded,
 *                  makes a strong ETag weak (the bytes differ per profile,
 *                  RFC 9110 section 8.8.1), applies remove_headers then
 *                  set_headers, and adds the selection header to Vary.
 *   response_body  shapes the whole body. A body it cannot shape (invalid
 *                  JSON, over max_body, content-coded) follows the profile's
 *                  on_invalid: pass (byte for byte) or error (the response
 *                  becomes a 502 with the gateway's JSON error body, logged
 *                  by the core). Without on_invalid anywhere, a profile with
 *                  exclude rules errs (they exist to hide fields: a body that
 *                  passes whole would show them) and the others pass.
 *   log            counts tollgate_response_shape_total{result}, once per
 *                  response, and tollgate_response_shape_refused_total{reason}
 *                  for the 502s.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shape.h"
#include "tollgate/plugin.h"
#include "tollgate/text.h"

typedef enum { CLIENT_HEADER, CLIENT_QUERY, CLIENT_JWT, CLIENT_UA } client_kind_t;

/* Metric label values, in the order of result_t - 1. */
typedef enum { R_NONE = 0, R_SHAPED, R_PASSTHROUGH, R_TOO_LARGE, R_INVALID, R_REFUSED } result_t;
static const char *const result_names[] = {"shaped", "passthrough", "too_large", "invalid_json",
                                           "refused"};

/* Why a body could not be shaped: refused_total's label values. */
typedef enum { W_INVALID = 0, W_TOO_LARGE, W_ENCODED } why_t;
static const char *const why_names[] = {"invalid_json", "too_large", "content_encoding"};
static const char *const why_text[] = {
    "response body is not valid JSON and cannot be shaped",
    "response body is larger than max_body and cannot be shaped",
    "response body is content-coded and cannot be shaped",
};

/* on_invalid; UNSET: not written (the profile's default applies). */
typedef enum { INVALID_UNSET = 0, INVALID_PASS, INVALID_ERROR } on_invalid_t;

typedef struct {
    char *name;
    char *value;
} header_t;

typedef struct {
    char *name;        /* as written under profiles: */
    tg_shape_t *shape; /* body rules; empty: the body is never buffered */
    header_t *set;     /* set_headers */
    size_t nset;
    char **remove; /* remove_headers */
    size_t nremove;
    bool excludes;      /* has exclude rules (on_invalid's default) */
    bool refuse;        /* on_invalid: error, written or by default */
    on_invalid_t given; /* on_invalid as written under the profile */
} profile_t;

typedef struct {
    size_t profile; /* index in profiles */
    pcre2_code *re; /* compiled and JIT-compiled at load */
} ua_rule_t;

typedef struct {
    client_kind_t kind;
    char *source;     /* header name, query parameter name, or claim name (jwt.<claim>) */
    const char *vary; /* header added to Vary, NULL for query and jwt */
    profile_t *profiles;
    size_t nprofiles;
    ua_rule_t *ua; /* client: user_agent, in the order written */
    size_t nua;
    size_t def; /* default profile */
    uint64_t max_body;
    pcre2_match_context *mctx; /* match limit; only read while matching */
    int metric;
    int refused_metric; /* tollgate_response_shape_refused_total */
} shape_conf_t;

typedef struct {
    uint16_t profile; /* index + 1; 0 when request_head did not run */
    uint8_t result;   /* result_t to count in log */
    uint8_t why;      /* why_t of a refused body */
    bool buffering;   /* response_head asked for the whole body */
    bool encoded;     /* ...only to refuse it: it is content-coded */
} shape_ctx_t;

typedef struct {
    pcre2_match_data *md;
} shape_worker_t;

#define MAX_PROFILES 1000
/* Backtracking bound per User-Agent match: a slow pattern fails closed
 * (no match) instead of stalling a worker. */
#define UA_MATCH_LIMIT 100000

/* ---- config ---- */

static void conf_free(shape_conf_t *c)
{
    for (size_t i = 0; i < c->nprofiles; i++) {
        profile_t *p = &c->profiles[i];
        free(p->name);
        tg_shape_free(p->shape);
        for (size_t k = 0; k < p->nset; k++) {
            free(p->set[k].name);
            free(p->set[k].value);
        }
        free(p->set);
        for (size_t k = 0; k < p->nremove; k++)
            free(p->remove[k]);
        free(p->remove);
    }
    for (size_t i = 0; i < c->nua; i++)
        pcre2_code_free(c->ua[i].re);
    pcre2_match_context_free(c->mctx);
    free(c->ua);
    free(c->profiles);
    free(c->source);
    free(c);
}

static int get_header_name(const tg_conf_node_t *n, const char **out, tg_conf_err_t *err)
{
    if (tg_conf_get_string(n, out, err) < 0)
        return -1;
    /* The core owns the framing and this hop's fields (request.h). */
    switch (tg_response_header_check(*out, NULL, 0)) {
    case 0:
        return 0;
    case TG_EFORBIDDEN:
        return tg_conf_error(err, n, "%s cannot be changed by response-shape", *out);
    default:
        return tg_conf_error(err, n, "'%s' is not a header name", *out);
    }
}

/* The custom readers of the tables below get the whole struct as out. */

static int parse_client(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    shape_conf_t *c = out;
    const char *s;
    if (tg_conf_get_string(n, &s, err) < 0)
        return -1;
    if (strncmp(s, "header:", 7) == 0 && tg_token_valid(s + 7, strlen(s + 7))) {
        c->kind = CLIENT_HEADER;
        c->source = strdup(s + 7);
    } else if (strncmp(s, "query:", 6) == 0 && s[6] != '\0') {
        c->kind = CLIENT_QUERY;
        c->source = strdup(s + 6);
    } else if (strncmp(s, "jwt.", 4) == 0 && s[4] != '\0') {
        c->kind = CLIENT_JWT;
        c->source = strdup(s + 4); /* the claim's name (tg_request_claim) */
    } else if (strcmp(s, "user_agent") == 0) {
        c->kind = CLIENT_UA;
        c->source = strdup("User-Agent");
    } else {
        return tg_conf_error(
            err, n,
            "client must be header:<Name>, query:<name>, jwt.<claim> or user_agent, not '%s'", s);
    }
    if (c->source == NULL)
        return tg_conf_error(err, n, "out of memory");
    c->vary = c->kind == CLIENT_HEADER || c->kind == CLIENT_UA ? c->source : NULL;
    return 0;
}

static int find_profile(const shape_conf_t *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->nprofiles; i++)
        if (strlen(c->profiles[i].name) == len && memcmp(c->profiles[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

static int seq_items(const tg_conf_node_t *n, tg_conf_err_t *err)
{
    if (n->type == TG_CONF_NULL)
        return 0;
    if (n->type != TG_CONF_SEQ)
        return tg_conf_error(err, n, "expected a list");
    return 0;
}

static int add_rules(profile_t *p, const tg_conf_node_t *n, tg_shape_rule_t rule,
                     tg_conf_err_t *err)
{
    char why[256];
    const char *path;
    if (seq_items(n, err) < 0)
        return -1;
    for (size_t i = 0; n->type == TG_CONF_SEQ && i < n->count; i++) {
        if (tg_conf_get_string(n->items[i], &path, err) < 0)
            return -1;
        if (tg_shape_add(p->shape, rule, path, NULL, why, sizeof(why)) < 0)
            return tg_conf_error(err, n->items[i], "%s", why);
    }
    return 0;
}

static int add_includes(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    return add_rules(out, n, TG_SHAPE_INCLUDE, err);
}

static int add_excludes(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    profile_t *p = out;
    p->excludes = n->type == TG_CONF_SEQ && n->count > 0;
    return add_rules(p, n, TG_SHAPE_EXCLUDE, err);
}

static int add_renames(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    profile_t *p = out;
    char why[256];
    const char *to;
    if (n->type == TG_CONF_NULL)
        return 0;
    if (n->type != TG_CONF_MAP)
        return tg_conf_error(err, n, "expected a map of path: new_name");
    for (size_t i = 0; i < n->count; i++) {
        if (tg_conf_get_string(n->items[i], &to, err) < 0)
            return -1;
        if (tg_shape_add(p->shape, TG_SHAPE_RENAME, n->keys[i]->value, to, why, sizeof(why)) < 0)
            return tg_conf_error(err, n->keys[i], "%s", why);
    }
    return 0;
}

static int parse_set_headers(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    profile_t *p = out;
    if (n->type == TG_CONF_NULL)
        return 0;
    if (n->type != TG_CONF_MAP)
        return tg_conf_error(err, n, "expected a map of header: value");
    if ((p->set = calloc(n->count, sizeof(*p->set))) == NULL)
        return tg_conf_error(err, n, "out of memory");
    for (size_t i = 0; i < n->count; i++) {
        const char *name, *value;
        if (get_header_name(n->keys[i], &name, err) < 0 ||
            tg_conf_get_string(n->items[i], &value, err) < 0)
            return -1;
        /* RFC 9110 section 5.5: no CR, LF, NUL or other control but HTAB. */
        if (tg_response_header_check(name, value, n->items[i]->len) < 0)
            return tg_conf_error(err, n->items[i], "header value with CR, LF, NUL or a control");
        p->set[i].name = strdup(name);
        p->set[i].value = strdup(value);
        p->nset++;
        if (p->set[i].name == NULL || p->set[i].value == NULL)
            return tg_conf_error(err, n, "out of memory");
    }
    return 0;
}

static int parse_remove_headers(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    profile_t *p = out;
    if (seq_items(n, err) < 0)
        return -1;
    size_t count = n->type == TG_CONF_SEQ ? n->count : 0;
    if ((p->remove = calloc(count ? count : 1, sizeof(char *))) == NULL)
        return tg_conf_error(err, n, "out of memory");
    for (size_t i = 0; i < count; i++) {
        const char *name;
        if (get_header_name(n->items[i], &name, err) < 0)
            return -1;
        if ((p->remove[p->nremove++] = strdup(name)) == NULL)
            return tg_conf_error(err, n, "out of memory");
    }
    return 0;
}

/* Not a TG_CONF_FIELD_ENUM: absent (INVALID_UNSET) differs from both words. */
static int parse_on_invalid(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    on_invalid_t *given = out;
    const char *v;
    if (tg_conf_get_string(n, &v, err) < 0)
        return -1;
    if (strcmp(v, "pass") == 0)
        *given = INVALID_PASS;
    else if (strcmp(v, "error") == 0)
        *given = INVALID_ERROR;
    else
        return tg_conf_error(err, n, "on_invalid must be pass or error, not '%s'", v);
    return 0;
}

static const tg_conf_field_t profile_fields[] = {
    {"include", TG_CONF_FIELD_CUSTOM, .parse = add_includes},
    {"exclude", TG_CONF_FIELD_CUSTOM, .parse = add_excludes},
    {"rename", TG_CONF_FIELD_CUSTOM, .parse = add_renames},
    {"set_headers", TG_CONF_FIELD_CUSTOM, .parse = parse_set_headers},
    {"remove_headers", TG_CONF_FIELD_CUSTOM, .parse = parse_remove_headers},
    {"on_invalid", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(profile_t, given), .parse = parse_on_invalid},
    TG_CONF_END,
};

static int parse_profile(profile_t *p, const tg_conf_node_t *key, const tg_conf_node_t *n,
                         tg_conf_err_t *err)
{
    if ((p->name = strdup(key->value)) == NULL || (p->shape = tg_shape_new()) == NULL)
        return tg_conf_error(err, key, "out of memory");
    if (key->len == 0)
        return tg_conf_error(err, key, "empty profile name");
    if (n->type == TG_CONF_NULL)
        return 0;
    if (n->type != TG_CONF_MAP)
        return tg_conf_error(err, n, "expected a profile (a map)");
    return tg_conf_read(n, profile_fields, NULL, p, err);
}

static int parse_profiles(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    shape_conf_t *c = out;
    if (n->type != TG_CONF_MAP || n->count == 0)
        return tg_conf_error(err, n, "profiles: expected a map of at least one profile");
    if (n->count > MAX_PROFILES)
        return tg_conf_error(err, n, "more than %d profiles", MAX_PROFILES);
    if ((c->profiles = calloc(n->count, sizeof(*c->profiles))) == NULL)
        return tg_conf_error(err, n, "out of memory");
    for (size_t i = 0; i < n->count; i++) {
        if (find_profile(c, n->keys[i]->value, n->keys[i]->len) >= 0)
            return tg_conf_error(err, n->keys[i], "profile '%s' defined twice", n->keys[i]->value);
        c->nprofiles++;
        if (parse_profile(&c->profiles[i], n->keys[i], n->items[i], err) < 0)
            return -1;
    }
    return 0;
}

static int compile_ua(shape_conf_t *c, ua_rule_t *u, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    const char *pattern;
    int code;
    PCRE2_SIZE off;
    if (tg_conf_get_string(n, &pattern, err) < 0)
        return -1;
    /* Byte mode (no PCRE2_UTF): User-Agent values are not always UTF-8. */
    u->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (u->re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof(msg));
        return tg_conf_error(err, n, "bad regex at offset %zu: %s", (size_t)off, (char *)msg);
    }
    c->nua++;
    pcre2_jit_compile(u->re, PCRE2_JIT_COMPLETE); /* no JIT: the interpreter still works */
    return 0;
}

#define UA_NEEDED "client: user_agent needs user_agent: { profile: regex, ... }"

/* After client and profiles (table order). */
static int parse_user_agent(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    shape_conf_t *c = out;
    if (c->kind != CLIENT_UA)
        return tg_conf_error(err, n, "user_agent: only with client: user_agent");
    if (n->type != TG_CONF_MAP || n->count == 0)
        return tg_conf_error(err, n, UA_NEEDED);
    c->ua = calloc(n->count, sizeof(*c->ua));
    c->mctx = pcre2_match_context_create(NULL);
    if (c->ua == NULL || c->mctx == NULL)
        return tg_conf_error(err, n, "out of memory");
    pcre2_set_match_limit(c->mctx, UA_MATCH_LIMIT);
    for (size_t i = 0; i < n->count; i++) {
        int p = find_profile(c, n->keys[i]->value, n->keys[i]->len);
        if (p < 0)
            return tg_conf_error(err, n->keys[i], "unknown profile '%s'", n->keys[i]->value);
        c->ua[i].profile = (size_t)p;
        if (compile_ua(c, &c->ua[i], n->items[i], err) < 0)
            return -1;
    }
    return 0;
}

static int parse_default(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    shape_conf_t *c = out;
    const char *def;
    if (tg_conf_get_string(n, &def, err) < 0)
        return -1;
    int d = find_profile(c, def, strlen(def));
    if (d < 0)
        return tg_conf_error(err, n, "default: unknown profile '%s'", def);
    c->def = (size_t)d;
    return 0;
}

/* The plugin's config map, read into a shape_conf_t; the order matters:
 * user_agent and default name profiles. */
typedef struct {
    shape_conf_t c;
    on_invalid_t all; /* on_invalid: the default of every profile */
} shape_keys_t;

static const tg_conf_field_t conf_fields[] = {
    {"client", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(shape_keys_t, c), .parse = parse_client,
     .flags = TG_CONF_REQUIRED, .help = "header:<Name>, query:<name>, jwt.<claim> or user_agent"},
    {"profiles", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(shape_keys_t, c), .parse = parse_profiles,
     .flags = TG_CONF_REQUIRED, .help = "a map of at least one profile"},
    {"user_agent", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(shape_keys_t, c), .parse = parse_user_agent},
    {"default", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(shape_keys_t, c), .parse = parse_default,
     .flags = TG_CONF_REQUIRED, .help = "the profile when nothing matches"},
    {"max_body", TG_CONF_FIELD_SIZE, TG_CONF_AT(shape_keys_t, c.max_body), .min = 1,
     .max = 1ULL << 30, .def = 4 << 20},
    {"on_invalid", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(shape_keys_t, all), .parse = parse_on_invalid},
    TG_CONF_END,
};

static int parse_conf(shape_conf_t *c, const tg_conf_node_t *node, tg_conf_err_t *err)
{
    shape_keys_t k = {.c = *c, .all = INVALID_UNSET};
    int rc = tg_conf_read(node, conf_fields, NULL, &k, err);
    *c = k.c; /* also on error: conf_free() releases what was read */
    if (rc < 0)
        return -1;
    if (c->kind == CLIENT_UA && c->nua == 0)
        return tg_conf_error(err, node, UA_NEEDED);
    for (size_t i = 0; i < c->nprofiles; i++) {
        profile_t *p = &c->profiles[i];
        on_invalid_t v = p->given != INVALID_UNSET ? p->given : k.all;
        p->refuse = v == INVALID_UNSET ? p->excludes : v == INVALID_ERROR;
    }
    return 0;
}

static int create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **out,
                  tg_conf_err_t *err)
{
    shape_conf_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return tg_conf_error(err, node, "out of memory");
    if (parse_conf(c, node, err) < 0) {
        conf_free(c);
        return -1;
    }
    c->metric = tg_metrics_counter(env->metrics, "tollgate_response_shape_total",
                                   "Responses seen by response-shape, by outcome.", "result",
                                   result_names, 5);
    c->refused_metric = tg_metrics_counter(
        env->metrics, "tollgate_response_shape_refused_total",
        "Responses response-shape turned into a 502 (on_invalid: error), by reason.", "reason",
        why_names, 3);
    *out = c;
    return 0;
}

static void destroy(void *instance)
{
    conf_free(instance);
}

static void *worker_init(void *instance, struct event_base *base, unsigned worker_id)
{
    (void)base;
    (void)worker_id;
    const shape_conf_t *c = instance;
    if (c->nua == 0)
        return NULL;
    shape_worker_t *w = calloc(1, sizeof(*w));
    if (w != NULL)
        w->md = pcre2_match_data_create(1, NULL); /* match or not: one pair is enough */
    return w;
}

static void worker_fini(void *instance, void *worker)
{
    (void)instance;
    shape_worker_t *w = worker;
    if (w != NULL)
        pcre2_match_data_free(w->md);
    free(w);
}

/* ---- request_head: which profile ---- */

static int match_ua(const shape_conf_t *c, const char *ua, size_t len, const shape_worker_t *w)
{
    pcre2_match_data *md = w != NULL && w->md != NULL ? w->md : pcre2_match_data_create(1, NULL);
    int found = -1;
    for (size_t i = 0; md != NULL && i < c->nua && found < 0; i++)
        /* >= 0 is a match (0: ovector too small, which is fine). Errors,
         * the match limit included, count as no match. */
        if (pcre2_match(c->ua[i].re, (PCRE2_SPTR)ua, len, 0, 0, md, c->mctx) >= 0)
            found = (int)c->ua[i].profile;
    if (w == NULL || md != w->md)
        pcre2_match_data_free(md);
    return found;
}

static size_t select_profile(const shape_conf_t *c, tg_request_t *r, const shape_worker_t *w)
{
    size_t len = 0;
    const char *v = NULL;
    char buf[256];
    int p = -1;
    switch (c->kind) {
    case CLIENT_HEADER:
        v = tg_request_header(r, c->source, &len);
        break;
    case CLIENT_QUERY: {
        v = tg_request_query_param(r, c->source, &len);
        /* A malformed value, or one too long to be a profile name, names none. */
        ssize_t n = v != NULL && len <= sizeof(buf)
                        ? tg_percent_decode_flags(v, len, buf, TG_PERCENT_STRICT)
                        : -1;
        v = n >= 0 ? buf : NULL;
        len = n >= 0 ? (size_t)n : 0;
        break;
    }
    case CLIENT_JWT:
        v = tg_request_claim(r, c->source, &len);
        break;
    case CLIENT_UA:
        v = tg_request_header(r, "User-Agent", &len);
        p = match_ua(c, v != NULL ? v : "", v != NULL ? len : 0, w);
        v = NULL;
        break;
    }
    if (v != NULL)
        p = find_profile(c, v, len);
    return p >= 0 ? (size_t)p : c->def;
}

static tg_filter_status_t request_head(tg_request_t *r, const tg_filter_t *f)
{
    const shape_conf_t *c = f->instance;
    shape_ctx_t *x = f->ctx;
    size_t i = select_profile(c, r, f->worker);
    const profile_t *p = &c->profiles[i];
    x->profile = (uint16_t)(i + 1);
    tg_request_var_set_str(r, "shape.profile", p->name, strlen(p->name));
    if (!tg_shape_is_empty(p->shape))
        tg_request_set_header(r, "Accept-Encoding", "identity", 8);
    return TG_FILTER_CONTINUE;
}

/* ---- response_head ---- */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* application/json, or any type with the +json structured syntax suffix
 * (RFC 6839 section 3.1); parameters ignored, case-insensitive (RFC 9110
 * section 8.3.1). */
static bool is_json(const char *v, size_t len)
{
    size_t n = 0;
    while (n < len && v[n] != ';')
        n++;
    while (n > 0 && is_ows(v[n - 1]))
        n--;
    while (n > 0 && is_ows(*v))
        v++, n--;
    if (n == 16 && strncasecmp(v, "application/json", 16) == 0)
        return true;
    const char *slash = memchr(v, '/', n);
    return slash != NULL && v + n - slash > 6 && strncasecmp(v + n - 5, "+json", 5) == 0;
}

/* Whether the comma-separated list v holds token (RFC 9110 section 5.6.1). */
static bool list_has(const char *v, size_t len, const char *token)
{
    size_t tl = strlen(token);
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && v[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && is_ows(v[a]))
            a++;
        while (b > a && is_ows(v[b - 1]))
            b--;
        if (b - a == tl && strncasecmp(v + a, token, tl) == 0)
            return true;
        i = j + 1;
    }
    return false;
}

static void merge_vary(tg_request_t *r, const char *name)
{
    size_t len;
    const char *old = tg_response_header(r, "Vary", &len);
    if (old == NULL) {
        tg_response_set_header(r, "Vary", name, strlen(name));
        return;
    }
    if (list_has(old, len, name) || list_has(old, len, "*"))
        return;
    char *v = tg_arena_printf(tg_request_arena(r), "%.*s, %s", (int)len, old, name);
    tg_response_set_header(r, "Vary", v, strlen(v));
}

/* The body is shaped only when it is not content-coded (an upstream may
 * ignore Accept-Encoding: identity). */
static bool is_identity(tg_request_t *r)
{
    size_t len;
    const char *ce = tg_response_header(r, "Content-Encoding", &len);
    return ce == NULL || list_has(ce, len, "identity") || len == 0;
}

static void weaken_etag(tg_request_t *r)
{
    size_t len;
    const char *e = tg_response_header(r, "ETag", &len);
    if (e == NULL || len == 0 || e[0] != '"')
        return;
    char *w = tg_arena_printf(tg_request_arena(r), "W/%.*s", (int)len, e);
    tg_response_set_header(r, "ETag", w, len + 2);
}

static tg_filter_status_t response_head(tg_request_t *r, const tg_filter_t *f)
{
    const shape_conf_t *c = f->instance;
    shape_ctx_t *x = f->ctx;
    /* A refused response's replacement (the 502) passes untouched. */
    if (x->profile == 0 || x->result == R_REFUSED)
        return TG_FILTER_CONTINUE;
    x->result = R_PASSTHROUGH;
    int status = tg_response_status(r);
    size_t len;
    const char *ct = tg_response_header(r, "Content-Type", &len);
    if (status < 200 || status > 299 || ct == NULL || !is_json(ct, len))
        return TG_FILTER_CONTINUE;
    const profile_t *p = &c->profiles[x->profile - 1];
    if (!tg_shape_is_empty(p->shape)) {
        /* A content-coded body is buffered only to be refused. */
        x->encoded = !is_identity(r);
        if (!x->encoded || p->refuse) {
            tg_response_buffer_body(r, (size_t)c->max_body);
            x->buffering = true;
            weaken_etag(r);
        }
    }
    for (size_t i = 0; i < p->nremove; i++)
        tg_response_remove_header(r, p->remove[i]);
    for (size_t i = 0; i < p->nset; i++)
        tg_response_set_header(r, p->set[i].name, p->set[i].value, strlen(p->set[i].value));
    if (c->vary != NULL)
        merge_vary(r, c->vary);
    return TG_FILTER_CONTINUE;
}

/* ---- response_body ---- */

typedef struct {
    struct evbuffer *chunk;
    size_t drain; /* input bytes still in chunk: dropped at the first write */
} sink_t;

/* The parsed tree no longer needs the input, so the output replaces it in
 * the same buffer. */
static int sink_write(const char *buf, size_t len, void *data)
{
    sink_t *s = data;
    if (s->drain > 0) {
        evbuffer_drain(s->chunk, s->drain);
        s->drain = 0;
    }
    return evbuffer_add(s->chunk, buf, len);
}

/* A body that cannot be shaped: passes whole, or (on_invalid: error) the
 * response becomes a 502. The core calls this hook before the head goes out
 * (buffered body, or the first piece of one over max_body), so the 502 is a
 * clean reply, never a cut body. */
static tg_filter_status_t unshapeable(tg_request_t *r, shape_ctx_t *x, const profile_t *p,
                                      result_t result, why_t why)
{
    x->result = (uint8_t)result;
    if (!p->refuse)
        return TG_FILTER_CONTINUE;
    x->result = R_REFUSED;
    x->why = (uint8_t)why;
    tg_request_respond_error(r, 502, why_text[why]);
    return TG_FILTER_RESPONDED;
}

static tg_filter_status_t response_body(tg_request_t *r, const tg_filter_t *f,
                                        struct evbuffer *chunk, bool last)
{
    const shape_conf_t *c = f->instance;
    shape_ctx_t *x = f->ctx;
    if (!x->buffering || x->result == R_TOO_LARGE)
        return TG_FILTER_CONTINUE;
    const profile_t *p = &c->profiles[x->profile - 1];
    size_t len = evbuffer_get_length(chunk);
    if (x->encoded)
        return len > 0 ? unshapeable(r, x, p, R_PASSTHROUGH, W_ENCODED) : TG_FILTER_CONTINUE;
    if (!tg_response_body_buffered(r)) /* then streamed through untouched, or refused */
        return unshapeable(r, x, p, R_TOO_LARGE, W_TOO_LARGE);
    if (!last || len == 0)
        return TG_FILTER_CONTINUE;
    const char *body = (const char *)evbuffer_pullup(chunk, -1);
    sink_t sink = {chunk, len};
    switch (tg_shape_body(p->shape, body, len, sink_write, &sink)) {
    case TG_SHAPE_SHAPED:
        x->result = R_SHAPED;
        return TG_FILTER_CONTINUE;
    case TG_SHAPE_INVALID:
        return unshapeable(r, x, p, R_INVALID, W_INVALID);
    case TG_SHAPE_SCALAR:
        return TG_FILTER_CONTINUE;
    case TG_SHAPE_WRITE_ERROR:
    default:
        return TG_FILTER_ERROR;
    }
}

static void log_response(tg_request_t *r, const tg_filter_t *f)
{
    const shape_conf_t *c = f->instance;
    const shape_ctx_t *x = f->ctx;
    if (x->result != R_NONE && c->metric >= 0)
        tg_metrics_add(r, c->metric, (size_t)x->result - 1, 1);
    if (x->result == R_REFUSED && c->refused_metric >= 0)
        tg_metrics_add(r, c->refused_metric, x->why, 1);
}

TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "response-shape",
    .version = TG_VERSION,
    .ctx_size = sizeof(shape_ctx_t),
    .create = create,
    .destroy = destroy,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .request_head = request_head,
    .response_head = response_head,
    .response_body = response_body,
    .log = log_response,
};
