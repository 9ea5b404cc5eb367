/*
 * A request's part of a trace: the context it continues or starts (W3C
 * traceparent/tracestate, trace_context.h), the gateway's SERVER span, a
 * CLIENT span per upstream try and per aggregation call, and what plugins
 * add (include/tollgate/trace.h). Everything lives in the request's arena.
 *
 * Ids are always made (the upstream always gets a traceparent, the access log
 * always has ids); spans are recorded only when the request is sampled and
 * `tracing:` names a collector, and handed to the exporter (otlp_export.h)
 * when the request ends.
 */
#ifndef TG_TRACE_SPAN_H
#define TG_TRACE_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tg_request_s tg_request_t;

typedef struct tg_span_attr_s {
    struct tg_span_attr_s *next;
    const char *key, *value;
} tg_span_attr_t;

typedef struct tg_span_event_s {
    struct tg_span_event_s *next;
    uint64_t time_ns;
    const char *name, *key, *value; /* key/value: one attribute, or NULL */
} tg_span_event_t;

/* A CLIENT span: one upstream try or one aggregation call. */
typedef struct tg_client_span_s {
    struct tg_client_span_s *next;
    uint8_t span_id[8];
    uint64_t start_ns, end_ns; /* end 0: still open */
    const char *upstream;      /* the upstream's name */
    const char *target;        /* "host:port" as configured; NULL when not known */
    const char *path;          /* the request target sent */
    unsigned resend;           /* http.request.resend_count: tries before this one */
    int status;                /* 0: no response */
    const char *error;         /* NULL, or why the try failed */
} tg_client_span_t;

typedef struct {
    uint8_t trace_id[16];
    uint8_t parent_id[8];   /* the client's span (has_parent) */
    uint8_t span_id[8];     /* the gateway's SERVER span */
    uint8_t up_span[8];     /* the current upstream try's span: its traceparent's parent */
    bool begun;             /* ids are set */
    bool has_parent;        /* a valid traceparent came in */
    bool sampled;           /* the sampled flag we send on */
    bool recording;         /* sampled and exported: spans below are kept */
    const char *tracestate; /* passed on as received (lines joined by ","), or NULL */
    size_t tracestate_len;
    uint64_t start_ns;
    tg_client_span_t *clients; /* newest first */
    tg_client_span_t *cur;     /* the open upstream try */
    tg_span_attr_t *attrs;
    tg_span_event_t *events;
} tg_trace_t;

/* Room tg_trace_write_headers() needs. */
#define TG_TRACE_HEADERS_MAX(req) (96 + (req)->trace.tracestate_len)

/* Reads traceparent/tracestate from the request's headers (after the head
 * was parsed) and decides: continue, replace or start; sampled or not. */
void tg_trace_begin(tg_request_t *req);

/* A new upstream try of a proxied request: a new span id for its
 * traceparent, and a CLIENT span when recording. */
void tg_trace_attempt(tg_request_t *req);
/* The try's response head arrived (status), or the try failed (error). */
void tg_trace_attempt_status(tg_request_t *req, int status);
void tg_trace_attempt_failed(tg_request_t *req, const char *error);

/* A subrequest made for req (an aggregation call): its span id in span_id;
 * returns its CLIENT span (NULL when not recording), to end with
 * tg_trace_client_end(). */
tg_client_span_t *tg_trace_client(tg_request_t *req, const char *upstream, const char *path,
                                  uint8_t span_id[8]);
void tg_trace_client_end(tg_client_span_t *s, int status, const char *error);

/* Writes "traceparent: 00-<trace>-<span>-<flags>\r\n" and, when the client
 * sent one, "tracestate: ...\r\n" at w; returns the bytes written (at most
 * TG_TRACE_HEADERS_MAX). span is the id of the span the receiver's parent is. */
size_t tg_trace_write_headers(const tg_request_t *req, const uint8_t span[8], char *w);

/* A fresh context for a request of the gateway's own without a client
 * request (a key set download): a new trace, unsampled. */
void tg_trace_fresh_traceparent(char out[56]);

/* The request ends: its spans go to the exporter when recording. */
void tg_trace_end(tg_request_t *req);

#endif
