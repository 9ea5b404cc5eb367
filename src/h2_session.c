#include "h2_session.h"

#include <nghttp2/nghttp2.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "h2_request.h"
#include "metrics.h"
#include "tollgate/clock.h"

/* A token bucket: burst at once, rate per second after that. */
typedef struct {
    double tokens;
    uint64_t last_ms;
} bucket_t;

struct tg_h2_stream_s {
    tg_h2_t *h2;
    int32_t id;
    void *data;
    tg_h2_req_t req;
    bool handed;         /* handler->request accepted it: handler->closed is owed */
    bool responded;      /* a response head was submitted */
    bool deferred;       /* the data source waits for tg_h2_stream_resume */
    bool out_end;        /* the body in out is the last */
    bool want_drain;     /* out crossed the low mark while the producer waited */
    bool malformed;      /* counted once */
    struct evbuffer *in; /* made by the first DATA */
    struct evbuffer *out;
    uint64_t stall_since_ms; /* response waiting on a zero window since */
    uint64_t opened_ms;      /* its HEADERS began */
    bool head_done;          /* the header block ended */
    tg_h2_stream_t *prev, *next;
};

struct tg_h2_s {
    nghttp2_session *ng;
    tg_h2_limits_t lim;
    tg_h2_timeouts_t to;
    unsigned worker;
    const tg_h2_handler_t *h;
    void *arg;
    tg_h2_stream_t *streams;
    size_t nstreams;
    tg_h2_stream_t *spare; /* closed streams' objects, for the next ones */
    size_t nspare;
    bool freeing;           /* tg_h2_free: nothing is kept */
    unsigned continuations; /* in the header block being received */
    bool any_drain;
    bool dead;             /* a defence ended the connection: GOAWAY queued */
    struct evbuffer *head; /* the HTTP/1.1 form of a request head, handed over */
    bucket_t resets, settings, pings, empty_data;
};

static const char *const defence_names[TG_H2_DEF_COUNT] = {
    [TG_H2_DEF_RAPID_RESET] = "rapid_reset",
    [TG_H2_DEF_CONTINUATION_FLOOD] = "continuation_flood",
    [TG_H2_DEF_HPACK_BOMB] = "hpack_bomb",
    [TG_H2_DEF_HEADER_LIST_TOO_LARGE] = "header_list_too_large",
    [TG_H2_DEF_SETTINGS_FLOOD] = "settings_flood",
    [TG_H2_DEF_PING_FLOOD] = "ping_flood",
    [TG_H2_DEF_EMPTY_DATA_FLOOD] = "empty_data_flood",
    [TG_H2_DEF_ZERO_WINDOW_STALL] = "zero_window_stall",
    [TG_H2_DEF_REFUSED_STREAM] = "refused_stream",
    [TG_H2_DEF_MALFORMED] = "malformed_request",
};
/* Registered at config load (main thread), read by the workers. */
static atomic_int defence_metric = -1, streams_metric = -1, conns_metric = -1;

void tg_h2_metrics_register(void)
{
    tg_metrics_t *m = tg_metrics_registry();
    atomic_store(&defence_metric,
                 tg_metrics_counter(
                     m, "tollgate_http2_defences_total",
                     "HTTP/2 defences that fired: streams reset or refused, connections ended.",
                     "defence", defence_names, TG_H2_DEF_COUNT));
    atomic_store(&streams_metric,
                 tg_metrics_counter(m, "tollgate_http2_streams_total",
                                    "HTTP/2 streams that carried a request.", NULL, NULL, 0));
    atomic_store(&conns_metric,
                 tg_metrics_counter(m, "tollgate_http2_connections_total",
                                    "Client connections that spoke HTTP/2 (ALPN h2 or h2c).", NULL,
                                    NULL, 0));
}

static void count(unsigned worker_id, atomic_int *metric, size_t vi)
{
    int id = atomic_load_explicit(metric, memory_order_relaxed);
    if (id >= 0)
        tg_metrics_add_worker(tg_metrics_registry(), worker_id, id, vi, 1);
}

void tg_h2_count(unsigned worker_id, tg_h2_defence_t d)
{
    count(worker_id, &defence_metric, d);
}

