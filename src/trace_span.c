/* A request's trace context and spans (trace_span.h), and the plugins' part
 * of it (include/tollgate/trace.h). */
#include "trace_span.h"

#include <string.h>

#include "conn.h"
#include "otlp_export.h"
#include "request.h"
#include "span_json.h"
#include "tollgate/clock.h"
#include "tollgate/trace.h"
#include "trace_conf.h"
#include "trace_context.h"

/* Plugin attribute and event text is cut here: a span is not a log. */
#define SPAN_TEXT_MAX 256
/* A runaway plugin cannot grow a span without end. */
#define SPAN_ITEMS_MAX 64

static uint64_t wall_ns(void)
{
    return tg_wall_us() * 1000u;
}

static void random_bytes(uint8_t *out, size_t n)
{
    tg_worker_t *w = tg_current_worker;
    static _Thread_local tg_request_id_gen_t own; /* off a worker (tests) */
    tg_request_id_gen_t *g = w != NULL ? &w->ids : &own;
    if (w == NULL && (own.s[0] | own.s[1]) == 0)
        tg_request_id_seed(&own);
    do {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v = tg_request_id_u64(g);
            memcpy(out + i, &v, n - i < 8 ? n - i : 8);
        }
    } while (tg_trace_id_zero(out, n));
}

/* Several traceparent lines are invalid (trace-context 3.2); several
 * tracestate lines are one list (RFC 9110 5.3). */
void tg_trace_begin(tg_request_t *req)
{
    tg_trace_t *t = &req->trace;
    const tg_http_request_t *h = &req->client.http;
    const tg_http_header_t *tp = NULL, *ts[8];
    size_t ntp = 0, nts = 0, ts_len = 0;
    for (size_t i = 0; i < h->num_headers; i++) {
        const tg_http_header_t *hd = &h->headers[i];
        if (hd->name_len == 11 && TG_HTTP_NAME_IS(hd, "traceparent")) {
            tp = hd;
            ntp++;
        } else if (hd->name_len == 10 && TG_HTTP_NAME_IS(hd, "tracestate") && hd->value_len) {
            if (nts < 8)
                ts[nts] = hd;
            nts++;
            ts_len += hd->value_len + 1;
        }
    }
    tg_traceparent_t p = {0};
    t->has_parent = ntp == 1 && tg_traceparent_parse(tp->value, tp->value_len, &p) == 0;
    if (t->has_parent) {
        memcpy(t->trace_id, p.trace_id, 16);
        memcpy(t->parent_id, p.parent_id, 8);
        /* tracestate only with the traceparent it belongs to (3.3.1). */
        if (nts > 0 && nts <= 8) {
            char *s = tg_arena_alloc(req->arena, ts_len);
            size_t n = 0;
            for (size_t i = 0; i < nts; i++) {
                if (i > 0)
                    s[n++] = ',';
                memcpy(s + n, ts[i]->value, ts[i]->value_len);
                n += ts[i]->value_len;
            }
            t->tracestate = s;
            t->tracestate_len = n;
        }
    } else {
        random_bytes(t->trace_id, 16);
    }
    random_bytes(t->span_id, 8);
    memcpy(t->up_span, t->span_id, 8);
    const tg_tracing_conf_t *tc = req->cfg->tracing;
    t->sampled = (t->has_parent && (p.flags & 1)) ||
                 tg_trace_ratio_sampled(t->trace_id, tc ? tc->sample_ratio : 0.0);
    t->recording = t->sampled && tc != NULL;
    t->start_ns = req->time.start_us * 1000u;
    t->begun = true;
}

static tg_client_span_t *new_span(tg_request_t *req, const char *upstream, const char *path)
{
    tg_client_span_t *s = tg_arena_calloc(req->arena, sizeof(*s));
    s->start_ns = wall_ns();
    s->upstream = upstream;
    s->path = path;
    s->next = req->trace.clients;
    req->trace.clients = s;
    return s;
}

void tg_trace_attempt(tg_request_t *req)
{
    tg_trace_t *t = &req->trace;
    if (!t->begun)
        return;
    if (t->cur != NULL && t->cur->end_ns == 0)
        t->cur->end_ns = wall_ns();
    random_bytes(t->up_span, 8);
    t->cur = NULL;
    if (!t->recording)
        return;
    tg_client_span_t *s = new_span(req, req->up.pool->conf->name, NULL);
    memcpy(s->span_id, t->up_span, 8);
    s->target = req->up.pool->conf->targets[req->up.target].name;
    s->resend = req->up.attempts > 0 ? req->up.attempts - 1 : 0;
    t->cur = s;
}

