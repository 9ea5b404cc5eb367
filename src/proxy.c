#include "proxy.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "aggregate.h"
#include "conn.h"
#include "field_list.h"
#include "head_write.h"
#include "http_response.h"
#include "log.h"
#include "request_head.h"
#include "response.h"
#include "route_action.h"
#include "router.h"
#include "tollgate/clock.h"
#include "trace_span.h"
#include "traffic_metrics.h"
#include "tunnel.h"

/* A response head larger than this from an upstream is a broken upstream. */
#define RESP_HEAD_MAX (64u * 1024u)
#define RESP_MAX_HEADERS 256u
/* A pooled connection closed under us before any response byte is retried
 * on another connection this many times, without using up `retries`. */
#define STALE_RETRIES 2

static bool pump_request(tg_req_t *req);
static bool pump_response(tg_req_t *req);
static void attempt(tg_req_t *req);
static void send_refusal(tg_req_t *req);

static bool idempotent(uint32_t m)
{
    return (m & (TG_METHOD_GET | TG_METHOD_HEAD | TG_METHOD_PUT | TG_METHOD_DELETE |
                 TG_METHOD_OPTIONS | TG_METHOD_TRACE)) != 0;
}

/* Upstream timeouts: the response timeout runs only once the whole request
 * is sent, so a long upload is not mistaken for a silent upstream. */
static void set_upstream_timeouts(tg_req_t *req)
{
    const tg_upstream_conf_t *u = req->pool->conf;
    if (!req->up->connected)
        tg_stream_set_timeouts(req->up->s, 0, u->connect_timeout_ms);
    else
        tg_stream_set_timeouts(req->up->s, req->body.done ? u->timeout_ms : 0, u->timeout_ms);
}

static void close_upstream(tg_req_t *req)
{
    if (req->up != NULL) {
        tg_upool_release(req->up, false);
        req->up = NULL;
    }
}

void tg_proxy_release(tg_req_t *req)
{
    close_upstream(req);
}

static bool can_retry(const tg_req_t *req, bool stale)
{
    if (req->up_state != TG_UP_SENDING || req->no_retry || req->body_started ||
        !idempotent(req->method_bit))
        return false;
    if (req->body.kind != TG_BODY_NONE &&
        !(req->body.kind == TG_BODY_LENGTH && req->body.remaining == 0))
        return false;
    if (stale)
        return req->stale_retries < STALE_RETRIES;
    return req->attempts <= req->pool->conf->retries;
}

/* An upstream failure at warn, with what an operator acts on: the target,
 * the phase (connect, read, write, timeout) and the error. Identical lines
 * are held back and counted by the log (log.h). */
static void log_failure(tg_req_t *req, tg_log_level_t level, const char *phase, int err)
{
    const tg_upstream_conf_t *u = req->pool->conf;
    const char *target = u->targets[req->target].name;
    if (err != 0)
        tg_request_log(req, level, "upstream %s: target %s: %s failed: %s (errno %d)", u->name,
                       target, phase, strerror(err), err);
    else if (strcmp(phase, "timeout") == 0)
        tg_request_log(req, level, "upstream %s: target %s: timed out %s", u->name, target,
                       req->up != NULL && req->up->connected ? "waiting for the response"
                                                             : "connecting");
    else
        tg_request_log(req, level, "upstream %s: target %s: %s failed: connection closed", u->name,
                       target, phase);
}

/* The upstream failed before its response head reached the client. */
static void upstream_failed(tg_req_t *req, int status, const char *msg, bool health, bool stale)
{
    tg_conn_t *c = req->conn;
    tg_trace_attempt_failed(req, msg);
    if (req->up != NULL) {
        size_t t = req->up->target;
        if (health)
            tg_upool_report_failure(req->pool, t, tg_now_ms());
        if (!stale && t < 64)
            req->tried |= 1ull << t;
    }
    close_upstream(req);
    if (req->up_state == TG_UP_RECEIVING) {
        tg_conn_fail(c);
        return;
    }
    if (can_retry(req, stale)) {
        if (stale)
            req->stale_retries++;
        attempt(req);
        return;
    }
    tg_log_info("upstream %s: %s (request %.*s)", req->pool->conf->name, msg,
                (int)req->request_id_len, req->request_id);
    tg_conn_respond_error(c, status, msg);
}

