#include "response.h"

#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "head_write.h"
#include "request_head.h"

/* How the body reaches the client. */
typedef enum {
    OUT_NONE,    /* no body (HEAD, 204, 304): the upstream's Content-Length kept */
    OUT_LENGTH,  /* Content-Length */
    OUT_CHUNKED, /* HTTP/1.1 client, length unknown (or changed by a plugin) */
    OUT_CLOSE,   /* HTTP/1.0 client, length unknown: ends with the connection */
    OUT_UPGRADE, /* 101 Switching Protocols: the connection becomes a tunnel */
} out_framing_t;

static bool skip_header(const tg_http_header_t *h, const tg_span_t *tokens, unsigned n)
{
    if (tg_request_is_hop_header(h, tokens, n))
        return true;
    return (h->name_len == 14 && TG_HTTP_NAME_IS(h, "content-length")) ||
           (h->name_len == 12 && TG_HTTP_NAME_IS(h, "x-request-id"));
}

static void write_head(tg_request_t *req, const tg_http_response_t *resp, out_framing_t framing,
                       uint64_t length, bool keepalive)
{
    struct evbuffer *out = tg_response_out(req);
    tg_span_t tokens[TG_MAX_CONN_TOKENS];
    unsigned ntok =
        tg_request_connection_tokens(resp->headers, resp->num_headers, tokens, TG_MAX_CONN_TOKENS);
    size_t cap = resp->reason_len + req->request_id_len + 256;
    for (size_t i = 0; i < resp->num_headers; i++)
        cap += resp->headers[i].name_len + resp->headers[i].value_len + 4;
    for (size_t i = 0; i < req->resp.nextra; i++)
        cap += req->resp.extra[i].name_len + req->resp.extra[i].value_len + 4;
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)cap, &v, 1) < 1)
        return;
    char *w = v.iov_base;
    w += sprintf(w, "HTTP/1.1 %03d ", resp->status);
    tg_put(&w, resp->reason, resp->reason_len);
    TG_PUT_LIT(&w, "\r\n");
    const tg_http_header_t *cl = NULL;
    for (size_t i = 0; i < resp->num_headers; i++) {
        const tg_http_header_t *h = &resp->headers[i];
        if (h->name_len == 14 && TG_HTTP_NAME_IS(h, "content-length"))
            cl = h;
        if (!skip_header(h, tokens, ntok))
            tg_put_header(&w, h);
    }
    for (size_t i = 0; i < req->resp.nextra; i++)
        tg_put_header(&w, &req->resp.extra[i]);
    TG_PUT_LIT(&w, "X-Request-Id: ");
    tg_put(&w, req->request_id, req->request_id_len);
    TG_PUT_LIT(&w, "\r\n");
    switch (framing) {
    case OUT_LENGTH:
        w += sprintf(w, "Content-Length: %llu\r\n", (unsigned long long)length);
        break;
    case OUT_NONE:
        /* HEAD and 304 answers keep the length of the representation. */
        if (cl != NULL && resp->status != 204 && resp->status >= 200) {
            TG_PUT_LIT(&w, "Content-Length: ");
            tg_put(&w, cl->value, cl->value_len);
            TG_PUT_LIT(&w, "\r\n");
        }
        break;
    case OUT_CHUNKED:
        TG_PUT_LIT(&w, "Transfer-Encoding: chunked\r\n");
        break;
    case OUT_CLOSE:
        break;
    case OUT_UPGRADE:
        /* Hop-by-hop headers were dropped as usual; this hop's pair is ours
         * (proxy.c let the 101 through only when its Upgrade is websocket). */
        TG_PUT_LIT(&w, "Connection: upgrade\r\nUpgrade: websocket\r\n");
        break;
    }
    if (framing != OUT_UPGRADE) {
        if (!keepalive)
            TG_PUT_LIT(&w, "Connection: close\r\n");
        else if (req->client.http.minor_version == 0)
            TG_PUT_LIT(&w, "Connection: keep-alive\r\n");
    }
    TG_PUT_LIT(&w, "\r\n");
    v.iov_len = (size_t)(w - (char *)v.iov_base);
    req->resp.bytes_out += v.iov_len;
    evbuffer_commit_space(out, &v, 1);
}

