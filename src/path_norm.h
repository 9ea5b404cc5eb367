/*
 * One canonical request path (RFC 3986 section 6): percent-encoded unreserved
 * characters are decoded, dot-segments removed, duplicate slashes merged; every
 * other percent-encoding stays byte for byte. The router matches, plugins see
 * and the upstream receives this same path.
 *
 * Rejected (the caller answers 400): encoded "/" (%2F), encoded "\" (%5C), raw
 * "\", encoded NUL (%00), ";" path parameters (raw or %3B), "#" (raw or %23),
 * malformed percent-encodings, bytes outside the RFC 3986 path character set,
 * and a path that does not start with "/".
 */
#ifndef TG_PATH_NORM_H
#define TG_PATH_NORM_H

#include <stddef.h>

/* in/len: the path part of an origin-form target (up to, not including, "?").
 * out must have room for len + 1 bytes; it may not alias in. Returns 0 with
 * *out_len set, or -1 with *reason set to a static message. */
int tg_path_normalize(const char *in, size_t len, char *out, size_t *out_len, const char **reason);

#endif
