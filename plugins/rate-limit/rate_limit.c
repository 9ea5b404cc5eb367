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
 * Backend redis: request_head queues the decision and pauses; the first one
 * queued in an event-loop iteration activates the worker's flush event,
 * which runs after every other callback of that iteration and sends all
 * queued decisions as one EVALSHA (one per Cluster slot, at most
 * BATCH_GROUPS clients and BATCH_REQUESTS requests each), the requests of
 * one client as one group (bucket_redis.c), whose reply resumes them all. A
 * request that ends first leaves the queue, or its batch (which stays until
 * its reply, owned by the worker). The
 * response headers follow draft-ietf-httpapi-ratelimit-headers: Limit is the
 * bucket capacity (burst) of the tightest limit, Remaining its tokens left,
 * Reset the seconds until it is full again; Policy lists every limit.
 */
#include <event2/event.h>
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
/* Per EVALSHA: bounds how long one script holds Redis (about a microsecond
 * per distinct bucket, a few Lua additions per request). */
#define BATCH_GROUPS 64
#define BATCH_REQUESTS 1024

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
    char nlimits_arg[4];
    char cost_arg[24];
    /* The script's ARGV before the group sizes (n, cost, T_1, B_1, ...),
     * shared by every call. */
    const char *args[2 + 2 * TG_RL_MAX_LIMITS];
    size_t arg_lens[2 + 2 * TG_RL_MAX_LIMITS];
    backend_t backend;
    on_error_t on_error;
    bool headers;
    char *prefix; /* "tg:rl:{<instance hash>:" (before the key value) */
    size_t prefix_len;
    char *suffix; /* "}:<route>:" (after the key value, before the limit index) */
    size_t suffix_len;
    char *policy; /* RateLimit-Policy value */
    size_t policy_len;
    /* RateLimit-Limit, -Remaining, -Reset, -Policy, Retry-After: checked once */
    tg_response_name_t h_limit, h_remaining, h_reset, h_policy, h_retry;
    char sha[41];         /* of tg_rl_script */
    tg_rl_local_t *local; /* backend local, or on_error local */
    atomic_bool outage;   /* a Redis failure was logged and no success since */
    int m_decisions;
} rl_t;

typedef struct rl_ctx_s rl_ctx_t;
typedef struct rl_batch_s rl_batch_t;

/* Per worker (worker_init), backend redis: the decisions waiting for this
 * iteration's flush and the batches waiting for their reply. */
typedef struct {
    const rl_t *conf;
    struct event *flush;   /* activated by the first decision queued */
    rl_ctx_t *head, *tail; /* queued, oldest first */
    rl_batch_t *in_flight; /* sent (worker_fini cancels them) */
} rl_worker_t;

/* Per-request state (the chain's zeroed ctx slot). */
struct rl_ctx_s {
    tg_request_t *r;
    const rl_t *conf;
    rl_worker_t *w;
    const char *key; /* the key value */
    size_t key_len;
    char *kbase; /* prefix + key value + suffix: the bucket name without its limit index */
    size_t kbase_len;
    int slot;              /* tg_redis_key_slot of kbase: -1 outside a Cluster */
    rl_ctx_t *prev, *next; /* in w's queue while queued */
    bool queued;
    rl_batch_t *batch; /* sent in this batch, at index `at` */
    size_t at;
};

/* One EVALSHA in flight and the decisions it carries (one allocation:
 * argv, lengths, group numbers and sizes, key bytes follow). */
