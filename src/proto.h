/*
 * The client-facing side of the response pipeline: what a client
 * connection's protocol does with a response. response.c decides what is
 * sent (status, header fields, body bytes, after the plugins' hooks) for
 * generated replies and upstream responses alike; the protocol decides how it
 * goes on the wire and what the connection does afterwards (HTTP/1.1: conn.c
 * with the head writer of h1_head.c; an HTTP/2 stream next).
 *
 * Order per response: at most one interim() before head(), then head(), then
 * body() any number of times, then end() or abort(). hold()/release() wrap a
 * first part that may still be replaced. Nothing here allocates per call.
 */
#ifndef TG_PROTO_H
#define TG_PROTO_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>

#include "http_parser.h"
#include "tollgate/request.h"

/* What follows the head. */
typedef enum {
    TG_OUT_NONE,    /* no body (HEAD, 204, 304): a Content-Length among the fields is kept */
    TG_OUT_LENGTH,  /* exactly `length` body bytes */
    TG_OUT_STREAM,  /* length unknown (or changed by a plugin): the protocol frames it */
    TG_OUT_UPGRADE, /* 101 to websocket: the connection becomes a tunnel after the head */
} tg_out_kind_t;

typedef struct tg_proto_s {
    const char *name; /* "http/1.1" */
    /* Queues the head of resp (reason NULL: the standard phrase). Fields of
     * this hop among resp->headers (Connection and the names it lists,
     * Keep-Alive, Transfer-Encoding, ...), Content-Length and X-Request-Id
     * are dropped; the request's added response headers (resp.extra), its
     * X-Request-Id and the protocol's framing fields are written. Adds what
     * it wrote to req->resp.bytes_out. */
    void (*head)(tg_request_t *req, const tg_http_response_t *resp, tg_out_kind_t kind,
                 uint64_t length);
    /* Moves all of data out as body bytes (framed as head() said). */
    void (*body)(tg_request_t *req, struct evbuffer *data);
    /* The response is complete: the request ends (log hooks run) and the
     * connection goes on with the next one, or closes. */
    void (*end)(tg_request_t *req);
    /* The response cannot be completed: the request ends, what is queued is
     * flushed (its framing never completes) and the connection closes. */
    void (*abort)(tg_request_t *req);
    /* An interim response (100 Continue) ahead of the final head. */
    void (*interim)(tg_request_t *req, int status);
    /* Output from here on is held back (a first part that a broken upstream
     * body can still replace) until release(): sent when send, else
     * dropped. */
    void (*hold)(tg_request_t *req);
    void (*release)(tg_request_t *req, bool send);
    /* Bytes queued toward the client, held ones included (backpressure). */
    size_t (*pending)(const tg_request_t *req);
    /* Where the request body's bytes arrive (framed as the client sent
     * them: req->client.body decodes), and that all of it was read (the
     * body timeout stops). */
    struct evbuffer *(*input)(tg_request_t *req);
    void (*input_done)(tg_request_t *req);
} tg_proto_t;

#endif
