#include "h2_conn.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tls.h"
#include "tollgate/clock.h"
#include "traffic_metrics.h"

#define TICK_MS 1000

static void close_now(tg_h2_conn_t *hc)
{
    tg_conn_abort(hc->c); /* conn_free -> tg_h2_conn_free */
}

/* The idle timer and the tick are armed lazily: a stream opening or
 * closing costs no timer operation (with one stream per connection that was
 * an evtimer_add and an evtimer_del per request for each). The idle timer,
 * once armed, stays armed while streams come and go; when it fires it looks
 * at how long the connection has really been without a stream (idle_since)
 * and waits out the rest. The tick runs while streams are open and stops by
 * itself (not re-armed) at the first one that finds none. */
static void arm_idle(tg_h2_conn_t *hc)
{
    if (tg_h2_open_streams(hc->h2) == 0) {
        if (hc->busy) {
            hc->busy = false;
            hc->idle_since_ms = tg_now_ms();
        }
        if (!evtimer_pending(hc->idle, NULL)) {
            struct timeval tv = tg_timeval_ms(hc->c->worker->cfg->limits.http2.idle_timeout_ms);
            evtimer_add(hc->idle, &tv);
        }
    } else {
        hc->busy = true;
        if (!evtimer_pending(hc->tick, NULL)) {
            struct timeval tv = tg_timeval_ms(TICK_MS);
            evtimer_add(hc->tick, &tv);
        }
    }
}

/* Session frames to the socket; closes once the session is over and its
 * last frames (a GOAWAY) are out. Returns false when hc is gone. */
static bool flush(tg_h2_conn_t *hc)
{
    tg_stream_t *s = hc->c->s;
    struct evbuffer *out = tg_stream_output(s);
    if (out == NULL || tg_h2_send(hc->h2, out, TG_OUT_HIGH) < 0)
        hc->closing = true;
    if (!hc->closing && !tg_h2_alive(hc->h2))
        hc->closing = true;
    if (hc->closing) {
        tg_stream_read_enable(s, false);
        if (tg_stream_output_length(s) == 0) {
            close_now(hc);
            return false;
        }
        return true; /* the write callback closes once flushed */
    }
    arm_idle(hc);
    return true;
}

static void h2_read_cb(tg_stream_t *s, void *arg)
{
    tg_h2_conn_t *hc = arg;
    struct evbuffer *in = tg_stream_input(s);
    if (hc->closing) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    /* Chain by chain: no pullup of the whole input. */
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        int r = tg_h2_recv(hc->h2, v.iov_base, v.iov_len);
        evbuffer_drain(in, v.iov_len);
        if (r < 0) {
            hc->closing = true;
            evbuffer_drain(in, evbuffer_get_length(in));
            break;
        }
    }
    flush(hc);
}

/* The output fell to its low mark: more frames (while closing: the rest of
 * the last ones, then close). */
static void h2_write_cb(tg_stream_t *s, void *arg)
{
    (void)s;
    flush(arg);
}

static void h2_event_cb(tg_stream_t *s, short what, void *arg)
{
    (void)s, (void)what;
    close_now(arg); /* EOF, error, or the send timeout */
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tg_h2_conn_t *hc = arg;
    hc->kicked = false;
    flush(hc);
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tg_h2_conn_t *hc = arg;
    if (tg_h2_open_streams(hc->h2) > 0)
        return; /* re-armed when the last stream closes */
    uint64_t limit = hc->c->worker->cfg->limits.http2.idle_timeout_ms;
    uint64_t idle = tg_now_ms() - hc->idle_since_ms;
    if (idle < limit) { /* streams came and went since it was armed */
        struct timeval tv = tg_timeval_ms(limit - idle);
        evtimer_add(hc->idle, &tv);
        return;
    }
    /* RFC 9113 section 6.8: a GOAWAY tells the client why, and that no
     * stream was left behind. */
    tg_h2_shutdown(hc->h2);
    hc->closing = true;
    flush(hc);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    tg_h2_conn_t *hc = arg;
    if (tg_h2_tick(hc->h2, tg_now_ms()) < 0)
        hc->closing = true;
    flush(hc);
}