struct rl_batch_s {
    rl_worker_t *w;
    rl_batch_t *prev, *next; /* w->in_flight */
    tg_redis_call_t *call;
    tg_request_t *sender; /* a live request of the batch, for tg_redis_command */
    bool retried;         /* EVAL after NOSCRIPT was sent */
    int argc;
    const char **argv;
    size_t *lens;
    uint32_t *size;  /* per group: its requests */
    uint8_t *group;  /* per request: its group */
    size_t n;        /* requests */
    size_t ngroups;  /* clients (bucket key sets) */
    rl_ctx_t *ctx[]; /* in queue order; NULL once that request ended */
};
_Static_assert(BATCH_GROUPS <= 256, "a request's group is a uint8_t");

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
    snprintf(c->nlimits_arg, sizeof(c->nlimits_arg), "%zu", c->nlimits);
    snprintf(c->cost_arg, sizeof(c->cost_arg), "%llu", (unsigned long long)c->cost);
    c->args[0] = c->nlimits_arg;
    c->args[1] = c->cost_arg;
    for (size_t i = 0; i < c->nlimits; i++) {
        c->args[2 + 2 * i] = c->limits[i].t_arg;
        c->args[3 + 2 * i] = c->limits[i].burst_arg;
    }
    for (size_t i = 0; i < 2 + 2 * c->nlimits; i++)
        c->arg_lens[i] = strlen(c->args[i]);
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
    c->policy_len = c->policy ? strlen(c->policy) : 0;
    if (tg_response_name_init(&c->h_limit, "RateLimit-Limit") < 0 ||
        tg_response_name_init(&c->h_remaining, "RateLimit-Remaining") < 0 ||
        tg_response_name_init(&c->h_reset, "RateLimit-Reset") < 0 ||
        tg_response_name_init(&c->h_policy, "RateLimit-Policy") < 0 ||
        tg_response_name_init(&c->h_retry, "Retry-After") < 0) {
        destroy(c);
        return tg_conf_error(err, node, "rate-limit: a response header name was refused");
    }
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
static void add_uint_header(tg_request_t *r, const tg_response_name_t *name, uint64_t v)
{
    char buf[24];
    char *p = buf + sizeof(buf);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    tg_request_add_response_header_named(r, name, p, (size_t)(buf + sizeof(buf) - p));
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
    add_uint_header(r, &c->h_limit, c->limits[t].burst);
    add_uint_header(r, &c->h_remaining, res->remaining[t]);
    add_uint_header(r, &c->h_reset, ceil_seconds(res->reset_us[t]));
    tg_request_add_response_header_named(r, &c->h_policy, c->policy, c->policy_len);
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
    add_uint_header(r, &c->h_retry, retry < 1 ? 1 : retry);
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

/* ------------------------------------------------------------ batches ---- */

static void batch_unlink(rl_batch_t *b)
{
    if (b->prev != NULL)
        b->prev->next = b->next;
    else
        b->w->in_flight = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
}

static void batch_done(void *data, const struct redisReply *reply, const char *error);

/* Returns false when the callback already ran (synchronously: Redis not
 * connected) and b is gone. */
static bool batch_send(rl_batch_t *b)
{
    tg_redis_call_t *call = tg_redis_command(b->sender, batch_done, b, b->argc, b->argv, b->lens);
    if (call == NULL)
        return false;
    b->call = call;
    return true;
}

/* After NOSCRIPT (a restarted or flushed Redis): the same call with the
 * script text, which also caches it for the next EVALSHA. */
static void batch_retry_with_eval(rl_batch_t *b)
{
    b->retried = true;
    b->argv[0] = "EVAL";
    b->lens[0] = 4;
    b->argv[1] = tg_rl_script;
    b->lens[1] = strlen(tg_rl_script);
    for (size_t i = 0; i < b->n; i++)
        if (b->ctx[i] != NULL) {
            b->sender = b->ctx[i]->r;
            batch_send(b);
            return;
        }
    batch_unlink(b); /* every request of the batch has ended */
    free(b);
}

/* The reply's text when it is not a script result, else "". */
static void reply_error(const struct redisReply *reply, const char *error, char *why, size_t cap)
{
    why[0] = '\0';
    if (error != NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        snprintf(why, cap, "%s",
                 error != NULL                                       ? error
                 : reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                     : "unexpected reply");
}

/* Resumes every request of the batch that is still there. Each group's
 * decisions are replayed in the order the requests were sent, those of
 * ended requests too (Redis counted them). */
static void batch_done(void *data, const struct redisReply *reply, const char *error)
{
    rl_batch_t *b = data;
    const rl_t *c = b->w->conf;
    b->call = NULL;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !b->retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        batch_retry_with_eval(b);
        return;
    }
    batch_unlink(b);
    char why[128];
    reply_error(reply, error, why, sizeof(why));
    if (why[0] == '\0' && tg_rl_reply_groups(reply, c->nlimits) != b->ngroups)
        snprintf(why, sizeof(why), "unexpected reply");
    tg_rl_group_t groups[BATCH_GROUPS];
    bool bad[BATCH_GROUPS];
    for (size_t g = 0; g < b->ngroups && why[0] == '\0'; g++)
        bad[g] = tg_rl_reply_group(reply, g, c->nlimits, b->size[g], &groups[g]) < 0;
    for (size_t i = 0; i < b->n; i++) {
        rl_ctx_t *ctx = b->ctx[i];
        size_t g = b->group[i];
        tg_rl_result_t res;
        bool ok = why[0] == '\0' && !bad[g];
        if (ok)
            tg_rl_group_next(&groups[g], c->limits, c->nlimits, c->cost, &res);
        if (ctx == NULL)
            continue;
        ctx->batch = NULL;
        tg_filter_status_t st;
        if (ok) {
            note_ok(ctx->r, c);
            st = finish(ctx->r, c, &res, false);
        } else {
            st = redis_failed(ctx, c, why[0] != '\0' ? why : "unexpected reply");
        }
        tg_request_resume(ctx->r, st);
    }
    free(b);
}

_Static_assert(TG_RL_MAX_LIMITS <= 10, "the limit index is one digit in the Redis key");

static void unqueue(rl_worker_t *w, rl_ctx_t *ctx)
{
    if (ctx->prev != NULL)
        ctx->prev->next = ctx->next;
    else
        w->head = ctx->next;
    if (ctx->next != NULL)
        ctx->next->prev = ctx->prev;
    else
        w->tail = ctx->prev;
    ctx->prev = ctx->next = NULL;
    ctx->queued = false;
}

/* Which queued requests go into the next batch: those with the slot of the
 * oldest, in queue order, grouped by client (kbase); at most BATCH_GROUPS
 * clients (the requests of others stay queued, in order) and BATCH_REQUESTS
 * requests. Fills take[] and group[] (of *n) and first[] (a request of each
 * of the *ngroups groups) and size[]. */
static void batch_pick(rl_worker_t *w, rl_ctx_t **take, uint8_t *group, size_t *n, rl_ctx_t **first,
                       uint32_t *size, size_t *ngroups)
{
    enum { SLOTS = 2 * BATCH_GROUPS }; /* open addressing, half full at most */
    int16_t table[SLOTS];
    uint32_t hash[BATCH_GROUPS];
    memset(table, -1, sizeof(table));
    int slot = w->head->slot;
    *n = *ngroups = 0;
    for (rl_ctx_t *x = w->head; x != NULL && *n < BATCH_REQUESTS; x = x->next) {
        if (x->slot != slot)
            continue;
        /* Most often the client of the request before (one busy client). */
        int last = *n > 0 ? group[*n - 1] : -1;
        if (last >= 0 && first[last]->kbase_len == x->kbase_len &&
            memcmp(first[last]->kbase, x->kbase, x->kbase_len) == 0) {
            size[last]++;
            group[*n] = (uint8_t)last;
            take[(*n)++] = x;
            continue;
        }
        uint32_t h = 2166136261u; /* FNV-1a 32 */
        for (size_t i = 0; i < x->kbase_len; i++)
            h = (h ^ (unsigned char)x->kbase[i]) * 16777619u;
        size_t at = h % SLOTS;
        int g;
        while ((g = table[at]) >= 0 && (hash[g] != h || first[g]->kbase_len != x->kbase_len ||
                                        memcmp(first[g]->kbase, x->kbase, x->kbase_len) != 0))
            at = (at + 1) % SLOTS;
        if (g < 0) {
            if (*ngroups == BATCH_GROUPS)
                continue;
            g = (int)(*ngroups)++;
            table[at] = (int16_t)g;
            hash[g] = h;
            first[g] = x;
            size[g] = 0;
        }
        size[g]++;
        group[*n] = (uint8_t)g;
        take[(*n)++] = x;
    }
}

/* EVALSHA sha G*nlimits key... n cost T_1 B_1 .. m_1 .. m_G for the next
 * batch (batch_pick); its requests leave the queue. NULL when out of memory
 * (nothing taken). */
static rl_batch_t *batch_take(rl_worker_t *w)
{
    const rl_t *c = w->conf;
    rl_ctx_t *take[BATCH_REQUESTS], *first[BATCH_GROUPS];
    uint8_t group[BATCH_REQUESTS];
    uint32_t size[BATCH_GROUPS];
    size_t n, ng;
    batch_pick(w, take, group, &n, first, size, &ng);
    size_t bytes = 24 + ng * 11; /* numkeys, then each group's size */
    for (size_t g = 0; g < ng; g++)
        bytes += c->nlimits * (first[g]->kbase_len + 1);
    size_t nargs = 2 + 2 * c->nlimits;
    int argc = 3 + (int)(ng * c->nlimits + nargs + ng);
    rl_batch_t *b = malloc(sizeof(*b) + n * sizeof(b->ctx[0]) +
                           (size_t)argc * (sizeof(char *) + sizeof(size_t)) +
                           ng * sizeof(uint32_t) + n + bytes);
    if (b == NULL)
        return NULL;
    *b = (rl_batch_t){.w = w, .argc = argc, .n = n, .ngroups = ng};
    b->argv = (const char **)(b->ctx + n);
    b->lens = (size_t *)(b->argv + argc);
    b->size = (uint32_t *)(b->lens + argc);
    b->group = (uint8_t *)(b->size + ng);
    char *p = (char *)(b->group + n);
    memcpy(b->size, size, ng * sizeof(uint32_t));
    memcpy(b->group, group, n);
    for (size_t i = 0; i < n; i++) {
        unqueue(w, take[i]);
        take[i]->batch = b;
        take[i]->at = i;
        b->ctx[i] = take[i];
    }
    b->argv[0] = "EVALSHA";
    b->lens[0] = 7;
    b->argv[1] = c->sha;
    b->lens[1] = 40;
    int a = 2;
    b->argv[a] = p;
    b->lens[a++] = (size_t)snprintf(p, 24, "%zu", ng * c->nlimits);
    p += b->lens[a - 1] + 1;
    for (size_t g = 0; g < ng; g++)
        for (size_t l = 0; l < c->nlimits; l++) {
            memcpy(p, first[g]->kbase, first[g]->kbase_len);
            p[first[g]->kbase_len] = (char)('0' + l); /* l < TG_RL_MAX_LIMITS <= 10 */
            b->argv[a] = p;
            b->lens[a++] = first[g]->kbase_len + 1;
            p += first[g]->kbase_len + 1;
        }
    for (size_t j = 0; j < nargs; j++) {
        b->argv[a] = c->args[j];
        b->lens[a++] = c->arg_lens[j];
    }
    for (size_t g = 0; g < ng; g++) {
        b->argv[a] = p;
        b->lens[a++] = (size_t)snprintf(p, 11, "%u", (unsigned)size[g]);
        p += b->lens[a - 1] + 1;
    }
    b->sender = b->ctx[0]->r;
    return b;
}

/* The end of the event-loop iteration in which decisions were queued: send
 * them, one batch per slot. A batch that fails at once resumes its requests
 * here, which may end others still queued (they leave the queue then) or
 * queue new ones (sent by this same loop). */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rl_worker_t *w = arg;
    while (w->head != NULL) {
        rl_batch_t *b = batch_take(w);
        if (b == NULL) {
            rl_ctx_t *x = w->head;
            unqueue(w, x);
            tg_request_resume(x->r, redis_failed(x, x->conf, "out of memory"));
            continue;
        }
        b->next = w->in_flight;
        if (b->next != NULL)
            b->next->prev = b;
        w->in_flight = b;
        batch_send(b);
    }
}

