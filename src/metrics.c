#include "metrics.h"

#include "counter.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "log.h"
#include "metrics_text.h"
#include "otlp_export.h"
#include "process_metrics.h"
#include "resolve.h"
#include "tg_build_config.h"
#include "tollgate/clock.h"
#include "traffic_metrics.h"
#include "upstream_shared.h"
#include "worker.h"

/* ---- registry ----------------------------------------------------------- */

typedef struct {
    char *name;
    char *help;
    char *label;   /* NULL without labels */
    char **values; /* nvalues label values */
    size_t nvalues;
    size_t first; /* first slot; the family owns max(nvalues, 1) slots */
} family_t;

/* Families live in a fixed array and never move, so that a worker can read
 * one (tg_metrics_add) while the main thread appends another, without a lock:
 * nfams is published with release after the new entry is complete. */
struct tg_metrics_s {
    pthread_mutex_t lock;
    family_t fams[TG_METRICS_MAX_SLOTS];
    atomic_size_t nfams;
    size_t nslots;
};

static tg_metrics_t registry = {.lock = PTHREAD_MUTEX_INITIALIZER};
static _Atomic(tg_worker_t *) all_workers;
static atomic_uint all_nworkers;

tg_metrics_t *tg_metrics_registry(void)
{
    return &registry;
}

/* Prometheus data model: metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* with names starting "__" reserved. */
static bool valid_name(const char *s, bool colon)
{
    static const char *const alpha = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_";
    if (s == NULL || s[0] == '\0' || strchr(alpha, s[0]) == NULL) {
        if (!(colon && s != NULL && s[0] == ':'))
            return false;
    }
    for (const char *p = s + 1; *p; p++) {
        bool ok = strchr(alpha, *p) != NULL || (*p >= '0' && *p <= '9') || (colon && *p == ':');
        if (!ok)
            return false;
    }
    return true;
}

/* Length of name without a trailing "_total": a counter "x" and "x_total"
 * are the same family to Prometheus' parsers. */
static size_t base_len(const char *name)
{
    size_t n = strlen(name);
    return n > 6 && strcmp(name + n - 6, "_total") == 0 ? n - 6 : n;
}

static bool same_base(const char *a, const char *b)
{
    size_t la = base_len(a), lb = base_len(b);
    return la == lb && strncmp(a, b, la) == 0;
}

static bool is_core_name(const char *name)
{
    static const char *const core[] = {
        "tollgate_requests_total",
        "tollgate_request_duration_seconds",
        "tollgate_request_duration_seconds_bucket",
        "tollgate_request_duration_seconds_sum",
        "tollgate_request_duration_seconds_count",
        "tollgate_request_duration_seconds_created",
        "tollgate_upstream_connections",
        "tollgate_upstream_connections_created_total",
        "tollgate_upstream_connections_reused_total",
        "tollgate_upstream_errors_total",
        "tollgate_workers",
        "tollgate_info",
        "tollgate_websocket_connections_total",
        "tollgate_connections_parked_total",
        /* traffic_metrics.c, process_metrics.c, otlp_export.c */
        "tollgate_requests_in_flight",
        "tollgate_request_bytes_total",
        "tollgate_response_bytes_total",
        "tollgate_upstream_response_duration_seconds",
        "tollgate_upstream_response_duration_seconds_bucket",
        "tollgate_upstream_response_duration_seconds_sum",
        "tollgate_upstream_response_duration_seconds_count",
        "tollgate_upstream_retries_total",
        "tollgate_client_connections",
        "tollgate_client_connections_accepted_total",
        "tollgate_build_info",
        "tollgate_config_reloads_total",
        "tollgate_config_last_reload_success_timestamp_seconds",
        "tollgate_config_last_reload_successful",
        "tollgate_tracing_spans_exported_total",
        "tollgate_tracing_spans_dropped_total",
    };
    for (size_t i = 0; i < sizeof(core) / sizeof(core[0]); i++)
        if (same_base(name, core[i]))
            return true;
    return false;
}

static bool same_shape(const family_t *f, const char *label, const char *const *values,
                       size_t nvalues)
{
    if (f->nvalues != nvalues)
        return false;
    if (nvalues == 0)
        return true;
    if (strcmp(f->label, label) != 0)
        return false;
    for (size_t i = 0; i < nvalues; i++)
        if (strcmp(f->values[i], values[i]) != 0)
            return false;
    return true;
}

