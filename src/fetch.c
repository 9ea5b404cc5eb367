/* tg_fetch_start(): the gateway's own requests to an upstream (fetch.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "body.h"
#include "log.h"
#include "tollgate/clock.h"
#include "tollgate/fetch.h"
#include "trace_span.h"
#include "upstream_pool.h"
#include "worker.h"

#define FETCH_HEAD_MAX (64u * 1024u)
#define FETCH_MAX_HEADERS 128u

struct tg_fetch_s {
    tg_upool_t *pool;
    tg_uconn_t *up;
    struct event *timer;
    tg_fetch_cb_t cb;
    void *data;
    bool head_done;
    bool keepalive;
    int status;
    char *content_type;
    size_t content_type_len;
    tg_body_t body;
    struct evbuffer *buf;
    size_t max_body;
    bool head_method;
};

static tg_upool_t *find_pool(tg_worker_t *w, const char *name)
{
    const tg_gen_t *g = w->gen;
    for (size_t i = 0; i < g->cfg->nupstreams; i++)
        if (strcmp(g->cfg->upstreams[i].name, name) == 0)
            return &g->pools[i];
    return NULL;
}

static void fetch_free(tg_fetch_t *f, bool reusable)
{
    if (f->up != NULL)
        tg_upool_release(f->up, reusable);
    if (f->timer != NULL)
        event_free(f->timer);
    if (f->buf != NULL)
        evbuffer_free(f->buf);
    free(f->content_type);
    free(f);
}

static void finish(tg_fetch_t *f, const char *error)
{
    tg_fetch_result_t res = {.status = error ? 0 : f->status, .error = error};
    if (error == NULL) {
        res.body_len = evbuffer_get_length(f->buf);
        res.body = res.body_len ? (const char *)evbuffer_pullup(f->buf, -1) : "";
        res.content_type = f->content_type;
        res.content_type_len = f->content_type_len;
    } else if (f->up != NULL && !f->head_done) {
        tg_upool_report_failure(f->pool, f->up->target, tg_now_ms());
    }
    /* The connection goes back first: the callback may start another fetch. */
    if (f->up != NULL) {
        tg_upool_release(f->up, error == NULL && f->keepalive);
        f->up = NULL;
    }
    f->cb(f->data, &res);
    fetch_free(f, false);
}

static void fail_now(tg_fetch_cb_t cb, void *data, const char *error)
{
    tg_fetch_result_t res = {.error = error};
    cb(data, &res);
}

static void keep_content_type(tg_fetch_t *f, const tg_http_response_t *resp)
{
    for (size_t i = 0; i < resp->num_headers; i++) {
        const tg_http_header_t *h = &resp->headers[i];
        if (TG_HTTP_NAME_IS(h, "content-type")) {
            f->content_type = strndup(h->value, h->value_len);
            f->content_type_len = h->value_len;
            return;
        }
    }
}

/* Returns 1 when the head is done, 0 when more is needed, -1 on error. */
static int read_head(tg_fetch_t *f, struct evbuffer *in)
{
    tg_http_header_t hs[FETCH_MAX_HEADERS];
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return 0;
        size_t n = len < FETCH_HEAD_MAX ? len : FETCH_HEAD_MAX;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        tg_http_response_t resp = {.headers = hs, .num_headers = FETCH_MAX_HEADERS};
        int r = tg_http_parse_response(p, n, &resp);
        if (r == TG_HTTP_INCOMPLETE)
            return len < FETCH_HEAD_MAX ? 0 : -1;
        if (r < 0 || resp.status == 101)
            return -1;
        if (resp.status < 200) {
            evbuffer_drain(in, (size_t)r);
            continue;
        }
        f->status = resp.status;
        keep_content_type(f, &resp);
        tg_body_kind_t kind = tg_http_response_body(&resp, f->head_method);
        f->keepalive = tg_http_response_reusable(&resp, f->head_method);
        tg_body_init(&f->body, kind, resp.content_length, f->max_body, false);
        evbuffer_drain(in, (size_t)r);
        f->head_done = true;
        tg_upool_report_success(f->pool, f->up->target);
        return 1;
    }
}

