/*
 * rate-limit plugin: token buckets per client key, decided in Redis (shared by
 * every gateway instance) or in process (`backend: local`).
 *
 *   - name: rate-limit
 *     config:
 *       key: jwt.sub              # ip | route | consumer | jwt.<claim> | header:<Name> | a list
 *       limits:
 *         - { rate: 100, per: 1s, burst: 200 }
 *         - { rate: 5000, per: 1h }   # burst defaults to rate
 *       cost: 1
 *       backend: redis            # redis (needs the top-level redis:) | local
 *       on_error: local           # allow | deny | local (Redis unreachable or slow)
 *       headers: true             # RateLimit-* on every decided response
 *
 * request_head pauses on the Redis call and resumes from its callback; the
 * call is cancelled from a request cleanup if the client leaves first. The
 * response headers follow draft-ietf-httpapi-ratelimit-headers: Limit is the
 * bucket capacity (burst) of the tightest limit, Remaining its tokens left,
 * Reset the seconds until it is full again; Policy lists every limit.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "rate_limit.h"
#include "tollgate/clock.h"
#include "tollgate/log.h"
#include "tollgate/trace.h"

#define LOCAL_MAX_ENTRIES 100000

typedef enum { BACKEND_REDIS, BACKEND_LOCAL } backend_t;
typedef enum { ON_ERROR_ALLOW, ON_ERROR_DENY, ON_ERROR_LOCAL } on_error_t;
typedef enum { D_ALLOWED, D_LIMITED, D_ERROR_ALLOWED, D_ERROR_DENIED, D_ERROR_LOCAL } decision_t;

static const char *const decision_names[] = {"allowed", "limited", "error_allowed", "error_denied",
                                             "error_local"};
static const char *const on_error_names[] = {"allow", "deny", "local", NULL};

typedef struct {
    tg_rl_key_t key;
    tg_rl_limit_t limits[TG_RL_MAX_LIMITS];
    size_t nlimits;
    uint64_t cost;
    char cost_arg[24], nkeys_arg[8];
    backend_t backend;
    on_error_t on_error;
    bool headers;
    char *prefix; /* "tg:rl:{<instance hash>:" (before the key value) */
    size_t prefix_len;
    char *suffix; /* "}:<route>:" (after the key value, before the limit index) */
    size_t suffix_len;
    char *policy;         /* RateLimit-Policy value */
    char sha[41];         /* of tg_rl_script */
    tg_rl_local_t *local; /* backend local, or on_error local */
    atomic_bool outage;   /* a Redis failure was logged and no success since */
    int m_decisions;
} rl_t;

/* Per-request state (the chain's zeroed ctx slot). */
typedef struct {
    tg_request_t *r;
    const rl_t *conf;
    tg_redis_call_t *call; /* while a Redis call is pending */
    const char **argv;
    size_t *lens;
    int argc;
    const char *key;
    size_t key_len;
    bool retried; /* EVAL after NOSCRIPT was sent */
} rl_ctx_t;

/* ------------------------------------------------------------ logging ---- */

/* Once per outage, not once per request: the first failure after a success,
 * named by the request that met it (its route says which limiter). */
static void note_error(tg_request_t *r, const rl_t *c, const char *why)
{
    if (!atomic_exchange(&((rl_t *)c)->outage, true))
        tg_request_log(r, TG_LOG_WARN, "rate-limit: redis unavailable (%s): on_error %s applies",
                       why, on_error_names[c->on_error]);
}

static void note_ok(tg_request_t *r, const rl_t *c)
{
    if (atomic_load_explicit(&c->outage, memory_order_relaxed) &&
        atomic_exchange(&((rl_t *)c)->outage, false))
        tg_request_log(r, TG_LOG_NOTICE, "rate-limit: redis available again");
}

/* ------------------------------------------------------------ config ---- */

static const tg_conf_field_t limit_fields[] = {
    {"rate", TG_CONF_FIELD_UINT, TG_CONF_AT(tg_rl_limit_t, rate), .flags = TG_CONF_REQUIRED,
     .min = 1, .max = 1000000000},
    {"per", TG_CONF_FIELD_DURATION, TG_CONF_AT(tg_rl_limit_t, per_ms), .flags = TG_CONF_REQUIRED,
     .min = 1},
    /* 0 (absent): the rate */
    {"burst", TG_CONF_FIELD_UINT, TG_CONF_AT(tg_rl_limit_t, burst), .min = 1, .max = 1000000000},
    TG_CONF_END,
};

