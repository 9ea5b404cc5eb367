#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "http_response.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "request_head.h"
#include "response.h"
#include "tls.h"
#include "tollgate/clock.h"
#include "tollgate/request.h"
#include "tunnel.h"

static void conn_free(tg_conn_t *c);
static void conn_read_cb(struct bufferevent *bev, void *arg);

static void arm_timer(tg_conn_t *c, uint64_t ms, bool head)
{
    struct timeval tv = tg_timeval_ms(ms);
    c->head_timer = head;
    evtimer_add(c->timer, &tv);
}

static void set_client_timeouts(tg_conn_t *c, uint64_t read_ms)
{
    const tg_limits_t *l = &c->worker->cfg->limits;
    struct timeval wt = tg_timeval_ms(l->send_timeout_ms), rt = tg_timeval_ms(read_ms);
    bufferevent_set_timeouts(c->bev, read_ms ? &rt : NULL, &wt);
}

/* A keep-alive connection idle this long gives back its bufferevent and
 * buffers until its next byte (see park()). Short enough that 10,000 idle
 * clients cost little, long enough that a busy connection never parks. */
#define PARK_AFTER_MS 1000
/* With this many connections on a worker, an idle connection parks as soon
 * as its response is flushed: memory then grows with busy connections only. */
#define PARK_PRESSURE 1024

static void park(tg_conn_t *c, uint64_t remaining_ms);
static bool under_pressure(const tg_conn_t *c);

/* Back to waiting for a request head: idle timeout until its first byte. */
static void become_idle(tg_conn_t *c)
{
    uint64_t idle = c->worker->cfg->limits.idle_timeout_ms;
    c->state = TG_CONN_IDLE;
    c->scanned = 0;
    set_client_timeouts(c, 0);
    c->idle_since_ms = tg_now_ms();
    /* The timer first fires to park the connection, then at the idle timeout. */
    arm_timer(c, !c->tls && idle > PARK_AFTER_MS ? PARK_AFTER_MS : idle, false);
    bufferevent_enable(c->bev, EV_READ);
    if (under_pressure(c)) /* the response went out at once (io.h): park now */
        park(c, idle);
}

static void start_closing(tg_conn_t *c)
{
    c->state = TG_CONN_CLOSING;
    evtimer_del(c->timer);
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_free(c);
        return;
    }
    /* Lingering: the write callback closes once the output is flushed; the
     * send timeout bounds a client that never reads it. */
    bufferevent_enable(c->bev, EV_WRITE);
}

static void end_request(tg_conn_t *c)
{
    tg_req_t *req = c->req;
    if (req == NULL)
        return;
    tg_proxy_release(req);
    tg_chain_log(req);
    tg_metrics_request_done(c->worker, req->route, req->completed ? req->status : 0,
                            tg_now_us() - req->start_mono_us);
    if (req->resp_tmp)
        evbuffer_free(req->resp_tmp);
    if (req->req_tmp)
        evbuffer_free(req->req_tmp);
    tg_gen_t *gen = req->gen;
    c->req = NULL;
    /* Runs the plugins' cleanups: a paused plugin's pending work is cancelled here. */
    tg_arena_reset(c->arena);
    /* Last: this may free the generation (and its plugins' worker state). */
    tg_worker_gen_release(gen);
    tg_worker_put_arena(c->worker, c->arena);
    c->arena = NULL;
}

/* A request object for what arrived, even when it is malformed, so that
 * rejected requests are logged and counted like the others. */
static tg_req_t *new_request(tg_conn_t *c)
{
    c->arena = tg_worker_get_arena(c->worker);
    tg_req_t *req = tg_arena_calloc(c->arena, sizeof(*req));
    req->conn = c;
    req->arena = c->arena;
    req->gen = tg_worker_gen_acquire(c->worker);
    req->cfg = req->gen->cfg;
    req->start_mono_us = tg_now_us();
    req->start_us = tg_wall_us();
    tg_proxy_bind_chain(req, req->cfg->global_chain);
    c->req = req;
    return req;
}

