/*
 * The client's address behind trusted proxies, found the way nginx's
 * real_ip_recursive does: X-Forwarded-For is read from the right (the hop
 * nearest to us) and the first address that is not a trusted proxy is the
 * client. Pure: header fields and CIDR blocks in, an address out.
 */
#ifndef TG_CLIENT_ADDR_H
#define TG_CLIENT_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "http_parser.h"
#include "tollgate/cidr.h"

/*
 * hs[0..n): the request's fields; call it only when the peer itself is a
 * trusted proxy. Every X-Forwarded-For line counts, the last line's last
 * element being the nearest hop; empty list elements are skipped. An element
 * that is not a plain IPv4 or IPv6 address (a port, brackets, "unknown", a
 * zone, junk) stops the walk: the last trusted hop seen before it is then the
 * client, since nothing a trusted proxy vouches for lies beyond it. When every
 * element is trusted, the leftmost one is the client.
 * Returns true with *out set to that address, false when the client stays the
 * peer (no usable element).
 */
bool tg_client_addr_from_xff(const tg_http_header_t *hs, size_t n, const tg_cidr_t *trusted,
                             size_t ntrusted, struct sockaddr_storage *out);

#endif