/* ---- request head toward the upstream ---- */

/* http.headers holds the client's end-to-end fields (filtered when the head
 * was parsed, client_fields.h) and what plugins set. Framing, Host, Expect,
 * X-Request-Id and X-Forwarded-For are the gateway's own: written below. A
 * hop-by-hop name set by a plugin is dropped too (this hop is ours). */
static bool skip_request_header(const tg_http_header_t *h)
{
    if (tg_request_is_hop_header(h, NULL, 0))
        return true;
    switch (h->name_len) {
    case 4:
        return TG_HTTP_NAME_IS(h, "host");
    case 6:
        return TG_HTTP_NAME_IS(h, "expect");
    case 10: /* ours replace them (trace_span.h) */
        return TG_HTTP_NAME_IS(h, "tracestate");
    case 11:
        return TG_HTTP_NAME_IS(h, "traceparent");
    case 12:
        return TG_HTTP_NAME_IS(h, "x-request-id");
    case 14:
        return TG_HTTP_NAME_IS(h, "content-length");
    case 15:
        return TG_HTTP_NAME_IS(h, "x-forwarded-for");
    default:
        return false;
    }
}

static void write_upstream_head(tg_req_t *req, struct evbuffer *out)
{
    tg_conn_t *c = req->conn;
    const tg_http_request_t *h = &req->http;
    bool trusted = req->peer_trusted;
    size_t host_len;
    const char *host = tg_route_host(req, &req->pool->conf->targets[req->up->target], &host_len);
    size_t cap = h->method_len + req->path_len + req->query_len + 2 * host_len +
                 req->request_id_len + TG_TRACE_HEADERS_MAX(req) + 512;
    for (size_t i = 0; i < h->num_headers; i++)
        cap += h->headers[i].name_len + h->headers[i].value_len + 4;

    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)cap, &v, 1) < 1)
        return;
    char *w = v.iov_base;
    tg_put(&w, h->method, h->method_len);
    TG_PUT_LIT(&w, " ");
    tg_put(&w, req->path, req->path_len);
    if (req->query != NULL) {
        TG_PUT_LIT(&w, "?");
        tg_put(&w, req->query, req->query_len);
    }
    TG_PUT_LIT(&w, " HTTP/1.1\r\nHost: ");
    tg_put(&w, host, host_len);
    TG_PUT_LIT(&w, "\r\n");
    for (size_t i = 0; i < h->num_headers; i++) {
        const tg_http_header_t *hd = &h->headers[i];
        if (skip_request_header(hd))
            continue;
        tg_put(&w, hd->name, hd->name_len);
        TG_PUT_LIT(&w, ": ");
        tg_put(&w, hd->value, hd->value_len);
        TG_PUT_LIT(&w, "\r\n");
    }
    /* A trusted proxy's chain is kept (all its X-Forwarded-For lines, in
     * order), our peer appended; anyone else's is replaced. */
    TG_PUT_LIT(&w, "X-Forwarded-For: ");
    for (size_t i = 0; trusted && i < h->num_headers; i++) {
        const tg_http_header_t *hd = &h->headers[i];
        if (hd->name_len == 15 && TG_HTTP_NAME_IS(hd, "x-forwarded-for")) {
            tg_put(&w, hd->value, hd->value_len);
            TG_PUT_LIT(&w, ", ");
        }
    }
    tg_put(&w, c->peer_ip, strlen(c->peer_ip));
    TG_PUT_LIT(&w, "\r\n");
    /* Present only when a trusted peer sent them (or a plugin set them):
     * forwarded above, not replaced. */
    bool has_proto = false, has_fhost = false;
    for (size_t i = 0; i < h->num_headers; i++) {
        has_proto |= TG_HTTP_NAME_IS(&h->headers[i], "x-forwarded-proto");
        has_fhost |= TG_HTTP_NAME_IS(&h->headers[i], "x-forwarded-host");
    }
    if (!has_proto)
        w += sprintf(w, "X-Forwarded-Proto: %s\r\n", c->tls ? "https" : "http");
    if (!has_fhost && req->host != NULL) {
        TG_PUT_LIT(&w, "X-Forwarded-Host: ");
        tg_put(&w, req->host, req->host_len);
        TG_PUT_LIT(&w, "\r\n");
    }
    TG_PUT_LIT(&w, "X-Request-Id: ");
    tg_put(&w, req->request_id, req->request_id_len);
    TG_PUT_LIT(&w, "\r\n");
    w += tg_trace_write_headers(req, req->trace.up_span, w);
    /* Nothing but websocket is ever offered upstream (RFC 9110 section 7.8:
     * the client's other protocols are not ours to negotiate). */
    if (req->upgrade)
        TG_PUT_LIT(&w, "Connection: upgrade\r\nUpgrade: websocket\r\n");
    if (req->req_tmp != NULL) {
        TG_PUT_LIT(&w, "Transfer-Encoding: chunked\r\n");
    } else if (req->body.kind == TG_BODY_LENGTH) {
        w += sprintf(w, "Content-Length: %llu\r\n", (unsigned long long)h->content_length);
    } else if (req->body.kind == TG_BODY_CHUNKED) {
        TG_PUT_LIT(&w, "Transfer-Encoding: chunked\r\n");
    }
    TG_PUT_LIT(&w, "\r\n");
    v.iov_len = (size_t)(w - (char *)v.iov_base);
    evbuffer_commit_space(out, &v, 1);
}