void tg_conn_request_done(tg_conn_t *c)
{
    tg_req_t *req = c->req;
    bool body_unread = req && !req->body.done;
    end_request(c);
    c->requests++;
    if (c->close_after || body_unread || c->client_eof || c->worker->draining) {
        start_closing(c);
        return;
    }
    become_idle(c);
    /* Pipelined requests already buffered are handled from the event loop,
     * not from here, so that a long pipeline cannot grow the stack. */
    if (c->bev != NULL && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        bufferevent_trigger(c->bev, EV_READ, BEV_OPT_DEFER_CALLBACKS);
}

void tg_conn_abort(tg_conn_t *c)
{
    conn_free(c);
}

void tg_conn_fail(tg_conn_t *c)
{
    end_request(c);
    start_closing(c);
}

void tg_conn_respond_error(tg_conn_t *c, int status, const char *msg)
{
    tg_req_t *req = c->req ? c->req : new_request(c);
    if (req->request_id_len == 0) {
        tg_request_id_generate(&c->worker->ids, req->request_id);
        req->request_id_len = 32;
    }
    if (req->http.method == NULL)
        req->body.done = true; /* nothing of a body was ever expected */
    tg_request_respond_error(req, status, msg);
    tg_conn_send_reply(c);
}

static void put_header(struct evbuffer *out, const tg_http_header_t *h)
{
    evbuffer_add(out, h->name, h->name_len);
    evbuffer_add(out, ": ", 2);
    evbuffer_add(out, h->value, h->value_len);
    evbuffer_add(out, "\r\n", 2);
}

void tg_conn_send_reply(tg_conn_t *c)
{
    tg_req_t *req = c->req;
    const tg_reply_t *rp = &req->reply;
    int status = rp->status;
    /* A reply while the connection is still reading a head is a rejection
     * before routing (parse error, refused target or Host, 414, 431, 408,
     * 505, ...): the head was not accepted, so where the next request would
     * start cannot be trusted, and that head is still in the input buffer.
     * One reply, then close (RFC 9112 section 9.6 lets either side close);
     * this is the one place that decides it, whatever the status. */
    bool rejected_head = c->state == TG_CONN_IDLE;
    bool close = rejected_head || c->close_after || c->worker->draining || !req->body.done ||
                 (req->http.flags & TG_HF_CONN_CLOSE) ||
                 (req->http.minor_version == 0 && !(req->http.flags & TG_HF_CONN_KEEPALIVE));
    tg_http_header_t stack[8];
    size_t cap = rp->nheaders + 1 <= 8 ? 8 : rp->nheaders + 1;
    tg_http_header_t *hs = cap == 8 ? stack : tg_arena_alloc(req->arena, cap * sizeof(*hs));
    tg_http_response_t resp = {.status = status, .headers = hs, .num_headers = 0};
    if (rp->content_type != NULL)
        hs[resp.num_headers++] =
            (tg_http_header_t){"Content-Type", 12, rp->content_type, strlen(rp->content_type)};
    for (size_t i = 0; i < rp->nheaders; i++)
        hs[resp.num_headers++] = rp->headers[i];
    if (req->chain != NULL && req->chain->has_response_head) {
        req->resp = &resp;
        req->resp_cap = cap;
        int replaced = tg_chain_response_head(req);
        req->resp = NULL;
        if (replaced) { /* a hook's answer (or a 500) replaces this reply */
            tg_response_drop_filters(req);
            tg_conn_send_reply(c);
            return;
        }
    }
    req->status = resp.status;
    if (close)
        c->close_after = true;
    /* A plugin that asked for whole bodies (response shaping) gets generated
     * ones too: aggregated documents are shaped like upstream ones. */
    struct evbuffer *body = evbuffer_new();
    evbuffer_add(body, rp->body, rp->len);
    if (req->resp_buffer_limit && !req->resp_replaced && req->chain->has_response_body) {
        /* A body over the limit is shown as unbuffered, like a proxied one. */
        req->resp_buffering = rp->len <= req->resp_buffer_limit;
        if (tg_chain_body(req, true, body, true) < 0) {
            /* A hook refused it: req->reply now holds its answer. */
            evbuffer_free(body);
            tg_response_drop_filters(req);
            tg_conn_send_reply(c);
            return;
        }
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t before = evbuffer_get_length(out);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", resp.status, tg_http_reason(resp.status));
    for (size_t i = 0; i < resp.num_headers; i++)
        put_header(out, &resp.headers[i]);
    for (size_t i = 0; i < req->nextra; i++)
        put_header(out, &req->extra_resp[i]);
    evbuffer_add_printf(out, "Content-Length: %zu\r\nX-Request-Id: %.*s\r\n%s\r\n",
                        evbuffer_get_length(body), (int)req->request_id_len, req->request_id,
                        close ? "Connection: close\r\n" : "");
    if (req->method_bit != TG_METHOD_HEAD)
        evbuffer_add_buffer(out, body);
    evbuffer_free(body);
    req->bytes_out += evbuffer_get_length(out) - before;
    req->completed = true;
    tg_conn_request_done(c);
}

/* Finds the end of the head without re-parsing it on every read: the parser
 * runs once a blank line is present (or the size limit is reached). */
static bool head_may_be_complete(tg_conn_t *c, const char *p, size_t n)
{
    size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
    for (size_t i = from; i + 1 < n; i++) {
        if (p[i] == '\n' &&
            (p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')))
            return true;
    }
    c->scanned = n;
    return false;
}

static void handle_head(tg_conn_t *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    const tg_limits_t *lim = &c->worker->cfg->limits;
    size_t len = evbuffer_get_length(in);
    if (len == 0)
        return;
    if (!c->head_timer)
        arm_timer(c, lim->header_timeout_ms, true);
    size_t n = len < lim->max_header_size ? len : (size_t)lim->max_header_size;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    if (!head_may_be_complete(c, p, n)) {
        if (len >= lim->max_header_size)
            tg_conn_respond_error(c, 431, "request header fields too large");
        return;
    }
    tg_req_t *req = new_request(c);
    int r = tg_request_head_parse(req, p, n);
    if (r == TG_HTTP_INCOMPLETE) {
        if (len >= lim->max_header_size)
            tg_conn_respond_error(c, 431, "request header fields too large");
        else
            end_request(c);
        return;
    }
    if (r < 0) {
        req->body.done = true;
        tg_conn_respond_error(c, req->http.error_status ? req->http.error_status : 400,
                              req->http.error_reason ? req->http.error_reason : "bad request");
        return;
    }
    evbuffer_drain(in, (size_t)r);
    c->scanned = 0;
    evtimer_del(c->timer);
    c->head_timer = false;
    c->state = TG_CONN_ACTIVE;
    set_client_timeouts(c, lim->body_timeout_ms);
    tg_proxy_handle(req);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    tg_conn_t *c = arg;
    switch (c->state) {
    case TG_CONN_IDLE:
        handle_head(c);
        break;
    case TG_CONN_ACTIVE:
        tg_proxy_client_readable(c->req);
        break;
    case TG_CONN_CLOSING:
        evbuffer_drain(bufferevent_get_input(c->bev),
                       evbuffer_get_length(bufferevent_get_input(c->bev)));
        break;
    case TG_CONN_TUNNEL:
        tg_tunnel_client_readable(c->req);
        break;
    }
}

static bool under_pressure(const tg_conn_t *c)
{
    return c->worker->nconns > PARK_PRESSURE && !c->tls && !c->head_timer &&
           evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
           evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    tg_conn_t *c = arg;
    switch (c->state) {
    case TG_CONN_CLOSING:
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
            conn_free(c);
        break;
    case TG_CONN_ACTIVE:
        tg_proxy_client_drained(c->req);
        break;
    case TG_CONN_TUNNEL:
        tg_tunnel_client_drained(c->req);
        break;
    case TG_CONN_IDLE:
        if (under_pressure(c))
            park(c, c->worker->cfg->limits.idle_timeout_ms);
        break;
    }
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    tg_conn_t *c = arg;
    if (c->state == TG_CONN_TUNNEL) {
        tg_tunnel_client_event(c->req, what);
        return;
    }
    if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && c->state == TG_CONN_ACTIVE &&
        c->req->body.done) {
        /* Half-close after a complete request: answer it, then close. */
        c->client_eof = true;
        bufferevent_disable(c->bev, EV_READ);
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && c->state == TG_CONN_ACTIVE &&
        c->req->up_state != TG_UP_RECEIVING && !c->req->body.done) {
        tg_proxy_release(c->req);
        tg_conn_respond_error(c, 408, "request body timeout");
        return;
    }
    if (what & BEV_EVENT_CONNECTED)
        return; /* bufferevent_openssl: the TLS handshake completed */
    if (c->tls && (what & BEV_EVENT_ERROR))
        tg_tls_count_handshake_failure(c->bev, c->worker->id); /* counts only failed handshakes */
    conn_free(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg);
static void setup_bev(tg_conn_t *c);

/* Parked: only the socket and one event remain (nginx frees its buffers on
 * idle keep-alive connections for the same reason). The event waits for the
 * next byte or the rest of the idle timeout. */
static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    tg_conn_t *c = arg;
    tg_worker_t *w = c->worker;
    if (!(what & EV_READ)) {
        conn_free(c);
        return;
    }
    c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        conn_free(c);
        return;
    }
    event_assign(c->timer, w->base, -1, 0, timer_cb, c);
    setup_bev(c);
    c->state = TG_CONN_IDLE;
    c->head_timer = false;
    set_client_timeouts(c, 0);
    arm_timer(c, w->cfg->limits.header_timeout_ms, true);
    bufferevent_enable(c->bev, EV_READ);
}

static void park(tg_conn_t *c, uint64_t remaining_ms)
{
    evtimer_del(c->timer); /* it may still be armed for the idle timeout */
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    bufferevent_setfd(c->bev, -1); /* keep the socket open */
    bufferevent_free(c->bev);
    c->bev = NULL;
    struct timeval tv = tg_timeval_ms(remaining_ms);
    event_assign(c->timer, c->worker->base, fd, EV_READ, wake_cb, c);
    event_add(c->timer, &tv);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tg_conn_t *c = arg;
    if (c->state == TG_CONN_TUNNEL) {
        tg_tunnel_timer(c->req);
        return;
    }
    if (c->state != TG_CONN_IDLE)
        return;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (c->head_timer && evbuffer_get_length(in) > 0) {
        tg_conn_respond_error(c, 408, "request header timeout");
        return;
    }
    uint64_t idle = c->worker->cfg->limits.idle_timeout_ms;
    uint64_t elapsed = tg_now_ms() - c->idle_since_ms;
    if (!c->head_timer && elapsed < idle && evbuffer_get_length(in) == 0 &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        park(c, idle - elapsed);
        return;
    }
    /* Idle keep-alive (or a connection that never sent anything): just close. */
    conn_free(c);
}

static void setup_bev(tg_conn_t *c)
{
    const tg_limits_t *l = &c->worker->cfg->limits;
    size_t high = l->max_header_size + 4096 > TG_OUT_HIGH ? l->max_header_size + 4096 : TG_OUT_HIGH;
    bufferevent_setwatermark(c->bev, EV_READ, 0, high);
    bufferevent_setwatermark(c->bev, EV_WRITE, TG_OUT_HIGH / 4, 0);
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
}

static void fill_peer(tg_conn_t *c, const struct sockaddr *sa, int salen)
{
    memcpy(&c->peer, sa, (size_t)salen < sizeof(c->peer) ? (size_t)salen : sizeof(c->peer));
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->peer_ip,
                  sizeof(c->peer_ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->peer_ip,
                  sizeof(c->peer_ip));
    else
        strcpy(c->peer_ip, "unix");
}

void tg_conn_accept(tg_worker_t *w, size_t listener, int fd, const struct sockaddr *sa, int salen)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    tg_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->worker = w;
    c->listener = listener;
    const tg_tls_server_t *tls = w->cfg->listeners[listener].tls;
    c->tls = tls != NULL;
    c->bev = tls != NULL ? tg_tls_server_bev(tls, w->base, fd)
                         : bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(w->base, timer_cb, c);
    if (c->bev == NULL || c->timer == NULL) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            close(fd);
        if (c->timer)
            event_free(c->timer);
        free(c);
        return;
    }
    fill_peer(c, sa, salen);
    const tg_limits_t *l = &w->cfg->limits;
    setup_bev(c);
    tg_worker_conn_added(w, c);
    c->state = TG_CONN_IDLE;
    set_client_timeouts(c, 0);
    /* The first request of a connection gets header_timeout from accept. */
    arm_timer(c, l->header_timeout_ms, true);
    bufferevent_enable(c->bev, EV_READ);
}

void tg_conn_drain(tg_conn_t *c)
{
    c->close_after = true;
    if (c->state == TG_CONN_IDLE &&
        (c->bev == NULL || evbuffer_get_length(bufferevent_get_input(c->bev)) == 0))
        conn_free(c);
}

static void conn_free(tg_conn_t *c)
{
    if (c->req) {
        tg_proxy_release(c->req);
        end_request(c);
    }
    tg_worker_t *w = c->worker;
    if (c->tls && c->bev != NULL) {
        /* close_notify, so that a client can tell our close from a truncation
         * (bufferevent_openssl closes the socket without it). */
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        if (ssl != NULL && SSL_is_init_finished(ssl))
            SSL_shutdown(ssl);
    }
    if (c->bev == NULL) /* parked: the event holds the socket */
        close(event_get_fd(c->timer));
    event_free(c->timer);
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    tg_worker_conn_removed(w, c);
    free(c);
}
