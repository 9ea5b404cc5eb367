/* The OTLP/HTTP JSON span exporter thread (otlp_export.h). */
#include "otlp_export.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_escape.h"
#include "log.h"
#include "metrics_text.h"
#include "otlp_http.h"
#include "tg_build_config.h"
#include "tollgate/clock.h"

#define ATTEMPTS 3

typedef struct item_s {
    struct item_s *next;
    char *json;
    size_t len;
    unsigned nspans;
} item_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running;
    bool stopping;
    tg_tracing_conf_t *conf; /* NULL: tracing off, submissions dropped */
    item_t *head, *tail;
    size_t queued;       /* spans */
    tg_otlp_link_t link; /* the kept-alive connection (the thread's) */
    unsigned gen;        /* bumped by each tg_otlp_configure(): a new collector */
    atomic_ullong exported, dropped_queue, dropped_failed;
} X = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
    .link = TG_OTLP_LINK_NONE,
};

bool tg_otlp_submit(char *json, size_t len, unsigned nspans)
{
    /* Allocated before the lock: a worker holds it for a few stores only. */
    item_t *it = malloc(sizeof(*it));
    bool queued = false;
    if (it != NULL) {
        *it = (item_t){.json = json, .len = len, .nspans = nspans};
        pthread_mutex_lock(&X.lock);
        queued = X.conf != NULL && X.queued + nspans <= X.conf->queue;
        if (queued) {
            if (X.tail)
                X.tail->next = it;
            else
                X.head = it;
            X.tail = it;
            X.queued += nspans;
            if (X.queued >= X.conf->max_spans)
                pthread_cond_signal(&X.cond);
        }
        pthread_mutex_unlock(&X.lock);
    }
    if (!queued) {
        free(it);
        free(json);
        atomic_fetch_add_explicit(&X.dropped_queue, nspans, memory_order_relaxed);
    }
    return queued;
}

static void add_attr(struct evbuffer *b, bool first, const char *k, const char *v)
{
    evbuffer_add_printf(b, "%s{\"key\":\"", first ? "" : ",");
    tg_json_escape(b, k, strlen(k));
    evbuffer_add(b, "\",\"value\":{\"stringValue\":\"", 26);
    tg_json_escape(b, v, strlen(v));
    evbuffer_add(b, "\"}}", 3);
}

/* The HTTP request: head, then the ExportTraceServiceRequest around the
 * batch's spans. */
static struct evbuffer *build(const tg_tracing_conf_t *c, item_t *batch)
{
    struct evbuffer *body = evbuffer_new(), *req = evbuffer_new();
    evbuffer_add_printf(body, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
    add_attr(body, true, "service.name", c->service_name);
    add_attr(body, false, "service.version", TG_VERSION);
    add_attr(body, false, "telemetry.sdk.name", "tollgate");
    add_attr(body, false, "telemetry.sdk.language", "c");
    add_attr(body, false, "telemetry.sdk.version", TG_VERSION);
    for (size_t i = 0; i < c->nresource; i++)
        add_attr(body, false, c->resource[2 * i], c->resource[2 * i + 1]);
    evbuffer_add_printf(body,
                        "]},\"scopeSpans\":[{\"scope\":{\"name\":\"tollgate\",\"version\":"
                        "\"%s\"},\"spans\":[",
                        TG_VERSION);
    for (item_t *it = batch; it != NULL; it = it->next) {
        if (it != batch)
            evbuffer_add(body, ",", 1);
        evbuffer_add(body, it->json, it->len);
    }
    evbuffer_add(body, "]}]}]}", 6);
    evbuffer_add_printf(req,
                        "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                        "User-Agent: tollgate/%s\r\nContent-Length: %zu\r\n",
                        c->path, c->host_header, TG_VERSION, evbuffer_get_length(body));
    for (size_t i = 0; i < c->nheaders; i++)
        evbuffer_add_printf(req, "%s: %s\r\n", c->headers[2 * i], c->headers[2 * i + 1]);
    evbuffer_add(req, "\r\n", 2);
    evbuffer_add_buffer(req, body);
    evbuffer_free(body);
    return req;
}

static bool retryable(int st)
{
    return st < 0 || st == 429 || st == 502 || st == 503 || st == 504;
}

/* Sleeps ms unless stop is asked (then returns false). */
static bool backoff(uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&X.lock);
    while (!X.stopping && pthread_cond_timedwait(&X.cond, &X.lock, &ts) != ETIMEDOUT)
        ;
    bool go_on = !X.stopping;
    pthread_mutex_unlock(&X.lock);
    return go_on;
}

/* Returns whether the collector took the batch. */
static bool export_batch(const tg_tracing_conf_t *c, item_t *batch, unsigned nspans, bool last)
{
    static const uint64_t delays[] = {250, 1000};
    struct evbuffer *req = build(c, batch);
    int st = -1, err = 0;
    for (int a = 0; a < ATTEMPTS; a++) {
        if (a > 0 && (last || !backoff(delays[a - 1])))
            break;
        errno = 0;
        st = tg_otlp_post(&X.link, c, (const char *)evbuffer_pullup(req, -1),
                          evbuffer_get_length(req));
        err = errno;
        if (!retryable(st))
            break;
    }
    evbuffer_free(req);
    if (st >= 200 && st <= 299) {
        atomic_fetch_add_explicit(&X.exported, nspans, memory_order_relaxed);
        return true;
    }
    atomic_fetch_add_explicit(&X.dropped_failed, nspans, memory_order_relaxed);
    /* The log holds back identical lines (log.h): a down collector costs
     * one line per 10 s, with the count. */
    if (st < 0)
        tg_log_warn("tracing: export to %s failed: %s; spans dropped", c->endpoint,
                    err ? strerror(err) : "broken answer");
    else
        tg_log_warn("tracing: %s answered %d; spans dropped", c->endpoint, st);
    return false;
}

