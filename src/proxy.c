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
#include "outlier.h"
#include "request_head.h"
#include "response.h"
#include "route_action.h"
#include "router.h"
#include "split.h"
#include "tollgate/clock.h"
#include "tunnel.h"
#include "upstream_shared.h"

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
static void buffer_body(tg_req_t *req);

static bool idempotent(uint32_t m)
{
    return (m & (TG_METHOD_GET | TG_METHOD_HEAD | TG_METHOD_PUT | TG_METHOD_DELETE |
                 TG_METHOD_OPTIONS | TG_METHOD_TRACE)) != 0;
}

/* Upstream timeouts: the response timeout runs only once the whole request
 * is sent, so a long upload is not mistaken for a silent upstream. */
static uint64_t response_timeout(const tg_req_t *req)
{
    return req->route->timeout_ms ? req->route->timeout_ms : req->pool->conf->timeout_ms;
}

static void set_upstream_timeouts(tg_req_t *req)
{
    const tg_upstream_conf_t *u = req->pool->conf;
    uint64_t t = response_timeout(req);
    if (!req->up->connected)
        tg_stream_set_timeouts(req->up->s, 0, u->connect_timeout_ms);
    else
        tg_stream_set_timeouts(req->up->s, req->body.done ? t : 0, t);
}

/* The try's new connection is established (or gone): max_pending counts
 * only requests waiting for one. */
static void pending_done(tg_req_t *req)
{
    if (req->tries.pending) {
        tg_shared_leave(&req->pool->conf->shared->pending);
        req->tries.pending = false;
    }
}

static void close_upstream(tg_req_t *req)
{
    if (req->pool != NULL)
        pending_done(req);
    if (req->up != NULL) {
        tg_upool_release(req->up, false);
        req->up = NULL;
    }
}

/* Counted once per request in the upstream's shared numbers (circuit
 * breaker, retry budget); given back when the request ends. */
static void tries_release(tg_req_t *req)
{
    tg_tries_t *t = &req->tries;
    if (t->timer != NULL) {
        event_free(t->timer);
        t->timer = NULL;
    }
    if (t->body != NULL) {
        evbuffer_free(t->body);
        t->body = NULL;
    }
    if (req->pool == NULL)
        return;
    tg_ushared_t *u = req->pool->conf->shared;
    if (t->retrying)
        tg_retry_budget_give(u);
    if (t->counted)
        atomic_fetch_sub_explicit(&u->requests, 1, memory_order_relaxed);
    t->retrying = t->counted = false;
}

void tg_proxy_release(tg_req_t *req)
{
    close_upstream(req);
    tries_release(req);
}

/* The request's body can go again: none, empty, or kept whole (tries.body). */
static bool body_resendable(const tg_req_t *req)
{
    if (req->tries.body != NULL && req->body.done)
        return true;
    if (req->body_started)
        return false;
    return req->body.kind == TG_BODY_NONE ||
           (req->body.kind == TG_BODY_LENGTH && req->body.remaining == 0);
}

/* Whether a try that failed with kind (or answered status, kind 0) may be
 * followed by another: never once the response head went to the client. */
static bool can_retry(tg_req_t *req, bool stale, unsigned kind, int status)
{
    const tg_retry_policy_t *rp = req->route->retry;
    if (req->up_state != TG_UP_SENDING || req->no_retry || !body_resendable(req))
        return false;
    if (stale)
        return req->stale_retries < STALE_RETRIES;
    if (rp == NULL)
        return idempotent(req->method_bit) && kind != 0 &&
               req->attempts <= req->pool->conf->retries;
    if (!(rp->methods & req->method_bit) || req->attempts >= rp->attempts)
        return false;
    if (kind != 0 ? !tg_retry_on_failure(rp, kind) : !tg_retry_on_status(rp, status))
        return false;
    if (req->tries.deadline_ms && tg_now_ms() >= req->tries.deadline_ms)
        return false;
    if (!req->tries.retrying) {
        if (!tg_retry_budget_take(req->pool->conf->shared, rp->budget_pct)) {
            TG_SHARED_INC(req->pool->conf->shared->budget_exhausted);
            tg_log_info("upstream %s: retry budget exhausted (request %.*s)", req->pool->conf->name,
                        (int)req->request_id_len, req->request_id);
            return false;
        }
        req->tries.retrying = true;
    }
    return true;
}

static void arm_timer(tg_req_t *req, uint64_t at_ms)
{
    uint64_t now = tg_now_ms();
    struct timeval tv = tg_timeval_ms(at_ms > now ? at_ms - now : 0);
    evtimer_add(req->tries.timer, &tv);
}

