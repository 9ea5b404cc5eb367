/*
 * One HTTP request on a client connection, from its parsed head to the end
 * of its response. Lives in the connection's per-request arena.
 */
#ifndef TG_REQUEST_H
#define TG_REQUEST_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "body.h"
#include "chain.h"
#include "claims.h"
#include "config.h"
#include "field_list.h"
#include "http_parser.h"
#include "request_id.h"
#include "retry_policy.h"
#include "tollgate/request.h"
#include "trace_span.h"
#include "upstream_pool.h"

typedef struct tg_conn_s tg_conn_t;

typedef enum {
    TG_UP_NONE = 0,  /* no upstream attempt yet (or none needed) */
    TG_UP_SENDING,   /* head (and maybe body) going out, waiting for the response head */
    TG_UP_RECEIVING, /* response head forwarded, body streaming */
    TG_UP_DONE,
} tg_up_state_t;

/* An entry of the plugins' key/value bag. */
typedef struct tg_var_s {
    struct tg_var_s *next;
    const char *key;
    enum { TG_VAR_STR, TG_VAR_INT, TG_VAR_PTR } type;
    const char *str;
    size_t len;
    int64_t i;
    void *ptr;
} tg_var_t;

/* Which kind of hook runs on a request now (tg_request_t run.hook): the request API
 * calls that belong to one phase check it. */
typedef enum {
    TG_HOOK_NONE = 0,
    TG_HOOK_REQUEST_HEAD,
    TG_HOOK_RESPONSE_HEAD,
    TG_HOOK_BODY, /* request_body or response_body */
} tg_hook_t;

/* A response the gateway (or a plugin) generates instead of the upstream's. */
typedef struct {
    bool set;
    int status;
    const char *content_type;
    const char *body;
    size_t len;
    tg_http_header_t *headers; /* more header fields (a redirect's Location...); in the arena */
    size_t nheaders;
} tg_reply_t;

/*
 * The request is split by owner: each part below names the file that writes
 * it and who else may. Everything else only reads it. The dispatch step is
 * the route, the limits and the chain binding (dispatch.c).
 */
struct tg_request_s {
    /* Set when the request is created (conn.c: new_request), then read-only. */
    tg_conn_t *conn;
    tg_arena_t *arena;
    tg_config_t *cfg;               /* gen->cfg */
    struct tg_gen_s *gen;           /* the worker's config generation this request runs on */
    const struct tg_proto_s *proto; /* the client connection's protocol (proto.h) */
    /* request_head.c (from the client's X-Request-Id, or generated); conn.c
     * generates one for a head that never parsed. */
    char request_id[TG_REQUEST_ID_BUF];
    size_t request_id_len;
    const tg_route_t *route; /* the dispatch step; NULL before it and when no route matched */

    /* The client side: the head and body the client sent. request_head.c
     * parses and fills it; the dispatch step sets client_path, strips the
     * route's prefix from path and prepares the body; plugins (request_api.c)
     * and route rewrites (route_action.c) may change path, query and
     * http.headers; the request body pump (proxy.c) owns the body fields. */
    struct {
        /* head, copied into the arena; every pointer below points into it */
        char *head;
        size_t head_len;
        tg_http_request_t http;
        uint32_t method_bit;
        const char *host; /* Host header or absolute-form authority; NULL when none */
        size_t host_len;
        char *path; /* canonical path (after strip_prefix once routed) */
        size_t path_len;
        const char *query; /* after "?", NULL when the target has none */
        size_t query_len;
        const char *client_path; /* canonical path before strip_prefix; NULL until routing */
        size_t client_path_len;
        bool query_replaced; /* tg_request_set_query() ran: client_query holds the original */
        const char *client_query;
        size_t client_query_len;
        size_t headers_cap; /* capacity of http.headers (plugins may add headers) */
        /* Who and what, decided once when the head is parsed (request_head.c).
         * http.headers then holds only the client's end-to-end fields
         * (client_fields.h); plugins append theirs after them. */
        bool peer_trusted;            /* the connection's peer is in trusted_proxies */
        bool ws_requested;            /* GET, Connection: upgrade, Upgrade lists websocket */
        bool from_xff;                /* addr/ip are set (else: the peer) */
        struct sockaddr_storage addr; /* behind a trusted peer: from X-Forwarded-For */
        char ip[INET6_ADDRSTRLEN];
        /* request body, client -> upstream */
        tg_body_t body;
        bool body_started;         /* some body byte left the client buffer */
        bool body_refused;         /* a request_body hook did not continue: run.reply answers */
        bool sent_continue;        /* 100 Continue went out (dispatch) */
        struct evbuffer *body_tmp; /* body bytes between client and request_body hooks */
        /* tg_request_read_body() (body_read.c): the body read whole before the
         * chain goes on, then handed to up.tries.body for the upstream. */
        struct evbuffer *kept_body;
        void (*kept_done)(void *data, const char *body, size_t len);
        void *kept_data;
    } client;