void tg_h2_conn_kick(tg_h2_conn_t *hc)
{
    if (!hc->kicked) {
        hc->kicked = true;
        event_active(hc->kick, 0, 1);
    }
}

static const tg_stream_cbs_t h2_cbs = {
    .read = h2_read_cb, .write = h2_write_cb, .event = h2_event_cb};

static bool start(tg_conn_t *c)
{
    tg_worker_t *w = c->worker;
    tg_h2_conn_t *hc = calloc(1, sizeof(*hc));
    if (hc == NULL)
        return false;
    hc->c = c;
    hc->idle_since_ms = tg_now_ms();
    hc->kick = event_new(w->base, -1, 0, kick_cb, hc);
    hc->idle = evtimer_new(w->base, idle_cb, hc);
    hc->tick = evtimer_new(w->base, tick_cb, hc);
    const tg_limits_t *l = &w->cfg->limits;
    tg_h2_timeouts_t to = {.header_ms = l->header_timeout_ms, .stall_ms = l->send_timeout_ms};
    hc->h2 = tg_h2_new(&l->http2, &to, w->id, &tg_h2_bridge, hc);
    if (hc->kick == NULL || hc->idle == NULL || hc->tick == NULL || hc->h2 == NULL) {
        c->h2c = hc;
        tg_h2_conn_free(c);
        return false;
    }
    c->h2c = hc;
    c->metrics_slot = (uint8_t)tg_traffic_conn_protocol(w, c->metrics_slot, TG_PROTO_H2);
    /* conn.c's timer and callbacks are done with this connection. */
    evtimer_del(c->timer);
    tg_stream_setcb(c->s, &h2_cbs, hc);
    tg_stream_set_timeouts(c->s, 0, w->cfg->limits.send_timeout_ms);
    h2_read_cb(c->s, hc); /* what arrived so far, the preface first */
    return true;
}

bool tg_h2_conn_detect(tg_conn_t *c)
{
    SSL *ssl = tg_stream_ssl(c->s);
    if (ssl != NULL) {
        if (!tg_tls_alpn_h2(ssl))
            return false;
    } else {
        if (c->worker->cfg->listeners[c->listener].http2 != TG_H2_PRIOR_KNOWLEDGE)
            return false;
        size_t n = tg_stream_input_length(c->s);
        size_t k = n < TG_H2_PREFACE_LEN ? n : TG_H2_PREFACE_LEN;
        const char *p = (const char *)evbuffer_pullup(tg_stream_input(c->s), (ev_ssize_t)k);
        if (p == NULL || memcmp(p, TG_H2_PREFACE, k) != 0)
            return false; /* HTTP/1.1 on the same listener */
        if (k < TG_H2_PREFACE_LEN)
            return true; /* the header timeout still runs meanwhile */
    }
    if (!start(c)) {
        tg_log_warn("http2: out of memory for a connection from %s", c->peer_ip);
        tg_conn_abort(c);
    }
    return true;
}

void tg_h2_conn_drain(tg_conn_t *c)
{
    tg_h2_conn_t *hc = c->h2c;
    if (hc->shutdown || hc->closing)
        return;
    hc->shutdown = true;
    tg_h2_shutdown(hc->h2);
    /* Sent from the loop: the caller walks the worker's connections, which
     * closing this one (and its streams' exchanges) would change. */
    tg_h2_conn_kick(hc);
}

void tg_h2_conns_reloaded(tg_worker_t *w)
{
    for (tg_conn_t *c = w->conns; c != NULL; c = c->next)
        if (c->h2c != NULL)
            tg_h2_conn_drain(c);
}

void tg_h2_conn_free(tg_conn_t *c)
{
    tg_h2_conn_t *hc = c->h2c;
    c->h2c = NULL;
    tg_h2_free(hc->h2); /* every stream's exchange is aborted (bridge: closed) */
    if (hc->kick)
        event_free(hc->kick);
    if (hc->idle)
        event_free(hc->idle);
    if (hc->tick)
        event_free(hc->tick);
    free(hc);
}
