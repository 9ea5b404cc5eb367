/*
 * Each HTTP/2 stream onto the gateway's one request path. A stream's
 * request head (already validated and in HTTP/1.1 form, h2_request.h) and
 * body go into an in-memory stream (stream.h: tg_stream_new_pipe) that the
 * connection code serves like an HTTP/1.1 client's socket: the same head
 * parsing and canonical path, router, plugin chain, upstream pools, error
 * replies and access log. What that connection writes back, an HTTP/1.1
 * response, becomes the stream's HEADERS and DATA here.
 *
 * Backpressure both ways: request body bytes give their window back to the
 * client only once the exchange took them from its input (toward the
 * upstream, which only takes what the upstream accepts); response bytes
 * stop being taken while the stream's buffer is above TG_H2_OUT_HIGH,
 * which stops the exchange's output and, behind it, the upstream reads.
 *
 * Why a pipe and not a second response writer: one head writer and one set
 * of response hooks for every client (design.md, "one response pipeline");
 * the HTTP/1.1 framing between the two halves costs a copy of the head,
 * not a syscall.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
#include "conn.h"
#include "h2_conn.h"
#include "request_head.h"

#define RESP_HEAD_MAX (64u * 1024u)
#define RESP_MAX_HEADERS 256u

typedef enum { RESP_HEAD, RESP_BODY, RESP_DONE } resp_state_t;

typedef struct {
    tg_h2_conn_t *hc;
    tg_h2_stream_t *st; /* NULL once the stream closed */
    tg_stream_t *ps;    /* the exchange's end; NULL once it was freed */
    tg_conn_t *pc;      /* the exchange */
    resp_state_t state;
    bool head_method; /* HEAD: the response has no body whatever it says */
    bool chunked_in;  /* request body chunk-framed toward the exchange */
    bool body_end;    /* the request body ended */
    size_t framing;   /* bytes in the exchange's input that are not body (not credited) */
    tg_body_t body;   /* the response body, de-framed */
} bridge_t;