static const char *check_shape(const char *name, const char *label, const char *const *values,
                               size_t nvalues)
{
    if (!valid_name(name, true))
        return "invalid metric name";
    if (is_core_name(name))
        return "name reserved by the core metrics";
    if (nvalues == 0)
        return label == NULL ? NULL : "a label needs values";
    if (!valid_name(label, false) || strncmp(label, "__", 2) == 0)
        return "invalid label name";
    if (values == NULL)
        return "label values missing";
    for (size_t i = 0; i < nvalues; i++) {
        if (values[i] == NULL)
            return "label value missing";
        for (size_t k = 0; k < i; k++)
            if (strcmp(values[i], values[k]) == 0)
                return "duplicate label value";
    }
    return NULL;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static void family_clear(family_t *f)
{
    free(f->name);
    free(f->help);
    free(f->label);
    for (size_t i = 0; i < f->nvalues && f->values; i++)
        free(f->values[i]);
    free(f->values);
    memset(f, 0, sizeof(*f));
}

static int family_fill(family_t *f, const char *name, const char *help, const char *label,
                       const char *const *values, size_t nvalues)
{
    f->name = strdup(name);
    f->help = dup_or_empty(help);
    f->label = label ? strdup(label) : NULL;
    f->values = nvalues ? calloc(nvalues, sizeof(char *)) : NULL;
    f->nvalues = nvalues;
    bool ok = f->name && f->help && (nvalues == 0 || (f->label && f->values));
    for (size_t i = 0; ok && i < nvalues; i++)
        ok = (f->values[i] = strdup(values[i])) != NULL;
    if (!ok) {
        family_clear(f);
        return -1;
    }
    return 0;
}

/* Under the lock. */
static int register_family(tg_metrics_t *m, const char *name, const char *help, const char *label,
                           const char *const *values, size_t nvalues)
{
    size_t n = atomic_load_explicit(&m->nfams, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        if (!same_base(m->fams[i].name, name))
            continue;
        if (strcmp(m->fams[i].name, name) == 0 && same_shape(&m->fams[i], label, values, nvalues))
            return (int)i;
        tg_log_error("metrics: '%s' clashes with a family registered with another shape", name);
        return -1;
    }
    size_t need = nvalues ? nvalues : 1;
    if (n >= TG_METRICS_MAX_SLOTS || need > TG_METRICS_MAX_SLOTS - m->nslots) {
        tg_log_error("metrics: '%s': no room left (%d counter slots)", name, TG_METRICS_MAX_SLOTS);
        return -1;
    }
    family_t *f = &m->fams[n];
    if (family_fill(f, name, help, label, values, nvalues) < 0)
        return -1;
    f->first = m->nslots;
    m->nslots += need;
    atomic_store_explicit(&m->nfams, n + 1, memory_order_release);
    return (int)n;
}

int tg_metrics_counter(tg_metrics_t *m, const char *name, const char *help, const char *label,
                       const char *const *values, size_t nvalues)
{
    if (m == NULL)
        return -1;
    const char *why = check_shape(name, label, values, nvalues);
    if (why != NULL) {
        tg_log_error("metrics: '%s': %s", name ? name : "(null)", why);
        return -1;
    }
    pthread_mutex_lock(&m->lock);
    int id = register_family(m, name, help, label, values, nvalues);
    pthread_mutex_unlock(&m->lock);
    return id;
}

void tg_metrics_registry_reset(void)
{
    pthread_mutex_lock(&registry.lock);
    size_t n = atomic_load_explicit(&registry.nfams, memory_order_relaxed);
    atomic_store_explicit(&registry.nfams, 0, memory_order_release);
    for (size_t i = 0; i < n; i++)
        family_clear(&registry.fams[i]);
    registry.nslots = 0;
    pthread_mutex_unlock(&registry.lock);
}

void tg_metrics_set_workers(tg_worker_t *workers, unsigned n)
{
    atomic_store_explicit(&all_nworkers, 0, memory_order_release);
    atomic_store_explicit(&all_workers, workers, memory_order_release);
    atomic_store_explicit(&all_nworkers, workers ? n : 0, memory_order_release);
}

/* ---- per-worker counters ------------------------------------------------ */

#define NBUCKETS TG_MTEXT_NBUCKETS
#define NCLASSES 6 /* "0" (no response), 1xx .. 5xx */

typedef struct {
    tg_counter_t status[NCLASSES];
    tg_counter_t bucket[NBUCKETS]; /* not cumulative: the renderer sums */
    tg_counter_t sum_us;
    tg_counter_t count;
} route_metrics_t;

#define POOL_READ(st, field) __atomic_load_n(&(st)->field, __ATOMIC_RELAXED)

struct tg_worker_metrics_s {
    struct tg_worker_metrics_s *previous; /* replaced by a reload, freed with this one */
    size_t nroutes;                       /* cfg->nroutes + 1: the last one is "no route" */
    route_metrics_t *routes;
    tg_counter_t websockets; /* upgraded connections opened */
    tg_counter_t parked;     /* idle client connections that gave back their buffers */
    size_t nups;             /* cfg->nupstreams */
    tg_upool_stats_t *ups;
    struct tg_traffic_s *traffic; /* traffic_metrics.h */
    tg_counter_t slots[TG_METRICS_MAX_SLOTS];
};

tg_worker_metrics_t *tg_worker_metrics_new(const tg_config_t *cfg)
{
    tg_worker_metrics_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->nroutes = cfg->nroutes + 1;
    m->routes = calloc(m->nroutes, sizeof(*m->routes));
    m->nups = cfg->nupstreams;
    m->ups = calloc(m->nups ? m->nups : 1, sizeof(*m->ups));
    m->traffic = tg_traffic_new(cfg);
    if (m->routes == NULL || m->ups == NULL || m->traffic == NULL) {
        free(m->routes);
        free(m->ups);
        tg_traffic_free(m->traffic);
        free(m);
        return NULL;
    }
    return m;
}

void tg_worker_metrics_free(tg_worker_metrics_t *m)
{
    while (m != NULL) {
        tg_worker_metrics_t *prev = m->previous;
        free(m->routes);
        free(m->ups);
        tg_traffic_free(m->traffic);
        free(m);
        m = prev;
    }
}

static void copy_counter(tg_counter_t *to, const tg_counter_t *from)
{
    atomic_store_explicit(to, tg_counter_get(from), memory_order_relaxed);
}

static void copy_route(route_metrics_t *to, const route_metrics_t *from)
{
    for (size_t k = 0; k < NCLASSES; k++)
        copy_counter(&to->status[k], &from->status[k]);
    for (size_t k = 0; k < NBUCKETS; k++)
        copy_counter(&to->bucket[k], &from->bucket[k]);
    copy_counter(&to->sum_us, &from->sum_us);
    copy_counter(&to->count, &from->count);
}

tg_upool_stats_t *tg_worker_metrics_upstream(tg_worker_metrics_t *m, size_t i)
{
    return m != NULL && i < m->nups ? &m->ups[i] : NULL;
}

tg_worker_metrics_t *tg_worker_metrics_rebuild(tg_worker_metrics_t *old, const tg_config_t *old_cfg,
                                               const tg_config_t *new_cfg)
{
    tg_worker_metrics_t *m = tg_worker_metrics_new(new_cfg);
    if (m == NULL)
        return NULL;
    /* Counters stay monotonic across a reload for routes that keep their name. */
    for (size_t i = 0; i < new_cfg->nroutes; i++)
        for (size_t j = 0; j < old_cfg->nroutes && j < old->nroutes - 1; j++)
            if (strcmp(new_cfg->routes[i].name, old_cfg->routes[j].name) == 0)
                copy_route(&m->routes[i], &old->routes[j]);
    copy_route(&m->routes[m->nroutes - 1], &old->routes[old->nroutes - 1]);
    copy_counter(&m->websockets, &old->websockets);
    copy_counter(&m->parked, &old->parked);
    /* Upstream counters by name; the gauges start again with the new pools. */
    for (size_t i = 0; i < new_cfg->nupstreams; i++) {
        for (size_t j = 0; j < old_cfg->nupstreams && j < old->nups; j++) {
            if (strcmp(new_cfg->upstreams[i].name, old_cfg->upstreams[j].name) != 0)
                continue;
            tg_upool_stats_t *to = &m->ups[i];
            const tg_upool_stats_t *from = &old->ups[j];
            to->created = POOL_READ(from, created);
            to->reused = POOL_READ(from, reused);
            to->connect_errors = POOL_READ(from, connect_errors);
            to->timeouts = POOL_READ(from, timeouts);
            to->resets = POOL_READ(from, resets);
        }
    }
    for (size_t k = 0; k < TG_METRICS_MAX_SLOTS; k++)
        copy_counter(&m->slots[k], &old->slots[k]);
    tg_traffic_carry(m->traffic, old->traffic, old_cfg, new_cfg);
    m->previous = old;
    return m;
}

/* RFC 9110 section 15: codes outside 100..599 are invalid, and a recipient
 * treats them as 5xx. */
static unsigned status_class(int status)
{
    if (status <= 0)
        return 0;
    if (status < 100)
        return 5;
    return status >= 600 ? 5 : (unsigned)(status / 100);
}

void tg_metrics_request_done(tg_worker_t *w, const tg_route_t *route, int status,
                             uint64_t duration_us)
{
    tg_worker_metrics_t *m = w ? w->metrics : NULL;
    if (m == NULL)
        return;
    size_t ri = m->nroutes - 1;
    if (route != NULL && route->index < m->nroutes - 1)
        ri = route->index;
    route_metrics_t *rm = &m->routes[ri];
    tg_counter_add(&rm->status[status_class(status)], 1);
    tg_counter_add(&rm->bucket[tg_mtext_bucket(duration_us)], 1);
    tg_counter_add(&rm->sum_us, duration_us);
    tg_counter_add(&rm->count, 1);
}

void tg_metrics_websocket_opened(tg_worker_t *w)
{
    if (w != NULL && w->metrics != NULL)
        tg_counter_add(&w->metrics->websockets, 1);
}

void tg_metrics_connection_parked(tg_worker_t *w)
{
    if (w != NULL && w->metrics != NULL)
        tg_counter_add(&w->metrics->parked, 1);
}

static void add_to(tg_worker_metrics_t *wm, int id, size_t vi, uint64_t delta)
{
    if (wm == NULL || id < 0)
        return;
    size_t n = atomic_load_explicit(&registry.nfams, memory_order_acquire);
    if ((size_t)id >= n)
        return;
    const family_t *f = &registry.fams[id];
    if (vi >= (f->nvalues ? f->nvalues : 1))
        return;
    tg_counter_add(&wm->slots[f->first + vi], delta);
}

void tg_metrics_add(tg_request_t *r, int id, size_t vi, uint64_t delta)
{
    if (r == NULL || r->conn == NULL || r->conn->worker == NULL)
        return;
    add_to(r->conn->worker->metrics, id, vi, delta);
}

void tg_metrics_add_worker(tg_metrics_t *m, unsigned worker_id, int id, size_t vi, uint64_t delta)
{
    (void)m; /* there is one registry */
    unsigned n = atomic_load_explicit(&all_nworkers, memory_order_acquire);
    tg_worker_t *ws = atomic_load_explicit(&all_workers, memory_order_acquire);
    if (ws == NULL || worker_id >= n)
        return;
    add_to(ws[worker_id].metrics, id, vi, delta);
}

/* ---- rendering (text exposition format 0.0.4) --------------------------- */

typedef struct {
    const tg_config_t *cfg;
    tg_worker_t *workers;
    unsigned nworkers;
} scrape_t;

static const route_metrics_t *route_of(const tg_worker_t *w, size_t ri, bool unrouted)
{
    const tg_worker_metrics_t *m = w->metrics;
    if (m == NULL)
        return NULL;
    if (unrouted)
        return &m->routes[m->nroutes - 1];
    return ri < m->nroutes - 1 ? &m->routes[ri] : NULL;
}

/* Sum over workers of one counter of route ri (nroutes = no route). */
static uint64_t route_sum(const scrape_t *s, size_t ri, size_t offset)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < s->nworkers; i++) {
        const route_metrics_t *rm = route_of(&s->workers[i], ri, ri == s->cfg->nroutes);
        if (rm != NULL)
            total += tg_counter_get((const tg_counter_t *)((const char *)rm + offset));
    }
    return total;
}

