/* Traffic metrics (traffic_metrics.h). */
#include "traffic_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "counter.h"
#include "metrics.h"
#include "request.h"
#include "tollgate/clock.h"
#include "trace_context.h"
#include "worker.h"

#define NB TG_MTEXT_NBUCKETS

/* One writer (the worker): seq is odd while the fields change, so a reader
 * on the admin thread retries instead of mixing two traces. */
typedef struct {
    tg_counter_t seq;
    tg_counter_t id[2];
    tg_counter_t value_us;
    tg_counter_t wall_ms;
} ex_slot_t;

typedef struct {
    tg_counter_t started, ended; /* in flight: the difference */
    tg_counter_t bytes_in, bytes_out;
    ex_slot_t ex[NB];
} route_t;

typedef struct {
    tg_counter_t bucket[NB];
    tg_counter_t sum_us;
    ex_slot_t ex[NB];
} upstream_t;

struct tg_traffic_s {
    const tg_config_t *cfg; /* the config the arrays below follow */
    size_t nroutes;         /* cfg->nroutes + 1: the last is "no route" */
    route_t *routes;
    size_t nups;
    upstream_t *ups;
    tg_counter_t opened[TG_TRAFFIC_LISTENERS], closed[TG_TRAFFIC_LISTENERS];
};

/* Listener names and protocols by slot: process-wide, never shrinks, so a
 * slot means the same pair across reloads (listeners are matched by address). */
static struct {
    pthread_mutex_t lock;
    char *name[TG_TRAFFIC_LISTENERS];
    unsigned proto[TG_TRAFFIC_LISTENERS];
    atomic_uint n;
} slots = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char *const proto_names[TG_PROTO_COUNT] = {"http/1.1", "h2"};

tg_traffic_t *tg_traffic_new(const tg_config_t *cfg)
{
    tg_traffic_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->cfg = cfg;
    t->nroutes = cfg->nroutes + 1;
    t->nups = cfg->nupstreams;
    t->routes = calloc(t->nroutes, sizeof(*t->routes));
    t->ups = calloc(t->nups ? t->nups : 1, sizeof(*t->ups));
    if (t->routes == NULL || t->ups == NULL) {
        tg_traffic_free(t);
        return NULL;
    }
    return t;
}

void tg_traffic_free(tg_traffic_t *t)
{
    if (t == NULL)
        return;
    free(t->routes);
    free(t->ups);
    free(t);
}

static void copy(tg_counter_t *to, const tg_counter_t *from)
{
    atomic_store_explicit(to, tg_counter_get(from), memory_order_relaxed);
}

static void carry_route(route_t *to, const route_t *from)
{
    copy(&to->started, &from->started);
    copy(&to->ended, &from->ended);
    copy(&to->bytes_in, &from->bytes_in);
    copy(&to->bytes_out, &from->bytes_out);
}

static void carry_upstream(upstream_t *to, const upstream_t *from)
{
    for (size_t b = 0; b < NB; b++)
        copy(&to->bucket[b], &from->bucket[b]);
    copy(&to->sum_us, &from->sum_us);
}

void tg_traffic_carry(tg_traffic_t *to, const tg_traffic_t *from, const tg_config_t *old_cfg,
                      const tg_config_t *new_cfg)
{
    if (to == NULL || from == NULL)
        return;
    for (size_t i = 0; i < new_cfg->nroutes; i++)
        for (size_t j = 0; j < old_cfg->nroutes && j + 1 < from->nroutes; j++)
            if (strcmp(new_cfg->routes[i].name, old_cfg->routes[j].name) == 0)
                carry_route(&to->routes[i], &from->routes[j]);
    carry_route(&to->routes[to->nroutes - 1], &from->routes[from->nroutes - 1]);
    for (size_t i = 0; i < new_cfg->nupstreams; i++)
        for (size_t j = 0; j < old_cfg->nupstreams && j < from->nups; j++)
            if (strcmp(new_cfg->upstreams[i].name, old_cfg->upstreams[j].name) == 0)
                carry_upstream(&to->ups[i], &from->ups[j]);
    for (size_t k = 0; k < TG_TRAFFIC_LISTENERS; k++) {
        copy(&to->opened[k], &from->opened[k]);
        copy(&to->closed[k], &from->closed[k]);
    }
}

