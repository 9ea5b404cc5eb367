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
#include <stdint.h>

#include "conn_info.h"
#include "request.h"
#include "stream.h"
#include "worker.h"

typedef enum {
    TG_CONN_IDLE = 0, /* between requests, or reading a head */
    TG_CONN_ACTIVE,   /* a request is being handled */
    TG_CONN_CLOSING,  /* flushing the last response, then close */
    TG_CONN_TUNNEL,   /* upgraded (101): bytes pass through both ways (tunnel.c) */
} tg_conn_state_t;

/* The peer's address: IPv4 or IPv6 (listeners are TCP only). */
typedef union {
    struct sockaddr sa;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
} tg_peer_addr_t;

/* Lives in its stream's allocation (tg_stream_new_with) and is freed with it:
 * an idle keep-alive connection is one allocation, kept small (see
 * docs/design.md, "I/O": bytes per idle connection). */
struct tg_conn_s {
    tg_worker_t *worker;
    tg_stream_t *s;      /* the socket (plain or TLS) */
    struct event *timer; /* header / idle timeout (also a tunnel's); NULL while parked */
    tg_arena_t *arena;   /* only while a request is in progress */
    tg_request_t *req;
    tg_tls_info_t *tls_info;  /* TLS: set when the handshake completed; NULL when plain;
                                an HTTP/2 stream's exchange borrows its connection's */
    struct tg_h2_conn_s *h2c; /* this connection speaks HTTP/2 (h2_conn.c owns it) */
    /* One HTTP/2 stream's exchange (h2_bridge.c): its protocol and that
     * protocol's state; NULL on a client's own connection (HTTP/1.1). */
    const struct tg_proto_s *proto;
    void *proto_data;
    tg_conn_t *prev, *next; /* worker's list */
    uint64_t idle_since_ms; /* keep-alive idle start (parking, idle timeout); in a
                                tunnel, the last byte moved either way */
    uint32_t requests;
    uint32_t scanned;     /* input bytes already searched for the end of the head */
    uint16_t listener;    /* index in the worker's config listeners */
    uint8_t state;        /* tg_conn_state_t */
    uint8_t metrics_slot; /* listener/protocol counted open (traffic_metrics.h) */
    bool tls : 1;         /* arrived over TLS (X-Forwarded-Proto: https) */
    bool head_timer : 1;  /* timer counts header_timeout (else idle_timeout) */
    bool close_after : 1; /* close once the current response is written */
    bool client_eof : 1;
    bool parked : 1;     /* idle keep-alive without buffers (conn.c: park) */
    bool chunked : 1;    /* the response in progress is framed as chunked */
    bool own_alloc : 1;  /* allocated apart from its stream (tg_conn_accept_stream) */
    bool staged : 1;     /* a response's first part is held in the worker's stage */
    bool idle_timer : 1; /* timer armed by become_idle: due no later than the next idle needs */
    tg_peer_addr_t peer;
    char peer_ip[]; /* the peer's address as text, NUL-terminated */
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
