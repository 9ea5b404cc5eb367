/*
 * Writing an HTTP/1.1 response head, for generated replies and upstream
 * responses alike: into space reserved at its exact upper bound (one
 * reservation, plain memcpy, one commit). Knows bytes and structs only: the
 * connection decides framing and keep-alive (conn.c).
 */
#ifndef TG_H1_HEAD_H
#define TG_H1_HEAD_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>

#include "http_parser.h"

/* How the body is framed on the wire. */
typedef enum {
    TG_H1_NONE,    /* no body: a Content-Length among the fields is kept (HEAD, 304) */
    TG_H1_LENGTH,  /* Content-Length: length */
    TG_H1_CHUNKED, /* Transfer-Encoding: chunked */
    TG_H1_CLOSE,   /* the body ends with the connection (HTTP/1.0 client) */
    TG_H1_UPGRADE, /* 101: this hop's Connection/Upgrade pair for websocket */
} tg_h1_framing_t;

typedef struct {
    const tg_http_response_t *resp; /* reason NULL: the standard phrase */
    const tg_http_header_t *extra;  /* added to every response (tg_request_add_response_header) */
    size_t nextra;
    const char *request_id;
    size_t request_id_len;
    tg_h1_framing_t framing;
    uint64_t length; /* TG_H1_LENGTH */
    bool keepalive;  /* else Connection: close */
    bool client10;   /* an HTTP/1.0 client: a kept connection says keep-alive */
} tg_h1_head_t;

/* Appends the head to out. Drops this hop's fields of resp (RFC 9110
 * section 7.6.1 and the names Connection lists), its Content-Length (unless
 * TG_H1_NONE keeps it) and its X-Request-Id. Returns the bytes written. */
size_t tg_h1_head_write(struct evbuffer *out, const tg_h1_head_t *h);

#endif