/* RFC 9110 section 7.8: a 101 switches to a protocol the client asked for,
 * and upstream we ask for websocket only. */
static bool upgraded_to_websocket(const tg_http_response_t *resp)
{
    bool any = false;
    for (size_t i = 0; i < resp->num_headers; i++) {
        const tg_http_header_t *hd = &resp->headers[i];
        if (!TG_HTTP_NAME_IS(hd, "upgrade"))
            continue;
        if (!tg_list_only_websocket(hd->value, hd->value_len))
            return false;
        any = true;
    }
    return any;
}

/* Returns true once the response head was handled (or the request is gone). */
static bool read_response_head(tg_req_t *req, bool *gone)
{
    struct evbuffer *in = tg_stream_input(req->up->s);
    tg_http_header_t *hs = tg_arena_alloc(req->arena, sizeof(*hs) * RESP_MAX_HEADERS);
    for (;;) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            return false;
        size_t n = len < RESP_HEAD_MAX ? len : RESP_HEAD_MAX;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        tg_http_response_t resp = {.headers = hs, .num_headers = RESP_MAX_HEADERS};
        int r = tg_http_parse_response(p, n, &resp);
        if (r == TG_HTTP_INCOMPLETE && len < RESP_HEAD_MAX)
            return false;
        bool switched = r >= 0 && resp.status == 101 && req->upgrade;
        if (switched && upgraded_to_websocket(&resp)) {
            tg_upool_report_success(req->pool, req->up->target);
            tg_trace_attempt_status(req, 101);
            req->up_head_us = tg_now_us();
            req->status = 101;
            tg_response_forward_upgrade(req, &resp);
            evbuffer_drain(in, (size_t)r);
            if (req->stage != NULL) {
                evbuffer_add_buffer(tg_stream_output(req->conn->s), req->stage);
                req->stage = NULL;
            }
            tg_tunnel_start(req);
            *gone = true; /* the tunnel owns the request now */
            return true;
        }
        if (r < 0 || resp.status == 101) {
            tg_log_warn("upstream %s sent an invalid response: %s", req->pool->conf->name,
                        r < 0 && resp.error_reason ? resp.error_reason
                        : switched                 ? "101 without Upgrade: websocket"
                                                   : "unexpected status");
            /* The upstream answered: like nginx (proxy_next_upstream without
             * invalid_header), a broken answer is not retried elsewhere. The
             * connection is closed, whatever it holds. */
            req->up_state = TG_UP_SENDING;
            req->no_retry = true;
            upstream_failed(req, 502, "invalid response from upstream", true, false);
            *gone = true;
            return true;
        }
        if (resp.status < 200) {
            /* Interim responses are ours to absorb: we answered Expect ourselves. */
            evbuffer_drain(in, (size_t)r);
            continue;
        }
        tg_upool_report_success(req->pool, req->up->target);
        tg_trace_attempt_status(req, resp.status);
        req->up_head_us = tg_now_us();
        bool forwarded = tg_response_forward_head(req, &resp, RESP_MAX_HEADERS);
        evbuffer_drain(in, (size_t)r);
        if (!forwarded) { /* a response_head hook answered instead */
            req->stage = NULL;
            send_refusal(req);
            *gone = true;
            return true;
        }
        req->up_state = TG_UP_RECEIVING;
        return true;
    }
}

