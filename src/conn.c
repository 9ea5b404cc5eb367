#include "conn.h"
#include "h2_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "dispatch.h"
#include "h1_head.h"
#include "heap_trim.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "proto.h"
#include "request_head.h"
#include "response.h"
#include "tls.h"
#include "tollgate/clock.h"
#include "tollgate/request.h"
#include "trace_span.h"
#include "traffic_metrics.h"
#include "tunnel.h"

static void conn_free(tg_conn_t *c);
static const tg_proto_t h1;
static void conn_read_cb(tg_stream_t *s, void *arg);
static void timer_cb(evutil_socket_t fd, short what, void *arg);

static void arm_timer(tg_conn_t *c, uint64_t ms, bool head)
{
    struct timeval tv = tg_timeval_ms(ms);
    c->head_timer = head;
    c->idle_timer = !head;
    evtimer_add(c->timer, &tv);
}

static void set_client_timeouts(tg_conn_t *c, uint64_t read_ms)
{
    tg_stream_set_timeouts(c->s, read_ms, c->worker->cfg->limits.send_timeout_ms);
}

/* A keep-alive connection idle this long gives back its buffers until its
 * next byte (see park()); TLS ones too (OpenSSL's own record buffers, kept
 * between the requests of a busy connection). Short enough that 10,000 idle
 * clients cost little, long enough that a busy connection never parks. */
#define PARK_AFTER_MS 1000
/* With this many connections on a worker, an idle connection parks as soon
 * as its response is flushed: memory then grows with busy connections only. */
#define PARK_PRESSURE 1024

static int park(tg_conn_t *c, uint64_t remaining_ms);
static bool under_pressure(const tg_conn_t *c);

/* The timer first fires to park an idle connection, then at the idle timeout. */
static uint64_t first_idle_ms(const tg_conn_t *c)
{
    uint64_t idle = c->worker->cfg->limits.idle_timeout_ms;
    return idle > PARK_AFTER_MS ? PARK_AFTER_MS : idle;
}

/* Back to waiting for a request head: idle timeout until its first byte. */
static void become_idle(tg_conn_t *c)
{
    uint64_t idle = c->worker->cfg->limits.idle_timeout_ms;
    c->state = TG_CONN_IDLE;
    c->scanned = 0;
    set_client_timeouts(c, 0);
    c->idle_since_ms = tg_now_ms();
    /* An idle timer still pending from an earlier idle period fires early and
     * re-arms for what is left (timer_cb): a busy connection costs no timer
     * operation per request, only one a second. */
    if (!(c->idle_timer && evtimer_pending(c->timer, NULL)))
        arm_timer(c, first_idle_ms(c), false);
    tg_stream_read_enable(c->s, true);
    /* A connection that served a request will likely serve more: OpenSSL's
     * buffers stay until it parks (a malloc and free of ~16 KiB each way per
     * request otherwise). */
    tg_stream_keep_buffers(c->s);
    if (under_pressure(c)) /* the response went out at once (tg_stream_send): park now */
        park(c, idle);
}

static void start_closing(tg_conn_t *c)
{
    c->state = TG_CONN_CLOSING;
    evtimer_del(c->timer);
    tg_stream_read_enable(c->s, false);
    if (tg_stream_output_length(c->s) == 0) {
        conn_free(c);
        return;
    }
    /* Lingering: the write callback closes once the output is flushed; the
     * send timeout bounds a client that never reads it. */
}