static const char *route_label(const scrape_t *s, size_t ri)
{
    return ri < s->cfg->nroutes ? s->cfg->routes[ri].name : "";
}

static void render_requests(struct evbuffer *out, const scrape_t *s)
{
    static const char *const classes[NCLASSES] = {"0", "1xx", "2xx", "3xx", "4xx", "5xx"};
    const char *name = "tollgate_requests_total";
    tg_mtext_header(out, name,
                    "Requests handled, by route and response status class (0: no response).",
                    "counter");
    for (size_t ri = 0; ri <= s->cfg->nroutes; ri++)
        for (unsigned c = 0; c < NCLASSES; c++)
            tg_mtext_sample(
                out, name, "route", route_label(s, ri), "status", classes[c],
                route_sum(s, ri, offsetof(route_metrics_t, status) + c * sizeof(tg_counter_t)));
}

static void render_histogram(struct evbuffer *out, const scrape_t *s)
{
    tg_mtext_header(out, "tollgate_request_duration_seconds",
                    "Time from the request's first byte to the end of its response.", "histogram");
    for (size_t ri = 0; ri <= s->cfg->nroutes; ri++) {
        const char *route = route_label(s, ri);
        uint64_t cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += route_sum(s, ri, offsetof(route_metrics_t, bucket) + b * sizeof(tg_counter_t));
            tg_exemplar_t ex;
            tg_traffic_route_exemplar(s->cfg, s->workers, s->nworkers, ri, b, &ex);
            tg_mtext_sample_ex(out, "tollgate_request_duration_seconds_bucket", "route", route,
                               "le", tg_mtext_bucket_le[b], cum, &ex);
        }
        tg_mtext_seconds(out, "tollgate_request_duration_seconds_sum", "route", route,
                         route_sum(s, ri, offsetof(route_metrics_t, sum_us)));
        /* The count is the +Inf bucket, read once so that the two agree. */
        tg_mtext_sample(out, "tollgate_request_duration_seconds_count", "route", route, NULL, NULL,
                        cum);
    }
}