static void pump(tg_fetch_t *f, bool eof)
{
    struct evbuffer *in = tg_stream_input(f->up->s);
    if (!f->head_done) {
        int h = read_head(f, in);
        if (h < 0) {
            finish(f, "invalid response");
            return;
        }
        if (h == 0) {
            if (eof)
                finish(f, "connection closed");
            return;
        }
    }
    int r = tg_body_pump(&f->body, in, f->buf, SIZE_MAX);
    if (r == TG_BODY_MORE && eof)
        r = tg_body_eof(&f->body, f->buf);
    if (r == TG_BODY_DONE)
        finish(f, NULL);
    else if (r == TG_BODY_TOO_LARGE || (f->max_body && evbuffer_get_length(f->buf) > f->max_body))
        finish(f, "response too large");
    else if (r < 0)
        finish(f, eof ? "connection closed" : "invalid response");
}

static void read_cb(tg_stream_t *s, void *arg)
{
    (void)s;
    pump(arg, false);
}

static void event_cb(tg_stream_t *s, short what, void *arg)
{
    (void)s;
    tg_fetch_t *f = arg;
    if (what & TG_STREAM_CONNECTED) {
        f->up->connected = true;
        return;
    }
    if (what & TG_STREAM_EOF) {
        pump(f, true);
        return;
    }
    if (!f->up->connected)
        TG_STAT_INC(f->pool, connect_errors);
    else
        TG_STAT_INC(f->pool, resets);
    finish(f, f->up->connected ? "connection closed" : "connect failed");
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_fetch_t *f = arg;
    TG_STAT_INC(f->pool, timeouts);
    finish(f, "timeout");
}

static void write_request(tg_fetch_t *f, const tg_fetch_opts_t *o)
{
    struct evbuffer *out = tg_stream_output(f->up->s);
    const tg_target_t *t = &f->pool->conf->targets[f->up->target];
    evbuffer_add_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\n", o->method ? o->method : "GET",
                        o->path && o->path[0] ? o->path : "/", t->host_header);
    bool traced = false;
    for (const char *const *h = o->headers; h && h[0] && h[1]; h += 2) {
        evbuffer_add_printf(out, "%s: %s\r\n", h[0], h[1]);
        traced |= strcasecmp(h[0], "traceparent") == 0;
    }
    /* A download of the gateway's own (a key set) starts a trace of its own,
     * so the upstream can tell each one apart in its traces. */
    if (!traced) {
        char tp[56];
        tg_trace_fresh_traceparent(tp);
        evbuffer_add_printf(out, "traceparent: %s\r\n", tp);
    }
    if (o->body_len > 0)
        evbuffer_add_printf(out, "Content-Length: %zu\r\n", o->body_len);
    evbuffer_add(out, "\r\n", 2);
    if (o->body_len > 0)
        evbuffer_add(out, o->body, o->body_len);
}

static const tg_stream_cbs_t fetch_cbs = {.read = read_cb, .write = NULL, .event = event_cb};

tg_fetch_t *tg_fetch_start(const char *upstream, const tg_fetch_opts_t *o, tg_fetch_cb_t cb,
                           void *data)
{
    tg_worker_t *w = tg_current_worker;
    tg_upool_t *pool = w ? find_pool(w, upstream) : NULL;
    if (pool == NULL) {
        fail_now(cb, data, "unknown upstream");
        return NULL;
    }
    tg_pick_result_t why;
    size_t t = tg_balance_pick(pool, tg_now_ms(), 0, false, 0, &why);
    if (t == SIZE_MAX) {
        fail_now(cb, data, why == TG_PICK_MAX_CONNS ? "upstream overloaded" : "no healthy target");
        return NULL;
    }
    tg_uconn_t *up = tg_upool_take_idle(pool, t);
    if (up == NULL)
        up = tg_upool_connect(pool, t);
    if (up == NULL) {
        tg_upool_report_failure(pool, t, tg_now_ms());
        fail_now(cb, data, "connect failed");
        return NULL;
    }
    tg_fetch_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        abort();
    f->pool = pool;
    f->up = up;
    f->cb = cb;
    f->data = data;
    f->buf = evbuffer_new();
    f->max_body = o->max_body ? o->max_body : 1024 * 1024;
    f->head_method = o->method && strcmp(o->method, "HEAD") == 0;
    f->timer = evtimer_new(w->base, timeout_cb, f);
    uint64_t ms =
        o->timeout_ms ? o->timeout_ms : pool->conf->connect_timeout_ms + pool->conf->timeout_ms;
    struct timeval tv = tg_timeval_ms(ms);
    evtimer_add(f->timer, &tv);
    tg_stream_setcb(up->s, &fetch_cbs, f);
    tg_stream_set_watermarks(up->s, 0, 0);
    write_request(f, o);
    tg_stream_read_enable(up->s, true);
    return f;
}

void tg_fetch_cancel(tg_fetch_t *f)
{
    if (f != NULL)
        fetch_free(f, false);
}
