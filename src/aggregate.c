#include "aggregate.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "request.h"
#include "response.h"
#include "template.h"
#include "tollgate/clock.h"
#include "tollgate/fetch.h"
#include "tollgate/request.h"
#include "trace_context.h"
#include "trace_span.h"
#include "worker.h"

/* ---- config ---- */

static int parse_call(tg_config_t *cfg, tg_route_t *route, const tg_conf_node_t *n,
                      tg_agg_call_t *call, tg_conf_err_t *err)
{
    static const char *const keys[] = {"key", "upstream", "path", "optional", NULL};
    if (tg_conf_check_keys(n, keys, err) < 0)
        return -1;
    const tg_conf_node_t *k = tg_conf_map_get(n, "key"), *u = tg_conf_map_get(n, "upstream"),
                         *p = tg_conf_map_get(n, "path"), *o = tg_conf_map_get(n, "optional");
    if (k == NULL || u == NULL || p == NULL)
        return tg_conf_error(err, n, "a call needs key, upstream and path");
    const char *key, *up;
    if (tg_conf_get_string(k, &key, err) < 0 || tg_conf_get_string(u, &up, err) < 0)
        return -1;
    call->key = strdup(key);
    call->upstream = tg_config_upstream(cfg, up);
    if (call->upstream == NULL)
        return tg_conf_error(err, u, "unknown upstream '%s'", up);
    if (o != NULL && tg_conf_get_bool(o, &call->optional, err) < 0)
        return -1;
    call->path = tg_template_compile_route(p, TG_TEMPLATE_PATH, route, err);
    return call->path ? 0 : -1;
}

static int parse_pass_headers(tg_aggregate_t *a, const tg_conf_node_t *n, tg_conf_err_t *err)
{
    if (n->type != TG_CONF_SEQ)
        return tg_conf_error(err, n, "expected a list of header names");
    a->pass_headers = calloc(n->count + 1, sizeof(char *));
    for (size_t i = 0; i < n->count; i++) {
        const char *s;
        if (tg_conf_get_string(n->items[i], &s, err) < 0)
            return -1;
        a->pass_headers[a->npass++] = strdup(s);
    }
    return 0;
}

int tg_aggregate_parse(tg_config_t *cfg, tg_route_t *route, const tg_conf_node_t *node,
                       tg_aggregate_t **out, tg_conf_err_t *err)
{
    static const char *const keys[] = {"timeout", "calls", "pass_headers", NULL};
    if (node->type != TG_CONF_MAP)
        return tg_conf_error(err, node, "expected a map with timeout and calls");
    if (tg_conf_check_keys(node, keys, err) < 0)
        return -1;
    tg_aggregate_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        abort();
    *out = a;
    a->timeout_ms = 2000;
    const tg_conf_node_t *t = tg_conf_map_get(node, "timeout"),
                         *calls = tg_conf_map_get(node, "calls"),
                         *ph = tg_conf_map_get(node, "pass_headers");
    if (t != NULL && tg_conf_get_duration_ms(t, &a->timeout_ms, err) < 0)
        return -1;
    if (ph != NULL) {
        if (parse_pass_headers(a, ph, err) < 0)
            return -1;
    } else {
        a->pass_headers = calloc(2, sizeof(char *));
        a->pass_headers[a->npass++] = strdup("Authorization");
    }
    if (calls == NULL || calls->type != TG_CONF_SEQ || calls->count == 0)
        return tg_conf_error(err, calls ? calls : node,
                             "aggregate needs a non-empty list of calls");
    a->calls = calloc(calls->count, sizeof(*a->calls));
    for (size_t i = 0; i < calls->count; i++) {
        a->ncalls++;
        if (parse_call(cfg, route, calls->items[i], &a->calls[i], err) < 0)
            return -1;
        for (size_t k = 0; k < i; k++)
            if (strcmp(a->calls[k].key, a->calls[i].key) == 0)
                return tg_conf_error(err, calls->items[i], "duplicate call key '%s'",
                                     a->calls[i].key);
    }
    return 0;
}