static bool take(bucket_t *b, double burst, double rate)
{
    uint64_t now = tg_now_ms();
    b->tokens += (double)(now - b->last_ms) * rate / 1000.0;
    if (b->tokens > burst)
        b->tokens = burst;
    b->last_ms = now;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

/* A defence ends the connection: GOAWAY ENHANCE_YOUR_CALM (RFC 9113
 * section 7: the peer "might be generating excessive load"). */
static int calm(tg_h2_t *h2, tg_h2_defence_t d)
{
    if (!h2->dead) {
        tg_h2_count(h2->worker, d);
        nghttp2_session_terminate_session(h2->ng, NGHTTP2_ENHANCE_YOUR_CALM);
        h2->dead = true;
    }
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

static tg_h2_stream_t *stream_of(tg_h2_t *h2, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h2->ng, id);
}

static void stream_destroy(tg_h2_stream_t *st)
{
    tg_h2_req_free(&st->req);
    if (st->in)
        evbuffer_free(st->in);
    if (st->out)
        evbuffer_free(st->out);
    free(st);
}

/* A closed stream's object is kept for the next one (up to TG_H2_SPARES):
 * a stream then costs no allocation of ours. */
static void stream_free(tg_h2_stream_t *st)
{
    tg_h2_t *h2 = st->h2;
    if (st->prev)
        st->prev->next = st->next;
    else
        h2->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    h2->nstreams--;
    if (h2->nspare >= TG_H2_SPARES || h2->freeing) {
        stream_destroy(st);
        return;
    }
    tg_h2_req_reset(&st->req);
    if (st->in) {
        evbuffer_free(st->in);
        st->in = NULL;
    }
    evbuffer_drain(st->out, evbuffer_get_length(st->out));
    *st = (tg_h2_stream_t){.h2 = h2, .req = st->req, .out = st->out, .next = h2->spare};
    h2->spare = st;
    h2->nspare++;
}

static tg_h2_stream_t *stream_new(tg_h2_t *h2)
{
    tg_h2_stream_t *st = h2->spare;
    if (st != NULL) {
        h2->spare = st->next;
        h2->nspare--;
        st->next = NULL;
        return st;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->h2 = h2;
    tg_h2_req_init(&st->req, h2->lim.max_header_list_size);
    if ((st->out = evbuffer_new()) == NULL) {
        free(st);
        return NULL;
    }
    return st;
}

/* ---- receiving ---- */

static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *ud)
{
    (void)ng;
    tg_h2_t *h2 = ud;
    if (hd->type == NGHTTP2_HEADERS)
        h2->continuations = 0;
    else if (hd->type == NGHTTP2_CONTINUATION && ++h2->continuations > TG_H2_MAX_CONTINUATIONS)
        return calm(h2, TG_H2_DEF_CONTINUATION_FLOOD);
    return 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    tg_h2_t *h2 = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    tg_h2_stream_t *st = stream_new(h2);
    if (st == NULL) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        return 0;
    }
    st->id = f->hd.stream_id;
    st->opened_ms = tg_now_ms();
    st->next = h2->streams;
    if (h2->streams)
        h2->streams->prev = st;
    h2->streams = st;
    h2->nstreams++;
    nghttp2_session_set_stream_user_data(ng, st->id, st);
    return 0;
}

static void count_malformed(tg_h2_stream_t *st)
{
    if (st != NULL && !st->malformed) {
        st->malformed = true;
        tg_h2_count(st->h2->worker, TG_H2_DEF_MALFORMED);
    }
}

/* RFC 9113 section 8.1.1: a malformed request is a stream error of type
 * PROTOCOL_ERROR. */
static int malformed(tg_h2_t *h2, tg_h2_stream_t *st, int32_t id)
{
    count_malformed(st);
    nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_PROTOCOL_ERROR);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)ng, (void)flags;
    tg_h2_t *h2 = ud;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: not forwarded (HTTP/1.1 upstreams get none) */
    tg_h2_stream_t *st = stream_of(h2, f->hd.stream_id);
    if (st == NULL)
        return 0;
    int r = tg_h2_req_field(&st->req, name, namelen, value, valuelen);
    if (st->req.list_size / TG_H2_BOMB_FACTOR > h2->lim.max_header_list_size)
        return calm(h2, TG_H2_DEF_HPACK_BOMB);
    if (r == TG_H2_REQ_MALFORMED)
        return malformed(h2, st, st->id);
    return 0;
}