/* Upstream counters live in each worker's metrics (upstream_pool.h): the
 * scrape never touches a pool, which a reload may be freeing. */

typedef enum { P_IDLE, P_ACTIVE, P_CREATED, P_REUSED, P_CONNECT, P_TIMEOUT, P_RESET } pool_field_t;

static uint64_t pool_value(const tg_upool_stats_t *st, pool_field_t f)
{
    switch (f) {
    case P_IDLE:
        return POOL_READ(st, idle);
    case P_ACTIVE:
        return POOL_READ(st, active);
    case P_CREATED:
        return POOL_READ(st, created);
    case P_REUSED:
        return POOL_READ(st, reused);
    case P_CONNECT:
        return POOL_READ(st, connect_errors);
    case P_TIMEOUT:
        return POOL_READ(st, timeouts);
    case P_RESET:
        return POOL_READ(st, resets);
    }
    return 0;
}

static uint64_t pool_sum(const scrape_t *s, size_t ui, pool_field_t f)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < s->nworkers; i++) {
        const tg_worker_metrics_t *m = __atomic_load_n(&s->workers[i].metrics, __ATOMIC_ACQUIRE);
        if (m != NULL && ui < m->nups)
            total += pool_value(&m->ups[ui], f);
    }
    return total;
}

static void render_upstreams(struct evbuffer *out, const scrape_t *s)
{
    const tg_config_t *cfg = s->cfg;
    tg_mtext_header(out, "tollgate_upstream_connections",
                    "Upstream connections now open, idle in the pool or carrying a request.",
                    "gauge");
    for (size_t u = 0; u < cfg->nupstreams; u++) {
        const char *up = cfg->upstreams[u].name;
        tg_mtext_sample(out, "tollgate_upstream_connections", "upstream", up, "state", "idle",
                        pool_sum(s, u, P_IDLE));
        tg_mtext_sample(out, "tollgate_upstream_connections", "upstream", up, "state", "active",
                        pool_sum(s, u, P_ACTIVE));
    }
    static const struct {
        const char *name, *help;
        pool_field_t f;
    } plain[] = {
        {"tollgate_upstream_connections_created_total", "Upstream connections opened.", P_CREATED},
        {"tollgate_upstream_connections_reused_total",
         "Requests sent on a pooled keep-alive upstream connection.", P_REUSED},
    };
    for (size_t k = 0; k < 2; k++) {
        tg_mtext_header(out, plain[k].name, plain[k].help, "counter");
        for (size_t u = 0; u < cfg->nupstreams; u++)
            tg_mtext_sample(out, plain[k].name, "upstream", cfg->upstreams[u].name, NULL, NULL,
                            pool_sum(s, u, plain[k].f));
    }
    const char *name = "tollgate_upstream_errors_total";
    tg_mtext_header(out, name, "Upstream failures, by kind.", "counter");
    for (size_t u = 0; u < cfg->nupstreams; u++) {
        const char *up = cfg->upstreams[u].name;
        tg_mtext_sample(out, name, "upstream", up, "kind", "connect", pool_sum(s, u, P_CONNECT));
        tg_mtext_sample(out, name, "upstream", up, "kind", "timeout", pool_sum(s, u, P_TIMEOUT));
        tg_mtext_sample(out, name, "upstream", up, "kind", "reset", pool_sum(s, u, P_RESET));
    }
}