static int parse_limit(const tg_conf_node_t *n, tg_rl_limit_t *l, tg_conf_err_t *err)
{
    if (n->type != TG_CONF_MAP)
        return tg_conf_error(err, n, "expected a map like { rate: 100, per: 1s }");
    if (tg_conf_read(n, limit_fields, NULL, l, err) < 0)
        return -1;
    if (l->burst == 0)
        l->burst = l->rate;
    l->t_us = (double)l->per_ms * 1000.0 / (double)l->rate;
    snprintf(l->t_arg, sizeof(l->t_arg), "%.17g", l->t_us);
    snprintf(l->burst_arg, sizeof(l->burst_arg), "%llu", (unsigned long long)l->burst);
    return 0;
}

/* limits: into c->limits and c->nlimits (out is the whole rl_t). */
static int parse_limits(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    rl_t *c = out;
    if (n->type != TG_CONF_SEQ || n->count == 0)
        return tg_conf_error(err, n, "expected a list of limits");
    if (n->count > TG_RL_MAX_LIMITS)
        return tg_conf_error(err, n, "at most %d limits", TG_RL_MAX_LIMITS);
    for (size_t i = 0; i < n->count; i++)
        if (parse_limit(n->items[i], &c->limits[i], err) < 0)
            return -1;
    c->nlimits = n->count;
    return 0;
}

static int parse_key(const tg_conf_node_t *n, void *out, tg_conf_err_t *err)
{
    return tg_rl_key_parse(n, out, err);
}

static const char *const backend_names[] = {"redis", "local", NULL}; /* backend_t order */

/* In the order checks need them: cost is checked against the limits. */
static const tg_conf_field_t fields[] = {
    {"key", TG_CONF_FIELD_CUSTOM, TG_CONF_AT(rl_t, key), .parse = parse_key},
    {"limits", TG_CONF_FIELD_CUSTOM, .parse = parse_limits, .flags = TG_CONF_REQUIRED,
     .help = "a list like [{ rate: 100, per: 1s }]"},
    {"cost", TG_CONF_FIELD_UINT, TG_CONF_AT(rl_t, cost), .min = 1, .max = 1000000000, .def = 1},
    {"backend", TG_CONF_FIELD_ENUM, TG_CONF_AT(rl_t, backend), .names = backend_names,
     .def = BACKEND_REDIS},
    {"on_error", TG_CONF_FIELD_ENUM, TG_CONF_AT(rl_t, on_error), .names = on_error_names,
     .def = ON_ERROR_LOCAL},
    {"headers", TG_CONF_FIELD_BOOL, TG_CONF_AT(rl_t, headers), .def = true},
    TG_CONF_END,
};

static int check_cost(const tg_conf_node_t *node, rl_t *c, tg_conf_err_t *err)
{
    for (size_t i = 0; i < c->nlimits; i++)
        if (c->cost > c->limits[i].burst) /* such a request could never pass */
            return tg_conf_error(err, tg_conf_map_get(node, "cost"),
                                 "cost %llu exceeds the burst (%llu) of limit %zu",
                                 (unsigned long long)c->cost,
                                 (unsigned long long)c->limits[i].burst, i + 1);
    snprintf(c->cost_arg, sizeof(c->cost_arg), "%llu", (unsigned long long)c->cost);
    snprintf(c->nkeys_arg, sizeof(c->nkeys_arg), "%zu", c->nlimits);
    return 0;
}

/* "100;w=1;burst=200, 5000;w=3600" */
static char *make_policy(const rl_t *c)
{
    char buf[TG_RL_MAX_LIMITS * 80], w[32];
    size_t used = 0;
    for (size_t i = 0; i < c->nlimits; i++) {
        const tg_rl_limit_t *l = &c->limits[i];
        if (l->per_ms % 1000 == 0)
            snprintf(w, sizeof(w), "%llu", (unsigned long long)(l->per_ms / 1000));
        else
            snprintf(w, sizeof(w), "%.3g", (double)l->per_ms / 1000.0);
        int n = snprintf(buf + used, sizeof(buf) - used, "%s%llu;w=%s", i ? ", " : "",
                         (unsigned long long)l->rate, w);
        used += (size_t)n;
        if (l->burst != l->rate)
            used += (size_t)snprintf(buf + used, sizeof(buf) - used, ";burst=%llu",
                                     (unsigned long long)l->burst);
    }
    return strdup(buf);
}

