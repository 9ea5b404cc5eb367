/*
 * Each HTTP/2 stream onto the gateway's one request path. A stream's
 * request head (validated, in HTTP/1.1 form: h2_request.h) and body go into
 * an in-memory stream (stream.h: tg_stream_new_pipe) that the connection
 * code reads like an HTTP/1.1 client's socket: the same head parsing and
 * canonical path, limits and timeouts, dispatch (router, plugin chain,
 * upstream pools), error replies and access log. The response comes back
 * through the response pipeline's protocol interface (proto.h), which this
 * file implements for a stream: heads become HEADERS, body bytes DATA.
 *
 * Backpressure both ways: request body bytes give their window back to the
 * client only once the exchange took them from its input (toward the
 * upstream, which takes what the upstream accepts); response bytes wait in
 * the stream's buffer, whose length is the protocol's pending(), so the
 * upstream is read no faster than the client's windows let them out.
 *
 * Why the request side keeps HTTP/1.1 bytes: one parser and one set of
 * rules for what a client may send (request_head.c) whatever the protocol;
 * a head is copied once in memory, never through a syscall.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "dispatch.h"
#include "h2_conn.h"
#include "proto.h"
#include "request_head.h"

/* Connection options read from a response (the names its Connection lists). */
#define MAX_CONN_TOKENS 8

typedef struct {
    tg_h2_conn_t *hc;
    tg_h2_stream_t *st; /* NULL once the stream closed */
    tg_stream_t *ps;    /* the exchange's end; NULL once it was freed */
    tg_conn_t *pc;      /* the exchange */
    bool chunked_in;    /* request body chunk-framed toward the exchange */
    bool body_end;      /* the request body ended */
    bool done;          /* the response completed (proto end) */
    bool held;          /* proto hold(): the head and body wait for release() */
    size_t framing;     /* bytes in the exchange's input that are not body (not credited) */
    /* A head held back (hold()), copied into the request's arena. */
    int held_status;
    tg_http_header_t *held_fields;
    size_t held_n;
    bool held_end;
    bool head_waiting;
} bridge_t;

static bool pipe_write(struct evbuffer *b, void *arg);
static void pipe_closed(void *arg);
static const tg_stream_pipe_t pipe_ops = {pipe_write, pipe_closed};
static const tg_proto_t h2_proto;

static void maybe_free(bridge_t *br)
{
    if (br->st == NULL && br->ps == NULL)
        free(br);
}

/* ---- request: stream -> exchange ---- */

/* The exchange took n bytes from its input: as many body bytes (framing
 * first) go back to the client as window. */
static void input_drained(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    bridge_t *br = arg;
    size_t n = info->n_deleted;
    if (n == 0 || br->st == NULL)
        return;
    size_t skip = n < br->framing ? n : br->framing;
    br->framing -= skip;
    if (n > skip) {
        tg_h2_stream_consumed(br->st, n - skip);
        tg_h2_conn_kick(br->hc);
    }
}

static void move_body(bridge_t *br)
{
    struct evbuffer *in = tg_stream_input(br->ps);
    size_t n = tg_h2_stream_in_length(br->st);
    if (in == NULL)
        return;
    if (n > 0) {
        struct evbuffer *data = tg_h2_stream_in(br->st);
        if (br->chunked_in) {
            char line[24];
            int k = snprintf(line, sizeof(line), "%zx\r\n", n);
            evbuffer_add(in, line, (size_t)k);
            br->framing += (size_t)k + 2;
        }
        evbuffer_add_buffer(in, data);
        if (br->chunked_in)
            evbuffer_add(in, "\r\n", 2);
    }
    if (br->body_end && br->chunked_in) {
        evbuffer_add(in, "0\r\n\r\n", 5);
        br->framing += 5;
        br->chunked_in = false; /* once */
    }
    tg_stream_pipe_input(br->ps);
}

/* The stream's exchange: an in-memory stream and a connection reading it. */
static bridge_t *exchange(tg_h2_stream_t *st, tg_h2_conn_t *hc, bool chunked, bool end_stream)
{
    tg_conn_t *c = hc->c;
    bridge_t *br = calloc(1, sizeof(*br));
    if (br == NULL)
        return NULL;
    br->hc = hc;
    br->st = st;
    br->chunked_in = chunked;
    br->body_end = end_stream;
    br->ps = tg_stream_new_pipe(c->worker->base, &pipe_ops, br);
    if (br->ps == NULL) {
        free(br);
        return NULL;
    }
    evbuffer_add_cb(tg_stream_input(br->ps), input_drained, br);
    tg_h2_stream_set_data(st, br);
    br->pc =
        tg_conn_accept_stream(c->worker, c->listener, br->ps, (const struct sockaddr *)&c->peer,
                              sizeof(c->peer), c->tls, &h2_proto, br);
    if (br->pc == NULL) { /* the pipe was freed: pipe_closed ran */
        tg_h2_stream_set_data(st, NULL);
        br->st = NULL;
        maybe_free(br);
        return NULL;
    }
    br->pc->tls_info = c->tls_info; /* borrowed: the streams end before their connection */
    return br;
}

