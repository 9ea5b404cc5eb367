/*
 * Chunked transfer-coding framing decoder (RFC 9112 section 7.1), one byte at
 * a time over the framing only: data bytes are left to the caller, so they are
 * never copied. Strict like the head parser: CRLF only, no whitespace the
 * grammar does not allow, bounded sizes.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 */
#include "http_parser.h"
#include "tollgate/text.h"

#include <string.h>

/* 16 hex digits hold any uint64; 2^62 is already far beyond any body limit,
 * and the sum of the chunks stays below 2^63 like a Content-Length. */
#define MAX_SIZE_DIGITS 16
#define MAX_CHUNK_SIZE (UINT64_C(1) << 62)
#define MAX_TOTAL ((uint64_t)INT64_MAX)
#define DEFAULT_MAX_META 8192

enum {
    S_SIZE_START,     /* first hex digit of chunk-size */
    S_SIZE,           /* more hex digits, then ext, CR */
    S_EXT_BWS,        /* BWS before ";" */
    S_EXT_NAME_START, /* after ";": BWS then chunk-ext-name */
    S_EXT_NAME,       /* in chunk-ext-name */
    S_EXT_AFTER_NAME, /* BWS after the name: "=" or ";" */
    S_EXT_VAL_START,  /* after "=": BWS then token or quoted-string */
    S_EXT_TOKEN,      /* in a token value */
    S_EXT_QS,         /* in a quoted-string value */
    S_EXT_QP,         /* after a backslash in a quoted-string */
    S_EXT_AFTER_VAL,  /* after a closing quote */
    S_SIZE_LF,        /* LF ending the chunk-size line */
    S_DATA,           /* the caller moves chunk data */
    S_DATA_CR,        /* CRLF after chunk data */
    S_DATA_LF,
    S_TRL_START, /* start of a trailer line or of the final CRLF */
    S_TRL_NAME,
    S_TRL_VALUE,
    S_TRL_LF,
    S_FINAL_LF,
    S_DONE,
    S_ERROR
};

#define IS(c, cls) (tg_http_ctype[(unsigned char)(c)] & (cls))
#define IS_OWS(c) ((c) == ' ' || (c) == '\t')

static int fail(tg_chunked_t *d, const char *reason)
{
    d->error_reason = reason;
    return S_ERROR;
}

void tg_chunked_init(tg_chunked_t *d, size_t max_meta)
{
    memset(d, 0, sizeof(*d));
    d->state = S_SIZE_START;
    d->max_meta = max_meta ? max_meta : DEFAULT_MAX_META;
}

void tg_chunked_consumed(tg_chunked_t *d, uint64_t n)
{
    if (n > d->remaining)
        n = d->remaining;
    d->remaining -= n;
}

static int step_size(tg_chunked_t *d, unsigned char c)
{
    if (IS(c, TG_HTTP_C_HEX)) {
        if (d->digits == MAX_SIZE_DIGITS)
            return fail(d, "chunk size has too many digits");
        d->chunk_size = (d->chunk_size << 4) | (uint64_t)tg_hex_value(c);
        d->digits++;
        if (d->chunk_size > MAX_CHUNK_SIZE)
            return fail(d, "chunk size too large");
        return S_SIZE;
    }
    if (d->state == S_SIZE_START)
        return fail(d, "invalid chunk size");
    if (c == '\r')
        return S_SIZE_LF;
    if (c == ';')
        return S_EXT_NAME_START;
    if (IS_OWS(c))
        return S_EXT_BWS;
    return fail(d, c == '\n' ? "bare LF in chunk framing" : "invalid chunk size");
}

/* What may follow a complete extension (or a name without value). */
static int ext_next(tg_chunked_t *d, unsigned char c)
{
    if (c == ';')
        return S_EXT_NAME_START;
    if (IS_OWS(c))
        return S_EXT_BWS;
    if (c == '\r')
        return S_SIZE_LF;
    return fail(d, "invalid chunk extension");
}

static int step_ext(tg_chunked_t *d, unsigned char c)
{
    switch (d->state) {
    case S_EXT_BWS:
        if (IS_OWS(c))
            return S_EXT_BWS;
        return c == ';' ? S_EXT_NAME_START : fail(d, "invalid chunk extension");
    case S_EXT_NAME_START:
        if (IS_OWS(c))
            return S_EXT_NAME_START;
        return IS(c, TG_HTTP_C_TCHAR) ? S_EXT_NAME : fail(d, "invalid chunk extension name");
    case S_EXT_NAME:
        if (IS(c, TG_HTTP_C_TCHAR))
            return S_EXT_NAME;
        if (c == '=')
            return S_EXT_VAL_START;
        return IS_OWS(c) ? S_EXT_AFTER_NAME : ext_next(d, c);
    case S_EXT_AFTER_NAME:
        if (IS_OWS(c))
            return S_EXT_AFTER_NAME;
        if (c == '=')
            return S_EXT_VAL_START;
        return c == ';' ? S_EXT_NAME_START : fail(d, "invalid chunk extension");
    case S_EXT_VAL_START:
        if (IS_OWS(c))
            return S_EXT_VAL_START;
        if (c == '"')
            return S_EXT_QS;
        return IS(c, TG_HTTP_C_TCHAR) ? S_EXT_TOKEN : fail(d, "invalid chunk extension value");
    case S_EXT_TOKEN:
        return IS(c, TG_HTTP_C_TCHAR) ? S_EXT_TOKEN : ext_next(d, c);
    case S_EXT_QS: /* RFC 9110 section 5.6.4 */
        if (c == '"')
            return S_EXT_AFTER_VAL;
        if (c == '\\')
            return S_EXT_QP;
        return IS(c, TG_HTTP_C_QDTEXT) ? S_EXT_QS
                                       : fail(d, "invalid quoted-string in chunk extension");
    case S_EXT_QP:
        return IS(c, TG_HTTP_C_FIELD) ? S_EXT_QS
                                      : fail(d, "invalid quoted-pair in chunk extension");
    default: /* S_EXT_AFTER_VAL */
        return ext_next(d, c);
    }
}

