#include "path_norm.h"

#include <stdbool.h>

#include "tollgate/text.h"

/*
 * One pass over the input: each segment is validated and decoded straight
 * into out, then, once its end is seen, the decoded segment is checked for "."
 * or ".." and dropped (RFC 3986 section 5.2.4). Decoding happens before the dot
 * check so that "%2e%2e" and "%2E." are ".." segments, as RFC 3986 section
 * 6.2.2 requires (normalize percent-encoding, then remove dot-segments).
 * Empty segments are dropped as they are met, so "//" merges before ".."
 * applies: "/a//../b" is "/b", as with nginx's merge_slashes. Every input byte
 * yields at most one output byte, so out never outgrows len.
 *
 * Why decode the sub-delims, ":" and "@" too: most upstream frameworks decode
 * them, so "/v1/ops/42%3Acancel" must meet the route written for
 * "/v1/ops/42:cancel", not a catch-all without its auth. A byte is decoded only
 * when it is allowed raw, so decoding never creates a delimiter the path did
 * not have; everything else (%25, %3F, %2F kept, non-ASCII bytes, overlong
 * UTF-8 like %C0%AE) stays encoded and is never decoded a second time.
 */

/* RFC 3986 section 3.3: pchar = unreserved / pct-encoded / sub-delims / ":" / "@".
 * ";" is a sub-delim but is rejected, raw or encoded: path parameters are read
 * differently by different servers (Tomcat's ";jsessionid" trick) and are a
 * known ACL bypass. Only these bytes appear raw in the output. */
static bool raw_ok(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
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
        return true;
    default:
        return false;
    }
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
static const char *bad_pct_reason(int v, unsigned flags)
{
    switch (v) {
    case '/':
        return flags & TG_PATH_KEEP_ENCODED_SLASH ? NULL : "encoded slash in path";
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
static int copy_char(const char *in, size_t len, size_t *i, unsigned flags, char *out, size_t *o,
                     const char **reason)
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char c = (unsigned char)in[*i];
    if (c != '%') {
        if (!raw_ok(c)) {
            *reason = bad_char_reason(c);
            return -1;
        }
        out[(*o)++] = (char)c;
        (*i)++;
        return 0;
    }
    int hi = *i + 2 < len ? tg_hex_value((unsigned char)in[*i + 1]) : -1;
    int lo = *i + 2 < len ? tg_hex_value((unsigned char)in[*i + 2]) : -1;
    if (hi < 0 || lo < 0) {
        *reason = "malformed percent-encoding in path";
        return -1;
    }
    int v = hi << 4 | lo;
    const char *bad = bad_pct_reason(v, flags);
    if (bad != NULL) {
        *reason = bad;
        return -1;
    }
    if (raw_ok((unsigned char)v)) {
        /* RFC 3986 section 6.2.2.2 for unreserved; the other pchars by choice (above). */
        out[(*o)++] = (char)v;
    } else {
        /* RFC 3986 section 6.2.2.1: upper-case hex digits. */
        out[(*o)++] = '%';
        out[(*o)++] = hex[hi];
        out[(*o)++] = hex[lo];
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

int tg_path_normalize(const char *in, size_t len, unsigned flags, char *out, size_t *out_len,
                      const char **reason)
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
            if (copy_char(in, len, &i, flags, out, &o, reason) < 0)
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