/* Framing toward the client when the length is unknown or may change. */
static out_framing_t open_framing(tg_request_t *req)
{
    if (req->client.http.minor_version >= 1)
        return OUT_CHUNKED;
    req->conn->close_after = true;
    return OUT_CLOSE;
}

/* The deferred head of a buffered response keeps its headers past the
 * upstream buffer they pointed into. */
static void keep_head(tg_request_t *req, tg_http_response_t *resp)
{
    tg_http_response_t *k = tg_arena_alloc(req->arena, sizeof(*k));
    *k = *resp;
    k->headers = tg_arena_alloc(req->arena, sizeof(tg_http_header_t) * (resp->num_headers + 1));
    for (size_t i = 0; i < resp->num_headers; i++) {
        const tg_http_header_t *h = &resp->headers[i];
        k->headers[i] =
            (tg_http_header_t){tg_arena_strndup(req->arena, h->name, h->name_len), h->name_len,
                               tg_arena_strndup(req->arena, h->value, h->value_len), h->value_len};
    }
    k->reason = tg_arena_strndup(req->arena, resp->reason, resp->reason_len);
    req->resp.head = k;
}

void tg_response_forward_upgrade(tg_request_t *req, const tg_http_response_t *resp)
{
    write_head(req, resp, OUT_UPGRADE, 0, true);
}

bool tg_response_forward_head(tg_request_t *req, tg_http_response_t *resp, size_t cap)
{
    tg_conn_t *c = req->conn;
    bool client11 = req->client.http.minor_version >= 1;
    tg_body_kind_t kind = tg_http_response_body(resp, req->client.method_bit == TG_METHOD_HEAD);
    bool keepalive = !c->close_after && !c->worker->draining && !c->client_eof &&
                     !(req->client.http.flags & TG_HF_CONN_CLOSE) &&
                     (client11 || (req->client.http.flags & TG_HF_CONN_KEEPALIVE));
    req->up.keepalive = tg_http_response_reusable(resp, req->client.method_bit == TG_METHOD_HEAD);
    if (req->run.chain->has_response_head) {
        req->resp.head = resp;
        req->resp.head_cap = cap;
        int replaced = tg_chain_response_head(req);
        resp = req->resp.head;
        req->resp.head = NULL;
        if (replaced)
            return false;
    }
    req->resp.status = resp->status;
    /* Body hooks run only for responses a plugin asked for: everything else
     * keeps its framing (and its Content-Length). */
    bool transform = req->run.chain->has_response_body && kind != TG_BODY_NONE &&
                     (req->resp.buffer_limit || req->resp.filter);
    out_framing_t framing;
    if (kind == TG_BODY_NONE)
        framing = OUT_NONE;
    else if (kind == TG_BODY_LENGTH && !transform)
        framing = OUT_LENGTH;
    else
        framing = open_framing(req);
    if (framing == OUT_CLOSE || c->close_after)
        keepalive = false;
    if (!keepalive)
        c->close_after = true;
    req->resp.keepalive_client = keepalive;
    tg_body_init(&req->resp.body, kind, resp->content_length, 0,
                 framing == OUT_CHUNKED && !transform);
    if (transform) {
        req->resp.tmp = evbuffer_new();
        req->resp.chunked_out = framing == OUT_CHUNKED;
        if (req->resp.buffer_limit) {
            req->resp.buffering = true;
            req->resp.head_pending = true;
            keep_head(req, resp);
            return true;
        }
    }
    write_head(req, resp, framing, resp->content_length, keepalive);
    return true;
}

/* The head kept by keep_head() goes out. */
static void write_pending_head(tg_request_t *req, out_framing_t framing, uint64_t length)
{
    tg_http_response_t *resp = req->resp.head;
    req->resp.head = NULL;
    req->resp.head_pending = false;
    write_head(req, resp, framing, length, req->resp.keepalive_client);
}