/* Failure isolation: cross-worker counters and verdicts (upstream_shared.h),
 * read from the shared state, which outlives reloads by name. */
static void render_isolation(struct evbuffer *out, const tg_config_t *cfg)
{
    for (size_t u = 0; u < cfg->nupstreams; u++)
        if (cfg->upstreams[u].shared == NULL)
            return; /* a config built by hand (unit tests) */
    const char *name = "tollgate_upstream_overloaded_total";
    tg_mtext_header(out, name, "Requests refused with 503 by a circuit-breaker limit.", "counter");
    for (size_t u = 0; u < cfg->nupstreams; u++)
        for (int l = 0; l < TG_LIMIT_COUNT; l++)
            tg_mtext_sample(out, name, "upstream", cfg->upstreams[u].name, "limit",
                            tg_limit_names[l],
                            atomic_load(&cfg->upstreams[u].shared->overloaded[l]));
    static const struct {
        const char *name, *help;
        size_t off;
    } plain[] = {
        {"tollgate_upstream_retries_total", "Retries made toward an upstream.",
         offsetof(tg_ushared_t, retries)},
        {"tollgate_upstream_retry_budget_exhausted_total",
         "Retries not made because the retry budget was spent.",
         offsetof(tg_ushared_t, budget_exhausted)},
        {"tollgate_upstream_ejections_total", "Targets ejected by outlier detection.",
         offsetof(tg_ushared_t, ejections)},
    };
    for (size_t k = 0; k < sizeof(plain) / sizeof(plain[0]); k++) {
        tg_mtext_header(out, plain[k].name, plain[k].help, "counter");
        for (size_t u = 0; u < cfg->nupstreams; u++) {
            _Atomic uint64_t *c = (void *)((char *)cfg->upstreams[u].shared + plain[k].off);
            tg_mtext_sample(out, plain[k].name, "upstream", cfg->upstreams[u].name, NULL, NULL,
                            atomic_load(c));
        }
    }
    name = "tollgate_upstream_health_checks_total";
    tg_mtext_header(out, name, "Active health checks, by result.", "counter");
    for (size_t u = 0; u < cfg->nupstreams; u++)
        for (int r = 0; r < TG_CHECK_COUNT; r++)
            tg_mtext_sample(out, name, "upstream", cfg->upstreams[u].name, "result",
                            tg_check_names[r], atomic_load(&cfg->upstreams[u].shared->checks[r]));
    name = "tollgate_upstream_target_healthy";
    tg_mtext_header(out, name,
                    "1 while a target may get traffic (health checks, outlier ejection, passive "
                    "health), else 0.",
                    "gauge");
    uint64_t now = tg_now_ms();
    char buf[64];
    for (size_t u = 0; u < cfg->nupstreams; u++) {
        for (size_t t = 0; t < cfg->upstreams[u].ntargets; t++) {
            const tg_target_t *tg = &cfg->upstreams[u].targets[t];
            const char *label = tg_target_label(tg, buf, sizeof(buf)); /* NULL: an empty slot */
            if (label != NULL)
                tg_mtext_sample(out, name, "upstream", cfg->upstreams[u].name, "target", label,
                                tg_tshared_usable(tg->shared, now));
        }
    }
}

