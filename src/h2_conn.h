/*
 * A client connection that speaks HTTP/2: chosen by ALPN on a TLS listener
 * (tls.alpn, h2 by default) or by the connection preface on a plain
 * listener with `http2: prior_knowledge`. It takes over the tg_conn_t's
 * stream: bytes in go to the session (h2_session.c), frames out go to the
 * socket with the stream's backpressure; timers for the connection's idle
 * timeout (no stream open), the zero-window check and graceful shutdown.
 * Each stream's exchange is h2_bridge.c's.
 */
#ifndef TG_H2_CONN_H
#define TG_H2_CONN_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "h2_session.h"

typedef struct tg_h2_conn_s {
    tg_conn_t *c;
    tg_h2_t *h2;
    struct event *kick;     /* activated: flush what the session has to send */
    struct event *idle;     /* no stream open for limits.http2.idle_timeout */
    struct event *tick;     /* once a second while streams are open */
    uint64_t idle_since_ms; /* no stream open since (monotonic) */
    bool busy;              /* streams were open at the last look */
    bool kicked;
    bool closing;  /* the session ended: close once the output is flushed */
    bool shutdown; /* GOAWAY sent for a drain */
} tg_h2_conn_t;

/* Called on a fresh connection's first input (or handshake): when it is
 * HTTP/2, takes it over and returns true. Returns true too while a plain
 * prior-knowledge listener's first bytes are a prefix of the preface (wait
 * for more). */
bool tg_h2_conn_detect(tg_conn_t *c);

/* Graceful end (worker drain): GOAWAY with the last stream processed, open
 * streams finish, then the connection closes. */
void tg_h2_conn_drain(tg_conn_t *c);

/* After a reload: every HTTP/2 connection of the worker gets its GOAWAY
 * (as on a drain). Clients reconnect for their next streams, to the new
 * listeners and limits; open streams finish on the config they started on. */
void tg_h2_conns_reloaded(tg_worker_t *w);

/* From conn_free: the session and its streams go (every stream's exchange
 * is aborted). */
void tg_h2_conn_free(tg_conn_t *c);

/* The session has something to send (a stream's response moved): flush it
 * from the loop. */
void tg_h2_conn_kick(tg_h2_conn_t *hc);

/* The session's handler (h2_bridge.c). */
extern const tg_h2_handler_t tg_h2_bridge;

#endif
