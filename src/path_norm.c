#include "path_norm.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * One pass over the input: each segment is validated and decoded straight
 * into out, then, once its end is seen, the decoded segment is checked for "."
 * or ".." and dropped (RFC 3986 section 5.2.4). Decoding happens before the dot
 * check so that "%2e%2e" is a ".." segment, as RFC 3986 section 6.2.2 requires
 * (normalize percent-encoding, then remove dot-segments). Empty segments are
 * dropped as they are met, so "//" merges before ".." applies: "/a//../b" is
 * "/b", as with nginx's merge_slashes. Every input byte
 * yields at most one output byte, so out never outgrows len.
 */

enum { C_BAD = 0, C_PCHAR, C_UNRES };

/* RFC 3986 section 3.3: pchar = unreserved / pct-encoded / sub-delims / ":" / "@".
 * ";" is a sub-delim but is rejected: path parameters are read differently by
 * different servers (Tomcat's ";jsessionid" trick) and are a known ACL bypass. */
static uint8_t char_class(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return C_UNRES;
    switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
        return C_UNRES;
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case '=':
    case ':':
    case '@':
        return C_PCHAR;
    default:
        return C_BAD;
    }
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static const char *bad_char_reason(unsigned char c)
{
    switch (c) {
    case '\\':
        return "backslash in path";
    case '#':
        return "fragment in path";
    case ';':
        return "path parameter in path";
    default:
        return "invalid character in path";
    }
}

/* Encodings that would change how the path splits into segments, or that
 * backends are known to read as separators or terminators. */
static const char *bad_pct_reason(int v)
{
    switch (v) {
    case '/':
        return "encoded slash in path";
    case '\\':
        return "encoded backslash in path";
    case 0:
        return "encoded NUL in path";
    case ';':
        return "encoded path parameter in path";
    case '#':
        return "encoded fragment in path";
    default:
        return NULL;
    }
}

/* Appends the segment byte(s) at in[*i] to out; advances *i. */
static int copy_char(const char *in, size_t len, size_t *i, char *out, size_t *o,
                     const char **reason)
{
    unsigned char c = (unsigned char)in[*i];
    if (c != '%') {
        if (char_class(c) == C_BAD) {
            *reason = bad_char_reason(c);
            return -1;
        }
        out[(*o)++] = (char)c;
        (*i)++;
        return 0;
    }
    int hi = *i + 2 < len ? hexval((unsigned char)in[*i + 1]) : -1;
    int lo = *i + 2 < len ? hexval((unsigned char)in[*i + 2]) : -1;
    if (hi < 0 || lo < 0) {
        *reason = "malformed percent-encoding in path";
        return -1;
    }
    int v = hi << 4 | lo;
    const char *bad = bad_pct_reason(v);
    if (bad != NULL) {
        *reason = bad;
        return -1;
    }
    if (char_class((unsigned char)v) == C_UNRES) {
        /* RFC 3986 section 2.3: encoded unreserved chars are equivalent to the raw ones. */
        out[(*o)++] = (char)v;
    } else {
        /* Kept as written, hex case included: the upstream sees what the client sent. */
        out[(*o)++] = in[*i];
        out[(*o)++] = in[*i + 1];
        out[(*o)++] = in[*i + 2];
    }
    *i += 3;
    return 0;
}

/* out[start..o) is the segment just decoded; out[start - 1] is '/'. Returns the
 * new output length: the segment dropped for ".", it and its parent for "..";
 * a ".." at the root stays at the root (RFC 3986 section 5.2.4 step 2C). */
static size_t finish_segment(char *out, size_t start, size_t o)
{
    size_t n = o - start;
    if (n == 1 && out[start] == '.')
        return start;
    if (n == 2 && out[start] == '.' && out[start + 1] == '.') {
        if (start == 1)
            return 1;
        size_t p = start - 1; /* the '/' before the segment */
        while (p > 0 && out[p - 1] != '/')
            p--;
        return p;
    }
    return o;
}

int tg_path_normalize(const char *in, size_t len, char *out, size_t *out_len, const char **reason)
{
    if (len == 0 || in[0] != '/') {
        *reason = "path does not start with /";
        return -1;
    }
    size_t i = 1, o = 0;
    out[o++] = '/';
    while (i < len) {
        size_t start = o;
        while (i < len && in[i] != '/') {
            if (copy_char(in, len, &i, out, &o, reason) < 0)
                return -1;
        }
        o = finish_segment(out, start, o);
        /* out ends with '/' unless a normal segment was just written; an empty
         * segment ("//") adds nothing, which merges the slashes. */
        if (i < len) {
            if (o > start)
                out[o++] = '/';
            i++;
        }
    }
    *out_len = o;
    return 0;
}