static bool pipe_write(struct evbuffer *b, void *arg);
static void pipe_closed(void *arg);
static const tg_stream_pipe_t pipe_ops = {pipe_write, pipe_closed};

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
    struct evbuffer *data = tg_h2_stream_in(br->st);
    size_t n = evbuffer_get_length(data);
    if (in == NULL)
        return;
    if (n > 0) {
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

static int on_request(tg_h2_stream_t *st, struct evbuffer *head, bool chunked, bool end_stream,
                      void *arg)
{
    tg_h2_conn_t *hc = arg;
    tg_conn_t *c = hc->c;
    bridge_t *br = calloc(1, sizeof(*br));
    if (br == NULL)
        return -1;
    br->hc = hc;
    br->st = st;
    br->chunked_in = chunked;
    br->body_end = end_stream;
    br->ps = tg_stream_new_pipe(c->worker->base, &pipe_ops, br);
    if (br->ps == NULL) {
        free(br);
        return -1;
    }
    struct evbuffer *in = tg_stream_input(br->ps);
    size_t len = evbuffer_get_length(head);
    const char *p = (const char *)evbuffer_pullup(head, -1);
    br->head_method = len > 5 && memcmp(p, "HEAD ", 5) == 0;
    /* One exchange per stream: the exchange closes after its response. */
    evbuffer_add(in, p, len - 2);
    evbuffer_add(in, "connection: close\r\n\r\n", 21);
    br->framing = len + 19;
    evbuffer_add_cb(in, input_drained, br);
    tg_h2_stream_set_data(st, br);
    br->pc = tg_conn_accept_stream(c->worker, c->listener, br->ps,
                                   (const struct sockaddr *)&c->peer, sizeof(c->peer), c->tls);
    if (br->pc == NULL) { /* the pipe was freed: pipe_closed ran */
        tg_h2_stream_set_data(st, NULL);
        br->st = NULL;
        maybe_free(br);
        return -1;
    }
    move_body(br); /* and the read callback runs from the loop */
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

/* ---- response: exchange -> stream ---- */

/* The response head, HTTP/1.1 -> HEADERS: connection-specific fields go
 * (RFC 9113 section 8.2.2), the rest (Content-Length included) stays. */
static int forward_head(bridge_t *br, struct evbuffer *b)
{
    tg_http_header_t hs[RESP_MAX_HEADERS];
    for (;;) {
        size_t len = evbuffer_get_length(b);
        size_t n = len < RESP_HEAD_MAX ? len : RESP_HEAD_MAX;
        const char *p = (const char *)evbuffer_pullup(b, (ev_ssize_t)n);
        tg_http_response_t resp = {.headers = hs, .num_headers = RESP_MAX_HEADERS};
        int r = tg_http_parse_response(p, n, &resp);
        if (r == TG_HTTP_INCOMPLETE && len < RESP_HEAD_MAX)
            return 0;
        if (r < 0)
            return -1;
        if (resp.status < 200) { /* 100 Continue: the client did not ask us for it */
            evbuffer_drain(b, (size_t)r);
            continue;
        }
        tg_span_t tokens[TG_MAX_CONN_TOKENS];
        unsigned ntok =
            tg_request_connection_tokens(hs, resp.num_headers, tokens, TG_MAX_CONN_TOKENS);
        tg_http_header_t keep[RESP_MAX_HEADERS];
        size_t nk = 0;
        for (size_t i = 0; i < resp.num_headers; i++)
            if (!tg_request_is_hop_header(&hs[i], tokens, ntok))
                keep[nk++] = hs[i];
        tg_body_kind_t kind = tg_http_response_body(&resp, br->head_method);
        bool end = kind == TG_BODY_NONE || (kind == TG_BODY_LENGTH && resp.content_length == 0);
        if (tg_h2_stream_respond(br->st, resp.status, keep, nk, end) < 0)
            return -1;
        evbuffer_drain(b, (size_t)r);
        tg_body_init(&br->body, kind, resp.content_length, 0, false);
        br->state = end ? RESP_DONE : RESP_BODY;
        return 1;
    }
}

static bool pipe_write(struct evbuffer *b, void *arg)
{
    bridge_t *br = arg;
    if (br->st == NULL || br->state == RESP_DONE) { /* nobody to tell */
        evbuffer_drain(b, evbuffer_get_length(b));
        return false;
    }
    if (br->state == RESP_HEAD) {
        int r = forward_head(br, b);
        if (r == 0)
            return false; /* more of the head comes with the next write */
        if (r < 0) {
            tg_h2_stream_reset(br->st, 2 /* INTERNAL_ERROR */);
            br->state = RESP_DONE;
            evbuffer_drain(b, evbuffer_get_length(b));
            tg_h2_conn_kick(br->hc);
            return false;
        }
    }
    bool blocked = false;
    if (br->state == RESP_BODY) {
        struct evbuffer *out = tg_h2_stream_out(br->st);
        int r = tg_body_pump(&br->body, b, out, TG_H2_OUT_HIGH);
        if (r < 0) {
            tg_h2_stream_reset(br->st, 2 /* INTERNAL_ERROR */);
            br->state = RESP_DONE;
        } else {
            if (r == TG_BODY_DONE)
                br->state = RESP_DONE;
            tg_h2_stream_resume(br->st, r == TG_BODY_DONE);
            blocked = r == TG_BODY_MORE && evbuffer_get_length(b) > 0 &&
                      evbuffer_get_length(out) >= TG_H2_OUT_HIGH;
        }
    } else {
        tg_h2_stream_resume(br->st, true); /* a head that ends the stream */
    }
    if (br->state == RESP_DONE)
        evbuffer_drain(b, evbuffer_get_length(b));
    tg_h2_conn_kick(br->hc);
    return blocked;
}

static void on_drained(tg_h2_stream_t *st, void *arg)
{
    (void)arg;
    bridge_t *br = tg_h2_stream_data(st);
    if (br != NULL && br->ps != NULL)
        tg_stream_pipe_writable(br->ps);
}

/* The exchange is over (its connection freed the pipe). A response that did
 * not complete must not look complete: the stream is reset. */
static void pipe_closed(void *arg)
{
    bridge_t *br = arg;
    br->ps = NULL;
    br->pc = NULL;
    if (br->st != NULL && br->state != RESP_DONE) {
        tg_h2_stream_reset(br->st, 2 /* INTERNAL_ERROR */);
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
    .body = on_body,
    .drained = on_drained,
    .closed = on_closed,
};
