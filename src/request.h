/*
 * One HTTP request on a client connection, from its parsed head to the end
 * of its response. Lives in the connection's per-request arena.
 */
#ifndef TG_REQUEST_H
#define TG_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "body.h"
#include "config.h"
#include "http_parser.h"
#include "request_id.h"
#include "upstream_pool.h"

typedef struct tg_conn_s tg_conn_t;

#define TG_MAX_CONN_TOKENS 8

typedef struct {
    const char *p;
    size_t len;
} tg_span_t;

typedef enum {
    TG_UP_NONE = 0,  /* no upstream attempt yet (or none needed) */
    TG_UP_SENDING,   /* head (and maybe body) going out, waiting for the response head */
    TG_UP_RECEIVING, /* response head forwarded, body streaming */
    TG_UP_DONE,
} tg_up_state_t;

typedef struct tg_req_s {
    tg_conn_t *conn;
    tg_arena_t *arena;
    tg_config_t *cfg;
    uint64_t start_ms;

    /* head, copied into the arena; every pointer below points into it */
    char *head;
    size_t head_len;
    tg_http_request_t http;
    uint32_t method_bit;
    const char *host; /* Host header or absolute-form authority; NULL when none */
    size_t host_len;
    char *path;       /* canonical path (after strip_prefix once routed) */
    size_t path_len;
    const char *query; /* after "?", NULL when the target has none */
    size_t query_len;
    tg_span_t conn_tokens[TG_MAX_CONN_TOKENS]; /* header names listed in Connection */
    unsigned nconn_tokens;
    char request_id[TG_REQUEST_ID_BUF];
    size_t request_id_len;

    const tg_route_t *route;
    tg_upool_t *pool;

    /* request body, client -> upstream */
    tg_body_t body;
    bool body_started; /* some body byte left the client buffer */
    bool sent_continue;

    /* upstream */
    tg_up_state_t up_state;
    tg_uconn_t *up;
    uint64_t tried; /* bit per target already failed */
    unsigned attempts;
    unsigned stale_retries;
    int status; /* status sent to the client */
    bool resp_keepalive; /* upstream allows reuse after this response */
    bool up_eof;         /* the upstream closed; finish the body with what is buffered */
    tg_body_t resp_body;
    uint64_t bytes_out;
} tg_req_t;

#endif
