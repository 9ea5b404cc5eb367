/* OTLP/JSON spans of a request (span_json.h). */
#include "span_json.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "json_escape.h"
#include "request.h"
#include "trace_context.h"

/* OTLP SpanKind and StatusCode values. */
enum { KIND_SERVER = 2, KIND_CLIENT = 3 };
enum { STATUS_UNSET = 0, STATUS_ERROR = 2 };

typedef struct {
    struct evbuffer *b;
    bool first; /* no attribute written yet in the current list */
} out_t;

static void str(out_t *o, const char *s, size_t n)
{
    evbuffer_add(o->b, "\"", 1);
    tg_json_escape(o->b, s, n);
    evbuffer_add(o->b, "\"", 1);
}

static void sep(out_t *o)
{
    if (!o->first)
        evbuffer_add(o->b, ",", 1);
    o->first = false;
}

static void attr_n(out_t *o, const char *key, const char *v, size_t n)
{
    if (v == NULL)
        return;
    sep(o);
    evbuffer_add_printf(o->b, "{\"key\":\"%s\",\"value\":{\"stringValue\":", key);
    str(o, v, n);
    evbuffer_add(o->b, "}}", 2);
}

static void attr_s(out_t *o, const char *key, const char *v)
{
    if (v != NULL)
        attr_n(o, key, v, strlen(v));
}

/* intValue is an int64: a string in the JSON mapping. */
static void attr_i(out_t *o, const char *key, long long v)
{
    sep(o);
    evbuffer_add_printf(o->b, "{\"key\":\"%s\",\"value\":{\"intValue\":\"%lld\"}}", key, v);
}

static void ids(out_t *o, const uint8_t trace[16], const uint8_t span[8], const uint8_t *parent)
{
    char t[33], s[17], p[17];
    tg_trace_hex(trace, 16, t);
    tg_trace_hex(span, 8, s);
    evbuffer_add_printf(o->b, "{\"traceId\":\"%s\",\"spanId\":\"%s\"", t, s);
    if (parent != NULL) {
        tg_trace_hex(parent, 8, p);
        evbuffer_add_printf(o->b, ",\"parentSpanId\":\"%s\"", p);
    }
}

static void times(out_t *o, uint64_t start, uint64_t end)
{
    evbuffer_add_printf(o->b, ",\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\"",
                        (unsigned long long)start, (unsigned long long)(end < start ? start : end));
}

static void status(out_t *o, bool error, const char *msg)
{
    if (!error) {
        evbuffer_add_printf(o->b, ",\"status\":{\"code\":%d}", STATUS_UNSET);
        return;
    }
    evbuffer_add_printf(o->b, ",\"status\":{\"code\":%d", STATUS_ERROR);
    if (msg != NULL) {
        evbuffer_add(o->b, ",\"message\":", 11);
        str(o, msg, strlen(msg));
    }
    evbuffer_add(o->b, "}", 1);
}

/* Semantic conventions: a method outside the well-known set is "_OTHER",
 * the original in http.request.method_original. */
static void method_attrs(out_t *o, const tg_request_t *req)
{
    static const char *const known[] = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                        "CONNECT", "OPTIONS", "TRACE", "PATCH", NULL};
    const tg_http_request_t *h = &req->client.http;
    for (const char *const *k = known; *k; k++) {
        if (strlen(*k) == h->method_len && memcmp(*k, h->method, h->method_len) == 0) {
            attr_n(o, "http.request.method", h->method, h->method_len);
            return;
        }
    }
    attr_s(o, "http.request.method", "_OTHER");
    attr_n(o, "http.request.method_original", h->method, h->method_len);
}