static int on_request(tg_h2_stream_t *st, struct evbuffer *head, bool chunked, bool end_stream,
                      void *arg)
{
    bridge_t *br = exchange(st, arg, chunked, end_stream);
    if (br == NULL)
        return -1;
    /* The exchange reads the head from the loop, like a socket's bytes. */
    br->framing = evbuffer_get_length(head);
    evbuffer_add_buffer(tg_stream_input(br->ps), head);
    move_body(br);
    return 0;
}

/* Answered like a head the HTTP/1.1 parser refuses (same reply, logged and
 * counted); the exchange then ends. */
static int on_reject(tg_h2_stream_t *st, int status, const char *msg, void *arg)
{
    bridge_t *br = exchange(st, arg, false, true);
    if (br == NULL)
        return -1;
    tg_conn_reject(br->pc, status, msg);
    return 0;
}

static void on_body(tg_h2_stream_t *st, bool end, void *arg)
{
    (void)arg;
    bridge_t *br = tg_h2_stream_data(st);
    if (br == NULL || br->ps == NULL)
        return;
    if (end)
        br->body_end = true;
    move_body(br);
}

/* ---- response: the protocol of the exchange (proto.h) ---- */

static bridge_t *bridge_of(const tg_request_t *req)
{
    return req->conn->proto_data;
}

/* Nothing writes HTTP/1.1 bytes to the exchange's output (responses go
 * through h2_proto): whatever would is dropped. */
static bool pipe_write(struct evbuffer *b, void *arg)
{
    (void)arg;
    evbuffer_drain(b, evbuffer_get_length(b));
    return false;
}

static bool drop_field(const tg_http_header_t *h, const tg_span_t *tokens, unsigned ntok)
{
    /* RFC 9113 section 8.2.2: connection-specific fields are not sent. */
    if (tg_request_is_hop_header(h, tokens, ntok))
        return true;
    return (h->name_len == 14 && TG_HTTP_NAME_IS(h, "content-length")) ||
           (h->name_len == 12 && TG_HTTP_NAME_IS(h, "x-request-id"));
}

/* The head's fields for HEADERS, in the request's arena: the response's
 * end-to-end fields, the added ones, X-Request-Id and Content-Length (as
 * HTTP/1.1's head writer decides them: h1_head.c). keep: copy the bytes
 * too (a held head outlives the upstream buffer they point into). */
static size_t build_fields(tg_request_t *req, const tg_http_response_t *resp, tg_out_kind_t kind,
                           uint64_t length, bool keep, tg_http_header_t **out)
{
    tg_span_t tokens[MAX_CONN_TOKENS];
    unsigned ntok =
        tg_request_connection_tokens(resp->headers, resp->num_headers, tokens, MAX_CONN_TOKENS);
    size_t cap = resp->num_headers + req->resp.nextra + 2;
    tg_http_header_t *hs = tg_arena_alloc(req->arena, cap * sizeof(*hs));
    const tg_http_header_t *cl = NULL;
    size_t n = 0;
    for (size_t i = 0; i < resp->num_headers; i++) {
        const tg_http_header_t *h = &resp->headers[i];
        if (h->name_len == 14 && TG_HTTP_NAME_IS(h, "content-length"))
            cl = h;
        if (!drop_field(h, tokens, ntok))
            hs[n++] = *h;
    }
    for (size_t i = 0; i < req->resp.nextra; i++)
        hs[n++] = req->resp.extra[i];
    hs[n++] = (tg_http_header_t){"x-request-id", 12, req->request_id, req->request_id_len};
    if (kind == TG_OUT_LENGTH) {
        char *v = tg_arena_alloc(req->arena, 24);
        int k = snprintf(v, 24, "%llu", (unsigned long long)length);
        hs[n++] = (tg_http_header_t){"content-length", 14, v, (size_t)k};
    } else if (kind == TG_OUT_NONE && cl != NULL && resp->status != 204 && resp->status >= 200) {
        hs[n++] = (tg_http_header_t){"content-length", 14, cl->value, cl->value_len};
    }
    for (size_t i = 0; keep && i < n; i++) {
        hs[i].name = tg_arena_strndup(req->arena, hs[i].name, hs[i].name_len);
        hs[i].value = tg_arena_strndup(req->arena, hs[i].value, hs[i].value_len);
    }
    *out = hs;
    return n;
}

static void submit(bridge_t *br, int status, const tg_http_header_t *hs, size_t n, bool end)
{
    if (tg_h2_stream_respond(br->st, status, hs, n, end) < 0)
        tg_h2_stream_reset(br->st, TG_H2_INTERNAL_ERROR);
    tg_h2_conn_kick(br->hc);
}