    /* The upstream exchange: proxy.c (the upstream client) alone writes it,
     * except pool and upgrade (set by the dispatch step) and keepalive (read
     * from the response head by response.c); tunnel.c takes conn over. */
    struct {
        tg_upool_t *pool;
        size_t target;    /* target of the current/last attempt */
        bool target_used; /* target is meaningful */
        tg_uconn_t *conn; /* the attempt's connection; NULL between attempts */
        uint64_t tried;   /* bit per target already failed */
        unsigned attempts;
        unsigned stale_retries;
        bool no_retry;
        bool upgrade; /* a WebSocket handshake on a websocket route: Upgrade is forwarded */
        tg_up_state_t state;
        bool keepalive;   /* upstream allows reuse after this response */
        bool eof;         /* the upstream closed; finish the body with what is buffered */
        tg_tries_t tries; /* retry policy, timeouts, circuit counts (retry_policy.h) */
    } up;

    /* The response pipeline (response.c) writes this part, for generated
     * replies and upstream responses alike; the protocol (proto.h) adds to
     * bytes_out; plugins (request_api.c) change head, extra and the body
     * mode from their hooks. */
    struct {
        int status;     /* status sent to the client */
        tg_body_t body; /* the upstream's response body, decoded */
        uint64_t bytes_out;
        bool completed;           /* the whole response was queued */
        tg_http_response_t *head; /* the response head while response_head hooks run */
        size_t head_cap;
        tg_http_header_t *extra; /* headers added to whatever response is sent */
        size_t nextra, extra_cap;
        struct evbuffer *tmp; /* body bytes between upstream and response_body hooks */
        size_t buffer_limit;  /* tg_response_buffer_body(): 0 = stream */
        bool filter;          /* tg_response_filter_body() */
        bool buffering;
        bool head_pending; /* head waits for the buffered body */
        bool replaced;     /* a generated reply replaces the upstream's response (a
                                  refused or broken body): no body hooks for it */
        bool held;         /* its first part is held (tg_response_hold) */
    } resp;

    /* The tunnel after a 101 (tunnel.c). */
    struct {
        bool closing; /* the client closed, flushing toward the upstream */
    } tunnel;

    /* The plugin run: chain_run.c runs the hooks; the dispatch step binds
     * the chain; plugins write reply, vars and claims through request_api.c,
     * and the gateway's own answers (errors, route actions, aggregation)
     * write reply too. */
    struct {
        const tg_chain_t *chain; /* route's chain, or the global one when unrouted */
        size_t pos;              /* request_head: index of the plugin running or paused */
        char *ctx;               /* chain->ctx_size bytes */
        bool paused;
        uint8_t hook;         /* tg_hook_t: the kind of hook running now */
        bool resume_noted;    /* tg_request_resume() ran inside the running request_head hook */
        int resume_status;    /* ... with this status (CONTINUE, RESPONDED or ERROR) */
        size_t resp_head_ran; /* response_head hooks that already saw a response */
        tg_reply_t reply;
        tg_var_t *vars;
        tg_claims_t claims; /* the authenticated client (tg_request_set_claim) */
    } run;

    /* Timings: conn.c sets the start, proxy.c and aggregate.c the upstream ones. */
    struct {
        uint64_t start_us;      /* wall clock */
        uint64_t start_mono_us; /* monotonic */
        uint64_t up_start_us;   /* monotonic, first upstream attempt */
        uint64_t up_head_us;    /* monotonic, response head received */
    } time;

    /* The trace (trace_span.c): begun by the dispatch step, upstream tries
     * recorded by proxy.c, aggregation calls by aggregate.c, plugins' parts
     * through request_api (tollgate/trace.h); ended by conn.c. */
    tg_trace_t trace;
};

#endif