static void response_done(tg_req_t *req)
{
    req->up_state = TG_UP_DONE;
    req->completed = true;
    tg_upool_release(req->up, req->resp_keepalive && req->body.done && !req->up_eof);
    req->up = NULL;
    tg_conn_request_done(req->conn);
}

/* A response_head hook, or a response_body hook before the head went out,
 * refused the response: its answer (req->reply) replaces it. The upstream
 * connection is kept only when its whole response was read. */
static void send_refusal(tg_req_t *req)
{
    tg_upool_release(req->up,
                     req->resp_keepalive && req->resp_body.done && req->body.done && !req->up_eof);
    req->up = NULL;
    req->up_state = TG_UP_DONE;
    req->bytes_out = 0;
    tg_response_drop_filters(req);
    tg_conn_send_reply(req->conn);
}

/* Returns true when the request is gone. Until the head went out (it is
 * staged in req->stage during this callback, or waits for a buffered body),
 * a broken or refused body can still become a clean reply. */
static bool pump_response(tg_req_t *req)
{
    int r = tg_response_pump(req, tg_stream_input(req->up->s), req->up_eof);
    bool head_sent = tg_response_head_sent(req);
    struct evbuffer *stage = req->stage;
    if (stage != NULL) {
        req->stage = NULL;
        if (r >= 0)
            tg_stream_send(req->conn->s, stage);
        else
            evbuffer_drain(stage, evbuffer_get_length(stage));
    }
    switch (r) {
    case TG_BODY_DONE:
        response_done(req);
        return true;
    case TG_BODY_MORE:
        return false;
    default:
        if (req->reply.set && !head_sent) {
            send_refusal(req);
            return true;
        }
        if (!req->reply.set)
            tg_log_info("upstream %s: %s", req->pool->conf->name,
                        req->resp_body.error ? req->resp_body.error : "broken response body");
        if (!head_sent && !req->reply.set) {
            tg_response_drop_filters(req);
            req->bytes_out = 0;
            req->up_state = TG_UP_SENDING;
            req->no_retry = true; /* the upstream answered: a broken answer is not retried */
            upstream_failed(req, 502, "invalid response from upstream", true, false);
            return true;
        }
        /* Truncated, broken or refused body: closing is the only honest signal left. */
        tg_conn_fail(req->conn);
        return true;
    }
}

static void up_read_cb(tg_stream_t *s, void *arg)
{
    (void)s;
    tg_req_t *req = arg;
    if (req->up_state == TG_UP_SENDING) {
        bool gone = false;
        req->stage = req->conn->worker->stage;
        bool forwarded = read_response_head(req, &gone);
        if (gone)
            return;
        if (!forwarded) {
            req->stage = NULL;
            return;
        }
        /* The upstream's read timeout now measures gaps between body reads. */
        uint64_t t = req->pool->conf->timeout_ms;
        tg_stream_set_timeouts(req->up->s, t, t);
    }
    if (req->up_state == TG_UP_RECEIVING)
        pump_response(req);
}

