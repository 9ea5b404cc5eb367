/*
 * tollgate public API: IP address blocks ("10.0.0.0/8", "2001:db8::/32",
 * "::1"), the core's own matcher (trusted_proxies) for plugins that filter
 * clients by address (ip-rules). Pure functions: no allocation, any thread.
 */
#ifndef TOLLGATE_CIDR_H
#define TOLLGATE_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An address block. */
typedef struct {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network order; 4 bytes used for AF_INET; host bits zero */
    unsigned prefix;  /* leading bits that count: 0-32 (AF_INET), 0-128 (AF_INET6) */
} tg_cidr_t;

/* "IP" or "IP/prefix" (NUL-terminated), IPv4 dotted quad or IPv6 text
 * (inet_pton), prefix 0-32 / 0-128 in decimal without sign or white space.
 * Host bits set in IP are cleared ("10.1.2.3/8" is 10.0.0.0/8). An
 * IPv4-mapped IPv6 block of prefix 96 or more ("::ffff:10.0.0.0/104") is the
 * IPv4 block it maps ("10.0.0.0/8"), so that it matches IPv4 peers too.
 * Returns 0, or -1 (out undefined) for anything else. */
int tg_cidr_parse(const char *text, tg_cidr_t *out);

/* Whether addr (AF_INET, or AF_INET6 including IPv4-mapped ::ffff:a.b.c.d,
 * which matches IPv4 blocks as the IPv4 address it maps) is inside one of
 * list[0..n). Any other family is inside none. Linear in n. */
bool tg_cidr_list_contains(const tg_cidr_t *list, size_t n, const struct sockaddr *addr);

#endif