/* Instances with the same route, key and limits share buckets (also across
 * gateway instances); a changed limit starts fresh buckets.
 *
 * Key: tg:rl:{<hash>:<key value>}:<route>:<limit index>. The braces are a
 * Redis Cluster hash tag: every limit of one route and client lands in one
 * slot, so one EVALSHA never spans slots. The tag opens at our '{' (the
 * first one) and holds at least the 8 hex digits of the hash (which covers
 * the route), so whatever the key value holds, it is the same for all limits. */
static char *make_prefix(const rl_t *c, const char *route)
{
    char text[1024], out[512];
    size_t n = (size_t)snprintf(text, sizeof(text), "%s;", route ? route : "*");
    n += tg_rl_key_describe(&c->key, text + n, sizeof(text) - n);
    for (size_t i = 0; i < c->nlimits && n < sizeof(text); i++)
        n += (size_t)snprintf(
            text + n, sizeof(text) - n, ";%llu/%llu/%llu", (unsigned long long)c->limits[i].rate,
            (unsigned long long)c->limits[i].per_ms, (unsigned long long)c->limits[i].burst);
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (size_t i = 0; i < n && i < sizeof(text); i++)
        h = (h ^ (unsigned char)text[i]) * 0x100000001b3ull;
    snprintf(out, sizeof(out), "tg:rl:{%08llx:", (unsigned long long)(h & 0xffffffffu));
    return strdup(out);
}

static char *make_suffix(const char *route)
{
    char out[512];
    snprintf(out, sizeof(out), "}:%s:", route ? route : "*");
    return strdup(out);
}

static bool runs_before(const char *const *before, const char *name)
{
    for (; before != NULL && *before != NULL; before++)
        if (strcmp(*before, name) == 0)
            return true;
    return false;
}

static void destroy(void *instance)
{
    rl_t *c = instance;
    if (c == NULL)
        return;
    tg_rl_key_free(&c->key);
    free(c->prefix);
    free(c->suffix);
    free(c->policy);
    tg_rl_local_free(c->local);
    free(c);
}

static int create_parse(const tg_conf_node_t *node, rl_t *c, tg_conf_err_t *err)
{
    if (tg_conf_read(node, fields, NULL, c, err) < 0)
        return -1;
    if (c->key.nparts == 0)
        c->key.nparts = 1; /* absent: ip */
    return check_cost(node, c, err);
}

/* backend redis (the default) without a top-level `redis:` would decide every
 * request through on_error: a config error, at the backend key when written. */
static int check_backend(const tg_conf_node_t *node, const rl_t *c, const tg_plugin_env_t *env,
                         tg_conf_err_t *err)
{
    const tg_conf_node_t *at = tg_conf_map_get(node, "backend");
    if (c->backend != BACKEND_REDIS || env->redis_configured)
        return 0;
    return tg_conf_error(err, at != NULL ? at : node,
                         "backend redis%s needs a top-level 'redis:' section (or backend: local)",
                         at != NULL ? "" : " (the default)");
}

static int create(const tg_conf_node_t *node, const tg_plugin_env_t *env, void **out,
                  tg_conf_err_t *err)
{
    rl_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return tg_conf_error(err, node, "out of memory");
    atomic_init(&c->outage, false);
    if (create_parse(node, c, err) < 0 || check_backend(node, c, env, err) < 0) {
        destroy(c);
        return -1;
    }
    if (c->key.uses_jwt && !runs_before(env->before, "jwt")) {
        const tg_conf_node_t *at = c->key.jwt_node;
        tg_log(TG_LOG_WARN,
               "%s:%u:%u: rate-limit key '%s' reads a JWT claim but no jwt plugin runs before "
               "rate-limit: requests will be keyed by ip",
               at->file, at->line, at->col, at->value);
    }
    if (c->key.consumer_node != NULL && !runs_before(env->before, "key-auth")) {
        const tg_conf_node_t *at = c->key.consumer_node;
        tg_log(TG_LOG_WARN,
               "%s:%u:%u: rate-limit key 'consumer' needs an authentication plugin that "
               "publishes one (key-auth) before rate-limit: requests will be keyed by ip",
               at->file, at->line, at->col);
    }
    c->key.jwt_node = NULL;
    c->key.consumer_node = NULL;
    c->prefix = make_prefix(c, env->route_name);
    c->prefix_len = c->prefix ? strlen(c->prefix) : 0;
    c->suffix = make_suffix(env->route_name);
    c->suffix_len = c->suffix ? strlen(c->suffix) : 0;
    c->policy = make_policy(c);
    tg_rl_script_sha(c->sha);
    if (c->backend == BACKEND_LOCAL || c->on_error == ON_ERROR_LOCAL)
        c->local = tg_rl_local_new(LOCAL_MAX_ENTRIES);
    if (c->prefix == NULL || c->suffix == NULL || c->policy == NULL ||
        (c->local == NULL && (c->backend == BACKEND_LOCAL || c->on_error == ON_ERROR_LOCAL))) {
        destroy(c);
        return tg_conf_error(err, node, "out of memory");
    }
    c->m_decisions = tg_metrics_counter(env->metrics, "tollgate_rate_limit_decisions_total",
                                        "Rate limit decisions.", "decision", decision_names, 5);
    *out = c;
    return 0;
}