static void up_write_cb(tg_stream_t *s, void *arg)
{
    (void)s;
    pump_request(arg);
}

static void up_event_cb(tg_stream_t *s, short what, void *arg)
{
    (void)s;
    tg_req_t *req = arg;
    tg_uconn_t *uc = req->up;
    if (what & TG_STREAM_CONNECTED) {
        uc->connected = true;
        set_upstream_timeouts(req);
        return;
    }
    const char *phase = what & TG_STREAM_TIMEOUT   ? "timeout"
                        : !uc->connected           ? "connect"
                        : what & TG_STREAM_READING ? "read"
                                                   : "write";
    if (req->up_state == TG_UP_RECEIVING) {
        if (what & TG_STREAM_EOF) {
            req->up_eof = true;
            pump_response(req);
        } else {
            TG_STAT_INC(req->pool, resets);
            log_failure(req, TG_LOG_WARN, phase, tg_stream_error(uc->s));
            tg_conn_fail(req->conn);
        }
        return;
    }
    bool stale = uc->connected && !(what & TG_STREAM_TIMEOUT) && uc->uses > 0 &&
                 tg_stream_input_length(uc->s) == 0;
    /* A pooled connection the upstream closed while idle is retried quietly. */
    log_failure(req, stale ? TG_LOG_INFO : TG_LOG_WARN, phase, tg_stream_error(uc->s));
    if (what & TG_STREAM_TIMEOUT) {
        TG_STAT_INC(req->pool, timeouts);
        upstream_failed(req, 504,
                        uc->connected ? "upstream timed out" : "upstream connect timed out", true,
                        false);
        return;
    }
    if (!uc->connected) {
        TG_STAT_INC(req->pool, connect_errors);
        upstream_failed(req, 502, "upstream connect failed", true, false);
        return;
    }
    TG_STAT_INC(req->pool, resets);
    upstream_failed(req, 502, "upstream closed the connection", !stale, stale);
}

/* ---- request body, client -> upstream ---- */

/* With request_body hooks the body goes through req_tmp and the hooks, and
 * out chunked. */
static int pump_request_filtered(tg_req_t *req, struct evbuffer *in, struct evbuffer *out)
{
    if (evbuffer_get_length(out) > TG_OUT_HIGH)
        return TG_BODY_MORE;
    int r = tg_body_pump(&req->body, in, req->req_tmp, TG_OUT_HIGH);
    if (r < 0)
        return r;
    bool last = r == TG_BODY_DONE;
    if (tg_chain_body(req, false, req->req_tmp, last) < 0) {
        req->body_refused = true; /* req->reply holds the answer */
        return TG_BODY_ERROR;
    }
    size_t n = evbuffer_get_length(req->req_tmp);
    if (n > 0) {
        evbuffer_add_printf(out, "%zx\r\n", n);
        evbuffer_add_buffer(out, req->req_tmp);
        evbuffer_add(out, "\r\n", 2);
    }
    if (last)
        evbuffer_add(out, "0\r\n\r\n", 5);
    return r;
}

