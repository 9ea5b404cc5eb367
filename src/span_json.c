/* OTLP/JSON spans of a request (span_json.h). Written straight into one
 * malloc'ed buffer (no printf, no evbuffer): it runs on the worker for every
 * sampled request, and at sample_ratio 1 its cost is the tracing's cost. */
#include "span_json.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "json_escape.h"
#include "request.h"
#include "trace_context.h"

/* OTLP SpanKind and StatusCode values. */
enum { KIND_SERVER = 2, KIND_CLIENT = 3 };

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
    bool first; /* no attribute written yet in the current list */
} jw_t;

static bool room(jw_t *w, size_t n)
{
    if (w->len + n <= w->cap)
        return true;
    if (w->oom)
        return false;
    size_t cap = w->cap * 2 > w->len + n ? w->cap * 2 : w->len + n + 1024;
    char *p = realloc(w->p, cap);
    if (p == NULL) {
        w->oom = true;
        return false;
    }
    w->p = p;
    w->cap = cap;
    return true;
}

static void put(jw_t *w, const char *s, size_t n)
{
    if (room(w, n)) {
        memcpy(w->p + w->len, s, n);
        w->len += n;
    }
}

#define PUT_LIT(w, lit) put(w, lit, sizeof(lit) - 1)

static void put_u64(jw_t *w, uint64_t v)
{
    char buf[20];
    size_t i = sizeof(buf);
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    put(w, buf + i, sizeof(buf) - i);
}

static void put_hex(jw_t *w, const uint8_t *b, size_t n)
{
    if (room(w, 2 * n + 1)) {
        tg_trace_hex(b, n, w->p + w->len);
        w->len += 2 * n;
    }
}

/* The inside of a JSON string (json_escape.h: pure ASCII out). */
static void put_esc(jw_t *w, const char *s, size_t n)
{
    if (room(w, 6 * n))
        w->len += tg_json_escape_buf(w->p + w->len, s, n);
}

static void sep(jw_t *w)
{
    if (!w->first)
        PUT_LIT(w, ",");
    w->first = false;
}

/* key is one of ours: a literal without anything to escape. */
static void attr_n(jw_t *w, const char *key, const char *v, size_t n)
{
    if (v == NULL)
        return;
    sep(w);
    PUT_LIT(w, "{\"key\":\"");
    put(w, key, strlen(key));
    PUT_LIT(w, "\",\"value\":{\"stringValue\":\"");
    put_esc(w, v, n);
    PUT_LIT(w, "\"}}");
}

static void attr_s(jw_t *w, const char *key, const char *v)
{
    if (v != NULL)
        attr_n(w, key, v, strlen(v));
}

/* A plugin's key: escaped like a value. */
static void attr_any(jw_t *w, const char *key, const char *v)
{
    sep(w);
    PUT_LIT(w, "{\"key\":\"");
    put_esc(w, key, strlen(key));
    PUT_LIT(w, "\",\"value\":{\"stringValue\":\"");
    put_esc(w, v, strlen(v));
    PUT_LIT(w, "\"}}");
}

/* intValue is an int64: a string in the JSON mapping. */
static void attr_i(jw_t *w, const char *key, uint64_t v)
{
    sep(w);
    PUT_LIT(w, "{\"key\":\"");
    put(w, key, strlen(key));
    PUT_LIT(w, "\",\"value\":{\"intValue\":\"");
    put_u64(w, v);
    PUT_LIT(w, "\"}}");
}

static void head(jw_t *w, const uint8_t trace[16], const uint8_t span[8], const uint8_t *parent,
                 const char *name, size_t name_len, int kind, uint64_t start, uint64_t end)
{
    PUT_LIT(w, "{\"traceId\":\"");
    put_hex(w, trace, 16);
    PUT_LIT(w, "\",\"spanId\":\"");
    put_hex(w, span, 8);
    if (parent != NULL) {
        PUT_LIT(w, "\",\"parentSpanId\":\"");
        put_hex(w, parent, 8);
    }
    PUT_LIT(w, "\",\"name\":\"");
    put_esc(w, name, name_len);
    PUT_LIT(w, "\",\"kind\":");
    put_u64(w, (uint64_t)kind);
    PUT_LIT(w, ",\"startTimeUnixNano\":\"");
    put_u64(w, start);
    PUT_LIT(w, "\",\"endTimeUnixNano\":\"");
    put_u64(w, end < start ? start : end);
    PUT_LIT(w, "\",\"attributes\":[");
    w->first = true;
}

