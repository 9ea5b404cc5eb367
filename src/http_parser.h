/*
 * HTTP/1.x message head parser (RFC 9110 / RFC 9112), picohttpparser style:
 * it never allocates, never copies, and points into the caller's buffer. The
 * caller feeds the bytes received so far; the parser answers with the length of
 * the complete head, TG_HTTP_INCOMPLETE, or TG_HTTP_ERROR with a status and a
 * reason. It is strict on purpose (request smuggling defences): see the error
 * list in http_parser.c.
 */
#ifndef TG_HTTP_PARSER_H
#define TG_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_HTTP_INCOMPLETE (-2)
#define TG_HTTP_ERROR (-1)

typedef struct {
    const char *name; /* as received (case preserved) */
    size_t name_len;
    const char *value; /* leading/trailing OWS removed */
    size_t value_len;
} tg_http_header_t;

typedef enum {
    TG_BODY_NONE = 0,   /* no body */
    TG_BODY_LENGTH,     /* Content-Length bytes */
    TG_BODY_CHUNKED,    /* Transfer-Encoding: chunked */
    TG_BODY_UNTIL_CLOSE /* responses only: read until the upstream closes */
} tg_body_kind_t;

/* Facts the parser extracts while it validates, so that nobody scans the
 * headers twice. */
enum {
    TG_HF_CONN_CLOSE = 1u << 0,      /* Connection: close */
    TG_HF_CONN_KEEPALIVE = 1u << 1,  /* Connection: keep-alive */
    TG_HF_CONN_UPGRADE = 1u << 2,    /* Connection: upgrade */
    TG_HF_EXPECT_CONTINUE = 1u << 3, /* Expect: 100-continue */
    TG_HF_HAS_UPGRADE = 1u << 4,     /* an Upgrade header is present */
    TG_HF_EXPECT_OTHER = 1u << 5,    /* Expect with another value (-> 417) */
};

typedef struct {
    /* request line */
    const char *method;
    size_t method_len;
    const char *target; /* request-target exactly as received */
    size_t target_len;
    int minor_version; /* HTTP/1.<minor>: 0 or 1 */
    /* headers: the caller provides the array and its capacity */
    tg_http_header_t *headers;
    size_t num_headers; /* in: capacity; out: number parsed (left untouched on
                           TG_HTTP_INCOMPLETE, so the struct can be passed again) */
    /* derived */
    tg_body_kind_t body_kind; /* NONE, LENGTH (also for "Content-Length: 0") or CHUNKED */
    uint64_t content_length;  /* when body_kind == TG_BODY_LENGTH */
    unsigned flags;           /* TG_HF_* */
    int host_index;           /* index of the Host header, -1 when absent */
    /* on TG_HTTP_ERROR */
    int error_status;         /* 400, 414, 431, 501 or 505 */
    const char *error_reason; /* static text, e.g. "invalid header name" */
} tg_http_request_t;

typedef struct {
    int minor_version;
    int status; /* 100..999 */
    const char *reason;
    size_t reason_len;
    tg_http_header_t *headers;
    size_t num_headers; /* in: capacity; out: number parsed */
    /* derived (before applying the request method: see tg_http_response_body) */
    tg_body_kind_t body_kind; /* LENGTH, CHUNKED (exactly "chunked") or UNTIL_CLOSE */
    uint64_t content_length;
    unsigned flags; /* TG_HF_CONN_* */
    const char *error_reason;
} tg_http_response_t;

/*
 * Parses a request head from buf[0..len). Returns the number of bytes of the
 * head including the final CRLF CRLF, TG_HTTP_INCOMPLETE when more bytes are
 * needed, or TG_HTTP_ERROR with req->error_status / error_reason set. Errors
 * are reported as soon as the offending byte is seen, even if the head is not
 * complete yet. Too many headers -> 431. The caller enforces the size limit on
 * incomplete heads (-> 431). Leading empty lines before the request line are
 * skipped (RFC 9112 section 2.2).
 */
int tg_http_parse_request(const char *buf, size_t len, tg_http_request_t *req);