static void h2_head(tg_request_t *req, const tg_http_response_t *resp, tg_out_kind_t kind,
                    uint64_t length)
{
    bridge_t *br = bridge_of(req);
    if (br->st == NULL)
        return;
    tg_http_header_t *hs;
    size_t n = build_fields(req, resp, kind, length, br->held, &hs);
    /* 101 never happens: an Upgrade request is malformed in HTTP/2. */
    bool end = kind == TG_OUT_NONE || (kind == TG_OUT_LENGTH && length == 0);
    for (size_t i = 0; i < n; i++)
        req->resp.bytes_out += hs[i].name_len + hs[i].value_len + 4;
    if (br->held) {
        br->held_status = resp->status;
        br->held_fields = hs;
        br->held_n = n;
        br->held_end = end;
        br->head_waiting = true;
        return;
    }
    submit(br, resp->status, hs, n, end);
}

static void h2_body(tg_request_t *req, struct evbuffer *data)
{
    bridge_t *br = bridge_of(req);
    size_t n = evbuffer_get_length(data);
    if (br->st == NULL) {
        evbuffer_drain(data, n);
        return;
    }
    req->resp.bytes_out += n;
    evbuffer_add_buffer(tg_h2_stream_out(br->st), data);
    if (!br->held) {
        tg_h2_stream_resume(br->st, false);
        tg_h2_conn_kick(br->hc);
    }
}

static void h2_end(tg_request_t *req)
{
    bridge_t *br = bridge_of(req);
    br->done = true;
    if (br->st != NULL) {
        tg_h2_stream_resume(br->st, true);
        tg_h2_conn_kick(br->hc);
    }
    tg_conn_request_done(req->conn); /* the exchange closes: br may be gone */
}

/* A response that cannot complete must not look complete: the stream is
 * reset (HTTP/1.1 closes the connection). */
static void h2_abort(tg_request_t *req)
{
    bridge_t *br = bridge_of(req);
    if (br->st != NULL) {
        tg_h2_stream_reset(br->st, TG_H2_INTERNAL_ERROR);
        tg_h2_conn_kick(br->hc);
    }
    tg_conn_fail(req->conn);
}

static void h2_interim(tg_request_t *req, int status)
{
    bridge_t *br = bridge_of(req);
    if (br->st != NULL) {
        tg_h2_stream_interim(br->st, status);
        tg_h2_conn_kick(br->hc);
    }
}

static void h2_hold(tg_request_t *req)
{
    bridge_of(req)->held = true;
}

static void h2_release(tg_request_t *req, bool send)
{
    bridge_t *br = bridge_of(req);
    bool waiting = br->head_waiting;
    br->held = false;
    br->head_waiting = false;
    if (br->st == NULL)
        return;
    if (!send) {
        struct evbuffer *out = tg_h2_stream_out(br->st);
        evbuffer_drain(out, evbuffer_get_length(out));
        return;
    }
    if (waiting)
        submit(br, br->held_status, br->held_fields, br->held_n, br->held_end);
    tg_h2_stream_resume(br->st, false);
    tg_h2_conn_kick(br->hc);
}

static size_t h2_pending(const tg_request_t *req)
{
    bridge_t *br = bridge_of(req);
    return br->st != NULL ? tg_h2_stream_pending(br->st) : 0;
}

static struct evbuffer *h2_input(tg_request_t *req)
{
    return tg_stream_input(req->conn->s);
}

static void h2_input_done(tg_request_t *req)
{
    tg_stream_set_timeouts(req->conn->s, 0, 0);
}

static const tg_proto_t h2_proto = {
    .name = "h2",
    .head = h2_head,
    .body = h2_body,
    .end = h2_end,
    .abort = h2_abort,
    .interim = h2_interim,
    .hold = h2_hold,
    .release = h2_release,
    .pending = h2_pending,
    .input = h2_input,
    .input_done = h2_input_done,
};

/* The stream's buffer fell to its low mark: the exchange may go on reading
 * its upstream. */
static void on_drained(tg_h2_stream_t *st, void *arg)
{
    (void)arg;
    bridge_t *br = tg_h2_stream_data(st);
    if (br != NULL && br->pc != NULL && br->pc->state == TG_CONN_ACTIVE && br->pc->req != NULL)
        tg_dispatch_client_drained(br->pc->req);
}

/* The exchange is over (its connection freed the pipe). A response that did
 * not complete must not look complete: the stream is reset. */
static void pipe_closed(void *arg)
{
    bridge_t *br = arg;
    br->ps = NULL;
    br->pc = NULL;
    if (br->st != NULL && !br->done) {
        tg_h2_stream_reset(br->st, TG_H2_INTERNAL_ERROR);
        tg_h2_conn_kick(br->hc);
    }
    maybe_free(br);
}

/* The stream closed (complete, or reset by the client): an exchange still
 * running is aborted, its upstream request with it. */
static void on_closed(tg_h2_stream_t *st, void *arg)
{
    (void)arg;
    bridge_t *br = tg_h2_stream_data(st);
    if (br == NULL)
        return;
    br->st = NULL;
    if (br->pc != NULL) {
        evbuffer_remove_cb(tg_stream_input(br->ps), input_drained, br);
        tg_conn_abort(br->pc); /* -> pipe_closed, which frees br */
        return;
    }
    maybe_free(br);
}

const tg_h2_handler_t tg_h2_bridge = {
    .request = on_request,
    .reject = on_reject,
    .body = on_body,
    .drained = on_drained,
    .closed = on_closed,
};
