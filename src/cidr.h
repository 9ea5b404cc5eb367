/* IP address blocks for trusted_proxies: parsed at load, matched per request. */
#ifndef TG_CIDR_H
#define TG_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An address block (a trusted_proxies entry). */
typedef struct {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix; /* leading bits that count */
} tg_cidr_t;

/* "IP" or "IP/prefix", IPv4 or IPv6; host bits are cleared. 0 or -1. */
int tg_cidr_parse(const char *text, tg_cidr_t *out);

/* Whether addr (IPv4, IPv6, or IPv4-mapped IPv6) is inside one of list[0..n). */
bool tg_cidr_list_contains(const tg_cidr_t *list, size_t n, const struct sockaddr *addr);

#endif
