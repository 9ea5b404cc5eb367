/*
 * response-shape plugin: scanning JSON scalars (RFC 8259): strings (escapes,
 * strict UTF-8), numbers of any size, literals. Two rules are stricter than
 * the RFC's grammar, because the output is read by other parsers that
 * disagree about them, and an excluded key must not reappear there under
 * another reading (docs/design.md): an escaped surrogate must be half of a
 * pair (RFC 8259 section 8.2 calls lone ones unpredictable: one parser
 * replaces them, another drops them, so "secre\ud800t" may read "secret"),
 * and a key holds no "\u0000" (C-string parsers cut it there). Each function
 * takes [p, end) and returns the end of the token, or NULL when it is
 * invalid. Header-only and static: shape.c's hot loop inlines them.
 */
#ifndef TG_JSON_SCAN_H
#define TG_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "tollgate/text.h"

static int hex4(const char *p, const char *end)
{
    if (end - p < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int d = tg_hex_value((unsigned char)p[i]);
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* One escape at p (after the '\'), RFC 8259 section 7; returns its length
 * (1, 5 or 11) and the code point (-1 for a one-letter escape), or 0 when
 * invalid. A surrogate must come as a high/low pair (see the top). */
static size_t escape(const char *p, const char *end, long *cp)
{
    *cp = -1;
    if (p == end)
        return 0;
    if (*p != 'u')
        return strchr("\"\\/bfnrt", *p) != NULL && *p != '\0' ? 1 : 0;
    long v = hex4(p + 1, end);
    if (v < 0 || (v >= 0xDC00 && v <= 0xDFFF))
        return 0;
    if (v < 0xD800 || v > 0xDBFF) {
        *cp = v;
        return 5;
    }
    if (end - p < 11 || p[5] != '\\' || p[6] != 'u')
        return 0;
    long lo = hex4(p + 7, end);
    if (lo < 0xDC00 || lo > 0xDFFF)
        return 0;
    *cp = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
    return 11;
}

/* Length of the UTF-8 sequence at p (RFC 3629 section 4: no overlong forms,
 * no surrogates, nothing above U+10FFFF), or 0 when invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else
        return 0;
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

/* Strings are scanned a block at a time: bit i of the mask is set when
 * byte i of the block is '"', '\', a control character or non-ASCII;
 * *quotes: the same for '"' alone. SSE2 where there is (every x86-64). */
#ifdef __SSE2__
#define BLOCK 16
static inline unsigned special_block(const char *p, unsigned *quotes)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i q = _mm_cmpeq_epi8(x, _mm_set1_epi8('"'));
    __m128i b = _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'));
    __m128i c = _mm_cmplt_epi8(x, _mm_set1_epi8(0x20)); /* signed: also >= 0x80 */
    *quotes = (unsigned)_mm_movemask_epi8(q);
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, b), c));
}
#else
#define BLOCK 8
static inline unsigned special_block(const char *p, unsigned *quotes)
{
    unsigned m = 0;
    *quotes = 0;
    for (unsigned i = 0; i < BLOCK; i++) {
        unsigned char c = (unsigned char)p[i];
        *quotes |= (unsigned)(c == '"') << i;
        m |= (unsigned)(c == '"' || c == '\\' || c < 0x20 || c >= 0x80) << i;
    }
    return m;
}
#endif

/* scan_string() past its first block. */
static __attribute__((noinline)) const char *scan_string_slow(const char *p, const char *end,
                                                              bool key, bool *esc)
{
    for (;;) {
        if (end - p >= BLOCK) {
            unsigned quotes, m = special_block(p, &quotes);
            if (m == 0) {
                p += BLOCK;
                continue;
            }
            p += __builtin_ctz(m);
        } else if (p == end) {
            return NULL;
        }
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            long cp;
            size_t n = escape(p + 1, end, &cp);
            if (n == 0 || (key && cp == 0))
                return NULL;
            *esc = true;
            p += 1 + n;
        } else if (c >= 0x80) {
            size_t n = utf8_len((const unsigned char *)p, (const unsigned char *)end);
            if (n == 0)
                return NULL;
            p += n;
        } else {
            p++;
        }
    }
}

/* The string at p (on its '"'), RFC 8259 section 7: no raw control
 * characters, valid escapes, valid UTF-8; no "\u0000" in a key (see the
 * top). Returns the byte after it, NULL when invalid; sets *esc when the
 * string holds an escape. Inline: most strings end, plain, in one block. */
static inline const char *scan_string(const char *p, const char *end, bool key, bool *esc)
{
    p++;
    if (end - p >= BLOCK) {
        unsigned quotes, m = special_block(p, &quotes);
        if ((m & -m & quotes) != 0)
            return p + __builtin_ctz(m) + 1;
    }
    return scan_string_slow(p, end, key, esc);
}

static inline const char *digits(const char *p, const char *end)
{
    while (p < end && (unsigned)(*p - '0') < 10)
        p++;
    return p;
}

/* A number at p, RFC 8259 section 6:
 *   [ "-" ] ( "0" / 1-9 *DIGIT ) [ "." 1*DIGIT ] [ ( "e" / "E" ) [ "-" / "+" ] 1*DIGIT ]
 * of any size: RFC 8259 sets no range, and a number is copied as written, so
 * "18446744073709551616" or "1e400" (which jansson, an int64/double parser,
 * rejects) are shaped like any other. */
static const char *scan_number(const char *p, const char *end)
{
    const char *d = p + (*p == '-'), *e;
    p = d < end && *d == '0' ? d + 1 : digits(d, end);
    if (p == d)
        return NULL;
    if (p < end && *p == '.') {
        if ((e = digits(p + 1, end)) == p + 1)
            return NULL;
        p = e;
    }
    if (p < end && (*p | 0x20) == 'e') {
        p += p + 1 < end && (p[1] == '-' || p[1] == '+') ? 2 : 1;
        if ((e = digits(p, end)) == p)
            return NULL;
        p = e;
    }
    return p;
}

/* A string, number, true, false or null at p (p < end). */
static inline __attribute__((always_inline)) const char *scan_scalar(const char *p, const char *end)
{
    bool esc;
    size_t n = (size_t)(end - p);
    switch (*p) {
    case '"':
        return scan_string(p, end, false, &esc);
    case 't':
        return n >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return n >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return n >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return *p == '-' || (unsigned)(*p - '0') < 10 ? scan_number(p, end) : NULL;
    }
}

#endif
