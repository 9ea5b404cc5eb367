/*
 * One HTTP/2 client connection's protocol state: libnghttp2 does framing,
 * HPACK and flow control; this module adds what a gateway facing the
 * internet needs around it and stays free of sockets, so that a fuzzer can
 * drive it with bytes:
 *
 * - SETTINGS from limits.http2 (streams, per-stream window, header list);
 * - request heads validated (h2_request.h) and handed over in HTTP/1.1 form;
 *   a malformed one is a stream error (RST_STREAM PROTOCOL_ERROR), a header
 *   list over the limit a 431 on its stream;
 * - request bodies delivered into a per-stream buffer whose window is only
 *   given back as the consumer takes bytes (tg_h2_stream_consumed): the
 *   client's sending is the backpressure of a slow upstream;
 * - responses from a per-stream buffer, sent as the client's windows allow;
 *   the producer is told (drained) when it may add more;
 * - defences, each counted in tollgate_http2_defences_total{defence=...}:
 *   rapid reset (CVE-2023-44487; resets the client provokes count too:
 *   CVE-2025-8671), CONTINUATION floods (CVE-2024-27316),
 *   HPACK bombs, SETTINGS / PING / empty DATA floods (GOAWAY
 *   ENHANCE_YOUR_CALM), zero-window stalls (RST_STREAM after the send
 *   timeout), streams over max_concurrent_streams (REFUSED_STREAM).
 *
 * Input: tg_h2_recv() with what the socket brought; output: tg_h2_send()
 * into the socket's buffer. Single-threaded; callbacks never free the
 * session.
 */
#ifndef TG_H2_SESSION_H
#define TG_H2_SESSION_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http_parser.h"

typedef struct tg_h2_s tg_h2_t;
typedef struct tg_h2_stream_s tg_h2_stream_t;

/* The client connection preface (RFC 9113 section 3.4). */
#define TG_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define TG_H2_PREFACE_LEN 24

/* Defences (the `defence` label's values, in this order). */
typedef enum {
    TG_H2_DEF_RAPID_RESET = 0,
    TG_H2_DEF_CONTINUATION_FLOOD,
    TG_H2_DEF_HPACK_BOMB,
    TG_H2_DEF_HEADER_LIST_TOO_LARGE,
    TG_H2_DEF_SETTINGS_FLOOD,
    TG_H2_DEF_PING_FLOOD,
    TG_H2_DEF_EMPTY_DATA_FLOOD,
    TG_H2_DEF_ZERO_WINDOW_STALL,
    TG_H2_DEF_REFUSED_STREAM,
    TG_H2_DEF_MALFORMED,
    TG_H2_DEF_COUNT
} tg_h2_defence_t;

/* Budgets of the defences. A browser opens and cancels streams in bursts of
 * tens; 200 resets at once, then 100 per second, is far above that and far
 * below an attack's millions. Floods of frames that cost us and not the
 * sender (SETTINGS and PING need an ACK, empty DATA moves nothing): 100 at
 * once, 50 per second. A header block in more than 16 CONTINUATIONs is not
 * a client's (curl, browsers: at most a few). */
#define TG_H2_RESET_BURST 200
#define TG_H2_RESET_RATE 100
#define TG_H2_FLOOD_BURST 100
#define TG_H2_FLOOD_RATE 50
#define TG_H2_MAX_CONTINUATIONS 16
/* A decoded header list this many times over the limit is an HPACK bomb
 * (a few bytes referencing large table entries): GOAWAY rather than going
 * on decoding it. */
#define TG_H2_BOMB_FACTOR 4

/* What the session needs from whoever serves its streams (h2_bridge.c; a
 * stub in tests/fuzz/fuzz_h2.c). Each callback runs inside tg_h2_recv or
 * tg_h2_send (or tg_h2_tick) and must not free the session. */
typedef struct {
    /* A valid request head, in HTTP/1.1 form in head (the callee takes its
     * bytes). chunked: the body follows as DATA and must be chunk-framed;
     * end_stream: there is no body. Returns 0, or -1 to refuse the stream
     * (RST_STREAM REFUSED_STREAM). */
    int (*request)(tg_h2_stream_t *st, struct evbuffer *head, bool chunked, bool end_stream,
                   void *arg);
    /* The head was refused before it became a request (a header list over
     * the limit: 431): the handler answers it as the gateway answers such a
     * head over HTTP/1.1. Returns 0, or -1 (RST_STREAM REFUSED_STREAM). */
    int (*reject)(tg_h2_stream_t *st, int status, const char *msg, void *arg);
    /* Request body bytes were added to tg_h2_stream_in(st); end: the last. */
    void (*body)(tg_h2_stream_t *st, bool end, void *arg);
    /* The response buffer fell to the low mark: more may be added. */
    void (*drained)(tg_h2_stream_t *st, void *arg);
    /* The stream is closed (complete, reset, or the connection ends): the
     * handler must drop it; st is freed after this returns. */
    void (*closed)(tg_h2_stream_t *st, void *arg);
} tg_h2_handler_t;