static void end_request(tg_conn_t *c)
{
    tg_request_t *req = c->req;
    if (req == NULL)
        return;
    tg_dispatch_release(req);
    if (c->staged) { /* a response that never completed */
        evbuffer_drain(c->worker->stage, evbuffer_get_length(c->worker->stage));
        c->staged = false;
    }
    c->chunked = false;
    tg_chain_log(req);
    tg_trace_end(req);
    uint64_t duration_us = tg_now_us() - req->time.start_mono_us;
    tg_metrics_request_done(c->worker, req->route, req->resp.completed ? req->resp.status : 0,
                            duration_us);
    tg_traffic_request_done(req, duration_us);
    if (req->resp.tmp)
        evbuffer_free(req->resp.tmp);
    if (req->client.body_tmp)
        evbuffer_free(req->client.body_tmp);
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
static tg_request_t *new_request(tg_conn_t *c)
{
    c->arena = tg_worker_get_arena(c->worker);
    tg_request_t *req = tg_arena_calloc(c->arena, sizeof(*req));
    req->conn = c;
    req->proto = c->proto != NULL ? c->proto : &h1;
    req->arena = c->arena;
    req->gen = tg_worker_gen_acquire(c->worker);
    req->cfg = req->gen->cfg;
    req->time.start_mono_us = tg_now_us();
    /* Not libevent's cached time of day: it is derived from the monotonic
     * clock with an offset refreshed every few seconds, and drifts from the
     * wall clock by milliseconds (a log line stamped after its response
     * arrived); clock_gettime is a vDSO call. */
    req->time.start_us = tg_wall_us();
    tg_dispatch_bind_chain(req, req->cfg->global_chain);
    c->req = req;
    return req;
}

static void request_done(tg_conn_t *c)
{
    tg_request_t *req = c->req;
    bool body_unread = req && !req->client.body.done;
    end_request(c);
    c->requests++;
    if (c->close_after || body_unread || c->client_eof || c->worker->draining) {
        start_closing(c);
        return;
    }
    become_idle(c);
    /* Pipelined requests already buffered are handled from the event loop,
     * not from here, so that a long pipeline cannot grow the stack. */
    if (tg_stream_input_length(c->s) > 0)
        tg_stream_trigger_read(c->s);
}

static void reject(tg_conn_t *c, int status, const char *msg);

void tg_conn_request_done(tg_conn_t *c)
{
    request_done(c);
}

void tg_conn_reject(tg_conn_t *c, int status, const char *msg)
{
    reject(c, status, msg);
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

/* A gateway error for the current request, or for what arrived when no head
 * parsed (a request object is made for it, so that it is logged and counted
 * like the others). */
static void reject(tg_conn_t *c, int status, const char *msg)
{
    tg_request_t *req = c->req ? c->req : new_request(c);
    if (req->request_id_len == 0) {
        tg_request_id_generate(&c->worker->ids, req->request_id);
        req->request_id_len = 32;
    }
    if (req->client.http.method == NULL)
        req->client.body.done = true; /* nothing of a body was ever expected */
    if (status == 405) {              /* RFC 9110 section 15.5.6: a 405 lists what is allowed */
        static const char allow[] = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";
        tg_request_add_response_header(req, "Allow", allow, sizeof(allow) - 1);
    }
    tg_response_error(req, status, msg);
}

/* Finds the end of the head without re-parsing it on every read: the parser
 * runs once a blank line is present (or the size limit is reached). */
static bool head_may_be_complete(tg_conn_t *c, const char *p, size_t n)
{
    size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
    for (const char *q = p + from; (q = memchr(q, '\n', n - (size_t)(q - p))) != NULL; q++) {
        size_t i = (size_t)(q - p); /* one memchr per line, not a test per byte */
        if (i + 1 < n && (p[i + 1] == '\n' || (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n')))
            return true;
    }
    c->scanned = n;
    return false;
}

/* Part of a head arrived: header_timeout runs from its first byte (a head
 * that arrives whole never arms it). */
static void head_started(tg_conn_t *c)
{
    if (!c->head_timer)
        arm_timer(c, c->worker->cfg->limits.header_timeout_ms, true);
}

static void handle_head(tg_conn_t *c)
{
    struct evbuffer *in = tg_stream_input(c->s);
    const tg_limits_t *lim = &c->worker->cfg->limits;
    size_t len = evbuffer_get_length(in);
    if (len == 0)
        return;
    size_t n = len < lim->max_header_size ? len : (size_t)lim->max_header_size;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    if (!head_may_be_complete(c, p, n)) {
        if (len >= lim->max_header_size)
            reject(c, 431, "request header fields too large");
        else
            head_started(c);
        return;
    }
    tg_request_t *req = new_request(c);
    int r = tg_request_head_parse(req, p, n);
    if (r == TG_HTTP_INCOMPLETE) {
        if (len >= lim->max_header_size) {
            reject(c, 431, "request header fields too large");
        } else {
            end_request(c);
            head_started(c);
        }
        return;
    }
    if (r < 0) {
        req->client.body.done = true;
        reject(c, req->client.http.error_status ? req->client.http.error_status : 400,
               req->client.http.error_reason ? req->client.http.error_reason : "bad request");
        return;
    }
    evbuffer_drain(in, (size_t)r);
    c->scanned = 0;
    /* The timer may stay armed: it does nothing while a request is active. */
    c->head_timer = false;
    c->state = TG_CONN_ACTIVE;
    /* The body timeout runs only while a body is read (h1_input_done ends
     * it): a request without one may wait for its upstream as long as that
     * takes. */
    const tg_http_request_t *h = &req->client.http;
    if (h->body_kind != TG_BODY_NONE && !(h->body_kind == TG_BODY_LENGTH && h->content_length == 0))
        set_client_timeouts(c, lim->body_timeout_ms);
    tg_dispatch_request(req);
}

static void conn_read_cb(tg_stream_t *s, void *arg)
{
    tg_conn_t *c = arg;
    /* HTTP/2 by ALPN or prior knowledge: h2_conn.c takes the connection over. */
    if (c->requests == 0 && c->state == TG_CONN_IDLE && c->proto == NULL && tg_h2_conn_detect(c))
        return;
    if (c->parked) { /* its next request begins: header_timeout from here */
        c->timer = tg_pool_event_new(c->worker->base, -1, 0, timer_cb, c);
        if (c->timer == NULL) {
            conn_free(c);
            return;
        }
        c->parked = false;
        set_client_timeouts(c, 0);
    }
    switch (c->state) {
    case TG_CONN_IDLE:
        handle_head(c);
        break;
    case TG_CONN_ACTIVE:
        tg_dispatch_client_readable(c->req);
        break;
    case TG_CONN_CLOSING:
        evbuffer_drain(tg_stream_input(s), tg_stream_input_length(s));
        break;
    case TG_CONN_TUNNEL:
        tg_tunnel_client_readable(c->req);
        break;
    }
}

static bool under_pressure(const tg_conn_t *c)
{
    return c->worker->nconns > PARK_PRESSURE && !c->head_timer && !c->parked &&
           tg_stream_input_length(c->s) == 0 && tg_stream_output_length(c->s) == 0;
}

static void conn_write_cb(tg_stream_t *s, void *arg)
{
    tg_conn_t *c = arg;
    switch (c->state) {
    case TG_CONN_CLOSING:
        if (tg_stream_output_length(s) == 0)
            conn_free(c);
        break;
    case TG_CONN_ACTIVE:
        tg_dispatch_client_drained(c->req);
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

static void conn_event_cb(tg_stream_t *s, short what, void *arg)
{
    tg_conn_t *c = arg;
    if (what & TG_STREAM_CONNECTED) { /* a TLS handshake completed: its facts, once */
        c->tls_info = tg_tls_info_record(tg_stream_ssl(s));
        if (c->tls_info == NULL)
            conn_free(c);
        return;
    }
    if (c->state == TG_CONN_TUNNEL) {
        tg_tunnel_client_event(c->req, what);
        return;
    }
    if ((what & TG_STREAM_EOF) && (what & TG_STREAM_READING) && c->state == TG_CONN_ACTIVE &&
        c->req->client.body.done) {
        /* Half-close after a complete request: answer it, then close. */
        c->client_eof = true;
        tg_stream_read_enable(c->s, false);
        return;
    }
    if ((what & TG_STREAM_TIMEOUT) && (what & TG_STREAM_READING) && c->state == TG_CONN_ACTIVE &&
        c->req->up.state != TG_UP_RECEIVING && !c->req->client.body.done) {
        tg_dispatch_release(c->req);
        reject(c, 408, "request body timeout");
        return;
    }
    if (c->tls && (what & TG_STREAM_ERROR)) /* counts only failed handshakes */
        tg_tls_count_handshake_failure(tg_stream_ssl(c->s), c->worker->id);
    /* An idle timeout while parked ends here too (the stream's read timeout). */
    conn_free(c);
}

/* Parked: the stream frees its buffers (and, TLS, OpenSSL's) and keeps the
 * socket, its events and the SSL; nginx frees its buffers on idle keep-alive
 * connections for the same reason. The stream's read timeout carries the rest
 * of the idle timeout; the next byte brings the buffers back (conn_read_cb). */
static int park(tg_conn_t *c, uint64_t remaining_ms)
{
    if (tg_stream_park(c->s) < 0)
        return -1;
    /* The timer goes too (it may still be armed for the idle timeout). */
    tg_pool_event_free(c->timer);
    c->timer = NULL;
    c->parked = true;
    set_client_timeouts(c, remaining_ms);
    tg_metrics_connection_parked(c->worker);
    tg_heap_trim_parked(c->worker);
    return 0;
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
    size_t in = tg_stream_input_length(c->s);
    if (c->head_timer && in > 0) {
        reject(c, 408, "request header timeout");
        return;
    }
    uint64_t idle = c->worker->cfg->limits.idle_timeout_ms;
    uint64_t elapsed = tg_now_ms() - c->idle_since_ms;
    if (!c->head_timer && elapsed < first_idle_ms(c)) { /* armed by an earlier idle period */
        arm_timer(c, first_idle_ms(c) - elapsed, false);
        return;
    }
    if (!c->head_timer && elapsed < idle && in == 0 && tg_stream_output_length(c->s) == 0) {
        /* Not parkable now (a TLS record partly received): the idle timeout
         * still holds. */
        if (park(c, idle - elapsed) < 0)
            arm_timer(c, idle - elapsed, false);
        return;
    }
    /* Idle keep-alive (or a connection that never sent anything): just close. */
    conn_free(c);
}

static const tg_stream_cbs_t conn_cbs = {
    .read = conn_read_cb, .write = conn_write_cb, .event = conn_event_cb};

static void setup_stream(tg_conn_t *c)
{
    const tg_limits_t *l = &c->worker->cfg->limits;
    size_t high = l->max_header_size + 4096 > TG_OUT_HIGH ? l->max_header_size + 4096 : TG_OUT_HIGH;
    tg_stream_set_watermarks(c->s, high, TG_OUT_HIGH / 4);
    tg_stream_setcb(c->s, &conn_cbs, c);
}

/* The peer's address as text into ip (INET6_ADDRSTRLEN bytes); its length. */
static size_t peer_text(const struct sockaddr *sa, char *ip)
{
    const void *a = sa->sa_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (inet_ntop(sa->sa_family, a, ip, INET6_ADDRSTRLEN) == NULL)
        strcpy(ip, "?");
    return strlen(ip);
}

tg_conn_t *tg_conn_accept_stream(tg_worker_t *w, size_t listener, tg_stream_t *s,
                                 const struct sockaddr *peer, int salen, bool tls,
                                 const tg_proto_t *proto, void *proto_data)
{
    char ip[INET6_ADDRSTRLEN];
    size_t iplen = peer_text(peer, ip);
    tg_conn_t *c = calloc(1, sizeof(*c) + iplen + 1);
    if (c == NULL || (c->timer = tg_pool_event_new(w->base, -1, 0, timer_cb, c)) == NULL) {
        free(c);
        tg_stream_free(s);
        return NULL;
    }
    c->own_alloc = true;
    c->worker = w;
    c->listener = (uint16_t)listener;
    c->tls = tls;
    c->proto = proto;
    c->proto_data = proto_data;
    c->close_after = true;             /* one exchange per stream */
    c->metrics_slot = TG_TRAFFIC_NONE; /* the client connection is the HTTP/2 one */
    c->s = s;
    memcpy(&c->peer, peer, (size_t)salen < sizeof(c->peer) ? (size_t)salen : sizeof(c->peer));
    memcpy(c->peer_ip, ip, iplen + 1);
    setup_stream(c);
    tg_worker_conn_added(w, c);
    c->state = TG_CONN_IDLE;
    set_client_timeouts(c, 0);
    arm_timer(c, w->cfg->limits.header_timeout_ms, true);
    tg_stream_read_enable(c->s, true);
    return c;
}

void tg_conn_accept(tg_worker_t *w, size_t listener, int fd, const struct sockaddr *sa, int salen)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const tg_tls_server_t *tls = w->cfg->listeners[listener].tls;
    SSL *ssl = NULL;
    if (tls != NULL && (ssl = tg_tls_server_ssl(tls)) == NULL) {
        close(fd);
        return;
    }
    char ip[INET6_ADDRSTRLEN];
    size_t iplen = peer_text(sa, ip);
    tg_conn_t *c;
    tg_stream_t *s = tg_stream_new_with(w->base, fd, ssl, sizeof(*c) + iplen + 1, (void **)&c);
    if (s == NULL) {
        SSL_free(ssl);
        close(fd);
        return;
    }
    c->s = s;
    c->timer = tg_pool_event_new(w->base, -1, 0, timer_cb, c);
    if (c->timer == NULL) {
        tg_stream_free(s); /* the fd, the SSL and c with it */
        return;
    }
    c->worker = w;
    c->listener = (uint16_t)listener;
    c->tls = tls != NULL;
    memcpy(&c->peer, sa, (size_t)salen < sizeof(c->peer) ? (size_t)salen : sizeof(c->peer));
    memcpy(c->peer_ip, ip, iplen + 1);
    c->metrics_slot =
        (uint8_t)tg_traffic_conn_opened(w, w->cfg->listeners[listener].name, TG_PROTO_HTTP1);
    const tg_limits_t *l = &w->cfg->limits;
    setup_stream(c);
    tg_worker_conn_added(w, c);
    c->state = TG_CONN_IDLE;
    set_client_timeouts(c, 0);
    /* The first request of a connection gets header_timeout from accept. */
    arm_timer(c, l->header_timeout_ms, true);
    tg_stream_read_enable(c->s, true);
}

void tg_conn_drain(tg_conn_t *c)
{
    if (c->h2c != NULL) {
        tg_h2_conn_drain(c);
        return;
    }
    c->close_after = true;
    if (c->state == TG_CONN_IDLE && tg_stream_input_length(c->s) == 0)
        conn_free(c);
}

static void conn_free(tg_conn_t *c)
{
    if (c->req)
        end_request(c);
    tg_worker_t *w = c->worker;
    if (c->h2c != NULL)
        tg_h2_conn_free(c);
    tg_pool_event_free(c->timer); /* NULL while parked */
    tg_traffic_conn_closed(w, c->metrics_slot);
    tg_worker_conn_removed(w, c);
    if (!c->own_alloc) /* an HTTP/2 stream's exchange borrows its connection's */
        free(c->tls_info);
    if (c->own_alloc) {
        tg_stream_free(c->s);
        free(c);
        return;
    }
    tg_stream_free(c->s); /* close_notify under TLS; frees c too (its owner area) */
}

/* ---- HTTP/1.1: the protocol of this connection (proto.h) ---- */

static tg_conn_t *conn_of(const tg_request_t *req)
{
    return req->conn;
}

static struct evbuffer *h1_out(tg_conn_t *c)
{
    return c->staged ? c->worker->stage : tg_stream_output(c->s);
}

/* Whether the connection stays open after this response. A reply while the
 * connection is still reading a head is a rejection before routing (parse
 * error, refused target or Host, 414, 431, 408, 505, ...): the head was not
 * accepted, so where the next request would start cannot be trusted, and
 * that head is still in the input buffer. One reply, then close (RFC 9112
 * section 9.6 lets either side close); this is the one place that decides
 * it, whatever the status. A body nobody reads any more (no upstream takes
 * it) closes too. */
static bool h1_keepalive(const tg_conn_t *c, const tg_request_t *req)
{
    const tg_http_request_t *h = &req->client.http;
    return c->state == TG_CONN_ACTIVE && !c->close_after && !c->worker->draining &&
           !c->client_eof && (req->client.body.done || req->up.conn != NULL) &&
           !(h->flags & TG_HF_CONN_CLOSE) &&
           (h->minor_version >= 1 || (h->flags & TG_HF_CONN_KEEPALIVE));
}

static void h1_head(tg_request_t *req, const tg_http_response_t *resp, tg_out_kind_t kind,
                    uint64_t length)
{
    tg_conn_t *c = conn_of(req);
    bool client10 = req->client.http.minor_version == 0;
    tg_h1_head_t h = {
        .resp = resp,
        .extra = req->resp.extra,
        .nextra = req->resp.nextra,
        .request_id = req->request_id,
        .request_id_len = req->request_id_len,
        .length = length,
        .keepalive = h1_keepalive(c, req),
        .client10 = client10,
    };
    switch (kind) {
    case TG_OUT_NONE:
        h.framing = TG_H1_NONE;
        break;
    case TG_OUT_LENGTH:
        h.framing = TG_H1_LENGTH;
        break;
    case TG_OUT_STREAM: /* an HTTP/1.0 client gets a body that ends with the connection */
        h.framing = client10 ? TG_H1_CLOSE : TG_H1_CHUNKED;
        h.keepalive = h.keepalive && !client10;
        break;
    case TG_OUT_UPGRADE:
        h.framing = TG_H1_UPGRADE;
        h.keepalive = true;
        break;
    }
    c->chunked = h.framing == TG_H1_CHUNKED;
    if (!h.keepalive)
        c->close_after = true;
    req->resp.bytes_out += tg_h1_head_write(h1_out(c), &h);
}

static void h1_body(tg_request_t *req, struct evbuffer *data)
{
    tg_conn_t *c = conn_of(req);
    struct evbuffer *out = h1_out(c);
    size_t n = evbuffer_get_length(data);
    if (n == 0) /* an empty chunk would end the body */
        return;
    size_t before = evbuffer_get_length(out);
    if (c->chunked)
        evbuffer_add_printf(out, "%zx\r\n", n);
    evbuffer_add_buffer(out, data);
    if (c->chunked)
        evbuffer_add(out, "\r\n", 2);
    req->resp.bytes_out += evbuffer_get_length(out) - before;
}

static void h1_end(tg_request_t *req)
{
    tg_conn_t *c = conn_of(req);
    if (c->chunked) {
        evbuffer_add(h1_out(c), "0\r\n\r\n", 5);
        req->resp.bytes_out += 5;
    }
    request_done(c);
}

static void h1_abort(tg_request_t *req)
{
    tg_conn_fail(conn_of(req));
}

static void h1_interim(tg_request_t *req, int status)
{
    (void)status; /* 100 Continue: the only interim response the gateway writes */
    evbuffer_add(tg_stream_output(conn_of(req)->s), "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

static void h1_hold(tg_request_t *req)
{
    tg_conn_t *c = conn_of(req);
    c->staged = true;
}

static void h1_release(tg_request_t *req, bool send)
{
    tg_conn_t *c = conn_of(req);
    struct evbuffer *stage = c->staged ? c->worker->stage : NULL;
    c->staged = false;
    if (stage == NULL || evbuffer_get_length(stage) == 0)
        return;
    if (send) /* head and first body bytes: one write */
        tg_stream_send(c->s, stage);
    else
        evbuffer_drain(stage, evbuffer_get_length(stage));
}

static size_t h1_pending(const tg_request_t *req)
{
    const tg_conn_t *c = conn_of(req);
    return tg_stream_output_length(c->s) + (c->staged ? evbuffer_get_length(c->worker->stage) : 0);
}

static struct evbuffer *h1_input(tg_request_t *req)
{
    return tg_stream_input(conn_of(req)->s);
}

/* The whole body was read: no more body timeout. */
static void h1_input_done(tg_request_t *req)
{
    tg_stream_set_timeouts(conn_of(req)->s, 0, 0);
}

static const tg_proto_t h1 = {
    .name = "http/1.1",
    .head = h1_head,
    .body = h1_body,
    .end = h1_end,
    .abort = h1_abort,
    .interim = h1_interim,
    .hold = h1_hold,
    .release = h1_release,
    .pending = h1_pending,
    .input = h1_input,
    .input_done = h1_input_done,
};
