/*
 * tollgate public API: checks and codecs for the text of HTTP fields and URLs.
 *
 * Pure functions: no allocation, any thread. Inputs are (pointer, length)
 * and may hold any byte, NUL included; nothing outside [s, s + len) is read.
 */
#ifndef TOLLGATE_TEXT_H
#define TOLLGATE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Whether s is a token (RFC 9110 section 5.6.2: 1*tchar, tchar being ALPHA,
 * DIGIT and !#$%&'*+-.^_`|~): a field name, a method, a list element.
 * False for an empty s. */
bool tg_token_valid(const char *s, size_t len);

/* Whether s may be sent as a field value (RFC 9110 section 5.5): every byte is
 * HTAB, SP, a visible ASCII character (0x21-0x7E) or obs-text (0x80-0xFF). So
 * CR, LF, NUL, the other control characters and DEL make it false: a value
 * quoted from a token or a client can never split a header. True for an empty
 * s; leading and trailing white space is allowed (a recipient strips it). */
bool tg_field_value_valid(const char *s, size_t len);

/* Whether s may be sent in a request-target's query, as the parser accepts
 * one: every byte is visible ASCII (0x21-0x7E) but "#", which would start a
 * fragment. So no space, control, NUL or non-ASCII byte. True for an empty s. */
bool tg_query_bytes_valid(const char *s, size_t len);

/* Value of a hexadecimal digit of either case (RFC 5234 HEXDIG, and a-f):
 * 0-15, or -1 for any other byte. Inline: parsers call it per byte. */
static inline int tg_hex_value(unsigned char c)
{
    if ((unsigned)(c - '0') < 10u)
        return c - '0';
    c |= 0x20; /* 'A'-'F' -> 'a'-'f'; no other byte lands there */
    return (unsigned)(c - 'a') < 6u ? c - 'a' + 10 : -1;
}

/* Percent-decodes in (RFC 3986 section 2.1: "%" and two hex digits of either
 * case) into out, which has room for len bytes and may be in itself. A "%"
 * without two hex digits is kept as is; "+" is kept. Returns the decoded
 * length (at most len). */
size_t tg_percent_decode(const char *in, size_t len, char *out);

/* Flags of tg_percent_decode_flags(). */
#define TG_PERCENT_PLUS 1u   /* "+" decodes to a space (HTML form encoding of query values) */
#define TG_PERCENT_STRICT 2u /* a "%" without two hex digits fails the whole input */

/* tg_percent_decode() with flags. Returns the decoded length, or -1 (only
 * with TG_PERCENT_STRICT) when a "%" is not followed by two hex digits; out
 * then holds undefined bytes. */
ssize_t tg_percent_decode_flags(const char *in, size_t len, char *out, unsigned flags);

/* Percent-encodes every byte of in but the unreserved ones (RFC 3986 section
 * 2.3: ALPHA, DIGIT, "-", ".", "_", "~") as "%" and two upper-case hex digits
 * (section 2.1), into out, which has room for 3 * len bytes and does not
 * overlap in. The result can sit in a path segment or a query value without
 * adding a segment, a parameter or a fragment. Returns its length. */
size_t tg_percent_encode(const char *in, size_t len, char *out);

/* A piece of a caller's buffer: len bytes at p, not NUL-terminated. */
typedef struct {
    const char *p;
    size_t len;
} tg_span_t;

/* Comma-separated field values (RFC 9110 section 5.6.1: `#element`), read
 * as the core reads Connection and X-Forwarded-For: elements are trimmed of
 * OWS (SP, HTAB), empty elements are skipped, quoted strings are not
 * special. Next element at or after *pos (start with *pos = 0). Returns
 * false when no element is left; *pos then equals len. */
bool tg_list_next(const char *v, size_t len, size_t *pos, tg_span_t *elem);

/* Whether one element of list v equals lower (lower_len bytes, lower-case)
 * case-insensitively. */
bool tg_list_has(const char *v, size_t len, const char *lower, size_t lower_len);

/* Longest parameter name tg_query_find() looks for. */
#define TG_QUERY_NAME_MAX 128

/* Parameters of query q ("&"-separated name[=value], WHATWG URL / RFC 3986
 * section 3.4) whose percent-decoded name is name (NUL-terminated, at most
 * TG_QUERY_NAME_MAX bytes: a longer one is never found), so that
 * "%61pi_key" counts as "api_key" as it does for an upstream. Returns how
 * many there are; for the first, *param is its whole text and *value its raw
 * (still encoded) value, empty for a bare name. A credential read from a
 * query is refused when there are several: the gateway would check one and
 * the upstream might read the other. */
size_t tg_query_find(const char *q, size_t len, const char *name, tg_span_t *param,
                     tg_span_t *value);

/* q without param (a span of q, as tg_query_find() gives it) and one "&"
 * next to it, the other bytes as they were, into out (room for len bytes,
 * not overlapping q). Returns the new length (0: nothing is left). */
size_t tg_query_without(const char *q, size_t len, tg_span_t param, char *out);

#endif