/* ---------------------------------------------------------- deciding ---- */

/* Three of these per decision: written by hand, snprintf's format parsing
 * was a visible share of the local backend's cost. */
static void add_uint_header(tg_request_t *r, const char *name, uint64_t v)
{
    char buf[24];
    char *p = buf + sizeof(buf);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    tg_request_add_response_header(r, name, p, (size_t)(buf + sizeof(buf) - p));
}

static uint64_t ceil_seconds(uint64_t us)
{
    return (us + 999999) / 1000000;
}

/* The limit closest to refusing: fewest tokens left, then the longest refill. */
static size_t tightest(const rl_t *c, const tg_rl_result_t *res)
{
    size_t t = 0;
    for (size_t i = 1; i < c->nlimits; i++)
        if (res->remaining[i] < res->remaining[t] ||
            (res->remaining[i] == res->remaining[t] && res->reset_us[i] > res->reset_us[t]))
            t = i;
    return t;
}

static void add_headers(tg_request_t *r, const rl_t *c, const tg_rl_result_t *res)
{
    size_t t = tightest(c, res);
    add_uint_header(r, "RateLimit-Limit", c->limits[t].burst);
    add_uint_header(r, "RateLimit-Remaining", res->remaining[t]);
    add_uint_header(r, "RateLimit-Reset", ceil_seconds(res->reset_us[t]));
    tg_request_add_response_header(r, "RateLimit-Policy", c->policy, strlen(c->policy));
}

static void record(tg_request_t *r, const rl_t *c, decision_t d)
{
    tg_metrics_add(r, c->m_decisions, d, 1);
    tg_request_var_set_str(r, "rate_limit.decision", decision_names[d], strlen(decision_names[d]));
    tg_request_span_attr(r, "rate_limit.decision", decision_names[d]);
}

static tg_filter_status_t finish(tg_request_t *r, const rl_t *c, const tg_rl_result_t *res,
                                 bool from_error)
{
    record(r, c, from_error ? D_ERROR_LOCAL : res->allowed ? D_ALLOWED : D_LIMITED);
    if (c->headers)
        add_headers(r, c, res);
    if (res->allowed)
        return TG_FILTER_CONTINUE;
    uint64_t retry = ceil_seconds(res->retry_us);
    add_uint_header(r, "Retry-After", retry < 1 ? 1 : retry);
    tg_request_respond_error(r, 429, "rate limit exceeded");
    return TG_FILTER_RESPONDED;
}

static tg_filter_status_t decide_local(rl_ctx_t *ctx, const rl_t *c, bool from_error)
{
    tg_rl_result_t res;
    tg_rl_local_decide(c->local, ctx->key, ctx->key_len, c->limits, c->nlimits, c->cost,
                       tg_now_us(), &res);
    return finish(ctx->r, c, &res, from_error);
}

static tg_filter_status_t redis_failed(rl_ctx_t *ctx, const rl_t *c, const char *why)
{
    note_error(ctx->r, c, why);
    switch (c->on_error) {
    case ON_ERROR_ALLOW:
        record(ctx->r, c, D_ERROR_ALLOWED);
        return TG_FILTER_CONTINUE;
    case ON_ERROR_DENY:
        record(ctx->r, c, D_ERROR_DENIED);
        tg_request_respond_error(ctx->r, 503, "rate limiter unavailable");
        return TG_FILTER_RESPONDED;
    case ON_ERROR_LOCAL:
    default:
        return decide_local(ctx, c, true);
    }
}

static void redis_done(void *data, const struct redisReply *reply, const char *error);

static tg_redis_call_t *send_script(rl_ctx_t *ctx)
{
    return tg_redis_command(ctx->r, redis_done, ctx, ctx->argc, ctx->argv, ctx->lens);
}