/* "host:port" or "[v6]:port" into server.address / server.port. */
static void address_attrs(out_t *o, const char *hostport, size_t len, bool port_attr)
{
    const char *colon = NULL;
    for (size_t i = len; i > 0; i--) {
        if (hostport[i - 1] == ':') {
            colon = hostport + i - 1;
            break;
        }
        if (hostport[i - 1] == ']')
            break;
    }
    size_t hl = colon ? (size_t)(colon - hostport) : len;
    const char *h = hostport;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    attr_n(o, "server.address", h, hl);
    if (port_attr && colon != NULL)
        attr_i(o, "server.port", strtol(colon + 1, NULL, 10));
}

/* http.route: the route's path template; a prefix ends with a "*" segment. */
static void route_attr(out_t *o, const tg_route_t *r, char *buf, size_t cap)
{
    if (r == NULL || r->path == NULL)
        return;
    if (r->path_kind == TG_PATH_EXACT) {
        attr_s(o, "http.route", r->path);
    } else if (r->path_kind == TG_PATH_PREFIX) {
        size_t n = strlen(r->path);
        bool slash = n > 0 && r->path[n - 1] == '/';
        if (n + 3 > cap)
            return;
        memcpy(buf, r->path, n);
        memcpy(buf + n, slash ? "*" : "/*", slash ? 2 : 3);
        attr_s(o, "http.route", buf);
    }
}

static void events(out_t *o, const tg_span_event_t *e)
{
    if (e == NULL)
        return;
    evbuffer_add(o->b, ",\"events\":[", 11);
    for (bool first = true; e != NULL; e = e->next, first = false) {
        evbuffer_add_printf(o->b, "%s{\"timeUnixNano\":\"%llu\",\"name\":", first ? "" : ",",
                            (unsigned long long)e->time_ns);
        out_t a = {.b = o->b, .first = true};
        str(&a, e->name, strlen(e->name));
        evbuffer_add(o->b, ",\"attributes\":[", 15);
        if (e->key != NULL) {
            sep(&a);
            evbuffer_add(o->b, "{\"key\":", 7);
            str(&a, e->key, strlen(e->key));
            evbuffer_add(o->b, ",\"value\":{\"stringValue\":", 24);
            str(&a, e->value, strlen(e->value));
            evbuffer_add(o->b, "}}", 2);
        }
        evbuffer_add(o->b, "]}", 2);
    }
    evbuffer_add(o->b, "]", 1);
}

static void server_span(out_t *o, const tg_request_t *req, uint64_t end_ns)
{
    const tg_trace_t *t = &req->trace;
    const tg_route_t *route = req->route;
    int st = tg_response_status(req);
    char name[300], rbuf[256];
    size_t ml = req->client.http.method_len < 32 ? req->client.http.method_len : 32;
    o->first = true;
    ids(o, t->trace_id, t->span_id, t->has_parent ? t->parent_id : NULL);
    out_t attrs = {.b = o->b, .first = true};
    evbuffer_add(o->b, ",\"name\":", 8);
    memcpy(name, req->client.http.method, ml);
    name[ml] = '\0';
    str(o, name, ml); /* semantic conventions: "{method}" without a route template */
    evbuffer_add_printf(o->b, ",\"kind\":%d", KIND_SERVER);
    times(o, t->start_ns, end_ns);
    evbuffer_add(o->b, ",\"attributes\":[", 15);
    method_attrs(&attrs, req);
    route_attr(&attrs, route, rbuf, sizeof(rbuf));
    attr_s(&attrs, "tollgate.route", route ? route->name : NULL);
    attr_n(&attrs, "url.path", req->client.client_path ? req->client.client_path : req->client.path,
           req->client.client_path ? req->client.client_path_len : req->client.path_len);
    attr_s(&attrs, "url.scheme", req->conn->tls ? "https" : "http");
    if (req->client.host != NULL)
        address_attrs(&attrs, req->client.host, req->client.host_len, false);
    attr_s(&attrs, "network.protocol.version", req->client.http.minor_version == 0 ? "1.0" : "1.1");
    attr_s(&attrs, "client.address", tg_request_client_ip(req));
    attr_s(&attrs, "network.peer.address", req->conn->peer_ip);
    size_t ual;
    const char *ua = tg_request_header(req, "User-Agent", &ual);
    attr_n(&attrs, "user_agent.original", ua, ual);
    attr_n(&attrs, "tollgate.request_id", req->request_id, req->request_id_len);
    if (st > 0)
        attr_i(&attrs, "http.response.status_code", st);
    char code[16];
    snprintf(code, sizeof(code), "%d", st);
    /* A SERVER span errs on 5xx only: a 4xx is the client's mistake. */
    bool error = st >= 500 || st == 0;
    if (error)
        attr_s(&attrs, "error.type", st == 0 ? "_OTHER" : code);
    for (const tg_span_attr_t *a = t->attrs; a != NULL; a = a->next)
        attr_s(&attrs, a->key, a->value);
    evbuffer_add(o->b, "]", 1);
    events(o, t->events);
    status(o, error, st == 0 ? "no response sent" : NULL);
    evbuffer_add(o->b, "}", 1);
}