/* Closed streams' objects a session keeps for its next streams (with one
 * stream at a time, one is enough; a few cover the churn of many). */
#define TG_H2_SPARES 4

/* Response body bytes buffered per stream beyond which the producer stops
 * (and is told by `drained` when they fell to a quarter). */
#define TG_H2_OUT_HIGH (256u * 1024u)

/* Timeouts the session enforces itself (tg_h2_tick). */
typedef struct {
    uint64_t header_ms; /* a header block begun and not ended (limits.header_timeout) */
    uint64_t stall_ms;  /* a response waiting on a zero window (limits.send_timeout) */
} tg_h2_timeouts_t;

/* A server session with SETTINGS from lim (already queued for tg_h2_send).
 * worker_id: whose counters. NULL when out of memory. */
tg_h2_t *tg_h2_new(const tg_h2_limits_t *lim, const tg_h2_timeouts_t *to, unsigned worker_id,
                   const tg_h2_handler_t *h, void *arg);

/* Closes every stream (handler->closed for each) and frees. */
void tg_h2_free(tg_h2_t *h2);

/* Feeds what the client sent (the preface first). Returns 0, or -1 when the
 * connection must end (after flushing what tg_h2_send still gives: a GOAWAY
 * explains why). */
int tg_h2_recv(tg_h2_t *h2, const uint8_t *data, size_t len);

/* Appends frames ready to go to out, up to about max bytes in it. Returns
 * 0, or -1 on a fatal error. */
int tg_h2_send(tg_h2_t *h2, struct evbuffer *out, size_t max);

/* Whether the session still has anything to read or write: when neither,
 * the connection is over (after a GOAWAY, once its streams ended). */
bool tg_h2_alive(tg_h2_t *h2);

/* Streams open now. */
size_t tg_h2_open_streams(const tg_h2_t *h2);

/* Graceful end: GOAWAY(NO_ERROR) with the last stream id processed; open
 * streams finish, new ones are refused, then tg_h2_alive() turns false. */
void tg_h2_shutdown(tg_h2_t *h2);

/* Once a second while streams are open (and once more after: with none
 * open, the closed streams' objects kept for reuse are freed, so that an
 * idle connection holds none): resets the streams whose response
 * waited on a zero window longer than the stall timeout, and ends the
 * connection (GOAWAY PROTOCOL_ERROR) when a header block stayed open past
 * the header timeout: nothing else may come on the connection meanwhile
 * (RFC 9113 section 6.10), so it is the connection that is stuck. Returns
 * -1 then. now_ms: monotonic. */
int tg_h2_tick(tg_h2_t *h2, uint64_t now_ms);

/* Counts one defence (also used by the connection, for its own). */
void tg_h2_count(unsigned worker_id, tg_h2_defence_t d);

/* Registers the http2 metric families (at config load; idempotent):
 * tollgate_http2_defences_total{defence}, tollgate_http2_streams_total (the
 * HTTP/2 share of tollgate_requests_total), tollgate_http2_connections_total. */
void tg_h2_metrics_register(void);

/* ---- one stream ---- */

void tg_h2_stream_set_data(tg_h2_stream_t *st, void *data);
void *tg_h2_stream_data(const tg_h2_stream_t *st);
int32_t tg_h2_stream_id(const tg_h2_stream_t *st);
tg_h2_t *tg_h2_stream_session(const tg_h2_stream_t *st);

/* Request body bytes received and not yet consumed; NULL until the first
 * DATA (tg_h2_stream_in_length() is 0 then). */
struct evbuffer *tg_h2_stream_in(tg_h2_stream_t *st);
size_t tg_h2_stream_in_length(const tg_h2_stream_t *st);
/* n bytes left tg_h2_stream_in(): the client may send that much more. */
void tg_h2_stream_consumed(tg_h2_stream_t *st, size_t n);

/* The response head: status and fields (names are lower-cased here;
 * connection-specific ones must already be gone). end: no body follows.
 * Returns 0 or -1. */
int tg_h2_stream_respond(tg_h2_stream_t *st, int status, const tg_http_header_t *hs, size_t n,
                         bool end);
/* An interim response (100 Continue) ahead of the final one. */
void tg_h2_stream_interim(tg_h2_stream_t *st, int status);
/* Bytes of the response body buffered, not yet framed. */
size_t tg_h2_stream_pending(const tg_h2_stream_t *st);
/* The response body buffer: add bytes, then tg_h2_stream_resume(). */
struct evbuffer *tg_h2_stream_out(tg_h2_stream_t *st);
/* More body in tg_h2_stream_out(); end: it is the last (END_STREAM). */
void tg_h2_stream_resume(tg_h2_stream_t *st, bool end);
/* RFC 9113 section 7 error codes the handler uses. */
#define TG_H2_INTERNAL_ERROR 0x2u
#define TG_H2_CANCEL 0x8u

/* Aborts the stream (RST_STREAM with an RFC 9113 error code). */
void tg_h2_stream_reset(tg_h2_stream_t *st, uint32_t error_code);

#endif
