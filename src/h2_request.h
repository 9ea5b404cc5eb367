/*
 * An HTTP/2 request head, field by field as HPACK decodes it, checked as RFC
 * 9113 section 8.3 says and turned into the HTTP/1.1 head that the rest of
 * the gateway parses (request_head.c): one request path, one set of rules
 * for what a client may send, whatever its protocol.
 *
 * Pure: knows bytes, not connections. The session (h2_session.c) feeds it
 * every decoded field of a HEADERS block, then finishes it once the block
 * ended; a malformed request is a stream error (RFC 9113 section 8.1.1),
 * never a connection error.
 */
#ifndef TG_H2_REQUEST_H
#define TG_H2_REQUEST_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Per-field overhead of the header list size (RFC 9113 section 6.5.2, the
 * size HPACK counts: name + value + 32). */
#define TG_H2_FIELD_OVERHEAD 32

/* Pseudo-headers seen (bits). */
enum {
    TG_H2_PS_METHOD = 1u << 0,
    TG_H2_PS_SCHEME = 1u << 1,
    TG_H2_PS_AUTHORITY = 1u << 2,
    TG_H2_PS_PATH = 1u << 3,
};

typedef enum {
    TG_H2_REQ_OK = 0,
    TG_H2_REQ_MALFORMED = -1, /* RST_STREAM PROTOCOL_ERROR (reason says why) */
    TG_H2_REQ_TOO_LARGE = -2, /* header list over the limit: a 431 on the stream */
} tg_h2_req_status_t;

typedef struct {
    uint32_t max_list_size; /* limits.http2.max_header_list_size */
    uint32_t list_size;     /* decoded size so far (RFC 9113 section 6.5.2) */
    unsigned pseudo;        /* TG_H2_PS_* seen */
    bool regular_seen;      /* a regular field came: no pseudo-header after it */
    bool has_host;
    bool has_content_length;
    int status;         /* the first failure (tg_h2_req_status_t), sticky */
    const char *reason; /* why, for the log and the counter (static text) */
    /* Copies (an HPACK name/value is only valid during its callback). */
    char *fields; /* "name: value\r\n" for every regular field but cookie and host */
    size_t fields_len, fields_cap;
    struct evbuffer *cookies; /* cookie values joined with "; " (RFC 9113 section 8.2.3); made
                                 when the first one comes */
    char method[32];
    size_t method_len;
    char scheme[16];
    size_t scheme_len;
    /* :authority, :path and the Host field's value, one after the other in
     * text (one allocation, grown as needed) */
    char *text;
    size_t text_len, text_cap;
    size_t authority_at, authority_len, path_at, path_len, host_at, host_len;
} tg_h2_req_t;

/* 0 (never fails: buffers are made as fields come). */
int tg_h2_req_init(tg_h2_req_t *r, uint32_t max_list_size);
void tg_h2_req_free(tg_h2_req_t *r);
/* Ready for the next head (a stream object reused): the buffers are kept
 * when small, so that a head like the last one allocates nothing. */
void tg_h2_req_reset(tg_h2_req_t *r);

/* One decoded field. Returns TG_H2_REQ_OK or the (sticky) failure; after a
 * failure later fields are only counted, not kept. */
int tg_h2_req_field(tg_h2_req_t *r, const uint8_t *name, size_t name_len, const uint8_t *value,
                    size_t value_len);

/* The block ended (END_HEADERS). end_stream: no body follows. Appends the
 * HTTP/1.1 head to out: request line, Host from :authority (or Host), the
 * fields, the joined Cookie, and the body's framing: the client's
 * Content-Length when it sent one, Transfer-Encoding: chunked when a body
 * follows without one (the caller then chunks DATA), nothing when none
 * follows. *chunked tells which. Returns TG_H2_REQ_OK or a failure. */
int tg_h2_req_finish(tg_h2_req_t *r, bool end_stream, struct evbuffer *out, bool *chunked);

#endif