/* Returns true when the request is gone. */
static bool pump_request(tg_req_t *req)
{
    if (req->body.done || req->up == NULL)
        return false;
    tg_conn_t *c = req->conn;
    struct evbuffer *in = tg_stream_input(c->s);
    struct evbuffer *out = tg_stream_output(req->up->s);
    size_t before = evbuffer_get_length(in);
    int r = req->req_tmp ? pump_request_filtered(req, in, out)
                         : tg_body_pump(&req->body, in, out, TG_OUT_HIGH);
    if (evbuffer_get_length(in) != before)
        req->body_started = true;
    switch (r) {
    case TG_BODY_DONE:
        tg_stream_set_timeouts(c->s, 0, 0);
        set_upstream_timeouts(req);
        return false;
    case TG_BODY_MORE:
        return false;
    case TG_BODY_TOO_LARGE:
    case TG_BODY_ERROR:
    default:
        close_upstream(req);
        if (req->up_state == TG_UP_RECEIVING) {
            tg_conn_fail(c);
            return true;
        }
        if (req->body_refused) {
            tg_conn_send_reply(c);
            return true;
        }
        tg_conn_respond_error(c, r == TG_BODY_TOO_LARGE ? 413 : 400,
                              r == TG_BODY_TOO_LARGE
                                  ? "request body too large"
                                  : (req->body.error ? req->body.error : "invalid request body"));
        return true;
    }
}

void tg_proxy_client_readable(tg_req_t *req)
{
    pump_request(req);
}

void tg_proxy_client_drained(tg_req_t *req)
{
    if (req->up_state == TG_UP_RECEIVING && req->up != NULL)
        pump_response(req);
}

/* ---- start ---- */

static void attempt(tg_req_t *req)
{
    tg_upool_t *p = req->pool;
    size_t t = tg_upool_pick(p, tg_now_ms(), req->tried);
    req->attempts++;
    req->target = t;
    req->target_used = true;
    if (req->up_start_us == 0)
        req->up_start_us = tg_now_us();
    req->up_state = TG_UP_SENDING;
    tg_trace_attempt(req);
    tg_uconn_t *uc = tg_upool_take_idle(p, t);
    if (uc == NULL)
        uc = tg_upool_connect(p, t);
    if (uc == NULL) {
        log_failure(req, TG_LOG_WARN, "connect", errno);
        tg_upool_report_failure(p, t, tg_now_ms());
        tg_trace_attempt_failed(req, "connect failed");
        if (t < 64)
            req->tried |= 1ull << t;
        if (can_retry(req, false)) {
            attempt(req);
            return;
        }
        tg_conn_respond_error(req->conn, 502, "upstream connect failed");
        return;
    }
    req->up = uc;
    tg_stream_setcb(uc->s, up_read_cb, up_write_cb, up_event_cb, req);
    tg_stream_set_watermarks(uc->s, TG_OUT_HIGH, TG_OUT_HIGH / 4);
    set_upstream_timeouts(req);
    /* A pooled connection is connected: its head goes out at once (a new
     * one sends it once connected). */
    struct evbuffer *scratch = req->conn->worker->scratch;
    write_upstream_head(req, scratch);
    tg_stream_send(uc->s, scratch);
    tg_stream_read_enable(uc->s, true);
    pump_request(req);
}

static void strip_prefix(tg_req_t *req)
{
    const tg_route_t *r = req->route;
    size_t n = r->strip_prefix_len;
    if (r->strip_prefix == NULL || req->path_len < n || memcmp(req->path, r->strip_prefix, n) != 0)
        return;
    if (req->path_len > n && req->path[n] != '/' && r->strip_prefix[n - 1] != '/')
        return; /* "/api" does not strip from "/apix" */
    /* The result is a suffix of the client's path (kept whole for the access
     * log), rooted: "/api" -> "/", "/api/" + "x" -> "/x". */
    size_t rest = req->path_len - n;
    if (rest == 0) {
        req->path = tg_arena_strndup(req->arena, "/", 1);
        req->path_len = 1;
    } else if (req->path[n] != '/') {
        req->path += n - 1; /* the prefix ends with "/" */
        req->path_len = rest + 1;
    } else {
        req->path += n;
        req->path_len = rest;
    }
}

void tg_proxy_bind_chain(tg_req_t *req, const tg_chain_t *chain)
{
    req->chain = chain;
    req->chain_pos = 0;
    req->plugin_ctx =
        chain && chain->ctx_size ? tg_arena_calloc(req->arena, chain->ctx_size) : NULL;
}

