/*
 * A client connection: reads request heads (with the header and idle
 * timeouts), hands each to the dispatch step one at a time in arrival order
 * (pipelined requests wait in the input buffer), parks idle keep-alive
 * connections, and closes. Its protocol (HTTP/1.1, proto.h) is the
 * client-facing end of the response pipeline: heads, body framing,
 * keep-alive, and what comes after a response.
 */
#ifndef TG_CONN_H
#define TG_CONN_H

#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>

#include "request.h"
#include "stream.h"
#include "worker.h"

typedef enum {
    TG_CONN_IDLE = 0, /* between requests, or reading a head */
    TG_CONN_ACTIVE,   /* a request is being handled */
    TG_CONN_CLOSING,  /* flushing the last response, then close */
    TG_CONN_TUNNEL,   /* upgraded (101): bytes pass through both ways (tunnel.c) */
} tg_conn_state_t;

struct tg_conn_s {
    tg_worker_t *worker;
    size_t listener;     /* index in the worker's config listeners */
    bool tls;            /* arrived over TLS (X-Forwarded-Proto: https) */
    tg_stream_t *s;      /* the socket (plain or TLS) */
    struct event *timer; /* header / idle timeout (also a tunnel's); NULL while parked */
    tg_conn_state_t state;
    bool head_timer;  /* timer counts header_timeout (else idle_timeout) */
    bool close_after; /* close once the current response is written */
    bool client_eof;
    bool parked;            /* idle keep-alive without buffers (conn.c: park) */
    bool chunked;           /* the response in progress is framed as chunked */
    struct evbuffer *stage; /* the worker's, while a response's first part is held */
    tg_arena_t *arena;      /* only while a request is in progress */
    tg_request_t *req;
    unsigned requests;
    unsigned metrics_slot;  /* listener/protocol counted open (traffic_metrics.h) */
    size_t scanned;         /* input bytes already searched for the end of the head */
    uint64_t idle_since_ms; /* keep-alive idle start (parking, idle timeout); in a
                               tunnel, the last byte moved either way */
    struct sockaddr_storage peer;
    char peer_ip[46];
    struct tg_h2_conn_s *h2c; /* this connection speaks HTTP/2 (h2_conn.c owns it) */
    /* One HTTP/2 stream's exchange (h2_bridge.c): its protocol and that
     * protocol's state; NULL on a client's own connection (HTTP/1.1). */
    const struct tg_proto_s *proto;
    void *proto_data;
    tg_conn_t *prev, *next; /* worker's list */
};

/* Takes ownership of fd (accepted, non-blocking) from cfg->listeners[listener]. */
void tg_conn_accept(tg_worker_t *w, size_t listener, int fd, const struct sockaddr *sa, int salen);

/* One HTTP/2 stream's exchange (h2_bridge.c): the request head and body
 * arrive on an in-memory stream s and go the same way as an HTTP/1.1
 * client's of listener, from peer (tls: the HTTP/2 connection came over
 * TLS); responses go out through proto (with proto_data) instead of
 * HTTP/1.1. Takes ownership of s. NULL when out of memory (s is then
 * freed). */
tg_conn_t *tg_conn_accept_stream(tg_worker_t *w, size_t listener, tg_stream_t *s,
                                 const struct sockaddr *peer, int salen, bool tls,
                                 const struct tg_proto_s *proto, void *proto_data);

/* A gateway error reply before any head parsed (as for an HTTP/1.1 head
 * refused by the parser): logged and counted like any request. */
void tg_conn_reject(tg_conn_t *c, int status, const char *msg);

/* A protocol's end(): the response is complete, the request ends and the
 * connection goes on or closes (as HTTP/1.1's end does). */
void tg_conn_request_done(tg_conn_t *c);

/* Draining: idle connections close now, busy ones after their response. */
void tg_conn_drain(tg_conn_t *c);

/* Closes now, aborting whatever is in progress (the client is gone). */
void tg_conn_abort(tg_conn_t *c);

/* The response in progress cannot be completed: ends the request, flushes
 * what is already queued (earlier pipelined responses, and the truncated one,
 * whose framing then never completes) and closes. The protocol's abort, and
 * a tunnel's end. */
void tg_conn_fail(tg_conn_t *c);

#endif