/* The next try, after the policy's jittered backoff. */
static void retry(tg_req_t *req)
{
    tg_tries_t *t = &req->tries;
    t->retries++;
    TG_SHARED_INC(req->pool->conf->shared->retries);
    const tg_retry_policy_t *rp = req->route->retry;
    uint64_t wait =
        rp ? tg_retry_backoff_ms(rp, t->retries, req->pool->rng++ * 0x9e3779b97f4a7c15ull) : 0;
    if (wait == 0 || t->timer == NULL) {
        attempt(req);
        return;
    }
    t->backing_off = true;
    t->try_deadline_ms = 0;
    uint64_t at = tg_now_ms() + wait;
    arm_timer(req, t->deadline_ms && t->deadline_ms < at ? t->deadline_ms : at);
}

/* The upstream failed before its response head reached the client. */
static void upstream_failed(tg_req_t *req, int status, const char *msg, bool health, bool stale,
                            unsigned kind)
{
    tg_conn_t *c = req->conn;
    if (req->up != NULL) {
        size_t t = req->up->target;
        if (health)
            tg_upool_report_failure(req->pool, t, tg_now_ms());
        if (health && kind != 0)
            tg_outlier_report(req->pool->conf, t, TG_OUTCOME_GATEWAY, 0, tg_now_ms());
        if (kind != 0 && req->tries.try_start_us)
            tg_balance_observe(req->pool, t, tg_now_us() - req->tries.try_start_us, tg_now_us());
        if (!stale && t < 64)
            req->tried |= 1ull << t;
    }
    close_upstream(req);
    if (req->up_state == TG_UP_RECEIVING) {
        tg_conn_fail(c);
        return;
    }
    if (can_retry(req, stale, kind, 0)) {
        if (stale) {
            req->stale_retries++;
            attempt(req);
        } else {
            retry(req);
        }
        return;
    }
    tg_log_info("upstream %s: %s (request %.*s)", req->pool->conf->name, msg,
                (int)req->request_id_len, req->request_id);
    tg_conn_respond_error(c, status, msg);
}

/* Route timeout, per-try timeout, or the end of a backoff. */
static void tries_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_req_t *req = arg;
    tg_tries_t *t = &req->tries;
    if (t->backing_off) {
        t->backing_off = false;
        if (t->deadline_ms && tg_now_ms() >= t->deadline_ms) {
            tg_conn_respond_error(req->conn, 504, "upstream timed out");
            return;
        }
        attempt(req);
        return;
    }
    if (req->up_state != TG_UP_SENDING)
        return;
    if (t->deadline_ms && tg_now_ms() >= t->deadline_ms)
        req->no_retry = true; /* the route's time is up: no other try */
    TG_STAT_INC(req->pool, timeouts);
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
    size_t cap =
        h->method_len + req->path_len + req->query_len + 2 * host_len + req->request_id_len + 512;
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
            upstream_failed(req, 502, "invalid response from upstream", true, false, 0);
            *gone = true;
            return true;
        }
        if (resp.status < 200) {
            /* Interim responses are ours to absorb: we answered Expect ourselves. */
            evbuffer_drain(in, (size_t)r);
            continue;
        }
        tg_upool_report_success(req->pool, req->up->target);
        req->up_head_us = tg_now_us();
        tg_balance_observe(req->pool, req->up->target, req->up_head_us - req->tries.try_start_us,
                           req->up_head_us);
        tg_outlier_report(req->pool->conf, req->up->target,
                          resp.status >= 500 ? TG_OUTCOME_5XX : TG_OUTCOME_OK, resp.status,
                          tg_now_ms());
        if (req->route->retry != NULL && can_retry(req, false, 0, resp.status)) {
            /* An answer the policy retries: this connection goes (its body
             * is not read), another target gets the request. */
            if (req->up->target < 64)
                req->tried |= 1ull << req->up->target;
            close_upstream(req);
            retry(req);
            *gone = true;
            return true;
        }
        if (req->tries.timer != NULL)
            evtimer_del(req->tries.timer);
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
            upstream_failed(req, 502, "invalid response from upstream", true, false, 0);
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
        uint64_t t = response_timeout(req);
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
        pending_done(req);
        set_upstream_timeouts(req);
        return;
    }
    if (req->up_state == TG_UP_RECEIVING) {
        if (what & TG_STREAM_EOF) {
            req->up_eof = true;
            pump_response(req);
        } else {
            TG_STAT_INC(req->pool, resets);
            tg_conn_fail(req->conn);
        }
        return;
    }
    if (what & TG_STREAM_TIMEOUT) {
        TG_STAT_INC(req->pool, timeouts);
        upstream_failed(req, 504,
                        uc->connected ? "upstream timed out" : "upstream connect timed out", true,
                        false, uc->connected ? TG_FAIL_TIMEOUT : TG_FAIL_CONNECT);
        return;
    }
    if (!uc->connected) {
        TG_STAT_INC(req->pool, connect_errors);
        upstream_failed(req, 502, "upstream connect failed", true, false, TG_FAIL_CONNECT);
        return;
    }
    TG_STAT_INC(req->pool, resets);
    bool stale = uc->uses > 0 && tg_stream_input_length(uc->s) == 0;
    upstream_failed(req, 502, "upstream closed the connection", !stale, stale, TG_FAIL_RESET);
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
    if (req->tries.buffering)
        buffer_body(req);
    else
        pump_request(req);
}