static void *worker_init(void *instance, struct event_base *base, unsigned worker_id)
{
    (void)worker_id;
    const rl_t *c = instance;
    if (c->backend != BACKEND_REDIS)
        return NULL;
    rl_worker_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->conf = c;
    w->flush = event_new(base, -1, 0, flush_cb, w);
    if (w->flush == NULL) {
        free(w);
        return NULL;
    }
    return w;
}

/* The generation is over: no request of it is left, but a batch whose
 * requests all ended may still wait for its reply. */
static void worker_fini(void *instance, void *worker)
{
    (void)instance;
    rl_worker_t *w = worker;
    if (w == NULL)
        return;
    while (w->in_flight != NULL) {
        rl_batch_t *b = w->in_flight;
        w->in_flight = b->next;
        tg_redis_cancel(b->call);
        free(b);
    }
    event_free(w->flush);
    free(w);
}

/* ---------------------------------------------------------- requests ---- */

static void leave(void *data)
{
    rl_ctx_t *ctx = data;
    if (ctx->queued)
        unqueue(ctx->w, ctx);
    if (ctx->batch != NULL)
        ctx->batch->ctx[ctx->at] = NULL;
    ctx->batch = NULL;
}

static void enqueue(rl_worker_t *w, rl_ctx_t *ctx)
{
    ctx->w = w;
    ctx->queued = true;
    ctx->next = NULL;
    ctx->prev = w->tail;
    if (w->tail != NULL)
        w->tail->next = ctx;
    else {
        w->head = ctx;
        event_active(w->flush, EV_TIMEOUT, 1);
    }
    w->tail = ctx;
    tg_request_on_cleanup(ctx->r, leave, ctx);
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
    /* A dead Redis is not waited for, not even until the flush. */
    if (!tg_redis_connected(r))
        return redis_failed(ctx, c, "redis not connected");
    if (f->worker == NULL) /* worker_init ran out of memory */
        return redis_failed(ctx, c, "out of memory");
    size_t n = c->prefix_len + ctx->key_len + c->suffix_len;
    char *k = tg_arena_alloc(tg_request_arena(r), n);
    if (k == NULL)
        return redis_failed(ctx, c, "out of memory");
    memcpy(k, c->prefix, c->prefix_len);
    memcpy(k + c->prefix_len, ctx->key, ctx->key_len);
    memcpy(k + c->prefix_len + ctx->key_len, c->suffix, c->suffix_len);
    ctx->kbase = k;
    ctx->kbase_len = n;
    ctx->slot = tg_redis_key_slot(r, k, n);
    enqueue(f->worker, ctx);
    return TG_FILTER_PAUSE;
}

TG_PLUGIN_EXPORT const tg_plugin_t tg_plugin = {
    .abi = TG_PLUGIN_ABI,
    .name = "rate-limit",
    .version = TG_VERSION,
    .ctx_size = sizeof(rl_ctx_t),
    .create = create,
    .destroy = destroy,
    .worker_init = worker_init,
    .worker_fini = worker_fini,
    .request_head = request_head,
};
