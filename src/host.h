/*
 * The host of a request: the Host header value and the authority of an
 * absolute-form request-target are checked by the same rule, so that every
 * spelling the router, the plugins and the upstream see is one we accept.
 * Pure: no allocation, reads exactly len bytes (no NUL needed).
 */
#ifndef TG_HOST_H
#define TG_HOST_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 9110 section 7.2 / RFC 3986 section 3.2.2: uri-host [ ":" port ], as
 * strict as a front proxy should be:
 *   uri-host  reg-name of unreserved characters only (ALPHA DIGIT - . _ ~),
 *             1 to 253 bytes (one trailing dot allowed on top); a reg-name whose
 *             last label is numeric (digits, or 0x + hex) must be a dotted-quad
 *             IPv4 address (inet_pton), as URL parsers read it as an address;
 *             or "[" IPv6address "]" (inet_pton; no zone id, no IPvFuture).
 *   port      1 to 5 digits, 1..65535; a colon without a port is refused.
 * Refused on purpose although RFC 3986 allows them in a reg-name: percent-
 * encodings and sub-delims (a host that decodes or splits differently
 * downstream), and "@" (userinfo). An empty value is refused; whether an empty
 * Host header is acceptable is the caller's rule. */
bool tg_host_valid(const char *s, size_t len);

#endif