static void render_process(struct evbuffer *out, const scrape_t *s)
{
    uint64_t ws = 0, parked = 0;
    for (unsigned i = 0; i < s->nworkers; i++) {
        if (s->workers[i].metrics != NULL) {
            ws += tg_counter_get(&s->workers[i].metrics->websockets);
            parked += tg_counter_get(&s->workers[i].metrics->parked);
        }
    }
    tg_mtext_header(out, "tollgate_websocket_connections_total",
                    "WebSocket connections upgraded (101) and tunnelled.", "counter");
    tg_mtext_sample(out, "tollgate_websocket_connections_total", NULL, NULL, NULL, NULL, ws);
    tg_mtext_header(
        out, "tollgate_connections_parked_total",
        "Idle keep-alive client connections (plain or TLS) that gave back their buffers.",
        "counter");
    tg_mtext_sample(out, "tollgate_connections_parked_total", NULL, NULL, NULL, NULL, parked);
    tg_mtext_header(out, "tollgate_workers", "Worker threads.", "gauge");
    tg_mtext_sample(out, "tollgate_workers", NULL, NULL, NULL, NULL, s->nworkers);
    tg_mtext_header(out, "tollgate_info", "Build information.", "gauge");
    tg_mtext_sample(out, "tollgate_info", "version", TG_VERSION, NULL, NULL, 1);
}