/* After NOSCRIPT (a restarted or flushed Redis): the same call with the script
 * text, which also caches it for the next EVALSHA. Returns false when the
 * callback already ran (synchronously) and ctx must not be touched. */
static bool retry_with_eval(rl_ctx_t *ctx)
{
    ctx->retried = true;
    ctx->argv[0] = "EVAL";
    ctx->lens[0] = 4;
    ctx->argv[1] = tg_rl_script;
    ctx->lens[1] = strlen(tg_rl_script);
    tg_redis_call_t *call = send_script(ctx);
    if (call == NULL)
        return false;
    ctx->call = call;
    return true;
}

static void redis_done(void *data, const struct redisReply *reply, const char *error)
{
    rl_ctx_t *ctx = data;
    const rl_t *c = ctx->conf;
    tg_rl_result_t res;
    tg_filter_status_t st;
    ctx->call = NULL;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !ctx->retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        retry_with_eval(ctx);
        return;
    }
    if (error == NULL && tg_rl_parse_reply(reply, c->nlimits, &res) == 0) {
        note_ok(ctx->r, c);
        st = finish(ctx->r, c, &res, false);
    } else {
        char why[128];
        snprintf(why, sizeof(why), "%s",
                 error != NULL                                       ? error
                 : reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                     : "unexpected reply");
        st = redis_failed(ctx, c, why);
    }
    tg_request_resume(ctx->r, st);
}

static void cancel_call(void *data)
{
    rl_ctx_t *ctx = data;
    if (ctx->call != NULL)
        tg_redis_cancel(ctx->call);
    ctx->call = NULL;
}

_Static_assert(TG_RL_MAX_LIMITS <= 10, "the limit index is one digit in the Redis key");

/* EVALSHA sha n key_1..key_n cost T_1 B_1 .. T_n B_n, in the request arena. */
static void build_call(rl_ctx_t *ctx, const rl_t *c)
{
    tg_arena_t *a = tg_request_arena(ctx->r);
    int argc = 4 + 3 * (int)c->nlimits;
    const char **argv = tg_arena_alloc(a, (size_t)argc * sizeof(*argv));
    size_t *lens = tg_arena_alloc(a, (size_t)argc * sizeof(*lens));
    int i = 0;
    argv[i++] = "EVALSHA";
    argv[i++] = c->sha;
    argv[i++] = c->nkeys_arg;
    for (size_t l = 0; l < c->nlimits; l++) {
        size_t n = c->prefix_len + ctx->key_len + c->suffix_len;
        char *k = tg_arena_alloc(a, n + 1);
        memcpy(k, c->prefix, c->prefix_len);
        memcpy(k + c->prefix_len, ctx->key, ctx->key_len);
        memcpy(k + c->prefix_len + ctx->key_len, c->suffix, c->suffix_len);
        k[n] = (char)('0' + l); /* l < TG_RL_MAX_LIMITS <= 10 */
        lens[i] = n + 1;
        argv[i++] = k;
    }
    argv[i++] = c->cost_arg;
    for (size_t l = 0; l < c->nlimits; l++) {
        argv[i++] = c->limits[l].t_arg;
        argv[i++] = c->limits[l].burst_arg;
    }
    for (int j = 0; j < argc; j++)
        if (j < 3 || j >= 3 + (int)c->nlimits)
            lens[j] = strlen(argv[j]);
    ctx->argv = argv;
    ctx->lens = lens;
    ctx->argc = argc;
}

static tg_filter_status_t request_head(tg_request_t *r, const tg_filter_t *f)
{
    const rl_t *c = f->instance;
    rl_ctx_t *ctx = f->ctx;
    ctx->r = r;
    ctx->conf = c;
    ctx->key = tg_rl_key_value(r, &c->key, &ctx->key_len);
    if (c->backend == BACKEND_LOCAL)
        return decide_local(ctx, c, false);
    build_call(ctx, c);
    /* redis_done resumes: when Redis is not connected, before
     * tg_redis_command() returns, and that resume applies as this hook
     * returns PAUSE (plugin.h). */
    tg_redis_call_t *call = send_script(ctx);
    if (call != NULL) {
        ctx->call = call;
        tg_request_on_cleanup(r, cancel_call, ctx);
    }
    return TG_FILTER_PAUSE;
}

TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "rate-limit",
    .version = TG_VERSION,
    .ctx_size = sizeof(rl_ctx_t),
    .create = create,
    .destroy = destroy,
    .request_head = request_head,
};