/* Takes up to max_spans spans off the queue (lock held). */
static item_t *take(unsigned max, unsigned *nspans)
{
    item_t *first = X.head, *last = NULL;
    unsigned n = 0;
    for (item_t *it = X.head; it != NULL && (n == 0 || n + it->nspans <= max); it = it->next) {
        n += it->nspans;
        last = it;
    }
    if (last == NULL)
        return NULL;
    X.head = last->next;
    if (X.head == NULL)
        X.tail = NULL;
    last->next = NULL;
    X.queued -= n;
    *nspans = n;
    return first;
}

static void free_items(item_t *it)
{
    while (it != NULL) {
        item_t *next = it->next;
        free(it->json);
        free(it);
        it = next;
    }
}

static void *run(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&X.lock);
    uint64_t next_flush = tg_now_ms();
    unsigned conn_gen = X.gen;
    bool failed_at_stop = false;
    for (;;) {
        bool stop = X.stopping;
        tg_tracing_conf_t *c = X.conf;
        uint64_t now = tg_now_ms();
        if (!stop && c != NULL && X.queued < c->max_spans && now < next_flush) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t ms = next_flush - now;
            ts.tv_sec += (time_t)(ms / 1000);
            ts.tv_nsec += (long)(ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&X.cond, &X.lock, &ts);
            continue;
        }
        if (c == NULL && !stop) {
            pthread_cond_wait(&X.cond, &X.lock);
            continue;
        }
        unsigned n = 0;
        item_t *batch = c != NULL ? take(c->max_spans, &n) : NULL;
        if (batch == NULL) {
            if (stop)
                break;
            next_flush = now + c->interval_ms;
            continue;
        }
        if (stop && failed_at_stop) { /* at exit, one failure is enough */
            atomic_fetch_add_explicit(&X.dropped_failed, n, memory_order_relaxed);
            free_items(batch);
            continue;
        }
        if (conn_gen != X.gen) {
            tg_otlp_link_close(&X.link);
            conn_gen = X.gen;
        }
        tg_tracing_conf_ref(c);
        pthread_mutex_unlock(&X.lock);
        bool ok = export_batch(c, batch, n, stop);
        failed_at_stop |= stop && !ok;
        free_items(batch);
        tg_tracing_conf_unref(c);
        pthread_mutex_lock(&X.lock);
        if (X.queued < c->max_spans)
            next_flush = tg_now_ms() + c->interval_ms;
    }
    pthread_mutex_unlock(&X.lock);
    tg_otlp_link_close(&X.link);
    return NULL;
}

void tg_otlp_configure(tg_tracing_conf_t *conf)
{
    pthread_mutex_lock(&X.lock);
    tg_tracing_conf_t *old = X.conf;
    X.conf = conf ? tg_tracing_conf_ref(conf) : NULL;
    X.gen++;
    /* A new collector: the next batch opens a new connection (the thread
     * sees the change and drops its connection). Tracing removed: what is
     * queued has nowhere to go and is counted as dropped. */
    item_t *orphans = NULL;
    size_t norphans = 0;
    if (conf == NULL) {
        orphans = X.head;
        norphans = X.queued;
        X.head = X.tail = NULL;
        X.queued = 0;
    }
    bool start = conf != NULL && !X.running;
    if (start) {
        X.stopping = false;
        X.running = pthread_create(&X.thread, NULL, run, NULL) == 0;
        if (!X.running)
            tg_log_error("tracing: cannot start the exporter thread");
    }
    pthread_cond_signal(&X.cond);
    pthread_mutex_unlock(&X.lock);
    free_items(orphans);
    atomic_fetch_add_explicit(&X.dropped_failed, norphans, memory_order_relaxed);
    /* Spans queued for the old settings go out with the new ones: a batch
     * already taken holds its own reference. */
    tg_tracing_conf_unref(old);
}

void tg_otlp_stop(void)
{
    pthread_mutex_lock(&X.lock);
    bool running = X.running;
    X.stopping = true;
    pthread_cond_broadcast(&X.cond);
    pthread_mutex_unlock(&X.lock);
    if (running)
        pthread_join(X.thread, NULL);
    pthread_mutex_lock(&X.lock);
    X.running = false;
    free_items(X.head);
    X.head = X.tail = NULL;
    X.queued = 0;
    tg_tracing_conf_unref(X.conf);
    X.conf = NULL;
    pthread_mutex_unlock(&X.lock);
}

void tg_otlp_counts(unsigned long long *exported, unsigned long long *dropped_queue,
                    unsigned long long *dropped_failed)
{
    *exported = atomic_load(&X.exported);
    *dropped_queue = atomic_load(&X.dropped_queue);
    *dropped_failed = atomic_load(&X.dropped_failed);
}

void tg_otlp_metrics_render(struct evbuffer *out)
{
    const char *e = "tollgate_tracing_spans_exported_total";
    const char *d = "tollgate_tracing_spans_dropped_total";
    tg_mtext_header(out, e, "Spans the OTLP collector accepted.", "counter");
    tg_mtext_sample(out, e, NULL, NULL, NULL, NULL, atomic_load(&X.exported));
    tg_mtext_header(out, d, "Spans lost: queue full, or the export failed after its retries.",
                    "counter");
    tg_mtext_sample(out, d, "reason", "queue_full", NULL, NULL, atomic_load(&X.dropped_queue));
    tg_mtext_sample(out, d, "reason", "export_failed", NULL, NULL, atomic_load(&X.dropped_failed));
}