static void status(jw_t *w, bool error, const char *msg)
{
    if (!error) {
        PUT_LIT(w, ",\"status\":{\"code\":0}}");
        return;
    }
    PUT_LIT(w, ",\"status\":{\"code\":2");
    if (msg != NULL) {
        PUT_LIT(w, ",\"message\":\"");
        put_esc(w, msg, strlen(msg));
        PUT_LIT(w, "\"");
    }
    PUT_LIT(w, "}}");
}

/* Semantic conventions: a method outside the well-known set is "_OTHER",
 * the original in http.request.method_original. */
static void method_attrs(jw_t *w, const tg_request_t *req)
{
    static const char *const known[] = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                        "CONNECT", "OPTIONS", "TRACE", "PATCH", NULL};
    const tg_http_request_t *h = &req->client.http;
    for (const char *const *k = known; *k; k++) {
        if (strlen(*k) == h->method_len && memcmp(*k, h->method, h->method_len) == 0) {
            attr_n(w, "http.request.method", h->method, h->method_len);
            return;
        }
    }
    attr_s(w, "http.request.method", "_OTHER");
    attr_n(w, "http.request.method_original", h->method, h->method_len);
}

/* "host:port" or "[v6]:port" into server.address / server.port. */
static void address_attrs(jw_t *w, const char *hostport, size_t len, bool port_attr)
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
    attr_n(w, "server.address", h, hl);
    if (port_attr && colon != NULL)
        attr_i(w, "server.port", strtoull(colon + 1, NULL, 10));
}

/* http.route: the route's path template; a prefix ends with a "*" segment. */
static void route_attr(jw_t *w, const tg_route_t *r)
{
    if (r == NULL || r->path == NULL)
        return;
    if (r->path_kind == TG_PATH_EXACT) {
        attr_s(w, "http.route", r->path);
    } else if (r->path_kind == TG_PATH_PREFIX) {
        size_t n = strlen(r->path);
        bool slash = n > 0 && r->path[n - 1] == '/';
        sep(w);
        PUT_LIT(w, "{\"key\":\"http.route\",\"value\":{\"stringValue\":\"");
        put_esc(w, r->path, n);
        if (slash)
            PUT_LIT(w, "*\"}}");
        else
            PUT_LIT(w, "/*\"}}");
    }
}

static void events(jw_t *w, const tg_span_event_t *e)
{
    if (e == NULL)
        return;
    PUT_LIT(w, ",\"events\":[");
    for (bool first = true; e != NULL; e = e->next, first = false) {
        if (!first)
            PUT_LIT(w, ",");
        PUT_LIT(w, "{\"timeUnixNano\":\"");
        put_u64(w, e->time_ns);
        PUT_LIT(w, "\",\"name\":\"");
        put_esc(w, e->name, strlen(e->name));
        PUT_LIT(w, "\",\"attributes\":[");
        w->first = true;
        if (e->key != NULL)
            attr_any(w, e->key, e->value);
        PUT_LIT(w, "]}");
    }
    PUT_LIT(w, "]");
}

static void server_span(jw_t *w, const tg_request_t *req, uint64_t end_ns)
{
    const tg_trace_t *t = &req->trace;
    const tg_http_request_t *h = &req->client.http;
    int st = tg_response_status(req);
    /* semantic conventions: "{method}" without a low-cardinality template */
    head(w, t->trace_id, t->span_id, t->has_parent ? t->parent_id : NULL, h->method,
         h->method_len < 32 ? h->method_len : 32, KIND_SERVER, t->start_ns, end_ns);
    method_attrs(w, req);
    route_attr(w, req->route);
    attr_s(w, "tollgate.route", req->route ? req->route->name : NULL);
    if (req->client.client_path != NULL)
        attr_n(w, "url.path", req->client.client_path, req->client.client_path_len);
    else
        attr_n(w, "url.path", req->client.path, req->client.path_len);
    attr_s(w, "url.scheme", req->conn->tls ? "https" : "http");
    if (req->client.host != NULL)
        address_attrs(w, req->client.host, req->client.host_len, false);
    /* "HTTP/2.0" -> "2", "HTTP/1.1" -> "1.1" (semantic conventions) */
    const char *proto = tg_request_protocol(req);
    attr_s(w, "network.protocol.version", strcmp(proto, "HTTP/2.0") == 0 ? "2" : proto + 5);
    attr_s(w, "client.address", tg_request_client_ip(req));
    attr_s(w, "network.peer.address", req->conn->peer_ip);
    size_t ual;
    const char *ua = tg_request_header(req, "User-Agent", &ual);
    attr_n(w, "user_agent.original", ua, ual);
    attr_n(w, "tollgate.request_id", req->request_id, req->request_id_len);
    if (st > 0)
        attr_i(w, "http.response.status_code", (uint64_t)st);
    /* A SERVER span errs on 5xx only: a 4xx is the client's mistake. */
    bool error = st >= 500 || st <= 0;
    if (error) {
        char code[16];
        size_t n = 0;
        for (int v = st > 0 ? st : 0, d = 100; d > 0; d /= 10)
            code[n++] = (char)('0' + v / d % 10);
        if (st > 0)
            attr_n(w, "error.type", code, n);
        else
            attr_s(w, "error.type", "_OTHER");
    }
    for (const tg_span_attr_t *a = t->attrs; a != NULL; a = a->next)
        attr_any(w, a->key, a->value);
    PUT_LIT(w, "]");
    events(w, t->events);
    status(w, error, st <= 0 ? "no response sent" : NULL);
}