/* Same for a response head from an upstream; on TG_HTTP_ERROR only
 * error_reason is set (any invalid response becomes a 502 for the client).
 * Framing the gateway would have to guess at is an error like a syntax error:
 * Content-Length with Transfer-Encoding, a transfer coding other than exactly
 * "chunked", Transfer-Encoding in HTTP/1.0, a 1xx announcing a body. */
int tg_http_parse_response(const char *buf, size_t len, tg_http_response_t *resp);

/* Body framing of a response, given the request it answers (RFC 9112 section 6.3):
 * HEAD, 1xx, 204 and 304 have none whatever the headers say. */
tg_body_kind_t tg_http_response_body(const tg_http_response_t *resp, int request_was_head);

/* Whether the upstream connection may carry another exchange once this
 * response's body is complete (the caller adds its own conditions: request
 * body sent, no bytes left over): not when read until close, Connection:
 * close, HTTP/1.0 without keep-alive, or a 204 announcing a body. */
bool tg_http_response_reusable(const tg_http_response_t *resp, int request_was_head);

/*
 * Incremental chunked transfer-coding decoder (RFC 9112 section 7.1). It only
 * parses framing; the caller moves data bytes itself, so data is never copied:
 *
 *   for (;;) {
 *       r = tg_chunked_parse(&d, p, n, &used);   // consumes framing bytes
 *       drain(used);
 *       if (r == TG_CHUNK_DATA)  move min(d.remaining, available) bytes,
 *                                then tg_chunked_consumed(&d, moved);
 *       else if (r == TG_CHUNK_DONE) break;      // whole body including trailers
 *       else if (r == TG_CHUNK_NEED_MORE) wait for input;
 *       else error (d.error_reason)
 *   }
 *
 * Chunk extensions are validated and dropped; trailer fields are validated
 * like header fields and dropped. Limits: chunk-size of at most 16 hex digits
 * without overflow, extensions + trailers bounded by max_meta bytes.
 */
typedef enum {
    TG_CHUNK_NEED_MORE = 0,
    TG_CHUNK_DATA,
    TG_CHUNK_DONE,
    TG_CHUNK_ERROR,
} tg_chunk_result_t;

typedef struct {
    int state;           /* internal */
    uint64_t chunk_size; /* size of the current chunk */
    uint64_t remaining;  /* data bytes of the current chunk not yet consumed */
    uint64_t total;      /* data bytes announced so far, the current chunk included (it
                            grows when a chunk-size line completes, so that
                            max_body_size is enforced before the data is read) */
    size_t meta;         /* extension + trailer bytes seen so far */
    size_t max_meta;     /* limit for meta; 0 means 8192 */
    int digits;          /* internal */
    int new_chunk;       /* set to 1 when a chunk-size line completes; the caller clears it */
    const char *error_reason;
} tg_chunked_t;

void tg_chunked_init(tg_chunked_t *d, size_t max_meta);
tg_chunk_result_t tg_chunked_parse(tg_chunked_t *d, const char *buf, size_t len, size_t *used);
void tg_chunked_consumed(tg_chunked_t *d, uint64_t n);

/* Case-insensitive comparison of a header name with a lower-case literal. */
int tg_http_name_eq(const char *name, size_t len, const char *lower_literal, size_t lit_len);
/* The length test first, inline: most names differ in length (no call). */
#define TG_HTTP_NAME_IS(h, lit)          \
    ((h)->name_len == sizeof(lit) - 1 && \
     tg_http_name_eq((h)->name, (h)->name_len, lit, sizeof(lit) - 1))

/* Internal: byte classes shared by the head parser and the chunked decoder. */
enum {
    TG_HTTP_C_TCHAR = 1,  /* token character (RFC 9110 section 5.6.2) */
    TG_HTTP_C_VCHAR = 2,  /* 0x21-0x7E: request-target */
    TG_HTTP_C_FIELD = 4,  /* field-value byte: VCHAR, SP, HTAB, obs-text */
    TG_HTTP_C_HEX = 8,    /* HEXDIG */
    TG_HTTP_C_QDTEXT = 16 /* qdtext (RFC 9110 section 5.6.4) */
};
extern const unsigned char tg_http_ctype[256];

#endif
