/*
 * cors plugin: origins, as configured and as browsers send them.
 *
 * A browser's Origin header is a serialized origin (WHATWG HTML "ASCII
 * serialization of an origin", RFC 6454 section 6.2): scheme "://" host
 * [":" port], scheme and host in lower case (the host punycoded), the
 * default port of the scheme omitted; or "null" for an opaque origin
 * (sandboxed iframes, file: pages, some redirects). Nothing else may match:
 * no path, no user info, no white space, one origin only.
 *
 * A configured entry is one of (written here with "\*" for "*", which C
 * comments cannot hold after a "/"):
 *   "https://app.example.com[:port]"   exactly that origin (case-insensitive;
 *                                      ":443" on https and ":80" on http dropped)
 *   "https://\*.example.com[:port]"    any host that ends in ".example.com",
 *                                      with at least one label before it, at
 *                                      any depth (a.example.com, a.b.example.com;
 *                                      never example.com itself, and never
 *                                      example.com.evil.com or evilexample.com);
 *                                      scheme and port must match too
 *   "null"                             the opaque origin, only when listed
 * Pure functions: no allocation but in tg_cors_origin_parse, no request.
 */
#ifndef TG_CORS_ORIGIN_H
#define TG_CORS_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>

/* Longest origin considered (a longer Origin header matches nothing). */
#define TG_CORS_ORIGIN_MAX 512

typedef struct {
    char *text; /* normalized, lower case: "https://app.example.com", "null", or for a
                       * wildcard the scheme part "https://" */
    size_t text_len;
    char *suffix; /* wildcard: ".example.com"; NULL for an exact entry */
    size_t suffix_len;
    char *port; /* wildcard: ":8443" or "" (the default port) */
    size_t port_len;
} tg_cors_origin_t;

/* Parses a configured entry (NUL-terminated). Returns 0 with out filled
 * (free with tg_cors_origin_free), or -1 with why set to a static message. */
int tg_cors_origin_parse(const char *s, tg_cors_origin_t *out, const char **why);
void tg_cors_origin_free(tg_cors_origin_t *o);

/* Whether o (len bytes, the Origin header's value) is a well-formed
 * serialized origin that the entry allows. */
bool tg_cors_origin_match(const tg_cors_origin_t *entry, const char *o, size_t len);

#endif