void tg_aggregate_free(tg_aggregate_t *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->ncalls; i++) {
        free(a->calls[i].key);
        tg_template_free(a->calls[i].path);
    }
    free(a->calls);
    for (size_t i = 0; i < a->npass; i++)
        free(a->pass_headers[i]);
    free(a->pass_headers);
    free(a);
}

/* ---- running ---- */

typedef struct agg_run_s agg_run_t;

typedef struct {
    agg_run_t *run;
    size_t index;
    tg_fetch_t *fetch; /* NULL once done */
    json_t *value;     /* NULL: failed */
    const char *error;
    tg_client_span_t *span; /* the call's CLIENT span, NULL when not recorded */
} agg_slot_t;

struct agg_run_s {
    tg_request_t *req;
    const tg_aggregate_t *agg;
    agg_slot_t *slots;
    size_t pending;
    struct event *timer;
    bool starting; /* calls are still being started: nobody answers yet */
    bool finished;
};

static void answer(agg_run_t *run)
{
    tg_request_t *req = run->req;
    const tg_aggregate_t *a = run->agg;
    run->finished = true;
    if (run->timer) {
        event_free(run->timer);
        run->timer = NULL;
    }
    json_t *doc = json_object();
    struct evbuffer *partial = evbuffer_new();
    for (size_t i = 0; i < a->ncalls; i++) {
        agg_slot_t *s = &run->slots[i];
        if (s->value == NULL && !a->calls[i].optional) {
            char *msg = tg_arena_printf(req->arena, "aggregate call '%s' failed: %s",
                                        a->calls[i].key, s->error ? s->error : "error");
            tg_request_respond_error(req, 502, msg);
            json_decref(doc);
            evbuffer_free(partial);
            tg_response_reply(req);
            return;
        }
        if (s->value == NULL)
            evbuffer_add_printf(partial, "%s%s", evbuffer_get_length(partial) ? ", " : "",
                                a->calls[i].key);
        json_object_set(doc, a->calls[i].key, s->value ? s->value : json_null());
    }
    if (evbuffer_get_length(partial) > 0)
        tg_request_add_response_header(req, "X-Tollgate-Partial",
                                       (const char *)evbuffer_pullup(partial, -1),
                                       evbuffer_get_length(partial));
    evbuffer_free(partial);
    char *body = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    tg_request_respond(req, 200, "application/json", body, strlen(body));
    free(body);
    tg_response_reply(req);
}