static uint64_t slot_sum(const scrape_t *s, size_t slot)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < s->nworkers; i++)
        if (s->workers[i].metrics != NULL)
            total += tg_counter_get(&s->workers[i].metrics->slots[slot]);
    return total;
}

static void render_plugins(struct evbuffer *out, const scrape_t *s)
{
    size_t n = atomic_load_explicit(&registry.nfams, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        const family_t *f = &registry.fams[i];
        tg_mtext_header(out, f->name, f->help, "counter");
        /* OpenMetrics counter samples end with _total, whatever the family's name. */
        char total[256];
        const char *name = f->name;
        if (tg_mtext_openmetrics() && base_len(f->name) == strlen(f->name) &&
            (size_t)snprintf(total, sizeof(total), "%s_total", f->name) < sizeof(total))
            name = total;
        if (f->nvalues == 0)
            tg_mtext_sample(out, name, NULL, NULL, NULL, NULL, slot_sum(s, f->first));
        for (size_t v = 0; v < f->nvalues; v++)
            tg_mtext_sample(out, name, f->label, f->values[v], NULL, NULL,
                            slot_sum(s, f->first + v));
    }
}

void tg_metrics_render_format(struct evbuffer *out, const tg_config_t *cfg, tg_worker_t *workers,
                              unsigned nworkers, bool openmetrics)
{
    scrape_t s = {.cfg = cfg, .workers = workers, .nworkers = workers ? nworkers : 0};
    tg_mtext_begin(openmetrics);
    render_requests(out, &s);
    render_histogram(out, &s);
    render_upstreams(out, &s);
    render_isolation(out, s.cfg);
    render_process(out, &s);
    render_plugins(out, &s);
    tg_traffic_render(out, cfg, s.workers, s.nworkers);
    tg_process_metrics_render(out);
    tg_otlp_metrics_render(out);
    tg_mtext_end(out);
}

void tg_metrics_render(struct evbuffer *out, const tg_config_t *cfg, tg_worker_t *workers,
                       unsigned nworkers)
{
    tg_metrics_render_format(out, cfg, workers, nworkers, false);
}

void tg_metrics_route_totals(const tg_config_t *cfg, tg_worker_t *workers, unsigned nworkers,
                             size_t ri, tg_route_totals_t *out)
{
    scrape_t s = {.cfg = cfg, .workers = workers, .nworkers = workers ? nworkers : 0};
    for (unsigned c = 0; c < NCLASSES; c++)
        out->status[c] =
            route_sum(&s, ri, offsetof(route_metrics_t, status) + c * sizeof(tg_counter_t));
    for (size_t b = 0; b < NBUCKETS; b++)
        out->bucket[b] =
            route_sum(&s, ri, offsetof(route_metrics_t, bucket) + b * sizeof(tg_counter_t));
}

void tg_metrics_upstream_conns(const tg_config_t *cfg, tg_worker_t *workers, unsigned nworkers,
                               size_t ui, uint64_t *active, uint64_t *idle)
{
    scrape_t s = {.cfg = cfg, .workers = workers, .nworkers = workers ? nworkers : 0};
    *active = pool_sum(&s, ui, P_ACTIVE);
    *idle = pool_sum(&s, ui, P_IDLE);
}

struct tg_traffic_s *tg_worker_metrics_traffic(const tg_worker_metrics_t *m)
{
    return m != NULL ? m->traffic : NULL;
}