static tg_traffic_t *of_worker(const tg_worker_t *w)
{
    return w != NULL ? tg_worker_metrics_traffic(w->metrics) : NULL;
}

/* The request's route in t: by index on t's config, by name after a reload
 * (NULL when the route is gone); the "no route" slot without a route. */
static route_t *route_slot(tg_traffic_t *t, const tg_request_t *req)
{
    if (req->route == NULL)
        return &t->routes[t->nroutes - 1];
    if (req->cfg == t->cfg)
        return req->route->index < t->nroutes - 1 ? &t->routes[req->route->index] : NULL;
    for (size_t i = 0; i < t->cfg->nroutes; i++)
        if (strcmp(t->cfg->routes[i].name, req->route->name) == 0)
            return &t->routes[i];
    return NULL;
}

static upstream_t *upstream_slot(tg_traffic_t *t, const tg_request_t *req)
{
    const tg_upstream_conf_t *u = req->up.pool->conf;
    if (req->cfg == t->cfg)
        return u->index < t->nups ? &t->ups[u->index] : NULL;
    for (size_t i = 0; i < t->cfg->nupstreams; i++)
        if (strcmp(t->cfg->upstreams[i].name, u->name) == 0)
            return &t->ups[i];
    return NULL;
}

void tg_traffic_request_routed(tg_request_t *req)
{
    tg_traffic_t *t = of_worker(req->conn->worker);
    route_t *r = t ? route_slot(t, req) : NULL;
    if (r != NULL)
        tg_counter_add(&r->started, 1);
}

static void ex_write(ex_slot_t *e, const uint8_t trace_id[16], uint64_t value_us)
{
    uint64_t seq = tg_counter_get(&e->seq);
    atomic_store_explicit(&e->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    uint64_t id[2];
    memcpy(id, trace_id, 16);
    atomic_store_explicit(&e->id[0], id[0], memory_order_relaxed);
    atomic_store_explicit(&e->id[1], id[1], memory_order_relaxed);
    atomic_store_explicit(&e->value_us, value_us, memory_order_relaxed);
    atomic_store_explicit(&e->wall_ms, tg_wall_us() / 1000, memory_order_relaxed);
    atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
}

/* Returns false when the slot is empty or kept changing. */
static bool ex_read(const ex_slot_t *e, tg_exemplar_t *out)
{
    for (int tries = 0; tries < 4; tries++) {
        uint64_t s1 = atomic_load_explicit((tg_counter_t *)&e->seq, memory_order_acquire);
        if (s1 == 0)
            return false;
        if (s1 & 1)
            continue;
        uint64_t id[2] = {tg_counter_get(&e->id[0]), tg_counter_get(&e->id[1])};
        uint64_t v = tg_counter_get(&e->value_us), ms = tg_counter_get(&e->wall_ms);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit((tg_counter_t *)&e->seq, memory_order_relaxed) != s1)
            continue;
        uint8_t b[16];
        memcpy(b, id, 16);
        tg_trace_hex(b, 16, out->trace_id);
        out->value_us = v;
        out->wall_ms = ms;
        return true;
    }
    return false;
}