void tg_proxy_client_drained(tg_req_t *req)
{
    if (req->up_state == TG_UP_RECEIVING && req->up != NULL)
        pump_response(req);
}

/* ---- start ---- */

/* The gateway's 503 for an upstream that may not take this request now: a
 * circuit-breaker limit or, with all_down: fail_closed, no usable target. */
static void refuse(tg_req_t *req, int limit_id)
{
    const char *limit = limit_id >= 0 ? tg_limit_names[limit_id] : NULL;
    const char *msg = limit ? "upstream overloaded" : "no healthy upstream target";
    if (limit != NULL) {
        TG_SHARED_INC(req->pool->conf->shared->overloaded[limit_id]);
        msg = tg_arena_printf(req->arena, "upstream overloaded: %s", limit);
        tg_request_add_response_header(req, "X-Tollgate-Overloaded", limit, strlen(limit));
    }
    tg_log_info("upstream %s: %s%s%s (request %.*s)", req->pool->conf->name, msg, limit ? ": " : "",
                limit ? limit : "", (int)req->request_id_len, req->request_id);
    tg_conn_respond_error(req->conn, 503, msg);
}

/* Before the first try: the balance key's hash, the route timeout, the
 * timer. */
static void tries_start(tg_req_t *req)
{
    tg_tries_t *t = &req->tries;
    const tg_upstream_conf_t *u = req->pool->conf;
    if (u->balance == TG_BALANCE_HASH) {
        size_t len;
        const char *k = tg_key_get(&u->hash_key, req, &len);
        t->has_hash = k != NULL;
        t->hash = k ? tg_hash64(k, len, 0) : 0;
    }
    if (req->route->timeout_ms)
        t->deadline_ms = tg_now_ms() + req->route->timeout_ms;
    if (t->timer == NULL && (req->route->retry != NULL || req->route->timeout_ms))
        t->timer = evtimer_new(req->conn->worker->base, tries_timer_cb, req);
}

/* Per try: the earlier of the route's deadline and per_try_timeout. */
static void arm_try_timer(tg_req_t *req)
{
    tg_tries_t *t = &req->tries;
    if (t->timer == NULL)
        return;
    const tg_retry_policy_t *rp = req->route->retry;
    uint64_t at = t->deadline_ms;
    t->try_deadline_ms = rp && rp->per_try_timeout_ms ? tg_now_ms() + rp->per_try_timeout_ms : 0;
    if (t->try_deadline_ms && (at == 0 || t->try_deadline_ms < at))
        at = t->try_deadline_ms;
    if (at)
        arm_timer(req, at);
    else
        evtimer_del(t->timer);
}

/* A connection to a target for this try: pooled, or new (counted in
 * max_pending until it is established). A target that reached
 * max_connections meanwhile on another worker is left for another. Returns
 * false when the request was refused (and is gone); else *uc is the
 * connection, or NULL when connecting to *target failed (errno). */
static bool connect_some(tg_req_t *req, size_t *target, tg_uconn_t **uc)
{
    tg_upool_t *p = req->pool;
    for (size_t round = 0; round <= p->conf->ntargets; round++) {
        tg_pick_result_t why;
        size_t t =
            tg_balance_pick(p, tg_now_ms(), req->tried, req->tries.has_hash, req->tries.hash, &why);
        if (t == SIZE_MAX) {
            refuse(req, why == TG_PICK_MAX_CONNS ? TG_LIMIT_MAX_CONNECTIONS : -1);
            return false;
        }
        *target = t;
        if ((*uc = tg_upool_take_idle(p, t)) != NULL)
            return true;
        if (!tg_shared_enter(&p->conf->shared->pending, p->conf->circuit.max_pending)) {
            refuse(req, TG_LIMIT_MAX_PENDING);
            return false;
        }
        req->tries.pending = true;
        *uc = tg_upool_connect(p, t);
        if (*uc != NULL || errno != EBUSY)
            return true;
        pending_done(req);
    }
    refuse(req, TG_LIMIT_MAX_CONNECTIONS);
    return false;
}