/* Expect: 100-continue is answered once the request passed its plugins (a
 * client that is refused, 401 or 429, never sends the body). */
static void send_continue(tg_req_t *req)
{
    const tg_http_request_t *h = &req->http;
    if ((h->flags & TG_HF_EXPECT_CONTINUE) && !req->body.done && h->minor_version >= 1 &&
        !req->sent_continue) {
        evbuffer_add(tg_stream_output(req->conn->s), "HTTP/1.1 100 Continue\r\n\r\n", 25);
        req->sent_continue = true;
    }
}

/* After the request_head hooks (tg_chain_*): the upstream, or the answer. */
static void chain_done(tg_req_t *req, int outcome)
{
    switch (outcome) {
    case TG_CHAIN_NEXT:
        /* Route actions run after the plugins: their templates may read
         * what plugins published (claims). */
        if (req->route->redirect != NULL || req->route->respond != NULL) {
            tg_route_answer(req);
            tg_conn_send_reply(req->conn);
            break;
        }
        if (req->route->rewrite != NULL && tg_route_rewrite(req) < 0) {
            tg_conn_send_reply(req->conn);
            break;
        }
        send_continue(req);
        if (req->route->aggregate != NULL)
            tg_aggregate_start(req);
        else
            attempt(req);
        break;
    case TG_CHAIN_PAUSED:
        break;
    case TG_CHAIN_DONE:
    default:
        tg_conn_send_reply(req->conn);
        break;
    }
}

void tg_proxy_resume(tg_req_t *req, int status)
{
    if (req->hook == TG_HOOK_REQUEST_HEAD) {
        tg_chain_note_resume(req, status); /* applied when the hook returns */
        return;
    }
    if (!req->paused) {
        tg_log_warn("tg_request_resume() on request %.*s, which is not paused: ignored",
                    (int)req->request_id_len, req->request_id);
        return;
    }
    req->paused = false;
    chain_done(req, tg_chain_resume(req, status));
}

void tg_proxy_handle(tg_req_t *req)
{
    tg_conn_t *c = req->conn;
    const tg_limits_t *lim = &req->cfg->limits;
    const tg_http_request_t *h = &req->http;
    tg_body_init(&req->body, h->body_kind, h->content_length, lim->max_body_size,
                 h->body_kind == TG_BODY_CHUNKED);
    tg_trace_begin(req);
    tg_route_query_t q = {
        .host = req->host,
        .host_len = req->host_len,
        .path = req->path,
        .path_len = req->path_len,
        .method = h->method,
        .method_len = h->method_len,
        .method_bit = req->method_bit,
        .headers = h->headers,
        .nheaders = h->num_headers,
    };
    req->client_path = req->path;
    req->client_path_len = req->path_len;
    req->route = tg_router_match(req->cfg->router, &q, c->worker->match_data);
    if (req->route == NULL) {
        tg_conn_respond_error(c, 404, "no route");
        return;
    }
    tg_traffic_request_routed(req);
    tg_proxy_bind_chain(req, req->route->chain);
    if (h->flags & TG_HF_EXPECT_OTHER) {
        tg_conn_respond_error(c, 417, "unsupported expectation");
        return;
    }
    if (h->body_kind == TG_BODY_LENGTH && lim->max_body_size &&
        h->content_length > lim->max_body_size) {
        tg_conn_respond_error(c, 413, "request body too large");
        return;
    }
    strip_prefix(req);
    if (req->route->upstream != NULL)
        req->pool = &req->gen->pools[req->route->upstream->index];
    /* Other protocols are not tunnelled: their Upgrade was removed with the
     * hop-by-hop fields, as on any route. */
    req->upgrade = req->route->websocket && req->ws_requested;
    if (req->chain->has_request_body && req->body.kind != TG_BODY_NONE && !req->body.done) {
        /* Plugins may change the body's length: it travels chunked. */
        req->req_tmp = evbuffer_new();
        req->body.out_chunked = false;
    }
    chain_done(req, tg_chain_request_head(req));
}
