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

#endif