void tg_traffic_request_done(tg_request_t *req, uint64_t duration_us)
{
    tg_traffic_t *t = of_worker(req->conn->worker);
    if (t == NULL)
        return;
    /* Exemplars only of sampled requests: their trace exists somewhere. */
    bool ex = req->trace.begun && req->trace.sampled;
    route_t *r = route_slot(t, req);
    if (r != NULL) {
        if (req->route != NULL)
            tg_counter_add(&r->ended, 1);
        tg_counter_add(&r->bytes_in, req->client.head_len + req->client.body.moved);
        tg_counter_add(&r->bytes_out, req->resp.bytes_out);
        if (ex)
            ex_write(&r->ex[tg_mtext_bucket(duration_us)], req->trace.trace_id, duration_us);
    }
    if (req->up.pool == NULL || req->up.attempts == 0)
        return;
    upstream_t *u = upstream_slot(t, req);
    if (u == NULL)
        return;
    if (req->time.up_head_us == 0 || req->time.up_start_us == 0)
        return;
    /* From the first try to the response head: what the upstream made the
     * client wait, retries included (nginx's $upstream_header_time). */
    uint64_t us = req->time.up_head_us - req->time.up_start_us;
    unsigned b = tg_mtext_bucket(us);
    tg_counter_add(&u->bucket[b], 1);
    tg_counter_add(&u->sum_us, us);
    if (ex)
        ex_write(&u->ex[b], req->trace.trace_id, us);
}

static unsigned slot_of(const char *listener, unsigned proto)
{
    unsigned n = atomic_load_explicit(&slots.n, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        if (slots.proto[i] == proto && strcmp(slots.name[i], listener) == 0)
            return i;
    pthread_mutex_lock(&slots.lock);
    n = atomic_load_explicit(&slots.n, memory_order_relaxed);
    unsigned i = 0;
    while (i < n && !(slots.proto[i] == proto && strcmp(slots.name[i], listener) == 0))
        i++;
    if (i == n && n < TG_TRAFFIC_LISTENERS && (slots.name[n] = strdup(listener)) != NULL) {
        slots.proto[n] = proto;
        atomic_store_explicit(&slots.n, n + 1, memory_order_release);
    } else if (i == n) {
        i = TG_TRAFFIC_LISTENERS - 1; /* more listeners than slots: the last is shared */
    }
    pthread_mutex_unlock(&slots.lock);
    return i;
}

unsigned tg_traffic_conn_opened(tg_worker_t *w, const char *listener, unsigned proto)
{
    unsigned s = slot_of(listener, proto < TG_PROTO_COUNT ? proto : 0);
    tg_traffic_t *t = of_worker(w);
    if (t != NULL)
        tg_counter_add(&t->opened[s], 1);
    return s;
}

unsigned tg_traffic_conn_protocol(tg_worker_t *w, unsigned slot, unsigned proto)
{
    if (slot >= TG_TRAFFIC_LISTENERS || slot >= atomic_load(&slots.n) || proto >= TG_PROTO_COUNT)
        return slot;
    unsigned to = slot_of(slots.name[slot], proto); /* a published name never changes */
    tg_traffic_t *t = of_worker(w);
    if (t != NULL && to != slot) {
        tg_counter_add(&t->closed[slot], 1);
        tg_counter_add(&t->opened[to], 1);
    }
    return to;
}

void tg_traffic_conn_closed(tg_worker_t *w, unsigned slot)
{
    tg_traffic_t *t = of_worker(w);
    if (t != NULL && slot < TG_TRAFFIC_LISTENERS)
        tg_counter_add(&t->closed[slot], 1);
}

/* ---- rendering ---- */

typedef struct {
    const tg_config_t *cfg;
    tg_worker_t *ws;
    unsigned n;
} scrape_t;

/* t of worker i when it follows the scraped config (a worker mid-reload is
 * left out for one scrape rather than read by the wrong indexes). */
static const tg_traffic_t *traffic_at(const scrape_t *s, unsigned i)
{
    const tg_worker_metrics_t *m = __atomic_load_n(&s->ws[i].metrics, __ATOMIC_ACQUIRE);
    const tg_traffic_t *t = tg_worker_metrics_traffic(m);
    return t != NULL && t->nroutes == s->cfg->nroutes + 1 && t->nups == s->cfg->nupstreams ? t
                                                                                           : NULL;
}

static uint64_t route_sum(const scrape_t *s, size_t ri, size_t off)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < s->n; i++) {
        const tg_traffic_t *t = traffic_at(s, i);
        if (t != NULL)
            total += tg_counter_get((const tg_counter_t *)((const char *)&t->routes[ri] + off));
    }
    return total;
}