static int on_invalid_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                             size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                             void *ud)
{
    (void)ng, (void)name, (void)namelen, (void)value, (void)valuelen, (void)flags;
    tg_h2_t *h2 = ud;
    return malformed(h2, stream_of(h2, f->hd.stream_id), f->hd.stream_id);
}

static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int lib_error, void *ud)
{
    (void)ng;
    tg_h2_t *h2 = ud;
    /* nghttp2's own HTTP messaging checks (RFC 9113 section 8): counted like ours. */
    if (lib_error == NGHTTP2_ERR_HTTP_HEADER || lib_error == NGHTTP2_ERR_HTTP_MESSAGING)
        count_malformed(stream_of(h2, f->hd.stream_id));
    /* A stream over max_concurrent_streams once the client acknowledged
     * it: nghttp2 ends the connection (PROTOCOL_ERROR); before that, the
     * stream is refused (on_frame_send counts that). */
    else if (lib_error == NGHTTP2_ERR_PROTO && f->hd.type == NGHTTP2_HEADERS &&
             h2->nstreams >= h2->lim.max_concurrent_streams)
        tg_h2_count(h2->worker, TG_H2_DEF_REFUSED_STREAM);
    return 0;
}

static void request_ready(tg_h2_t *h2, tg_h2_stream_t *st, bool end_stream)
{
    st->head_done = true;
    struct evbuffer *head = h2->head;
    bool chunked = false;
    int r = tg_h2_req_finish(&st->req, end_stream, head, &chunked);
    if (r == TG_H2_REQ_TOO_LARGE) {
        tg_h2_count(h2->worker, TG_H2_DEF_HEADER_LIST_TOO_LARGE);
        if (h2->h->reject(st, 431, "request header fields too large", h2->arg) < 0)
            nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_REFUSED_STREAM);
        else
            st->handed = true;
    } else if (r != TG_H2_REQ_OK) {
        count_malformed(st);
        nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_PROTOCOL_ERROR);
    } else if (h2->h->request(st, head, chunked, end_stream, h2->arg) < 0) {
        nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_REFUSED_STREAM);
    } else {
        st->handed = true;
        count(h2->worker, &streams_metric, 0);
    }
    evbuffer_drain(head, evbuffer_get_length(head));
    tg_h2_req_reset(&st->req); /* the head is no longer needed */
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    (void)ng;
    tg_h2_t *h2 = ud;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    tg_h2_stream_t *st = f->hd.stream_id ? stream_of(h2, f->hd.stream_id) : NULL;
    switch (f->hd.type) {
    case NGHTTP2_HEADERS:
        if (st == NULL)
            return 0;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
            request_ready(h2, st, end);
        else if (end && st->handed) /* trailers end the body */
            h2->h->body(st, true, h2->arg);
        return 0;
    case NGHTTP2_DATA:
        if (f->hd.length == 0 && !end &&
            !take(&h2->empty_data, TG_H2_FLOOD_BURST, TG_H2_FLOOD_RATE))
            return calm(h2, TG_H2_DEF_EMPTY_DATA_FLOOD);
        if (end && st != NULL && st->handed)
            h2->h->body(st, true, h2->arg);
        return 0;
    case NGHTTP2_SETTINGS:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK) &&
            !take(&h2->settings, TG_H2_FLOOD_BURST, TG_H2_FLOOD_RATE))
            return calm(h2, TG_H2_DEF_SETTINGS_FLOOD);
        return 0;
    case NGHTTP2_PING:
        if (!(f->hd.flags & NGHTTP2_FLAG_ACK) &&
            !take(&h2->pings, TG_H2_FLOOD_BURST, TG_H2_FLOOD_RATE))
            return calm(h2, TG_H2_DEF_PING_FLOOD);
        return 0;
    case NGHTTP2_RST_STREAM:
        /* CVE-2023-44487: every reset stream may have cost an upstream
         * request; opening and resetting faster than the budget ends the
         * connection. */
        if (!take(&h2->resets, TG_H2_RESET_BURST, TG_H2_RESET_RATE))
            return calm(h2, TG_H2_DEF_RAPID_RESET);
        return 0;
    default:
        return 0;
    }
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    tg_h2_t *h2 = ud;
    tg_h2_stream_t *st = stream_of(h2, id);
    if (st == NULL || !st->handed) { /* refused or answered already: give the window back */
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    if (st->in == NULL && (st->in = evbuffer_new()) == NULL) {
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    evbuffer_add(st->in, data, len);
    h2->h->body(st, false, h2->arg);
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    tg_h2_t *h2 = ud;
    if (f->hd.type == NGHTTP2_RST_STREAM && f->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
        tg_h2_count(h2->worker, TG_H2_DEF_REFUSED_STREAM);
    /* Resets the client makes us send (malformed requests, flow-control
     * errors: CVE-2025-8671, "MadeYouReset") cost like its own: same budget. */
    if (f->hd.type == NGHTTP2_RST_STREAM && f->rst_stream.error_code != NGHTTP2_NO_ERROR &&
        !take(&h2->resets, TG_H2_RESET_BURST, TG_H2_RESET_RATE))
        calm(h2, TG_H2_DEF_RAPID_RESET);
    /* RFC 9113 section 8.1: a complete response before the whole request
     * (a 413, a 401 to an upload): the client is asked to stop sending with
     * RST_STREAM NO_ERROR, sent after the response's last frame. */
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        nghttp2_session_get_stream_remote_close(ng, f->hd.stream_id) == 0)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
    (void)error_code;
    tg_h2_t *h2 = ud;
    tg_h2_stream_t *st = stream_of(h2, id);
    if (st == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    /* Body bytes nobody will read still hold the connection's window. */
    size_t unread = st->in != NULL ? evbuffer_get_length(st->in) : 0;
    if (unread > 0)
        nghttp2_session_consume_connection(ng, unread);
    if (st->handed)
        h2->h->closed(st, h2->arg);
    stream_free(st);
    return 0;
}

/* ---- sending ---- */

static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ng, (void)id;
    tg_h2_t *h2 = ud;
    tg_h2_stream_t *st = src->ptr;
    size_t have = evbuffer_get_length(st->out);
    if (have == 0 && !st->out_end) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = have < length ? have : length;
    evbuffer_remove(st->out, buf, n);
    if (st->out_end && evbuffer_get_length(st->out) == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (have > TG_H2_OUT_HIGH / 4 && have - n <= TG_H2_OUT_HIGH / 4 && !st->out_end) {
        st->want_drain = true;
        h2->any_drain = true;
    }
    return (ssize_t)n;
}

tg_h2_t *tg_h2_new(const tg_h2_limits_t *lim, const tg_h2_timeouts_t *to, unsigned worker_id,
                   const tg_h2_handler_t *h, void *arg)
{
    tg_h2_t *h2 = calloc(1, sizeof(*h2));
    nghttp2_session_callbacks *cb = NULL;
    count(worker_id, &conns_metric, 0);
    nghttp2_option *opt = NULL;
    if (h2 == NULL || (h2->head = evbuffer_new()) == NULL ||
        nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
        goto fail;
    h2->lim = *lim;
    h2->to = *to;
    h2->worker = worker_id;
    h2->h = h;
    h2->arg = arg;
    uint64_t now = tg_now_ms();
    h2->resets = (bucket_t){TG_H2_RESET_BURST, now};
    h2->settings = h2->pings = h2->empty_data = (bucket_t){TG_H2_FLOOD_BURST, now};
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_invalid_header_callback(cb, on_invalid_header);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    /* Windows are given back only as the consumer takes bytes. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* No RFC 7540 priority tree (RFC 9113 deprecates it; we serve streams
     * as they come): no closed streams kept for it either. */
    nghttp2_option_set_no_closed_streams(opt, 1);
    /* nghttp2's own limits stay as a backstop behind ours (which count). */
    nghttp2_option_set_max_continuations(opt, TG_H2_MAX_CONTINUATIONS * 2);
    nghttp2_option_set_stream_reset_rate_limit(opt, TG_H2_RESET_BURST * 2, TG_H2_RESET_RATE * 2);
    if (nghttp2_session_server_new2(&h2->ng, cb, h2, opt) != 0)
        goto fail;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, lim->initial_window_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, lim->max_header_list_size},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    if (nghttp2_submit_settings(h2->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0)
        goto fail;
    /* The connection's window: room for 16 streams' windows, so that a few
     * slow ones never stop the others (bounded: 16 x the stream window). */
    uint64_t conn = (uint64_t)lim->initial_window_size *
                    (lim->max_concurrent_streams < 16 ? lim->max_concurrent_streams : 16);
    if (conn > 0x7fffffff)
        conn = 0x7fffffff;
    if (conn > 65535)
        nghttp2_session_set_local_window_size(h2->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)conn);
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    return h2;
fail:
    if (cb)
        nghttp2_session_callbacks_del(cb);
    if (opt)
        nghttp2_option_del(opt);
    if (h2 && h2->ng)
        nghttp2_session_del(h2->ng);
    if (h2 && h2->head)
        evbuffer_free(h2->head);
    free(h2);
    return NULL;
}

static void drop_spares(tg_h2_t *h2)
{
    while (h2->spare != NULL) {
        tg_h2_stream_t *st = h2->spare;
        h2->spare = st->next;
        stream_destroy(st);
    }
    h2->nspare = 0;
}

void tg_h2_free(tg_h2_t *h2)
{
    if (h2 == NULL)
        return;
    h2->freeing = true;
    drop_spares(h2);
    while (h2->streams != NULL) {
        tg_h2_stream_t *st = h2->streams;
        if (st->handed)
            h2->h->closed(st, h2->arg);
        stream_free(st);
    }
    nghttp2_session_del(h2->ng);
    evbuffer_free(h2->head);
    free(h2);
}

int tg_h2_recv(tg_h2_t *h2, const uint8_t *data, size_t len)
{
    if (h2->dead)
        return -1;
    ssize_t r = nghttp2_session_mem_recv(h2->ng, data, len);
    if (r < 0 || h2->dead) {
        /* A protocol error: nghttp2 queued its GOAWAY (ours did too). */
        if (!h2->dead && r != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
            nghttp2_session_terminate_session(h2->ng, NGHTTP2_PROTOCOL_ERROR);
        h2->dead = true;
        return -1;
    }
    return 0;
}

static void run_drained(tg_h2_t *h2)
{
    while (h2->any_drain) {
        h2->any_drain = false;
        for (tg_h2_stream_t *st = h2->streams; st != NULL; st = st->next) {
            if (st->want_drain) {
                st->want_drain = false;
                if (st->handed)
                    h2->h->drained(st, h2->arg);
            }
        }
    }
}

int tg_h2_send(tg_h2_t *h2, struct evbuffer *out, size_t max)
{
    for (;;) {
        while (evbuffer_get_length(out) < max) {
            const uint8_t *p;
            ssize_t n = nghttp2_session_mem_send(h2->ng, &p);
            if (n < 0)
                return -1;
            if (n == 0)
                break;
            evbuffer_add(out, p, (size_t)n);
        }
        if (!h2->any_drain)
            return 0;
        run_drained(h2); /* producers may have added more */
    }
}

bool tg_h2_alive(tg_h2_t *h2)
{
    return nghttp2_session_want_read(h2->ng) || nghttp2_session_want_write(h2->ng);
}

size_t tg_h2_open_streams(const tg_h2_t *h2)
{
    return h2->nstreams;
}

void tg_h2_shutdown(tg_h2_t *h2)
{
    int32_t last = nghttp2_session_get_last_proc_stream_id(h2->ng);
    nghttp2_submit_goaway(h2->ng, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
}

int tg_h2_tick(tg_h2_t *h2, uint64_t now_ms)
{
    if (h2->streams == NULL) /* gone quiet: an idle connection keeps no spares */
        drop_spares(h2);
    bool conn_closed = nghttp2_session_get_remote_window_size(h2->ng) <= 0;
    for (tg_h2_stream_t *st = h2->streams; st != NULL; st = st->next) {
        if (!st->head_done && now_ms - st->opened_ms >= h2->to.header_ms) {
            nghttp2_session_terminate_session(h2->ng, NGHTTP2_PROTOCOL_ERROR);
            h2->dead = true;
            return -1;
        }
        bool waiting =
            st->responded && evbuffer_get_length(st->out) > 0 &&
            (conn_closed || nghttp2_session_get_stream_remote_window_size(h2->ng, st->id) <= 0);
        if (!waiting) {
            st->stall_since_ms = 0;
            continue;
        }
        if (st->stall_since_ms == 0) {
            st->stall_since_ms = now_ms;
        } else if (now_ms - st->stall_since_ms >= h2->to.stall_ms) {
            /* A client that never opens its window holds our buffers and an
             * upstream connection: it gets the send timeout, like one that
             * stops reading an HTTP/1.1 response. */
            tg_h2_count(h2->worker, TG_H2_DEF_ZERO_WINDOW_STALL);
            nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, st->id,
                                      NGHTTP2_FLOW_CONTROL_ERROR);
            st->stall_since_ms = 0;
        }
    }
    return 0;
}

/* ---- one stream ---- */

void tg_h2_stream_set_data(tg_h2_stream_t *st, void *data)
{
    st->data = data;
}

void *tg_h2_stream_data(const tg_h2_stream_t *st)
{
    return st->data;
}

int32_t tg_h2_stream_id(const tg_h2_stream_t *st)
{
    return st->id;
}

tg_h2_t *tg_h2_stream_session(const tg_h2_stream_t *st)
{
    return st->h2;
}

struct evbuffer *tg_h2_stream_in(tg_h2_stream_t *st)
{
    return st->in;
}

size_t tg_h2_stream_in_length(const tg_h2_stream_t *st)
{
    return st->in != NULL ? evbuffer_get_length(st->in) : 0;
}

void tg_h2_stream_consumed(tg_h2_stream_t *st, size_t n)
{
    if (n > 0)
        nghttp2_session_consume(st->h2->ng, st->id, n);
}

/* An upstream head holds at most 256 fields (proxy.c), plus the added ones. */
#define MAX_RESP_FIELDS 320

/* A field whose value is new in every response (the request id) is sent
 * never indexed (RFC 7541 section 6.2.3): indexed, each one would evict
 * an entry the next response could use, and every entry of the same name
 * lengthens nghttp2's search of its dynamic table (a bucket per name: with
 * one stream per connection it was an eighth of the gateway's CPU). */
static uint8_t field_flags(const char *lower, size_t len)
{
    return len == 12 && memcmp(lower, "x-request-id", 12) == 0 ? NGHTTP2_NV_FLAG_NO_INDEX
                                                               : NGHTTP2_NV_FLAG_NONE;
}

int tg_h2_stream_respond(tg_h2_stream_t *st, int status, const tg_http_header_t *hs, size_t n,
                         bool end)
{
    if (st->responded || n + 1 > MAX_RESP_FIELDS || status < 100 || status > 999)
        return -1;
    nghttp2_nv nva[MAX_RESP_FIELDS];
    char code[4] = {(char)('0' + status / 100), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10), 0};
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += hs[i].name_len;
    char small[512]; /* the names of a usual head: no allocation */
    char *lower = total < sizeof(small) ? small : malloc(total + 1);
    if (lower == NULL)
        return -1;
    nva[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE};
    char *w = lower;
    for (size_t i = 0; i < n; i++) {
        /* RFC 9113 section 8.2: field names in lower case. */
        for (size_t j = 0; j < hs[i].name_len; j++) {
            char c = hs[i].name[j];
            w[j] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
        }
        nva[i + 1] = (nghttp2_nv){(uint8_t *)w, (uint8_t *)hs[i].value, hs[i].name_len,
                                  hs[i].value_len, field_flags(w, hs[i].name_len)};
        w += hs[i].name_len;
    }
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = data_read};
    int r = nghttp2_submit_response(st->h2->ng, st->id, nva, n + 1, end ? NULL : &dp);
    if (lower != small)
        free(lower);
    if (r != 0)
        return -1;
    st->responded = true;
    st->out_end = end;
    return 0;
}

void tg_h2_stream_interim(tg_h2_stream_t *st, int status)
{
    char code[4] = {(char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10),
                    (char)('0' + status % 10), 0};
    nghttp2_nv nv = {(uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE};
    if (!st->responded)
        nghttp2_submit_headers(st->h2->ng, NGHTTP2_FLAG_NONE, st->id, NULL, &nv, 1, NULL);
}

size_t tg_h2_stream_pending(const tg_h2_stream_t *st)
{
    return evbuffer_get_length(st->out);
}

struct evbuffer *tg_h2_stream_out(tg_h2_stream_t *st)
{
    return st->out;
}

void tg_h2_stream_resume(tg_h2_stream_t *st, bool end)
{
    if (end)
        st->out_end = true;
    if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(st->h2->ng, st->id);
    }
}

void tg_h2_stream_reset(tg_h2_stream_t *st, uint32_t error_code)
{
    nghttp2_submit_rst_stream(st->h2->ng, NGHTTP2_FLAG_NONE, st->id, error_code);
}