static bool is_json(const char *ct, size_t len)
{
    if (ct == NULL)
        return false;
    const char *semi = memchr(ct, ';', len);
    size_t n = semi ? (size_t)(semi - ct) : len;
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
           (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

static void call_done(void *data, const tg_fetch_result_t *res)
{
    agg_slot_t *s = data;
    agg_run_t *run = s->run;
    s->fetch = NULL;
    tg_trace_client_end(s->span, res->status, res->error);
    if (res->error != NULL) {
        s->error = res->error;
    } else if (res->status < 200 || res->status > 299) {
        s->error = tg_arena_printf(run->req->arena, "status %d", res->status);
    } else if (!is_json(res->content_type, res->content_type_len)) {
        s->error = "response is not JSON";
    } else {
        s->value = json_loadb(res->body, res->body_len, JSON_DECODE_ANY, NULL);
        if (s->value == NULL)
            s->error = "invalid JSON";
    }
    if (--run->pending == 0 && !run->finished && !run->starting)
        answer(run);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    agg_run_t *run = arg;
    for (size_t i = 0; i < run->agg->ncalls; i++) {
        agg_slot_t *s = &run->slots[i];
        if (s->fetch != NULL) {
            tg_fetch_cancel(s->fetch);
            s->fetch = NULL;
            s->error = "timeout";
            tg_trace_client_end(s->span, 0, "timeout");
        }
    }
    answer(run);
}

/* The request ended (client gone, or answered): nothing may call back. */
static void run_cleanup(void *arg)
{
    agg_run_t *run = arg;
    for (size_t i = 0; i < run->agg->ncalls; i++) {
        if (run->slots[i].fetch != NULL)
            tg_fetch_cancel(run->slots[i].fetch);
        if (run->slots[i].value != NULL)
            json_decref(run->slots[i].value);
    }
    if (run->timer)
        event_free(run->timer);
}

static const char **call_headers(tg_request_t *req, const tg_aggregate_t *a)
{
    const char **h = tg_arena_calloc(req->arena, (2 * a->npass + 5) * sizeof(char *));
    size_t n = 0;
    for (size_t i = 0; i < a->npass; i++) {
        size_t len;
        const char *v = tg_request_header(req, a->pass_headers[i], &len);
        /* Each call gets its own traceparent (traced_headers). */
        if (v == NULL || strcasecmp(a->pass_headers[i], "traceparent") == 0 ||
            strcasecmp(a->pass_headers[i], "tracestate") == 0)
            continue;
        h[n++] = a->pass_headers[i];
        h[n++] = tg_arena_strndup(req->arena, v, len);
    }
    h[n++] = "X-Request-Id";
    h[n++] = req->request_id;
    h[n++] = "Accept";
    h[n++] = "application/json";
    return h;
}

/* The call's headers: the shared ones, then a traceparent naming the call's
 * own span as the parent, and the client's tracestate. */
static const char **traced_headers(tg_request_t *req, const char **base, agg_slot_t *s,
                                   const char *upstream, const char *path)
{
    size_t n = 0;
    while (base[n] != NULL)
        n++;
    const char **h = tg_arena_calloc(req->arena, (n + 5) * sizeof(*h));
    memcpy(h, base, n * sizeof(*h));
    uint8_t span[8];
    s->span = tg_trace_client(req, upstream, path, span);
    char *tp = tg_arena_alloc(req->arena, TG_TRACEPARENT_LEN + 1);
    tg_traceparent_format(req->trace.trace_id, span, req->trace.sampled ? 1 : 0, tp);
    h[n++] = "traceparent";
    h[n++] = tp;
    if (req->trace.tracestate != NULL) {
        h[n++] = "tracestate";
        h[n++] = tg_arena_strndup(req->arena, req->trace.tracestate, req->trace.tracestate_len);
    }
    return h;
}

void tg_aggregate_start(tg_request_t *req)
{
    const tg_aggregate_t *a = req->route->aggregate;
    /* Every path is rendered before any call starts: a refused value answers
     * 400 with nothing sent upstream. */
    const char **paths = tg_arena_calloc(req->arena, a->ncalls * sizeof(*paths));
    for (size_t i = 0; i < a->ncalls; i++) {
        size_t len;
        if (tg_template_render(req, a->calls[i].path, &paths[i], &len) < 0) {
            tg_request_respond_error(req, 400, paths[i]);
            tg_response_reply(req);
            return;
        }
    }
    agg_run_t *run = tg_arena_calloc(req->arena, sizeof(*run));
    run->req = req;
    run->agg = a;
    run->slots = tg_arena_calloc(req->arena, a->ncalls * sizeof(*run->slots));
    run->pending = a->ncalls;
    tg_arena_on_cleanup(req->arena, run_cleanup, run);
    run->timer = evtimer_new(req->gen->worker->base, timeout_cb, run);
    struct timeval tv = tg_timeval_ms(a->timeout_ms);
    evtimer_add(run->timer, &tv);
    req->time.up_start_us = tg_now_us();
    const char **headers = call_headers(req, a);
    run->starting = true;
    for (size_t i = 0; i < a->ncalls; i++) {
        agg_slot_t *s = &run->slots[i];
        s->run = run;
        s->index = i;
        const char *up = a->calls[i].upstream->name;
        tg_fetch_opts_t o = {.path = paths[i],
                             .headers = traced_headers(req, headers, s, up, paths[i]),
                             .timeout_ms = a->timeout_ms};
        /* A fetch failing at once calls back now: run->pending counts it. */
        s->fetch = tg_fetch_start(up, &o, call_done, s);
    }
    run->starting = false;
    if (run->pending == 0)
        answer(run);
}