static uint64_t up_sum(const scrape_t *s, size_t ui, size_t off)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < s->n; i++) {
        const tg_traffic_t *t = traffic_at(s, i);
        if (t != NULL)
            total += tg_counter_get((const tg_counter_t *)((const char *)&t->ups[ui] + off));
    }
    return total;
}

/* The newest of the workers' exemplars of one bucket. */
static void newest(const scrape_t *s, bool route, size_t idx, size_t b, tg_exemplar_t *out)
{
    out->trace_id[0] = '\0';
    out->wall_ms = 0;
    for (unsigned i = 0; i < s->n; i++) {
        const tg_traffic_t *t = traffic_at(s, i);
        tg_exemplar_t e;
        if (t == NULL)
            continue;
        const ex_slot_t *slot = route ? &t->routes[idx].ex[b] : &t->ups[idx].ex[b];
        if (ex_read(slot, &e) && e.wall_ms >= out->wall_ms)
            *out = e;
    }
}

void tg_traffic_route_exemplar(const tg_config_t *cfg, tg_worker_t *workers, unsigned n, size_t ri,
                               size_t b, tg_exemplar_t *out)
{
    scrape_t s = {cfg, workers, n};
    if (!tg_mtext_openmetrics()) {
        out->trace_id[0] = '\0';
        return;
    }
    newest(&s, true, ri, b, out);
}

static const char *route_name(const scrape_t *s, size_t ri)
{
    return ri < s->cfg->nroutes ? s->cfg->routes[ri].name : "";
}

static void render_routes(struct evbuffer *out, const scrape_t *s)
{
    tg_mtext_header(out, "tollgate_requests_in_flight", "Requests routed and not finished yet.",
                    "gauge");
    for (size_t ri = 0; ri < s->cfg->nroutes; ri++) {
        uint64_t st = route_sum(s, ri, offsetof(route_t, started));
        uint64_t en = route_sum(s, ri, offsetof(route_t, ended));
        tg_mtext_sample(out, "tollgate_requests_in_flight", "route", route_name(s, ri), NULL, NULL,
                        st > en ? st - en : 0);
    }
    static const struct {
        const char *name, *help;
        size_t off;
    } bytes[] = {
        {"tollgate_request_bytes_total",
         "Bytes received from clients: request heads and bodies (route \"\": no route).",
         offsetof(route_t, bytes_in)},
        {"tollgate_response_bytes_total", "Response body bytes sent to clients.",
         offsetof(route_t, bytes_out)},
    };
    for (size_t k = 0; k < 2; k++) {
        tg_mtext_header(out, bytes[k].name, bytes[k].help, "counter");
        for (size_t ri = 0; ri <= s->cfg->nroutes; ri++)
            tg_mtext_sample(out, bytes[k].name, "route", route_name(s, ri), NULL, NULL,
                            route_sum(s, ri, bytes[k].off));
    }
}

static void render_upstreams(struct evbuffer *out, const scrape_t *s)
{
    const char *h = "tollgate_upstream_response_duration_seconds";
    tg_mtext_header(out, h,
                    "Time from the first try to the upstream's response head, retries included.",
                    "histogram");
    for (size_t u = 0; u < s->cfg->nupstreams; u++) {
        const char *name = s->cfg->upstreams[u].name;
        uint64_t cum = 0;
        for (size_t b = 0; b < NB; b++) {
            cum += up_sum(s, u, offsetof(upstream_t, bucket) + b * sizeof(tg_counter_t));
            tg_exemplar_t ex = {.trace_id = ""};
            if (tg_mtext_openmetrics())
                newest(s, false, u, b, &ex);
            tg_mtext_sample_ex(out, "tollgate_upstream_response_duration_seconds_bucket",
                               "upstream", name, "le", tg_mtext_bucket_le[b], cum, &ex);
        }
        tg_mtext_seconds(out, "tollgate_upstream_response_duration_seconds_sum", "upstream", name,
                         up_sum(s, u, offsetof(upstream_t, sum_us)));
        tg_mtext_sample(out, "tollgate_upstream_response_duration_seconds_count", "upstream", name,
                        NULL, NULL, cum);
    }
}