static void attempt(tg_req_t *req)
{
    tg_upool_t *p = req->pool;
    if (req->attempts == 0)
        tries_start(req);
    size_t t;
    tg_uconn_t *uc;
    if (!connect_some(req, &t, &uc))
        return; /* refused: the request is gone */
    req->attempts++;
    req->target = t;
    req->target_used = true;
    if (req->up_start_us == 0)
        req->up_start_us = tg_now_us();
    req->tries.try_start_us = tg_now_us();
    req->up_state = TG_UP_SENDING;
    if (uc == NULL) {
        tg_log_warn("upstream %s: cannot connect to %s: %s", p->conf->name,
                    p->conf->targets[t].name, strerror(errno));
        pending_done(req);
        tg_upool_report_failure(p, t, tg_now_ms());
        tg_outlier_report(p->conf, t, TG_OUTCOME_GATEWAY, 0, tg_now_ms());
        if (t < 64)
            req->tried |= 1ull << t;
        if (can_retry(req, false, TG_FAIL_CONNECT, 0)) {
            retry(req);
            return;
        }
        tg_conn_respond_error(req->conn, 502, "upstream connect failed");
        return;
    }
    req->up = uc;
    tg_stream_setcb(uc->s, up_read_cb, up_write_cb, up_event_cb, req);
    tg_stream_set_watermarks(uc->s, TG_OUT_HIGH, TG_OUT_HIGH / 4);
    set_upstream_timeouts(req);
    arm_try_timer(req);
    /* A pooled connection is connected: its head goes out at once (a new
     * one sends it once connected). */
    struct evbuffer *scratch = req->conn->worker->scratch;
    write_upstream_head(req, scratch);
    if (req->tries.body != NULL) { /* kept whole: a copy goes, for the next try */
        size_t n = evbuffer_get_length(req->tries.body);
        evbuffer_add(scratch, evbuffer_pullup(req->tries.body, (ev_ssize_t)n), n);
    }
    tg_stream_send(uc->s, scratch);
    tg_stream_read_enable(uc->s, true);
    pump_request(req);
}

/* A body the route's retry policy may have to send twice is read whole
 * first, up to TG_RETRY_BODY_MAX (nginx buffers request bodies for its
 * proxy_next_upstream the same way). Larger and chunked bodies stream and
 * are never retried once a byte went. */
static bool keep_body_for_retry(const tg_req_t *req)
{
    const tg_retry_policy_t *rp = req->route->retry;
    return rp != NULL && rp->attempts > 1 && (rp->methods & req->method_bit) &&
           req->req_tmp == NULL && !req->upgrade && req->body.kind == TG_BODY_LENGTH &&
           !req->body.done && req->body.remaining > 0 && req->body.remaining <= TG_RETRY_BODY_MAX;
}

/* Reads the kept body; the first try starts once it is whole. */
static void buffer_body(tg_req_t *req)
{
    tg_conn_t *c = req->conn;
    int r = tg_body_pump(&req->body, tg_stream_input(c->s), req->tries.body, SIZE_MAX);
    if (r == TG_BODY_MORE)
        return;
    req->tries.buffering = false;
    if (r != TG_BODY_DONE) {
        tg_conn_respond_error(c, r == TG_BODY_TOO_LARGE ? 413 : 400,
                              r == TG_BODY_TOO_LARGE
                                  ? "request body too large"
                                  : (req->body.error ? req->body.error : "invalid request body"));
        return;
    }
    tg_stream_set_timeouts(c->s, 0, 0);
    attempt(req);
}

static void start_upstream(tg_req_t *req)
{
    const tg_upstream_conf_t *u = req->pool->conf;
    if (!tg_shared_enter(&u->shared->requests, u->circuit.max_requests)) {
        refuse(req, TG_LIMIT_MAX_REQUESTS);
        return;
    }
    req->tries.counted = true;
    if (keep_body_for_retry(req)) {
        req->tries.body = evbuffer_new();
        req->tries.buffering = req->tries.body != NULL;
        if (req->tries.buffering) {
            buffer_body(req);
            return;
        }
    }
    attempt(req);
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
        if (req->route->split != NULL) /* after the plugins: sticky may read a claim */
            req->pool = &req->gen->pools[tg_split_choose(req->route->split, req)->index];
        if (req->route->aggregate != NULL)
            tg_aggregate_start(req);
        else
            start_upstream(req);
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
    tg_proxy_bind_chain(req, req->route->chain);
    if (h->flags & TG_HF_EXPECT_OTHER) {
        tg_conn_respond_error(c, 417, "unsupported expectation");
        return;
    }
    uint64_t max_body = lim->max_body_size;
    if (req->route->has_max_body_size) /* the route's, instead of limits' */
        req->body.limit = max_body = req->route->max_body_size;
    if (h->body_kind == TG_BODY_LENGTH && max_body && h->content_length > max_body) {
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
