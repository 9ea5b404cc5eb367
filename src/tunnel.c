/*
 * WebSocket (and other Upgrade) pass-through: after the upstream's 101, the
 * client and upstream connections are joined and bytes move both ways with
 * backpressure, an idle timeout, and a close on either side that lets the
 * other side's pending output drain first.
 *
 * Idle means no byte in either direction: a client that only listens to a
 * stream of server messages is not idle. One timer (the connection's, which a
 * tunnel does not otherwise use) checks the time of the last byte moved,
 * which every callback records (a clock read, no timer re-arm per byte).
 */
#include "tunnel.h"

#include <event2/buffer.h>
#include <event2/event.h>

#include "conn.h"
#include "log.h"
#include "metrics.h"
#include "tollgate/clock.h"

static void touch(tg_request_t *req)
{
    req->conn->idle_since_ms = tg_now_ms();
}

static void arm(tg_conn_t *c, uint64_t ms)
{
    struct timeval tv = tg_timeval_ms(ms);
    evtimer_add(c->timer, &tv);
}

/* Moves what src holds to dst unless dst is full; the read watermark on src
 * then stops reading until dst drains. */
static void move(tg_stream_t *src, tg_stream_t *dst)
{
    if (tg_stream_input_length(src) == 0 || tg_stream_output_length(dst) > TG_OUT_HIGH)
        return;
    evbuffer_add_buffer(tg_stream_output(dst), tg_stream_input(src));
}

static void close_tunnel(tg_request_t *req)
{
    tg_conn_t *c = req->conn;
    req->resp.completed = true;
    if (req->up.conn != NULL) {
        tg_upool_release(req->up.conn, false);
        req->up.conn = NULL;
    }
    tg_conn_fail(c);
}

static void up_read_cb(tg_stream_t *s, void *arg)
{
    tg_request_t *req = arg;
    touch(req);
    move(s, req->conn->s);
}

static void up_write_cb(tg_stream_t *s, void *arg)
{
    tg_request_t *req = arg;
    touch(req);
    move(req->conn->s, s);
    if (req->tunnel.closing && tg_stream_output_length(s) == 0)
        close_tunnel(req);
}

static void up_event_cb(tg_stream_t *s, short what, void *arg)
{
    (void)s;
    (void)what;
    tg_request_t *req = arg;
    /* The upstream is gone: deliver what it sent, then close the client. */
    move(req->up.conn->s, req->conn->s);
    close_tunnel(req);
}

void tg_tunnel_client_readable(tg_request_t *req)
{
    touch(req);
    if (req->up.conn != NULL)
        move(req->conn->s, req->up.conn->s);
}

void tg_tunnel_client_drained(tg_request_t *req)
{
    touch(req);
    if (req->up.conn != NULL)
        move(req->up.conn->s, req->conn->s);
}

void tg_tunnel_timer(tg_request_t *req)
{
    uint64_t idle = req->cfg->limits.idle_timeout_ms;
    uint64_t quiet = tg_now_ms() - req->conn->idle_since_ms;
    if (quiet < idle) {
        arm(req->conn, idle - quiet);
        return;
    }
    tg_log_info("tunnel idle timeout (request %.*s)", (int)req->request_id_len, req->request_id);
    close_tunnel(req);
}

void tg_tunnel_client_event(tg_request_t *req, short what)
{
    if ((what & TG_STREAM_EOF) && req->up.conn != NULL) {
        /* The client closed: the upstream gets what is left, then its close. */
        move(req->conn->s, req->up.conn->s);
        if (tg_stream_output_length(req->up.conn->s) > 0) {
            req->tunnel.closing = true;
            tg_stream_read_enable(req->conn->s, false);
            return;
        }
    }
    close_tunnel(req);
}

static const tg_stream_cbs_t tunnel_up_cbs = {
    .read = up_read_cb, .write = up_write_cb, .event = up_event_cb};

void tg_tunnel_start(tg_request_t *req)
{
    tg_conn_t *c = req->conn;
    c->state = TG_CONN_TUNNEL;
    req->up.state = TG_UP_DONE;
    tg_metrics_websocket_opened(c->worker);
    /* Idle in both directions: one timer for the pair (see the top). */
    tg_stream_set_timeouts(c->s, 0, 0);
    tg_stream_set_timeouts(req->up.conn->s, 0, 0);
    touch(req);
    arm(c, req->cfg->limits.idle_timeout_ms);
    tg_stream_setcb(req->up.conn->s, &tunnel_up_cbs, req);
    /* Drained callbacks well before empty: a client that reads a backlog
     * slowly is moving bytes, and the other side refills sooner. */
    tg_stream_set_watermarks(req->up.conn->s, TG_OUT_HIGH, TG_OUT_HIGH / 4);
    tg_stream_read_enable(req->up.conn->s, true);
    tg_stream_read_enable(c->s, true);
    /* Bytes that came right behind the handshake on either side. */
    move(c->s, req->up.conn->s);
    move(req->up.conn->s, c->s);
}