static void render_connections(struct evbuffer *out, const scrape_t *s)
{
    unsigned n = atomic_load_explicit(&slots.n, memory_order_acquire);
    uint64_t opened[TG_TRAFFIC_LISTENERS] = {0}, closed[TG_TRAFFIC_LISTENERS] = {0};
    for (unsigned i = 0; i < s->n; i++) {
        const tg_worker_metrics_t *m = __atomic_load_n(&s->ws[i].metrics, __ATOMIC_ACQUIRE);
        const tg_traffic_t *t = tg_worker_metrics_traffic(m);
        for (unsigned k = 0; t != NULL && k < n; k++) {
            opened[k] += tg_counter_get(&t->opened[k]);
            closed[k] += tg_counter_get(&t->closed[k]);
        }
    }
    tg_mtext_header(out, "tollgate_client_connections", "Client connections open now.", "gauge");
    for (unsigned k = 0; k < n; k++)
        tg_mtext_sample(out, "tollgate_client_connections", "listener", slots.name[k], "protocol",
                        proto_names[slots.proto[k]],
                        opened[k] > closed[k] ? opened[k] - closed[k] : 0);
    tg_mtext_header(out, "tollgate_client_connections_accepted_total",
                    "Client connections accepted.", "counter");
    for (unsigned k = 0; k < n; k++)
        tg_mtext_sample(out, "tollgate_client_connections_accepted_total", "listener",
                        slots.name[k], "protocol", proto_names[slots.proto[k]], opened[k]);
}

void tg_traffic_render(struct evbuffer *out, const tg_config_t *cfg, tg_worker_t *workers,
                       unsigned n)
{
    scrape_t s = {cfg, workers, workers ? n : 0};
    render_routes(out, &s);
    render_upstreams(out, &s);
    render_connections(out, &s);
}

/* ---- figures for the status page ---- */

uint64_t tg_traffic_in_flight(const tg_config_t *cfg, tg_worker_t *workers, unsigned n, size_t ri)
{
    scrape_t s = {cfg, workers, workers ? n : 0};
    uint64_t st = route_sum(&s, ri, offsetof(route_t, started));
    uint64_t en = route_sum(&s, ri, offsetof(route_t, ended));
    return st > en ? st - en : 0;
}

void tg_traffic_upstream(const tg_config_t *cfg, tg_worker_t *workers, unsigned n, size_t ui,
                         uint64_t bucket[TG_MTEXT_NBUCKETS])
{
    scrape_t s = {cfg, workers, workers ? n : 0};
    for (size_t b = 0; b < NB; b++)
        bucket[b] = up_sum(&s, ui, offsetof(upstream_t, bucket) + b * sizeof(tg_counter_t));
}

size_t tg_traffic_listeners(tg_worker_t *workers, unsigned n, tg_listener_conns_t *out, size_t max)
{
    unsigned k = atomic_load_explicit(&slots.n, memory_order_acquire);
    size_t m = 0;
    for (unsigned j = 0; j < k && m < max; j++, m++) {
        out[m] =
            (tg_listener_conns_t){.name = slots.name[j], .protocol = proto_names[slots.proto[j]]};
        for (unsigned i = 0; workers != NULL && i < n; i++) {
            const tg_worker_metrics_t *wm = __atomic_load_n(&workers[i].metrics, __ATOMIC_ACQUIRE);
            const tg_traffic_t *t = tg_worker_metrics_traffic(wm);
            if (t == NULL)
                continue;
            /* A connection closes on the worker that accepted it. */
            uint64_t o = tg_counter_get(&t->opened[j]), c = tg_counter_get(&t->closed[j]);
            out[m].open += o > c ? o - c : 0;
            out[m].accepted += o;
        }
    }
    return m;
}
