#include "proxy.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "field_list.h"
#include "head_write.h"
#include "log.h"
#include "outlier.h"
#include "proto.h"
#include "request_head.h"
#include "response.h"
#include "route_action.h"
#include "tollgate/clock.h"
#include "trace_span.h"
#include "tunnel.h"
#include "upstream_try.h"

/* A response head larger than this from an upstream is a broken upstream. */
#define RESP_HEAD_MAX (64u * 1024u)
#define RESP_MAX_HEADERS 256u
/* A pooled connection closed under us before any response byte is retried
 * on another connection this many times, without using up `retries`. */
#define STALE_RETRIES 2

static bool pump_request(tg_request_t *req);
static bool pump_response(tg_request_t *req);
static void attempt(tg_request_t *req);
static void send_refusal(tg_request_t *req);
static void buffer_body(tg_request_t *req);

static bool idempotent(uint32_t m)
{
    return (m & (TG_METHOD_GET | TG_METHOD_HEAD | TG_METHOD_PUT | TG_METHOD_DELETE |
                 TG_METHOD_OPTIONS | TG_METHOD_TRACE)) != 0;
}

/* Upstream timeouts: the response timeout runs only once the whole request
 * is sent, so a long upload is not mistaken for a silent upstream. */
static void set_upstream_timeouts(tg_request_t *req)
{
    const tg_upstream_conf_t *u = req->up.pool->conf;
    uint64_t t = tg_try_response_timeout(req);
    if (!req->up.conn->connected)
        tg_stream_set_timeouts(req->up.conn->s, 0, u->connect_timeout_ms);
    else
        tg_stream_set_timeouts(req->up.conn->s, req->client.body.done ? t : 0, t);
}

static void close_upstream(tg_request_t *req)
{
    if (req->up.pool != NULL)
        tg_try_connected(req);
    if (req->up.conn != NULL) {
        tg_upool_release(req->up.conn, false);
        req->up.conn = NULL;
    }
}

void tg_proxy_release(tg_request_t *req)
{
    close_upstream(req);
    tg_try_release(req);
}

/* Whether a try that failed with kind (or answered status, kind 0) may be
 * followed by another: never once the response head went to the client. */
static bool can_retry(tg_request_t *req, bool stale, unsigned kind, int status)
{
    if (req->up.state != TG_UP_SENDING || req->up.no_retry || !tg_try_body_resendable(req))
        return false;
    if (stale)
        return req->up.stale_retries < STALE_RETRIES;
    if (req->route->retry != NULL) /* the route's policy (upstream_try.h) */
        return tg_try_policy_allows(req, kind, status);
    return idempotent(req->client.method_bit) && kind != 0 &&
           req->up.attempts <= req->up.pool->conf->retries;
}

/* The next try, after the policy's jittered backoff. */
static void retry(tg_request_t *req)
{
    if (tg_try_backoff(req) == 0)
        attempt(req); /* else the timer runs the next try */
}

/* An upstream failure at warn, with what an operator acts on: the target,
 * the phase (connect, read, write, timeout) and the error. Identical lines
 * are held back and counted by the log (log.h). */
static void log_failure(tg_request_t *req, tg_log_level_t level, const char *phase, int err)
{
    const tg_upstream_conf_t *u = req->up.pool->conf;
    const char *target = u->targets[req->up.target].name;
    if (err != 0)
        tg_request_log(req, level, "upstream %s: target %s: %s failed: %s (errno %d)", u->name,
                       target, phase, strerror(err), err);
    else if (strcmp(phase, "timeout") == 0)
        tg_request_log(req, level, "upstream %s: target %s: timed out %s", u->name, target,
                       req->up.conn != NULL && req->up.conn->connected ? "waiting for the response"
                                                                       : "connecting");
    else
        tg_request_log(req, level, "upstream %s: target %s: %s failed: connection closed", u->name,
                       target, phase);
}

/* The upstream failed before its response head reached the client. */
static void upstream_failed(tg_request_t *req, int status, const char *msg, bool health, bool stale,
                            unsigned kind)
{
    tg_trace_attempt_failed(req, msg);
    if (req->up.conn != NULL) {
        size_t t = req->up.conn->target;
        if (health)
            tg_upool_report_failure(req->up.pool, t, tg_now_ms());
        if (health && kind != 0)
            tg_outlier_report(req->up.pool->conf, t, TG_OUTCOME_GATEWAY, 0, tg_now_ms());
        if (kind != 0 && req->up.tries.try_start_us)
            tg_balance_observe(req->up.pool, t, tg_now_us() - req->up.tries.try_start_us,
                               tg_now_us());
        if (!stale && t < 64)
            req->up.tried |= 1ull << t;
    }
    close_upstream(req);
    if (req->up.state == TG_UP_RECEIVING) {
        tg_response_fail(req);
        return;
    }
    if (can_retry(req, stale, kind, 0)) {
        if (stale) {
            req->up.stale_retries++;
            attempt(req);
        } else {
            retry(req);
        }
        return;
    }
    tg_request_log(req, TG_LOG_INFO, "upstream %s: %s, no try left: answering %d",
                   req->up.pool->conf->name, msg, status);
    tg_response_error(req, status, msg);
}

