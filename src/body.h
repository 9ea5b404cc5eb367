/*
 * Moving a message body from one evbuffer to another without copying its
 * bytes: Content-Length, chunked (decoded, validated and re-framed) or
 * read-until-close. Used in both directions (client -> upstream, upstream ->
 * client). Data chains move with evbuffer_remove_buffer; only chunk framing is
 * parsed and written.
 */
#ifndef TG_BODY_H
#define TG_BODY_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stdint.h>

#include "http_parser.h"

typedef struct {
    tg_body_kind_t kind;
    uint64_t remaining; /* TG_BODY_LENGTH: bytes still to move */
    uint64_t moved;     /* data bytes moved so far */
    uint64_t limit;     /* max data bytes, 0 = unlimited (-> TG_BODY_TOO_LARGE) */
    bool out_chunked;   /* frame the output as chunked */
    bool done;
    tg_chunked_t chunked; /* input decoder for TG_BODY_CHUNKED */
    const char *error;    /* reason on TG_BODY_ERROR */
} tg_body_t;

enum {
    TG_BODY_MORE = 0,       /* needs more input (or output room) */
    TG_BODY_DONE = 1,       /* whole body moved, framing terminated */
    TG_BODY_ERROR = -1,     /* invalid framing */
    TG_BODY_TOO_LARGE = -2, /* limit exceeded */
};

void tg_body_init(tg_body_t *b, tg_body_kind_t kind, uint64_t length, uint64_t limit,
                  bool out_chunked);

/* Moves what src holds toward dst, stopping once dst holds more than max_out
 * bytes. Returns TG_BODY_MORE, TG_BODY_DONE, TG_BODY_ERROR or TG_BODY_TOO_LARGE. */
int tg_body_pump(tg_body_t *b, struct evbuffer *src, struct evbuffer *dst, size_t max_out);

/* The source closed. For TG_BODY_UNTIL_CLOSE this completes the body (writes
 * the last chunk when re-framing) and returns TG_BODY_DONE; for the others a
 * close before the end is TG_BODY_ERROR (a truncated body). */
int tg_body_eof(tg_body_t *b, struct evbuffer *dst);

#endif