void tg_trace_attempt_status(tg_request_t *req, int status)
{
    if (req->trace.cur != NULL)
        req->trace.cur->status = status;
}

void tg_trace_attempt_failed(tg_request_t *req, const char *error)
{
    tg_client_span_t *s = req->trace.cur;
    if (s == NULL)
        return;
    s->error = error;
    if (s->end_ns == 0)
        s->end_ns = wall_ns();
    req->trace.cur = NULL;
}

tg_client_span_t *tg_trace_client(tg_request_t *req, const char *upstream, const char *path,
                                  uint8_t span_id[8])
{
    random_bytes(span_id, 8);
    if (!req->trace.recording)
        return NULL;
    tg_client_span_t *s = new_span(req, upstream, path);
    memcpy(s->span_id, span_id, 8);
    return s;
}

void tg_trace_client_end(tg_client_span_t *s, int status, const char *error)
{
    if (s == NULL || s->end_ns != 0)
        return;
    s->end_ns = wall_ns();
    s->status = status;
    s->error = error;
}

size_t tg_trace_write_headers(const tg_request_t *req, const uint8_t span[8], char *w)
{
    const tg_trace_t *t = &req->trace;
    char *p = w;
    memcpy(p, "traceparent: ", 13);
    p += 13;
    tg_traceparent_format(t->trace_id, span, t->sampled ? 1 : 0, p);
    p += TG_TRACEPARENT_LEN;
    memcpy(p, "\r\n", 2);
    p += 2;
    if (t->tracestate != NULL) {
        memcpy(p, "tracestate: ", 12);
        p += 12;
        memcpy(p, t->tracestate, t->tracestate_len);
        p += t->tracestate_len;
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    return (size_t)(p - w);
}

void tg_trace_fresh_traceparent(char out[56])
{
    uint8_t trace[16], span[8];
    random_bytes(trace, 16);
    random_bytes(span, 8);
    tg_traceparent_format(trace, span, 0, out);
}

void tg_trace_end(tg_request_t *req)
{
    tg_trace_t *t = &req->trace;
    if (!t->recording)
        return;
    uint64_t now = wall_ns();
    for (tg_client_span_t *s = t->clients; s != NULL; s = s->next)
        if (s->end_ns == 0)
            s->end_ns = now;
    size_t len;
    unsigned nspans;
    char *json = tg_span_json(req, now, &len, &nspans);
    if (json != NULL)
        tg_otlp_submit(json, len, nspans);
    t->recording = false;
}

/* ---- include/tollgate/trace.h ---- */

bool tg_request_traced(const tg_request_t *r)
{
    return r->trace.recording;
}

bool tg_request_trace_ids(const tg_request_t *r, char trace_id[33], char span_id[17])
{
    if (!r->trace.begun)
        return false;
    tg_trace_hex(r->trace.trace_id, 16, trace_id);
    tg_trace_hex(r->trace.span_id, 8, span_id);
    return true;
}

static const char *copy_text(tg_request_t *r, const char *s)
{
    size_t n = strnlen(s, SPAN_TEXT_MAX);
    return tg_arena_strndup(r->arena, s, n);
}

static size_t count_items(const tg_trace_t *t)
{
    size_t n = 0;
    for (const tg_span_attr_t *a = t->attrs; a; a = a->next)
        n++;
    for (const tg_span_event_t *e = t->events; e; e = e->next)
        n++;
    return n;
}

int tg_request_span_attr(tg_request_t *r, const char *key, const char *value)
{
    if (key == NULL || key[0] == '\0' || value == NULL)
        return TG_EINVAL;
    tg_trace_t *t = &r->trace;
    if (!t->recording || count_items(t) >= SPAN_ITEMS_MAX)
        return 0;
    tg_span_attr_t *a = tg_arena_calloc(r->arena, sizeof(*a));
    a->key = copy_text(r, key);
    a->value = copy_text(r, value);
    a->next = t->attrs;
    t->attrs = a;
    return 0;
}

int tg_request_span_event(tg_request_t *r, const char *name, const char *key, const char *value)
{
    if (name == NULL || name[0] == '\0' || (key == NULL) != (value == NULL) ||
        (key != NULL && key[0] == '\0'))
        return TG_EINVAL;
    tg_trace_t *t = &r->trace;
    if (!t->recording || count_items(t) >= SPAN_ITEMS_MAX)
        return 0;
    tg_span_event_t *e = tg_arena_calloc(r->arena, sizeof(*e));
    e->time_ns = wall_ns();
    e->name = copy_text(r, name);
    e->key = key ? copy_text(r, key) : NULL;
    e->value = value ? copy_text(r, value) : NULL;
    e->next = t->events;
    t->events = e;
    return 0;
}