/* Trailer fields are validated like header fields (RFC 9112 section 7.1.2)
 * and dropped: we never merge them into the header section. */
static int step_trailer(tg_chunked_t *d, unsigned char c)
{
    switch (d->state) {
    case S_TRL_START:
        if (c == '\r')
            return S_FINAL_LF;
        if (c == '\n')
            return fail(d, "bare LF in trailer section");
        if (IS_OWS(c))
            return fail(d, "obs-fold in trailer section");
        return IS(c, TG_HTTP_C_TCHAR) ? S_TRL_NAME : fail(d, "invalid trailer field name");
    case S_TRL_NAME:
        if (IS(c, TG_HTTP_C_TCHAR))
            return S_TRL_NAME;
        if (c == ':')
            return S_TRL_VALUE;
        return fail(d, IS_OWS(c) ? "whitespace between trailer name and colon"
                                 : "invalid trailer field name");
    case S_TRL_VALUE:
        if (IS(c, TG_HTTP_C_FIELD))
            return S_TRL_VALUE;
        if (c == '\n')
            return fail(d, "bare LF in trailer section");
        return c == '\r' ? S_TRL_LF : fail(d, "invalid character in trailer field");
    case S_TRL_LF:
        return c == '\n' ? S_TRL_START : fail(d, "bare CR in trailer section");
    default: /* S_FINAL_LF */
        return c == '\n' ? S_DONE : fail(d, "bare CR in trailer section");
    }
}

/* A complete chunk-size line: start the data or the trailer section. */
static int size_line_done(tg_chunked_t *d)
{
    if (d->chunk_size == 0)
        return S_TRL_START;
    if (d->chunk_size > MAX_TOTAL - d->total)
        return fail(d, "chunked body too large");
    d->total += d->chunk_size;
    d->remaining = d->chunk_size;
    d->new_chunk = 1;
    return S_DATA;
}

static int step(tg_chunked_t *d, unsigned char c)
{
    switch (d->state) {
    case S_SIZE_START:
    case S_SIZE:
        return step_size(d, c);
    case S_SIZE_LF:
        if (c != '\n')
            return fail(d, "bare CR in chunk framing");
        return size_line_done(d);
    case S_DATA_CR:
        return c == '\r' ? S_DATA_LF : fail(d, "chunk data not followed by CRLF");
    case S_DATA_LF:
        if (c != '\n')
            return fail(d, "chunk data not followed by CRLF");
        d->chunk_size = 0;
        d->digits = 0;
        return S_SIZE_START;
    case S_TRL_START:
    case S_TRL_NAME:
    case S_TRL_VALUE:
    case S_TRL_LF:
    case S_FINAL_LF:
        return step_trailer(d, c);
    default:
        return step_ext(d, c);
    }
}

/* Extension and trailer bytes are bounded: they are dropped, so an
 * unbounded amount would be free work for a client. */
static int is_meta(int state, unsigned char c)
{
    if (state >= S_EXT_BWS && state <= S_EXT_AFTER_VAL)
        return 1;
    if (state == S_TRL_START) /* the final CRLF is not counted */
        return c != '\r';
    return state >= S_TRL_NAME && state <= S_TRL_LF;
}

static int step_counted(tg_chunked_t *d, unsigned char c, size_t limit)
{
    if (is_meta(d->state, c)) {
        if (d->meta == limit)
            return fail(d, "chunk extensions or trailers too large");
        d->meta++;
    }
    return step(d, c);
}

tg_chunk_result_t tg_chunked_parse(tg_chunked_t *d, const char *buf, size_t len, size_t *used)
{
    size_t limit = d->max_meta ? d->max_meta : DEFAULT_MAX_META;
    size_t i = 0;
    *used = 0;
    if (d->state == S_DATA) {
        if (d->remaining > 0)
            return TG_CHUNK_DATA;
        d->state = S_DATA_CR;
    }
    while (i < len && d->state != S_DONE && d->state != S_ERROR) {
        unsigned char c = (unsigned char)buf[i++];
        d->state = step_counted(d, c, limit);
        if (d->state == S_DATA) {
            *used = i;
            return TG_CHUNK_DATA;
        }
    }
    if (d->state == S_ERROR)
        return TG_CHUNK_ERROR;
    *used = i;
    return d->state == S_DONE ? TG_CHUNK_DONE : TG_CHUNK_NEED_MORE;
}