static void client_span(jw_t *w, const tg_request_t *req, const tg_client_span_t *s)
{
    const tg_trace_t *t = &req->trace;
    const tg_http_request_t *h = &req->client.http;
    bool call = s->path != NULL; /* an aggregation call: a GET of ours */
    head(w, t->trace_id, s->span_id, t->span_id, call ? "GET" : h->method,
         call                 ? 3
         : h->method_len < 32 ? h->method_len
                              : 32,
         KIND_CLIENT, s->start_ns, s->end_ns);
    if (call)
        attr_s(w, "http.request.method", "GET");
    else
        method_attrs(w, req);
    if (s->target != NULL)
        address_attrs(w, s->target, strlen(s->target), true);
    attr_s(w, "tollgate.upstream", s->upstream);
    if (call)
        attr_s(w, "url.path", s->path);
    else
        attr_n(w, "url.path", req->client.path, req->client.path_len);
    if (s->resend > 0)
        attr_i(w, "http.request.resend_count", s->resend);
    if (s->status > 0)
        attr_i(w, "http.response.status_code", (uint64_t)s->status);
    /* A CLIENT span errs on 4xx too (semantic conventions). */
    bool error = s->error != NULL || s->status >= 400 || s->status == 0;
    if (error) {
        char code[16];
        size_t n = 0;
        for (int v = s->status, d = 100; d > 0; d /= 10)
            code[n++] = (char)('0' + v / d % 10);
        if (s->error != NULL)
            attr_s(w, "error.type", s->error);
        else if (s->status == 0)
            attr_s(w, "error.type", "no response");
        else
            attr_n(w, "error.type", code, n);
    }
    PUT_LIT(w, "]");
    status(w, error, s->error);
}

/* The thread's scratch buffer, freed when the thread ends (a key, not
 * _Thread_local, for the destructor). */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    jw_t *w = p;
    free(w->p);
    free(w);
}

static void scratch_init(void)
{
    pthread_key_create(&scratch_key, scratch_free);
}

static jw_t *scratch(void)
{
    pthread_once(&scratch_once, scratch_init);
    jw_t *w = pthread_getspecific(scratch_key);
    if (w != NULL)
        return w;
    w = calloc(1, sizeof(*w));
    if (w != NULL && (w->p = malloc(4096)) != NULL && pthread_setspecific(scratch_key, w) == 0) {
        w->cap = 4096;
        return w;
    }
    if (w != NULL)
        free(w->p);
    free(w);
    return NULL;
}

char *tg_span_json(const tg_request_t *req, uint64_t end_ns, size_t *len, unsigned *nspans)
{
    /* Written in the thread's scratch buffer (kept for the next request),
     * then copied out at its exact size: it waits in the exporter's queue. */
    jw_t *w = scratch();
    if (w == NULL)
        return NULL;
    w->len = 0;
    w->oom = false;
    unsigned n = 1;
    server_span(w, req, end_ns);
    for (const tg_client_span_t *s = req->trace.clients; s != NULL; s = s->next, n++) {
        PUT_LIT(w, ",");
        client_span(w, req, s);
    }
    char *out = w->oom ? NULL : malloc(w->len + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, w->p, w->len);
    out[w->len] = '\0';
    *len = w->len;
    *nspans = n;
    return out;
}
