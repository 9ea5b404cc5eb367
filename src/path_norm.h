/*
 * One canonical request path (RFC 3986 section 6). Every percent-encoding of a
 * character that is allowed raw in a path segment (unreserved, the sub-delims
 * except ";", ":" and "@") is decoded; every other percent-encoding stays
 * encoded with its hex digits upper-cased (RFC 3986 section 6.2.2.1), and is
 * never decoded twice ("%252F" stays "%252F"). Then dot-segments are removed
 * and duplicate slashes merged. The router matches, plugins see and the
 * upstream receives this same path; route path/path_prefix/strip_prefix values
 * are canonicalised the same way at load. The output is a fixed point: it
 * normalizes to itself.
 *
 * Rejected (the caller answers 400): raw or encoded ";" (path parameters:
 * Tomcat-style upstreams read "/a;x/b" and "/a%3Bx/b" as "/a/b"), raw or
 * encoded "#", raw "\" and %5C, %00, malformed percent-encodings ("%" not
 * followed by two hex digits), bytes outside the RFC 3986 path character set,
 * a path that does not start with "/", and %2F unless
 * TG_PATH_KEEP_ENCODED_SLASH is set.
 */
#ifndef TG_PATH_NORM_H
#define TG_PATH_NORM_H

#include <stddef.h>

/* limits.encoded_slashes: keep. %2F (any hex case, written "%2F") is then an
 * ordinary character inside its segment: it never splits segments, never takes
 * part in dot-segment removal ("..%2F" is a literal 5-byte segment). */
#define TG_PATH_KEEP_ENCODED_SLASH 1u

/* in/len: the path part of an origin-form target (up to, not including, "?").
 * flags: TG_PATH_* bits. out must have room for len + 1 bytes; it may not
 * alias in. Returns 0 with *out_len set, or -1 with *reason set to a static
 * message. */
int tg_path_normalize(const char *in, size_t len, unsigned flags, char *out, size_t *out_len,
                      const char **reason);

#endif