/* Route timeout, per-try timeout, or the end of a backoff. */
static void tries_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_request_t *req = arg;
    tg_tries_t *t = &req->up.tries;
    if (t->backing_off) {
        t->backing_off = false;
        if (t->deadline_ms && tg_now_ms() >= t->deadline_ms) {
            tg_response_error(req, 504, "upstream timed out");
            return;
        }
        attempt(req);
        return;
    }
    if (req->up.state != TG_UP_SENDING)
        return;
    if (t->deadline_ms && tg_now_ms() >= t->deadline_ms)
        req->up.no_retry = true; /* the route's time is up: no other try */
    TG_STAT_INC(req->up.pool, timeouts);
    upstream_failed(req, 504, "upstream timed out", true, false, TG_FAIL_TIMEOUT);
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

static void write_upstream_head(tg_request_t *req, struct evbuffer *out)
{
    tg_conn_t *c = req->conn;
    const tg_http_request_t *h = &req->client.http;
    bool trusted = req->client.peer_trusted;
    size_t host_len;
    const char *host =
        tg_route_host(req, &req->up.pool->conf->targets[req->up.conn->target], &host_len);
    size_t cap = h->method_len + req->client.path_len + req->client.query_len + 2 * host_len +
                 req->request_id_len + TG_TRACE_HEADERS_MAX(req) + 512;
    for (size_t i = 0; i < h->num_headers; i++)
        cap += h->headers[i].name_len + h->headers[i].value_len + 4;

    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)cap, &v, 1) < 1)
        return;
    char *w = v.iov_base;
    tg_put(&w, h->method, h->method_len);
    TG_PUT_LIT(&w, " ");
    tg_put(&w, req->client.path, req->client.path_len);
    if (req->client.query != NULL) {
        TG_PUT_LIT(&w, "?");
        tg_put(&w, req->client.query, req->client.query_len);
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
        tg_put(&w, c->tls ? "X-Forwarded-Proto: https\r\n" : "X-Forwarded-Proto: http\r\n",
               c->tls ? 26 : 25);
    if (!has_fhost && req->client.host != NULL) {
        TG_PUT_LIT(&w, "X-Forwarded-Host: ");
        tg_put(&w, req->client.host, req->client.host_len);
        TG_PUT_LIT(&w, "\r\n");
    }
    TG_PUT_LIT(&w, "X-Request-Id: ");
    tg_put(&w, req->request_id, req->request_id_len);
    TG_PUT_LIT(&w, "\r\n");
    w += tg_trace_write_headers(req, req->trace.up_span, w);
    /* Nothing but websocket is ever offered upstream (RFC 9110 section 7.8:
     * the client's other protocols are not ours to negotiate). */
    if (req->up.upgrade)
        TG_PUT_LIT(&w, "Connection: upgrade\r\nUpgrade: websocket\r\n");
    if (req->client.body_tmp != NULL) {
        TG_PUT_LIT(&w, "Transfer-Encoding: chunked\r\n");
    } else if (req->client.body.kind == TG_BODY_LENGTH) {
        TG_PUT_LIT(&w, "Content-Length: ");
        tg_put_u64(&w, h->content_length);
        TG_PUT_LIT(&w, "\r\n");
    } else if (req->client.body.kind == TG_BODY_CHUNKED) {
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

/* Returns true once the response head was handled (or the request is gone).
 * The header array lives on the stack: the head is forwarded (or kept, for a
 * buffered body: response.c copies it) before this returns, and 8 KiB from
 * the request's arena would cost it a second block, a malloc per request. */
static bool read_response_head(tg_request_t *req, bool *gone)
{
    struct evbuffer *in = tg_stream_input(req->up.conn->s);
    tg_http_header_t hs[RESP_MAX_HEADERS];
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
        bool switched = r >= 0 && resp.status == 101 && req->up.upgrade;
        if (switched && upgraded_to_websocket(&resp)) {
            if (req->up.tries.timer != NULL) /* the tunnel has its own idle timeout */
                evtimer_del(req->up.tries.timer);
            tg_upool_report_success(req->up.pool, req->up.conn->target);
            tg_trace_attempt_status(req, 101);
            req->time.up_head_us = tg_now_us();
            req->resp.status = 101;
            tg_response_forward_upgrade(req, &resp);
            evbuffer_drain(in, (size_t)r);
            tg_response_release(req, true);
            tg_tunnel_start(req);
            *gone = true; /* the tunnel owns the request now */
            return true;
        }
        if (r < 0 || resp.status == 101) {
            tg_request_log(
                req, TG_LOG_WARN, "upstream %s: target %s: read failed: invalid response: %s",
                req->up.pool->conf->name, req->up.pool->conf->targets[req->up.target].name,
                r < 0 && resp.error_reason ? resp.error_reason
                : switched                 ? "101 without Upgrade: websocket"
                                           : "unexpected status");
            /* The upstream answered: like nginx (proxy_next_upstream without
             * invalid_header), a broken answer is not retried elsewhere. The
             * connection is closed, whatever it holds. */
            req->up.state = TG_UP_SENDING;
            req->up.no_retry = true;
            upstream_failed(req, 502, "invalid response from upstream", true, false, 0);
            *gone = true;
            return true;
        }
        if (resp.status < 200) {
            /* Interim responses are ours to absorb: we answered Expect ourselves. */
            evbuffer_drain(in, (size_t)r);
            continue;
        }
        tg_upool_report_success(req->up.pool, req->up.conn->target);
        tg_trace_attempt_status(req, resp.status);
        req->time.up_head_us = tg_now_us();
        tg_balance_observe(req->up.pool, req->up.conn->target,
                           req->time.up_head_us - req->up.tries.try_start_us, req->time.up_head_us);
        tg_outlier_report(req->up.pool->conf, req->up.conn->target,
                          resp.status >= 500 ? TG_OUTCOME_5XX : TG_OUTCOME_OK, resp.status,
                          tg_now_ms());
        if (req->route->retry != NULL && can_retry(req, false, 0, resp.status)) {
            /* An answer the policy retries: this connection goes (its body
             * is not read), another target gets the request. */
            if (req->up.conn->target < 64)
                req->up.tried |= 1ull << req->up.conn->target;
            close_upstream(req);
            tg_response_release(req, true);
            retry(req);
            *gone = true;
            return true;
        }
        if (req->up.tries.timer != NULL)
            evtimer_del(req->up.tries.timer);
        bool forwarded = tg_response_forward_head(req, &resp, RESP_MAX_HEADERS);
        evbuffer_drain(in, (size_t)r);
        if (!forwarded) { /* a response_head hook answered instead */
            send_refusal(req);
            *gone = true;
            return true;
        }
        req->up.state = TG_UP_RECEIVING;
        return true;
    }
}

static void response_done(tg_request_t *req)
{
    req->up.state = TG_UP_DONE;
    tg_upool_release(req->up.conn, req->up.keepalive && req->client.body.done && !req->up.eof);
    req->up.conn = NULL;
    tg_response_done(req);
}

/* A response_head hook, or a response_body hook before the head went out,
 * refused the response: its answer (req->run.reply) replaces it. The upstream
 * connection is kept only when its whole response was read. */
static void send_refusal(tg_request_t *req)
{
    tg_upool_release(req->up.conn, req->up.keepalive && req->resp.body.done &&
                                       req->client.body.done && !req->up.eof);
    req->up.conn = NULL;
    req->up.state = TG_UP_DONE;
    req->resp.bytes_out = 0;
    tg_response_drop_filters(req);
    tg_response_reply(req);
}

/* Returns true when the request is gone. Until the head went out (it is
 * held during this callback (tg_response_hold), or waits for a buffered body),
 * a broken or refused body can still become a clean reply. */
static bool pump_response(tg_request_t *req)
{
    int r = tg_response_pump(req, tg_stream_input(req->up.conn->s), req->up.eof);
    bool head_sent = tg_response_head_sent(req);
    tg_response_release(req, r >= 0);
    switch (r) {
    case TG_BODY_DONE:
        response_done(req);
        return true;
    case TG_BODY_MORE:
        return false;
    default:
        if (req->run.reply.set && !head_sent) {
            send_refusal(req);
            return true;
        }
        if (!req->run.reply.set)
            tg_request_log(req, TG_LOG_WARN, "upstream %s: target %s: read failed: %s",
                           req->up.pool->conf->name,
                           req->up.pool->conf->targets[req->up.target].name,
                           req->resp.body.error ? req->resp.body.error : "broken response body");
        if (!head_sent && !req->run.reply.set) {
            tg_response_drop_filters(req);
            req->resp.bytes_out = 0;
            req->up.state = TG_UP_SENDING;
            req->up.no_retry = true; /* the upstream answered: a broken answer is not retried */
            upstream_failed(req, 502, "invalid response from upstream", true, false, 0);
            return true;
        }
        /* Truncated, broken or refused body: closing is the only honest signal left. */
        tg_response_fail(req);
        return true;
    }
}

static void up_read_cb(tg_stream_t *s, void *arg)
{
    (void)s;
    tg_request_t *req = arg;
    if (req->up.state == TG_UP_SENDING) {
        bool gone = false;
        tg_response_hold(req);
        bool forwarded = read_response_head(req, &gone);
        if (gone)
            return;
        if (!forwarded) {
            tg_response_release(req, true);
            return;
        }
        /* The upstream's read timeout now measures gaps between body reads. */
        uint64_t t = tg_try_response_timeout(req);
        tg_stream_set_timeouts(req->up.conn->s, t, t);
    }
    if (req->up.state == TG_UP_RECEIVING)
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
    tg_request_t *req = arg;
    tg_uconn_t *uc = req->up.conn;
    if (what & TG_STREAM_CONNECTED) {
        uc->connected = true;
        tg_try_connected(req);
        set_upstream_timeouts(req);
        return;
    }
    const char *phase = what & TG_STREAM_TIMEOUT   ? "timeout"
                        : !uc->connected           ? "connect"
                        : what & TG_STREAM_READING ? "read"
                                                   : "write";
    if (req->up.state == TG_UP_RECEIVING) {
        if (what & TG_STREAM_EOF) {
            req->up.eof = true;
            pump_response(req);
        } else {
            TG_STAT_INC(req->up.pool, resets);
            log_failure(req, TG_LOG_WARN, phase, tg_stream_error(uc->s));
            tg_response_fail(req);
        }
        return;
    }
    bool stale = uc->connected && !(what & TG_STREAM_TIMEOUT) && uc->uses > 0 &&
                 tg_stream_input_length(uc->s) == 0;
    /* A pooled connection the upstream closed while idle is retried quietly. */
    log_failure(req, stale ? TG_LOG_INFO : TG_LOG_WARN, phase, tg_stream_error(uc->s));
    if (what & TG_STREAM_TIMEOUT) {
        TG_STAT_INC(req->up.pool, timeouts);
        upstream_failed(req, 504,
                        uc->connected ? "upstream timed out" : "upstream connect timed out", true,
                        false, uc->connected ? TG_FAIL_TIMEOUT : TG_FAIL_CONNECT);
        return;
    }
    if (!uc->connected) {
        TG_STAT_INC(req->up.pool, connect_errors);
        upstream_failed(req, 502, "upstream connect failed", true, false, TG_FAIL_CONNECT);
        return;
    }
    TG_STAT_INC(req->up.pool, resets);
    upstream_failed(req, 502, "upstream closed the connection", !stale, stale, TG_FAIL_RESET);
}

/* ---- request body, client -> upstream ---- */

/* With request_body hooks the body goes through client.body_tmp and the hooks, and
 * out chunked. */
static int pump_request_filtered(tg_request_t *req, struct evbuffer *in, struct evbuffer *out)
{
    if (evbuffer_get_length(out) > TG_OUT_HIGH)
        return TG_BODY_MORE;
    int r = tg_body_pump(&req->client.body, in, req->client.body_tmp, TG_OUT_HIGH);
    if (r < 0)
        return r;
    bool last = r == TG_BODY_DONE;
    if (tg_chain_body(req, false, req->client.body_tmp, last) < 0) {
        req->client.body_refused = true; /* req->run.reply holds the answer */
        return TG_BODY_ERROR;
    }
    size_t n = evbuffer_get_length(req->client.body_tmp);
    if (n > 0) {
        evbuffer_add_printf(out, "%zx\r\n", n);
        evbuffer_add_buffer(out, req->client.body_tmp);
        evbuffer_add(out, "\r\n", 2);
    }
    if (last)
        evbuffer_add(out, "0\r\n\r\n", 5);
    return r;
}

/* Returns true when the request is gone. */
static bool pump_request(tg_request_t *req)
{
    if (req->client.body.done || req->up.conn == NULL)
        return false;
    struct evbuffer *in = req->proto->input(req);
    struct evbuffer *out = tg_stream_output(req->up.conn->s);
    size_t before = evbuffer_get_length(in);
    int r = req->client.body_tmp ? pump_request_filtered(req, in, out)
                                 : tg_body_pump(&req->client.body, in, out, TG_OUT_HIGH);
    if (evbuffer_get_length(in) != before)
        req->client.body_started = true;
    switch (r) {
    case TG_BODY_DONE:
        req->proto->input_done(req);
        set_upstream_timeouts(req);
        return false;
    case TG_BODY_MORE:
        return false;
    case TG_BODY_TOO_LARGE:
    case TG_BODY_ERROR:
    default:
        close_upstream(req);
        if (req->up.state == TG_UP_RECEIVING) {
            tg_response_fail(req);
            return true;
        }
        if (req->client.body_refused) {
            tg_response_reply(req);
            return true;
        }
        tg_response_error(
            req, r == TG_BODY_TOO_LARGE ? 413 : 400,
            r == TG_BODY_TOO_LARGE
                ? "request body too large"
                : (req->client.body.error ? req->client.body.error : "invalid request body"));
        return true;
    }
}

void tg_proxy_client_readable(tg_request_t *req)
{
    if (req->up.tries.buffering)
        buffer_body(req);
    else
        pump_request(req);
}

void tg_proxy_client_drained(tg_request_t *req)
{
    if (req->up.state == TG_UP_RECEIVING && req->up.conn != NULL)
        pump_response(req);
}

static const tg_stream_cbs_t up_cbs = {
    .read = up_read_cb, .write = up_write_cb, .event = up_event_cb};

/* ---- start ---- */

static void attempt(tg_request_t *req)
{
    tg_upool_t *p = req->up.pool;
    if (req->up.attempts == 0)
        tg_try_first(req, tries_timer_cb);
    size_t t;
    tg_uconn_t *uc;
    if (!tg_try_connect(req, &t, &uc))
        return; /* refused: the request is gone */
    req->up.attempts++;
    req->up.target = t;
    req->up.target_used = true;
    if (req->time.up_start_us == 0)
        req->time.up_start_us = tg_now_us();
    req->up.tries.try_start_us = tg_now_us();
    req->up.state = TG_UP_SENDING;
    tg_trace_attempt(req);
    if (uc == NULL) {
        log_failure(req, TG_LOG_WARN, "connect", errno);
        tg_try_connected(req);
        tg_upool_report_failure(p, t, tg_now_ms());
        tg_outlier_report(p->conf, t, TG_OUTCOME_GATEWAY, 0, tg_now_ms());
        tg_trace_attempt_failed(req, "connect failed");
        if (t < 64)
            req->up.tried |= 1ull << t;
        if (can_retry(req, false, TG_FAIL_CONNECT, 0)) {
            retry(req);
            return;
        }
        tg_response_error(req, 502, "upstream connect failed");
        return;
    }
    req->up.conn = uc;
    req->up.tries.endpoint = uc->endpoint;
    tg_stream_setcb(uc->s, &up_cbs, req);
    tg_stream_set_watermarks(uc->s, TG_OUT_HIGH, TG_OUT_HIGH / 4);
    set_upstream_timeouts(req);
    tg_try_arm(req);
    /* A pooled connection is connected: its head goes out at once (a new
     * one sends it once connected). */
    struct evbuffer *scratch = req->gen->worker->scratch;
    write_upstream_head(req, scratch);
    if (req->up.tries.body != NULL) { /* kept whole: a copy goes, for the next try */
        size_t n = evbuffer_get_length(req->up.tries.body);
        evbuffer_add(scratch, evbuffer_pullup(req->up.tries.body, (ev_ssize_t)n), n);
    }
    tg_stream_send(uc->s, scratch);
    tg_stream_read_enable(uc->s, true);
    pump_request(req);
}

/* Reads the kept body; the first try starts once it is whole. */
static void buffer_body(tg_request_t *req)
{
    int r = tg_body_pump(&req->client.body, req->proto->input(req), req->up.tries.body, SIZE_MAX);
    if (r == TG_BODY_MORE)
        return;
    req->up.tries.buffering = false;
    if (r != TG_BODY_DONE) {
        tg_response_error(
            req, r == TG_BODY_TOO_LARGE ? 413 : 400,
            r == TG_BODY_TOO_LARGE
                ? "request body too large"
                : (req->client.body.error ? req->client.body.error : "invalid request body"));
        return;
    }
    req->proto->input_done(req);
    attempt(req);
}

void tg_proxy_start(tg_request_t *req)
{
    if (!tg_try_admit(req))
        return; /* refused */
    if (tg_try_keep_body(req)) {
        req->up.tries.buffering = true;
        buffer_body(req);
        return;
    }
    attempt(req);
}
