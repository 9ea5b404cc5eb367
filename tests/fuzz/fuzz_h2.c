/*
 * libFuzzer target for the HTTP/2 input path: the bytes a client sends after
 * the connection preface, through libnghttp2 and our session (h2_session.c:
 * defences, request validation, flow control) into the HTTP/1.1 head that
 * the request path parses (h2_request.c). The handler answers some streams
 * at once, keeps others open and resets a few, so that responses, windows
 * and closes interleave with whatever the input does.
 *
 * Invariants: no crash, leak or sanitizer report; every head handed over is
 * complete and well framed for the HTTP/1.1 parser (never "incomplete", and
 * when it parses, exactly its own length: no field injected a line), and its
 * framing says chunked exactly when the session said so.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_session.h"
#include "metrics.h"
#include "tollgate/clock.h"

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* The metrics registry is not linked: counting is a no-op here. */
tg_metrics_t *tg_metrics_registry(void)
{
    return NULL;
}
int tg_metrics_counter(tg_metrics_t *m, const char *name, const char *help, const char *label,
                       const char *const *values, size_t nvalues)
{
    (void)m, (void)name, (void)help, (void)label, (void)values, (void)nvalues;
    return 0;
}
void tg_metrics_add_worker(tg_metrics_t *m, unsigned worker_id, int id, size_t vi, uint64_t delta)
{
    (void)m, (void)worker_id, (void)id, (void)vi, (void)delta;
}

static unsigned nreq;

static void check_head(struct evbuffer *head, bool chunked)
{
    size_t len = evbuffer_get_length(head);
    const char *p = (const char *)evbuffer_pullup(head, -1);
    tg_http_header_t hs[128];
    tg_http_request_t req = {.headers = hs, .num_headers = 128};
    int r = tg_http_parse_request(p, len, &req);
    CHECK(r != TG_HTTP_INCOMPLETE);
    if (r >= 0) {
        CHECK((size_t)r == len);
        CHECK((req.body_kind == TG_BODY_CHUNKED) == chunked);
    }
}

static int on_request(tg_h2_stream_t *st, struct evbuffer *head, bool chunked, bool end_stream,
                      void *arg)
{
    (void)end_stream, (void)arg;
    check_head(head, chunked);
    unsigned n = nreq++;
    if (n % 7 == 3)
        return -1; /* refused */
    tg_h2_stream_set_data(st, (void *)(uintptr_t)(n + 1));
    if (n % 3 == 0) {
        tg_http_header_t ct = {"Content-Type", 12, "text/plain", 10};
        tg_h2_stream_respond(st, 200, &ct, 1, false);
        evbuffer_add(tg_h2_stream_out(st), "hello, world\n", 13);
        tg_h2_stream_resume(st, n % 2 == 0);
    } else if (n % 5 == 1) {
        tg_h2_stream_reset(st, TG_H2_CANCEL);
    }
    return 0;
}

static int on_reject(tg_h2_stream_t *st, int status, const char *msg, void *arg)
{
    (void)msg, (void)arg;
    tg_h2_stream_set_data(st, NULL);
    return tg_h2_stream_respond(st, status, NULL, 0, true);
}

static void on_body(tg_h2_stream_t *st, bool end, void *arg)
{
    (void)arg;
    size_t n = tg_h2_stream_in_length(st);
    if (n > 0) {
        evbuffer_drain(tg_h2_stream_in(st), n);
        tg_h2_stream_consumed(st, n);
    }
    if (end && tg_h2_stream_data(st) != NULL && ((uintptr_t)tg_h2_stream_data(st) - 1) % 3 == 2)
        tg_h2_stream_respond(st, 204, NULL, 0, true);
}

static void on_drained(tg_h2_stream_t *st, void *arg)
{
    (void)st, (void)arg;
}

static void on_closed(tg_h2_stream_t *st, void *arg)
{
    (void)arg;
    tg_h2_stream_set_data(st, NULL);
}

static const tg_h2_handler_t handler = {on_request, on_reject, on_body, on_drained, on_closed};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_h2_limits_t lim = {.max_concurrent_streams = 8,
                          .initial_window_size = 65535,
                          .max_header_list_size = 4096,
                          .idle_timeout_ms = 1000};
    tg_h2_timeouts_t to = {.header_ms = 1000, .stall_ms = 1000};
    tg_h2_t *h2 = tg_h2_new(&lim, &to, 0, &handler, NULL);
    struct evbuffer *out = evbuffer_new();
    if (h2 == NULL || out == NULL)
        abort();
    nreq = 0;
    int r = tg_h2_recv(h2, (const uint8_t *)TG_H2_PREFACE, TG_H2_PREFACE_LEN);
    CHECK(r == 0);
    /* The input in a few reads, as a socket would deliver it: the first
     * byte chooses the piece size. */
    size_t piece = size > 0 ? (size_t)data[0] * 16 + 1 : 1;
    for (size_t off = size > 0 ? 1 : 0; off < size && r == 0; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        r = tg_h2_recv(h2, data + off, n);
        tg_h2_send(h2, out, 1 << 20);
        evbuffer_drain(out, evbuffer_get_length(out));
        if (tg_h2_tick(h2, tg_now_ms()) < 0)
            break;
    }
    tg_h2_shutdown(h2);
    tg_h2_send(h2, out, 1 << 20);
    tg_h2_free(h2);
    evbuffer_free(out);
    return 0;
}