/* Frames what the hooks left in resp.tmp toward the client. */
static void emit(tg_request_t *req, struct evbuffer *out, bool last)
{
    size_t n = evbuffer_get_length(req->resp.tmp);
    size_t before = evbuffer_get_length(out);
    if (req->resp.chunked_out && n > 0)
        evbuffer_add_printf(out, "%zx\r\n", n);
    evbuffer_add_buffer(out, req->resp.tmp);
    if (req->resp.chunked_out && n > 0)
        evbuffer_add(out, "\r\n", 2);
    if (req->resp.chunked_out && last)
        evbuffer_add(out, "0\r\n\r\n", 5);
    req->resp.bytes_out += evbuffer_get_length(out) - before;
}

/* Buffered mode: the whole body, then the hooks once, then an exact
 * Content-Length. Too large: give up and stream it through the hooks (-3).
 * The head goes out only after the hooks accepted the body (or its first
 * piece), so that a hook refusing it can still replace the response. */
static int pump_buffered(tg_request_t *req, int r, struct evbuffer *out)
{
    /* Over the limit even when complete: one read may bring a whole body
     * larger than it (tg_body_pump stops after max_out, not at it). */
    bool over = evbuffer_get_length(req->resp.tmp) > req->resp.buffer_limit;
    if (r != TG_BODY_DONE && !over)
        return TG_BODY_MORE;
    if (over) {
        req->resp.buffering = false;
        return -3; /* continue as a stream */
    }
    if (tg_chain_body(req, true, req->resp.tmp, true) < 0)
        return TG_BODY_ERROR;
    req->resp.chunked_out = false;
    write_pending_head(req, OUT_LENGTH, evbuffer_get_length(req->resp.tmp));
    emit(req, out, true);
    return TG_BODY_DONE;
}

struct evbuffer *tg_response_out(tg_request_t *req)
{
    return req->resp.stage ? req->resp.stage : tg_stream_output(req->conn->s);
}

int tg_response_pump(tg_request_t *req, struct evbuffer *in, bool eof)
{
    struct evbuffer *out = tg_response_out(req);
    if (req->resp.tmp == NULL) {
        size_t before = evbuffer_get_length(out);
        int r = tg_body_pump(&req->resp.body, in, out, TG_OUT_HIGH);
        if (r == TG_BODY_MORE && eof && evbuffer_get_length(in) == 0)
            r = tg_body_eof(&req->resp.body, out);
        req->resp.bytes_out += evbuffer_get_length(out) - before;
        return r;
    }
    if (!req->resp.buffering && evbuffer_get_length(out) > TG_OUT_HIGH)
        return TG_BODY_MORE;
    size_t max = req->resp.buffering ? req->resp.buffer_limit + 1 : TG_OUT_HIGH;
    int r = tg_body_pump(&req->resp.body, in, req->resp.tmp, max);
    if (r == TG_BODY_MORE && eof && evbuffer_get_length(in) == 0)
        r = tg_body_eof(&req->resp.body, req->resp.tmp);
    if (r < 0)
        return r;
    if (req->resp.buffering) {
        int b = pump_buffered(req, r, out);
        if (b != -3)
            return b;
    }
    bool last = r == TG_BODY_DONE;
    if (tg_chain_body(req, true, req->resp.tmp, last) < 0)
        return TG_BODY_ERROR;
    if (req->resp.head_pending) /* a buffered body that outgrew its limit */
        write_pending_head(req, req->resp.chunked_out ? OUT_CHUNKED : OUT_CLOSE, 0);
    emit(req, out, last);
    return r;
}

void tg_response_drop_filters(tg_request_t *req)
{
    req->resp.head = NULL;
    req->resp.head_pending = false;
    req->resp.buffering = false;
    req->resp.buffer_limit = 0;
    req->resp.filter = false;
    req->resp.replaced = true;
}

bool tg_response_head_sent(const tg_request_t *req)
{
    return req->resp.stage == NULL && !req->resp.head_pending;
}
