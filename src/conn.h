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
    tg_stream_t *s;         /* the socket (plain or TLS) */
    struct event *timer;    /* header / idle timeout (also a tunnel's); NULL while parked */
    struct evbuffer *stage; /* the worker's, while a response's first part is held */
    tg_arena_t *arena;      /* only while a request is in progress */
    tg_request_t *req;
    tg_tls_info_t *tls_info; /* TLS: set when the handshake completed; NULL when plain */
    tg_conn_t *prev, *next;  /* worker's list */
    uint64_t idle_since_ms;  /* keep-alive idle start (parking, idle timeout); in a
                                tunnel, the last byte moved either way */
    uint32_t requests;
    uint32_t scanned;     /* input bytes already searched for the end of the head */
    uint16_t listener;    /* index in the worker's config listeners */
    uint8_t state;        /* tg_conn_state_t */
    bool tls : 1;         /* arrived over TLS (X-Forwarded-Proto: https) */
    bool head_timer : 1;  /* timer counts header_timeout (else idle_timeout) */
    bool close_after : 1; /* close once the current response is written */
    bool client_eof : 1;
    bool parked : 1;  /* idle keep-alive without buffers (conn.c: park) */
    bool chunked : 1; /* the response in progress is framed as chunked */
    tg_peer_addr_t peer;
    char peer_ip[]; /* the peer's address as text, NUL-terminated */
};

/* Takes ownership of fd (accepted, non-blocking) from cfg->listeners[listener]. */
void tg_conn_accept(tg_worker_t *w, size_t listener, int fd, const struct sockaddr *sa, int salen);

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