static void client_span(out_t *o, const tg_request_t *req, const tg_client_span_t *s)
{
    const tg_trace_t *t = &req->trace;
    char name[40];
    size_t ml = req->client.http.method_len < 32 ? req->client.http.method_len : 32;
    const char *method = s->path != NULL ? "GET" : NULL; /* aggregation calls are GETs */
    if (method == NULL) {
        memcpy(name, req->client.http.method, ml);
        name[ml] = '\0';
    } else {
        ml = strlen(method);
        memcpy(name, method, ml + 1);
    }
    ids(o, t->trace_id, s->span_id, t->span_id);
    evbuffer_add(o->b, ",\"name\":", 8);
    str(o, name, ml);
    evbuffer_add_printf(o->b, ",\"kind\":%d", KIND_CLIENT);
    times(o, s->start_ns, s->end_ns);
    evbuffer_add(o->b, ",\"attributes\":[", 15);
    out_t attrs = {.b = o->b, .first = true};
    if (method != NULL)
        attr_s(&attrs, "http.request.method", method);
    else
        method_attrs(&attrs, req);
    if (s->target != NULL)
        address_attrs(&attrs, s->target, strlen(s->target), true);
    attr_s(&attrs, "tollgate.upstream", s->upstream);
    if (s->path != NULL)
        attr_s(&attrs, "url.path", s->path);
    else
        attr_n(&attrs, "url.path", req->client.path, req->client.path_len);
    if (s->resend > 0)
        attr_i(&attrs, "http.request.resend_count", s->resend);
    if (s->status > 0)
        attr_i(&attrs, "http.response.status_code", s->status);
    char code[16];
    snprintf(code, sizeof(code), "%d", s->status);
    /* A CLIENT span errs on 4xx too (semantic conventions). */
    bool error = s->error != NULL || s->status >= 400 || s->status == 0;
    if (error)
        attr_s(&attrs, "error.type", s->error ? s->error : s->status == 0 ? "no response" : code);
    evbuffer_add(o->b, "]", 1);
    status(o, error, s->error);
    evbuffer_add(o->b, "}", 1);
}

char *tg_span_json(const tg_request_t *req, uint64_t end_ns, size_t *len, unsigned *nspans)
{
    struct evbuffer *b = evbuffer_new();
    if (b == NULL)
        return NULL;
    out_t o = {.b = b};
    unsigned n = 1;
    server_span(&o, req, end_ns);
    for (const tg_client_span_t *s = req->trace.clients; s != NULL; s = s->next, n++) {
        evbuffer_add(b, ",", 1);
        client_span(&o, req, s);
    }
    *len = evbuffer_get_length(b);
    char *out = malloc(*len + 1);
    if (out != NULL) {
        evbuffer_remove(b, out, *len);
        out[*len] = '\0';
    }
    evbuffer_free(b);
    *nspans = n;
    return out;
}
